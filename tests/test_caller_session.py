"""One caller for both clocks: the same scripted trainee, driven through the demo's loop
(`DemoLoop`, the synthetic timeline) and the drill's turn handler (`Drill.on_turn_event`, the
live timeline, with a fake stream), must get the same caller decisions: the same behaviours
heard, the same anger changes, the same lines and the same outcome.

No models and no devices: speech is silence or a constant level whose amplitude says which
scripted turn it is, and the "recognizer" reads that back as the scripted turn, timed where the
audio lies on each clock's timeline. Interruptions and barge-ins are left out: there the clocks
differ by design (a live caller can stop mid-line; the demo's lines are placed whole)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from helpers import FakePlayback

from roleplay.analysis.pipeline import Phrase, Turn
from roleplay.audio.clip import Audio
from roleplay.audio.devices import LagMeasurement
from roleplay.caller.scenario import CallerLine, load_scenario
from roleplay.caller.simtrainee import Delivery, Heard, TraineeTurn
from roleplay.core.constants import RATE_HZ
from roleplay.recording.events import make_event
from roleplay.session.caller_session import CallerSession
from roleplay.session.demo import DemoLoop
from roleplay.session.live import Drill, DrillSettings, _Status
from roleplay.session.turntaking import TurnEvent
from roleplay.speech.streamvad import StreamingVad

CALLER_LINE_S = 3.0  # every caller line lasts this long on both clocks
END_OF_TURN_S = 0.7  # the drill's turn-taking decides this long after the trainee stops
LEVEL_STEP = 0.01  # trainee turn k is spoken at amplitude (k + 1) * LEVEL_STEP


@dataclass(frozen=True)
class Said:
    """One scripted trainee turn, as the recognizer will report it."""

    text: str
    gap_s: float  # after the end of the caller's line
    duration_s: float
    phrases: tuple[str, ...] = ()  # phrase categories found in it
    louder_db: float | None = None  # against the baseline
    faster_pct: float | None = None


SCRIPT = (
    Said("Huisartsenpost, goedenavond, u spreekt met Anna.", 0.0, 2.0),
    Said("Ja.", 0.5, 1.2),  # short, while the caller vents
    Said("Dat begrijp ik.", 2.5, 2.0, ("acknowledgement",), louder_db=3.0),
    Said("Maar u moet gewoon wachten.", 0.4, 3.0, ("argument",), faster_pct=15.0),
    Said("Ik snap dat dit lang duurt.", 0.9, 2.5, ("acknowledgement",)),
    Said("De dokter komt binnen een uur.", 0.7, 3.0, ("concrete-offer",)),
    Said("Dat is vervelend voor u.", 0.6, 2.0, ("acknowledgement", "concrete-offer")),
    # a warm transfer: two different transfer phrases (one alone is a cold transfer)
    Said("Ik verbind u door met de arts, mijn collega is ingelicht.", 0.5, 2.5,
         ("transfer", "transfer")),
)


def _utterance(k: int) -> np.ndarray:
    return np.full(int(round(SCRIPT[k].duration_s * RATE_HZ)), (k + 1) * LEVEL_STEP, np.float32)


def hear(audio: Audio, *, offset_s: float, transcriber: Any = None) -> Turn | None:
    """The scripted turn the audio's level names, where its samples lie (None: silence)."""
    loud = np.flatnonzero(np.abs(audio.samples) > 1e-6)
    if not len(loud):
        return None
    k = int(round(float(np.max(np.abs(audio.samples))) / LEVEL_STEP)) - 1
    said = SCRIPT[k]
    start_s = offset_s + loud[0] / RATE_HZ
    end_s = offset_s + (loud[-1] + 1) / RATE_HZ
    return Turn(index=k, speaker="trainee", start_s=start_s, end_s=end_s, text=said.text, words=(),
                syllables=4, syllables_transcript=4, syllables_acoustic=4,
                syllable_source="transcript", pause_total_s=0.0, speech_rate_syll_s=4.0,
                articulation_rate_syll_s=4.0, loudness_dbfs=-30.0, pitch_median_hz=200.0,
                pitch_spread_st=2.0,
                phrases=tuple(Phrase(c, f"{said.text} ({i})", start_s, said.text)
                              for i, c in enumerate(said.phrases)),
                abuse=(), rate_vs_baseline_pct=said.faster_pct,
                loudness_vs_baseline_db=said.louder_db)


