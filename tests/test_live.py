"""`roleplay drill` end to end over virtual devices, with a scripted trainee speaking into the
virtual microphone (espeak-ng) while the loudspeaker leaks into it (module-loopback)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import xdg_data_home

from roleplay.analysis.phrases import normalise
from roleplay.app.drill import drill_and_analyse
from roleplay.audio.virtual import virtual_devices
from roleplay.bench.live import ScriptedTrainee, espeak, prepare_trainee
from roleplay.recording.calldir import load_call
from roleplay.session.live import DrillSettings, delay_summary

pytestmark = pytest.mark.model
RATE_HZ = 16_000
SCENARIO = "nl-visite-derde-keer"
REPLIES = (
    ("Ik begrijp dat u ongerust bent.", "after", 1.0),
    ("Maar meneer, luister nu eens even naar mij.", "interrupt", 1.2),
    ("Ik stuur nu een dokter naar u toe, binnen een uur is hij er.", "after", 0.6),
    # a pause inside the turn: the early recognition covers the first sentence, the rest is added
    ("Dat is heel vervelend voor u. | Ik begrijp het.", "after", 0.5),
)


@pytest.fixture(scope="module")
def xdg(tmp_path_factory):
    with xdg_data_home(tmp_path_factory.mktemp("xdg")) as data:
        prepare_trainee("tester")
        yield data


class _Terminal(io.StringIO):
    """What a terminal would show: the status line is drawn only on a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def call(vd, xdg, transcriber, tmp_path_factory):
    for attempt in (1, 2):
        out = tmp_path_factory.mktemp("drill") / "call"
        trainee = ScriptedTrainee(vd, out, replies=REPLIES)
        began = time.monotonic()
        # a laptop without a headset: the caller's voice leaks into the microphone, 12 dB down
        with vd.loopback(gain_db=-12.0):
            terminal = _Terminal()
            result = drill_and_analyse(scenario_id=SCENARIO, trainee="tester", out_dir=out,
                                       transcriber=transcriber, on_ready=trainee.on_ready,
                                       settings=DrillSettings(max_caller_lines=5, seed=3),
                                       status_out=terminal).call
        trainee.stop()
        print(f"drill took {time.monotonic() - began:.1f} s; lag {result.lag}; "
              f"delays {delay_summary(result.reply_delays)}")
        # Once in a few full-suite runs PortAudio stopped the stream mid-call on the loaded virtual
        # server (the server itself stayed up); the drill now opens it again and goes on (tested in
        # test_devices), but the timing checks here want an undisturbed call: one more attempt.
        restarted = "audio-restart" in (out / "events.jsonl").read_text()
        if (result.outcome != "aborted" and not restarted) or attempt == 2:
            break
        print(f"attempt 1 was cut off or restarted by the audio device ({result}); running the drill once more")
    trainee.terminal = terminal.getvalue()
    return result, trainee


def _events(directory: Path) -> list[dict]:
    return [json.loads(x) for x in (directory / "events.jsonl").read_text().splitlines() if x]


def _onset(track: np.ndarray, reference: np.ndarray, *, near_s: float, within_s: float = 1.5) -> float:
    """Where `reference` starts in `track`, searched near `near_s` (envelope correlation)."""
    from scipy.signal import correlate

    a = max(0, int((near_s - within_s) * RATE_HZ))
    b = min(len(track), int((near_s + within_s) * RATE_HZ) + len(reference))
    window = track[a:b].astype(np.float64)
    scores = correlate(window, reference.astype(np.float64), mode="valid")
    return (a + int(np.argmax(np.abs(scores)))) / RATE_HZ


def test_call_directory_is_complete_and_analysed(call) -> None:
    result, _ = call
    d = result.directory
    for name in ("meta.json", "caller.wav", "trainee.wav", "events.jsonl", "calibration.wav",
                 "analysis.json", "report.html"):
        assert (d / name).is_file(), name
    rec = load_call(d)
    assert not rec.cut_off and rec.meta["mode"] == "live"
    assert result.outcome in ("time-limit", "calmed", "caller-hung-up")
    assert result.lag.confidence > 0.5 and 0 < result.lag.lag_ms < 600
    assert rec.caller.duration_s == pytest.approx(rec.trainee.duration_s, abs=0.01)
    assert result.caller_lines >= 4


def _found(script: str, heard: str) -> float:
    """Share of the script's characters found, in order, in what was heard (normalised): robust
    to Whisper's spelling of misheard words ("doktor"), unlike word overlap."""
    from difflib import SequenceMatcher

    a, b = normalise(script), normalise(heard)
    if not a:
        return 0.0
    return sum(m.size for m in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()) / len(a)


