"""Helpers shared by test modules (not fixtures: those are in conftest.py).

Import them as `from helpers import ...` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol


def assert_one_line(err: str, *fragments: str) -> str:
    """`err` (a command's stderr, an error message) is one line, no traceback and no "internal
    error", holding every fragment; returns that line."""
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@contextmanager
def xdg_data_home(path: Path) -> Iterator[Path]:
    """XDG_DATA_HOME points at `path` inside the block (voice checks and profiles land there), then
    back to what it was."""
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("XDG_DATA_HOME", None)
        else:
            os.environ["XDG_DATA_HOME"] = old


def history_with_accounts(path: Path, users: dict[str, str], *, password: str = "correct horse",
                          groups: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None) -> Path:
    """A history database at `path` with `users` (name -> role), all with `password`, and `groups`
    (name -> (trainees, trainers)); made once per module, since hashing the passwords is the slow part."""
    from roleplay.history.accounts import Accounts
    from roleplay.history.store import History

    with History(path) as history:
        acc = Accounts(history)
        for name, role in users.items():
            acc.add_user(name, role, password)
        for group, (trainees, trainers) in (groups or {}).items():
            acc.create_group(group)
            for trainee in trainees:
                acc.set_group_trainee(group, trainee, member=True)
            for trainer in trainers:
                acc.set_group_trainer(group, trainer, member=True)
    return path


class _OutputClock(Protocol):
    output_position_samples: int


class FakePlayback:
    """What a fake stream's `play` returns: a caller line playing from `start` to `end` (samples) on
    the stream's output clock, which the test or the fake stream moves."""

    def __init__(self, stream: _OutputClock, start: int, end: int) -> None:
        self.stream, self.start_sample, self.end_sample = stream, start, end

    @property
    def played_until_sample(self) -> int:
        return min(self.stream.output_position_samples, self.end_sample)

    @property
    def done(self) -> bool:
        return self.stream.output_position_samples >= self.end_sample
