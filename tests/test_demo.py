"""The simulated trainee and `roleplay demo`: whole calls on real synthesized audio through the
real recognizer, for every shipped scenario and both trainee styles.

Each call is made once per module and shared by the tests that look at it (16 calls, plus one
with the trainee's audio silenced)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from roleplay.analysis.pipeline import Turn
from roleplay.app.demo import DemoResult, free_directory, run_demo
from roleplay.audio.clip import Audio
from roleplay.caller.scenario import list_scenarios, load_scenario
from roleplay.caller.simtrainee import (
    GOOD_GAP_S,
    POOR_OVERLAP_S,
    Heard,
    SimTrainee,
    load_trainee_lines,
)
from roleplay.recording.calldir import load_call
from roleplay.session.caller_session import observe
from roleplay.speech import prosody
from roleplay.speech.syllables import count_syllables

SEED = 1
SCENARIOS = [s.id for s in list_scenarios()]
GOOD_OUTCOMES = {"calmed", "transferred", "ended-by-trainee"}


# --------------------------------------------------------------------------- fast: the policy


def _trainee(style: str, scenario_id: str = "nl-visite-derde-keer", seed: int = 3) -> SimTrainee:
    scenario = load_scenario(scenario_id)
    return SimTrainee(style=style, scenario=scenario, lines=load_trainee_lines(scenario.language),
                      rng=random.Random(seed))


def _replies(style: str, seed: int, scenario_id: str = "nl-visite-derde-keer") -> list:
    t = _trainee(style, scenario_id, seed)
    out = [t.greeting()]
    for situation, anger, abusive in [("opening", 6.5, False), ("venting", 7.0, False),
                                      ("escalating", 8.0, False), ("abusive", 8.5, True),
                                      ("abusive", 8.5, True), ("calming", 3.5, False)]:
        out.append(t.reply(Heard(situation, anger, abusive, duration_s=4.0)))
    return out


def test_policy_is_deterministic_for_a_seed():
    assert _replies("good", 5) == _replies("good", 5)
    assert _replies("poor", 5) == _replies("poor", 5)


def test_good_trainee_greets_waits_and_speaks_slower_and_softer_when_the_caller_is_angry():
    replies = _replies("good", 2, "nl-scheldende-beller")
    greeting = replies[0]
    assert greeting.intent == "greeting" and greeting.delivery.rate_factor == 1.0
    lines = load_trainee_lines("nl")
    assert lines.name in greeting.text and "huisartsenpost" in greeting.text
    for r in replies[1:]:
        assert GOOD_GAP_S[0] <= r.delivery.gap_s <= GOOD_GAP_S[1]  # never interrupts
    angry = replies[1:6]
    assert all(r.delivery.rate_factor <= 0.9 and r.delivery.gain_db <= -3 for r in angry)
    intents = [r.intent for r in replies]
    assert intents[1] == intents[2] == "listen"
    # abusive: first name the behaviour, then announce the end (ending the call is the next step,
    # tests/test_boundary_sequence.py)
    assert intents[4] == "boundary"
    assert intents[5] == "end_announcement" and not replies[5].ends_call


def test_poor_trainee_is_fast_loud_and_cuts_in():
    replies = _replies("poor", 2)
    assert "huisartsenpost" not in replies[0].text.lower()
    for r in replies:
        assert r.delivery.rate_factor > 1.1 and r.delivery.gain_db > 2
    cuts = [r for r in replies[1:] if r.delivery.gap_s < 0]
    assert cuts, "the poor trainee never interrupted"
    for r in cuts:
        assert POOR_OVERLAP_S[0] - 1e-9 <= -r.delivery.gap_s <= POOR_OVERLAP_S[1]
    intents = {r.intent.removesuffix("+question") for r in replies}  # it asks along the way
    assert intents >= {"interrupt", "argument"} and intents & {"vague", "negative"}
    assert any(r.asks for r in replies[1:3]), "the poor trainee asks from the first replies on"


def test_trainee_lines_load_for_every_scenario_language():
    for language in {load_scenario(s).language for s in SCENARIOS}:
        lines = load_trainee_lines(language)
        assert lines.calibration and lines.lines("good", "end_announcement")


def _turn(start_s: float, end_s: float, text: str = "ik hoor het", **kw) -> Turn:
    base = dict(index=0, speaker="trainee", start_s=start_s, end_s=end_s, text=text, words=(),
                syllables=4, syllables_transcript=4, syllables_acoustic=4,
                syllable_source="transcript", pause_total_s=0.0, speech_rate_syll_s=4.0,
                articulation_rate_syll_s=4.0, loudness_dbfs=-30.0, pitch_median_hz=200.0,
                pitch_spread_st=2.0, phrases=(), abuse=())
    base.update(kw)
    return Turn(**base)


def test_observation_comes_from_the_measured_turn():
    # cut in 1.5 s before the caller's end, louder and faster than baseline
    seen = observe(_turn(8.5, 10.5, rate_vs_baseline_pct=25.0, loudness_vs_baseline_db=4.0),
                   caller_start_s=5.0, caller_end_s=10.0, caller_situation="venting",
                   ends_call=False, language="nl")
    assert {"interruption", "louder", "faster"} <= seen.observation.behaviours
    # waited a second, short, softer
    seen = observe(_turn(11.1, 12.5, rate_vs_baseline_pct=-15.0, loudness_vs_baseline_db=-4.0),
                   caller_start_s=5.0, caller_end_s=10.0, caller_situation="venting",
                   ends_call=False, language="nl")
    assert seen.observation.behaviours == {"silence", "let-vent"}
    # nothing heard at all
    seen = observe(None, caller_start_s=5.0, caller_end_s=10.0, caller_situation="venting",
                   ends_call=False, language="nl")
    assert seen.observation.trainee_silent


def test_free_directory(tmp_path):
    assert free_directory(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "call").mkdir()
    assert free_directory(tmp_path / "call") == tmp_path / "call"  # empty is fine
    (tmp_path / "call" / "meta.json").write_text("{}")
    assert free_directory(tmp_path / "call") == tmp_path / "call-2"


# --------------------------------------------------------------------------- whole calls


@pytest.fixture(scope="module")
def demo(tmp_path_factory, transcriber, tts_cache):
    root = tmp_path_factory.mktemp("demo")
    done: dict[tuple[str, str], DemoResult] = {}

    def run(scenario_id: str, style: str) -> DemoResult:
        if (scenario_id, style) not in done:
            done[scenario_id, style] = run_demo(
                scenario_id=scenario_id, style=style, seed=SEED,
                out_dir=root / f"{scenario_id}-{style}", transcriber=transcriber,
                cache_dir=tts_cache)
        return done[scenario_id, style]

    return run


@pytest.mark.model
@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_good_trainee_calms_the_caller_and_the_call_ends_well(demo, scenario_id):
    r = demo(scenario_id, "good")
    expected = set(load_scenario(scenario_id).ending.expected)
    assert r.outcome in expected & GOOD_OUTCOMES, (r.outcome, expected)
    if r.outcome == "ended-by-trainee":
        # A caller who ignores the boundary and the announcement does not calm down (each ignored
        # step adds anger): success is the seed's sequence, named, then announced, then ended.
        heard = [set(e.get("behaviours") or ()) for e in load_call(r.directory).events if e["type"] == "trainee-turn"]
        named = next(i for i, b in enumerate(heard) if "boundary" in b)
        announced = next(i for i, b in enumerate(heard) if "end-announcement" in b)
        assert named < announced, heard
    else:
        assert r.anger_end < r.anger_start, r


@pytest.mark.model
@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_poor_trainee_makes_the_caller_angrier(demo, scenario_id):
    r = demo(scenario_id, "poor")
    assert r.anger_end > r.anger_start or r.outcome == "caller-hung-up", (r.outcome, r.anger_end)
    assert r.outcome not in GOOD_OUTCOMES


# For a verdict tie: a figure (or tuple of figures, compared in order) where higher is better.
TIE_FIGURES = {
    "greeting": lambda f: -f["time_to_answer_s"],
    "stay-calm": lambda f: -(f["loudness_change_db"] or 0.0),
    "slower-softer": lambda f: -(f["rate_change_pct"] or 0.0),
    "breathe": lambda f: -f["pitch_change_st"],
    # cutting in while the caller vents is the worse failure; then the caller's share of talk
    "let-vent": lambda f: (-f["trainee_interruptions_while_venting"], f["caller_share_pct"]),
    "no-interrupt": lambda f: -f["count"],
    "no-discussion": lambda f: -f["count"],
    "positive": lambda f: f["positive"] - f["negative"],
    "silence": lambda f: f["median_latency_s"],
    "concrete": lambda f: f["concrete"] - f["vague"],
}


@pytest.mark.model
@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_good_call_scores_better_than_poor_call(demo, scenario_id):
    good = {a.id: a for a in demo(scenario_id, "good").advice}
    poor = {a.id: a for a in demo(scenario_id, "poor").advice}
    rank = {"fail": 0, "pass": 1}
    problems = []
    both = [i for i in good if good[i].verdict in rank and poor[i].verdict in rank]
    assert both, "no advice item exercised by both calls"
    for item in both:
        g, p = good[item], poor[item]
        if rank[g.verdict] != rank[p.verdict]:
            if g.verdict != "pass":
                problems.append(f"{item}: good {g.verdict}, poor {p.verdict}")
            continue
        if item == "slower-softer" and None in (g.figures["rate_change_pct"], p.figures["rate_change_pct"]):
            # a pace not judged (too few trusted syllables) is no figure to compare: loudness is
            gv, pv = -(g.figures["loudness_change_db"] or 0.0), -(p.figures["loudness_change_db"] or 0.0)
            if gv < pv:
                problems.append(f"{item}: both {g.verdict}, loudness good {g.figures} vs poor {p.figures}")
        elif item in TIE_FIGURES:
            gv, pv = TIE_FIGURES[item](g.figures), TIE_FIGURES[item](p.figures)
            if gv < pv:
                problems.append(f"{item}: both {g.verdict}, figures good {g.figures} "
                                f"vs poor {p.figures}")
    passes = sum(a.verdict == "pass" for a in good.values())
    assert passes > sum(a.verdict == "pass" for a in poor.values())
    assert not problems, problems


@pytest.mark.model
def test_call_directory_holds_the_call_and_its_reasons(demo):
    r = demo("nl-visite-derde-keer", "good")
    rec = load_call(r.directory)
    meta = rec.meta
    assert meta["status"] == "complete" and meta["outcome"] == r.outcome
    for key in ("scenario", "language", "trainee", "seed", "needs", "anger_start", "anger_peak",
                "anger_end"):
        assert key in meta, key
    assert meta["needs"] == list(load_scenario("nl-visite-derde-keer").needs)
    assert rec.calibration is not None and rec.calibration.duration_s > 2
    assert rec.caller.duration_s == rec.trainee.duration_s
    types = [e["type"] for e in rec.events]
    assert types[0] == "call-start" and types[-1] == "call-end"
    assert types.count("caller-line") == r.caller_lines
    assert types.count("trainee-turn") == r.trainee_turns
    anger = [e for e in rec.events if e["type"] == "anger"]
    assert anger and all({"anger", "delta", "reason"} <= set(e) for e in anger)
    assert any(e["delta"] < 0 and e["reason"] in ("acknowledgement", "concrete-offer")
               for e in anger)
    data = json.loads((r.directory / "analysis.json").read_text())
    assert data["call"]["outcome"] == r.outcome
    assert data["call"]["anger_end"] == r.anger_end
    report = (r.directory / "report.html").read_text()
    assert len(report) > 1000
    # the trainee is the simulated one, named so for a receptionist, not by its style "good"
    assert "<b>Cursist</b>Gesimuleerde cursist (goed)</div>" in report


@pytest.mark.model
def test_poor_trainee_interrupts_on_the_recorded_timeline(demo):
    r = demo("nl-visite-derde-keer", "poor")
    events = load_call(r.directory).events
    cuts = [e for e in events if e["type"] == "trainee-turn" and e.get("overlap_s", 0) >= 1.0]
    assert cuts and all("interruption" in e["behaviours"] for e in cuts)
    assert any(i.by == "trainee" for i in r.analysis.interruptions)
    assert any(e["type"] == "caller-line" and e["situation"] == "interrupted" for e in events)


def _line_measures(caller: Audio, event: dict, language: str) -> tuple[float, float]:
    """Loudness (dBFS over speech frames) and articulation rate (syllables of the line's text per
    second of speaking time measured on the audio, pauses of 0.25 s or more left out)."""
    line = caller.slice_s(event["t_s"], event["end_s"])
    speaking_s = line.duration_s - sum(b - a for a, b in prosody.pauses_s(line))
    rate = count_syllables(event["text"], language=language) / max(speaking_s, 1e-3)
    return prosody.loudness_dbfs(line), rate


@pytest.mark.model
def test_caller_prosody_follows_anger_on_the_audio(demo):
    """Per scenario (its good and poor call together), lines said at anger >= 7 against lines
    at anger <= 5. Single lines differ in wording, so the check is on the scenarios' median."""
    loud_db, rate_ratio = [], []
    for scenario_id in SCENARIOS:
        rows = []
        for style in ("good", "poor"):
            rec = load_call(demo(scenario_id, style).directory)
            rows += [(e["anger"], *_line_measures(rec.caller, e, rec.meta["language"]))
                     for e in rec.events if e["type"] == "caller-line"]
        high = [r for r in rows if r[0] >= 7.0]
        low = [r for r in rows if r[0] <= 5.0]
        if high and low:
            loud_db.append(np.mean([r[1] for r in high]) - np.mean([r[1] for r in low]))
            rate_ratio.append(np.mean([r[2] for r in high]) / np.mean([r[2] for r in low]))
    assert len(loud_db) >= 6, "too few scenarios with both calm and furious lines"
    assert np.median(loud_db) >= 1.5, loud_db
    assert np.median(rate_ratio) >= 1.08, rate_ratio
    assert sum(d > 0 for d in loud_db) >= len(loud_db) - 1, loud_db
    assert sum(r > 1 for r in rate_ratio) >= len(rate_ratio) - 1, rate_ratio


@pytest.mark.model
def test_caller_reacts_to_the_audio_not_the_script(tmp_path, transcriber, tts_cache):
    """The good script with its audio replaced by silence must not calm the caller."""

    def silenced(audio: Audio) -> Audio:
        return Audio(np.zeros_like(audio.samples), audio.rate_hz)

    r = run_demo(scenario_id="nl-visite-derde-keer", style="good", seed=SEED,
                 out_dir=tmp_path / "silent", transcriber=transcriber, cache_dir=tts_cache,
                 trainee_audio=silenced, max_caller_lines=4)
    assert r.outcome != "calmed"
    assert r.anger_end >= r.anger_start
    turns = [e for e in load_call(r.directory).events if e["type"] == "trainee-turn"][1:]
    assert turns and all(e["behaviours"] == ["dead-silence"] for e in turns)
    assert not r.analysis.turns_of("trainee")  # the full analysis heard no trainee either