def test_status_line_follows_the_call(call) -> None:
    """The terminal line while the call runs: elapsed time, who speaks, the microphone level and
    the caller's anger, redrawn in place; the anger shown follows the event log."""

    result, trainee = call
    shown = [m.groupdict() for m in re.finditer(
        r"\r (?P<min>\d+):(?P<sec>\d\d)  (?P<who>caller speaking|trainee speaking|listening)\s+"
        r"mic \[#*\s*\]\s+(?P<db>-?\d+\.\d) dBFS  anger\s+(?P<anger>\d+\.\d)", trainee.terminal)]
    assert len(shown) > 20
    assert {s["who"] for s in shown} == {"caller speaking", "trainee speaking", "listening"}
    elapsed = [int(s["min"]) * 60 + int(s["sec"]) for s in shown]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 20
    levels = {s["who"]: [] for s in shown}
    for s in shown:
        levels[s["who"]].append(float(s["db"]))
    # the trainee's voice is loud in the microphone; between turns only the echo gate's leftovers
    assert np.median(levels["trainee speaking"]) > np.median(levels["listening"]) + 10
    angers = {float(e["anger"]) for e in _events(result.directory) if "anger" in e}
    assert {float(s["anger"]) for s in shown} <= {round(a, 1) for a in angers}
    assert "caller" in trainee.terminal and "trainee interrupts" in trainee.terminal


def test_trainee_turns_are_recognised_as_well_as_the_clean_clips(call, transcriber) -> None:
    """Whisper base hears espeak poorly even on the clean clip ("Ik begrijp dat ongerust
    bent."), so what the live call heard is held against what the same recognizer makes of the
    clean clip, both scored against the script."""
    from roleplay.session.live import _live_transcriber
    from roleplay.speech.vad import speech_segments

    live_asr = _live_transcriber(transcriber)
    result, trainee = call
    heard = [e["heard"] for e in _events(result.directory) if e["type"] == "trainee-turn" and e["heard"]]
    texts = [p.text for p in trainee.played]
    assert len(heard) >= len(texts) - 1
    clean_scores, live_scores, best_turn = [], [], []
    for said in texts:
        clip = espeak(said)
        clean = " ".join(w.text for w in live_asr.transcribe(clip, speech_segments(clip), language="nl"))
        clean_scores.append(_found(said, clean))
        scores = [_found(said, h) for h in heard]
        live_scores.append(max(scores))
        best_turn.append(int(np.argmax(scores)))
        print(f"{said!r}: clean {clean!r} {clean_scores[-1]:.2f}, live best {live_scores[-1]:.2f}")
    print("heard:", heard)
    # unrelated pairs score up to 0.5 (shared letters), so a line counts as heard when it is best
    # matched by a turn of its own
    assert len(set(best_turn)) >= len(texts) - 1, best_turn
    # 0.75 clean against 0.70-0.75 live in four runs; unrelated text scores 0.2-0.5
    assert np.mean(live_scores) >= np.mean(clean_scores) - 0.2


def test_interruption_detected_on_time_and_caller_reacts(call) -> None:
    result, trainee = call
    events = _events(result.directory)
    rec = load_call(result.directory)
    (cut_in,) = [p for p in trainee.played if p.mode == "interrupt"]
    truth_s = _onset(rec.trainee.samples, espeak(cut_in.text).samples, near_s=cut_in.planned_s)
    detected = [e for e in events if e["type"] == "interruption"]
    assert detected, events
    nearest = min(detected, key=lambda e: abs(e["t_s"] - truth_s))
    print(f"interruption: spoken at {truth_s:.3f} s, detected at {nearest['t_s']:.3f} s")
    assert abs(nearest["t_s"] - truth_s) <= 0.15
    # spoken after a silence, the other replies are no interruptions
    assert len(detected) == 1
    # the caller reacted: the interruption raised the anger, and the next line says so
    angers = [e for e in events if e["type"] == "anger" and e["reason"] == "interruption"]
    assert angers and angers[0]["delta"] > 0
    lines = [e for e in events if e["type"] == "caller-line"]
    after = [e for e in lines if e["t_s"] > nearest["t_s"]]
    assert after and after[0]["situation"] in ("interrupted", "escalating", "abusive", "hanging_up")



def _spoken_and_analysed(call) -> tuple[list, dict, list]:
    result, trainee = call
    rec = load_call(result.directory)
    data = json.loads((result.directory / "analysis.json").read_text())
    spoken = []
    for p in trainee.played:
        clip = espeak(p.text)
        onset = _onset(rec.trainee.samples, clip.samples, near_s=p.planned_s)
        spoken.append((onset, onset + clip.duration_s))
    return spoken, data, trainee.played


