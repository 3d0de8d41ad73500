"""Say instead: for each provoking or vague phrase the trainee used (argument, negative, vague), a
better sentence for the same moment.

The sentences are built from parts in the report's texts (`text/<language>.yaml`, `say_instead:`)
whose key words are phrases of the phrase lists (an acknowledgement, "wat ik wel kan doen", a
concrete offer: who does what, and when; tests check that the phrase matcher finds them), filled
in with the scenario's facts: whom to address, about whom, and a transfer where the scenario needs
one. Built in the report layer because the scenario lives above the analysis.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from roleplay.analysis.pipeline import Analysis
from roleplay.caller.scenario import Scenario
from roleplay.report.text import texts

CATEGORIES = ("argument", "negative", "vague")
_TITLE = re.compile(r"^(meneer|mevrouw|mr|mrs|ms|miss)\b", re.IGNORECASE)


@dataclass(frozen=True)
class SayInstead:
    turn: int
    start_s: float
    end_s: float
    category: str  # argument | negative | vague
    said: str  # the phrase as heard
    phrase: str  # the phrase of the list it matched
    instead: str  # a better sentence in the same situation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _address(scenario: Scenario | None) -> str:
    """How to address the caller: the scenario's `who` when it starts with a title, else the
    caller's name from its facts, else nobody."""
    if scenario is None:
        return ""
    first = scenario.who.split(",")[0].strip()
    if _TITLE.match(first):
        return first[:1].upper() + first[1:]
    facts = getattr(scenario, "facts", None) or {}
    return str(facts.get("caller_name") or "")


def better_sentence(category: str, language: str, scenario: Scenario | None) -> str:
    """The sentence to say instead of a phrase of `category`, with the scenario's facts."""
    parts = texts(language)["say_instead"]
    needs = scenario.needs if scenario is not None else ()
    offer = parts["transfer_offer"] if "warm-transfer" in needs else parts["offer"]
    facts = (getattr(scenario, "facts", None) or {}) if scenario is not None else {}
    patient = str(facts.get("patient_name") or "")
    worry = parts["worry_about"].format(patient=patient) if patient and patient != facts.get("caller_name") else ""
    sentence = parts[category].format(offer=offer, worry=worry)
    name = _address(scenario)
    return f"{name}, {sentence[:1].lower()}{sentence[1:]}" if name else sentence


def say_instead(a: Analysis, scenario: Scenario | None) -> tuple[SayInstead, ...]:
    """One entry per argument, negative or vague phrase in the trainee's turns, in time order."""
    out = []
    for t in a.turns_of("trainee"):
        for p in t.phrases:
            if p.category in CATEGORIES:
                out.append(SayInstead(t.index, t.start_s, t.end_s, p.category, p.heard or p.text, p.text,
                                      better_sentence(p.category, a.language, scenario)))
    return tuple(out)
