"""The shipped scenario set as a whole (issue 12): enough of them per language, every situation the
guidance describes, the facts a receptionist asks for, and caller voices that differ.

Each file on its own is checked in test_scenario.py (schema, loader, speakable lines) and played
whole in test_demo.py (good and poor trainee); here the set is checked."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from roleplay.caller.scenario import Scenario, known_voices, list_scenarios

# The facts every caller must be able to give: the receptionist's first questions.
CORE_FACTS = ("caller_name", "patient", "date_of_birth", "address", "phone", "gp", "complaint",
              "since")

# What the guidance describes (issue 12's list), as a property some scenario in each language
# must have. A situation only Dutch needs is marked by languages=("nl",).
Topic = tuple[str, Callable[[Scenario], bool], tuple[str, ...]]
TOPICS: tuple[Topic, ...] = (
    ("anger at the organisation, not the person",
     lambda s: s.reactions["argument"] >= 1.0 and "no-discussion" in s.needs and not s.swearing,
     ("nl", "en")),
    ("a third call about the same problem",
     lambda s: "promised" in s.facts and "derde" in s.lines["opening"][0].text.lower(), ("nl",)),
    ("a worried parent",
     lambda s: any(w in s.who.lower() for w in ("moeder", "vader van", "mother", "father of"))
     and "patient_name" in s.facts, ("nl", "en")),
    ("a home visit demanded", lambda s: "visite" in s.title.lower(), ("nl",)),
    ("a prescription",
     lambda s: any(w in s.reason.lower() for w in ("recept", "prescription")), ("nl", "en")),
    ("waiting time",
     lambda s: any(w in s.reason.lower() for w in ("wacht", "wait")), ("nl", "en")),
    ("a transfer to a colleague",
     lambda s: "transferred" in s.ending.expected and "warm-transfer" in s.needs, ("nl", "en")),
    ("a threat to go on social media", lambda s: s.social_media, ("nl", "en")),
    ("abuse that persists after a boundary",
     lambda s: s.swearing and s.boundaries.ignore_first >= 1
     and "ended-by-trainee" in s.ending.expected, ("nl", "en")),
    ("a threat to come to the post",
     lambda s: s.swearing and any(
         "kom" in line.text.lower() and "aan" in line.text.lower()
         for group in s.lines.values() for line in group), ("nl",)),
    ("a caller who calms when given silence",
     lambda s: "silence" in s.needs and s.reactions["silence"] <= -0.8
     and s.reactions["interruption"] >= 1.0, ("nl",)),
)


@pytest.fixture(scope="module")
def scenarios() -> tuple[Scenario, ...]:
    return list_scenarios()


def test_enough_scenarios_per_language(scenarios) -> None:
    assert sum(s.language == "nl" for s in scenarios) >= 12
    assert sum(s.language == "en" for s in scenarios) >= 4


@pytest.mark.parametrize("topic", TOPICS, ids=[t[0] for t in TOPICS])
def test_every_situation_of_the_guidance_is_covered(scenarios, topic: Topic) -> None:
    name, has_it, languages = topic
    for language in languages:
        found = [s.id for s in scenarios if s.language == language and has_it(s)]
        assert found, f"no {language} scenario for: {name}"


def test_every_caller_can_answer_the_first_questions(scenarios) -> None:
    for s in scenarios:
        missing = [f for f in CORE_FACTS if f not in s.facts]
        assert not missing, f"{s.id}: no facts for {missing}"
        # a caller who calls for someone else can name the patient
        for_self = any(w in s.facts["patient"].lower() for w in ("mezelf", "for me"))
        assert for_self != ("patient_name" in s.facts), s.id


def test_severe_callers_need_the_whole_boundary_sequence(scenarios) -> None:
    for s in scenarios:
        if s.intensity == "severe":
            assert s.swearing and s.boundaries.ignore_first >= 1, s.id
            assert "ended-by-trainee" in s.ending.expected, s.id
            assert "apology" in s.lines, s.id  # an end announcement that reaches him


def test_two_caller_voices_per_language_and_both_used(scenarios) -> None:
    voices = known_voices()
    for language in ("nl", "en"):
        assert sum(lang == language for lang in voices.values()) >= 2, language
        used = {s.caller_voice for s in scenarios if s.language == language}
        assert len(used) >= 2, (language, used)
