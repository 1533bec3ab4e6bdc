"""One exception hierarchy. The CLI turns every TrecsEvalError into one line and exit code 2."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable


def suggest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?); available: a, b`` for an unknown name, for error messages."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; available: {', '.join(choices)}"


class TrecsEvalError(Exception):
    """A user-facing error: what was wrong, what is allowed, what was probably meant."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(TrecsEvalError):
    """Malformed input data; names the file, the line (1-based) and the field."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ":".join(str(p) for p in (path, line) if p is not None)
        if field:
            where = f"{where}: field {field!r}" if where else f"field {field!r}"
        super().__init__(f"{where}: {message}" if where else message, hint)
        self.path, self.line, self.field = path, line, field


class ConfigError(TrecsEvalError):
    """A run configuration or command-line value that is not allowed."""


class UnknownNameError(ConfigError):
    """An unknown registry name (system, metric, extractor, ...)."""


class MissingWeightsError(TrecsEvalError):
    """Pretrained weights are neither cached nor downloadable; names the flag to pass."""


class WriteError(TrecsEvalError):
    """The system refused a write (disk full, read-only, a file where a folder should be); names the file."""


class ResumeError(TrecsEvalError):
    """A run directory cannot be resumed with this configuration."""


class IdentityMismatchError(TrecsEvalError):
    """Features or statistics were made by a different extractor than the one asked for."""


def describe_os_error(err: OSError) -> str:
    """One line for an OSError: the file(s) and the system's reason (no traceback for the user)."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    files = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    return f"{files}: {reason}" if files else reason
