"""The browser app's accounts, in the history database (schema v3, see store.py): users and their
roles, signed-in sessions, failed sign-ins (for rate limiting), the access log, which trainer
looks after which group, readiness marks and app settings.

A user's name is the trainee name in the history's calls, so a trainee's calls are those whose
`trainee` is their name. Passwords are argon2id hashes; session tokens are stored only as their
SHA-256, so a copy of the database does not let anyone sign in.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from roleplay.core.errors import RoleplayError
from roleplay.history.store import History

Role = Literal["trainee", "trainer", "admin"]
Language = Literal["nl", "en"]
ROLES: tuple[Role, ...] = get_args(Role)
LANGUAGES: tuple[Language, ...] = get_args(Language)

SESSION_LIFETIME_S = 12 * 3600
MIN_PASSWORD_CHARS = 8
# Rate limiting: this many wrong passwords for one name, or from one address, within the window
# slow further tries down: the first wait is FIRST_WAIT_S, doubling with each further failure.
FREE_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
FIRST_WAIT_S = 30.0
MAX_WAIT_S = float(FAILURE_WINDOW_S)
ACCESS_LOG_LIMIT = 500

_NAME = re.compile(r"^\w[\w .'-]{0,63}$")  # also a trainee name on the command line and in paths
_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against when a name is unknown, so a wrong name takes as long as a wrong password
    (made on first use: hashing costs memory and time the CLI and an idle server need not spend)."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AccountError(RoleplayError):
    """An account change that cannot be made. `code` names the reason for the app's texts
    (`errors.<code>` in roleplay/web/texts/*.yaml); the message is the English one-liner."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    language: Language
    created_utc: str
    disabled: bool


@dataclass(frozen=True)
class WebSession:
    user: User
    created_utc: str
    expires_utc: str
    csrf_token: str


@dataclass(frozen=True)
class LoginResult:
    """`user` when the password was right; else `wait_s` > 0 when tries are being slowed down
    (the password was not even checked), or neither for a wrong name or password."""

    user: User | None
    wait_s: float = 0.0


@dataclass(frozen=True)
class AccessEntry:
    id: int
    who: str
    at_utc: str
    action: str
    call_id: int | None
    target: str | None
    detail: str


@dataclass(frozen=True)
class ReadinessMark:
    trainee: str
    ready: bool
    marked_by: str
    marked_utc: str
    note: str


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _iso(when: _dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_USER_COLUMNS = "id, name, role, language, created_utc, disabled"
_SESSION_USER_COLUMNS = ", ".join(f"u.{c}" for c in _USER_COLUMNS.split(", "))


def _user(row: tuple[Any, ...]) -> User:
    return User(id=row[0], name=row[1], role=row[2], language=row[3], created_utc=row[4], disabled=bool(row[5]))


class Accounts:
    """The accounts in one open `History`. `now` is the clock (tests pass their own)."""

    def __init__(self, history: History, *, now: Callable[[], _dt.datetime] = _utc_now) -> None:
        self.history = history
        self.conn = history.conn
        self.now = now

    # ----------------------------------------------------------------------- users

    def add_user(self, name: str, role: str, password: str, *, language: str = "nl") -> User:
        name = name.strip()
        if not _NAME.match(name):
            raise AccountError("name-invalid", f"user name {name!r}: use letters, digits, spaces, . ' or - "
                                               "(at most 64 characters, starting with a letter or digit)")
        _check_choice(role, ROLES, "role")
        _check_choice(language, LANGUAGES, "language")
        _check_password(password)
        hashed = _hasher.hash(password)
        with self.history.write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccountError("name-taken", f"there is already a user called {name!r}")
            conn.execute(
                "INSERT INTO users (name, role, password_hash, language, created_utc, disabled) "
                "VALUES (?, ?, ?, ?, ?, 0)",
                (name, role, hashed, language, _iso(self.now())),
            )
        return self._existing(name)

    def user(self, name: str) -> User | None:
        row = self.conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def _existing(self, name: str) -> User:
        found = self.user(name)
        if found is None:
            raise AccountError("no-such-user", f"there is no user called {name!r}")
        return found

    def users(self, *, role: str | None = None) -> list[User]:
        sql = f"SELECT {_USER_COLUMNS} FROM users"
        args: tuple[str, ...] = ()
        if role is not None:
            sql += " WHERE role = ?"
            args = (role,)
        return [_user(r) for r in self.conn.execute(sql + " ORDER BY name", args).fetchall()]

    def set_role(self, name: str, role: str) -> None:
        _check_choice(role, ROLES, "role")
        self._update(name, "role", role)

    def set_language(self, name: str, language: str) -> None:
        _check_choice(language, LANGUAGES, "language")
        self._update(name, "language", language)

    def set_disabled(self, name: str, disabled: bool) -> None:
        user = self._existing(name)
        with self.history.write() as conn:
            conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user.id))
            if disabled:  # signed out everywhere at once
                conn.execute("DELETE FROM web_sessions WHERE user_id = ?", (user.id,))

    def set_password(self, name: str, password: str, *, keep_token: str | None = None) -> None:
        """A new password; every session of the user ends except the one holding `keep_token`
        (someone changing their own password stays signed in where they did it)."""
        _check_password(password)
        user = self._existing(name)
        hashed = _hasher.hash(password)
        keep = token_sha256(keep_token) if keep_token else ""
        with self.history.write() as conn:
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (hashed, user.id))
            conn.execute("DELETE FROM web_sessions WHERE user_id = ? AND token_sha256 <> ?", (user.id, keep))

    def check_password(self, name: str, password: str) -> bool:
        row = self.conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        try:
            return _hasher.verify(row[0] if row else _dummy_hash(), password) and row is not None
        except (VerificationError, InvalidHashError):
            return False

    def _update(self, name: str, column: str, value: str) -> None:
        user = self._existing(name)
        with self.history.write() as conn:
            conn.execute(f"UPDATE users SET {column} = ? WHERE id = ?", (value, user.id))

    # ----------------------------------------------------------------------- signing in

    def login(self, name: str, password: str, address: str) -> LoginResult:
        """Check a sign-in, with rate limiting per name and per client address."""
        name = name.strip()
        wait_s = self.login_wait_s(name, address)
        if wait_s > 0:
            return LoginResult(None, wait_s)
        user = self.user(name)
        if self.check_password(name, password) and user is not None and not user.disabled:
            self._rehash_if_needed(name, password)
            with self.history.write() as conn:
                conn.execute("DELETE FROM login_failures WHERE name = ?", (name,))
            return LoginResult(user)
        now = self.now()
        with self.history.write() as conn:
            cutoff = _iso(now - _dt.timedelta(seconds=FAILURE_WINDOW_S))
            conn.execute("DELETE FROM login_failures WHERE at_utc < ?", (cutoff,))
            conn.execute("INSERT INTO login_failures (name, address, at_utc) VALUES (?, ?, ?)",
                         (name, address, _iso(now)))
        return LoginResult(None)

    def login_wait_s(self, name: str, address: str) -> float:
        """Seconds before the next try for this name or from this address is allowed (0: now)."""
        now = self.now()
        cutoff = _iso(now - _dt.timedelta(seconds=FAILURE_WINDOW_S))
        worst = 0.0
        for column, value in (("name", name), ("address", address)):
            count, last = self.conn.execute(
                f"SELECT count(*), max(at_utc) FROM login_failures WHERE {column} = ? AND at_utc >= ?",
                (value, cutoff),
            ).fetchone()
            if count < FREE_FAILURES:
                continue
            wait_s = min(FIRST_WAIT_S * 2 ** (count - FREE_FAILURES), MAX_WAIT_S)
            since_s = (now - _dt.datetime.fromisoformat(last)).total_seconds()
            worst = max(worst, wait_s - since_s)
        return worst

    def _rehash_if_needed(self, name: str, password: str) -> None:
        row = self.conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        if row and _hasher.check_needs_rehash(row[0]):  # the library's recommended cost went up
            with self.history.write() as conn:
                conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (_hasher.hash(password), name))

    def start_session(self, user: User, *, lifetime_s: float = SESSION_LIFETIME_S) -> tuple[str, WebSession]:
        """A new session: the token for the cookie (only its SHA-256 is stored) and the session."""
        token = secrets.token_urlsafe(32)
        now = self.now()
        session = WebSession(user, _iso(now), _iso(now + _dt.timedelta(seconds=lifetime_s)),
                             secrets.token_urlsafe(32))
        with self.history.write() as conn:
            conn.execute("DELETE FROM web_sessions WHERE expires_utc <= ?", (_iso(now),))
            conn.execute(
                "INSERT INTO web_sessions (token_sha256, user_id, created_utc, expires_utc, csrf_token) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_sha256(token), user.id, session.created_utc, session.expires_utc, session.csrf_token),
            )
        return token, session

    def session(self, token: str) -> WebSession | None:
        """The live session of this cookie token: None when unknown, expired or the user is disabled."""
        row = self.conn.execute(
            f"SELECT s.created_utc, s.expires_utc, s.csrf_token, {_SESSION_USER_COLUMNS} "
            "FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_sha256 = ?",
            (token_sha256(token),),
        ).fetchone()
        if row is None or row[1] <= _iso(self.now()):
            return None
        user = _user(row[3:])
        return None if user.disabled else WebSession(user, row[0], row[1], row[2])

    def end_session(self, token: str) -> None:
        with self.history.write() as conn:
            conn.execute("DELETE FROM web_sessions WHERE token_sha256 = ?", (token_sha256(token),))

    # ----------------------------------------------------------------------- groups and who sees whom

    def groups(self) -> list[str]:
        """Every group: created in the app, or with members or trainers (groups made with `roleplay group`)."""
        rows = self.conn.execute(
            "SELECT group_name FROM training_groups UNION SELECT group_name FROM group_members "
            "UNION SELECT group_name FROM trainer_groups ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    def create_group(self, group: str) -> None:
        group = group.strip()
        if not _NAME.match(group):
            raise AccountError("group-invalid", f"group name {group!r}: use letters, digits, spaces, . ' or -")
        with self.history.write() as conn:
            conn.execute("INSERT INTO training_groups VALUES (?, ?) ON CONFLICT DO NOTHING", (group, _iso(self.now())))

    def group_trainees(self, group: str) -> list[str]:
        return self.history.group(group)

    def set_group_trainee(self, group: str, trainee: str, *, member: bool) -> None:
        self.history.set_group(group, [trainee], remove=not member)

    def group_trainers(self, group: str) -> list[str]:
        rows = self.conn.execute("SELECT trainer FROM trainer_groups WHERE group_name = ? ORDER BY trainer", (group,))
        return [r[0] for r in rows.fetchall()]

    def set_group_trainer(self, group: str, trainer: str, *, member: bool) -> None:
        if member and self._existing(trainer).role != "trainer":
            raise AccountError("not-a-trainer", f"{trainer!r} is not a trainer")
        with self.history.write() as conn:
            if member:
                conn.execute("INSERT INTO trainer_groups VALUES (?, ?) ON CONFLICT DO NOTHING", (trainer, group))
            else:
                conn.execute("DELETE FROM trainer_groups WHERE trainer = ? AND group_name = ?", (trainer, group))

    def visible_trainees(self, user: User) -> set[str] | None:
        """Whose calls `user` may see: None for an admin (everyone), else a set of trainee names."""
        if user.role == "admin":
            return None
        if user.role == "trainer":
            rows = self.conn.execute(
                "SELECT DISTINCT m.trainee FROM group_members m JOIN trainer_groups t ON t.group_name = m.group_name "
                "WHERE t.trainer = ?",
                (user.name,),
            ).fetchall()
            return {r[0] for r in rows}
        return {user.name}

    def may_see(self, user: User, trainee: str) -> bool:
        visible = self.visible_trainees(user)
        return visible is None or trainee in visible

    def call_trainee(self, call_id: int) -> str | None:
        """The trainee of a recorded call (None when there is no such call)."""
        row = self.conn.execute("SELECT trainee FROM calls WHERE id = ?", (call_id,)).fetchone()
        return row[0] if row else None

    # ----------------------------------------------------------------------- access log

    def log_access(self, who: str, action: str, *, call_id: int | None = None, target: str | None = None,
                   detail: str = "") -> None:
        with self.history.write() as conn:
            conn.execute(
                "INSERT INTO access_log (who, at_utc, action, call_id, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (who, _iso(self.now()), action, call_id, target, detail),
            )

    def access_log(self, *, limit: int = ACCESS_LOG_LIMIT) -> list[AccessEntry]:
        """The newest entries first."""
        rows = self.conn.execute(
            "SELECT id, who, at_utc, action, call_id, target, detail FROM access_log ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [AccessEntry(*r) for r in rows]

    # ----------------------------------------------------------------------- readiness marks

    def mark_ready(self, trainee: str, *, by: str, ready: bool = True, note: str = "") -> None:
        """A trainer's judgement that `trainee` is ready (or, with ready=False, no longer); the newest counts."""
        with self.history.write() as conn:
            conn.execute(
                "INSERT INTO readiness_marks (trainee, ready, marked_by, marked_utc, note) VALUES (?, ?, ?, ?, ?)",
                (trainee, int(ready), by, _iso(self.now()), note.strip()),
            )

    def readiness_mark(self, trainee: str) -> ReadinessMark | None:
        row = self.conn.execute(
            "SELECT trainee, ready, marked_by, marked_utc, note FROM readiness_marks WHERE trainee = ? "
            "ORDER BY id DESC LIMIT 1",
            (trainee,),
        ).fetchone()
        return ReadinessMark(row[0], bool(row[1]), row[2], row[3], row[4]) if row else None

    # ----------------------------------------------------------------------- settings

    def setting(self, name: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def set_setting(self, name: str, value: str) -> None:
        with self.history.write() as conn:
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise AccountError(f"{what}-invalid", f"{what} {value!r}: expected one of {', '.join(allowed)}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError("password-short", f"a password needs at least {MIN_PASSWORD_CHARS} characters")
