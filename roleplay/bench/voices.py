"""The caller voices measured: `roleplay bench voices`.

How anger sounds (rate via duration, pitch median and spread, level, per anger; a shouted line
against the same line said), and, per engine, how well Whisper base hears the scenarios' caller
lines (word error rate) and what a line costs to synthesise (real-time factor, wall and CPU).
The figures back the choice of default Dutch caller voice in docs/scenarios-and-voices.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roleplay.audio.clip import Audio

ANALYSIS_RATE_HZ = 16_000
SPEECH_BELOW_PEAK_DB = 30.0  # 20 ms frames within this of the loudest are speech
PITCH_FMIN_HZ = 60.0
PITCH_FMAX_HZ = 500.0


@dataclass(frozen=True)
class VoiceMeasure:
    duration_s: float  # the clip as the engine speaks it (edges cut by the synthesiser)
    f0_median_hz: float
    f0_spread_st: float  # 10th to 90th percentile of voiced F0, in semitones
    level_db: float  # median RMS of the speech frames, dBFS


def measure_voice(audio: Audio) -> VoiceMeasure:
    """Rate, pitch and level of one synthesised line; pyin, since yin's octave errors on high
    voices made the spread jump (measured on nl-woman-young)."""
    import librosa

    clip = audio.resampled(ANALYSIS_RATE_HZ)
    x = clip.samples
    f0, voiced, _ = librosa.pyin(x, fmin=PITCH_FMIN_HZ, fmax=PITCH_FMAX_HZ, sr=ANALYSIS_RATE_HZ,
                                 frame_length=1024)
    f0 = f0[voiced & np.isfinite(f0)]
    if len(f0) == 0:
        return VoiceMeasure(audio.duration_s, math.nan, math.nan, level_db(audio))
    semitones = 12 * np.log2(f0 / np.median(f0))
    spread = float(np.percentile(semitones, 90) - np.percentile(semitones, 10))
    return VoiceMeasure(audio.duration_s, float(np.median(f0)), spread, level_db(audio))


def level_db(audio: Audio) -> float:
    frame = max(1, audio.rate_hz // 50)
    n = len(audio.samples) // frame
    rms = np.sqrt(np.mean(audio.samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    speech = rms[rms > rms.max() * 10 ** (-SPEECH_BELOW_PEAK_DB / 20)]
    return float(20 * np.log10(np.median(speech)))


def semitones_apart(a_hz: float, b_hz: float) -> float:
    return abs(12 * math.log2(a_hz / b_hz))
