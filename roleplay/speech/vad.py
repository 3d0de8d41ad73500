"""Voice activity: where someone speaks, from the Silero VAD model that faster-whisper ships.

We call the ONNX model directly (one probability per 32 ms frame) and do our own hysteresis, so
the thresholds are ours, in seconds, and the same frame probabilities serve offline analysis and
live turn-taking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio

FRAME_SAMPLES = 512  # Silero's window at 16 kHz
FRAME_S = FRAME_SAMPLES / ANALYSIS_RATE_HZ


@dataclass(frozen=True)
class VadSettings:
    onset_threshold: float = 0.5
    offset_threshold: float = 0.35
    min_speech_s: float = 0.12  # shorter blips are clicks, not speech
    min_silence_s: float = 0.30  # shorter gaps stay inside one segment
    pad_s: float = 0.03


@dataclass(frozen=True)
class SpeechSegment:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def speech_probabilities(audio: Audio) -> np.ndarray:
    """Speech probability per 32 ms frame of 16 kHz audio."""
    from faster_whisper.vad import get_vad_model

    if audio.rate_hz != ANALYSIS_RATE_HZ:
        audio = audio.resampled(ANALYSIS_RATE_HZ)
    samples = audio.samples
    if len(samples) == 0:
        return np.zeros(0, dtype=np.float32)
    padded = np.pad(samples, (0, (-len(samples)) % FRAME_SAMPLES))
    return np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)


def segments_from_probabilities(
    probs: np.ndarray, *, duration_s: float, settings: VadSettings = VadSettings()
) -> tuple[SpeechSegment, ...]:
    """Hysteresis: speech starts above the onset threshold, ends below the offset threshold."""
    raw: list[list[float]] = []
    speaking = False
    for i, p in enumerate(probs):
        t = i * FRAME_S
        if not speaking and p >= settings.onset_threshold:
            speaking = True
            raw.append([t, t + FRAME_S])
        elif speaking:
            if p < settings.offset_threshold:
                speaking = False
            else:
                raw[-1][1] = t + FRAME_S
    merged: list[list[float]] = []
    for seg in raw:
        if merged and seg[0] - merged[-1][1] < settings.min_silence_s:
            merged[-1][1] = seg[1]
        else:
            merged.append(seg)
    return tuple(
        SpeechSegment(max(0.0, a - settings.pad_s), min(duration_s, b + settings.pad_s))
        for a, b in merged
        if b - a >= settings.min_speech_s
    )


def speech_segments(audio: Audio, *, settings: VadSettings = VadSettings()) -> tuple[SpeechSegment, ...]:
    return segments_from_probabilities(
        speech_probabilities(audio), duration_s=audio.duration_s, settings=settings
    )
