"""Verdicts with reasons (issue 15): every advice item and every reason code, both languages, says
that reason and no figure that did not decide it; moments and say-instead without the model."""

from __future__ import annotations

import re
import string

import pytest

from roleplay.analysis.assessment import (
    REASON_CODES,
    VERDICTS,
    feedback_texts,
    placeholders,
    reason,
    sentence,
    verdict_of,
)
from roleplay.analysis.moments import _anger_groups
from roleplay.analysis.phrases import find_phrases
from roleplay.caller.scenario import list_scenarios
from roleplay.core.advice import ADVICE_IDS
from roleplay.report.say_instead import CATEGORIES, better_sentence
from roleplay.report.text import moment_sentence

LANGUAGES = ("nl", "en")
LISTS = {"greeting_phrases", "examples", "transfer_phrases", "abuse", "onsets_s"}
CASES = [(lang, item, code) for lang in LANGUAGES for item, codes in REASON_CODES.items() for code in codes]


def _values(names: tuple[str, ...], seed: int) -> dict[str, object]:
    """A distinctive value per figure, so each can be found in the sentence (and only there)."""
    out: dict[str, object] = {}
    for n, name in enumerate(sorted(names)):
        k = seed * 10 + n
        if name == "onsets_s":
            out[name] = [12.34 + k, 45.67 + k]
        elif name in LISTS:
            out[name] = [f"zin{k}a", f"zin{k}b"]
        elif name.endswith(("_turn", "count")) or name in {"positive", "negative", "vague", "concrete", "words",
                                                             "long_pauses", "caller_share_pct", "target_pct"}:
            out[name] = 70 + k
        else:
            out[name] = 3.25 + k  # a value whose rounding is visible in both notations
    return out


def _rendered(template: str, name: str, value: object, language: str) -> list[str]:
    """How the clause writes `value` of figure `name`, by the template's own format."""
    spec = next(s for _, n, s, _ in string.Formatter().parse(template) if n == name)
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        text = f"‘{v}’" if isinstance(v, str) else format(v, spec or "")
        out.append(text.replace(".", ",") if language == "nl" and not isinstance(v, str) else text)
    return out


def test_every_item_has_reasons_for_its_verdicts():
    assert set(REASON_CODES) == set(ADVICE_IDS)
    for item, codes in REASON_CODES.items():
        assert all(verdict in VERDICTS for verdict, _ in codes.values()), item
        assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", c) for c in codes), item
        if item != "debrief":
            assert {v for v, _ in codes.values()} >= {"pass", "fail"}, item


@pytest.mark.parametrize(("language", "item", "code"), CASES)
def test_sentence_names_its_reason_and_no_other_figure(language, item, code):
    verdict, names = REASON_CODES[item][code]
    texts = feedback_texts(language)
    template = texts["reasons"][item][code]
    assert placeholders(template) == set(names), "a clause names exactly the figures of its reason"
    figures = _values(names, 1)
    said = sentence(item, [reason(item, code, **figures)], language)
    # the reason's own clause, every figure it rests on, in the language's notation
    clause = template.format_map({k: _Formatted(v, language) for k, v in figures.items()})
    assert clause[1:] in said and said.endswith(".")
    for name, value in figures.items():
        for text in _rendered(template, name, value, language):
            assert text in said, (name, text, said)
    # the figures of the item's other reasons did not decide this one: none of them is named
    others = {n for c, (_, ns) in REASON_CODES[item].items() if c != code for n in ns} - set(names)
    for name, value in _values(tuple(others), 5).items():
        for text in _rendered("{x}", "x", value, language):
            assert text not in said, (name, said)
    if verdict == "fail":
        assert said.rstrip(".").endswith(texts["advice"][item])
    if verdict == "no-evidence":
        assert texts["no_evidence"] in said
    if language == "nl":
        assert not re.search(r"\d\.\d", said), said
    else:
        assert not re.search(r"\d,\d", said), said


class _Formatted:
    def __init__(self, value: object, language: str) -> None:
        self.value, self.language = value, language

    def __format__(self, spec: str) -> str:
        items = self.value if isinstance(self.value, list) else [self.value]
        parts = [f"‘{v}’" if isinstance(v, str) else format(v, spec) for v in items]
        text = ", ".join(parts)
        return re.sub(r"(\d)\.(\d)", r"\1,\2", text) if self.language == "nl" else text


