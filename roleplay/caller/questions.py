"""The receptionist's questions, and how the caller answers them.

`questions/<language>.yaml` lists what a receptionist asks (name, date of birth, address, what is
wrong, since when ...), the phrasings, and the scenario facts (`facts:` in a scenario) that answer
each. `find_questions` recognises them in what the recognizer heard of the trainee's turn, with
tolerance for recognition errors (Whisper base garbles espeak Dutch); `answer` makes the caller's
answer in the tone of its anger, and `compose` puts the answers into the caller's next line.

    asked = find_questions(turn.text, language="nl")            # ("date_of_birth", ...)
    a = answer(scenario, questions, "date_of_birth", situation="venting", anger=7.0,
               given=frozenset(), rng=rng)                       # Answer(tone="plain", ...)
    text = compose(line.text, (a,), situation="venting")         # the caller finishes its point first

Pure and seeded, like the caller's state machine.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from rapidfuzz import fuzz

from roleplay.analysis.phrases import normalise
from roleplay.caller.scenario import FACT_IDS, Scenario
from roleplay.core.errors import InputError
from roleplay.core.files import language_file, read_yaml

QUESTIONS_DIR = Path(__file__).with_name("questions")
TONES = ("curt", "plain", "cooperative", "repeated", "unknown")
EXACT_MAX_LETTERS = 6  # "adres", "allergie": one wrong letter is another word
# rapidfuzz ratio (0-100) of a phrasing against the heard words, spelt or by sound class. Measured
# on Whisper base hearing the espeak trainee (tests/test_questions.py): questions heard garbled
# scored 76 to 93 ("maak ik uw dame" for "mag ik uw naam": 86); other lines of the trainee
# and the callers stay below (tests/test_questions.py).
FUZZY_MIN_SCORE = 80.0
SHORT_MIN_SCORE = 84.0  # ... for phrasings of up to 12 letters
SHORT_LETTERS = 12
# Letters Whisper confuses on synthetic Dutch fall into one class ("maat" for "wat", "designen"
# for "dicijnen").
_SOUND_RULES = (("sch", "s"), ("ch", "g"), ("ij", "ei"), ("y", "ei"), ("ou", "au"), ("aa", "a"),
                ("ee", "e"), ("oo", "o"), ("uu", "u"), ("ie", "i"), ("oe", "u"), ("dt", "t"),
                ("ph", "f"), ("th", "t"), ("ck", "k"), ("c", "k"))
_SOUND_CLASSES = str.maketrans({"b": "p", "m": "p", "w": "p", "v": "p", "f": "p", "d": "t",
                                "z": "s", "x": "ks", "q": "k", "g": "k"})
# Where the caller puts its answers, by the situation of the line it was going to say.
ANGRY_SITUATIONS = frozenset({"escalating", "abusive", "interrupted"})
CALM_SITUATIONS = frozenset({"calming", "apology", "satisfied"})
ANSWER_FIRST = frozenset({"escalating", "abusive", "interrupted", "satisfied"})  # then the line
ANSWER_ONLY = frozenset({"calming"})  # the answer is the line
NO_ANSWER = frozenset({"hanging_up"})  # hanging up: the question goes unanswered


@dataclass(frozen=True)
class Question:
    id: str
    facts: tuple[str, ...]  # scenario facts that answer it; the first one present wins
    phrasings: tuple[tuple[str, ...], ...]  # normalised words of each phrasing
    say: str  # how a cooperative caller puts the fact: "Geboren op {fact}."


@dataclass(frozen=True)
class QuestionList:
    language: str
    questions: Mapping[str, Question]
    tones: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Asked:
    """A question recognised in the trainee's words."""

    question: str
    heard: str  # the words that matched
    score: float  # 0..1
    position: int  # word index in the turn, for the spoken order


@dataclass(frozen=True)
class Answer:
    question: str
    fact: str | None  # the fact id given; None: the scenario has none (or the caller hangs up)
    value: str | None  # the fact as the scenario states it
    tone: str  # one of TONES, or "none" when the caller does not answer
    text: str  # what the caller says for it ("" when it does not answer)
    reason: str  # why this answer, for the event log


def load_questions(language: str) -> QuestionList:
    return read_questions(language_file(QUESTIONS_DIR, language, what="question list"))


@functools.cache
def read_questions(path: Path) -> QuestionList:
    """Read and check one question list; a problem is an InputError naming the file and field."""
    data = read_yaml(path)
    if not isinstance(data, dict) or set(data) != {"language", "questions", "tones"}:
        raise InputError(f"{path}: expected exactly the fields language, questions, tones")
    if data["language"] != path.stem:
        raise InputError(f"{path}: language is {data['language']!r}, expected {path.stem!r}")
    raw = data["questions"]
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{path}: questions: expected a mapping of question id to question")
    questions = {qid: _question(path, str(qid), spec) for qid, spec in raw.items()}
    tones = data["tones"]
    if not isinstance(tones, dict) or sorted(tones) != sorted(TONES):
        raise InputError(f"{path}: tones: expected exactly {', '.join(TONES)}")
    for tone, lines in tones.items():
        if not isinstance(lines, list) or not lines or not all(
                isinstance(x, str) and x.strip() for x in lines):
            raise InputError(f"{path}: tones.{tone}: expected a non-empty list of lines")
    return QuestionList(data["language"], MappingProxyType(questions),
                        MappingProxyType({t: tuple(tones[t]) for t in TONES}))