def _outside(items: list, spoken: list) -> list:
    return [t for t in items if not any(min(t[1], b + 0.3) - max(t[0], a - 0.3) > 0 for a, b in spoken)]


def test_post_call_analysis_keeps_the_leaking_caller_out_of_the_trainee(call) -> None:
    """Issue 11: the loudspeaker leaks into the microphone at -12 dB. The analysis afterwards has
    no trainee turn where the trainee was silent, says that it removed a leak, and every
    interruption by the caller is one where the caller really talked over the trainee. (xfail
    until 2026-12-01: 3 of 5 quiet runs passed this and the next test; 9 of 9 since the canceller
    follows a path drifting within a second. Under overload, load 18-25 on 2 cores, the drill
    itself breaks: docs/benchmarks.md)"""
    spoken, data, _ = _spoken_and_analysed(call)
    turns = [(t["start_s"], t["end_s"], t["text"]) for t in data["turns"] if t["speaker"] == "trainee"]
    print(f"trainee spoke {[(round(a, 2), round(b, 2)) for a, b in spoken]}; analysed turns {turns}")
    assert _outside(turns, spoken) == []
    assert any("leaks into the trainee's track" in w for w in data["warnings"]), data["warnings"]
    events = _events(call[0].directory)
    # the caller talks over the trainee in a barge-in, and when the drill took a pause inside the
    # trainee's line for its end (the reply-delay race, docs/benchmarks.md): a line that started
    # while the trainee was speaking. Any other caller interruption is the leak's doing.
    over_trainee = [e["t_s"] for e in events if e["type"] == "barge-in"
                    or (e["type"] == "caller-line" and any(a < e["t_s"] < b for a, b in spoken))]
    by_caller = [i["start_s"] for i in data["interruptions"] if i["by"] == "caller"]
    assert all(any(abs(t - b) < 1.0 for b in over_trainee) for t in by_caller), (by_caller, over_trainee)


def test_post_call_analysis_has_no_leaked_backchannel_and_the_cut_in_in_place(call) -> None:
    """Issue 11: no trainee backchannel where the trainee was silent (a 0.25 s one was left where the
    echo moved by 118 ms mid-line), and the trainee's cut-in is the one trainee interruption, on time."""
    spoken, data, played = _spoken_and_analysed(call)
    backchannels = [(b["start_s"], b["end_s"], b["text"]) for b in data["backchannels"] if b["speaker"] == "trainee"]
    assert _outside(backchannels, spoken) == []
    (cut_in,) = [s for s, p in zip(spoken, played, strict=True) if p.mode == "interrupt"]
    by_trainee = [i["start_s"] for i in data["interruptions"] if i["by"] == "trainee"]
    assert by_trainee == [pytest.approx(cut_in[0], abs=0.3)], (by_trainee, cut_in)


def test_recorded_caller_audio_is_what_was_played_on_one_timeline(call) -> None:
    """The loudspeaker leaks into the microphone: the trainee track must hold the caller track's
    audio (correlation), close to where the caller track has it (the measured lag removed).

    The lag measured by the chirp at the start held to a few ms in short streams, but over a
    whole call under CPU load it moved by 60 to 140 ms here after an output underflow (PortAudio
    shifts its output against its input); the offsets and the stream status are printed."""
    result, _ = call
    rec = load_call(result.directory)
    lines = [e for e in _events(result.directory) if e["type"] == "caller-line"]
    offsets = []
    for line in lines[:3]:
        # the first second only: the scripted interruption starts 1.2 s into a line
        a, b = int(line["t_s"] * RATE_HZ), int(min(line["end_s"], line["t_s"] + 1.0) * RATE_HZ)
        played = rec.caller.samples[a:b]
        assert np.max(np.abs(played)) > 0.05  # the caller track holds the line
        found = _onset(rec.trainee.samples, played, near_s=line["t_s"], within_s=0.3)
        heard = rec.trainee.samples[int(found * RATE_HZ) :][: len(played)].astype(np.float64)
        corr = float(np.dot(heard, played) / (np.linalg.norm(heard) * np.linalg.norm(played)))
        offsets.append(found - line["t_s"])
        assert corr > 0.6, (line["text"], corr)  # 0.72-0.9 here: the loopback resamples
    print("echo position against the caller track (ms):", [round(o * 1000, 1) for o in offsets],
          "stream status:", rec.meta.get("stream_status"))
    spread = max(offsets) - min(offsets)
    underflows = (rec.meta.get("stream_status") or {}).get("output_underflows", 0)
    # within the call the echo keeps its place (drift ~0.2 ms/s) unless an output underflow moved
    # it (a fresh-cache CI run: 3 underflows, the first line's echo 50 ms early)
    assert spread <= (0.2 if underflows else 0.02), offsets
    # An output underflow (CPU load) shifts the output against the input after the chirp was
    # measured: 60-140 ms seen here with 1 underflow. Without one the lag must hold.
    assert all(abs(o) <= (0.2 if underflows else 0.02) for o in offsets), (offsets, underflows)


