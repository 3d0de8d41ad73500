"""`roleplay demo`'s call: the synthetic caller and the simulated trainee on one timeline.

Both parties are synthesized and placed on one timeline with real timing (overlaps included when
the trainee cuts in or a furious caller talks over a long answer). The caller is the same
`CallerSession` the live drill drives: each trainee turn goes through voice activity detection,
the recognizer, the phrase matcher and the rate and loudness measures against the calibration
baseline (`adapters.TurnListener`); the behaviours found there, never the script's intent labels,
move the caller's anger. The call directory is written as the call goes (`CallWriter`); analysing
it is the app layer's business (`roleplay.app.demo`).

Timeline of one round:

    caller line  |=========|                        (prosody from the caller's anger)
    good trainee             ~1 s  |======|          (waits, slower and softer)
    poor trainee         |=====|                     (cuts in 1-2 s before the caller's end)
    next caller line                       |====|    (after the trainee; or barge-in: while the
                                                      trainee is still talking)
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from roleplay.analysis.phrases import abuse_terms
from roleplay.analysis.pipeline import calibration_baseline
from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio, save_wav
from roleplay.caller.scenario import CallerLine, load_scenario
from roleplay.caller.simtrainee import STYLES, Heard, SimTrainee, TraineeTurn, load_trainee_lines
from roleplay.core.errors import InputError
from roleplay.recording.calldir import CallWriter
from roleplay.session.adapters import TurnAnalyser, TurnListener, caller_line_audio, speak
from roleplay.session.caller_session import CallerSession, CallEvent
from roleplay.speech.asr import Transcriber

MAX_CALLER_LINES = 8  # the opening included; a demo call stays short
LEAD_IN_S = 0.8  # the phone rings, the trainee picks up
CALLER_GAP_S = (0.35, 0.7)  # the caller answers this long after the trainee stops
MIN_CUT_IN_AFTER_START_S = 0.4  # an interruption starts at least this far into the caller's line
TAIL_S = 1.0
END_OF_TURN = "end-of-turn"  # the simulated trainee's turns end when its script does


@dataclass(frozen=True)
class DemoCall:
    """The simulated call as written to `directory` (not yet analysed)."""

    directory: Path
    scenario: str
    language: str
    style: str
    seed: int
    outcome: str
    anger_start: float
    anger_peak: float
    anger_end: float
    caller_lines: int
    trainee_turns: int


class Trainee(Protocol):
    """The simulated trainee's script (`SimTrainee`)."""

    def greeting(self) -> TraineeTurn: ...

    def reply(self, heard: Heard) -> TraineeTurn: ...


class DemoVoices(Protocol):
    """Speech for both parties on the demo's timeline."""

    def caller(self, line: CallerLine, anger: float) -> Audio: ...

    def caller_prosody(self, anger: float) -> tuple[float, float]: ...  # rate_wpm, volume

    def trainee(self, turn: TraineeTurn) -> Audio: ...


class Writer(Protocol):
    """What the demo needs of `CallWriter`."""

    def event(self, type_: str, *, t_s: float, **fields: Any) -> None: ...

    def append_both(self, caller: np.ndarray, trainee: np.ndarray) -> None: ...


