"""The simulated trainee: what a `good` or a `poor` receptionist says next, and how.

The policy sees what a person on the phone would: the caller's last line (its situation, whether it
was abusive, how long it was) and how angry the caller sounds. It answers with a line from
`roleplay/trainee_lines/<language>.yaml` and a delivery: speaking rate and level against the
trainee's own normal voice, and when to start relative to the end of the caller's line (a negative
gap cuts into the caller's line). The words are only the script: the caller never sees the intent
labels, it reacts to the analysis of the audio (see `roleplay.session.demo`).

    good: greets (organisation, own name), lets the caller vent ("ja, ik luister", then short
          acknowledgements), waits
          about a second before answering, never interrupts, speaks at least 10 % slower and 3 dB
          softer than normal once the caller is angry, makes a concrete offer (who, what, when),
          names abusive behaviour, when that is ignored announces the end, and when that is ignored
          too ends the call; asks a receptionist's questions (name, date of birth, since when,
          medication) with its acknowledgements and offers once the caller has vented; transfers
          warmly when the scenario needs a colleague (name and date of birth first, then: "my
          colleague is briefed").
    poor: no proper greeting, answers fast, loud and high, cuts into the caller's lines (1 to 2 s of
          overlap), argues ("ja maar"), says what is not possible, stays vague, fires its questions
          off from the first reply (and asks the name twice), shouts back at abuse, and puts a
          caller who needs a colleague through coldly.

Deterministic for a seed: all choices come from the `random.Random` passed in.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from roleplay.caller.scenario import Scenario
from roleplay.core.errors import InputError
from roleplay.core.files import language_file, read_yaml

STYLES = ("good", "poor")
LINES_DIR = Path(__file__).with_name("trainee_lines")
GOOD_INTENTS = ("greeting", "listen", "acknowledgement", "offer", "boundary", "end_announcement",
                "end_call", "transfer")
POOR_INTENTS = ("greeting", "argument", "negative", "vague", "interrupt", "cold_transfer")

# Delivery, relative to the trainee voice's base rate and the synthesized level.
GOOD_GAP_S = (0.9, 1.4)  # waits about a second after the caller: a well-placed silence
GOOD_ANGRY_AT = 4.0  # from this caller anger on, the good trainee slows down and softens
GOOD_SLOW_RATE = 0.75  # >= 10 % slower than baseline, with margin: espeak's rate does not
GOOD_SOFT_DB = -5.0  # map one to one onto the measured articulation rate
GOOD_CALM_RATE = 0.85
GOOD_CALM_DB = -3.0
POOR_RATE = 1.3
POOR_LOUD_DB = 4.0
POOR_PITCH = 12.0  # a tense, raised voice (espeak pitch units)
POOR_GAP_S = (0.1, 0.3)  # jumps in at once
POOR_OVERLAP_S = (1.0, 2.0)  # cuts into the caller's line this long before it ends
POOR_MIN_LINE_FOR_CUT_S = 2.5  # a caller line shorter than this is not interrupted
POOR_CUT_EVERY = 2  # every second reply (from the first) cuts in
TRANSFER_AFTER_QUESTIONS = 2  # the good trainee asks name and date of birth before transferring
POOR_TRANSFER_AT = 3  # the poor trainee puts the caller through coldly at its fourth reply
LISTEN_REPLIES = 2  # the first replies while the caller vents are short listening tokens
ACK_BEFORE_OFFER = 1  # after "ja, ik luister": one acknowledgement, then the offer
VENTING_SITUATIONS = frozenset({"opening", "venting", "escalating", "interrupted", "silence"})


@dataclass(frozen=True)
class TraineeLines:
    language: str
    voice: str
    name: str
    post: str
    calibration: str
    styles: Mapping[str, Mapping[str, tuple[str, ...]]]  # style -> intent -> lines
    questions: Mapping[str, tuple[tuple[str, str], ...]]  # style -> (question id, line) in order

    def lines(self, style: str, intent: str) -> tuple[str, ...]:
        return self.styles[style][intent]


def load_trainee_lines(language: str) -> TraineeLines:
    return _load(language_file(LINES_DIR, language, what="simulated-trainee lines"))


@functools.cache
def _load(path: Path) -> TraineeLines:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with language, voice, good, poor, ...")
    for key in ("language", "voice", "name", "post", "calibration", "good", "poor", "questions"):
        if key not in data:
            raise InputError(f"{path}: missing field '{key}'")
    if data["language"] != path.stem:
        raise InputError(f"{path}: language is {data['language']!r}, expected {path.stem!r}")
    styles = {}
    for style, intents in (("good", GOOD_INTENTS), ("poor", POOR_INTENTS)):
        raw = data[style]
        if not isinstance(raw, dict):
            raise InputError(f"{path}: field '{style}': expected a mapping of intent to lines")
        missing = [i for i in intents if i not in raw]
        unknown = sorted(set(raw) - set(intents))
        if missing or unknown:
            raise InputError(f"{path}: field '{style}': intents must be {', '.join(intents)}; "
                             f"missing: {', '.join(missing) or 'none'}; "
                             f"unknown: {', '.join(unknown) or 'none'}")
        group = {}
        for intent in intents:
            lines = raw[intent]
            if not isinstance(lines, list) or not lines or not all(
                    isinstance(x, str) and x.strip() for x in lines):
                raise InputError(f"{path}: field '{style}.{intent}': expected a non-empty list "
                                 "of lines")
            group[intent] = tuple(
                x.strip().format(name=data["name"], post=data["post"]) for x in lines)
        styles[style] = MappingProxyType(group)
    return TraineeLines(language=data["language"], voice=data["voice"], name=data["name"],
                        post=data["post"], calibration=data["calibration"],
                        styles=MappingProxyType(styles),
                        questions=_questions(path, data["questions"]))


def _questions(path: Path, raw: object) -> Mapping[str, tuple[tuple[str, str], ...]]:
    """style -> ((question id, line), ...); the ids must be in the language's question list."""
    from roleplay.caller.questions import load_questions

    known = load_questions(path.stem).questions
    if not isinstance(raw, dict) or sorted(raw) != sorted(STYLES):
        raise InputError(f"{path}: field 'questions': expected a mapping with good and poor")
    out = {}
    for style in STYLES:
        items = raw[style]
        if not isinstance(items, list) or not all(
                isinstance(x, dict) and set(x) == {"asks", "line"} and x["asks"] in known
                and isinstance(x["line"], str) and x["line"].strip() for x in items):
            raise InputError(f"{path}: field 'questions.{style}': expected a list of "
                             f"{{asks: <question id>, line: <text>}}; ids: {', '.join(known)}")
        out[style] = tuple((x["asks"], x["line"].strip()) for x in items)
    return MappingProxyType(out)


