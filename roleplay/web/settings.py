"""How one app instance is set up (from `roleplay serve`'s options, or a test)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from roleplay.core.paths import user_data_dir
from roleplay.history.accounts import SESSION_LIFETIME_S


def _default_calls_dir() -> Path:
    return user_data_dir() / "calls"


@dataclass(frozen=True)
class WebSettings:
    # A SQLite file or a PostgreSQL URL; None: ROLEPLAY_DB, else the user-data directory (as the CLI).
    db: str | Path | None = None
    # Where drills started in the app write their call directories.
    calls_dir: Path = field(default_factory=_default_calls_dir)
    # Secure cookies even over plain HTTP (behind a proxy that terminates HTTPS); HTTPS requests
    # always get them.
    secure_cookies: bool = False
    session_lifetime_s: float = SESSION_LIFETIME_S
    # The largest recording the scenario import accepts (refused while it streams in, see trainer.BodyLimit).
    upload_limit_bytes: int = 200_000_000
