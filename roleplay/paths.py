"""Where the shipped data directories (voices/, scenarios/) are found."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def data_dirs(name: str, *, env: str) -> tuple[Path, ...]:
    """$env, then the repository's NAME/ beside the package (a checkout or an editable install),
    then <prefix>/share/roleplay/NAME (where a wheel's data files land); existing ones only."""
    dirs = []
    if os.environ.get(env):
        dirs.append(Path(os.environ[env]).expanduser())
    dirs.append(Path(__file__).resolve().parent.parent / name)
    dirs.append(Path(sys.prefix) / "share" / "roleplay" / name)
    return tuple(d for d in dirs if d.is_dir())


def data_dir(name: str, *, env: str) -> Path:
    """The first existing data directory, or the repository's (for messages) when none exists."""
    found = data_dirs(name, env=env)
    return found[0] if found else Path(__file__).resolve().parent.parent / name


def make_private_dir(path: Path) -> Path:
    """`mkdir -p path`; when it is created here it is readable by its owner only (0700), whatever the
    umask. An existing directory keeps its mode: it may be one the user chose to share."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    return path
