"""A trainer's own recordings of the caller's lines: anger adjustment, the scenario copy that points
to them, a demo call that plays them, and `roleplay voices record` over virtual devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from roleplay.audio.clip import Audio, load_audio, save_wav
from roleplay.caller.recordlines import (
    REFERENCE_LEVEL_DBFS,
    TEMPO_RANGE,
    _raw_scenario,
    adjust_recording,
    anger_adjustment,
    record_take,
    recorded_line_audio,
    wav_name,
    write_recorded_copy,
)
from roleplay.caller.scenario import load_scenario
from roleplay.core.errors import RoleplayError
from roleplay.speech.prosody import loudness_dbfs, speaking_extent_s
from roleplay.speech.voice import load_voice, synthesize

RATE_HZ = 16_000
SCENARIO = "en-tourist-waiting"  # caller voice en-man
RECORDING_VOICE = "en-trainee-woman"  # the "trainer": a different voice, so the two can be told apart


def _speech_s(audio: Audio) -> float:
    start, end = speaking_extent_s(audio)
    return end - start


def _best_correlation(track: np.ndarray, ref: np.ndarray) -> float:
    """Peak of the normalised cross-correlation of ref slid along track (1 = contained exactly)."""
    from scipy.signal import fftconvolve

    track, ref = track.astype(np.float64), ref.astype(np.float64)
    if len(track) < len(ref):
        track = np.concatenate([track, np.zeros(len(ref) - len(track))])
    corr = fftconvolve(track, ref[::-1], mode="valid")
    cum = np.concatenate(([0.0], np.cumsum(track ** 2)))
    energy = cum[len(ref):] - cum[:-len(ref)]  # exact, unlike an FFT of the squares
    ref_energy = float(np.sum(ref ** 2))
    audible = energy > 1e-4 * ref_energy
    if ref_energy == 0 or not audible.any():
        return 0.0
    return float(np.max(np.abs(corr[audible]) / np.sqrt(energy[audible] * ref_energy)))


def _chunks_found(recording: np.ndarray, reference: np.ndarray, *, chunk_s: float = 0.1) -> np.ndarray:
    """How well each audible 0.1 s of the reference is found somewhere in the recording.

    Chunk by chunk, because on a busy machine the injecting pacat now and then runs dry and the
    virtual microphone inserts a few ms of silence into the scripted speech: that shifts the rest
    of the line and spoils one whole-line correlation, although no speech is lost.
    """
    n = int(chunk_s * RATE_HZ)
    loud = float(np.sqrt(np.mean(reference ** 2)))
    chunks = [reference[i:i + n] for i in range(0, len(reference) - n + 1, n)]
    return np.array([_best_correlation(recording, c) for c in chunks
                     if np.sqrt(np.mean(c ** 2)) > 0.2 * loud])


@pytest.fixture(scope="module")
def spoken(tts_cache) -> Audio:
    text = "Hello? Finally. I have been on hold for twenty minutes, and nobody helps us."
    return synthesize(text, voice=RECORDING_VOICE, anger=0, cache_dir=tts_cache).resampled(RATE_HZ)


# ---------------------------------------------------------------- (1) the anger adjustment


def test_anger_adjustment_changes_loudness_and_tempo_as_the_profile_says(spoken):
    caller = load_voice("nl-man-middle")
    calm = adjust_recording(spoken, caller, 0.0)
    assert loudness_dbfs(calm) == pytest.approx(REFERENCE_LEVEL_DBFS, abs=1.0)
    for anger in (4.0, 10.0):
        angry = adjust_recording(spoken, caller, anger)
        want = anger_adjustment(caller, anger)
        ref, now = caller.prosody_at(0), caller.prosody_at(anger)
        assert want.gain_db == pytest.approx(20 * np.log10(now.volume / ref.volume))
        expected_tempo = min(now.rate_wpm / ref.rate_wpm, TEMPO_RANGE[1])
        assert want.tempo == pytest.approx(expected_tempo)
        # measured on the audio: louder by the profile's gain, shorter by its tempo
        assert loudness_dbfs(angry) - loudness_dbfs(calm) == pytest.approx(want.gain_db, abs=1.0)
        assert _speech_s(calm) / _speech_s(angry) == pytest.approx(want.tempo, rel=0.05)
        assert np.max(np.abs(angry.samples)) < 1.0
    # the clamp: at anger 10 the profile says 1.6x, the recording is stretched no further than 1.35x
    assert caller.prosody_at(10).rate_wpm / caller.prosody_at(0).rate_wpm > TEMPO_RANGE[1]
    unadjusted = adjust_recording(spoken, caller, 10.0, adjust=False)
    assert _speech_s(unadjusted) == pytest.approx(_speech_s(calm), abs=0.02)


def test_endpointer_waits_for_late_speech_and_stops_after_a_second_of_silence(spoken):
    pad = lambda s: np.zeros(int(s * RATE_HZ), np.float32)  # noqa: E731
    rng = np.random.default_rng(0)
    for late_s in (0.2, 1.6, 4.0):  # 1.6 s: how late a backlogged virtual microphone delivers
        stream = np.concatenate([pad(late_s), spoken.samples, pad(6.0)])
        stream = (stream + rng.normal(0, 0.001, len(stream))).astype(np.float32)  # a quiet room
        blocks = (stream[i:i + 1024] for i in range(0, len(stream), 1024))
        consumed = []
        take = record_take((consumed.append(b) or b for b in blocks), max_line_s=15.0)
        assert take.reason == "ended" and take.audio is not None
        assert _best_correlation(take.audio.samples, spoken.samples) > 0.99  # the whole line
        stopped_after_speech_s = len(consumed) * 1024 / RATE_HZ - late_s - spoken.duration_s
        assert 0.9 < stopped_after_speech_s < 1.6
    take = record_take((pad(0.064) for _ in range(100)), max_line_s=15.0, wait_s=3.0)
    assert take.audio is None and take.reason == "no-speech"
    long = np.concatenate([spoken.samples] * 4)
    take = record_take((long[i:i + 1024] for i in range(0, len(long), 1024)), max_line_s=4.0)
    assert take.reason == "max-length" and 4.0 <= take.audio.duration_s <= 4.8


# ---------------------------------------------------------------- (2) the copy and a demo call


@pytest.fixture(scope="module")
def recorded_copy(tmp_path_factory, tts_cache) -> Path:
    """en-tourist-waiting cut to one line per situation, every line recorded in another voice."""
    root = tmp_path_factory.mktemp("recorded")
    data = _raw_scenario(load_scenario(SCENARIO).path)
    data["id"] = "en-tourist-short"
    data["lines"] = {group: items[:1] for group, items in data["lines"].items()}
    short = root / "en-tourist-short.yaml"
    short.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    scenario = load_scenario(short)
    out = root / "recordings"
    out.mkdir()
    recordings = {}
    for group, lines in scenario.lines.items():
        name = wav_name(group, 0)
        save_wav(out / name, synthesize(lines[0].text, voice=RECORDING_VOICE, anger=3,
                                        cache_dir=tts_cache).resampled(RATE_HZ))
        recordings[(group, 0)] = name
    return write_recorded_copy(scenario, out, recordings)


def test_recorded_copy_validates_and_points_to_the_recordings(recorded_copy):
    from roleplay.caller.scenario import cmd_scenarios_validate

    scenario = load_scenario(recorded_copy)
    assert scenario.id == "en-tourist-short-recorded"
    for group, lines in scenario.lines.items():
        assert lines[0].audio_path == (recorded_copy.parent / wav_name(group, 0)).resolve()
    with open(os.devnull, "w") as devnull:
        assert cmd_scenarios_validate([str(recorded_copy)], devnull) == 0


def test_copy_of_every_shipped_scenario_keeps_its_content(tmp_path):
    from roleplay.caller.scenario import list_scenarios

    for scenario in list_scenarios():
        copy = load_scenario(write_recorded_copy(scenario, tmp_path, {}))
        assert copy.id == f"{scenario.id}-recorded"
        assert (copy.lines, copy.anger, copy.reactions, copy.triggers, copy.rules, copy.debrief) == (
            scenario.lines, scenario.anger, scenario.reactions, scenario.triggers, scenario.rules,
            scenario.debrief)


@pytest.mark.model
def test_demo_call_plays_the_recordings_on_the_caller_track(recorded_copy, transcriber, tts_cache,
                                                            tmp_path):
    from roleplay.app.demo import run_demo

    out = tmp_path / "call"
    run_demo(scenario_id=str(recorded_copy), style="good", seed=1, out_dir=out,
             transcriber=transcriber, cache_dir=tts_cache, max_caller_lines=2)
    caller_track = load_audio(out / "caller.wav").samples
    scenario = load_scenario(recorded_copy)
    caller_voice = load_voice(scenario.caller_voice)
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines() if x]
    lines = [e for e in events if e["type"] == "caller-line"]
    assert lines
    for e in lines:
        path = scenario.lines[e["group"]][0].audio_path
        expected = recorded_line_audio(path, caller_voice, e["anger"])
        a, b = int((e["t_s"] - 0.2) * RATE_HZ), int((e["end_s"] + 0.2) * RATE_HZ)
        segment = caller_track[max(0, a):b]
        assert _best_correlation(segment, expected.samples) > 0.8, e["text"]
        assert e["end_s"] - e["t_s"] == pytest.approx(expected.duration_s, abs=0.01)
        # and it is not the caller's synthesized voice
        synthesized = synthesize(e["text"], voice=caller_voice, anger=e["anger"], cache_dir=tts_cache)
        assert _best_correlation(segment,
                                 synthesized.resampled(RATE_HZ).samples) < 0.5


# ---------------------------------------------------------------- (3) `roleplay voices record`


@pytest.mark.devices
def test_voices_record_over_virtual_devices(recorded_copy, tmp_path):
    from roleplay.audio.virtual import virtual_devices
    from roleplay.bench.live import espeak

    source = recorded_copy.parent.parent / "en-tourist-short.yaml"
    scenario = load_scenario(source)
    out = tmp_path / "rec"
    situations = ("opening", "calming")
    spoken = {scenario.lines[s][0].text: espeak(scenario.lines[s][0].text, voice="en") for s in situations}
    try:
        vd_context = virtual_devices()
        vd = vd_context.__enter__()
    except RoleplayError as exc:
        if "not installed" in str(exc):
            pytest.skip(str(exc))
        raise
    proc = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "roleplay", "voices", "record", str(source), "--out", str(out),
             "--situations", ",".join(situations), "--max-line-s", "10"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **vd.env})
        timer = threading.Timer(90, proc.kill)
        timer.start()
        printed, text = [], None
        for row in proc.stdout:
            printed.append(row)
            if row.strip().startswith('"'):
                text = row.strip().strip('"')
            if "listening" in row:
                vd.play_into_mic(spoken[text], delay_s=0.3)
        rc = proc.wait()
        timer.cancel()
        stderr = proc.stderr.read()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        vd_context.__exit__(None, None, None)
    assert rc == 0, "".join(printed) + stderr
    copy = out / "en-tourist-short-recorded.yaml"
    recorded = load_scenario(copy)  # validates
    for s in situations:
        line = recorded.lines[s][0]
        assert line.audio_path == (out / wav_name(s, 0)).resolve()
        audio = load_audio(line.audio_path)
        assert audio.rate_hz == RATE_HZ
        reference = spoken[line.text]
        # the whole line is in the recording, its start and its end included
        found = _chunks_found(audio.samples, reference.samples) > 0.9
        assert found[:3].any() and found[-3:].any() and found.mean() > 0.85, (
            line.text, found.astype(int), "".join(printed))
        # ended by the silence after the line, trimmed to it: 0.7 s of margins, plus any silence
        # a busy virtual microphone inserted (see _chunks_found); --max-line-s is 10 s
        assert reference.duration_s < audio.duration_s < reference.duration_s + 1.5
    assert "cut at" not in "".join(printed)
    others = [g for g in recorded.lines if g not in situations]
    assert all(recorded.lines[g][0].audio_path is None for g in others)
