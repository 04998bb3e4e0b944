"""One error type for everything a user can cause, carrying a message a non-coder can act on."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem the user can fix. ``str(err)`` is the whole message: what is wrong and what to do."""

    def __init__(self, message: str, *, hint: str | None = None):
        self.problem = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} {hint}")


class DataError(WorkbenchError):
    """The data file cannot be used as it is (names the file, row or column, and what to do)."""


class ModelError(WorkbenchError):
    """The model source cannot be loaded or is not a model."""


class ConfigError(WorkbenchError, ValueError):
    """A setting is out of range; the message names the field."""


class TrainingError(WorkbenchError):
    """Training failed in a way the user can fix (NaN loss, out of memory)."""
