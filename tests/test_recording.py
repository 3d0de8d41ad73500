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
from roleplay.recording.calldir import CallMeta, CallWriter, load_call, read_events, read_meta
from roleplay.recording.events import CallerLine, CallStart, TraineeTurn, UnknownEvent


def _tone(seconds: float, rate: int = 16000, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_written_call_loads_with_both_tracks_on_one_timeline(tmp_path):
    d = tmp_path / "call"
    with CallWriter(d, rate_hz=16000, meta={"language": "nl", "scenario": "x"}) as w:
        w.event("call-start", t_s=0.0, anger=6)
        w.append("caller", _tone(1.0))
        w.append("trainee", _tone(0.25))
        w.event("anger", t_s=1.0, anger=7, delta=1, reason="interruption")
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
    w.event("caller-stopped", t_s=i * 0.1)
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
    w.event("call-start", t_s=0.0)
    with open(d / "events.jsonl", "a") as f:
        f.write('{"t_s": 1.0, "ty')  # a crash in the middle of a line
    rec = load_call(d)
    assert [e.type for e in rec.events] == ["call-start"]


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


# --------------------------------------------------------------------------- typed events and meta


def test_events_are_typed_and_still_read_like_the_json(tmp_path):
    d = tmp_path / "call"
    with CallWriter(d, rate_hz=16000, meta={"language": "nl"}) as w:
        w.append_both(_tone(0.1), _tone(0.1))
        w.event("caller-line", t_s=0.01234567, end_s=1.5, text="Waar blijft de dokter?", anger=6.5)
        w.write(TraineeTurn(t_s=2.0, end_s=3.0, heard="ja", behaviours=("let-vent",)))
    lines = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    assert lines[0] == {"t_s": 0.0123, "type": "caller-line", "end_s": 1.5, "text": "Waar blijft de dokter?",
                        "anger": 6.5}  # t_s rounded to 0.1 ms as before; fields not given are left out
    assert lines[1]["behaviours"] == ["let-vent"]
    line, turn = load_call(d).events
    assert isinstance(line, CallerLine) and line.text == "Waar blijft de dokter?" and line.situation is None
    assert isinstance(turn, TraineeTurn) and turn.behaviours == ("let-vent",)
    assert line["type"] == "caller-line" and line.get("situation") is None and "anger" in line  # the dict view


@pytest.mark.parametrize("type_, fields, message", [
    ("caller-lines", {"end_s": 1.0, "text": "x"}, "unknown event type 'caller-lines'"),
    ("caller-line", {"end_s": 1.0, "txt": "x"}, "unknown field `txt`"),
    ("anger", {"anger": 7.0, "reason": "x"}, "missing field `delta`"),
    ("anger", {"anger": "7", "delta": 1.0, "reason": "x"}, "expected number"),
    ("call-end", {"outcome": "bye"}, "'bye' is not one of"),
    ("trainee-turn", {"end_s": 1.0, "ends_call": 1}, "expected boolean"),
])
def test_a_bad_event_raises_before_anything_is_written(tmp_path, type_, fields, message):
    d = tmp_path / "call"
    with CallWriter(d, rate_hz=16000, meta={}) as w, pytest.raises(ValueError, match=message):
        w.event(type_, t_s=0.5, **fields)
    assert (d / "events.jsonl").read_text() == ""


def test_meta_is_typed_and_checked_when_written(tmp_path):
    d = tmp_path / "call"
    with pytest.raises(ValueError, match="unknown field `scenaio`"):
        CallWriter(d, rate_hz=16000, meta={"scenaio": "x"})
    w = CallWriter(tmp_path / "call2", rate_hz=16000, meta={"scenario": "x", "needs": ["greeting"]})
    with pytest.raises(ValueError, match="anger_peak: expected number"):
        w.update_meta(anger_peak="high")
    w.close(outcome="calmed")
    meta = read_meta(tmp_path / "call2")
    assert isinstance(meta, CallMeta) and meta.needs == ("greeting",) and meta.outcome == "calmed"
    assert meta.anger_peak is None and meta["needs"] == ["greeting"] and meta.get("anger_peak") is None


def test_read_meta_keeps_unknown_keys_and_refuses_what_is_not_a_call(tmp_path):
    d = tmp_path / "call"
    with CallWriter(d, rate_hz=16000, meta={}) as w:
        w.append_both(_tone(0.1), _tone(0.1))
    data = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps({**data, "from_the_future": [1, 2]}))
    meta = read_meta(d)
    assert meta.extra == {"from_the_future": [1, 2]} and meta.to_dict()["from_the_future"] == [1, 2]
    (d / "meta.json").write_text(json.dumps({**data, "rate_hz": "16000"}))
    with pytest.raises(InputError, match=r"meta.json: not a roleplay call's meta.json .*rate_hz: expected integer"):
        read_meta(d)
    with pytest.raises(InputError, match="no such directory"):
        read_meta(tmp_path / "nowhere")


def test_an_old_reader_keeps_unknown_and_unfitting_events(tmp_path):
    d = tmp_path / "call"
    with CallWriter(d, rate_hz=16000, meta={}) as w:
        w.append_both(_tone(0.1), _tone(0.1))
        w.event("call-start", t_s=0.0)
    with open(d / "events.jsonl", "a") as f:
        f.write('{"t_s": 0.5, "type": "caller-sighs", "depth": 3}\n')  # a type from a newer version
        f.write('{"t_s": 0.6, "type": "anger", "anger": 7, "delta": 1, "reason": "x", "why": "y"}\n')
    start, sigh, anger = read_events(d)
    assert isinstance(start, CallStart)
    assert isinstance(sigh, UnknownEvent) and sigh.type == "caller-sighs" and sigh["depth"] == 3
    assert isinstance(anger, UnknownEvent) and anger.type == "anger" and anger.to_dict()["why"] == "y"
    (d / "events.jsonl").write_text('[1, 2]\n')
    with pytest.raises(InputError, match="expected an event object"):
        read_events(d)
