"""The end of a trainee's turn from its words and pitch (`end_of_turn_wait`, `final_pitch_st`) and
the state machine waiting as long as the current pause's decision says."""

from __future__ import annotations

import numpy as np
import pytest

from roleplay.session.turntaking import (
    EndCues,
    EndWait,
    TurnSettings,
    TurnTaker,
    end_of_turn_wait,
    final_pitch_st,
)

S = TurnSettings()
RATE_HZ = 16_000


@pytest.mark.parametrize(("text", "pitch", "language", "wait_s", "reason"), [
    # no words yet: the caller could not answer anyway; a level pitch may go on
    (None, -4.0, "nl", S.end_of_turn_s, "no words yet"),
    (None, None, "nl", S.end_of_turn_s, "no words yet"),
    (None, 0.3, "nl", S.continuing_s, "no words yet, level pitch"),
    ("", None, "nl", S.end_of_turn_s, "no words heard"),
    ("Wat is uw geboortedatum?", 2.0, "nl", S.complete_s, "question"),
    ("Ik begrijp dat u ongerust bent.", -3.0, "nl", S.complete_s, "sentence, falling pitch"),
    ("Ik begrijp dat u ongerust bent.", None, "nl", S.sentence_s, "sentence, no pitch"),
    # the recognizer's full stop also ends a clause cut at a comma: level pitch may go on
    ("Ik begrijp dat u ongerust bent.", 0.2, "nl", S.continuing_s, "words, level pitch"),
    ("Ik begrijp dat u ongerust bent.", 3.0, "nl", S.continuing_s, "words, rising pitch"),
    ("Dat is heel vervelend voor u, maar.", -3.0, "nl", S.trailing_s, "trails off: 'maar ...'"),
    ("Ik stuur een dokter, want", None, "nl", S.trailing_s, "trails off: 'want ...'"),
    ("Dus...", -3.0, "nl", S.trailing_s, "trails off: 'dus ...'"),
    ("De dokter komt, eh", -3.0, "nl", S.trailing_s, "trails off: 'eh ...'"),
    ("Ik blijf aan de lijn,", -3.0, "nl", S.trailing_s, "trails off: 'lijn ...'"),
    ("I will send a doctor because.", -3.0, "en", S.trailing_s, "trails off: 'because ...'"),
    ("I will send a doctor and", -3.0, "en", S.trailing_s, "trails off: 'and ...'"),
    ("Um.", -3.0, "en", S.trailing_s, "trails off: 'um ...'"),
    ("What is your date of birth?", None, "en", S.complete_s, "question"),
    ("I will send a doctor", -3.0, "en", S.sentence_s, "no sentence end, falling pitch"),
    ("I will send a doctor", None, "en", S.end_of_turn_s, "no sentence end, no pitch"),
    # "en" is Dutch for "and", not an English word that trails off
    ("Ik kom eraan en", None, "en", S.end_of_turn_s, "no sentence end, no pitch"),
])
def test_the_words_and_the_pitch_decide_the_wait(text, pitch, language, wait_s, reason) -> None:
    got = end_of_turn_wait(EndCues(text, pitch, language), S)
    assert got == EndWait(wait_s, reason)


def test_shorter_for_a_finished_turn_longer_for_one_that_trails_off() -> None:
    assert S.complete_s < S.sentence_s < S.end_of_turn_s < S.continuing_s < S.trailing_s


def test_the_fixed_rule_ignores_the_cues() -> None:
    fixed = TurnSettings(adaptive=False)
    for cues in (EndCues("Wat is uw naam?", -3.0, "nl"), EndCues("en", 2.0, "nl")):
        assert end_of_turn_wait(cues, fixed) == EndWait(fixed.end_of_turn_s, "fixed")


def test_wait_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="trailing_s"):
        TurnSettings(trailing_s=0)


