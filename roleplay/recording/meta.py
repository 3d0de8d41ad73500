"""meta.json of a call directory, typed: what the call is (scenario, language, trainee, settings,
versions) and, once closed, how it ended. Read it with `roleplay.recording.calldir.read_meta`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from roleplay.recording.events import Outcome
from roleplay.recording.records import JsonView, fields_from_dict, fields_to_dict

Status = Literal["recording", "complete", "aborted"]


@dataclass(frozen=True, kw_only=True)
class CallMeta(JsonView):
    """meta.json of a call directory. `CallWriter` writes the first five when the call starts and
    `ended_utc`, `duration_s` and `outcome` when it closes; the rest come from whoever made the call
    (demo, drill, a scripted call), each only where it applies."""

    format_version: int
    created_utc: str  # ISO 8601, UTC, whole seconds
    rate_hz: int  # of caller.wav and trainee.wav
    status: Status  # "recording" until closed: a call cut off (crash, kill) stays so
    versions: dict[str, str]  # roleplay and the libraries that shaped the audio and its analysis
    ended_utc: str | None = None
    duration_s: float | None = None
    outcome: Outcome | None = None
    mode: str | None = None  # "demo", "live" (a drill), "synthetic" (scripted)
    call_id: str | None = None  # an id given by whoever made the call (history key); none writes it yet
    scenario: str | None = None
    language: str | None = None
    trainee: str | None = None  # the trainee's name, or the simulated trainee's style in a demo
    seed: int | None = None  # demo
    needs: tuple[str, ...] | None = None  # the scenario's advice items
    caller_voice: str | None = None
    trainee_voice: str | None = None  # demo
    calibration_text: str | None = None  # what calibration.wav reads
    expected_outcomes: tuple[str, ...] | None = None
    anger_start: float | None = None
    anger_peak: float | None = None
    anger_end: float | None = None
    caller_lines: int | None = None
    trainee_turns: int | None = None  # demo
    # a drill (live call): the measured output-to-input delay and echo, the devices, the timing
    lag_ms: float | None = None
    lag_confidence: float | None = None
    echo_gain: float | None = None
    input_device: str | None = None
    output_device: str | None = None
    end_of_turn_s: float | None = None
    stream_status: dict[str, int] | None = None  # PortAudio's over- and underflow counts
    # a drill through the browser (web app): "browser", and the latency the audio context reported
    audio: str | None = None
    reported_lag_ms: float | None = None
    reply_delays_s: tuple[float, ...] | None = None
    # keys this version does not know (a newer writer), kept so an old reader loses nothing
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {**fields_to_dict(self, skip=("extra",)), **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = False) -> CallMeta:
        """ValueError when a field is missing or of the wrong type; unknown keys are kept in
        `extra`, or refused when `strict` (the writer's check)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        kwargs, extra = fields_from_dict(cls, data, where="meta.json", skip=("extra",), strict=strict)
        return cls(**kwargs, extra=extra)

