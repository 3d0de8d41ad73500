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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from rapidfuzz import fuzz, process

from roleplay.analysis.phrases import normalise, substituted
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
# A match this close counts in a sentence put as a question ("?" or a question word first) that
# has one of the question's topic words (`keywords`, within KEYWORD_MIN_SCORE). Measured on the
# bench's misheard questions and non-question turns (tests/test_questions.py).
SUPPORTED_MIN_SCORE = 74.0
KEYWORD_MIN_SCORE = 80.0
KEYWORD_MIN_LETTERS = 5
# Whisper glues several words into one ("maar is de aanvanderpatiënt" for "wat is de naam van de
# patiënt"): a window of at least GLUED_MIN_WORDS words holding all the phrasing's letters, and at
# most GLUED_MAX_LETTERS times as many, counts however few words it has. On the 224 recorded demo
# turns and 1,158 Dutch and English sentences that ask nothing (phrase lists, trainee and caller
# lines) it found one more question ("maar het is de vol te datum") and nothing false (0.9 to
# 1.25, 2 or 3 words: the same).
GLUED_MIN_WORDS = 3
GLUED_MAX_LETTERS = 1.2
# The audio check (`_checked`; the phrase check of roleplay/analysis/phrases.py does the same for
# the advice phrases): a question as close as a supported match (SUPPORTED_MIN_SCORE) that the
# text rules left out is scored against the turn's audio, the closest MAX_CHECKED per turn (one
# decoder pass each), and counts when the heard text with the phrasing in place is at most
# CHECK_MIN_LOG_RATIO nats per phrasing word less likely than the heard text. Measured on the 293
# trainee turns of demo calls of all 17 scenarios, good and poor, seeds 1-3, and 273 espeak lines
# of the accuracy set's phrase lines (docs/scenarios-and-voices.md, "Questions checked against the
# audio"): the questions it took were supported at -0.74 to -0.29, the wrong ones at -4.3 or less;
# closer to the text rules' floor is no use: below 0.72 close, wrong questions were supported as
# well as right ones (+1.74: "Where am I to use my pain?" as "where do you live"), as a fluent
# phrasing in place of garbled words makes the whole text likelier.
CHECK_MIN_LOG_RATIO = -2.5
MAX_CHECKED = 2
# Whole texts -> their log-probabilities given the turn's audio (the recognizer's, forced).
Reread = Callable[[tuple[str, ...]], tuple[float, ...]]
# Letters Whisper confuses on synthetic Dutch fall into one class ("maat" for "wat", "designen"
# for "dicijnen"). Not the phrase matcher's `sound_key`: its h = g makes "hoe heet de patiënt"
# close to "gebruikt de patiënt".
_SOUND_RULES = (("sch", "s"), ("tie", "si"), ("ch", "g"), ("ij", "ei"), ("y", "ei"), ("ou", "au"), ("aa", "a"),
                ("ee", "e"), ("oo", "o"), ("uu", "u"), ("ie", "i"), ("oe", "u"), ("dt", "t"),
                ("ph", "f"), ("th", "t"), ("ck", "k"), ("c", "k"))
_SOUND_CLASSES = str.maketrans({"b": "p", "m": "p", "w": "p", "v": "p", "f": "p", "d": "t",
                                "z": "s", "x": "ks", "q": "k", "g": "k"})
# Where the caller puts its answers, by the situation of the line it was going to say.
ANGRY_SITUATIONS = frozenset({"escalating", "abusive", "interrupted"})
CALM_SITUATIONS = frozenset({"calming", "apology", "satisfied"})
# then the line; a caller hanging up still snaps the answer first ("De Vries! En nu hang ik op.")
ANSWER_FIRST = frozenset({"escalating", "abusive", "interrupted", "satisfied", "hanging_up"})
ANSWER_ONLY = frozenset({"calming"})  # the answer is the line
HANGING_UP = "hanging_up"
HANG_UP_ANSWER = "{fact}!"  # the bare fact: the hang-up line says the rest


@dataclass(frozen=True)
class Question:
    id: str
    facts: tuple[str, ...]  # scenario facts that answer it; the first one present wins
    phrasings: tuple[tuple[str, ...], ...]  # normalised words of each phrasing
    spoken: tuple[str, ...]  # each phrasing as written, for scoring it against the audio
    keywords: tuple[str, ...]  # normalised topic words ("naam", "geboren")
    say: str  # how a cooperative caller puts the fact: "Geboren op {fact}."


