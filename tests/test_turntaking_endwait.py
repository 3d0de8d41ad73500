"""The end of a trainee's turn from its words and pitch (`end_of_turn_wait`, `final_pitch_st`) and
the state machine waiting as long as the current pause's decision says."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import speech_file

from roleplay.session.turntaking import (
    PITCH_WINDOW_S,
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
    ("Ik begrijp dat u ongerust bent.", -3.0, "nl", S.statement_s, "sentence, falling pitch"),
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
    assert S.complete_s < S.statement_s <= S.sentence_s < S.end_of_turn_s < S.continuing_s < S.trailing_s


def test_a_sentence_waits_out_a_pause_between_two_sentences() -> None:
    """A sentence with falling pitch waits longer than the bench's 0.5 s pause between two
    sentences measures to the VAD (0.48 s): the caller does not start in it; a question still
    ends the turn at 0.3 s. The waits before (0.3 s) ended that pause."""
    from roleplay.session.turntaking import WAITS_BEFORE

    sentence = EndCues("U heeft gelijk dat het lang duurt.", -3.3, "nl")
    for settings, ends in ((S, False), (WAITS_BEFORE, True)):
        kinds = _pause_then_speech(TurnTaker(settings), speech_s=2.0, pause_s=0.48,
                                   wait=end_of_turn_wait(sentence, settings), resume=True)
        assert ("end-of-turn" in kinds) is ends, (settings, kinds)
    question = end_of_turn_wait(EndCues("Wat is uw geboortedatum?", None, "nl"), S)
    assert _pause_then_speech(TurnTaker(S), speech_s=2.0, pause_s=0.48, wait=question,
                              resume=True) == ["trainee-start", "end-of-turn", "trainee-start"]


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

    window = int(PITCH_WINDOW_S * RATE_HZ)
    for text in ("Ik begrijp dat u ongerust bent.", "Ik hoor hoe bezorgd u bent over uw man.",
                 "Ik stuur nu een dokter naar u toe, binnen een uur is hij er.", "de dokter rijdt nu weg."):
        got = final_pitch_st(espeak(text).samples[-window:], RATE_HZ)
        assert got is not None and got <= S.falling_st, (text, got)
    for text in ("Ik blijf bij u aan de lijn, maar,", "Ik stuur nu een dokter naar u toe, want,",
                 "Dat is heel vervelend voor u, maar,"):
        got = final_pitch_st(espeak(text).samples[-window:], RATE_HZ)
        assert got is None or got > S.falling_st, (text, got)


@pytest.mark.parametrize("name", ["vl00203", "vl04108", "vl12745", "vl14994"])
def test_human_statements_end_falling(name: str) -> None:
    """Human Flemish read sentences (../shared/speech, CC0): each ends in a fall at the live
    window; at 1.0 s "De plant van de aardappel is giftig" measured level (-0.56 st)."""
    import librosa

    samples, _ = librosa.load(speech_file(f"flemish_rdh_dutch_vl_tts/{name}.wav"), sr=RATE_HZ)
    voiced = np.flatnonzero(np.abs(samples) > 0.02 * np.max(np.abs(samples)))
    samples = samples[: voiced[-1] + 1]  # the end of the speech: where the pause starts
    got = final_pitch_st(samples[-int(PITCH_WINDOW_S * RATE_HZ) :], RATE_HZ)
    assert got is not None and got <= S.falling_st, got


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


def _drill(**settings):
    """A Drill with no devices: the turn-taking and the pause decisions only."""
    from types import SimpleNamespace

    from roleplay.audio.devices import LagMeasurement
    from roleplay.session.live import Drill, DrillSettings, _Status

    return Drill(session=SimpleNamespace(outcome=None, language="nl"), stream=_Stream(),
                 writer=_Writer(), speaker=None, listen=None, live_transcriber=None, vad=None,
                 settings=DrillSettings(**settings), status=_Status(None), origin=0,
                 lag=LagMeasurement(lag_ms=0.0, lag_samples=0, confidence=1.0, spread_ms=0.0))


class _Early:
    """Stands in for the drill's recognition in a pause: records its starts; its words are
    `text`, ready at once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[tuple[tuple[float, float], float]] = []

    def start(self, span: tuple[float, float]) -> None:
        if not self.starts or self.starts[-1][0] != span:  # as the drill's: one job per pause
            self.starts.append((span, self.now_s))

    def peek(self, span: tuple[float, float]) -> str | None:
        return self.text if self.starts and self.starts[-1][0] == span else None

    def shutdown(self) -> None:
        pass