def _voice(f0_hz: np.ndarray) -> np.ndarray:
    """A buzz with harmonics following the contour `f0_hz` (one value per sample)."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / RATE_HZ
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


@pytest.mark.parametrize(("start_hz", "end_hz", "low", "high"), [
    (200.0, 130.0, -12.0, -2.0),  # a statement's fall
    (140.0, 220.0, 2.0, 12.0),  # a rise
    (160.0, 160.0, -0.7, 0.7),  # level
])
def test_final_pitch_follows_the_contour(start_hz, end_hz, low, high) -> None:
    n = RATE_HZ  # one second; the last 0.4 s glide
    f0 = np.full(n, start_hz)
    glide = int(0.4 * RATE_HZ)
    f0[-glide:] = np.linspace(start_hz, end_hz, glide)
    got = final_pitch_st(_voice(f0), RATE_HZ)
    assert got is not None and low <= got <= high, got


def test_final_pitch_of_noise_or_a_short_clip_is_none() -> None:
    rng = np.random.default_rng(0)
    assert final_pitch_st(rng.normal(0, 0.1, RATE_HZ).astype(np.float32), RATE_HZ) is None
    assert final_pitch_st(np.zeros(400, np.float32), RATE_HZ) is None


def test_espeak_statements_fall_and_unfinished_clauses_do_not() -> None:
    """The scripted trainee's voice (espeak-ng): a statement ends falling; a clause ended by a
    comma (how the bench writes a pause mid-sentence) does not."""
    from roleplay.bench.live import espeak

    for text in ("Ik begrijp dat u ongerust bent.", "Ik hoor hoe bezorgd u bent over uw man.",
                 "Ik stuur nu een dokter naar u toe, binnen een uur is hij er."):
        got = final_pitch_st(espeak(text).samples[-RATE_HZ:], RATE_HZ)
        assert got is not None and got <= S.falling_st, (text, got)
    for text in ("Ik blijf bij u aan de lijn, maar,", "Ik stuur nu een dokter naar u toe, want,"):
        got = final_pitch_st(espeak(text).samples[-RATE_HZ:], RATE_HZ)
        assert got is None or got > S.falling_st, (text, got)


def _pause_then_speech(taker: TurnTaker, *, speech_s: float, pause_s: float,
                       wait: EndWait | None, resume: bool) -> list[str]:
    """Feed speech, then a pause (the owner sets `wait` at its first frame), then more speech."""
    f = S.frame_s
    out: list[str] = []
    t = 0.0
    for _ in range(int(speech_s / f)):
        out += [e.kind for e in taker.step(t, 0.9, caller_playing=False)]
        t += f
    for i in range(int(pause_s / f)):
        if i == 1:
            taker.end_wait = wait
        out += [e.kind for e in taker.step(t, 0.02, caller_playing=False)]
        t += f
    if resume:
        for _ in range(10):
            out += [e.kind for e in taker.step(t, 0.9, caller_playing=False)]
            t += f
    return out


def test_the_pause_ends_the_turn_as_soon_as_its_wait_says() -> None:
    taker = TurnTaker(S)
    kinds = _pause_then_speech(taker, speech_s=1.0, pause_s=0.5, wait=EndWait(0.3, "question"),
                               resume=False)
    assert kinds == ["trainee-start", "end-of-turn"]


def test_a_trailing_pause_longer_than_the_fixed_wait_keeps_the_turn() -> None:
    taker = TurnTaker(S)
    kinds = _pause_then_speech(taker, speech_s=1.0, pause_s=0.9, wait=EndWait(1.2, "trails off"),
                               resume=True)
    assert kinds == ["trainee-start"]
    fixed = TurnTaker(S)  # the same pause with the fixed wait ends the turn
    assert _pause_then_speech(fixed, speech_s=1.0, pause_s=0.9, wait=None, resume=True) == [
        "trainee-start", "end-of-turn", "trainee-start"]


def test_speech_clears_the_pause_decision() -> None:
    taker = TurnTaker(S)
    _pause_then_speech(taker, speech_s=1.0, pause_s=0.2, wait=EndWait(1.2, "trails off"), resume=True)
    assert taker.end_wait is None and taker.wait_s == S.end_of_turn_s


class _Writer:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def event(self, type_: str, **fields) -> None:
        self.events.append((type_, fields))


class _Stream:
    restarts = 0


@pytest.mark.parametrize(("onset_s", "lasts_s", "premature"), [
    (5.1, 2.0, True),  # between the decision and the caller's first sound
    (5.5, 2.0, True),  # 0.3 s into the caller's reply: the trainee was going on
    (5.95, 0.3, True),
    (6.1, 2.0, False),  # 0.9 s in: a reaction to the caller, not the same turn
    (5.5, 0.1, False),  # a blip, not speech going on
])
def test_speech_soon_after_the_callers_reply_starts_is_a_premature_start(onset_s, lasts_s,
                                                                        premature) -> None:
    from roleplay.audio.devices import LagMeasurement
    from roleplay.session.live import Drill, DrillSettings, _Reply, _Status

    writer = _Writer()
    drill = Drill(session=None, stream=_Stream(), writer=writer, speaker=None, listen=None,
                  live_transcriber=None, vad=None, settings=DrillSettings(), status=_Status(None),
                  origin=0, lag=LagMeasurement(lag_ms=0.0, lag_samples=0, confidence=1.0,
                                               spread_ms=0.0))
    drill._reply = _Reply(turn=3, decided_s=5.0, start_s=5.2)
    f = S.frame_s
    for i in range(int(5.0 / f), int(7.0 / f)):
        t = i * f
        speaking = onset_s - 1e-9 <= t < onset_s + lasts_s - 1e-9
        drill.taker.step(t, 0.9 if speaking else 0.02, caller_playing=False)
        drill._watch_reply(t + f)
    found = [fields for kind, fields in writer.events if kind == "premature-start"]
    assert drill._reply is None
    if premature:
        assert drill.premature == [3] and len(found) == 1
        assert found[0]["turn"] == 3 and found[0]["caller_start_s"] == 5.2
        assert found[0]["after_caller_s"] == pytest.approx(onset_s - 5.2, abs=f)
    else:
        assert drill.premature == [] and found == []


@pytest.mark.slow
def test_replayed_bench_turns_end_sooner_and_no_more_often_too_soon(transcriber) -> None:
    """The bench's scripted turns through the VAD, the state machine and the real recognizer, on
    the replay's own clock (no load): with the words there 0.3 s after recognition starts, the
    rule from words and pitch answers finished turns sooner than the fixed wait and ends no
    mid-sentence pause ("want, |0.9| ..."), which the fixed 0.7 s does."""
    from roleplay.bench.live import BENCH_REPLIES, espeak
    from roleplay.bench.turnreplay import replay
    from roleplay.session.live import _live_transcriber

    texts = [r[0] for r in BENCH_REPLIES if "want" in r[0] or "dus" in r[0]] + [
        "Ik begrijp dat u ongerust bent.", "Ik blijf bij u aan de lijn."]
    ends = [e for e in replay(texts, _live_transcriber(transcriber),
                              speak=lambda t: espeak(t).samples) if e.recognition_s == 0.3]
    for e in ends:
        print(e)
    fixed = [e for e in ends if e.rule == "fixed"]
    cues = [e for e in ends if e.rule == "cues"]
    assert sum(e.premature for e in fixed) == 2  # the two long mid-sentence pauses
    assert sum(e.premature for e in cues) == 0
    finished = [e.delay_s for e in cues if e.text in texts[-2:]]
    assert max(finished) < min(e.delay_s for e in fixed if e.text in texts[-2:]) - 0.1