def test_trainee_track_follows_the_echo_after_each_check(call) -> None:
    """Past the point where the live loop checked a caller line's echo (and shifted the trainee
    track if the output had moved), the echo sits where the caller track says, on every line
    played long enough; an underflow after the check can spoil one line."""
    from roleplay.session.live import ECHO_CHECK_S, ECHO_SEARCH_S

    result, _ = call
    rec = load_call(result.directory)
    events = _events(result.directory)
    stopped = [e["t_s"] for e in events if e["type"] == "caller-stopped"]
    checked_s = ECHO_CHECK_S + ECHO_SEARCH_S + 0.2
    offsets = []
    for line in (e for e in events if e["type"] == "caller-line"):
        if any(line["t_s"] < t <= line["end_s"] for t in stopped):
            continue  # interrupted: the trainee's voice is in the window
        a_s = line["t_s"] + checked_s
        b_s = min(line["end_s"], a_s + 1.0)
        if b_s - a_s < 0.5:
            continue
        played = rec.caller.samples[int(a_s * RATE_HZ) : int(b_s * RATE_HZ)]
        offsets.append(_onset(rec.trainee.samples, played, near_s=a_s, within_s=0.3) - a_s)
    shifts = [e for e in events if e["type"] == "echo-offset"]
    print("echo after the check (ms):", [round(o * 1000, 1) for o in offsets], "shifts:", shifts)
    assert len(offsets) >= 2
    underflows = (rec.meta.get("stream_status") or {}).get("output_underflows", 0)
    off = [o for o in offsets if abs(o) > 0.02]
    assert len(off) <= (1 if underflows else 0), offsets


def test_reply_delays_are_logged_with_their_parts(call) -> None:
    result, _ = call
    delays = [e for e in _events(result.directory) if e["type"] == "reply-delay"]
    assert len(delays) >= 3
    print("recognised:", [d["recognised"] for d in delays])
    # most turns are recognised in the pause that ends them; the one with a pause inside it only
    # after it, from the words before the pause plus the rest
    assert [d["recognised"] for d in delays].count("whole") <= 1
    assert "early-rest" in [d["recognised"] for d in delays]
    for d in delays:
        parts = (d["silence_wait_s"] + d["input_s"] + d["recognition_s"] + d["decision_s"]
                 + d["synthesis_s"] + d["output_s"])
        assert d["total_s"] == pytest.approx(parts, abs=0.12), d
        # the pause lasted what its decision asked, or ended sooner when the words that allowed
        # a shorter wait came in after it (never longer than the fixed 0.7 s unless told to)
        assert d["end_reason"], d
        assert d["end_wait_s"] - 0.05 <= d["silence_wait_s"] <= max(d["end_wait_s"], 0.7) + 0.1, d


def test_device_vanishing_mid_call_keeps_the_recording(xdg, transcriber, tmp_path) -> None:
    out = tmp_path / "call"
    with virtual_devices() as second:
        trainee = ScriptedTrainee(second, out, replies=REPLIES[:1])

        def ready() -> None:
            trainee.on_ready()
            threading.Timer(9.0, second.stop).start()

        result = drill_and_analyse(scenario_id=SCENARIO, trainee="tester", out_dir=out,
                                   transcriber=transcriber, on_ready=ready,
                                   settings=DrillSettings(seed=3)).call
    assert result.cut_off and "audio device stopped" in result.message
    rec = load_call(out)
    assert rec.cut_off and rec.meta["status"] == "aborted"
    assert rec.trainee.duration_s > 1.0  # the stream runs slower than the wall clock under load
    assert (out / "report.html").is_file()


