"""Where things live: the user's data, cache and config directories (XDG on Linux and other
Unixes, the platform's own on macOS and Windows) and the shipped data (voices, scenarios).

Every other module asks here; the environment variables that override a location are read here
only, so the docs' table of locations and this module cannot drift apart."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "roleplay"
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data"


def _xdg(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    # The XDG spec says relative paths are invalid and must be ignored.
    return Path(value) if value and Path(value).is_absolute() else default


def user_data_dir() -> Path:
    """Recordings of trainees' calibrations and the history database."""
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / APP
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / APP
    return _xdg("XDG_DATA_HOME", home / ".local" / "share") / APP


def cache_dir() -> Path:
    """The assembled speech model, numba's compile cache, synthesised speech (`ROLEPLAY_CACHE_DIR`)."""
    if os.environ.get("ROLEPLAY_CACHE_DIR"):
        return Path(os.environ["ROLEPLAY_CACHE_DIR"]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / APP / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / APP
    return _xdg("XDG_CACHE_HOME", home / ".cache") / APP


def config_path() -> Path:
    """The user's settings file (`ROLEPLAY_CONFIG` names another)."""
    if os.environ.get("ROLEPLAY_CONFIG"):
        return Path(os.environ["ROLEPLAY_CONFIG"]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / APP
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support" / APP
    else:
        base = _xdg("XDG_CONFIG_HOME", home / ".config") / APP
    return base / "config.toml"


def saved_scenarios_dir() -> Path:
    """Scenarios made in the app (editor, import from a recording): `ROLEPLAY_SAVED_SCENARIOS_DIR`,
    else `scenarios/` in the user-data directory. Found beside the shipped ones, never instead."""
    value = os.environ.get("ROLEPLAY_SAVED_SCENARIOS_DIR")
    return Path(value).expanduser() if value else user_data_dir() / "scenarios"


def data_dirs(name: str, *, env: str) -> tuple[Path, ...]:
    """$env, then the shipped roleplay/data/NAME (in a checkout a link to the top-level NAME/);
    existing ones only."""
    dirs = []
    if os.environ.get(env):
        dirs.append(Path(os.environ[env]).expanduser())
    dirs.append((PACKAGE_DATA / name).resolve())
    return tuple(d for d in dirs if d.is_dir())


def data_dir(name: str, *, env: str) -> Path:
    """The first existing data directory, or the shipped one (for messages) when none exists."""
    found = data_dirs(name, env=env)
    return found[0] if found else PACKAGE_DATA / name


def make_private_dir(path: Path) -> Path:
    """`mkdir -p path`; when it is created here it is readable by its owner only (0700), whatever the
    umask. An existing directory keeps its mode: it may be one the user chose to share."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    return path
