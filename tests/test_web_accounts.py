"""roleplay.history.accounts on a real SQLite file: users, passwords, sessions, rate limiting, who
sees whom, the access log, readiness marks, settings, and the v2 -> v3 migration."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from roleplay.history.accounts import FIRST_WAIT_S, AccountError, Accounts, LoginResult, token_sha256
from roleplay.history.store import MIGRATIONS, SCHEMA_VERSION, History

START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def acc(tmp_path, clock):
    with History(tmp_path / "history.sqlite3") as history:
        yield Accounts(history, now=clock)


def test_add_user_stores_an_argon2id_hash_never_the_password(acc, tmp_path):
    user = acc.add_user("Anna de Vries", "trainee", "geheim-wachtwoord")
    assert (user.name, user.role, user.language, user.disabled) == ("Anna de Vries", "trainee", "nl", False)
    stored = acc.conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and "geheim" not in stored
    assert acc.check_password("Anna de Vries", "geheim-wachtwoord")
    assert not acc.check_password("Anna de Vries", "wrong-password")
    assert not acc.check_password("nobody", "geheim-wachtwoord")


@pytest.mark.parametrize(
    ("name", "role", "password", "code"),
    [
        ("anna", "trainee", "kort", "password-short"),
        ("", "trainee", "long-enough", "name-invalid"),
        ("../etc", "trainee", "long-enough", "name-invalid"),
        ("anna", "boss", "long-enough", "role-invalid"),
    ],
)
def test_bad_new_users_are_refused_with_a_code(acc, name, role, password, code):
    with pytest.raises(AccountError) as caught:
        acc.add_user(name, role, password)
    assert caught.value.code == code
    assert acc.users() == []


def test_a_name_is_taken_once(acc):
    acc.add_user("anna", "trainee", "long-enough")
    with pytest.raises(AccountError, match="already a user called 'anna'"):
        acc.add_user("anna", "trainer", "long-enough")


def test_sessions_expire_end_and_die_with_a_disabled_user(acc, clock):
    anna = acc.add_user("anna", "trainee", "long-enough")
    token, session = acc.start_session(anna, lifetime_s=3600)
    assert acc.session(token) == session and session.user == anna
    stored = acc.conn.execute("SELECT token_sha256 FROM web_sessions").fetchone()[0]
    assert stored == token_sha256(token) and token not in stored  # only the hash is kept
    clock.advance(3599)
    assert acc.session(token) is not None
    clock.advance(1)
    assert acc.session(token) is None
    token2, _ = acc.start_session(anna)
    acc.end_session(token2)
    assert acc.session(token2) is None
    token3, _ = acc.start_session(anna)
    acc.set_disabled("anna", True)
    assert acc.session(token3) is None
    assert acc.login("anna", "long-enough", "10.0.0.1").user is None  # disabled: no sign-in


def test_a_new_password_ends_every_other_session(acc):
    anna = acc.add_user("anna", "trainee", "long-enough")
    here, _ = acc.start_session(anna)
    elsewhere, _ = acc.start_session(anna)
    acc.set_password("anna", "another-password", keep_token=here)
    assert acc.session(here) is not None and acc.session(elsewhere) is None
    assert acc.check_password("anna", "another-password")
    acc.set_password("anna", "third-password")  # an admin's reset: everywhere
    assert acc.session(here) is None


def test_wrong_passwords_slow_down_further_tries_with_a_growing_wait(acc, clock):
    acc.add_user("anna", "trainee", "long-enough")
    for _ in range(5):
        assert acc.login("anna", "wrong", "10.0.0.1") == LoginResult(None)
    result = acc.login("anna", "long-enough", "10.0.0.1")  # the 6th try: refused before checking
    assert result.user is None and result.wait_s == pytest.approx(FIRST_WAIT_S)
    clock.advance(FIRST_WAIT_S)
    assert acc.login("anna", "wrong", "10.0.0.1").wait_s == 0  # allowed again, and wrong again
    assert acc.login("anna", "long-enough", "10.0.0.1").wait_s == pytest.approx(2 * FIRST_WAIT_S)
    clock.advance(2 * FIRST_WAIT_S)
    assert acc.login("anna", "long-enough", "10.0.0.1").user is not None
    assert acc.login_wait_s("anna", "10.0.0.2") == 0  # a success clears the name's failures


def test_many_names_from_one_address_are_slowed_too(acc):
    for n in range(5):
        acc.login(f"guess{n}", "wrong", "10.0.0.9")
    assert acc.login_wait_s("someone-else", "10.0.0.9") > 0
    assert acc.login_wait_s("someone-else", "10.0.0.8") == 0


def test_failures_older_than_the_window_no_longer_count(acc, clock):
    for _ in range(5):
        acc.login("anna", "wrong", "10.0.0.1")
    clock.advance(15 * 60 + 1)
    assert acc.login_wait_s("anna", "10.0.0.1") == 0


def test_who_sees_whose_calls(acc):
    admin = acc.add_user("ada", "admin", "long-enough")
    tom = acc.add_user("tom", "trainer", "long-enough")
    anna = acc.add_user("anna", "trainee", "long-enough")
    acc.add_user("bert", "trainee", "long-enough")
    acc.create_group("avond")
    acc.set_group_trainee("avond", "anna", member=True)
    assert acc.visible_trainees(tom) == set()  # not yet this group's trainer
    acc.set_group_trainer("avond", "tom", member=True)
    assert acc.visible_trainees(tom) == {"anna"}
    assert acc.visible_trainees(anna) == {"anna"}
    assert acc.visible_trainees(admin) is None
    assert acc.may_see(tom, "anna") and not acc.may_see(tom, "bert") and acc.may_see(admin, "bert")
    with pytest.raises(AccountError, match="not a trainer"):
        acc.set_group_trainer("avond", "bert", member=True)
    acc.create_group("leeg")
    assert acc.groups() == ["avond", "leeg"] and acc.group_trainers("avond") == ["tom"]
    acc.set_group_trainer("avond", "tom", member=False)
    assert acc.visible_trainees(tom) == set()


def test_access_log_readiness_marks_and_settings(acc, clock):
    acc.log_access("tom", "recording", call_id=7, target="/calls/7/audio")
    clock.advance(60)
    acc.log_access("ada", "report", call_id=8)
    log = acc.access_log()
    assert [(e.who, e.call_id) for e in log] == [("ada", 8), ("tom", 7)]  # newest first
    assert log[1].target == "/calls/7/audio" and log[1].at_utc == "2026-03-01T09:00:00+00:00"
    assert acc.readiness_mark("anna") is None
    acc.mark_ready("anna", by="tom", note=" good calls ")
    acc.mark_ready("anna", by="tom", ready=False, note="one more week")
    mark = acc.readiness_mark("anna")
    assert mark is not None and (mark.ready, mark.note) == (False, "one more week")
    assert acc.setting("hide_anger_meter", "0") == "0"
    acc.set_setting("hide_anger_meter", "1")
    acc.set_setting("hide_anger_meter", "0")
    assert acc.setting("hide_anger_meter") == "0"


def test_a_v2_history_gains_the_account_tables(tmp_path):
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    for version in (1, 2):
        conn.executescript(MIGRATIONS[version][0])
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with History(db) as history:
        assert history.schema_version() == SCHEMA_VERSION == 3
        Accounts(history).add_user("ada", "admin", "long-enough")
    assert (tmp_path / "old.sqlite3.v2.bak").exists()