@dataclass(frozen=True)
class QuestionList:
    language: str
    questions: Mapping[str, Question]
    tones: Mapping[str, tuple[str, ...]]
    question_words: frozenset[str]  # words that open a question ("wat", "wanneer")


@dataclass(frozen=True)
class Asked:
    """A question recognised in the trainee's words."""

    question: str
    heard: str  # the words that matched
    score: float  # 0..1
    position: int  # word index in the turn, for the spoken order
    audio_support: float | None = None  # nats per phrasing word when the audio check took it
    size: int = 0  # heard words it took (for the audio check's overlaps)


@dataclass(frozen=True)
class Answer:
    question: str
    fact: str | None  # the fact id given; None: the scenario has none
    value: str | None  # the fact as the scenario states it
    tone: str  # one of TONES
    text: str  # what the caller says for it ("" when it does not answer)
    reason: str  # why this answer, for the event log


def load_questions(language: str) -> QuestionList:
    return read_questions(language_file(QUESTIONS_DIR, language, what="question list"))


@functools.cache
def read_questions(path: Path) -> QuestionList:
    """Read and check one question list; a problem is an InputError naming the file and field."""
    data = read_yaml(path)
    if not isinstance(data, dict) or set(data) != {"language", "question_words", "questions",
                                                   "tones"}:
        raise InputError(f"{path}: expected exactly the fields language, question_words, "
                         "questions, tones")
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
    words = data["question_words"]
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise InputError(f"{path}: question_words: expected a non-empty list of words")
    return QuestionList(data["language"], MappingProxyType(questions),
                        MappingProxyType({t: tuple(tones[t]) for t in TONES}),
                        frozenset(normalise(w) for w in words))


def _question(path: Path, qid: str, spec: object) -> Question:
    where = f"{path}: questions.{qid}"
    if not isinstance(spec, dict) or set(spec) != {"facts", "phrasings", "keywords", "say"}:
        raise InputError(f"{where}: expected exactly the fields facts, phrasings, keywords, say")
    facts = spec["facts"]
    if not isinstance(facts, list) or not facts or any(f not in FACT_IDS for f in facts):
        raise InputError(f"{where}.facts: expected a list of fact ids from {', '.join(FACT_IDS)}")
    phrasings = spec["phrasings"]
    if not isinstance(phrasings, list) or not phrasings:
        raise InputError(f"{where}.phrasings: expected a non-empty list")
    tokens = tuple(tuple(normalise(str(p)).split()) for p in phrasings)
    if not all(tokens):
        raise InputError(f"{where}.phrasings: a phrasing has no words")
    keywords = spec["keywords"]
    if not isinstance(keywords, list) or not all(
            isinstance(k, str) and len(normalise(k).split()) == 1 for k in keywords):
        raise InputError(f"{where}.keywords: expected a list of single words")
    say = spec["say"]
    if not isinstance(say, str) or "{fact}" not in say:
        raise InputError(f"{where}.say: expected a line with {{fact}}")
    return Question(qid, tuple(facts), tokens, tuple(str(p).strip() for p in phrasings),
                    tuple(normalise(k) for k in keywords), say)


# --------------------------------------------------------------------------- recognising


@dataclass(frozen=True)
class _Matcher:
    """A question list made ready for matching: every phrasing's letters and sound, one row each."""

    qids: tuple[str, ...]  # question id of each phrasing row
    letters: tuple[str, ...]
    sounds: tuple[str, ...]
    spoken: tuple[str, ...]  # each phrasing as written
    sizes: np.ndarray  # words in each phrasing
    cutoffs: np.ndarray  # the plain cutoff (0-100) of each phrasing
    exact: np.ndarray  # True: the phrasing must be heard as spelt (too short to be fuzzy)
    keywords: Mapping[str, tuple[tuple[str, str], ...]]  # question id -> (letters, sound)
    question_words: frozenset[str]


