"""Helpers shared by test modules (not fixtures: those are in conftest.py).

Import them as `from helpers import ...` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations


def assert_one_line(err: str, *fragments: str) -> str:
    """`err` (a command's stderr, an error message) is one line, no traceback and no "internal
    error", holding every fragment; returns that line."""
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
