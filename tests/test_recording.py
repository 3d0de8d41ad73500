"""The call directory format: incremental writing, cut-off calls, atomic metadata."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from roleplay.core.errors import InputError
from roleplay.recording.calldir import CallWriter, load_call


def _tone(seconds: float, rate: int = 16000, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_written_call_loads_with_both_tracks_on_one_timeline(tmp_path):
    d = tmp_path / "call"
    with CallWriter(d, rate_hz=16000, meta={"language": "nl", "scenario": "x"}) as w:
        w.event("call-start", t_s=0.0, anger=6)
        w.append("caller", _tone(1.0))
        w.append("trainee", _tone(0.25))
        w.event("anger", t_s=1.0, anger=7, reason="interruption")
    rec = load_call(d)
    assert rec.meta["status"] == "complete" and not rec.cut_off
    assert len(rec.caller.samples) == len(rec.trainee.samples) == 16000  # padded to one timeline
    assert np.allclose(rec.caller.samples[:100], _tone(1.0)[:100], atol=1 / 16000)
    assert [e["type"] for e in rec.events] == ["call-start", "anger"]
    assert oct(d.stat().st_mode & 0o777) == "0o700"


def test_exception_inside_marks_the_call_aborted_and_keeps_audio(tmp_path):
    d = tmp_path / "call"
    with pytest.raises(RuntimeError), CallWriter(d, rate_hz=16000, meta={}) as w:
        w.append_both(_tone(0.5), _tone(0.5))
        raise RuntimeError("device gone")
    rec = load_call(d)
    assert rec.meta["outcome"] == "aborted" and rec.cut_off
    assert rec.caller.duration_s == pytest.approx(0.5)


def test_refuses_to_overwrite_an_existing_call(tmp_path):
    d = tmp_path / "call"
    d.mkdir()
    (d / "meta.json").write_text("{}")
    with pytest.raises(InputError, match="already exists"):
        CallWriter(d, rate_hz=16000, meta={})


WRITER = """
import sys, time, numpy as np
from roleplay.recording.calldir import CallWriter
w = CallWriter(sys.argv[1], rate_hz=16000, meta={"language": "nl"})
block = (0.2 * np.sin(np.arange(1600) / 5)).astype(np.float32)
i = 0
while True:
    w.append_both(block, block * 0.5)
    w.event("tick", t_s=i * 0.1)
    i += 1
    if i == 20:
        print("ready", flush=True)
    time.sleep(0.005)
"""


def test_sigkill_mid_call_leaves_an_analysable_recording(tmp_path):
    d = tmp_path / "call"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(d)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rec = load_call(d)
    assert rec.cut_off and rec.meta["status"] == "recording"
    assert rec.caller.duration_s >= 2.0  # at least the 20 blocks written before "ready"
    assert abs(rec.caller.duration_s - rec.trainee.duration_s) <= 0.1 + 1e-9
    assert len(rec.events) >= 20


def test_half_written_event_line_is_skipped(tmp_path):
    d = tmp_path / "call"
    w = CallWriter(d, rate_hz=16000, meta={})
    w.append_both(_tone(0.1), _tone(0.1))
    w.event("ok", t_s=0.0)
    with open(d / "events.jsonl", "a") as f:
        f.write('{"t_s": 1.0, "ty')  # a crash in the middle of a line
    rec = load_call(d)
    assert [e["type"] for e in rec.events] == ["ok"]


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "meta.json").unlink(), "no meta.json"),
    (lambda d: (d / "meta.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "caller.wav").write_bytes(b"garbage"), "not a roleplay call track"),
    (lambda d: [(d / f).unlink() for f in ("caller.wav", "trainee.wav")], "neither caller.wav nor trainee.wav"),
])
def test_damaged_call_directories_give_one_line_errors(tmp_path, damage, message):
    d = tmp_path / "call"
    with CallWriter(d, rate_hz=16000, meta={}) as w:
        w.append_both(_tone(0.1), _tone(0.1))
    damage(d)
    with pytest.raises(InputError, match=message) as err:
        load_call(d)
    assert "\n" not in str(err.value)


def test_meta_is_valid_json_at_every_moment(tmp_path):
    d = tmp_path / "call"
    w = CallWriter(d, rate_hz=16000, meta={"scenario": "s"})
    for i in range(20):
        w.update_meta(anger_peak=i)
        assert json.loads((d / "meta.json").read_text())["anger_peak"] == i
    w.close(outcome="calmed")
    assert json.loads((d / "meta.json").read_text())["outcome"] == "calmed"