# Reasons that rest on a phrase the recognizer did not find. Misheard words are not unsaid words
# (a live drill heard "Please stop swearing at me." as "clean top, wearing a tummy."), so these
# say what was not heard, never that the trainee did not say it.
NOT_HEARD = [("greeting", "no-greeting-in-first-turn"), ("no-discussion", "no-argument-phrase"),
             ("positive", "no-positive-or-negative-phrase"), ("concrete", "no-concrete-offer"),
             ("concrete", "no-offer-or-vague-phrase"), ("warm-transfer", "no-transfer-phrase"),
             ("warm-transfer", "one-transfer-phrase"), ("address-behaviour", "behaviour-not-named"),
             ("announce-end", "no-end-announcement"), ("announce-end", "ended-without-warning"),
             ("announce-end", "ended-without-announcement"), ("announce-end", "end-announced-without-warning")]


@pytest.mark.parametrize(("item", "code"), NOT_HEARD)
def test_a_phrase_not_found_is_reported_as_not_heard(item, code):
    assert code in REASON_CODES[item]
    assert re.search(r"\bhoorden\b", feedback_texts("nl")["reasons"][item][code]), code
    assert re.search(r"\bhear(d)?\b", feedback_texts("en")["reasons"][item][code]), code


def test_a_reason_with_undeclared_figures_is_refused():
    with pytest.raises(ValueError, match="declared"):
        reason("let-vent", "caller-share-below-target", caller_share_pct=73)  # target missing
    with pytest.raises(KeyError):
        reason("let-vent", "no-such-reason")


def test_the_issue_examples():
    """let-vent failed on an interruption: the sentence says so and does not quote the share that
    passed; positive without any phrase is no-evidence; Dutch figures carry decimal commas."""
    vent = [reason("let-vent", "trainee-interrupted-while-venting", count=1)]
    said = sentence("let-vent", vent, "nl")
    assert verdict_of("let-vent", vent) == "fail" and "in de rede" in said and "%" not in said
    none = [reason("positive", "no-positive-or-negative-phrase")]
    assert verdict_of("positive", none) == "no-evidence"
    calm = [reason("stay-calm", "loudness-climbed", loudness_change_db=5.4, limit_db=2.0),
            reason("stay-calm", "rate-climbed", rate_change_pct=25.0, limit_pct=10.0)]
    said = sentence("stay-calm", calm, "nl")
    assert "+5,4 dB" in said and "+25 %" in said and not re.search(r"\d\.\d", said)


def test_a_fail_shows_only_its_failing_reasons():
    both = [reason("let-vent", "caller-had-the-floor", caller_share_pct=73, target_pct=60),
            reason("let-vent", "trainee-interrupted-while-venting", count=2)]
    said = sentence("let-vent", both, "en")
    assert verdict_of("let-vent", both) == "fail" and "73" not in said and "2 times" in said


def test_anger_events_group_per_reaction_with_the_reasons_that_pushed_that_way():
    events = [
        {"t_s": 0.0, "type": "call-start", "anger": 6.5},
        {"t_s": 6.754, "type": "anger", "anger": 7.25, "delta": 0.75, "reason": "interruption"},
        {"t_s": 6.754, "type": "anger", "anger": 7.91, "delta": 0.66, "reason": "louder"},
        {"t_s": 11.5, "type": "anger", "anger": 7.46, "delta": -0.45, "reason": "let-vent"},
        {"t_s": 11.5, "type": "anger", "anger": 8.17, "delta": 0.71, "reason": "argument"},
    ]
    groups = _anger_groups(events)
    assert [(g[0], g[1], g[2]) for g in groups] == [(6.754, 6.5, 7.91), (11.5, 7.91, 8.17)]
    assert groups[0][3] == ["interruption", "louder"] and groups[1][3] == ["argument"]


def test_moment_sentence_quotes_the_turn_in_the_calls_language():
    m = {"t_s": 6.754, "kind": "anger-rose", "source": "events", "reasons": ["interruption"],
         "anger_before": 6.5, "anger_after": 9.1, "turn": 2, "quote": "Ja maar luister nou even.",
         "start_s": 5.4, "end_s": 6.75, "while_caller_spoke": True}
    assert moment_sentence(m, "nl") == ("Toen u zei ‘Ja maar luister nou even’ terwijl hij nog sprak, werd de "
                                        "beller bozer: 6,5 naar 9,1 (reden: u onderbrak).")
    assert "6.5 to 9.1" in moment_sentence(m, "en")


@pytest.mark.parametrize("language", LANGUAGES)
def test_say_instead_sentences_are_made_of_listed_good_phrases(language):
    """A better sentence holds an acknowledgement or a concrete offer of the phrase lists and none
    of the phrases it replaces, with and without a scenario's facts."""
    scenarios = [None, *(s for s in list_scenarios() if s.language == language)]
    for scenario in scenarios:
        for category in CATEGORIES:
            text = better_sentence(category, language, scenario)
            found = {h.category for h in find_phrases(text, language=language)}
            assert found & {"acknowledgement", "concrete-offer", "transfer"}, (category, text, found)
            assert not found & set(CATEGORIES), (category, text, found)
            if scenario is not None and scenario.who.lower().startswith(("meneer", "mevrouw")):
                assert text.startswith(scenario.who.split(",")[0][:1].upper())


