"""Audio as data: float32 mono samples that carry their sample rate.

Conversion to int16 bytes happens only at the edges (files, devices).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import InputError

ANALYSIS_RATE_HZ = RATE_HZ  # what Whisper and Silero VAD expect
# Longer files are refused from their header, before they are read: no practice call lasts that
# long, and two hours of 48 kHz stereo is already 2.8 GB of float32.
MAX_DURATION_S = 2 * 3600.0
MAX_FILE_CHANNELS = 32  # more is not a call recording (and multiplies the memory)


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
    return float(10.0 ** (gain_db / 20.0))


def amplitude_to_db(amplitude: float, floor_db: float = -120.0) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else floor_db


def silence(duration_s: float, rate_hz: int) -> Audio:
    return Audio(np.zeros(int(round(duration_s * rate_hz)), dtype=np.float32), rate_hz)


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.asarray((np.clip(samples, -1.0, 1.0) * 32767.0).round(), dtype="<i2")


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
            info = soundfile.info(str(path))
        except Exception:  # noqa: BLE001 - unreadable by libsndfile: the fallback below decides
            info = None
        if info is not None:
            check_header(path, rate_hz=info.samplerate, channels=info.channels, duration_s=info.duration)
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
            note = None
        except Exception:  # noqa: BLE001 - libsndfile lacks some formats (m4a, some mp3): try FFmpeg via PyAV
            data, rate, note = _read_with_av(path)
    if note:  # printed here: inside _quiet_c_stderr it would be lost
        print(f"roleplay: note: {note}", file=sys.stderr)
    if data.shape[0] == 0:
        raise InputError(f"{path}: contains no audio samples")
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path}: contains NaN or infinite samples, expected finite audio")
    return data, int(rate)


def check_header(path: Path, *, rate_hz: float, channels: int, duration_s: float | None) -> None:
    """Refuse what the header already shows to be unusable, before any sample is read."""
    if not rate_hz or rate_hz <= 0:
        raise InputError(f"{path}: sample rate {rate_hz} Hz in the header; expected a positive rate")
    if channels > MAX_FILE_CHANNELS:
        raise InputError(f"{path}: {channels} channels; expected at most {MAX_FILE_CHANNELS} (a call recording)")
    if duration_s is not None and duration_s > MAX_DURATION_S:
        raise InputError(f"{path}: {duration_s / 60:.0f} minutes long; expected at most "
                         f"{MAX_DURATION_S / 60:.0f} minutes (cut it into parts first)")


@contextlib.contextmanager
def _quiet_c_stderr() -> Iterator[None]:
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


def _read_with_av(path: Path) -> tuple[np.ndarray, int, str | None]:
    """Samples, rate, and a note when the file broke off part-way."""
    note = None
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is None:
                raise InputError(f"{path}: has no audio stream (it reads as {container.format.name}); "
                                 "expected wav, flac, mp3 or ogg audio")
            rate = stream.rate
            if not rate:  # FFmpeg guessed a container from the name but found no real audio in it
                raise InputError(f"{path}: not a readable audio file; expected wav, flac, mp3 or ogg")
            duration_s = container.duration / 1e6 if container.duration else None  # AV_TIME_BASE units
            check_header(path, rate_hz=rate or 0, channels=stream.channels, duration_s=duration_s)
            chunks: list[np.ndarray] = []
            try:
                for frame in container.decode(stream):
                    arr = frame.to_ndarray()
                    if arr.dtype.kind in "iu":
                        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype.str).max)
                    # to (samples, channels)
                    arr = arr.T if frame.format.is_planar else arr.reshape(-1, len(frame.layout.channels))
                    chunks.append(arr.astype(np.float32))
            except Exception:
                if not chunks:
                    raise
                # A file cut off or damaged part-way (a crashed recorder): keep what decoded.
                got_s = sum(len(c) for c in chunks) / rate
                note = f"{path}: damaged or cut off after {got_s:.1f} s; using what could be read"
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - whatever PyAV/FFmpeg raise, the file is unreadable
        raise InputError(f"{path}: not a readable audio file; expected wav, flac, mp3 or ogg") from None
    if not chunks:
        raise InputError(f"{path}: contains no audio samples; expected wav, flac, mp3 or ogg audio")
    return np.concatenate(chunks, axis=0), int(rate), note


def load_audio(path: str | Path, *, channel: int | None = None, max_channels: int | None = None) -> Audio:
    """Load one channel (0-based) or the mono mix-down of a file, at its own rate.

    `max_channels`: refuse to mix down more channels than this (several parties in one file)."""
    path = Path(path)
    data, rate = _read_multichannel(path)
    n_channels = data.shape[1]
    if channel is None and max_channels is not None and n_channels > max_channels:
        raise InputError(
            f"{path}: has {n_channels} channels; expected mono or stereo here; for one party per channel "
            "use `roleplay analyse FILE --caller-channel N --trainee-channel M`"
        )
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
    return int(_read_multichannel(Path(path))[0].shape[1])


def save_wav(path: str | Path, audio: Audio) -> None:
    """A 16-bit WAV; a new file is readable by its owner only (voices are personal data).

    Encoded in memory and written by us: libsndfile silently leaves a short file on a full disk.
    On a write error the half file is removed and the OSError names the path."""
    import io

    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, audio.samples, audio.rate_hz, subtype="PCM_16", format="WAV")
    try:
        try:  # create it private whatever the umask; an existing file keeps its mode
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o600)
        except FileExistsError:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        with open(fd, "wb") as f:
            f.write(buf.getbuffer())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
