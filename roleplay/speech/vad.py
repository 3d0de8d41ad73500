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


@dataclass(frozen=True)
class QuietSettings:
    """A second look for listener tokens ("mm-hmm", "oh yeah") that Silero scores low because they
    are quiet: 10 to 20 dB under the speaker's own speech, which puts a close-talk "mm" at -40 to
    -50 dBFS. Such a stretch, if near the track's own speech level, is lifted and scored again."""

    below_speech_db: float = 20.0  # its loudest frame within this of the track's speech level
    above_floor_db: float = 15.0  # and this far over the track's noise floor
    min_s: float = 0.10
    max_s: float = 1.5  # longer stretches are not listener tokens
    bridge_s: float = 0.10  # dips shorter than this stay inside one candidate
    context_s: float = 0.2  # audio either side given to the model with the candidate
    # the candidate's loudest frame is lifted to this: Silero scores by absolute level, and quiet
    # tracks as a whole score low (a -50 dBFS token scores 0.13 as it is, 0.87 at -20 dBFS)
    lift_to_dbfs: float = -20.0
    min_speech_probability: float = 0.5  # Silero's onset threshold, on the lifted audio


def _frame_dbfs(samples: np.ndarray, n_frames: int) -> np.ndarray:
    x = np.pad(samples.astype(np.float64), (0, max(0, n_frames * FRAME_SAMPLES - len(samples))))
    energy = np.mean(x[: n_frames * FRAME_SAMPLES].reshape(n_frames, FRAME_SAMPLES) ** 2, axis=1)
    return np.asarray(10.0 * np.log10(np.maximum(energy, 1e-12)))


def _runs(mask: np.ndarray, bridge: int) -> list[tuple[int, int]]:
    """(first, end) frame index runs of True, joined over gaps up to `bridge` frames."""
    runs: list[list[int]] = []
    for i in np.flatnonzero(mask):
        if runs and i - runs[-1][1] <= bridge:
            runs[-1][1] = int(i) + 1
        else:
            runs.append([int(i), int(i) + 1])
    return [(a, b) for a, b in runs]


def quiet_segments(audio: Audio, loud: tuple[SpeechSegment, ...], *, probs: np.ndarray | None = None,
                   settings: QuietSettings = QuietSettings()) -> tuple[SpeechSegment, ...]:
    """Short quiet speech outside the `loud` segments (the ordinary VAD's): stretches whose level
    is near the track's own speech level and well over its noise floor, lifted to a fixed level and
    scored again by Silero. Candidates only: the analysis decides whether one is feedback, the soft
    start of a turn, or nothing. Without confident speech on the track there is no own level to
    relate to, and nothing is found."""
    if audio.rate_hz != ANALYSIS_RATE_HZ:
        audio = audio.resampled(ANALYSIS_RATE_HZ)
    probs = speech_probabilities(audio) if probs is None else probs
    if not loud or len(probs) == 0:
        return ()
    db = _frame_dbfs(audio.samples, len(probs))
    times = np.arange(len(probs)) * FRAME_S
    inside = np.zeros(len(probs), dtype=bool)
    for s in loud:
        inside |= (times + FRAME_S > s.start_s) & (times < s.end_s)
    confident = inside & (probs >= 0.5)
    if not confident.any():
        return ()
    speech_db = float(np.median(db[confident]))
    floor_db = float(np.percentile(db, 10))
    level_min = max(floor_db + settings.above_floor_db, speech_db - settings.below_speech_db - 10.0)
    found = []
    for a, b in _runs(~inside & (db >= level_min), int(round(settings.bridge_s / FRAME_S))):
        start_s, end_s = a * FRAME_S, b * FRAME_S
        peak_db = float(db[a:b].max())
        if not settings.min_s <= end_s - start_s <= settings.max_s or peak_db < speech_db - settings.below_speech_db:
            continue
        lo = max(0.0, start_s - settings.context_s)
        clip = audio.slice_s(lo, min(audio.duration_s, end_s + settings.context_s))
        lifted = clip.gained(settings.lift_to_dbfs - peak_db)
        p = speech_probabilities(lifted)
        sub = segments_from_probabilities(p, duration_s=lifted.duration_s, settings=VadSettings(
            onset_threshold=settings.min_speech_probability, min_speech_s=settings.min_s, pad_s=0.0))
        found += [SpeechSegment(round(max(start_s, lo + s.start_s), 3), round(min(end_s, lo + s.end_s), 3))
                  for s in sub if lo + s.end_s > start_s and lo + s.start_s < end_s]
    return tuple(s for s in found if s.duration_s >= settings.min_s)