@functools.cache
def _matcher(language: str) -> _Matcher:
    ql = load_questions(language)
    rows = [(q.id, p) for q in ql.questions.values() for p in q.phrasings]
    letters = tuple("".join(p) for _, p in rows)
    # one word ("telefoonnummer") has no other words to confirm it: the stricter cutoff
    cutoffs = [SHORT_MIN_SCORE if len(x) <= SHORT_LETTERS or len(p) == 1 else FUZZY_MIN_SCORE
               for x, (_, p) in zip(letters, rows, strict=True)]
    return _Matcher(
        qids=tuple(q for q, _ in rows), letters=letters,
        sounds=tuple(_sound(x) for x in letters),
        spoken=tuple(sp for q in ql.questions.values() for sp in q.spoken),
        sizes=np.array([len(p) for _, p in rows]), cutoffs=np.array(cutoffs),
        exact=np.array([len(x) <= EXACT_MAX_LETTERS for x in letters]),
        keywords=MappingProxyType({q.id: tuple((k, _sound(k)) for k in q.keywords)
                                   for q in ql.questions.values()}),
        question_words=ql.question_words)


@dataclass(frozen=True)
class _Heard:
    """The heard turn as word windows: each window's words, letters, sound and sentence."""

    words: tuple[str, ...]
    sentence_of: tuple[int, ...]  # sentence index of each word
    shaped: tuple[bool, ...]  # per sentence: put as a question (question word first, or "?")
    spans: tuple[tuple[int, int], ...]  # (first, end) of each window
    letters: tuple[str, ...]
    sounds: tuple[str, ...]


def _heard(text: str, *, max_size: int, question_words: frozenset[str]) -> _Heard:
    words: list[str] = []
    sentence_of: list[int] = []
    shaped: list[bool] = []
    # Whisper writes "?" where the words or the rising end made it a question
    for raw, end in re.findall(r"([^.?!]+)([.?!]*)", text):
        tokens = normalise(raw).split()
        if not tokens:
            continue
        shaped.append("?" in end or tokens[0] in question_words or any(
            len(q) >= KEYWORD_MIN_LETTERS and tokens[0].startswith(q) for q in question_words))
        sentence_of += [len(shaped) - 1] * len(tokens)
        words += tokens
    spans = [(a, a + n) for n in range(1, max_size + 1) for a in range(len(words) - n + 1)]
    letters = tuple("".join(words[a:b]) for a, b in spans)
    return _Heard(tuple(words), tuple(sentence_of), tuple(shaped), tuple(spans), letters,
                  tuple(_sound(x) for x in letters))


def _sound(letters: str) -> str:
    for spelt, sound in _SOUND_RULES:
        letters = letters.replace(spelt, sound)
    return letters.translate(_SOUND_CLASSES)


def find_questions(text: str, *, language: str, reread: Reread | None = None) -> tuple[Asked, ...]:
    """The questions in what was heard, once each, in spoken order; where two questions claim the
    same words, the better match wins.

    A phrasing counts when a window of the heard words is close to it in spelling or sound
    (FUZZY_MIN_SCORE), or less close (SUPPORTED_MIN_SCORE) in a sentence put as a question that
    also has one of the question's topic words ("naam", "geboren"): Whisper base turns "wat is de
    naam van de patiënt" into "maar het is de d'arm van de patient?". With `reread` (the turn's
    audio), a question as close as that in a sentence without those signs counts when the audio
    supports it (`_checked`): "Mani is de paschent jubogen." for "Wanneer is de patiënt geboren?"."""
    m = _matcher(language)
    heard = _heard(text, max_size=int(m.sizes.max()) + 2, question_words=m.question_words)
    if not heard.words:
        return ()
    score, window = _best_windows(m, heard)
    hits: dict[str, tuple[float, int, int]] = {}
    for row in np.flatnonzero(score >= SUPPORTED_MIN_SCORE):
        first, end = heard.spans[window[row]]
        qid, s = m.qids[row], float(score[row])
        if m.exact[row] and s < 100.0:
            continue
        if s < m.cutoffs[row] and not _supported(m, heard, qid, first):
            continue
        if s > hits.get(qid, (0.0, 0, 0))[0]:
            hits[qid] = (s, first, end)
    kept: list[tuple[float, str, int, int]] = []
    for s, qid, a, b in sorted(((h[0], q, h[1], h[2]) for q, h in hits.items()),
                               key=lambda h: (-h[0], h[2])):
        if not any(a < k[3] and k[2] < b for k in kept):
            kept.append((s, qid, a, b))
    asked = [Asked(qid, " ".join(heard.words[a:b]), round(s / 100, 3), a, size=b - a)
             for s, qid, a, b in kept]
    if reread is not None:
        asked += _checked(m, heard, text, score, window, kept, reread)
    return tuple(sorted(asked, key=lambda q: q.position))


