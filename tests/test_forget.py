"""`roleplay forget`: recordings, transcripts, reports, calibrations and history rows removed for good.

Real SQLite files (and a real PostgreSQL server when installed) and real call directories written by
`CallWriter`; no model."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roleplay.app.forget import cmd_forget, plan_forget
from roleplay.audio.clip import Audio, save_wav
from roleplay.cli.main import main as cli_main
from roleplay.core.advice import ADVICE_IDS
from roleplay.history.store import MIGRATIONS, History
from roleplay.recording.calldir import CallWriter

try:  # the module-scoped fixture that runs a real server in a temporary directory
    from test_history_postgres import server
except (ImportError, pytest.skip.Exception):  # psycopg missing: the PostgreSQL test skips itself

    @pytest.fixture(scope="module")
    def server():
        pytest.skip("psycopg is not installed")

RATE_HZ = 16_000


def analysis(*, trainee: str, call_id: str | None, call_dir: Path | None = None) -> dict:
    call = {"scenario": "nl-visite-derde-keer", "trainee": trainee, "outcome": "calmed", "mode": "test"}
    if call_id:
        call["call_id"] = call_id
    return {
        "schema": "roleplay-analysis",
        "language": "nl",
        "duration_s": 1.0,
        "source": {"call_dir": str(call_dir)} if call_dir else {"trainee": f"/elsewhere/{trainee}.wav"},
        "call": call,
        "anger": [],
        "advice": [{"id": i, "verdict": "pass", "figures": {}} for i in ADVICE_IDS],
    }


def make_call(directory: Path, trainee: str) -> Path:
    """A small real call directory with a transcript (analysis.json) and a report beside it."""
    t = np.arange(RATE_HZ // 2) / RATE_HZ
    with CallWriter(directory, rate_hz=RATE_HZ, meta={"trainee": trainee, "mode": "test"}) as w:
        w.append("caller", (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        w.append("trainee", (0.1 * np.sin(2 * np.pi * 180 * t)).astype(np.float32))
        w.event("call-start", t_s=0.0, anger=6.0)
    (directory / "analysis.json").write_text(f'{{"text": "transcript of {trainee}"}}')
    (directory / "report.html").write_text(f"<p>report of {trainee}</p>")
    return directory


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """Two trainees' calls in the history (one row from before a v1 -> v2 migration, so a .v1.bak
    holds it too), anna's calibration, groups and a review."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where calibration_path() looks
    db = tmp_path / "history.sqlite3"
    conn = sqlite3.connect(db)  # a v1 database with one old call of anna's
    for statement in MIGRATIONS[1][0].split(";"):
        if statement.strip():
            conn.execute(statement)
    old = make_call(tmp_path / "calls" / "anna-old", "anna")
    conn.execute("INSERT INTO calls (call_key, trainee, scenario, started_utc, recorded_utc, call_dir) "
                 "VALUES (?, 'anna', 'nl-visite-derde-keer', '2026-01-02T09:00:00+00:00', "
                 "'2026-01-02T09:00:00+00:00', ?)", (f"dir:{old.resolve()}", str(old.resolve())))
    conn.execute("INSERT INTO verdicts VALUES (1, 'greeting', 'pass')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    calls = {"anna-old": old}
    with History(db) as h:  # migrates, keeping history.sqlite3.v1.bak
        for name, trainee, day in (("anna-1", "anna", 20), ("anna-2", "anna", 25), ("bob-1", "bob", 26)):
            calls[name] = make_call(tmp_path / "calls" / name, trainee)
            h.record(analysis(trainee=trainee, call_id=name, call_dir=calls[name]), calls[name],
                     started_utc=f"2026-11-{day}T09:00:00+00:00")
        h.add_review(h.call_id_for(call_key="id:anna-1"), item="greeting", verdict="fail", note="too fast", by="tr")
        h.set_group("morning", ["anna", "bob"])
    calibration = tmp_path / "data" / "roleplay" / "trainees" / "anna" / "calibration.wav"
    calibration.parent.mkdir(parents=True)
    save_wav(calibration, Audio(np.zeros(RATE_HZ, np.float32), RATE_HZ))
    return {"db": db, "calls": calls, "calibration": calibration, "root": tmp_path}


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def raw_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


def test_forget_trainee_removes_everything_of_theirs_for_good(world, capsys):
    db, calls = world["db"], world["calls"]
    assert b"anna" in raw_bytes(db)
    assert cli_main(["forget", "--trainee", "anna", "--db", str(db), "--yes"]) == 0
    out = capsys.readouterr().out
    for name in ("anna-old", "anna-1", "anna-2"):
        assert not calls[name].exists() and str(calls[name]) in out
    assert not world["calibration"].parent.exists() and "calibration" in out
    assert "Removed 4 directories" in out and "history.sqlite3.v1.bak" in out
    # bob is untouched: his recording, his rows, his group membership
    assert (calls["bob-1"] / "caller.wav").is_file()
    assert rows(db, "SELECT trainee FROM calls") == [("bob",)]
    assert rows(db, "SELECT count(*) FROM verdicts") == [(len(ADVICE_IDS),)]
    assert rows(db, "SELECT count(*) FROM reviews") == [(0,)]
    assert rows(db, "SELECT group_name, trainee FROM group_members") == [("morning", "bob")]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    # for good: not in the database file, its write-ahead log, or the migration backup
    data = raw_bytes(db)
    assert b"anna" not in data and b"too fast" not in data
    assert rows(db.with_name("history.sqlite3.v1.bak"), "SELECT count(*) FROM calls") == [(0,)]


def test_forget_one_call_directory(world, capsys):
    db, calls = world["db"], world["calls"]
    assert cli_main(["forget", "--call", str(calls["anna-1"]), "--db", str(db), "--yes"]) == 0
    assert not calls["anna-1"].exists() and calls["anna-2"].exists() and world["calibration"].exists()
    assert rows(db, "SELECT call_key FROM calls ORDER BY id") == [("dir:" + str(calls["anna-old"].resolve()),),
                                                                 ("id:anna-2",), ("id:bob-1",)]
    assert "reviews" in capsys.readouterr().out  # its review went with it
    # a call directory that was never recorded in the history is removed all the same
    unrecorded = make_call(world["root"] / "calls" / "never-analysed", "anna")
    assert cli_main(["forget", "--call", str(unrecorded), "--db", str(db), "--yes"]) == 0
    assert not unrecorded.exists() and "no history rows" in capsys.readouterr().out
    # removed by hand earlier: the rows still go
    import shutil

    shutil.rmtree(calls["anna-2"])
    assert cli_main(["forget", "--call", str(calls["anna-2"]), "--db", str(db), "--yes"]) == 0
    assert rows(db, "SELECT count(*) FROM calls WHERE trainee = 'anna'") == [(1,)]


def test_forget_older_than_keeps_recent_calls(world, capsys):
    db, calls = world["db"], world["calls"]
    from datetime import UTC, datetime

    plan = plan_forget(older_than_days=3, db=db, now=datetime(2026, 11, 27, tzinfo=UTC))
    assert sorted(c.directory.name for c in plan.calls) == ["anna-1", "anna-old"]  # not the 25th, 26th
    assert plan.calibration_dirs == ()  # a calibration is the trainee's, not a call's
    assert cli_main(["forget", "--older-than", "100000", "--db", str(db), "--yes"]) == 0
    assert "Nothing to remove" in capsys.readouterr().out
    assert all(d.exists() for d in calls.values())
    assert cli_main(["forget", "--older-than", "0", "--db", str(db), "--yes"]) == 0
    assert not any(d.exists() for d in calls.values())
    assert rows(db, "SELECT count(*) FROM calls") == [(0,)] and world["calibration"].exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _args(**kw):
    import argparse

    base = {"trainee": None, "call": None, "older_than": None, "db": None, "yes": False}
    return argparse.Namespace(**{**base, **kw})


def test_forget_asks_first_and_refuses_without_a_terminal(world):
    db, calls = world["db"], world["calls"]
    out = io.StringIO()
    assert cmd_forget(_args(trainee="anna", db=str(db)), out, stdin=_Terminal("n\n")) == 1
    assert "Remove these for good? [y/N]" in out.getvalue() and "Nothing removed" in out.getvalue()
    assert calls["anna-1"].exists() and rows(db, "SELECT count(*) FROM calls") == [(4,)]
    r = subprocess.run([sys.executable, "-m", "roleplay", "forget", "--trainee", "anna", "--db", str(db)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                       env={**__import__("os").environ, "XDG_DATA_HOME": str(world["root"] / "data")})
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "--yes" in r.stderr and "4 directories and 3 history calls" in r.stderr
    assert calls["anna-1"].exists() and world["calibration"].exists()
    assert cmd_forget(_args(trainee="anna", db=str(db)), io.StringIO(), stdin=_Terminal("ja\n")) == 0
    assert not calls["anna-1"].exists()


@pytest.mark.parametrize("argv, fragment", [
    (["--trainee", "zoe"], "nothing recorded for trainee 'zoe'"),
    (["--call", "{root}/calls"], "calls: not a call directory"),
    (["--call", "{root}/no-such-call"], "no-such-call: no such call directory"),
    (["--trainee", ""], "expected a trainee's name"),
])
def test_forget_bad_targets_are_one_line_and_remove_nothing(world, capsys, argv, fragment):
    before = sorted(p for p in world["root"].rglob("*"))
    code = cli_main(["forget", *[a.format(root=world["root"]) for a in argv], "--db", str(world["db"]), "--yes"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
    if argv[0] == "--trainee" and argv[1]:
        assert "anna, bob" in err  # what was expected: the known trainees
    assert sorted(p for p in world["root"].rglob("*")) == before


def test_forget_bad_cli_values_are_usage_errors(capsys):
    for argv in (["forget"], ["forget", "--older-than", "-1"], ["forget", "--older-than", "soon"],
                 ["forget", "--trainee", "a", "--call", "b"]):
        with pytest.raises(SystemExit) as caught:
            cli_main(argv)
        assert caught.value.code == 2
        assert "error:" in capsys.readouterr().err


def test_forget_leaves_what_is_not_a_call_directory(world, capsys):
    db = world["db"]
    precious = world["root"] / "my-documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("not a call")
    own_audio = world["root"] / "anna-reading.wav"
    save_wav(own_audio, Audio(np.zeros(100, np.float32), RATE_HZ))
    with History(db) as h:
        # a history row pointing at a directory that is no call (moved, or edited by hand) ...
        h.record(analysis(trainee="anna", call_id="odd"), precious)
        # ... and a call analysed from the user's own loose file
        h.record({**analysis(trainee="anna", call_id=None), "source": {"trainee": str(own_audio)}}, None)
    assert cli_main(["forget", "--trainee", "anna", "--db", str(db), "--yes"]) == 0
    out = capsys.readouterr().out
    assert (precious / "thesis.txt").is_file() and f"{precious}: not a call directory, left alone" in out
    assert own_audio.is_file() and "audio outside any call directory, left alone" in out
    assert rows(db, "SELECT count(*) FROM calls WHERE trainee = 'anna'") == [(0,)]


def test_a_file_that_cannot_be_removed_rolls_the_history_back(world, monkeypatch, capsys):
    import shutil

    db, calls = world["db"], world["calls"]
    real_rmtree = shutil.rmtree
    seen = []

    def flaky_rmtree(path, *a, **kw):
        seen.append(path)
        if len(seen) == 2:
            raise PermissionError(13, "Permission denied", str(path))
        real_rmtree(path, *a, **kw)

    monkeypatch.setattr(shutil, "rmtree", flaky_rmtree)
    assert cli_main(["forget", "--trainee", "anna", "--db", str(db), "--yes"]) == 1
    assert "Permission denied" in capsys.readouterr().err
    assert rows(db, "SELECT count(*) FROM calls WHERE trainee = 'anna'") == [(3,)]  # nothing half-done
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert cli_main(["forget", "--trainee", "anna", "--db", str(db), "--yes"]) == 0  # running again finishes
    assert rows(db, "SELECT count(*) FROM calls WHERE trainee = 'anna'") == [(0,)]
    assert not any(calls[n].exists() for n in ("anna-old", "anna-1", "anna-2"))


def test_forget_without_a_history_file_creates_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    call = make_call(tmp_path / "call", "anna")
    db = tmp_path / "nowhere" / "history.sqlite3"
    assert cli_main(["forget", "--call", str(call), "--db", str(db), "--yes"]) == 0
    assert not call.exists() and not db.parent.exists()
    assert "(no history)" in capsys.readouterr().out


def test_forget_on_postgresql(server, tmp_path, monkeypatch, capsys):
    import psycopg

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with psycopg.connect(server.format(db="postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS roleplay_forget")
        conn.execute("CREATE DATABASE roleplay_forget")
    url = server.format(db="roleplay_forget")
    calls = {}
    with History(url) as h:
        for name, trainee in (("anna-1", "anna"), ("bob-1", "bob")):
            calls[name] = make_call(tmp_path / name, trainee)
            h.record(analysis(trainee=trainee, call_id=name, call_dir=calls[name]), calls[name])
        h.add_review(h.call_id_for(call_key="id:anna-1"), item="greeting", verdict="pass", note="ok", by=None)
        h.set_group("g", ["anna", "bob"])
    assert cli_main(["forget", "--trainee", "anna", "--db", url, "--yes"]) == 0
    assert "VACUUM" in capsys.readouterr().out
    assert not calls["anna-1"].exists() and calls["bob-1"].exists()
    with History(url) as h:
        assert [r.trainee for r in h.calls()] == ["bob"] and h.group("g") == ["bob"]
        assert h.conn.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0
        assert h.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == len(ADVICE_IDS)


# --------------------------------------------------------------------------- private from the start


@pytest.fixture()
def open_umask():
    """The most permissive umask: what we create must be private by itself, not by the user's umask."""
    import os

    old = os.umask(0)
    yield
    os.umask(old)


def test_call_directory_calibration_and_database_are_owner_only_whatever_the_umask(tmp_path, open_umask):
    import stat

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    call = make_call(tmp_path / "calls" / "c1", "anna")
    assert mode(call) == 0o700
    for name in ("meta.json", "caller.wav", "trainee.wav", "events.jsonl"):
        assert mode(call / name) == 0o600, name  # meta.json was replaced (atomically) at close: still 0600
    save_wav(call / "calibration.wav", Audio(np.zeros(100, np.float32), RATE_HZ))
    assert mode(call / "calibration.wav") == 0o600
    db = tmp_path / "new-data-dir" / "roleplay" / "history.sqlite3"
    with History(db) as h:
        h.record(analysis(trainee="anna", call_id="c1", call_dir=call), call)
        for p in db.parent.iterdir():  # the database, its -wal and -shm
            assert mode(p) == 0o600, p
    assert mode(db.parent) == 0o700
