"""SIGKILL at random moments of a demo call and of an analysis: the call directory stays
analysable, the history database intact, and a half-written report never replaces a good one.
(The live drill and the call writer have their own kill tests in test_live.py and test_recording.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from roleplay.recording.calldir import load_call

pytestmark = pytest.mark.model
SCENARIO = "nl-visite-derde-keer"


def _env(db: Path) -> dict[str, str]:
    return {**os.environ, "ROLEPLAY_DB": str(db)}


def _roleplay(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roleplay", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def _killed_after(args: list[str], env: dict[str, str], delay_s: float,
                  after: Callable[[], bool] | None = None) -> bool:
    """Run `roleplay ARGS` and SIGKILL it `delay_s` after `after()` first holds (after the start
    if None); False if it had finished by then."""
    proc = subprocess.Popen([sys.executable, "-m", "roleplay", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while after is not None and not after():
            if proc.poll() is not None:
                return False
            time.sleep(0.01)
        proc.wait(timeout=delay_s)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        return True


def _intact(db: Path) -> bool:
    if not db.exists():
        return True
    with sqlite3.connect(db) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One whole demo call (poor trainee: short), and how long its process took."""
    base = tmp_path_factory.mktemp("kill")
    db = base / "history.sqlite3"
    out = base / "complete"
    began = time.monotonic()
    done = _roleplay(["demo", "--scenario", SCENARIO, "--trainee", "poor", "--out", str(out)], _env(db))
    wall_s = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    return out, db, wall_s


def _has(path: Path, text: str | None = None) -> Callable[[], bool]:
    return lambda: path.exists() and (text is None or text in path.read_text(encoding="utf-8", errors="replace"))


def test_demo_killed_at_random_moments_leaves_analysable_calls(finished, tmp_path) -> None:
    """The demo writes its call in about a second (3.5-4.5 s into the process here), then
    analyses it: kills at random moments inside the call, inside the analysis, and anywhere."""
    _complete, db, wall_s = finished
    env = _env(db)
    rng = random.Random(11)
    outcomes = []
    for k, (phase, delay_s) in enumerate([
        ("call", rng.uniform(0.0, 0.8)), ("call", rng.uniform(0.0, 0.8)),
        ("analysis", rng.uniform(0.5, 3.0)), ("anywhere", rng.uniform(0.5, wall_s)),
    ]):
        out = tmp_path / f"killed-{k}"
        after = {"call": _has(out / "meta.json"), "analysis": _has(out / "events.jsonl", "call-end"),
                 "anywhere": None}[phase]
        killed = _killed_after(["demo", "--scenario", SCENARIO, "--trainee", "poor", "--out", str(out)],
                               env, delay_s, after)
        assert killed, f"the demo ended before the kill ({phase} + {delay_s:.1f} s)"
        assert _intact(db), f"history damaged by a kill ({phase} + {delay_s:.1f} s)"
        if not (out / "meta.json").exists():
            outcomes.append(f"{phase} + {delay_s:.1f} s: before the call started")
            continue
        rec = load_call(out)  # loads, whatever moment it was cut at
        report = out / "report.html"
        if report.exists():  # written only whole
            assert report.read_text(encoding="utf-8").rstrip().endswith("</html>")
        if (out / "analysis.json").exists():
            json.loads((out / "analysis.json").read_text(encoding="utf-8"))
        done = _roleplay(["analyse", str(out)], env)
        spoke = rec.caller.duration_s > 0.5
        assert done.returncode == 0 or (not spoke and "no speech" in done.stderr), done.stderr
        assert "Traceback" not in done.stderr
        if done.returncode == 0 and rec.cut_off:
            assert json.loads((out / "analysis.json").read_text(encoding="utf-8"))["call"]["cut_off"]
        outcomes.append(f"{phase} + {delay_s:.1f} s: cut_off={rec.cut_off}, {rec.caller.duration_s:.1f} s "
                        f"recorded, analyse exit {done.returncode}")
    print(f"demo takes {wall_s:.1f} s;", "; ".join(outcomes))
    assert any("cut_off=True" in o for o in outcomes)  # at least one kill landed inside a call


def test_analysis_killed_never_replaces_a_good_report_with_half_a_one(finished, tmp_path) -> None:
    complete, db, _wall_s = finished
    call = tmp_path / "call"
    shutil.copytree(complete, call)
    env = _env(db)
    audio = {name: _digest(call / name) for name in ("caller.wav", "trainee.wav", "events.jsonl")}
    began = time.monotonic()
    done = _roleplay(["analyse", str(call), "--html", str(call / "report.html"), "--quiet"], env)
    analyse_s = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    rng = random.Random(5)
    for delay_s in sorted(rng.uniform(0.3, 1.0) * analyse_s for _ in range(4)):
        before = (call / "report.html").read_bytes()
        _killed_after(["analyse", str(call), "--html", str(call / "report.html"), "--quiet"], env, delay_s)
        after = (call / "report.html").read_bytes()
        assert after == before or after.decode("utf-8").rstrip().endswith("</html>"), delay_s
        json.loads((call / "analysis.json").read_text(encoding="utf-8"))
        assert _intact(db)
        assert {name: _digest(call / name) for name in audio} == audio  # the recording is never touched
    assert not load_call(call).cut_off
