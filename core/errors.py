"""One error type for everything a user can cause, carrying a message a non-coder can act on.

A message is a catalog key with parameters (``DataError("error.data.empty", hint="error.hint.need_data",
name=path.name)``), so a page or the command line shows it in the reader's language (``core.i18n.error_text``)
and a worker stores it in status.json with its code (``core.i18n.error_message``). ``str(err)`` stays the English
text, so logs, old callers and tests that match English keep working. A plain English sentence is still
accepted (kept as it is in every language) for messages no user meets.
"""

from __future__ import annotations

from typing import Any

from core import i18n

# A task as a message parameter: a key, so the message names it in the reader's language (core.i18n.resolve).
TASKS = {
    "classification": "error.task.classification",
    "regression": "error.task.regression",
    "generation": "error.task.generation",
}


def _plain(value: Any) -> Any:
    # Parameters go into status.json: JSON's own scalars stay (numbers keep their {n:,} formatting), the rest
    # become the text they show as.
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


class WorkbenchError(Exception):
    """A problem the user can fix. ``str(err)`` is the whole message in English: what is wrong and what to do.

    ``message`` and ``hint`` are catalog keys (``error.*``) filled with ``params``, or plain English text.
    """

    def __init__(self, message: str, *, hint: str | None = None, **params: Any):
        self.params = {name: _plain(value) for name, value in params.items()}
        self.key = message if i18n.is_error_key(message) else None
        self.hint_key = hint if hint and i18n.is_error_key(hint) else None
        english = i18n.resolve(self.params, i18n.DEFAULT)  # a parameter may itself name a message (a kind, a reason)
        self.problem = i18n.t(message, i18n.DEFAULT, **english) if self.key else message
        self.hint = i18n.t(hint, i18n.DEFAULT, **english) if self.hint_key else hint
        super().__init__(self.problem if not self.hint else f"{self.problem} {self.hint}")


class DataError(WorkbenchError):
    """The data file cannot be used as it is (names the file, row or column, and what to do)."""


class ModelError(WorkbenchError):
    """The model source cannot be loaded or is not a model."""


class ConfigError(WorkbenchError, ValueError):
    """A setting is out of range; the message names the field."""


class TrainingError(WorkbenchError):
    """Training failed in a way the user can fix (NaN loss, out of memory)."""
