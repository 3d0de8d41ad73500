"""Atomic file writes: write a temporary file beside the target, then rename it over the target,
so a crash, a full disk or a reader at the wrong moment never sees half a file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def _temp_path(path: Path, suffix: str = "") -> Path:
    # Beside the target (rename is atomic only within one file system); hidden; one per process.
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def write_atomic(path: Path, data: str | bytes, *, private: bool = True) -> None:
    """Replace `path` with `data` (text is written as UTF-8). `private`: readable by its owner only,
    whatever the umask, like the recordings everything here is made from."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        if private:
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_with(path: Path, write: Callable[[Path], None], *, suffix: str = "") -> None:
    """Let `write` fill a temporary file (e.g. soundfile, which needs a path and a `suffix` it knows),
    then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path, suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def language_file(folder: Path, language: str, *, what: str) -> Path:
    """`folder/LANGUAGE.yaml` of a per-language data folder, or an InputError listing the languages."""
    from roleplay.core.errors import InputError

    available = sorted(p.stem for p in folder.glob("*.yaml"))
    if language not in available:
        raise InputError(f"no {what} for language {language!r}; available: {', '.join(available)}")
    return folder / f"{language}.yaml"


def read_yaml(path: Path) -> object:
    """A YAML file's data; a syntax error is an InputError naming the file and its first line."""
    import yaml

    from roleplay.core.errors import InputError

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