@dataclass(frozen=True)
class Heard:
    """What the trainee just heard from the caller."""

    situation: str  # the caller line's situation (opening, venting, abusive, ...)
    anger: float  # how angry the caller sounds, 0..10
    abusive: bool  # the line insulted or swore at the trainee
    duration_s: float  # length of the caller's line


@dataclass(frozen=True)
class Delivery:
    rate_factor: float  # multiplies the trainee voice's base rate
    gain_db: float  # level against the trainee's normal level
    gap_s: float  # start after the end of the caller's line; negative: cuts into it
    pitch_delta: float = 0.0  # added to the voice's base pitch (espeak 0..100): tension


@dataclass(frozen=True)
class TraineeTurn:
    intent: str  # the script's label: logged, never shown to the caller
    text: str
    delivery: Delivery
    ends_call: bool = False  # the trainee puts the phone down after this line
    asks: tuple[str, ...] = ()  # question ids the line asks (the script's, logged)


@dataclass
class _Memory:
    replies: int = 0
    acknowledgements_since_offer: int = 0
    offers: int = 0
    sequence: int = 0  # steps of the boundary sequence taken: named, announced, ended
    asked: int = 0  # questions of the style's list asked so far
    transferred: bool = False
    said: set[tuple[str, int]] = field(default_factory=set)


