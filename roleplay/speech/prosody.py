"""Loudness, pauses and pitch of a stretch of speech. Pure functions over `Audio`."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
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


# librosa.pyin's settings as `pitch` uses them (its defaults, a 40 ms hop)
_PYIN_FRAME = 1024
_PYIN_HOP = 640
_PYIN_BINS_PER_SEMITONE = 10  # pyin's resolution of 0.1 semitone
_PYIN_MAX_TRANSITION_RATE = 35.92  # octaves per second
_PYIN_SWITCH_PROB = 0.01
_PYIN_NO_TROUGH_PROB = 0.01
_PYIN_BETA = (2.0, 18.0)
_PYIN_BOLTZMANN = 2.0
_PYIN_THRESHOLDS = 100


def pitch(audio: Audio) -> Pitch:
    """F0 by probabilistic YIN with a 40 ms hop: a per-turn median needs no finer grid, and pyin's
    cost scales with the number of frames."""
    _check(audio)
    a = audio.resampled(16_000)
    if a.duration_s < 0.2:
        return Pitch(None, None, 0.0)
    f0, voiced = pyin(a.samples, a.rate_hz)
    f = f0[voiced & np.isfinite(f0)]
    voiced_s = len(f) * _PYIN_HOP / a.rate_hz
    if len(f) < 3:
        return Pitch(None, None, voiced_s)
    st = 12.0 * np.log2(f / np.median(f))
    q75, q25 = np.percentile(st, [75, 25])
    return Pitch(float(np.median(f)), float(q75 - q25), voiced_s)


def pyin(samples: np.ndarray, rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """`librosa.pyin(samples, fmin=60, fmax=500, sr=rate_hz, frame_length=1024, hop_length=640)`:
    the same f0 (NaN where unvoiced) and voicing flags, computed by pyin's own steps, except that
    its Viterbi search (three quarters of its time: every state against all 734) looks only at the
    predecessors pyin's transition matrix allows, falling back to all of them in a frame where a
    disallowed one could win. tests/test_prosody_pitch.py checks the two agree on real speech."""
    import librosa
    import scipy.stats
    from librosa.core import pitch as lp

    y = np.pad(samples, _PYIN_FRAME // 2)
    frames = librosa.util.frame(y, frame_length=_PYIN_FRAME, hop_length=_PYIN_HOP)
    min_period = int(np.floor(rate_hz / PITCH_FMAX_HZ))
    max_period = min(int(np.ceil(rate_hz / PITCH_FMIN_HZ)), _PYIN_FRAME - 1)
    yin = lp._cumulative_mean_normalized_difference(frames, min_period, max_period)
    shifts = lp._parabolic_interpolation(yin)
    thresholds = np.linspace(0, 1, _PYIN_THRESHOLDS + 1)
    beta_probs = np.diff(scipy.stats.beta.cdf(thresholds, *_PYIN_BETA))
    n_bins = int(np.floor(12 * _PYIN_BINS_PER_SEMITONE * np.log2(PITCH_FMAX_HZ / PITCH_FMIN_HZ))) + 1
    observations = _pyin_observations(yin, shifts, rate_hz, thresholds, beta_probs, min_period, n_bins)
    log_trans, half_width = _pyin_transitions(n_bins, rate_hz)
    epsilon = librosa.util.tiny(observations)
    log_prob = np.log(observations + epsilon).T
    log_p_init = np.log(np.full(2 * n_bins, 1.0 / (2 * n_bins)) + epsilon)
    states = _banded_viterbi()(log_prob, log_trans, log_p_init, n_bins, half_width, float(np.log(epsilon)))
    freqs = PITCH_FMIN_HZ * 2 ** (np.arange(n_bins) / (12 * _PYIN_BINS_PER_SEMITONE))
    voiced = states < n_bins
    f0 = np.where(voiced, freqs[states % n_bins], np.nan)
    return f0, voiced


def _pyin_observations(yin: np.ndarray, shifts: np.ndarray, rate_hz: int, thresholds: np.ndarray,
                       beta_probs: np.ndarray, min_period: int, n_bins: int) -> np.ndarray:
    """pyin's observation probabilities (librosa 0.11's `__pyin_helper`, the same operations),
    with scipy's Boltzmann pmf written out: its generic argument checks took over half the time."""
    import librosa

    yin_probs = np.zeros_like(yin)
    decay = _PYIN_BOLTZMANN
    for i, frame in enumerate(yin.T):
        is_trough = librosa.util.localmin(frame)
        is_trough[0] = frame[0] < frame[1]
        (trough_index,) = np.nonzero(is_trough)
        if len(trough_index) == 0:
            continue
        heights = yin[trough_index, i]
        below = np.less.outer(heights, thresholds[1:])
        positions = np.cumsum(below, axis=0) - 1
        n_troughs = np.count_nonzero(below, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):  # columns without troughs are masked below
            # scipy.stats.boltzmann.pmf(positions, decay, n_troughs): a prior favouring short periods
            prior = (1 - np.exp(-decay)) / (1 - np.exp(-decay * n_troughs)) * np.exp(-decay * positions)
        prior[~below] = 0
        probs = prior.dot(beta_probs)
        global_min = np.argmin(heights)
        n_thresholds_below_min = np.count_nonzero(~below[global_min, :])
        probs[global_min] += _PYIN_NO_TROUGH_PROB * np.sum(beta_probs[:n_thresholds_below_min])
        yin_probs[trough_index, i] = probs
    yin_period, frame_index = np.nonzero(yin_probs)
    f0_candidates = rate_hz / (min_period + yin_period + shifts[yin_period, frame_index])
    bin_index = 12 * _PYIN_BINS_PER_SEMITONE * np.log2(f0_candidates / PITCH_FMIN_HZ)
    bin_index = np.clip(np.round(bin_index), 0, n_bins).astype(int)
    observations = np.zeros((2 * n_bins, yin.shape[1]))
    observations[bin_index, frame_index] = yin_probs[yin_period, frame_index]
    voiced_prob = np.clip(np.sum(observations[:n_bins, :], axis=0, keepdims=True), 0, 1)
    observations[n_bins:, :] = (1 - voiced_prob) / n_bins
    return observations


