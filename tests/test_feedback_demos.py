"""Feedback a trainer would sign (issue 15), checked on whole simulated calls through the real
recognizer: every scenario with a good and a poor trainee (seeds 1-3, see below), made once for the module.

In every call: no sentence names a figure that met its target as the cause of a fail, no `pass`
rests on no evidence, Dutch text has decimal commas throughout (every generated sentence and the
report's HTML). The poor-trainee call of the issue shows its moments with quotes and audio and a
say-instead for each argument phrase; a good trainee's report shows the moments that calmed the
caller. To keep the suite lean, the issue's scenario runs with seeds 1-3 as whole calls and every
other scenario with one seed (1, 2 and 3 in turn) and a few caller lines;
ROLEPLAY_TEST_FULL_DEMO_MATRIX=1 runs every scenario with all three seeds (48 such short calls
took about 20 minutes here with the machine shared)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from roleplay.app.demo import run_demo
from roleplay.caller.scenario import list_scenarios
from roleplay.report.text import explain_figures, moment_sentence

SCENARIOS = [s.id for s in list_scenarios()]
SEEDS = (1, 2, 3)
ISSUE_SCENARIO = "nl-visite-derde-keer"
SHORT_CALL_LINES = 3

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.fixture(scope="module")
def demos(tmp_path_factory, transcriber, tts_cache) -> dict[tuple[str, str, int], dict]:
    root = tmp_path_factory.mktemp("feedback-demos")
    out = {}
    full = os.environ.get("ROLEPLAY_TEST_FULL_DEMO_MATRIX") == "1"
    for n, scenario in enumerate(SCENARIOS):
        seeds = SEEDS if full or scenario == ISSUE_SCENARIO else (SEEDS[n % len(SEEDS)],)
        for style in ("good", "poor"):
            for seed in seeds:
                lines = {} if scenario == ISSUE_SCENARIO else {"max_caller_lines": SHORT_CALL_LINES}
                r = run_demo(scenario_id=scenario, style=style, seed=seed, out_dir=root / f"{scenario}-{style}-{seed}",
                             transcriber=transcriber, cache_dir=tts_cache, **lines)
                data = json.loads(r.json_path.read_text(encoding="utf-8"))
                out[scenario, style, seed] = {"data": data, "html": r.report_path.read_text(encoding="utf-8")}
    return out


# a fail reason names figures that missed their target: each predicate says so from its figures
FAILED_TARGET = {
    "loudness-climbed": lambda f: f["loudness_change_db"] >= f["limit_db"],
    "rate-climbed": lambda f: f["rate_change_pct"] >= f["limit_pct"],
    "pitch-climbed": lambda f: f["pitch_change_st"] >= f["limit_st"],
    "rate-went-up": lambda f: f["rate_change_pct"] > f["limit_pct"],
    "loudness-went-up": lambda f: f["loudness_change_db"] > f["limit_db"],
    "not-slower-or-softer": lambda f: ((f["rate_change_pct"] is None or f["rate_change_pct"] > f["target_pct"])
                                       and (f["loudness_change_db"] is None
                                            or f["loudness_change_db"] > f["target_db"])),
    "pitch-rose": lambda f: f["pitch_change_st"] >= f["limit_st"],
    "caller-share-below-target": lambda f: f["caller_share_pct"] < f["target_pct"],
    "trainee-interrupted-while-venting": lambda f: f["count"] > 0,
    "trainee-interrupted": lambda f: f["count"] > 0 and len(f["onsets_s"]) == f["count"],
    "argument-phrase": lambda f: f["count"] > 0 and f["examples"],
    "more-negative-than-positive": lambda f: f["negative"] > f["positive"],
    "no-pause-after-caller": lambda f: f["max_latency_s"] < f["threshold_s"],
    "no-concrete-offer": lambda f: f["vague"] > 0,
    "more-vague-than-concrete": lambda f: f["vague"] > f["concrete"],
    "one-transfer-phrase": lambda f: len(f["transfer_phrases"]) == 1,
    "behaviour-not-named": lambda f: f["abusive_turn"] is not None,
    "no-end-announcement": lambda f: True,  # no figure to misquote: the announcement is absent
    "end-announced-without-warning": lambda f: f["announcement_turn"] is not None,
    "end-announced-before-warning": lambda f: f["announcement_turn"] is not None,
    "ended-without-warning": lambda f: True,
    "ended-without-announcement": lambda f: f["warning_turn"] is not None,
    "no-greeting-in-first-turn": lambda f: True,
    "no-transfer-phrase": lambda f: True,
}
# a pass reason rests on evidence: something heard or measured that meets the target
EVIDENCE = {
    "greeting-in-first-turn": lambda f: bool(f["greeting_phrases"]),
    "voice-steady": lambda f: any(f[k] is not None for k in ("loudness_change_db", "rate_change_pct",
                                                             "pitch_change_st")),
    # the pace was not judged (too few trusted syllables): loudness and pitch are the evidence
    "voice-steady-pace-not-judged": lambda f: f["loudness_change_db"] is not None or f["pitch_change_st"] is not None,
    "slower": lambda f: f["rate_change_pct"] <= f["target_pct"],
    "softer": lambda f: f["loudness_change_db"] <= f["target_db"],
    "pitch-near-baseline": lambda f: f["pitch_change_st"] < f["limit_st"],
    "caller-had-the-floor": lambda f: f["caller_share_pct"] >= f["target_pct"],
    "no-interruption": lambda f: True,  # both parties spoke (else not-applicable)
    "no-argument-phrase": lambda f: f["words"] > 0,
    "more-positive-than-negative": lambda f: f["positive"] > 0 and f["positive"] >= f["negative"],
    "paused-after-caller": lambda f: f["long_pauses"] > 0,
    "concrete-offer": lambda f: f["concrete"] > 0 and f["concrete"] >= f["vague"],
    "transfer-announced-and-briefed": lambda f: len(f["transfer_phrases"]) >= 2,
    "behaviour-named": lambda f: f["named_in_turn"] is not None,
    "end-announced-after-warning": lambda f: None not in (f["warning_turn"], f["announcement_turn"]),
}


def _sentences(data: dict) -> list[str]:
    lang = data["language"]
    out = [a["feedback"] for a in data["advice"]]
    out += [s for a in data["advice"] for s in explain_figures(a["id"], a["figures"], lang)]
    out += [moment_sentence(m, lang) for m in data["moments"]]
    out += [x["instead"] for x in data["say_instead"]]
    return out


def _visible_text(page: str) -> str:
    """The report's words: no style, script, tags, embedded audio or the version in the footer."""
    body = page.split("</style>", 1)[1]
    body = re.sub(r"<script>.*?</script>|<footer>.*?</footer>", "", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def test_every_fail_names_only_figures_that_missed_their_target_and_every_pass_has_evidence(demos):
    for key, call in demos.items():
        for a in call["data"]["advice"]:
            assert a["reasons"], (key, a["id"])
            for r in a["reasons"]:
                if a["verdict"] == "fail":
                    assert r["code"] in FAILED_TARGET, (key, a["id"], r["code"])
                    assert FAILED_TARGET[r["code"]](r["figures"]), (key, a["id"], r, a["feedback"])
                if a["verdict"] == "pass":
                    assert EVIDENCE[r["code"]](r["figures"]), (key, a["id"], r, a["feedback"])


def test_dutch_text_has_decimal_commas_throughout(demos):
    checked = 0
    for key, call in demos.items():
        data = call["data"]
        wrong = r"\d\.\d" if data["language"] == "nl" else r"\d,\d"
        for s in _sentences(data):
            assert not re.search(wrong, s), (key, s)
            checked += 1
        text = _visible_text(call["html"])
        assert not re.search(wrong, text), (key, re.findall(rf".{{40}}{wrong}.{{20}}", text)[:3])
    assert checked > 14 * len(demos)


def test_poor_trainee_report_shows_moments_with_quotes_and_audio_and_say_instead(demos):
    call = demos[ISSUE_SCENARIO, "poor", 2]
    data, page = call["data"], call["html"]
    quoted = [m for m in data["moments"] if m["quote"] and m["turn"] is not None]
    assert len(quoted) >= 2 and all(m["kind"] == "anger-rose" for m in quoted), data["moments"]
    section = re.search(r'<section id="moments">(.*?)</section>', page, re.S).group(1)
    assert section.count('class="play" data-t=') >= 2 and 'id="call-audio"' in page
    for m in quoted:
        assert moment_sentence(m, "nl") in section.replace("&#x27;", "'")
    assert page.index('id="moments"') < page.index('id="summary"'), "the report opens with the moments"
    vent = next(a for a in data["advice"] if a["id"] == "let-vent")
    if any(r["code"] == "trainee-interrupted-while-venting" for r in vent["reasons"]) and vent["verdict"] == "fail":
        share = vent["figures"]["caller_share_pct"]
        if share >= vent["figures"]["target_pct"]:
            assert f"{share} %" not in vent["feedback"], vent["feedback"]  # the share passed: not the cause
    arguments = [(t["index"], p["text"]) for t in data["turns"] for p in t["phrases"] if p["category"] == "argument"]
    assert arguments, "the poor trainee argues in this call"
    for turn, phrase in arguments:
        assert any(x["turn"] == turn and x["phrase"] == phrase and x["instead"] for x in data["say_instead"])
        row = re.search(rf'<tr id="turn-{turn}".*?</tr>', page, re.S).group(0)
        assert 'class="instead"' in row, "say-instead beside the turn"


def test_good_trainee_report_shows_the_moments_that_calmed_the_caller(demos):
    for seed in SEEDS:
        call = demos[ISSUE_SCENARIO, "good", seed]
        calmed = [m for m in call["data"]["moments"] if m["kind"] == "anger-fell"]
        assert calmed and all(m["quote"] for m in calmed), call["data"]["moments"]
        assert "werd de beller rustiger" in call["html"]


def test_documents_hold_reasons_moments_and_say_instead_as_the_schema_says(demos):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent.parent / "roleplay/analysis/schemas/analysis.schema.json")
                        .read_text(encoding="utf-8"))
    for key, call in demos.items():
        jsonschema.validate(call["data"], schema)
        assert "moments" in call["data"] and "say_instead" in call["data"], key
