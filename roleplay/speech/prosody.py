"""Loudness, pauses and pitch of a stretch of speech. Pure functions over `Audio`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roleplay.audio.clip import Audio
from roleplay.core.errors import InputError

FRAME_S = 0.032
HOP_S = 0.010
SILENCE_BELOW_PEAK_DB = 25.0  # De Jong & Wempe: silence is 25 dB under the 99th percentile
ABSOLUTE_FLOOR_DBFS = -70.0  # below this nothing counts as speech, whatever the peak
MIN_PAUSE_S = 0.25  # the guide's articulation-rate definition
CLIP_LEVEL = 0.999
PITCH_FMIN_HZ = 60.0
PITCH_FMAX_HZ = 500.0


@dataclass(frozen=True)
class Levels:
    """RMS level per frame (dBFS) and the frame times."""

    db: np.ndarray
    times_s: np.ndarray

    def silence_threshold_db(self) -> float:
        if len(self.db) == 0:
            return ABSOLUTE_FLOOR_DBFS
        return max(float(np.percentile(self.db, 99)) - SILENCE_BELOW_PEAK_DB, ABSOLUTE_FLOOR_DBFS)


@dataclass(frozen=True)
class Pitch:
    median_hz: float | None
    spread_st: float | None  # interquartile range in semitones
    voiced_s: float


def _check(audio: Audio) -> None:
    if not isinstance(audio, Audio):
        raise InputError(f"expected Audio, got {type(audio).__name__}")


def frame_levels(audio: Audio, *, frame_s: float = FRAME_S, hop_s: float = HOP_S) -> Levels:
    _check(audio)
    frame = max(1, int(round(frame_s * audio.rate_hz)))
    hop = max(1, int(round(hop_s * audio.rate_hz)))
    x = audio.samples.astype(np.float64)
    if len(x) < frame:
        return Levels(np.zeros(0), np.zeros(0))
    # Cumulative sums give every frame's energy without building a frame matrix.
    c = np.concatenate(([0.0], np.cumsum(x * x)))
    starts = np.arange(0, len(x) - frame + 1, hop)
    energy = (c[starts + frame] - c[starts]) / frame
    db = 10.0 * np.log10(np.maximum(energy, 1e-12))
    return Levels(db, (starts + frame / 2) / audio.rate_hz)


def speech_frames(levels: Levels, *, threshold_db: float | None = None) -> np.ndarray:
    t = levels.silence_threshold_db() if threshold_db is None else threshold_db
    return levels.db > t


def loudness_dbfs(audio: Audio, *, threshold_db: float | None = None) -> float | None:
    """Median RMS level over speech frames only (silence would drag a plain mean down)."""
    levels = frame_levels(audio)
    mask = speech_frames(levels, threshold_db=threshold_db)
    if not mask.any():
        return None
    return float(np.median(levels.db[mask]))


def pauses_s(audio: Audio, *, min_pause_s: float = MIN_PAUSE_S, threshold_db: float | None = None
             ) -> tuple[tuple[float, float], ...]:
    """Silent stretches of at least `min_pause_s` between the first and last speech frame."""
    levels = frame_levels(audio)
    mask = speech_frames(levels, threshold_db=threshold_db)
    if not mask.any():
        return ()
    idx = np.flatnonzero(mask)
    out = []
    gaps = np.flatnonzero(np.diff(idx) > 1)
    for g in gaps:
        a = levels.times_s[idx[g]] + HOP_S / 2
        b = levels.times_s[idx[g + 1]] - HOP_S / 2
        if b - a >= min_pause_s:
            out.append((float(a), float(b)))
    return tuple(out)


def speaking_extent_s(audio: Audio, *, threshold_db: float | None = None) -> tuple[float, float] | None:
    levels = frame_levels(audio)
    mask = speech_frames(levels, threshold_db=threshold_db)
    if not mask.any():
        return None
    idx = np.flatnonzero(mask)
    return float(levels.times_s[idx[0]] - FRAME_S / 2), float(levels.times_s[idx[-1]] + FRAME_S / 2)


def clipped_fraction(audio: Audio) -> float:
    if len(audio.samples) == 0:
        return 0.0
    return float(np.mean(np.abs(audio.samples) >= CLIP_LEVEL))


def pitch(audio: Audio) -> Pitch:
    """F0 by probabilistic YIN with a 40 ms hop: a per-turn median needs no finer grid, and pyin's
    cost scales with the number of frames."""
    _check(audio)
    import librosa

    a = audio.resampled(16_000)
    if a.duration_s < 0.2:
        return Pitch(None, None, 0.0)
    hop = 640
    f0, voiced, _ = librosa.pyin(
        a.samples, fmin=PITCH_FMIN_HZ, fmax=PITCH_FMAX_HZ, sr=a.rate_hz,
        frame_length=1024, hop_length=hop, center=True,
    )
    f = f0[voiced & np.isfinite(f0)]
    voiced_s = len(f) * hop / a.rate_hz
    if len(f) < 3:
        return Pitch(None, None, voiced_s)
    st = 12.0 * np.log2(f / np.median(f))
    q75, q25 = np.percentile(st, [75, 25])
    return Pitch(float(np.median(f)), float(q75 - q25), voiced_s)


def semitones(hz: float, ref_hz: float) -> float:
    return 12.0 * math.log2(hz / ref_hz)
