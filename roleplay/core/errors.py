"""The project's own error type: the CLI prints it as one line and exits non-zero."""


class RoleplayError(Exception):
    """A problem the user can fix (bad file, bad value, missing model).

    The message is one line that names the input and what was expected.
    """

    exit_code = 2


class InputError(RoleplayError):
    """Bad input: a file, a value or a scenario that cannot be used."""
