"""The project's own error type: the CLI prints it as one line and exits non-zero."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class RoleplayError(Exception):
    """A problem the user can fix (bad file, bad value, missing model).

    The message is one line that names the input and what was expected.
    """

    exit_code = 2


class InputError(RoleplayError):
    """Bad input: a file, a value or a scenario that cannot be used."""


@dataclass(frozen=True)
class Found:
    """What a checker found instead of what it expected, as a kind ("number", "list", ...) and
    the value where the kind alone says too little, so each language can word it."""

    kind: str
    value: str = ""


ProblemParam = str | Found


class CodedInputError(InputError):
    """An InputError that also carries its message as a code and parameters, with the line (1-based,
    None when unknown) and the dotted field ("" for the whole file), so a page can say it in its
    own language. str() is the English one-line message the CLI prints."""

    def __init__(self, message: str, *, code: str, params: Mapping[str, ProblemParam],
                 line: int | None, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.params: Mapping[str, ProblemParam] = MappingProxyType(dict(params))
        self.line = line
        self.field = field