class SimTrainee:
    """One simulated trainee for one call."""

    def __init__(self, *, style: str, scenario: Scenario, lines: TraineeLines,
                 rng: random.Random) -> None:
        if style not in STYLES:
            raise InputError(f"unknown trainee style {style!r}; expected one of: {', '.join(STYLES)}")
        if lines.language != scenario.language:
            raise InputError(f"trainee lines are {lines.language}, the scenario is {scenario.language}")
        self.style = style
        self.scenario = scenario
        self.lines = lines
        self.rng = rng
        self._m = _Memory()

    # -- lines

    def _pick(self, intent: str) -> str:
        options = self.lines.lines(self.style, intent)
        unused = [i for i in range(len(options)) if (intent, i) not in self._m.said]
        if not unused:  # all said: start again
            self._m.said = {s for s in self._m.said if s[0] != intent}
            unused = list(range(len(options)))
        index = self.rng.choice(unused)
        self._m.said.add((intent, index))
        return options[index]

    def _turn(self, intent: str, delivery: Delivery, *, ends_call: bool = False,
              ask: bool = False) -> TraineeTurn:
        """A line of `intent`; with `ask`, the next question of the style's list after it."""
        text = self._pick(intent)
        questions = self.lines.questions[self.style]
        if ask and self._m.asked < len(questions):
            question, line = questions[self._m.asked]
            self._m.asked += 1
            return TraineeTurn(f"{intent}+question", f"{text} {line}", delivery, ends_call,
                               (question,))
        return TraineeTurn(intent, text, delivery, ends_call)

    # -- policy

    def greeting(self) -> TraineeTurn:
        """Answering the phone, at the trainee's normal voice (good) or already rushed (poor)."""
        if self.style == "good":
            return self._turn("greeting", Delivery(1.0, 0.0, 0.0))
        return self._turn("greeting", Delivery(POOR_RATE, POOR_LOUD_DB, 0.0, POOR_PITCH))

    def reply(self, heard: Heard) -> TraineeTurn:
        turn = self._good(heard) if self.style == "good" else self._poor(heard)
        self._m.replies += 1
        return turn

    def _good(self, heard: Heard) -> TraineeTurn:
        angry = heard.anger >= GOOD_ANGRY_AT
        delivery = Delivery(
            rate_factor=GOOD_SLOW_RATE if angry else GOOD_CALM_RATE,
            gain_db=GOOD_SOFT_DB if angry else GOOD_CALM_DB,
            gap_s=round(self.rng.uniform(*GOOD_GAP_S), 3),
        )
        m = self._m
        if heard.abusive or heard.situation == "abusive":
            # the seed's sequence: name the behaviour, announce the end, end the call
            m.sequence += 1
            step = ("boundary", "end_announcement", "end_call")[min(m.sequence, 3) - 1]
            return self._turn(step, delivery, ends_call=step == "end_call")
        venting = heard.situation in VENTING_SITUATIONS
        if m.replies < LISTEN_REPLIES and venting:
            return self._turn("listen", delivery)  # first let them tell the story
        if self._needs_transfer():
            # the name and date of birth first, so the colleague can be briefed with them
            if m.asked < TRANSFER_AFTER_QUESTIONS:
                return self._turn("acknowledgement", delivery, ask=True)
            return self._turn("transfer", delivery)
        if (venting and m.acknowledgements_since_offer < ACK_BEFORE_OFFER) or (
                not venting and m.acknowledgements_since_offer == 0 and m.offers == 0):
            m.acknowledgements_since_offer += 1
            return self._turn("acknowledgement", delivery, ask=True)
        m.acknowledgements_since_offer = 0
        m.offers += 1
        return self._turn("offer", delivery, ask=True)

    def _needs_transfer(self) -> bool:
        return ("transferred" in self.scenario.ending.expected
                or "warm-transfer" in self.scenario.needs)

    def _poor(self, heard: Heard) -> TraineeTurn:
        m = self._m
        cut = (m.replies % POOR_CUT_EVERY == 0 and heard.duration_s >= POOR_MIN_LINE_FOR_CUT_S)
        if cut:
            overlap = self.rng.uniform(*POOR_OVERLAP_S)
            overlap = min(overlap, heard.duration_s - 0.8)  # still starts inside the line
            return self._turn("interrupt", Delivery(POOR_RATE, POOR_LOUD_DB, -round(overlap, 3),
                                                    POOR_PITCH))
        cycle = ("argument", "vague", "negative")
        intent = cycle[(m.replies // POOR_CUT_EVERY) % len(cycle)]
        if heard.abusive:
            intent = "argument"  # shouts back
        elif self._needs_transfer() and not m.transferred and m.replies >= POOR_TRANSFER_AT:
            m.transferred = True
            intent = "cold_transfer"  # puts the caller through without briefing anyone
        gap = round(self.rng.uniform(*POOR_GAP_S), 3)
        # fires off its questions from the first reply on, with whatever else it says
        return self._turn(intent, Delivery(POOR_RATE, POOR_LOUD_DB, gap, POOR_PITCH),
                          ask=intent != "cold_transfer")