def _question(path: Path, qid: str, spec: object) -> Question:
    where = f"{path}: questions.{qid}"
    if not isinstance(spec, dict) or set(spec) != {"facts", "phrasings", "say"}:
        raise InputError(f"{where}: expected exactly the fields facts, phrasings, say")
    facts = spec["facts"]
    if not isinstance(facts, list) or not facts or any(f not in FACT_IDS for f in facts):
        raise InputError(f"{where}.facts: expected a list of fact ids from {', '.join(FACT_IDS)}")
    phrasings = spec["phrasings"]
    if not isinstance(phrasings, list) or not phrasings:
        raise InputError(f"{where}.phrasings: expected a non-empty list")
    tokens = tuple(tuple(normalise(str(p)).split()) for p in phrasings)
    if not all(tokens):
        raise InputError(f"{where}.phrasings: a phrasing has no words")
    say = spec["say"]
    if not isinstance(say, str) or "{fact}" not in say:
        raise InputError(f"{where}.say: expected a line with {{fact}}")
    return Question(qid, tuple(facts), tokens, say)


# --------------------------------------------------------------------------- recognising


def find_questions(text: str, *, language: str) -> tuple[Asked, ...]:
    """The questions in what was heard, once each, in spoken order; where two questions claim the
    same words, the better match wins."""
    words = tuple(normalise(text).split())
    hits = []
    for q in load_questions(language).questions.values():
        best = max((_match(p, words) for p in q.phrasings), key=lambda m: m[0], default=(0.0, 0, 0))
        if best[0] > 0:
            hits.append((best[0], q.id, best[1], best[2]))
    kept: list[tuple[float, str, int, int]] = []
    for hit in sorted(hits, key=lambda h: (-h[0], h[2])):
        if not any(hit[2] < k[3] and k[2] < hit[3] for k in kept):
            kept.append(hit)
    return tuple(Asked(qid, " ".join(words[a:b]), round(score / 100, 3), a)
                 for score, qid, a, b in sorted(kept, key=lambda h: h[2]))


def _match(phrasing: tuple[str, ...], words: tuple[str, ...]) -> tuple[float, int, int]:
    """Best (score 0-100, first, end) of one phrasing over windows of the heard words."""
    letters = "".join(phrasing)
    exact = len(letters) <= EXACT_MAX_LETTERS
    # one word ("telefoonnummer") has no other words to confirm it: the stricter cutoff
    cutoff = SHORT_MIN_SCORE if len(letters) <= SHORT_LETTERS or len(phrasing) == 1 else FUZZY_MIN_SCORE
    n = len(phrasing)
    best = (0.0, 0, 0)
    for size in range(max(1, n - 1), n + 3):  # words split or joined by the recognizer
        for first in range(len(words) - size + 1):
            window = words[first:first + size]
            joined = "".join(window)
            if size < n and len(joined) < len(letters):
                continue  # one word fewer is two words heard as one, not a word left out
            if exact:
                score = 100.0 if window == phrasing or joined == letters else 0.0
            else:
                score = max(fuzz.ratio(letters, joined, score_cutoff=cutoff),
                            fuzz.ratio(_sound(letters), _sound(joined), score_cutoff=cutoff))
            if score > best[0]:
                best = (score, first, first + size)
    return best


def _sound(letters: str) -> str:
    for spelt, sound in _SOUND_RULES:
        letters = letters.replace(spelt, sound)
    return letters.translate(_SOUND_CLASSES)


# --------------------------------------------------------------------------- answering


def answer(scenario: Scenario, questions: QuestionList, question_id: str, *, situation: str,
           anger: float, given: frozenset[str], rng: random.Random) -> Answer:
    """The caller's answer to one question, in the tone of its anger and situation. `given`: the
    facts it already gave this call."""
    q = questions.questions[question_id]
    if situation in NO_ANSWER:
        return Answer(q.id, None, None, "none", "", f"the caller is {situation}: no answer")
    fact = next((f for f in q.facts if f in scenario.facts), None)
    if fact is None:
        return Answer(q.id, None, None, "unknown", rng.choice(questions.tones["unknown"]),
                      f"the scenario states no {' or '.join(q.facts)}")
    value = scenario.facts[fact]
    tone, reason = _tone(scenario, situation=situation, anger=anger, repeated=fact in given)
    bare = value.rstrip(" .!?")
    said = _sentence(q.say.format(fact=bare))
    text = _sentence(rng.choice(questions.tones[tone]).format(fact=bare, answer=said))
    return Answer(q.id, fact, value, tone, text, reason)


def _tone(scenario: Scenario, *, situation: str, anger: float, repeated: bool) -> tuple[str, str]:
    if repeated:
        return "repeated", "already answered this call"
    if situation in ANGRY_SITUATIONS or anger >= scenario.rules.barge_in_at:
        return "curt", f"angry ({situation}, anger {anger:g})"
    if situation in CALM_SITUATIONS or anger < scenario.anger.calmed_below + 1.0:
        return "cooperative", f"calmer ({situation}, anger {anger:g})"
    return "plain", f"still venting ({situation}, anger {anger:g})"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if re.search(r"[.!?]$", text) else text + "."


def compose(line_text: str, answers: Sequence[Answer], *, situation: str) -> str:
    """The caller's next line with its answers: a venting caller finishes its point first, an
    angry one snaps the answer and goes on, a calming one just answers."""
    said = " ".join(a.text for a in answers if a.text)
    if not said:
        return line_text
    if situation in ANSWER_ONLY:
        return said
    if situation in ANSWER_FIRST:
        return f"{said} {line_text}"
    return f"{line_text} {said}"


def placement(situation: str) -> str:
    """Where `compose` puts the answers, for the event log."""
    if situation in NO_ANSWER:
        return "none"
    if situation in ANSWER_ONLY:
        return "instead-of-line"
    return "before-line" if situation in ANSWER_FIRST else "after-line"
