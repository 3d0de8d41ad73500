"""The seed's sequence for abuse: name the behaviour, announce the end, end the call; how a
scenario's caller takes each step (`boundaries:`), the simulated trainee following it, and a whole
severe demo call on real speech that needs all three steps."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from roleplay.caller.scenario import (
    Boundaries,
    TurnObservation,
    choose_situation,
    initial_state,
    list_scenarios,
    load_scenario,
    outcome,
    react,
)
from roleplay.caller.simtrainee import Heard, SimTrainee, load_trainee_lines


def _abusive_state(scenario_id: str = "nl-scheldende-beller", anger: float = 7.5):
    s = load_scenario(scenario_id)
    return s, replace(initial_state(s), anger=anger, situation="abusive", turn_index=3)


def test_the_first_boundary_is_shrugged_off_and_calms_nothing():
    s, state = _abusive_state()
    assert s.boundaries.ignore_first == 1
    turn = TurnObservation(frozenset({"boundary", "acknowledgement", "silence"}))
    after, changes = react(s, state, turn, rng=random.Random(1))
    assert [c.reason for c in changes] == ["boundary-ignored"]
    assert after.anger > state.anger and after.boundaries_heard == 1
    assert choose_situation(s, after) == "abusive"
    # the second boundary reaches him
    again, changes = react(s, after, TurnObservation(frozenset({"boundary"})), rng=random.Random(1))
    assert [c.reason for c in changes] == ["boundary"] and again.anger < after.anger


@pytest.mark.parametrize(("anger", "expected", "situation"), [
    (5.5, "stop", "apology"),  # below stop_below (6): stops and apologises
    (7.5, "carry-on", "abusive"),  # in between: carries on
])
def test_the_end_announcement_by_the_callers_anger(anger, expected, situation):
    s, state = _abusive_state(anger=anger)
    state = replace(state, boundaries_heard=1)
    after, changes = react(s, state, TurnObservation(frozenset({"end-announcement", "boundary"})),
                           rng=random.Random(2))
    assert after.announcement == expected
    if expected == "carry-on":
        assert [c.reason for c in changes] == ["announcement-ignored"]
    assert choose_situation(s, after) == situation


def test_a_caller_past_hang_up_from_hangs_up_at_the_announcement():
    s, state = _abusive_state(anger=8.0)
    s = replace(s, boundaries=Boundaries(ignore_first=0, stop_below=6.0, hang_up_from=7.5))
    after, changes = react(s, state, TurnObservation(frozenset({"end-announcement"})),
                           rng=random.Random(3))
    assert changes[-1].reason == "announcement-hang-up"
    assert choose_situation(s, after) == "hanging_up"


def test_the_trainee_ending_the_call_ends_it():
    s, state = _abusive_state()
    after, _ = react(s, state, TurnObservation(frozenset(), trainee_ended_call=True),
                     rng=random.Random(4))
    assert outcome(s, after, elapsed_s=30.0) == "ended-by-trainee"


def test_severe_scenarios_need_the_whole_sequence():
    """With the defaults a boundary calms at once; the severe shipped scenarios shrug off the
    first and carry on after an announcement at the anger they start with."""
    severe = [s for s in list_scenarios() if s.intensity == "severe" and s.swearing]
    assert severe
    for s in severe:
        assert s.boundaries.ignore_first >= 1, s.id
        assert s.boundaries.stop_below <= s.anger.start, s.id
        assert s.rules.abusive_at <= s.anger.start, s.id


def test_good_trainee_names_announces_and_ends_poor_one_shouts_back():
    s = load_scenario("nl-scheldende-beller")
    lines = load_trainee_lines("nl")
    good = SimTrainee(style="good", scenario=s, lines=lines, rng=random.Random(1))
    poor = SimTrainee(style="poor", scenario=s, lines=lines, rng=random.Random(1))
    abuse = Heard("abusive", 8.0, True, duration_s=2.0)
    steps = [good.reply(abuse) for _ in range(3)]
    assert [t.intent for t in steps] == ["boundary", "end_announcement", "end_call"]
    assert [t.ends_call for t in steps] == [False, False, True]
    assert all(not t.ends_call for t in (poor.reply(abuse) for _ in range(4)))


def test_warm_and_cold_transfer():
    s = load_scenario("nl-doorverbinden")
    lines = load_trainee_lines("nl")
    good = SimTrainee(style="good", scenario=s, lines=lines, rng=random.Random(1))
    intents = [good.reply(Heard("calming", 4.0, False, 3.0)).intent for _ in range(4)]
    # name and date of birth first, so the colleague can be briefed; then the warm transfer
    assert intents[:2] == ["acknowledgement+question"] * 2 and intents[2] == "transfer"
    poor = SimTrainee(style="poor", scenario=s, lines=lines, rng=random.Random(1))
    said = [poor.reply(Heard("venting", 6.0, False, 2.0)) for _ in range(5)]
    assert "cold_transfer" in [t.intent for t in said]


@pytest.mark.slow
def test_a_severe_demo_needs_the_whole_sequence_and_the_report_says_so(tmp_path, transcriber,
                                                                        tts_cache):
    """Real espeak speech through the real recognizer: the good trainee's first boundary is
    shrugged off, the announcement too, and the trainee ends the call; the assessment passes
    announce-end. The poor trainee (arguing back) never calms this caller."""
    from roleplay.app.demo import run_demo
    from roleplay.recording.calldir import read_events

    good = run_demo(scenario_id="nl-scheldende-beller", style="good", seed=1,
                    out_dir=tmp_path / "good", transcriber=transcriber, cache_dir=tts_cache)
    assert good.outcome == "ended-by-trainee"
    events = [e.to_dict() for e in read_events(good.directory)]
    reasons = [e["reason"] for e in events if e["type"] == "anger"]
    assert "boundary-ignored" in reasons and "announcement-ignored" in reasons
    assert good.verdicts()["announce-end"] == "pass"
    # address-behaviour needs the recognizer to hear the abuse in the caller's espeak Dutch, which
    # Whisper base mostly returns empty (issue 12, "anger you can hear"): not asserted here
    poor = run_demo(scenario_id="nl-scheldende-beller", style="poor", seed=1,
                    out_dir=tmp_path / "poor", transcriber=transcriber, cache_dir=tts_cache)
    assert poor.outcome != "calmed"
    assert poor.anger_peak > good.anger_peak


def test_the_caller_hears_a_cold_transfer_when_the_colleague_is_not_briefed():
    from roleplay.analysis.pipeline import Phrase, Turn
    from roleplay.session.caller_session import observe

    def turn(text: str, phrases: tuple[str, ...]) -> Turn:
        return Turn(index=3, speaker="trainee", start_s=10.0, end_s=13.0, text=text, words=(),
                    syllables=9, syllables_transcript=9, syllables_acoustic=9,
                    syllable_source="transcript", pause_total_s=0.0, speech_rate_syll_s=4.0,
                    articulation_rate_syll_s=4.0, loudness_dbfs=-30.0, pitch_median_hz=120.0,
                    pitch_spread_st=2.0,
                    phrases=tuple(Phrase("transfer", p, 10.0, p) for p in phrases), abuse=(),
                    rate_vs_baseline_pct=None, loudness_vs_baseline_db=None)

    def seen(t: Turn) -> frozenset[str]:
        return observe(t, caller_start_s=5.0, caller_end_s=9.0, caller_situation="calming",
                       ends_call=False, language="en").observation.behaviours

    cold = seen(turn("I'll put you through.", ("ill put you through",)))
    assert "cold-transfer" in cold and "transfer" not in cold
    # the recognizer garbled "my colleague" but kept "briefed": still warm
    warm = seen(turn("I will put you through to my calling. I have already briefed the nurse.",
                     ("i will put you through to",)))
    assert "transfer" in warm and "cold-transfer" not in warm
    two = seen(turn("I'll put you through to my colleague.", ("ill put you through to",
                                                              "my colleague")))
    assert "transfer" in two


def test_ending_the_call_is_right_only_after_naming_and_announcing():
    """The assessment's announce-end: an `ended-by-trainee` call passes after boundary then
    announcement, and fails when the trainee hung up without them (even with no abuse heard)."""
    from roleplay.analysis.assessment import assess
    from roleplay.analysis.pipeline import Analysis, Baseline, Phrase, Turn

    def turn(index: int, speaker: str, start_s: float, categories: tuple[str, ...] = (),
             abuse: tuple[str, ...] = ()) -> Turn:
        return Turn(index=index, speaker=speaker, start_s=start_s, end_s=start_s + 2.0,
                    text="...", words=(), syllables=6, syllables_transcript=6,
                    syllables_acoustic=6, syllable_source="transcript", pause_total_s=0.0,
                    speech_rate_syll_s=4.0, articulation_rate_syll_s=4.0, loudness_dbfs=-30.0,
                    pitch_median_hz=120.0, pitch_spread_st=2.0,
                    phrases=tuple(Phrase(c, c, start_s, c) for c in categories), abuse=abuse,
                    rate_vs_baseline_pct=None, loudness_vs_baseline_db=None)

    def verdict(trainee_categories: list[tuple[str, ...]]) -> str:
        turns = [turn(0, "caller", 0.0)]
        for k, cats in enumerate(trainee_categories):
            turns += [turn(2 * k + 1, "trainee", 3.0 + 6 * k, cats),
                      turn(2 * k + 2, "caller", 6.0 + 6 * k)]
        baseline = Baseline("none", (), 0.0, 0, None, None, None, None, None, "")
        a = Analysis(language="nl", duration_s=60.0, has_caller=True, has_trainee=True,
                     turns=tuple(turns), backchannels=(), interruptions=(),
                     response_latencies_s=(), baseline=baseline, anger=(),
                     call={"outcome": "ended-by-trainee"}, warnings=())
        return {r.id: r.verdict for r in assess(a)}["announce-end"]

    assert verdict([("boundary",), ("end-announcement",), ()]) == "pass"
    assert verdict([(), ()]) == "fail"  # hung up without a word
    assert verdict([("end-announcement",), ()]) == "fail"  # announced without naming it first