class SyntheticTimeline:
    """Both tracks of the demo call, growing; everything before `commit(t)` goes to the files."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.tracks = {"caller": np.zeros(0, np.float32), "trainee": np.zeros(0, np.float32)}
        self.written = 0

    def place(self, speaker: str, start_s: float, audio: Audio) -> float:
        a = int(round(start_s * ANALYSIS_RATE_HZ))
        if a < self.written:
            raise RuntimeError("placing audio before what is already written")
        end = a + len(audio.samples)
        for name, track in self.tracks.items():
            if len(track) < end:
                self.tracks[name] = np.concatenate([track, np.zeros(end - len(track), np.float32)])
        self.tracks[speaker][a:end] += audio.samples
        return end / ANALYSIS_RATE_HZ

    def extend(self, seconds: float) -> float:
        """Silence at the end of both tracks; returns the new length in seconds."""
        pad = np.zeros(int(round(seconds * ANALYSIS_RATE_HZ)), np.float32)
        for name in self.tracks:
            self.tracks[name] = np.concatenate([self.tracks[name], pad])
        return len(self.tracks["caller"]) / ANALYSIS_RATE_HZ

    def slice(self, speaker: str, start_s: float, end_s: float) -> Audio:
        a = max(0, int(round(start_s * ANALYSIS_RATE_HZ)))
        b = int(round(end_s * ANALYSIS_RATE_HZ))
        return Audio(self.tracks[speaker][a:b].copy(), ANALYSIS_RATE_HZ)

    def commit(self, until_s: float | None = None) -> None:
        total = len(self.tracks["caller"])
        upto = total if until_s is None else min(total, int(round(until_s * ANALYSIS_RATE_HZ)))
        if upto > self.written:
            self.writer.append_both(self.tracks["caller"][self.written:upto],
                                    self.tracks["trainee"][self.written:upto])
            self.written = upto


class DemoLoop:
    """The caller session driven by the demo's synthetic clock: each party's audio is placed on
    the timeline, and the caller hears the trainee through `analyse`, as a microphone would."""

    def __init__(self, *, session: CallerSession, trainee: Trainee, voices: DemoVoices,
                 analyse: TurnAnalyser, writer: Writer, timing_rng: random.Random,
                 say: Callable[[str], None] = lambda _msg: None) -> None:
        self.session = session
        self.trainee = trainee
        self.voices = voices
        self.analyse = analyse
        self.writer = writer
        self.timing_rng = timing_rng
        self.say = say
        self.timeline = SyntheticTimeline(writer)
        self.trainee_turns = 0
        self.prev_trainee_end_s = 0.0

    def run(self) -> str:
        """The whole call, from the greeting to the tail after the last line; its outcome."""
        line: CallerLine | None
        line, caller_start_s = self._greet()
        while line is not None:
            caller_end_s = self._caller_says(line, caller_start_s)
            if self.session.outcome is not None:
                break
            if self.session.at_line_limit:
                # the simulated trainee's answer to the last line would not be answered
                self.session.end("time-limit")
                break
            line, caller_start_s = self._trainee_answers(line, caller_start_s, caller_end_s)
        end_s = self.timeline.extend(TAIL_S)
        self.timeline.commit()
        self._write(self.session.call_end_event(t_s=end_s))
        assert self.session.outcome is not None
        return self.session.outcome

    def _write(self, *events: CallEvent) -> None:
        for e in events:
            self.writer.event(e.type, **e.fields)

    def _greet(self) -> tuple[CallerLine, float]:
        greeting = self.trainee.greeting()
        end_s = self.timeline.place("trainee", LEAD_IN_S, self.voices.trainee(greeting))
        self.trainee_turns += 1
        decision = self.session.on_greeting(
            start_s=LEAD_IN_S, end_s=end_s, intent=greeting.intent, text=greeting.text,
            rate_factor=greeting.delivery.rate_factor, gain_db=greeting.delivery.gain_db)
        self._write(*decision.events)
        self.say(f"  trainee  {LEAD_IN_S:6.1f} s  {greeting.text}")
        self.prev_trainee_end_s = end_s
        assert decision.line is not None
        return decision.line, end_s + self.timing_rng.uniform(*CALLER_GAP_S)

    def _caller_says(self, line: CallerLine, start_s: float) -> float:
        anger = self.session.anger
        audio = self.voices.caller(line, anger)
        self.timeline.commit(start_s)
        end_s = self.timeline.place("caller", start_s, audio)
        rate_wpm, volume = self.voices.caller_prosody(anger)
        spoken = self.session.on_line_spoken(line, start_s=start_s, end_s=end_s, rate_wpm=rate_wpm,
                                             volume=volume)
        self._write(spoken.event)
        self.say(f"  caller   {start_s:6.1f} s  [{anger:4.1f}] {line.text}")
        return end_s

    def _trainee_answers(self, line: CallerLine, caller_start_s: float, caller_end_s: float
                         ) -> tuple[CallerLine | None, float]:
        """The trainee's reply on the timeline, the caller's decision on it, and when the caller's
        next line starts (after the reply, or over it when the caller barges in)."""
        session = self.session
        heard = Heard(situation=line.situation, anger=session.anger,
                      abusive=bool(abuse_terms(line.text, language=session.language)),
                      duration_s=caller_end_s - caller_start_s)
        reply = self.trainee.reply(heard)
        audio = self.voices.trainee(reply)
        start_s = max(caller_end_s + reply.delivery.gap_s, caller_start_s + MIN_CUT_IN_AFTER_START_S,
                      self.prev_trainee_end_s + 0.2)
        self.timeline.commit(min(caller_start_s, start_s))
        end_s = self.timeline.place("trainee", start_s, audio)
        self.trainee_turns += 1
        # The live path: the trainee's audio since the caller began (or since the trainee's own
        # previous turn ended), analysed like a microphone stream would be.
        window_start_s = max(caller_start_s, self.prev_trainee_end_s + 0.05)
        turn = self.analyse(self.timeline.slice("trainee", window_start_s, end_s + 0.3),
                            offset_s=window_start_s)
        speaking_s = turn.duration_s if turn else 0.0
        # whether the caller talks over this turn depends on its anger while the trainee spoke
        barge_in_after_s = session.barge_in_after_s
        barges = session.barges_in(trainee_speaking_s=speaking_s)
        barge_event = session.barge_in_event(t_s=start_s + (barge_in_after_s or 0.0),
                                             trainee_speaking_s=speaking_s)
        decision = session.on_trainee_turn(
            turn, start_s=start_s, end_s=end_s, decided_by=END_OF_TURN, ends_call=reply.ends_call,
            intent=reply.intent, text=reply.text,
            rate_vs_baseline_pct=_round(turn.rate_vs_baseline_pct if turn else None),
            loudness_vs_baseline_db=_round(turn.loudness_vs_baseline_db if turn else None),
            rate_factor=reply.delivery.rate_factor, gain_db=reply.delivery.gain_db,
            pitch_delta=reply.delivery.pitch_delta,
            **({"asks": list(reply.asks)} if reply.asks else {}))
        self._write(*decision.events)
        self.say(f"  trainee  {start_s:6.1f} s  {reply.text}  -> {list(decision.behaviours)}")
        self.prev_trainee_end_s = end_s
        if decision.line is None:
            return None, end_s
        if barges:
            self._write(barge_event)
            return decision.line, start_s + (barge_in_after_s or 0.0)
        return decision.line, end_s + self.timing_rng.uniform(*CALLER_GAP_S)


@dataclass(frozen=True)
class SynthVoices:
    """The demo's real speech: the caller's voice at its anger, the trainee's with its delivery."""

    caller_voice: Any
    trainee_voice: Any
    cache_dir: Path | None
    trainee_audio: Callable[[Audio], Audio] | None = None  # replaces each trainee utterance

    def caller(self, line: CallerLine, anger: float) -> Audio:
        return caller_line_audio(line, self.caller_voice, anger, self.cache_dir)

    def caller_prosody(self, anger: float) -> tuple[float, float]:
        prosody = self.caller_voice.prosody_at(anger)
        return prosody.rate_wpm, prosody.volume

    def trainee(self, turn: TraineeTurn) -> Audio:
        base = self.trainee_voice.base
        prosody = dataclasses.replace(
            base, rate_wpm=base.rate_wpm * turn.delivery.rate_factor,
            pitch=min(100.0, max(0.0, base.pitch + turn.delivery.pitch_delta)))
        audio = speak(turn.text, voice=self.trainee_voice, prosody=prosody,
                      gain_db=turn.delivery.gain_db, cache_dir=self.cache_dir)
        return self.trainee_audio(audio) if self.trainee_audio is not None else audio