class Writer:
    """Collects what a call would write, checked as `CallWriter.event` checks it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def event(self, type_: str, *, t_s: float, **fields: Any) -> None:
        make_event(type_, t_s=t_s, **fields)  # a misspelt or unknown field raises here
        self.events.append({"type": type_, "t_s": t_s, **fields})

    def append_both(self, caller: np.ndarray, trainee: np.ndarray) -> None:
        pass


def decisions(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the caller decided, in order, without the clock's own timing and fields."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if e["type"] == "caller-line":
            out.append(("line", e["text"], e["situation"], e["group"], e["anger"]))
        elif e["type"] == "trainee-turn":
            out.append(("heard", e.get("heard", SCRIPT[0].text), e["decided_by"],
                        tuple(e.get("behaviours", ())),
                        None if e.get("latency_s") is None else round(e["latency_s"], 2)))
        elif e["type"] == "anger":
            out.append(("anger", e["reason"], e["delta"], e["anger"]))
        elif e["type"] in ("barge-in", "interruption", "caller-stopped"):
            out.append((e["type"],))
    return out


# --------------------------------------------------------------------------- the demo's clock


class ScriptedTrainee:
    def __init__(self) -> None:
        self.next = 1

    def greeting(self) -> TraineeTurn:
        return TraineeTurn("greeting", SCRIPT[0].text, Delivery(1.0, 0.0, 0.0))

    def reply(self, heard: Heard) -> TraineeTurn:
        said = SCRIPT[self.next]
        self.next += 1
        return TraineeTurn("scripted", said.text, Delivery(1.0, 0.0, said.gap_s))


class Voices:
    def caller(self, line: CallerLine, anger: float) -> Audio:
        return Audio(np.zeros(int(CALLER_LINE_S * RATE_HZ), np.float32), RATE_HZ)

    def caller_prosody(self, anger: float) -> tuple[float, float]:
        return 180.0, 0.8

    def trainee(self, turn: TraineeTurn) -> Audio:
        return Audio(_utterance(next(k for k, s in enumerate(SCRIPT) if s.text == turn.text)),
                     RATE_HZ)


def run_demo_loop(scenario_id: str, seed: int) -> tuple[list[dict[str, Any]], str]:
    writer = Writer()
    session = CallerSession(load_scenario(scenario_id), rng=random.Random(seed),
                            max_caller_lines=len(SCRIPT) + 2)
    loop = DemoLoop(session=session, trainee=ScriptedTrainee(), voices=Voices(), analyse=hear,
                    writer=writer, timing_rng=random.Random(0))
    return writer.events, loop.run()


# --------------------------------------------------------------------------- the drill's clock


class FakeStream:
    """Output starts where the test has moved the output position to."""

    def __init__(self) -> None:
        self.output_position_samples = 0
        self.input_position_samples = 0
        self.restarts = 0

    def play(self, audio: Audio) -> FakePlayback:
        start = self.output_position_samples
        return FakePlayback(self, start, start + len(audio.samples))

    def stop_playback(self) -> None:
        pass


class Speaker:
    def audio(self, line: CallerLine, anger: float) -> tuple[Audio, float]:
        return Voices().caller(line, anger), 0.0

    def prosody(self, anger: float) -> tuple[float, float]:
        return Voices().caller_prosody(anger)


def _microphone(drill: Drill, until_s: float, k: int | None = None, start_s: float = 0.0) -> None:
    """The trainee track up to `until_s`: silence, with scripted turn `k` from `start_s`."""
    tl = drill.timeline
    block = np.zeros(int(round(until_s * RATE_HZ)) - tl.trainee_len, np.float32)
    if k is not None:
        a = int(round(start_s * RATE_HZ)) - tl.trainee_len
        block[a : a + len(_utterance(k))] = _utterance(k)
    tl.add_mic(block, tl.trainee_len)


def _turn_ends(drill: Drill, stream: FakeStream, k: int, start_s: float) -> None:
    """Scripted turn `k` spoken from `start_s`; turn-taking ends it END_OF_TURN_S later."""
    end_s = start_s + len(_utterance(k)) / RATE_HZ
    decided_s = end_s + END_OF_TURN_S
    _microphone(drill, decided_s, k, start_s)
    stream.output_position_samples = int(round(decided_s * RATE_HZ))
    drill.on_turn_event(TurnEvent("end-of-turn", decided_s, start_s=start_s, end_s=end_s))


def run_drill_loop(scenario_id: str, seed: int) -> tuple[list[dict[str, Any]], str | None]:
    writer, stream = Writer(), FakeStream()
    session = CallerSession(load_scenario(scenario_id), rng=random.Random(seed),
                            max_caller_lines=len(SCRIPT) + 2)
    drill = Drill(session=session, stream=stream, writer=writer, speaker=Speaker(), listen=hear,
                  live_transcriber=None, vad=StreamingVad(), settings=DrillSettings(),
                  status=_Status(None), origin=0,
                  lag=LagMeasurement(lag_ms=0.0, lag_samples=0, confidence=1.0, spread_ms=0.0))
    _turn_ends(drill, stream, 0, 0.8)  # the greeting
    for k in range(1, len(SCRIPT)):
        if session.outcome is not None:
            break
        assert drill.current is not None
        played_end_s = drill.current.handle.end_sample / RATE_HZ  # the stream's, not the drill's
        _turn_ends(drill, stream, k, played_end_s + SCRIPT[k].gap_s)
    return writer.events, session.outcome


# --------------------------------------------------------------------------- the same caller


@pytest.mark.parametrize(("scenario_id", "seed"), [
    ("nl-visite-derde-keer", 1), ("nl-visite-derde-keer", 7), ("nl-scheldende-beller", 2),
    ("en-abusive-caller", 3), ("nl-bezorgde-moeder", 5),
])
def test_demo_and_drill_make_the_same_caller_decisions_for_the_same_turns(scenario_id, seed):
    demo_events, demo_outcome = run_demo_loop(scenario_id, seed)
    drill_events, drill_outcome = run_drill_loop(scenario_id, seed)
    demo, drill = decisions(demo_events), decisions(drill_events)
    assert demo == drill
    assert demo_outcome == drill_outcome
    # not vacuous: the caller heard several turns, said several lines and changed its mind
    assert sum(d[0] == "line" for d in demo) >= 3
    assert sum(d[0] == "anger" for d in demo) >= 2
    assert {d[2] for d in demo if d[0] == "heard"} == {"greeting", "end-of-turn"}


def test_both_clocks_write_the_trainee_turn_with_the_same_fields():
    """One set of field names for the caller's part of a trainee-turn event (the demo adds its
    script's own: intent, text, delivery)."""
    session_fields = {"t_s", "end_s", "heard", "behaviours", "latency_s", "overlap_s",
                      "decided_by"}
    demo_events, _ = run_demo_loop("nl-visite-derde-keer", 1)
    drill_events, _ = run_drill_loop("nl-visite-derde-keer", 1)
    for events in (demo_events, drill_events):
        turns = [e for e in events if e["type"] == "trainee-turn"]
        assert turns[0]["decided_by"] == "greeting"
        for e in turns[1:]:
            assert session_fields <= set(e), e
    drill_turns = [e for e in drill_events if e["type"] == "trainee-turn"][1:]
    assert all(set(e) - {"type"} == session_fields for e in drill_turns)
