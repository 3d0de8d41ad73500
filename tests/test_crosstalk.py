"""Cross-talk (issue 11): the caller's voice leaking into the trainee's track is found from the
audio and removed before the analysis, while the trainee's own speech (also over the leak) stays.

Real espeak-ng speech throughout; the leak is the caller track delayed and scaled (as a drill's
loudspeaker or a second microphone in the room makes it), over a noise floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from roleplay.analysis.pipeline import analyse_audio
from roleplay.audio.clip import Audio
from roleplay.audio.crosstalk import CrosstalkSettings, remove_crosstalk, remove_leak
from roleplay.bench.leaks import (
    DOUBLE_TALK_SCRIPT,
    DOUBLE_TALK_VOICES,
    NOISE_DBFS,
    LeakSpec,
    double_talk_lost,
    erle_db,
    leaked_tracks,
    phantom_trainee,
    run_double_talk,
)
from roleplay.recording.scripted import ScriptLine, place_lines, tracks
from tests.conftest import speech_file

RATE_HZ = 16_000
FRAME = 320

SCRIPT = DOUBLE_TALK_SCRIPT  # the caller talks; the trainee waits, then cuts in over the caller's second line


@pytest.fixture(scope="module")
def planted(tts_cache):
    lines = [ScriptLine(who, text, DOUBLE_TALK_VOICES[who], gap_s=gap, overlap_at_s=at,
                        kind="interruption" if at is not None else "turn")
             for who, text, at, gap in SCRIPT]
    placed = place_lines(lines, cache_dir=tts_cache)
    return placed, tracks(placed)


def _energy(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    return np.mean(x[: n * FRAME].astype(np.float64).reshape(n, FRAME) ** 2, axis=1)


@pytest.mark.parametrize(("delay_ms", "gain_db", "phone"),
                         [(5, -8, False), (30, -12, False), (60, -25, False), (20, -12, True), (45, -20, True)])
def test_leak_is_found_at_its_delay_and_level_and_removed(planted, delay_ms, gain_db, phone) -> None:
    _, tr = planted
    lt = leaked_tracks(tr["caller"], tr["trainee"], LeakSpec("x", delay_ms, gain_db, phone), rate_hz=RATE_HZ)
    out = remove_leak(lt.caller, lt.trainee, rate_hz=RATE_HZ)
    r = out.report
    assert r.found and r.delay_ms == pytest.approx(delay_ms, abs=1.0), r
    assert r.gain_db == pytest.approx(gain_db, abs=1.0), r
    # where only the leak sounds it is gone down to the noise floor (-60 dBFS; the caller speaks
    # at about -25 dBFS, so a -25 dB leak is only 10 dB above it)
    alone = (_energy(lt.caller) > 1e-5) & (_energy(lt.clean_trainee) < 1e-10)
    residual_dbfs = 10 * np.log10(np.mean(_energy(out.samples)[alone]))
    assert residual_dbfs <= NOISE_DBFS + 3.0, residual_dbfs
    erle = erle_db(lt, out.samples)
    assert erle is not None and erle >= (15.0 if gain_db >= -12 else 5.0), erle
    # the trainee's speech stays, alone and over the caller (the leak subtracted from it)
    e_true, e_out = _energy(lt.clean_trainee), _energy(out.samples)
    e_err = _energy(out.samples - lt.clean_trainee)
    speaking = e_true > 1e-4
    both = speaking & (_energy(lt.caller) > 1e-4)
    assert both.sum() > 30  # the planted double talk is there
    assert 10 * np.log10(e_out[speaking].sum() / e_true[speaking].sum()) == pytest.approx(0.0, abs=0.5)
    assert 10 * np.log10(e_true[both].sum() / e_err[both].sum()) >= 15.0  # error 15 dB under the speech


def test_gate_keeps_the_leak_under_double_talk_the_canceller_does_not(planted) -> None:
    """The comparison behind the choice: the gate passes a double-talk frame whole, leak included."""
    _, tr = planted
    lt = leaked_tracks(tr["caller"], tr["trainee"], LeakSpec("x", 20, -8, False), rate_hz=RATE_HZ)
    both = (_energy(lt.clean_trainee) > 1e-4) & (_energy(lt.caller) > 1e-4)

    def error_db(method: str) -> float:
        out = remove_leak(lt.caller, lt.trainee, rate_hz=RATE_HZ, settings=CrosstalkSettings(method=method))
        e = _energy(out.samples - lt.clean_trainee)[both].sum()
        return float(10 * np.log10(_energy(lt.clean_trainee)[both].sum() / e))

    cancel, gate = error_db("cancel"), error_db("gate")
    assert cancel >= gate + 6.0, (cancel, gate)  # 18.2 against 9.5 dB here


def test_no_leak_leaves_the_tracks_as_they_are(planted) -> None:
    _, tr = planted
    noise = np.random.default_rng(1).normal(0, 1e-3, len(tr["trainee"])).astype(np.float32)
    audio = {"caller": Audio(tr["caller"], RATE_HZ), "trainee": Audio(tr["trainee"] + noise, RATE_HZ)}
    out, leaks = remove_crosstalk(audio)
    assert leaks == ()
    assert out["trainee"] is audio["trainee"] and out["caller"] is audio["caller"]


def test_real_two_speaker_recording_has_no_leak() -> None:
    """Two people talking at once, one per channel (no leak): nothing may be taken away."""
    from roleplay.audio.clip import load_audio

    wav = speech_file("conv_faster_whisper_stereo/stereo_diarization.wav")
    audio = {"caller": load_audio(wav, channel=0).resampled(RATE_HZ),
             "trainee": load_audio(wav, channel=1).resampled(RATE_HZ)}
    assert remove_crosstalk(audio)[1] == ()


def test_trainee_leaking_into_the_caller_track_is_removed_too(planted) -> None:
    """Two lapel microphones in one room: each hears the other. The caller's own voice must stay
    in the caller's track although the trainee's track holds a copy of it."""
    _, tr = planted
    to_trainee = leaked_tracks(tr["caller"], tr["trainee"], LeakSpec("x", 12, -15, False), rate_hz=RATE_HZ)
    to_caller = leaked_tracks(tr["trainee"], tr["caller"], LeakSpec("x", 12, -15, False), rate_hz=RATE_HZ, seed=2)
    out, leaks = remove_crosstalk({"caller": Audio(to_caller.trainee, RATE_HZ),
                                   "trainee": Audio(to_trainee.trainee, RATE_HZ)})
    assert [(x.source, x.target) for x in leaks] == [("caller", "trainee"), ("trainee", "caller")]
    for name, clean in (("caller", tr["caller"]), ("trainee", tr["trainee"])):
        e_true, e_out = _energy(clean), _energy(out[name].samples)
        speaking = e_true > 1e-4
        assert 10 * np.log10(e_out[speaking].sum() / e_true[speaking].sum()) == pytest.approx(0.0, abs=0.5), name


def test_leak_makes_no_phantom_turns_and_the_interruption_still_counts(planted, transcriber) -> None:
    placed, tr = planted
    lt = leaked_tracks(tr["caller"], tr["trainee"], LeakSpec("x", 30, -12, False), rate_hz=RATE_HZ)
    caller, trainee = Audio(lt.caller, RATE_HZ), Audio(lt.trainee, RATE_HZ)
    before = analyse_audio(caller=caller, trainee=trainee, language="nl", transcriber=transcriber, crosstalk=None)
    # the test can fail: without removal the leaked caller lines are trainee turns
    assert phantom_trainee(before, placed), before.turns
    after = analyse_audio(caller=caller, trainee=trainee, language="nl", transcriber=transcriber)
    assert phantom_trainee(after, placed) == [], after.turns
    assert len(after.turns_of("trainee")) == 2, after.turns
    cut_in = next(p for p in placed if p.line.kind == "interruption")
    assert [(i.by, round(i.start_s, 1)) for i in after.interruptions] == [
        ("trainee", pytest.approx(cut_in.start_s, abs=0.3))], after.interruptions
    assert any("leaks into the trainee's track" in w for w in after.warnings), after.warnings


def test_tracks_too_short_for_a_leak_estimate_are_left_as_they_are():
    """Found by hypothesis in CI: two empty tracks made the delay search index an empty array."""
    for n in (0, 1, 800):
        tracks = {"caller": Audio(np.zeros(n, dtype=np.float32), 16_000),
                  "trainee": Audio(np.full(n, 0.01, dtype=np.float32), 16_000)}
        out, leaks = remove_crosstalk(tracks)
        assert leaks == () and out["trainee"] is tracks["trainee"] and out["caller"] is tracks["caller"]


def test_double_talk_under_a_louder_leak_is_kept(tts_cache) -> None:
    """The trainee talking over the caller at 0, -6 and -9 dB while the caller leaks at -8 or
    -12 dB: the copy takes 6 dB and more away where the trainee is under the leak, so the level
    rules alone silence 57 of 777 double-talk frames (7.3 %); the double-talk rule keeps all but 18
    (2.3 %). At -12 dB 50 of 247 and 20. CrosstalkSettings.double_talk_db (docs/benchmarks.md)."""
    def lost_over(dbs: tuple[float, ...], settings: CrosstalkSettings) -> tuple[int, int]:
        counts = [double_talk_lost(db, cache_dir=tts_cache, settings=settings) for db in dbs]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    lost, total = lost_over((0.0, -6.0, -9.0), CrosstalkSettings())
    assert total > 600
    assert lost <= 0.06 * total, (lost, total)
    # the rule is what keeps them: without it three to five times as many are lost (57 of 777 in
    # freshly synthesised speech, 112 of 698 in an older cache of the same lines)
    lost_without, _ = lost_over((0.0, -6.0, -9.0), CrosstalkSettings(double_talk_db=0.0))
    assert lost_without >= max(2.5 * lost, 0.05 * total), (lost_without, lost, total)
    lost_12, total_12 = lost_over((-12.0,), CrosstalkSettings())
    assert lost_12 <= 0.35 * total_12, (lost_12, total_12)


@pytest.mark.slow
def test_a_moment_the_filters_lose_is_not_taken_for_double_talk(planted) -> None:
    """The echo path jumps by 1 or 2 ms for 80 ms where only the caller talks (a sound server
    moving its output): the residue there is far above the leak's usual residue, as in double talk,
    but it is the caller's voice, which a local fit on the caller track explains; it stays silenced.
    Over 24 such jumps 2 or 3 of their frames came through, 80 or more without that test
    (`double_talk_share` 1.0). The closeness rule is off here (`double_talk_near_s`): it would
    hide the jumps far from the trainee's speech."""
    _, tr = planted
    caller = tr["caller"].astype(np.float64)
    clean, caller_e = _energy(tr["trainee"]), _energy(caller)
    only_caller = np.flatnonzero((caller_e > 1e-4) & (clean == 0))
    gain, delay, n = 10 ** (-10 / 20), 160, 4
    through = {0.1: 0, 1.0: 0}
    for jump in (16, 32):
        for f in only_caller[::40][:12]:
            leak = gain * np.r_[np.zeros(delay), caller[:-delay]]
            moved = gain * np.r_[np.zeros(delay + jump), caller[:-(delay + jump)]]
            a = int(f) * FRAME
            leak[a:a + n * FRAME] = moved[a:a + n * FRAME]
            noise = 10 ** (NOISE_DBFS / 20) * np.random.default_rng(0).standard_normal(len(caller))
            trainee = (tr["trainee"] + leak + noise).astype(np.float32)
            for share in through:
                out = remove_leak(caller.astype(np.float32), trainee, rate_hz=RATE_HZ,
                                  settings=CrosstalkSettings(double_talk_share=share,
                                                                   double_talk_near_s=100.0)).samples
                heard = (_energy(out) > 1e-9) & (clean == 0) & (caller_e > 1e-5)
                through[share] += int(heard[f - 2:f + n + 2].sum())
    assert through[1.0] >= 20, through  # the test can fail: the jumps do look like double talk
    assert through[0.1] <= 4, through