def _checked(m: _Matcher, heard: _Heard, text: str, score: np.ndarray, window: np.ndarray,
             kept: list[tuple[float, str, int, int]], reread: Reread) -> list[Asked]:
    """Questions the text matcher left out but the audio supports: per question its closest
    phrasing (SUPPORTED_MIN_SCORE or closer) on words no question took (the questions the words
    carry, `kept`), the closest MAX_CHECKED of
    them scored by the recognizer as the heard text with the phrasing in place of those words
    against the heard text itself; one counts when that costs at most CHECK_MIN_LOG_RATIO nats per
    phrasing word, and of two on the same words the better supported wins. The phrasing is only
    scored, never put in the recognizer's prompt."""
    raw = text.split()
    owner = [k for k, w in enumerate(raw) for _ in normalise(w).split()]
    if len(owner) != len(heard.words):
        return []  # the words did not split alike; never guess where a phrasing would go
    best: dict[str, tuple[float, int]] = {}
    for row in np.flatnonzero(score >= SUPPORTED_MIN_SCORE):
        qid = m.qids[row]
        first, end = heard.spans[window[row]]
        if m.exact[row] or any(qid == q or (first < b and a < end) for _, q, a, b in kept):
            continue
        if float(score[row]) > best.get(qid, (0.0, -1))[0]:
            best[qid] = (float(score[row]), int(row))
    chosen = sorted(best.items(), key=lambda c: -c[1][0])[:MAX_CHECKED]
    if not chosen:
        return []
    spans = [heard.spans[window[r]] for _, (_, r) in chosen]
    # whole heard words: the ones the normalised window's first and last words came from
    texts = [substituted(raw, owner[a], owner[b - 1] + 1, m.spoken[r])[1]
             for (_, (_, r)), (a, b) in zip(chosen, spans, strict=True)]
    base, *scored = reread((" ".join(raw), *texts))
    supported = []
    for (qid, (s, r)), (a, b), log_prob in zip(chosen, spans, scored, strict=True):
        per_word = (log_prob - base) / len(m.spoken[r].split())
        if per_word >= CHECK_MIN_LOG_RATIO:
            supported.append((per_word, qid, s, a, b))
    out: list[Asked] = []
    for per_word, qid, s, a, b in sorted(supported, reverse=True):
        if not any(a < q.position + q.size and q.position < b for q in out):
            out.append(Asked(qid, " ".join(heard.words[a:b]), round(s / 100, 3), a,
                             audio_support=round(per_word, 2), size=b - a))
    return out


def _best_windows(m: _Matcher, heard: _Heard) -> tuple[np.ndarray, np.ndarray]:
    """Per phrasing, the best score (0-100, spelling or sound) over the windows of one word fewer
    to two more (the recognizer splits and joins words), or fewer words glued together, and which
    window."""
    spelt = process.cdist(m.letters, heard.letters, scorer=fuzz.ratio, dtype=np.float32,
                          score_cutoff=SUPPORTED_MIN_SCORE)
    sound = process.cdist(m.sounds, heard.sounds, scorer=fuzz.ratio, dtype=np.float32,
                          score_cutoff=SUPPORTED_MIN_SCORE)
    scores = np.maximum(spelt, sound)
    size = np.array([b - a for a, b in heard.spans])
    length = np.array([len(x) for x in heard.letters])
    n = m.sizes[:, None]
    phrase_len = np.array([len(x) for x in m.letters])[:, None]
    # one word fewer is two words heard as one, not a word left out
    allowed = (size >= n - 1) & (size <= n + 2) & ((size >= n) | (length >= phrase_len))
    glued = ((size >= np.minimum(n, GLUED_MIN_WORDS)) & (length >= phrase_len)
             & (length <= GLUED_MAX_LETTERS * phrase_len))
    allowed |= glued
    scores = np.where(allowed, scores, 0.0)
    window = scores.argmax(axis=1)
    return scores[np.arange(len(scores)), window], window