def _run_pause(drill, early: _Early, *, speech_s: float, pause_s: float, dip_at_s: float | None = None,
               resume: bool = True) -> list[tuple[str, float]]:
    """Speech, a pause, more speech through the drill's per-frame order (pause decision, turn
    taking, recognition start); an optional one-frame dip in the first speech."""
    f = S.frame_s
    drill.early = early
    kinds: list[tuple[str, float]] = []
    frames = [0.9] * int(speech_s / f) + [0.02] * int(pause_s / f) + [0.9] * (10 if resume else 0)
    if dip_at_s is not None:
        frames[int(dip_at_s / f)] = 0.02
    for i, p in enumerate(frames):
        t = i * f
        drill.timeline.trainee_len = int((t + f) * RATE_HZ)
        drill.frame_pos = int((t + f) * RATE_HZ)
        early.now_s = t + f
        drill._decide_end_wait()
        kinds += [(e.kind, e.t_s) for e in drill.taker.step(t, p, caller_playing=False)]
        drill._recognise_in_pause()
    return kinds


def test_recognition_starts_two_frames_into_a_pause_not_at_a_one_frame_dip() -> None:
    from roleplay.session.live import RECOGNITION_BEFORE

    drill, early = _drill(), _Early("Ik blijf bij u aan de lijn.")
    _run_pause(drill, early, speech_s=1.0, pause_s=0.6, dip_at_s=0.5, resume=False)
    assert len(early.starts) == 1, early.starts  # the dip at 0.5 s started nothing
    (span, at_s), = early.starts
    assert at_s - span[1] == pytest.approx(0.064, abs=1e-6)
    before, early = _drill(recognition=RECOGNITION_BEFORE), _Early("Ik blijf bij u aan de lijn.")
    _run_pause(before, early, speech_s=1.0, pause_s=0.6, resume=False)
    assert early.starts[0][1] - early.starts[0][0][1] == pytest.approx(0.16, abs=0.02)


@pytest.mark.parametrize(("text", "ends"), [
    ("Ik heb het adres, en", False),  # trails off: the caller waits 1.2 s
    ("Ik stuur een dokter, want", False),
    ("Ik blijf bij u aan de lijn.", True),  # finished (no pitch in a silent track): 0.5 s
    ("Wat is de geboortedatum van uw man?", True),  # a question: 0.3 s
])
def test_words_ready_early_end_a_finished_turn_and_keep_one_that_trails_off(text, ends) -> None:
    """The drill's pause decision with the words there two frames into a 0.8 s pause: a trainee
    who trails off ('en ...') is not cut off; a finished sentence or a question is answered in
    the pause."""
    kinds = _run_pause(_drill(), _Early(text), speech_s=1.0, pause_s=0.8)
    ended = [t_s for kind, t_s in kinds if kind == "end-of-turn"]
    assert bool(ended) is ends, kinds
    if ends:  # in the pause (speech ended at 0.992 s), sooner than the fixed 0.7 s
        assert ended[0] - 0.992 < 0.7 - 0.1, ended


BENCH_PAUSED = ("Ik stuur nu een dokter naar u toe, want, |0.9| hij moet echt even naar hem kijken.",
                "De dokter weet ervan, dus, |0.8| hij komt zo snel mogelijk.",
                "Ik heb het adres, en, |0.8| de dokter rijdt nu weg.")
BETWEEN_SENTENCES = "U heeft gelijk dat het lang duurt. | Dat spijt me."  # 0.5 s, 0.48 s to the VAD
BENCH_FINISHED = ("Ik begrijp dat u ongerust bent.", "Ik blijf bij u aan de lijn.")


