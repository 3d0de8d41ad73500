"""The call recording: one directory per call, written as the call happens.

    CALL_DIR/
      meta.json        what the call is (scenario, language, trainee, settings, versions, outcome)
      caller.wav       the caller's audio   } 16-bit mono, same sample rate, same start:
      trainee.wav      the trainee's audio  } sample k of both is the same moment
      events.jsonl     append-only log, one JSON object per line, each with `t_s` and `type`
                       (roleplay.recording.events: one class per type)
      calibration.wav  optional: the trainee reading the calibration sentence

Audio is appended in small blocks and the WAV header is patched after each block; readers trust
the file size, not the header, so a call cut off at any moment (crash, SIGKILL, pulled headset)
still loads up to its last written block. meta.json is replaced atomically (write, then rename).

Readers go through `load_call` (everything), `read_meta` (meta.json: a `CallMeta`) and
`read_events` (events.jsonl: typed events). The JSON Schemas of meta.json and of each event line
are in roleplay/recording/schemas/, generated from the classes (roleplay.recording.schemagen).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roleplay import __version__
from roleplay.audio.clip import MAX_DURATION_S, Audio, to_int16
from roleplay.core.errors import InputError, RoleplayError
from roleplay.core.files import write_atomic
from roleplay.recording.events import OUTCOMES, Event, event_from_json, make_event
from roleplay.recording.meta import CallMeta

FORMAT_VERSION = 1
TRACKS = ("caller", "trainee")
_HEADER_BYTES = 44
__all__ = ["OUTCOMES", "CallMeta", "CallRecording", "CallWriter", "RecordingError", "load_call", "read_events",
           "read_meta"]


class RecordingError(RoleplayError):
    """The call directory cannot be written any more (disk full, removed); what was written is kept."""

    exit_code = 1  # an operating-system problem, as the CLI reports OSError


def _open_private(path: Path) -> int:
    """A new (or emptied) file readable by its owner only, whatever the umask: recordings are personal."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _write_all(f: Any, data: bytes) -> int:
    """Write to an unbuffered file until done; on an error, return how much got written before it
    in `exc.written` (a full disk gives a short write first, then ENOSPC)."""
    view, done = memoryview(data), 0
    while done < len(view):
        try:
            n = f.write(view[done:])
        except OSError as exc:
            exc.written = done  # type: ignore[attr-defined]
            raise
        if not n:
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            full.written = done  # type: ignore[attr-defined]
            raise full
        done += n
    return done


def _wav_header(rate_hz: int, data_bytes: int) -> bytes:
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate_hz, rate_hz * 2, 2, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )


class _WavAppender:
    """A mono 16-bit WAV that is valid after every append."""

    def __init__(self, path: Path, rate_hz: int) -> None:
        self.path = path
        self.rate_hz = rate_hz
        # unbuffered: after a failed write nothing lingers in a buffer to fail again at close
        self._f = open(_open_private(path), "wb", buffering=0)  # noqa: SIM115 - kept open for the whole call
        self.frames = 0
        self.error: RecordingError | None = None
        try:
            _write_all(self._f, _wav_header(rate_hz, 0))
        except OSError as exc:
            self.error = _recording_error(path, exc)
            raise self.error from None

    def append(self, samples: np.ndarray) -> None:
        if self.error is not None:  # the disk filled up: the file stays valid up to its last whole sample
            raise self.error
        data = to_int16(samples).tobytes()
        self._f.seek(0, os.SEEK_END)
        try:
            _write_all(self._f, data)
        except OSError as exc:
            # keep the whole samples that made it, so the next reader finds a clean file
            self.frames += getattr(exc, "written", 0) // 2
            self._truncate_and_patch()
            self.error = _recording_error(self.path, exc)
            raise self.error from None
        self.frames += len(data) // 2
        self._patch_header()

    def _patch_header(self) -> None:
        # overwrites bytes already on disk: needs no new blocks, so it works on a full disk too
        self._f.seek(4)
        self._f.write(struct.pack("<I", 36 + self.frames * 2))
        self._f.seek(40)
        self._f.write(struct.pack("<I", self.frames * 2))

    def _truncate_and_patch(self) -> None:
        try:
            self._f.truncate(_HEADER_BYTES + self.frames * 2)
            self._patch_header()
        except OSError:
            pass  # readers trust the file size and drop a half sample anyway

    def close(self) -> None:
        self._f.close()


