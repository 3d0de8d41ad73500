"""The events of a call (events.jsonl), one frozen dataclass per type.

Each line of events.jsonl is one event: `{"t_s": ..., "type": ..., <its fields>}`. `t_s` is
seconds on the call's timeline (sample 0 of caller.wav and trainee.wav). Optional fields (`| None`)
are left out of the line when not given; which writer gives which is noted per class.

    event = CallerLine(t_s=7.0, end_s=11.2, text="...")
    event.to_dict()               -> {"t_s": 7.0, "type": "caller-line", "end_s": 11.2, "text": "..."}
    Event.from_dict(that dict)    -> CallerLine(...)   (any type, by its `type`)
    CallerLine.from_dict(d)       -> CallerLine(...)   (that type only)

An event also reads like the JSON object it was made from (`e["type"]`, `e.get("anger")`,
`set(e)`), so code written against the plain-dict events works unchanged; new code uses the
attributes. A type this version does not know (a newer writer) is kept as an `UnknownEvent`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, get_args

from roleplay.recording.records import JsonView, fields_from_dict, fields_to_dict

Outcome = Literal["calmed", "ended-by-trainee", "transferred", "caller-hung-up", "time-limit", "aborted"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, kw_only=True)
class Event(JsonView):
    """One moment of the call. Subclasses set TYPE, the `type` written to the file."""

    TYPE: ClassVar[str] = ""
    t_s: float

    @property
    def type(self) -> str:
        return self.TYPE

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": self.t_s, "type": self.type, **fields_to_dict(self, skip=("t_s",))}

    @classmethod
    def from_dict(cls: builtins.type[E], data: Mapping[str, Any]) -> E:
        """The event `data` describes. On `Event` itself: whatever type `data["type"]` names (an
        unknown one gives an `UnknownEvent`); on a subclass: that type only. A missing, misspelt
        or wrongly typed field raises ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"expected an event object, got {type(data).__name__}")
        name = data.get("type")
        if not isinstance(name, str):
            raise ValueError("an event needs a string `type`")
        if cls is Event:
            target = EVENT_TYPES.get(name)
            if target is None:
                return UnknownEvent.from_dict(data)  # type: ignore[return-value]
            return target.from_dict(data)  # type: ignore[return-value]
        if name != cls.TYPE:
            raise ValueError(f"expected a {cls.TYPE!r} event, got {name!r}")
        kwargs, _extra = fields_from_dict(cls, data, where=f"{name} event", skip=("type",))
        return cls(**kwargs)

    @classmethod
    def is_type(cls, name: str) -> bool:
        return name == cls.TYPE



@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event whose type this version does not know, or whose fields do not fit its type (a
    newer or older writer): kept as it was read, so an old reader does not crash on a new file."""

    name: str
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def type(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": self.t_s, "type": self.name, **self.data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnknownEvent:
        t_s = data.get("t_s")
        if not isinstance(t_s, int | float) or isinstance(t_s, bool):
            raise ValueError("an event needs a number `t_s`")
        name = data.get("type")
        if not isinstance(name, str):
            raise ValueError("an event needs a string `type`")
        return cls(t_s=t_s, name=name, data={k: v for k, v in data.items() if k not in ("t_s", "type")})


EVENT_TYPES: dict[str, type[Event]] = {}


def _event(name: str) -> Callable[[builtins.type[E]], builtins.type[E]]:
    """Register an event class under the `type` it is written with."""

    def register(cls: type[E]) -> type[E]:
        cls.TYPE = name
        EVENT_TYPES[name] = cls
        return cls

    return register


# --------------------------------------------------------------------------- the call


@_event("call-start")
@dataclass(frozen=True, kw_only=True)
class CallStart(Event):
    """The call begins (t_s 0). The caller's anger then, the scenario and the trainee (style in a
    demo, name in a drill); a live call adds the measured output-to-input delay. A scripted call
    (example, benchmarks) gives none of them."""

    anger: float | None = None
    scenario: str | None = None
    trainee: str | None = None
    lag_ms: float | None = None


@_event("call-end")
@dataclass(frozen=True, kw_only=True)
class CallEnd(Event):
    """The call is over. A call cut off (Ctrl-C, a device error) has `reason` and no `anger`."""

    outcome: Outcome
    anger: float | None = None
    reason: str | None = None


@_event("trainee-hung-up")
@dataclass(frozen=True, kw_only=True)
class TraineeHungUp(Event):
    """The trainee put the phone down (live calls)."""


@_event("audio-restart")
@dataclass(frozen=True, kw_only=True)
class AudioRestart(Event):
    """The audio device stopped and was opened again; `restarts` counts them so far this call."""

    restarts: int


@_event("echo-offset")
@dataclass(frozen=True, kw_only=True)
class EchoOffset(Event):
    """The caller's echo in the microphone moved (an output underflow): the trainee track is
    shifted by `offset_ms` from `shifted_from_s` on. `t_s` is the start of the caller line."""

    offset_ms: float
    confidence: float
    shifted_from_s: float


# --------------------------------------------------------------------------- the caller


@_event("caller-line")
@dataclass(frozen=True, kw_only=True)
class CallerLine(Event):
    """The caller says a line, from t_s to end_s. Demo and drill give the line's situation and
    group, the caller's anger and the voice's rate and volume at that anger; a drill adds what
    made the caller speak (`reason`: end-of-turn, barge-in, no-answer, no-greeting). A scripted
    call gives the voice, the planted kind (turn, interruption, backchannel) and the anger."""

    end_s: float
    text: str
    situation: str | None = None
    group: str | None = None
    anger: float | None = None
    rate_wpm: float | None = None
    volume: float | None = None
    reason: str | None = None
    voice: str | None = None
    kind: str | None = None


@_event("caller-stopped")
@dataclass(frozen=True, kw_only=True)
class CallerStopped(Event):
    """The caller's line was cut off here (it yielded to an interruption, or the trainee hung up)."""


