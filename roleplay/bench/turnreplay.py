"""The bench's scripted trainee turns replayed through the live end-of-turn logic, on a clock of
their own: no devices and no wall time, so the figures do not depend on the machine's load.

Each turn (espeak-ng, with its pauses) goes frame by frame through the streaming VAD and the
turn-taking state machine, with the pause decision of the live drill (`end_of_turn_wait` on the
pitch at once and on the words once recognised). Recognition starts `start_after_s` into a pause,
as live, on the audio there is by then, and runs the live analysis of the turn (the real
recognizer and measures, with the rule's settings); its words are taken to arrive R later, where R
is the CPU seconds that analysis took here (the one figure that depends on the machine; CPU time
much less than wall time on a loaded one), or a fixed `recognition_s`. The caller's reply waits
for the end of the turn and for the words; then input, synthesis and output (OVERHEAD_S, the live
bench's medians). A turn that ends before the script's last word is a premature start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from roleplay.core.constants import RATE_HZ
from roleplay.session.live import (
    RECOGNITION_BEFORE,
    TURN_PAD_S,
    LiveRecognition,
)
from roleplay.session.turntaking import (
    PITCH_WINDOW_S,
    WAITS_BEFORE,
    EndCues,
    EndWait,
    State,
    TurnSettings,
    TurnTaker,
    end_of_turn_wait,
    final_pitch_st,
)

# The end-of-turn rules compared: (the pause waits, how the turn is recognised)
RULES: dict[str, tuple[TurnSettings, LiveRecognition]] = {
    "fixed": (TurnSettings(adaptive=False), RECOGNITION_BEFORE),  # 0.7 s of silence (before issue 12)
    "cues": (WAITS_BEFORE, RECOGNITION_BEFORE),  # words and pitch, as until 2026-11-30 (before)
    # recognised sooner and leaner, a sentence with falling pitch still ending at 0.3 s: the
    # trade-off the default does not take (a pause between two sentences answered)
    "quick": (WAITS_BEFORE, LiveRecognition()),
    "fast": (TurnSettings(), LiveRecognition()),  # recognised sooner and leaner: the default (after)
}
OVERHEAD_S = 0.15  # input 0.06 + synthesis 0.02 + output 0.064 s (live medians, benchmarks.md)
TAIL_S = 2.0  # silence after the turn


@dataclass(frozen=True)
class ReplayEnd:
    """How one scripted turn ended under one rule."""

    text: str
    rule: str
    recognition_s: float  # R of the pause that ended it: its start to the words
    delay_s: float  # end of speech -> the caller's first sound
    premature: bool  # ended in a pause the script goes on after
    reason: str  # the decision of the pause that ended it
    inner: tuple[str, ...] = ()  # the last decision in each earlier pause (0.3 s or longer)
    heard: str = ""  # the words the caller got


Recognise = Callable[[tuple[float, float], float], tuple[str, float]]  # (span, audio end) -> (words, R)


def _probabilities(samples: np.ndarray) -> np.ndarray:
    from roleplay.speech.streamvad import StreamingVad

    vad = StreamingVad()
    n = vad.frame_samples
    return np.array([vad.frame(samples[i : i + n]) for i in range(0, len(samples) - n + 1, n)])


def replay_turn(samples: np.ndarray, probs: np.ndarray, *, settings: TurnSettings, language: str,
                recognise: Recognise, start_after_s: float
                ) -> tuple[float, float, EndWait | None, tuple[float, float, str], tuple[str, ...]]:
    """The first end of the turn: (end of speech, decided, the pause's decision, (recognition
    started, words ready, words) of that pause, the last decisions in the pauses before it)."""
    taker = TurnTaker(settings)
    taker.caller_end_s = None
    ready: dict[tuple[float, float], tuple[float, float, str]] = {}
    pitch: dict[float, float | None] = {}
    decided: dict[float, tuple[float, str]] = {}  # pause (speech end) -> (its length so far, reason)
    f = settings.frame_s
    for i, p in enumerate(probs):
        t = i * f
        start, end = taker.turn_start_s, taker.last_speech_end_s
        if (taker.state is State.TRAINEE and not taker.trainee_speaking and start is not None
                and end is not None and end > start):
            span = (start, end)
            if t >= end + start_after_s - 1e-9 and span not in ready:
                heard, r_s = recognise(span, t)
                ready[span] = (t, t + r_s, heard)
            if end not in pitch:
                a = int(max(start, end - PITCH_WINDOW_S) * RATE_HZ)
                pitch[end] = final_pitch_st(samples[a : int(end * RATE_HZ)], RATE_HZ)
            text = ready[span][2] if span in ready and t >= ready[span][1] else None
            taker.end_wait = end_of_turn_wait(EndCues(text, pitch[end], language), settings)
            decided[end] = (t - end, taker.end_wait.reason)
        for ev in taker.step(t, float(p), caller_playing=False):
            if ev.kind == "end-of-turn":
                assert ev.start_s is not None and ev.end_s is not None
                span = (ev.start_s, ev.end_s)
                if span not in ready:  # ended before recognition started: it starts now
                    heard, r_s = recognise(span, ev.t_s)
                    ready[span] = (ev.t_s, ev.t_s + r_s, heard)
                inner = tuple(r for e, (n, r) in sorted(decided.items()) if e < ev.end_s and n >= 0.3)
                return ev.end_s, ev.t_s, taker.end_wait, ready[span], inner
    raise AssertionError("the turn never ended")  # TAIL_S of silence ends any turn


def _recogniser(samples: np.ndarray, transcriber, live: LiveRecognition, language: str,
                recognition_s: float | None) -> Recognise:
    """The live analysis of a span of `samples` as the drill runs it (`TurnListener`'s settings),
    on the audio up to `until_s`; R is its CPU seconds unless `recognition_s` is given."""
    from roleplay.analysis.pipeline import TimingSettings, analyse_turn
    from roleplay.audio.clip import Audio
    from roleplay.session.live import _live_transcriber

    asr = _live_transcriber(transcriber, live.retry_beam_size)
    timing = TimingSettings(measure_pitch=live.measure_pitch)

    def recognise(span: tuple[float, float], until_s: float) -> tuple[str, float]:
        a = max(0.0, span[0] - TURN_PAD_S)
        b = min(span[1] + TURN_PAD_S, until_s)
        began = time.process_time()
        turn = analyse_turn(audio=Audio(samples[int(a * RATE_HZ) : int(b * RATE_HZ)], RATE_HZ),
                            speaker="trainee", language=language, transcriber=asr,
                            settings=timing)
        cpu_s = time.process_time() - began
        return (turn.text if turn is not None else ""), (
            cpu_s if recognition_s is None else recognition_s)

    return recognise


def replay(texts: list[str], transcriber, *, speak: Callable[[str], np.ndarray],
           language: str = "nl", recognition_s: float | None = None) -> list[ReplayEnd]:
    """Every turn (`speak` makes its 16 kHz samples) under every rule; R measured (CPU seconds)
    unless `recognition_s` is given. `transcriber`: the recognizer as loaded (each rule makes
    its live one)."""
    out = []
    warm = speak(texts[0])  # the first analysis pays one-off costs (pyin's compilation, caches)
    for _settings, live in RULES.values():
        _recogniser(warm, transcriber, live, language, None)((0.0, len(warm) / RATE_HZ), 99.0)
    for text in texts:
        clip = speak(text)
        samples = np.concatenate([np.zeros(int(0.3 * RATE_HZ), np.float32), clip,
                                  np.zeros(int(TAIL_S * RATE_HZ), np.float32)])
        last_s = 0.3 + len(clip) / RATE_HZ
        probs = _probabilities(samples)
        for rule, (settings, live) in RULES.items():
            recognise = _recogniser(samples, transcriber, live, language, recognition_s)
            end_s, decided_s, wait, (began_s, ready_s, heard), inner = replay_turn(
                samples, probs, settings=settings, language=language, recognise=recognise,
                start_after_s=live.start_after_s)
            out.append(ReplayEnd(text, rule, round(ready_s - began_s, 3),
                                 round(max(decided_s, ready_s) - end_s + OVERHEAD_S, 3),
                                 end_s < last_s - 0.1, wait.reason if wait else "-", inner, heard))
    return out


def print_replay(ends: list[ReplayEnd]) -> None:
    print("replay of the scripted turns (no devices, no wall clock; the words ready R after "
          "recognition starts, R = the CPU seconds of the turn's live analysis here; "
          f"+ {OVERHEAD_S:g} s input, synthesis, output):")
    print("rule   starts  turns  median  p95     premature  R median  R max")
    for rule, (_settings, live) in RULES.items():
        sel = [e for e in ends if e.rule == rule]
        d = np.array([e.delay_s for e in sel])
        r = np.array([e.recognition_s for e in sel])
        print(f"{rule:<6} {live.start_after_s:.3f} s {len(sel):>5}  {np.median(d):.2f} s  "
              f"{np.percentile(d, 95):.2f} s  {sum(e.premature for e in sel):>5}     "
              f"{np.median(r):.2f} s    {r.max():.2f} s")
    for e in ends:
        if e.rule in ("cues", "fast"):
            inner = "".join(f"{r}; " for r in e.inner)
            print(f"  {e.rule}: {e.delay_s:.2f} s (R {e.recognition_s:.2f} s)"
                  f"{' PREMATURE' if e.premature else ''}  ({inner}end: {e.reason})  {e.text}")