# --------------------------------------------------------------------------- readiness and trainer agreement


def _doc(call_id: str, verdicts: dict[str, tuple[str, list[str]]]) -> dict:
    """A minimal analysis document: the given items with their verdict and reason codes."""
    return {
        "schema": "roleplay-analysis", "schema_version": 1, "language": "nl", "duration_s": 60.0,
        "source": {"test": call_id}, "turns": [], "backchannels": [], "interruptions": [], "warnings": [],
        "baseline": {"source": "none"}, "anger": [],
        "call": {"call_id": call_id, "scenario": "nl-visite-derde-keer", "trainee": "ann", "outcome": "calmed",
                 "mode": "test"},
        "advice": [{"id": i, "verdict": v, "figures": {}, "turns": [], "feedback": "", "proxy": False,
                    "reasons": [{"code": c, "figures": {}} for c in codes]} for i, (v, codes) in verdicts.items()],
    }


def test_trainer_agreement_counts_overrides_per_item_and_reason(tmp_path):
    from roleplay.analysis.document import write_json
    from roleplay.history.store import History
    from roleplay.report.agreement import agreement, agreement_html, agreement_lines

    share, cut_in = ("fail", ["caller-share-below-target"]), ("fail", ["trainee-interrupted-while-venting"])
    positive, none = ("pass", ["more-positive-than-negative"]), ("no-evidence", ["no-positive-or-negative-phrase"])
    calls = {"c1": {"let-vent": cut_in, "positive": none}, "c2": {"let-vent": share, "positive": positive},
             "c3": {"let-vent": share, "positive": positive}}
    with History(tmp_path / "h.sqlite3") as h:
        ids = {}
        for key, verdicts in calls.items():
            d = tmp_path / key
            d.mkdir()
            write_json(d / "analysis.json", _doc(key, verdicts))
            ids[key] = h.record(_doc(key, verdicts), d, started_utc="2026-11-01T09:00:00+00:00")
        h.add_review(ids["c2"], item="let-vent", verdict="pass", note="beller kreeg genoeg ruimte", by="tr")
        h.add_review(ids["c3"], item="let-vent", verdict="fail", note="klopt", by="tr")
        h.add_review(ids["c1"], item="let-vent", verdict="fail", note="klopt", by="tr")
        h.add_review(ids["c2"], item="positive", verdict="pass", note="klopt", by="tr")
        found = agreement(h.calls())
    table = {(a.item, a.automatic, a.reason): (a.reviewed, a.overridden) for a in found}
    assert table == {
        ("let-vent", "fail", "caller-share-below-target"): (2, 1),
        ("let-vent", "fail", "trainee-interrupted-while-venting"): (1, 0),
        ("positive", "pass", "more-positive-than-negative"): (1, 0),
    }
    assert found[0].reason == "caller-share-below-target" and found[0].overridden_pct == 50.0
    page = agreement_html(found, "nl")
    assert 'id="agreement"' in page and "50 %" in page and "Laten uitrazen" in page
    assert any("caller-share-below-target" in line and "(50 %)" in line for line in agreement_lines(found, "nl"))


def test_readiness_never_counts_no_evidence_as_a_pass(tmp_path):
    from roleplay.history.store import History
    from roleplay.report.readiness import Requirement, Rules, evaluate

    rules = Rules("t", "nl", (Requirement("nl-visite-derde-keer", "mild", 2, 1, ("positive",)),),
                  frozenset({"positive"}), tmp_path / "rules.yaml")
    with History(tmp_path / "h.sqlite3") as h:
        for key in ("c1", "c2"):
            h.record(_doc(key, {"positive": ("no-evidence", ["no-positive-or-negative-phrase"])}), None,
                     started_utc="2026-11-01T09:00:00+00:00")
        rows = h.calls()
    result = evaluate("ann", rows, rules)
    assert not result.ready and result.requirements[0].items[0].passes == 0


def test_every_anger_reason_the_caller_gives_has_words_in_both_languages():
    """A moment names the caller's reasons in the report's language, never as a raw code."""
    from roleplay.caller.scenario import BEHAVIOURS
    from roleplay.report.text import texts

    for language in LANGUAGES:
        words = texts(language)["reasons"]
        for code in (*BEHAVIOURS, "boundary-ignored", "announcement-ignored", "announcement-hang-up"):
            assert code in words, (language, code)