@_event("anger")
@dataclass(frozen=True, kw_only=True)
class AngerChange(Event):
    """The caller's anger changed by `delta` to `anger` (0-10), because of `reason` (a behaviour
    seen in the trainee's turn, e.g. acknowledgement, interruption)."""

    anger: float
    delta: float
    reason: str


@_event("answer")
@dataclass(frozen=True, kw_only=True)
class Answer(Event):
    """The caller answers a question recognised in the trainee's turn (demo and drill): `question`
    (the question list's id), `heard` (the words it was recognised in), `fact` (the scenario fact
    given; absent when the scenario has none) and its `value`, `tone` (curt, plain, cooperative,
    repeated, unknown; none in calls recorded before a caller hanging up answered first),
    `placement` (after-line, before-line, instead-of-line; none as for tone), `text` (what the
    caller says for it) and `reason` (why this answer). `t_s` is the end of the trainee's turn.
    `audio_support` (nats per word of the question's phrasing): present when the words heard were
    too garbled to carry the question and the turn's audio supported it."""

    question: str
    heard: str
    tone: str
    placement: str
    text: str
    reason: str
    fact: str | None = None
    value: str | None = None
    audio_support: float | None = None


@_event("barge-in")
@dataclass(frozen=True, kw_only=True)
class BargeIn(Event):
    """The caller (at `anger`) talks over a trainee who has been speaking `trainee_speaking_s`."""

    anger: float
    trainee_speaking_s: float


@_event("reply-delay")
@dataclass(frozen=True, kw_only=True)
class ReplyDelay(Event):
    """How long the caller took to answer a turn (live calls), and where the time went: waiting
    for silence, input, recognition, decision, synthesis, output. `recognised` says how the turn
    was recognised; `made_ahead` that the line's audio was synthesised before it was needed;
    `end_wait_s` the silence the pause needed to end the turn and `end_reason` why (the words and
    pitch of the turn, or "fixed"; absent when no pause ended it: a barge-in, no answer)."""

    turn: int
    total_s: float
    silence_wait_s: float
    input_s: float
    recognition_s: float
    decision_s: float
    synthesis_s: float
    output_s: float
    recognised: Literal["early", "early-rest", "whole"]
    made_ahead: bool
    end_wait_s: float | None = None
    end_reason: str | None = None


@_event("premature-start")
@dataclass(frozen=True, kw_only=True)
class PrematureStart(Event):
    """The trainee spoke again at t_s, `after_caller_s` after the caller's reply to `turn` (the
    reply-delay event's) began at `caller_start_s` (negative: before it was heard): the turn was
    not over, the caller started too soon (live calls)."""

    turn: int
    caller_start_s: float
    after_caller_s: float


# --------------------------------------------------------------------------- the trainee


@_event("trainee-turn")
@dataclass(frozen=True, kw_only=True)
class TraineeTurn(Event):
    """A turn of the trainee, from t_s to end_s, as the caller took it in. A demo gives the
    simulated trainee's intent, script text and delivery (rate_factor, gain_db, pitch_delta,
    ends_call); both demo and drill give what was heard and, after the greeting, the behaviours
    seen, the latency and overlap against the caller's line and the rate and loudness against the
    trainee's baseline (demo); a drill adds what ended the turn (`decided_by`); a demo turn that
    asks questions names them (`asks`, question ids)."""

    end_s: float
    intent: str | None = None
    text: str | None = None
    heard: str | None = None
    behaviours: tuple[str, ...] | None = None
    latency_s: float | None = None
    overlap_s: float | None = None
    rate_vs_baseline_pct: float | None = None
    loudness_vs_baseline_db: float | None = None
    rate_factor: float | None = None
    gain_db: float | None = None
    pitch_delta: float | None = None
    ends_call: bool | None = None
    decided_by: str | None = None
    asks: tuple[str, ...] | None = None


@_event("trainee-line")
@dataclass(frozen=True, kw_only=True)
class TraineeLine(Event):
    """A scripted trainee line (example call, benchmarks): the ground truth that was planted."""

    end_s: float
    text: str
    voice: str | None = None
    kind: str | None = None
    anger: float | None = None


@_event("interruption")
@dataclass(frozen=True, kw_only=True)
class Interruption(Event):
    """The trainee started talking over the caller at t_s (seen at `decided_s`); the caller
    `yields` (stops) or `talks-on`."""

    decided_s: float
    caller: Literal["yields", "talks-on"]


@_event("backchannel")
@dataclass(frozen=True, kw_only=True)
class Backchannel(Event):
    """A short sound of the trainee while the caller spoke ("mm", "ja"), not a turn."""

    end_s: float


def event_from_json(data: Any) -> Event:
    """What a reader makes of one parsed line: the typed event, or an `UnknownEvent` when the type
    is unknown or its fields do not fit (so a file from another version still loads). ValueError
    when it is not an event at all (no `type` or `t_s`)."""
    try:
        return Event.from_dict(data)
    except ValueError:
        return UnknownEvent.from_dict(data) if isinstance(data, Mapping) else Event.from_dict(data)


def make_event(type_: str, **fields: Any) -> Event:
    """The typed event for `writer.event(type_, t_s=..., **fields)`: an unknown type or a missing,
    misspelt or wrongly typed field raises ValueError at once, in the code that wrote it."""
    cls = EVENT_TYPES.get(type_)
    if cls is None:
        raise ValueError(f"unknown event type {type_!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    return cls.from_dict({**fields, "type": type_})