def _recording_error(path: Path, exc: OSError) -> RecordingError:
    return RecordingError(f"{path}: {exc.strerror or exc}; what was recorded until then is kept in {path.parent}")


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write, then rename: a full disk leaves the old file as it was."""
    try:
        write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False))
    except OSError as exc:
        raise _recording_error(path, exc) from None


def _now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"roleplay": __version__}
    for dist in ("faster-whisper", "ctranslate2", "librosa", "pyttsx3", "sounddevice"):
        with contextlib.suppress(metadata.PackageNotFoundError):  # not installed: not part of this call
            out[dist] = metadata.version(dist)
    return out


class CallWriter:
    """Writes a call directory incrementally. Use as a context manager; an exception inside
    marks the call `aborted` but keeps everything written so far."""

    def __init__(self, directory: str | Path, *, rate_hz: int, meta: dict[str, Any]) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and any(self.directory.iterdir()):
            raise InputError(f"{self.directory}: already exists and is not empty; choose a new call directory")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)  # recordings are personal data
        self.rate_hz = rate_hz
        self.meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "created_utc": _now_utc(),
            "rate_hz": rate_hz,
            "status": "recording",
            "versions": library_versions(),
            **meta,
        }
        _checked_meta(self.meta)
        _write_json_atomic(self.directory / "meta.json", self.meta)
        self._tracks = {t: _WavAppender(self.directory / f"{t}.wav", rate_hz) for t in TRACKS}
        fd = os.open(self.directory / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        self._events = open(fd, "ab", buffering=0)  # noqa: SIM115 - kept open for the whole call
        self._files_closed = False
        self.closed = False

    def frames(self, track: str) -> int:
        return self._tracks[track].frames

    def append(self, track: str, samples: np.ndarray) -> None:
        self._tracks[track].append(samples)

    def append_both(self, caller: np.ndarray, trainee: np.ndarray) -> None:
        """One block of each track, keeping them in step (live calls)."""
        self._tracks["caller"].append(caller)
        self._tracks["trainee"].append(trainee)

    def pad_to(self, frames: int) -> None:
        """Extend both tracks with silence to `frames` samples (one shared timeline)."""
        for appender in self._tracks.values():
            if appender.frames < frames:
                appender.append(np.zeros(frames - appender.frames, dtype=np.float32))

    def event(self, type_: str, *, t_s: float, **fields: Any) -> None:
        """Append the event `type_` with these fields (see roleplay.recording.events): an unknown
        type or a missing, misspelt or wrongly typed field raises ValueError before anything is written."""
        self.write(make_event(type_, t_s=t_s, **fields))

    def write(self, event: Event) -> None:
        """Append a typed event to events.jsonl, as one line (a half line is skipped by readers)."""
        if type(event).TYPE == "":  # an UnknownEvent read from a file, or the base class
            raise ValueError(f"cannot write {type(event).__name__} {event.type!r}: not a known event type")
        data = event.to_dict()
        data["t_s"] = round(data["t_s"], 4)
        line = json.dumps(data, ensure_ascii=False)
        try:
            _write_all(self._events, (line + "\n").encode("utf-8"))
        except OSError as exc:  # a half line is skipped by the reader
            raise _recording_error(self.directory / "events.jsonl", exc) from None

    def update_meta(self, **fields: Any) -> None:
        _checked_meta({**self.meta, **fields})  # a bad field leaves the meta as it was
        self.meta.update(fields)
        _write_json_atomic(self.directory / "meta.json", self.meta)

    def close(self, *, outcome: str | None = None, status: str = "complete") -> None:
        if self.closed:
            return
        if not self._files_closed:  # a second close (after a full disk failed the first) skips this
            try:
                self.pad_to(max(a.frames for a in self._tracks.values()))
            finally:
                for appender in self._tracks.values():
                    appender.close()
                self._events.close()
                self._files_closed = True
        fields: dict[str, Any] = {"status": status, "ended_utc": _now_utc(),
                                  "duration_s": round(self.frames("caller") / self.rate_hz, 3)}
        if outcome is not None:
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {outcome!r}")
            fields["outcome"] = outcome
        self.update_meta(**fields)
        self.closed = True

    def __enter__(self) -> CallWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close(outcome="aborted", status="aborted")
        except (RoleplayError, OSError):
            # e.g. the disk is full: the first error is the one to report; the files stay as written
            self.closed = True


def _checked_meta(meta: dict[str, Any]) -> None:
    """What the writer is about to write must be a `CallMeta` (its schema), no unknown keys."""
    CallMeta.from_dict(meta, strict=True)


@dataclass(frozen=True)
class CallRecording:
    directory: Path
    meta: CallMeta
    caller: Audio | None
    trainee: Audio | None
    calibration: Audio | None
    events: tuple[Event, ...] = field(default_factory=tuple)

    @property
    def cut_off(self) -> bool:
        """True when the call did not close normally (crash, kill, Ctrl-C)."""
        return self.meta.status != "complete"

    @property
    def duration_s(self) -> float:
        tracks = [a for a in (self.caller, self.trainee) if a is not None]
        return max((a.duration_s for a in tracks), default=0.0)


def _read_track(path: Path, rate_hz: int) -> Audio | None:
    """Read our own WAV by file size, so a header left stale by a crash does not matter."""
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > _HEADER_BYTES + MAX_DURATION_S * rate_hz * 2:  # refused before it is read into memory
        raise InputError(f"{path}: {(size - _HEADER_BYTES) / (rate_hz * 120):.0f} minutes long; expected at "
                         f"most {MAX_DURATION_S / 60:.0f} minutes")
    raw = path.read_bytes()
    if len(raw) < _HEADER_BYTES or raw[:4] != b"RIFF" or raw[36:40] != b"data":
        raise InputError(f"{path}: not a roleplay call track (expected a 16-bit mono WAV)")
    file_rate = struct.unpack("<I", raw[24:28])[0]
    if file_rate != rate_hz:
        raise InputError(f"{path}: sample rate {file_rate} Hz differs from meta.json ({rate_hz} Hz)")
    body = raw[_HEADER_BYTES:]
    body = body[: len(body) - len(body) % 2]
    samples = np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0
    return Audio(samples, rate_hz)


def read_events(path: str | Path) -> tuple[Event, ...]:
    """The events of a call directory (or of the events.jsonl given), typed. A type this version
    does not know, or a line whose fields do not fit its type, is kept as an `UnknownEvent`."""
    path = Path(path)
    if path.is_dir():
        path = path / "events.jsonl"
    if not path.is_file():
        return ()
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            # Only a half-written last line (a cut-off call) is expected; skip it.
            continue
        try:
            out.append(event_from_json(item))
        except ValueError:
            raise InputError(f"{path}:{n}: expected an event object with `t_s` and `type`, "
                             f"got {line[:40]!r}") from None
    return tuple(out)


def read_meta(directory: str | Path) -> CallMeta:
    """meta.json of a call directory. InputError when there is none, or it is not a call's meta
    (not JSON, a field missing or of the wrong type); keys it does not know are kept in `extra`."""
    directory = Path(directory)
    meta_path = directory / "meta.json"
    if not directory.is_dir():
        raise InputError(f"{directory}: not a call directory (no such directory)")
    if not meta_path.is_file():
        raise InputError(f"{directory}: not a call directory (no meta.json)")
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{meta_path}: not valid JSON ({exc.__class__.__name__})") from None
    except OSError as exc:
        raise InputError(f"{meta_path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return CallMeta.from_dict(data)
    except ValueError as exc:
        raise InputError(f"{meta_path}: not a roleplay call's meta.json ({exc})") from None


def load_call(directory: str | Path) -> CallRecording:
    directory = Path(directory)
    meta = read_meta(directory)
    rate = meta.rate_hz
    caller = _read_track(directory / "caller.wav", rate)
    trainee = _read_track(directory / "trainee.wav", rate)
    if caller is None and trainee is None:
        raise InputError(f"{directory}: has neither caller.wav nor trainee.wav")
    calibration = None
    if (directory / "calibration.wav").is_file():
        from roleplay.audio.clip import load_audio

        calibration = load_audio(directory / "calibration.wav")
    return CallRecording(directory, meta, caller, trainee, calibration, read_events(directory / "events.jsonl"))