@functools.lru_cache(maxsize=4)
def _pyin_transitions(n_bins: int, rate_hz: int) -> tuple[np.ndarray, int]:
    """pyin's log transition matrix (as librosa.sequence.viterbi takes its log) and how many pitch
    bins a step may cross: outside that band its entries are log(0 + tiny)."""
    import librosa

    semitones_per_frame = round(_PYIN_MAX_TRANSITION_RATE * 12 * _PYIN_HOP / rate_hz)
    local = librosa.sequence.transition_local(n_bins, semitones_per_frame * _PYIN_BINS_PER_SEMITONE + 1,
                                              window="triangle", wrap=False)
    switch = librosa.sequence.transition_loop(2, 1 - _PYIN_SWITCH_PROB)
    transition = np.kron(switch, local)
    rows, cols = np.nonzero(local)
    log_trans = np.log(transition + librosa.util.tiny(transition))
    return log_trans, int(np.max(np.abs(rows - cols)))


def _viterbi_banded(log_prob: np.ndarray, log_trans: np.ndarray, log_p_init: np.ndarray, n_bins: int,
                    half_width: int, log_eps: float) -> np.ndarray:  # pragma: no cover - run compiled
    """librosa's Viterbi (the same sums, the first best predecessor), each state's predecessors
    searched in the band of pitch bins `half_width` either side, in both voicing halves."""
    n_steps, n_states = log_prob.shape
    ptr = np.zeros((n_steps, n_states), dtype=np.int64)
    value = log_prob[0] + log_p_init
    new = np.empty(n_states)
    for t in range(1, n_steps):
        ceiling = np.max(value) + log_eps  # the most a disallowed predecessor can give
        for j in range(n_states):
            b = j % n_bins
            lo, hi = max(0, b - half_width), min(n_bins, b + half_width + 1)
            best_i, best = -1, -np.inf
            for half in range(2):
                for i in range(half * n_bins + lo, half * n_bins + hi):
                    v = value[i] + log_trans[i, j]
                    if v > best:
                        best_i, best = i, v
            if ceiling >= best:  # a disallowed one could win or tie: search all, as librosa does
                best_i = int(np.argmax(value + log_trans[:, j]))
                best = value[best_i] + log_trans[best_i, j]
            ptr[t, j] = best_i
            new[j] = log_prob[t, j] + best
        value, new = new, value
    states = np.zeros(n_steps, dtype=np.int64)
    states[-1] = np.argmax(value)
    for t in range(n_steps - 2, -1, -1):
        states[t] = ptr[t + 1, states[t + 1]]
    return states


@functools.cache
def _banded_viterbi() -> Callable[..., np.ndarray]:
    """`_viterbi_banded` compiled (numba's disk cache keeps it across processes)."""
    import numba

    compiled: Callable[..., np.ndarray] = numba.njit(cache=True)(_viterbi_banded)
    return compiled


def semitones(hz: float, ref_hz: float) -> float:
    return 12.0 * math.log2(hz / ref_hz)
