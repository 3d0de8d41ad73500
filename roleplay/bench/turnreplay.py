"""The bench's scripted trainee turns replayed through the live end-of-turn logic, on a clock of
their own: no devices and no wall time, so the figures do not depend on the machine's load.

Each turn (espeak-ng, with its pauses) goes frame by frame through the streaming VAD and the
turn-taking state machine, with the pause decision of the live drill (`end_of_turn_wait` on the
pitch at once and on the words once recognised). Recognition starts TURN_PAD_S into a pause, as
live, and its words (the real recognizer's, on the real audio) are taken to arrive `recognition_s`
later: the one figure that depends on the machine, so it is varied. The caller's reply waits for
the end of the turn and for the words; then input, synthesis and output (OVERHEAD_S, the live
bench's medians). A turn that ends before the script's last word is a premature start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from roleplay.core.constants import RATE_HZ
from roleplay.session.live import PITCH_WINDOW_S, TURN_PAD_S
from roleplay.session.turntaking import (
    EndCues,
    EndWait,
    State,
    TurnSettings,
    TurnTaker,
    end_of_turn_wait,
    final_pitch_st,
)

RULES = ("fixed", "cues")  # the end-of-turn rules compared: before (0.7 s), after (words and pitch)
OVERHEAD_S = 0.15  # input 0.06 + synthesis 0.02 + output 0.064 s (live medians, benchmarks.md)
RECOGNITION_S = (0.3, 0.5, 0.8)  # from its start in the pause until the words are there
TAIL_S = 2.0  # silence after the turn


@dataclass(frozen=True)
class ReplayEnd:
    """How one scripted turn ended under one rule."""

    text: str
    rule: str
    recognition_s: float
    delay_s: float  # end of speech -> the caller's first sound
    premature: bool  # ended in a pause the script goes on after
    reason: str  # the decision of the pause that ended it
    inner: tuple[str, ...] = ()  # the last decision in each earlier pause (0.3 s or longer)


def _probabilities(samples: np.ndarray) -> np.ndarray:
    from roleplay.speech.streamvad import StreamingVad

    vad = StreamingVad()
    n = vad.frame_samples
    return np.array([vad.frame(samples[i : i + n]) for i in range(0, len(samples) - n + 1, n)])


def replay_turn(samples: np.ndarray, probs: np.ndarray, *, settings: TurnSettings, language: str,
                words: Callable[[tuple[float, float]], str], recognition_s: float
                ) -> tuple[float, float, EndWait | None, float, tuple[str, ...]]:
    """The first end of the turn: (end of speech, decided, the pause's decision, words ready, the
    last decisions in the pauses before it)."""
    taker = TurnTaker(settings)
    taker.caller_end_s = None
    ready: dict[tuple[float, float], float] = {}
    pitch: dict[float, float | None] = {}
    decided: dict[float, tuple[float, str]] = {}  # pause (speech end) -> (its length so far, reason)
    f = settings.frame_s
    for i, p in enumerate(probs):
        t = i * f
        start, end = taker.turn_start_s, taker.last_speech_end_s
        if (taker.state is State.TRAINEE and not taker.trainee_speaking and start is not None
                and end is not None and end > start):
            span = (start, end)
            if t >= end + TURN_PAD_S and span not in ready:
                ready[span] = t + recognition_s
            if end not in pitch:
                a = int(max(start, end - PITCH_WINDOW_S) * RATE_HZ)
                pitch[end] = final_pitch_st(samples[a : int(end * RATE_HZ)], RATE_HZ)
            text = words(span) if span in ready and t >= ready[span] else None
            taker.end_wait = end_of_turn_wait(EndCues(text, pitch[end], language), settings)
            decided[end] = (t - end, taker.end_wait.reason)
        for ev in taker.step(t, float(p), caller_playing=False):
            if ev.kind == "end-of-turn":
                assert ev.start_s is not None and ev.end_s is not None
                done = ready.get((ev.start_s, ev.end_s), ev.t_s + recognition_s)
                inner = tuple(r for e, (n, r) in sorted(decided.items()) if e < ev.end_s and n >= 0.3)
                return ev.end_s, ev.t_s, taker.end_wait, done, inner
    raise AssertionError("the turn never ended")  # TAIL_S of silence ends any turn


def replay(texts: list[str], transcriber, *, speak: Callable[[str], np.ndarray],
           language: str = "nl") -> list[ReplayEnd]:
    """Every turn (`speak` makes its 16 kHz samples) under both rules and every RECOGNITION_S."""
    from roleplay.audio.clip import Audio
    from roleplay.speech.vad import speech_segments

    out = []
    for text in texts:
        clip = speak(text)
        samples = np.concatenate([np.zeros(int(0.3 * RATE_HZ), np.float32), clip,
                                  np.zeros(int(TAIL_S * RATE_HZ), np.float32)])
        last_s = 0.3 + len(clip) / RATE_HZ
        probs = _probabilities(samples)
        heard: dict[tuple[float, float], str] = {}

        def words(span: tuple[float, float], samples=samples, heard=heard) -> str:
            if span not in heard:
                a = max(0.0, span[0] - TURN_PAD_S)
                audio = Audio(samples[int(a * RATE_HZ) : int((span[1] + TURN_PAD_S) * RATE_HZ)], RATE_HZ)
                found = transcriber.transcribe(audio, speech_segments(audio), language=language)
                heard[span] = " ".join(w.text for w in found)
            return heard[span]

        for rule in RULES:
            settings = replace(TurnSettings(), adaptive=rule == "cues")
            for r_s in RECOGNITION_S:
                end_s, decided_s, wait, ready_s, inner = replay_turn(
                    samples, probs, settings=settings, language=language, words=words,
                    recognition_s=r_s)
                out.append(ReplayEnd(text, rule, r_s, round(max(decided_s, ready_s) - end_s + OVERHEAD_S, 3),
                                     end_s < last_s - 0.1, wait.reason if wait else "-", inner))
    return out


def print_replay(ends: list[ReplayEnd]) -> None:
    print("replay of the scripted turns (no devices, no wall clock; words ready R s after "
          f"recognition starts {TURN_PAD_S:g} s into a pause; + {OVERHEAD_S:g} s input, synthesis, output):")
    print("R       rule   turns  median  p95     premature")
    for r_s in RECOGNITION_S:
        for rule in RULES:
            sel = [e for e in ends if e.rule == rule and e.recognition_s == r_s]
            d = np.array([e.delay_s for e in sel])
            print(f"{r_s:.1f} s   {rule:<6} {len(sel):>5}  {np.median(d):.2f} s  "
                  f"{np.percentile(d, 95):.2f} s  {sum(e.premature for e in sel):>3}")
    middle = RECOGNITION_S[len(RECOGNITION_S) // 2]
    for e in ends:
        if e.rule == "cues" and e.recognition_s == middle:
            inner = "".join(f"{r}; " for r in e.inner)
            print(f"  R {middle:g} s, cues: {e.delay_s:.2f} s{' PREMATURE' if e.premature else ''}"
                  f"  ({inner}end: {e.reason})  {e.text}")
