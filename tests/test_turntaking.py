"""The turn-taking state machine on synthetic frame sequences (no audio, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from roleplay.session.turntaking import State, TurnEvent, TurnSettings, TurnTaker, run

FRAME_S = TurnSettings().frame_s


def frames(total_s: float, *spans: tuple[float, float], level: float = 0.9) -> np.ndarray:
    """Per-frame values: `level` inside the spans (seconds), 0.02 elsewhere."""
    n = int(round(total_s / FRAME_S))
    t = np.arange(n) * FRAME_S
    out = np.full(n, 0.02)
    for a, b in spans:
        out[(t >= a - 1e-9) & (t < b - 1e-9)] = level
    return out


def playing(total_s: float, *spans: tuple[float, float]) -> np.ndarray:
    return frames(total_s, *spans, level=1.0) > 0.5


def kinds(events: list[TurnEvent]) -> list[str]:
    return [e.kind for e in events]


def only(events: list[TurnEvent], kind: str) -> list[TurnEvent]:
    return [e for e in events if e.kind == kind]


def test_turn_ends_after_the_configured_silence() -> None:
    settings = TurnSettings(end_of_turn_s=0.8)
    events = run(frames(5.0, (1.0, 2.5)), playing(5.0), settings=settings)
    assert kinds(events) == ["trainee-start", "end-of-turn"]
    start, end = events
    assert start.start_s == pytest.approx(1.0, abs=FRAME_S)
    assert end.start_s == pytest.approx(1.0, abs=FRAME_S)
    assert end.end_s == pytest.approx(2.5, abs=FRAME_S)
    assert end.t_s == pytest.approx(2.5 + 0.8, abs=FRAME_S)  # decided exactly one silence later


def test_pauses_shorter_than_end_of_turn_stay_in_one_turn() -> None:
    settings = TurnSettings(end_of_turn_s=0.8)
    probs = frames(6.0, (1.0, 2.0), (2.6, 3.5))  # a 0.6 s pause in the middle
    events = run(probs, playing(6.0), settings=settings)
    assert kinds(events) == ["trainee-start", "end-of-turn"]
    assert events[1].start_s == pytest.approx(1.0, abs=FRAME_S)
    assert events[1].end_s == pytest.approx(3.5, abs=FRAME_S)


def test_end_of_turn_threshold_is_configurable() -> None:
    probs = frames(6.0, (1.0, 2.0), (2.6, 3.5))
    events = run(probs, playing(6.0), settings=TurnSettings(end_of_turn_s=0.4))
    assert kinds(events) == ["trainee-start", "end-of-turn", "trainee-start", "end-of-turn"]


def test_hysteresis_keeps_a_dip_between_thresholds_inside_speech() -> None:
    probs = frames(4.0, (1.0, 2.0))
    probs[(np.arange(len(probs)) * FRAME_S > 1.3) & (np.arange(len(probs)) * FRAME_S < 1.9)] = 0.4
    events = run(probs, playing(4.0))
    assert only(events, "end-of-turn")[0].end_s == pytest.approx(2.0, abs=FRAME_S)
    # but 0.4 never starts speech
    assert run(np.full(100, 0.4), np.zeros(100, bool)) == []


def test_interruption_over_the_caller_is_timed_from_the_first_speech_frame() -> None:
    caller = playing(6.0, (0.5, 4.0))
    probs = frames(6.0, (2.0, 3.2))
    events = run(probs, caller)
    (cut_in,) = only(events, "interruption")
    assert cut_in.start_s == pytest.approx(2.0, abs=FRAME_S)
    assert cut_in.t_s == pytest.approx(2.5, abs=FRAME_S)  # decided after 0.5 s of speech
    assert not only(events, "backchannel")
    # the caller talked on: the trainee's turn is answered only once the caller has finished
    (end,) = only(events, "end-of-turn")
    assert end.start_s == pytest.approx(2.0, abs=FRAME_S)
    assert end.end_s == pytest.approx(3.2, abs=FRAME_S)
    assert end.t_s == pytest.approx(4.0, abs=2 * FRAME_S)


def test_short_speech_over_the_caller_is_a_backchannel() -> None:
    caller = playing(6.0, (0.5, 4.0))
    events = run(frames(6.0, (1.5, 1.8), (2.6, 2.9)), caller)
    assert kinds(events) == ["backchannel", "backchannel"]
    assert events[0].start_s == pytest.approx(1.5, abs=FRAME_S)
    assert events[0].duration_s == pytest.approx(0.3, abs=2 * FRAME_S)


def test_caller_stopping_after_an_interruption_gives_the_trainee_the_turn() -> None:
    taker = TurnTaker()
    probs = frames(6.0, (2.0, 3.5))
    caller_on = True
    events: list[TurnEvent] = []
    for i, p in enumerate(probs):
        got = taker.step(i * FRAME_S, p, caller_playing=caller_on and i * FRAME_S < 4.0)
        events += got
        if any(e.kind == "interruption" for e in got):
            caller_on = False  # the caller yields: the owner stops playback
    assert kinds(events) == ["interruption", "end-of-turn"]
    assert events[1].t_s == pytest.approx(3.5 + TurnSettings().end_of_turn_s, abs=FRAME_S)


def test_speech_that_starts_just_before_the_caller_ends_is_an_early_start() -> None:
    caller = playing(5.0, (0.0, 2.0))
    events = run(frames(5.0, (1.8, 3.0)), caller)
    assert kinds(events) == ["trainee-start", "end-of-turn"]
    assert events[0].start_s == pytest.approx(1.8, abs=FRAME_S)


def test_barge_in_fires_once_after_the_configured_speaking_time() -> None:
    probs = frames(10.0, (1.0, 3.0), (3.3, 8.0))  # one long turn with a short breath
    events = run(probs, playing(10.0), barge_in_after_s=4.0)
    (barge,) = only(events, "barge-in")
    assert barge.t_s == pytest.approx(5.0, abs=FRAME_S)
    assert barge.start_s == pytest.approx(1.0, abs=FRAME_S)
    assert not only(run(probs, playing(10.0), barge_in_after_s=None), "barge-in")


def test_after_a_barge_in_the_rest_of_the_speech_is_not_an_interruption() -> None:
    taker = TurnTaker()
    taker.barge_in_after_s = 2.0
    probs = frames(10.0, (1.0, 4.5))
    caller_from = None
    events: list[TurnEvent] = []
    for i, p in enumerate(probs):
        t = i * FRAME_S
        audible = caller_from is not None and caller_from <= t < caller_from + 3.0
        got = taker.step(t, p, caller_playing=audible)
        events += got
        if any(e.kind == "barge-in" for e in got):
            taker.caller_took_turn()
            caller_from = t + 0.3  # the reply becomes audible after the device lag
    assert kinds(events) == ["trainee-start", "barge-in"]
    assert taker.state is State.WAITING


def test_no_answer_after_the_caller_finished() -> None:
    settings = TurnSettings(no_answer_s=3.0)
    events = run(frames(8.0), playing(8.0, (0.5, 2.0)), settings=settings)
    (silent,) = events
    assert silent.kind == "no-answer"
    assert silent.start_s == pytest.approx(2.0, abs=FRAME_S)
    assert silent.t_s == pytest.approx(5.0, abs=FRAME_S)


def test_reply_audible_only_after_the_device_lag_keeps_the_caller_turn() -> None:
    taker = TurnTaker()
    events: list[TurnEvent] = []
    probs = frames(6.0, (0.5, 1.5))
    for i, p in enumerate(probs):
        t = i * FRAME_S
        got = taker.step(t, p, caller_playing=2.6 <= t < 4.0)
        events += got
        if any(e.kind == "end-of-turn" for e in got):
            taker.caller_took_turn()
    assert kinds(events) == ["trainee-start", "end-of-turn"]
    assert taker.state is State.WAITING  # back after the caller's line ended


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        TurnSettings(onset_threshold=0.3, offset_threshold=0.5)
    with pytest.raises(ValueError):
        TurnSettings(end_of_turn_s=0)