@pytest.mark.slow
def test_the_accuracy_bench_prints_the_double_talk_figures(tts_cache, capsys) -> None:
    """`roleplay bench accuracy` prints the planted double talk per trainee level, with the rule and
    with the level rules alone, and puts the percentages on its key=value line."""
    figures = run_double_talk(cache_dir=tts_cache)
    out = capsys.readouterr().out
    assert "== double talk under a louder leak" in out
    assert set(figures) == {f"double_talk_lost_pct_{db}db" for db in (0, 6, 9, 12)}
    rows = [line for line in out.splitlines() if line.startswith("  trainee ")]
    assert [r.split(":")[0].strip() for r in rows] == [f"trainee {db} dB" for db in ("+0", "-6", "-9", "-12")]
    lost, total = double_talk_lost(-9.0, cache_dir=tts_cache)
    assert figures["double_talk_lost_pct_9db"] == f"{100 * lost / total:.1f}"
    assert float(figures["double_talk_lost_pct_12db"]) < float(rows[-1].rsplit("(", 1)[1].split(" %")[0])


def test_a_lost_path_far_from_the_trainee_is_not_taken_for_double_talk() -> None:
    """14 s of a live drill over the virtual devices (a CI rehearsal, 2026-12-01; caller left,
    microphone right): between the trainee's two answers (1.73-4.73 s and 8.55-12.0 s) the echo
    path was lost for a few frames, leaving a residue far over the leak's usual one that a local
    fit on the caller track does not explain either. Without the closeness rule
    (`double_talk_near_s`) those frames became a 0.2 s trainee backchannel at 6.8 s."""
    from roleplay.audio.clip import load_audio
    from roleplay.speech.vad import quiet_segments, speech_segments

    path = Path(__file__).parent / "data" / "leak-drill-lost-path-nl.flac"
    tracks_in = {"caller": load_audio(path, channel=0), "trainee": load_audio(path, channel=1)}

    def trainee_segments(settings: CrosstalkSettings) -> list[tuple[float, float]]:
        out, leaks = remove_crosstalk(tracks_in, settings=settings)
        assert [leak.target for leak in leaks] == ["trainee"]
        loud = speech_segments(out["trainee"])
        found = [*loud, *quiet_segments(out["trainee"], loud)]
        return sorted((s.start_s, s.end_s) for s in found)

    kept = trainee_segments(CrosstalkSettings())
    assert len(kept) == 2, kept
    assert [x for seg in kept for x in seg] == pytest.approx([1.73, 4.73, 8.55, 12.0], abs=0.1), kept
    # the test can fail: without the closeness rule the lost path is a trainee sound
    assert len(trainee_segments(CrosstalkSettings(double_talk_near_s=100.0))) == 3