def _supported(m: _Matcher, heard: _Heard, qid: str, first: int) -> bool:
    """The sentence of the match is put as a question and has one of the question's topic words
    (spelt or sounding alike, or with a word glued on: "sindsman"). Either sign alone is too
    weak: "?" ends many a misheard line, and callers say "telefoon" and "huisarts" too."""
    sentence = heard.sentence_of[first]
    if not heard.shaped[sentence]:
        return False
    words = [w for w, s in zip(heard.words, heard.sentence_of, strict=True) if s == sentence]
    return any(_close_word(w, k, ks) for w in words for k, ks in m.keywords[qid])


def _close_word(word: str, key: str, key_sound: str) -> bool:
    if word == key:
        return True
    if len(key) < KEYWORD_MIN_LETTERS:
        return False  # "hand", "lang": one letter off is another word
    return (word.startswith(key) or max(fuzz.ratio(word, key), fuzz.ratio(_sound(word), key_sound))
            >= KEYWORD_MIN_SCORE)


# --------------------------------------------------------------------------- the warm transfer

# What tells the caller that the colleague knows the story (a warm transfer), as the trainee says
# it; heard with the same closeness as the questions ("mijn korega is of de hoote").
BRIEFED_CUES = {
    "nl": ("mijn collega is op de hoogte", "op de hoogte", "al ingelicht", "ingelicht",
           "het verhaal niet opnieuw", "al uitgelegd"),
    "en": ("briefed", "already briefed", "informed", "your story again"),
}
BRIEFED_MIN_SCORE = 80.0


def briefed(text: str, *, language: str) -> str | None:
    """The briefing cue heard in `text` (the colleague is told), or None: a cold transfer."""
    cues = BRIEFED_CUES.get(language, ())
    heard = _heard(text, max_size=max((len(c.split()) for c in cues), default=0) + 2,
                   question_words=frozenset())
    if not cues or not heard.words:
        return None
    letters = ["".join(normalise(c).split()) for c in cues]
    spelt = process.cdist(letters, heard.letters, scorer=fuzz.ratio, dtype=np.float32)
    sound = process.cdist([_sound(x) for x in letters], heard.sounds, scorer=fuzz.ratio,
                          dtype=np.float32)
    for i, cue in enumerate(letters):
        n = len(cues[i].split())
        for j, (a, b) in enumerate(heard.spans):
            if not n - 1 <= b - a <= n + 2:
                continue
            if cue in heard.letters[j] or (len(cue) > EXACT_MAX_LETTERS and max(
                    spelt[i, j], sound[i, j]) >= BRIEFED_MIN_SCORE):
                return cues[i]
    return None


# --------------------------------------------------------------------------- answering


def answer(scenario: Scenario, questions: QuestionList, question_id: str, *, situation: str,
           anger: float, given: frozenset[str], rng: random.Random) -> Answer:
    """The caller's answer to one question, in the tone of its anger and situation. `given`: the
    facts it already gave this call."""
    q = questions.questions[question_id]
    fact = next((f for f in q.facts if f in scenario.facts), None)
    if fact is None:
        return Answer(q.id, None, None, "unknown", rng.choice(questions.tones["unknown"]),
                      f"the scenario states no {' or '.join(q.facts)}")
    value = scenario.facts[fact]
    tone, reason = _tone(scenario, situation=situation, anger=anger, repeated=fact in given)
    bare = value.rstrip(" .!?")
    said = _sentence(q.say.format(fact=bare))
    if situation == HANGING_UP and tone == "curt":
        # no "En nu?" from the tone's lines: the hang-up line follows at once
        return Answer(q.id, fact, value, tone, HANG_UP_ANSWER.format(fact=bare),
                      f"hanging up (anger {anger:g}): the bare fact, then the hang-up line")
    text = _sentence(rng.choice(questions.tones[tone]).format(fact=bare, answer=said))
    return Answer(q.id, fact, value, tone, text, reason)


def _tone(scenario: Scenario, *, situation: str, anger: float, repeated: bool) -> tuple[str, str]:
    if repeated:
        return "repeated", "already answered this call"
    if situation in ANGRY_SITUATIONS or situation == HANGING_UP or (
            anger >= scenario.rules.barge_in_at):
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
    if situation in ANSWER_ONLY:
        return "instead-of-line"
    return "before-line" if situation in ANSWER_FIRST else "after-line"
