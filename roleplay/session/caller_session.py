"""The caller's side of one call, whatever clock drives it.

`roleplay demo` (a synthetic timeline) and `roleplay drill` (the live stream) both hand the caller
what happened, in call time, and write what it answers: the caller's perception of a trainee turn
(`observe`), its reaction (`scenario.react`), the events that record it, the outcome and the next
line. A rule changed here reaches both. Pure logic: no audio, no devices, no clock of its own.

The order of one round, as both clocks call it:

    open() / on_greeting()      the opening line (the greeting is logged, not reacted to)
    on_line_spoken()            the caller's line is out: its event, and an outcome it may cause
    on_trainee_turn()           the trainee's turn: reaction, events, outcome or the next line

and, from the live clock only, `on_interruption()`, `on_time()` and `on_hang_up()`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from roleplay.analysis.assessment import SILENCE_S
from roleplay.analysis.phrases import is_backchannel
from roleplay.analysis.pipeline import Turn
from roleplay.caller.questions import answer as answer_question
from roleplay.caller.questions import (
    briefed,
    compose,
    find_questions,
    load_questions,
    placement,
)
from roleplay.caller.scenario import (
    CallerLine,
    CallerState,
    Scenario,
    TurnObservation,
    initial_state,
    next_line,
    outcome,
    react,
)
from roleplay.session.adapters import HeardTurn

# What the caller counts as which behaviour in a trainee turn (the guide's thresholds).
INTERRUPTION_MIN_OVERLAP_S = 0.5  # trainee speech this long over the caller's line takes over
LET_VENT_MAX_SPEECH_S = 2.0  # a turn this short while the caller vents lets them go on
DEAD_SILENCE_S = 4.0  # no answer for this long after the caller stopped
LOUDER_DB = 2.0  # against the trainee's baseline; smaller changes are noise
FASTER_PCT = 10.0  # listeners notice a tempo change of about 10 %
VENTING = frozenset({"opening", "venting", "escalating", "interrupted", "abusive", "silence"})
PHRASE_BEHAVIOURS = {
    "acknowledgement": "acknowledgement",
    "concrete-offer": "concrete-offer",
    "boundary": "boundary",
    "end-announcement": "end-announcement",
    "transfer": "transfer",
    "argument": "argument",
    "negative": "negative",
    "vague": "vague",
}
GREETING = "greeting"  # `decided_by` of the trainee's first turn: logged, never reacted to


@dataclass(frozen=True)
class Observed:
    """What the caller made of one trainee turn."""

    observation: TurnObservation
    turn: Turn | None
    latency_s: float | None  # from the end of the caller's line to the trainee's first speech
    overlap_s: float


def observe(turn: Turn | None, *, caller_start_s: float, caller_end_s: float, caller_situation: str,
            ends_call: bool, language: str) -> Observed:
    """The caller's view of a trainee turn, from its analysis only (the script is not consulted,
    except for the trainee putting the phone down, which is an action, not speech)."""
    if turn is None or (not turn.words and turn.duration_s < 0.3):
        return Observed(TurnObservation(trainee_silent=True, trainee_ended_call=ends_call), turn,
                        None, 0.0)
    found: set[str] = set()
    latency = round(turn.start_s - caller_end_s, 3)
    overlap = max(0.0, min(turn.end_s, caller_end_s) - max(turn.start_s, caller_start_s))
    interrupting = (turn.start_s < caller_end_s and overlap >= INTERRUPTION_MIN_OVERLAP_S
                    and not is_backchannel(turn.text, language=language))
    if interrupting:
        found.add("interruption")
    elif latency >= DEAD_SILENCE_S:
        found.add("dead-silence")
    elif latency >= SILENCE_S:
        found.add("silence")
    speech_s = turn.duration_s - turn.pause_total_s
    if (not interrupting and caller_situation in VENTING and speech_s <= LET_VENT_MAX_SPEECH_S
            and latency < DEAD_SILENCE_S):
        found.add("let-vent")
    for phrase in turn.phrases:
        if phrase.category in PHRASE_BEHAVIOURS:
            found.add(PHRASE_BEHAVIOURS[phrase.category])
    if "transfer" in found and not _briefed(turn, language):
        found.discard("transfer")
        found.add("cold-transfer")
    if turn.loudness_vs_baseline_db is not None and turn.loudness_vs_baseline_db >= LOUDER_DB:
        found.add("louder")
    if turn.rate_vs_baseline_pct is not None and turn.rate_vs_baseline_pct >= FASTER_PCT:
        found.add("faster")
    return Observed(TurnObservation(behaviours=frozenset(found), trainee_ended_call=ends_call),
                    turn, latency, round(overlap, 3))


def _briefed(turn: Turn, language: str) -> bool:
    """A warm transfer: told, and that the colleague knows the story. Two different transfer
    phrases (the assessment's warm-transfer rule), or a briefing cue heard close enough where the
    recognizer garbled it ("mijn korega is of de hoote": `questions.briefed`)."""
    if len({p.text for p in turn.phrases if p.category == "transfer"}) >= 2:
        return True
    return briefed(turn.text, language=language) is not None


@dataclass(frozen=True)
class CallEvent:
    """One line of events.jsonl, as `CallWriter.event(type, **fields)` takes it."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineSpoken:
    """The caller's line is out."""

    event: CallEvent
    outcome: str | None  # the line ended the call (hung up, satisfied, out of time)


@dataclass(frozen=True)
class Decision:
    """The caller's answer to one trainee turn."""

    events: tuple[CallEvent, ...]  # the trainee-turn event, one `anger` event per change, then
    # one `answer` event per question recognised in the turn
    behaviours: tuple[str, ...]  # what the caller heard in the turn, sorted
    anger: float  # after the reaction
    line: CallerLine | None  # what the caller says next; None when the call is over
    outcome: str | None


@dataclass(frozen=True)
class Interruption:
    yields: bool  # the caller stops talking (a very angry one talks on)
    event: CallEvent


class CallerSession:
    """The caller's state through one call; both clocks drive it, neither duplicates it."""

    def __init__(self, scenario: Scenario, *, rng: random.Random,
                 max_caller_lines: int | None = None) -> None:
        self.scenario = scenario
        self.language = scenario.language
        self.rng = rng
        self.max_caller_lines = max_caller_lines  # None: only the scenario's rules end the call
        self.state: CallerState = initial_state(scenario)
        self.line: CallerLine | None = None  # the caller's current (or last) line
        self.line_start_s = 0.0  # of that line, on the call timeline
        self.line_end_s = 0.0  # its end, or where it was cut off
        self.caller_lines = 0
        self.greeted = False
        self.outcome: str | None = None
        self.questions = load_questions(scenario.language)
        self.given: set[str] = set()  # facts the caller has given this call

    # ------------------------------------------------------------------ what the clocks read

    @property
    def anger(self) -> float:
        return self.state.anger

    @property
    def barge_in_after_s(self) -> float | None:
        """How long the trainee may talk before this caller talks over them; None: never."""
        rules = self.scenario.rules
        return rules.barge_in_after_s if self.state.anger >= rules.barge_in_at else None

    def barges_in(self, *, trainee_speaking_s: float) -> bool:
        after_s = self.barge_in_after_s
        return after_s is not None and trainee_speaking_s >= after_s

    @property
    def at_line_limit(self) -> bool:
        """The caller has said as many lines as it may (`max_caller_lines`)."""
        return self.max_caller_lines is not None and self.caller_lines >= self.max_caller_lines

    def likely_opening(self) -> CallerLine:
        """An opening line to synthesize ahead (a fixed draw; the real one uses `rng`)."""
        return next_line(self.scenario, self.state, rng=random.Random(0))[1]

    # ------------------------------------------------------------------ events of the call

    def call_start_event(self, *, trainee: str, **extra: Any) -> CallEvent:
        return CallEvent("call-start", {"t_s": 0.0, "anger": self.state.anger,
                                        "scenario": self.scenario.id, "trainee": trainee, **extra})

    def call_end_event(self, *, t_s: float) -> CallEvent:
        return CallEvent("call-end", {"t_s": round(t_s, 3), "outcome": self.outcome,
                                      "anger": self.state.anger})

    def barge_in_event(self, *, t_s: float, trainee_speaking_s: float) -> CallEvent:
        return CallEvent("barge-in", {"t_s": round(t_s, 3), "anger": self.state.anger,
                                      "trainee_speaking_s": round(trainee_speaking_s, 3)})

    # ------------------------------------------------------------------ the round

    def open(self) -> CallerLine:
        """The caller's first line (after the greeting, or when nobody greets)."""
        self.greeted = True
        self.state, line = next_line(self.scenario, self.state, rng=self.rng)
        return line

    def on_greeting(self, *, start_s: float, end_s: float, heard: str | None = None,
                    **extra: Any) -> Decision:
        """The trainee picked up: log the greeting (not reacted to) and open."""
        fields: dict[str, Any] = {"t_s": round(start_s, 3), "end_s": round(end_s, 3)}
        if heard is not None:  # the demo does not listen to its own greeting
            fields["heard"] = heard
        fields.update(decided_by=GREETING, **extra)
        line = self.open()
        return Decision(events=(CallEvent("trainee-turn", fields),), behaviours=(),
                        anger=self.state.anger, line=line, outcome=None)

    def on_line_spoken(self, line: CallerLine, *, start_s: float, end_s: float, rate_wpm: float,
                       volume: float, **extra: Any) -> LineSpoken:
        """`line` plays from `start_s` to `end_s` (call time)."""
        self.line, self.line_start_s, self.line_end_s = line, start_s, end_s
        self.caller_lines += 1
        event = CallEvent("caller-line", {
            "t_s": round(start_s, 3), "end_s": round(end_s, 3), "text": line.text,
            "situation": line.situation, "group": line.group, "anger": self.state.anger,
            "rate_wpm": round(rate_wpm, 1), "volume": round(volume, 3), **extra})
        # the caller's own endings (hanging up, satisfied) count once the line is said
        self.outcome = outcome(self.scenario, self.state, elapsed_s=end_s)
        return LineSpoken(event, self.outcome)

    def on_caller_cut(self, *, at_s: float) -> CallEvent:
        """The caller's line stopped at `at_s` (it yielded, or the trainee hung up)."""
        self.line_end_s = at_s
        return CallEvent("caller-stopped", {"t_s": round(at_s, 3)})

    def on_trainee_turn(self, turn: Turn | None, *, start_s: float, end_s: float, decided_by: str,
                        ends_call: bool | None = None, **extra: Any) -> Decision:
        """The trainee's turn from `start_s` to `end_s` (call time) as analysed (`turn`; None:
        nothing heard). `decided_by`: what ended it for the caller (end-of-turn, barge-in,
        no-answer). `ends_call`: the trainee put the phone down after it (None: this clock has
        no such action; the drill's hang-up is `on_hang_up`). `extra`: the clock's own fields
        for the trainee-turn event."""
        situation = self.line.situation if self.line is not None else "opening"
        seen = observe(turn, caller_start_s=self.line_start_s, caller_end_s=self.line_end_s,
                       caller_situation=situation, ends_call=bool(ends_call),
                       language=self.language)
        self.state, changes = react(self.scenario, self.state, seen.observation, rng=self.rng)
        behaviours = tuple(sorted(self.state.last_behaviours))
        fields = {
            "t_s": round(start_s, 3), "end_s": round(end_s, 3), "heard": turn.text if turn else "",
            "behaviours": list(behaviours), "latency_s": seen.latency_s, "overlap_s": seen.overlap_s,
            "decided_by": decided_by, **extra}
        if ends_call is not None:
            fields["ends_call"] = ends_call
        events = [CallEvent("trainee-turn", fields)]
        events += [CallEvent("anger", {"t_s": round(end_s, 3), "anger": ch.anger_after,
                                       "delta": ch.delta, "reason": ch.reason}) for ch in changes]
        self.outcome = outcome(self.scenario, self.state, elapsed_s=end_s)
        if self.outcome is None and self.at_line_limit:
            self.outcome = "time-limit"
        line = None
        if self.outcome is None:
            self.state, line = next_line(self.scenario, self.state, rng=self.rng)
            if turn is not None and turn.text:
                line, answers = self._answer(turn, line, t_s=end_s)
                events += answers
        return Decision(events=tuple(events), behaviours=behaviours, anger=self.state.anger,
                        line=line, outcome=self.outcome)

    def _answer(self, turn: Turn, line: CallerLine, *, t_s: float
                ) -> tuple[CallerLine, list[CallEvent]]:
        """The questions in the trainee's words (checked against the turn's audio where the
        words alone are too garbled, when the clock kept it), answered in the caller's next line."""
        asked = find_questions(turn.text, language=self.language,
                               reread=turn.reread if isinstance(turn, HeardTurn) else None)
        if not asked:
            return line, []
        answers = []
        events = []
        for q in asked:
            a = answer_question(self.scenario, self.questions, q.question,
                                situation=line.situation, anger=self.state.anger,
                                given=frozenset(self.given), rng=self.rng)
            answers.append(a)
            if a.fact is not None:
                self.given.add(a.fact)
            fields: dict[str, Any] = {
                "t_s": round(t_s, 3), "question": a.question, "heard": q.heard, "tone": a.tone,
                "placement": placement(line.situation), "text": a.text, "reason": a.reason}
            if q.audio_support is not None:  # the words alone did not carry it
                fields["audio_support"] = q.audio_support
            if a.fact is not None:
                fields.update(fact=a.fact, value=a.value)
            events.append(CallEvent("answer", fields))
        text = compose(line.text, answers, situation=line.situation)
        return replace(line, text=text, audio_path=None if text != line.text else line.audio_path
                       ), events

    def on_interruption(self, *, start_s: float, decided_s: float) -> Interruption:
        """The trainee cut into the caller's line: a caller below its barge-in anger stops."""
        yields = self.state.anger < self.scenario.rules.barge_in_at
        return Interruption(yields, CallEvent("interruption", {
            "t_s": round(start_s, 3), "decided_s": round(decided_s, 3),
            "caller": "yields" if yields else "talks-on"}))

    def on_time(self, *, t_s: float) -> str | None:
        """The call's clock reached `t_s`: the scenario's time limit ends it."""
        if self.outcome is None and t_s >= self.scenario.ending.time_limit_s:
            self.outcome = "time-limit"
        return self.outcome

    def on_hang_up(self, *, t_s: float) -> CallEvent:
        """The trainee put the phone down (Enter in the drill)."""
        self.outcome = "ended-by-trainee"
        return CallEvent("trainee-hung-up", {"t_s": round(t_s, 3)})

    def end(self, result: str) -> str:
        """The clock ended the call (`result`) where no rule here did."""
        self.outcome = result
        return result