def test_a_dropout_that_moves_the_echo_path_makes_no_trainee_sound() -> None:
    """14 s of a live drill over the virtual devices (2026-12-01; caller left, microphone right):
    the trainee's last answer (1.3-4.8 s), then a caller line during which the microphone stream
    dropped 40 ms (7.45 s) and the echo path moved from 6 to 0.6 ms. In that block no filter
    cancels and the predicted leak sits at the old delay: one frame rose 9 dB over it and its
    0.2 s hold made a 0.29 s trainee backchannel ("Oké.") at 7.6 s. Where the filters do not
    cancel, only two such frames in a row hold (`hold_run`)."""
    from roleplay.audio.clip import load_audio
    from roleplay.speech.vad import quiet_segments, speech_segments

    path = Path(__file__).parent / "data" / "leak-drill-dropout-nl.flac"
    tracks_in = {"caller": load_audio(path, channel=0), "trainee": load_audio(path, channel=1)}

    def trainee_segments(settings: CrosstalkSettings) -> list[tuple[float, float]]:
        out, _ = remove_crosstalk(tracks_in, settings=settings)
        loud = speech_segments(out["trainee"])
        return sorted((s.start_s, s.end_s) for s in [*loud, *quiet_segments(out["trainee"], loud)])

    kept = trainee_segments(CrosstalkSettings())
    assert kept and all(end_s < 5.0 for _, end_s in kept), kept
    # the test can fail: a lone frame's hold is the phantom
    assert any(start_s > 7.0 for start_s, _ in trainee_segments(CrosstalkSettings(hold_run=1)))