@pytest.fixture(scope="module")
def replayed(transcriber):
    """The paused and the finished bench turns replayed with real espeak-ng speech and the real
    recognizer, every rule, the words there 0.3 s after recognition starts."""
    from roleplay.bench.live import espeak
    from roleplay.bench.turnreplay import replay

    ends = replay([*BENCH_PAUSED, BETWEEN_SENTENCES, *BENCH_FINISHED], transcriber,
                  speak=lambda t: espeak(t).samples, recognition_s=0.3)
    for e in ends:
        print(e)
    return ends


@pytest.mark.slow
def test_replayed_bench_turns_end_sooner_and_no_more_often_too_soon(replayed) -> None:
    """On the replay's own clock (no load), R fixed at 0.3 s: the rule from words and pitch ends
    no mid-sentence pause ('want, |0.9| ...', 'en, |0.8| ...'), which the fixed 0.7 s does.
    Recognition started two frames into the pause brings the words 0.086 s sooner; with the old
    0.3 s after a falling sentence ("quick") that answers finished turns sooner but also the pause
    between two sentences; the default's 0.5 s waits it out and answers finished turns sooner than
    the fixed 0.7 s."""
    rule = {name: [e for e in replayed if e.rule == name] for name in ("fixed", "cues", "quick", "fast")}
    assert [e.text for e in rule["fixed"] if e.premature] == list(BENCH_PAUSED)
    assert sum(e.premature for e in rule["cues"]) == 0
    assert [e.text for e in rule["quick"] if e.premature] == [BETWEEN_SENTENCES]
    assert sum(e.premature for e in rule["fast"]) == 0
    done = {name: {e.text: e.delay_s for e in ends if e.text in BENCH_FINISHED}
            for name, ends in rule.items()}
    for text in BENCH_FINISHED:
        assert done["cues"][text] < done["fixed"][text] - 0.1
        assert done["quick"][text] <= done["cues"][text] - 0.08  # 0.15 - 0.064 s sooner
        assert done["fast"][text] < done["fixed"][text] - 0.1


@pytest.mark.slow
def test_the_lean_live_analysis_hears_as_well_for_less_cpu(transcriber) -> None:
    """The turn analysed for the caller as now (greedy, no beam retry, no pyin pitch) against as
    before, on espeak-ng lines through the real recognizer: about the same words (scored against
    the script), no pitch, and clearly less CPU time (measured interleaved, so both meet the
    same load)."""
    import re
    import time
    from difflib import SequenceMatcher

    from roleplay.analysis.pipeline import TimingSettings, analyse_turn
    from roleplay.bench.live import espeak
    from roleplay.session.live import RECOGNITION_BEFORE, LiveRecognition, _live_transcriber

    def words(text: str) -> list[str]:
        return re.findall(r"[^\W\d_]+", text.lower())

    lines = ("Huisartsenpost, goedenavond, u spreekt met Anna.", "Dat is heel vervelend voor u.",
             "U heeft gelijk dat het lang duurt.", "Wat ik wel kan doen is de dokter nu bellen.",
             "Ik heb het adres, de dokter rijdt nu weg.", "Wat is de geboortedatum van uw man?")
    cpu = {"before": 0.0, "now": 0.0}
    score = {"before": 0.0, "now": 0.0}
    for rep in range(2):  # the first round warms up (pyin's first call compiles)
        for line in lines:
            for name, live in (("before", RECOGNITION_BEFORE), ("now", LiveRecognition())):
                asr = _live_transcriber(transcriber, live.retry_beam_size)
                began = time.process_time()
                turn = analyse_turn(audio=espeak(line), speaker="trainee", language="nl",
                                    transcriber=asr, settings=TimingSettings(measure_pitch=live.measure_pitch))
                if rep:
                    cpu[name] += time.process_time() - began
                    assert turn is not None
                    score[name] += SequenceMatcher(None, words(line), words(turn.text)).ratio() / len(lines)
                    assert (turn.pitch_median_hz is None) is (name == "now")
    print(cpu, score)
    assert score["now"] >= score["before"] - 0.05
    assert cpu["now"] < 0.85 * cpu["before"]