def test_killed_drill_leaves_an_analysable_call(vd, xdg, tmp_path) -> None:
    out = tmp_path / "killed"
    env = {**os.environ, **vd.env, "XDG_DATA_HOME": str(xdg)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roleplay", "drill", SCENARIO, "--trainee", "tester", "--out", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            events = out / "events.jsonl"
            if events.exists() and "call-start" in events.read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the drill never started the call")
        vd.play_into_mic(espeak("Huisartsenpost, goedenavond, u spreekt met Anna."), delay_s=0.3)
        while time.monotonic() < deadline:
            if "caller-line" in (out / "events.jsonl").read_text():
                break
            time.sleep(0.1)
        time.sleep(1.5)  # the caller is talking
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rec = load_call(out)
    assert rec.cut_off and rec.meta["status"] == "recording"
    assert rec.caller.duration_s > 1.0 and np.max(np.abs(rec.caller.samples)) > 0.05
    done = subprocess.run([sys.executable, "-m", "roleplay", "analyse", str(out)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "analysis.json").read_text())
    assert '"cut_off": true' in json.dumps(data)  # the analysis knows the call was cut off
    assert any(t["speaker"] == "caller" for t in data["turns"])


def test_calibration_is_recorded_from_the_first_word_to_the_pause(vd) -> None:
    from roleplay.audio.devices import DuplexStream
    from roleplay.bench.live import CALIBRATION_TEXT
    from roleplay.session.live import _Status, record_calibration

    sentence = espeak(CALIBRATION_TEXT)
    with DuplexStream() as stream:
        vd.play_into_mic(sentence, delay_s=1.0)
        got = record_calibration(stream, sentence=CALIBRATION_TEXT, status=_Status(None))
    print(f"calibration: {got.duration_s:.2f} s recorded for {sentence.duration_s:.2f} s spoken")
    assert sentence.duration_s - 0.2 <= got.duration_s <= sentence.duration_s + 1.0


def test_enter_hangs_up_and_a_repeated_drill_compares_the_calls(vd, xdg, tmp_path) -> None:
    """`roleplay drill --repeat 2` with Enter pressed while the caller speaks, in each call: the
    caller stops, each call ends as ended by the trainee and is analysed with its report, and the
    series ends with the two calls side by side (exit 0)."""
    out = tmp_path / "hung-up"
    env = {**os.environ, **vd.env, "XDG_DATA_HOME": str(xdg)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roleplay", "drill", SCENARIO, "--trainee", "tester", "--out", str(out),
         "--repeat", "2", "--pause", "1"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    calls = [out, tmp_path / "hung-up-2"]
    try:
        deadline = time.monotonic() + 240
        for d in calls:
            while not ((d / "events.jsonl").exists() and "call-start" in (d / "events.jsonl").read_text()):
                assert time.monotonic() < deadline and proc.poll() is None, f"{d.name} never started"
                time.sleep(0.1)
            vd.play_into_mic(espeak("Huisartsenpost, goedenavond, u spreekt met Anna."), delay_s=0.3)
            while "caller-line" not in (d / "events.jsonl").read_text():
                assert time.monotonic() < deadline and proc.poll() is None, "the caller never spoke"
                time.sleep(0.1)
            time.sleep(1.0)  # the caller is talking
            proc.stdin.write("\n")
            proc.stdin.flush()
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout + stderr
    assert len(re.findall(r"^Outcome: ended-by-trainee$", stdout, re.M)) == 2, stdout
    assert len(re.findall(r"^Report: .*report\.html$", stdout, re.M)) == 2, stdout
    assert stderr.count("trainee hangs up") == 2
    series = stdout[stdout.index("The series, call by call:"):]
    assert "call 1" in series and "call 2" in series
    assert re.search(r"outcome \(ended = by you\)\s+ended\s+ended", series), series
    assert re.search(r"greeting\s+(pass|FAIL|-)\s+(pass|FAIL|-)", series), series
    for d in calls:
        rec = load_call(d)
        assert not rec.cut_off and rec.meta["outcome"] == "ended-by-trainee"
        events = _events(d)
        (hung,) = [e for e in events if e["type"] == "trainee-hung-up"]
        (stopped,) = [e for e in events if e["type"] == "caller-stopped"]
        (line,) = [e for e in events if e["type"] == "caller-line"]
        assert line["t_s"] < stopped["t_s"] < line["end_s"]  # cut mid-line
        assert stopped["t_s"] == pytest.approx(hung["t_s"], abs=0.5)
        after = rec.caller.samples[int((stopped["t_s"] + 0.05) * RATE_HZ):]
        assert not after.any()  # nothing of the line after the hang-up on the caller track
        assert (d / "report.html").is_file()
    # both calls are in the history, so progress and readiness count drills
    from roleplay.history.store import open_history

    history = open_history(None)
    try:
        recorded = {Path(r.call_dir).resolve() for r in history.calls(trainee="tester")}
    finally:
        history.close()
    assert {d.resolve() for d in calls} <= recorded
    assert f"roleplay progress --scenario {SCENARIO} --trainee tester" in stdout
