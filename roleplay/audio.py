"""Audio as data: float32 mono samples that carry their sample rate.

Conversion to int16 bytes happens only at the edges (files, devices).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roleplay.errors import InputError

ANALYSIS_RATE_HZ = 16_000  # what Whisper and Silero VAD expect


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, nominally in [-1, 1]
    rate_hz: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 1:
            raise ValueError(f"Audio needs mono samples, got shape {self.samples.shape}")
        if self.rate_hz <= 0:
            raise ValueError(f"Audio needs a positive sample rate, got {self.rate_hz}")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate_hz

    def slice_s(self, start_s: float, end_s: float) -> Audio:
        a = max(0, int(round(start_s * self.rate_hz)))
        b = min(len(self.samples), int(round(end_s * self.rate_hz)))
        return Audio(self.samples[a:max(a, b)], self.rate_hz)

    def resampled(self, rate_hz: int) -> Audio:
        if rate_hz == self.rate_hz:
            return self
        import soxr  # a librosa dependency; high-quality and fast

        out = soxr.resample(self.samples, self.rate_hz, rate_hz, quality="HQ")
        return Audio(np.ascontiguousarray(out, dtype=np.float32), rate_hz)

    def gained(self, gain_db: float) -> Audio:
        return Audio((self.samples * db_to_amplitude(gain_db)).astype(np.float32), self.rate_hz)


def db_to_amplitude(gain_db: float) -> float:
    return 10.0 ** (gain_db / 20.0)


def amplitude_to_db(amplitude: float, floor_db: float = -120.0) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else floor_db


def silence(duration_s: float, rate_hz: int) -> Audio:
    return Audio(np.zeros(int(round(duration_s * rate_hz)), dtype=np.float32), rate_hz)


def to_int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


def _read_multichannel(path: Path) -> tuple[np.ndarray, int]:
    """Samples as float32 (frames, channels) and the rate; any format soundfile or PyAV reads."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an audio file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file, expected audio (wav, flac, mp3, ogg)")
    import soundfile

    with _quiet_c_stderr():  # mpg123 inside libsndfile prints "Note: ..." lines on bad mp3 data
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception:  # libsndfile lacks some formats (m4a, some mp3): try FFmpeg via PyAV
            data, rate = _read_with_av(path)
    if data.shape[0] == 0:
        raise InputError(f"{path}: contains no audio samples")
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path}: contains NaN or infinite samples, expected finite audio")
    return data, int(rate)


@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence what C libraries write to file descriptor 2 (Python's own errors are unaffected)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _read_with_av(path: Path) -> tuple[np.ndarray, int]:
    try:
        import av

        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise InputError(f"{path}: has no audio stream")
            rate = stream.rate
            chunks = []
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if arr.dtype.kind in "iu":
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
                if frame.format.is_planar:
                    arr = arr.T  # (samples, channels)
                else:
                    arr = arr.reshape(-1, len(frame.layout.channels))
                chunks.append(arr.astype(np.float32))
    except InputError:
        raise
    except Exception:
        raise InputError(f"{path}: not a readable audio file; expected wav, flac, mp3 or ogg") from None
    if not chunks:
        raise InputError(f"{path}: contains no audio samples")
    return np.concatenate(chunks, axis=0), int(rate)


def load_audio(path: str | Path, *, channel: int | None = None) -> Audio:
    """Load one channel (0-based) or the mono mix-down of a file, at its own rate."""
    path = Path(path)
    data, rate = _read_multichannel(path)
    n_channels = data.shape[1]
    if channel is None:
        samples = data.mean(axis=1) if n_channels > 1 else data[:, 0]
    else:
        if not 0 <= channel < n_channels:
            raise InputError(
                f"{path}: has no channel {channel}; it has {n_channels} "
                f"(channels are numbered 0 to {n_channels - 1})"
            )
        samples = data[:, channel]
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), rate)


def channel_count(path: str | Path) -> int:
    return _read_multichannel(Path(path))[0].shape[1]


def save_wav(path: str | Path, audio: Audio) -> None:
    import soundfile

    soundfile.write(str(path), audio.samples, audio.rate_hz, subtype="PCM_16")