def simulate_call(*, scenario_id: str, style: str, seed: int, out_dir: Path,
                  transcriber: Transcriber, cache_dir: Path | None = None,
                  max_caller_lines: int = MAX_CALLER_LINES,
                  trainee_audio: Callable[[Audio], Audio] | None = None,
                  progress: TextIO | None = None) -> DemoCall:
    """Run one simulated call into `out_dir` (must not exist or be empty).

    `trainee_audio` may replace each trainee utterance before it goes on the timeline (the tests
    use it to silence the trainee and check that the caller reacts to the audio, not the script).
    """
    from roleplay.speech.voice import load_voice

    if style not in STYLES:
        raise InputError(f"unknown trainee style {style!r}; expected one of: {', '.join(STYLES)}")
    say = (lambda msg: print(msg, file=progress, flush=True)) if progress else (lambda _m: None)
    scenario = load_scenario(scenario_id)
    lines = load_trainee_lines(scenario.language)
    voices = SynthVoices(load_voice(scenario.caller_voice), load_voice(lines.voice), cache_dir,
                         trainee_audio)
    session = CallerSession(scenario, rng=random.Random(seed), max_caller_lines=max_caller_lines)
    trainee = SimTrainee(style=style, scenario=scenario, lines=lines,
                         rng=random.Random(seed * 7919 + 2))
    # The calibration is read before the call (never passed through `trainee_audio`).
    calibration = speak(lines.calibration, voice=voices.trainee_voice,
                        prosody=voices.trainee_voice.base, gain_db=0.0, cache_dir=cache_dir)
    baseline = calibration_baseline(calibration, language=scenario.language, transcriber=transcriber)
    meta = {
        "mode": "demo", "scenario": scenario.id, "language": scenario.language, "trainee": style,
        "seed": seed, "needs": list(scenario.needs), "caller_voice": voices.caller_voice.id,
        "trainee_voice": voices.trainee_voice.id, "calibration_text": lines.calibration,
        "expected_outcomes": list(scenario.ending.expected), "anger_start": session.anger,
    }
    writer = CallWriter(out_dir, rate_hz=ANALYSIS_RATE_HZ, meta=meta)
    try:
        save_wav(Path(out_dir) / "calibration.wav", calibration)
        e = session.call_start_event(trainee=style)
        writer.event(e.type, **e.fields)
        loop = DemoLoop(session=session, trainee=trainee, voices=voices,
                        analyse=TurnListener(scenario.language, transcriber, baseline),
                        writer=writer, timing_rng=random.Random(seed * 7919 + 1), say=say)
        result = loop.run()
        writer.update_meta(anger_start=scenario.anger.start, anger_peak=session.state.peak_anger,
                           anger_end=session.anger, caller_lines=session.caller_lines,
                           trainee_turns=loop.trainee_turns)
        writer.close(outcome=result)
    except BaseException:
        writer.close(outcome="aborted", status="aborted")
        raise
    return DemoCall(
        directory=Path(out_dir), scenario=scenario.id, language=scenario.language, style=style,
        seed=seed, outcome=result, anger_start=scenario.anger.start,
        anger_peak=session.state.peak_anger, anger_end=session.anger,
        caller_lines=session.caller_lines, trainee_turns=loop.trainee_turns)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
