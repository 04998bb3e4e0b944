"""One line of the data check, and how one is made from catalog keys (shared by core.data and core.cjk)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Finding:
    """One line of the data check."""

    level: str
    """ok, warning or problem (a problem blocks training)."""
    title: str
    """A short heading such as 'Duplicates'."""
    detail: str
    """One or two plain sentences a non-coder understands."""
    key: str = ""
    """The catalog key of ``detail`` (core.i18n), so a page shows it in the reader's language."""
    title_key: str = ""
    """The catalog key of ``title``."""
    params: dict[str, Any] = field(default_factory=dict)
    """What fills the message's fields (numbers, class names, an example text)."""


def finding(level: str, title_key: str, key: str, **params: Any) -> Finding:
    """A finding whose title and detail come from the catalogs (stored in English, shown in the reader's language)."""
    from core.i18n import DEFAULT, t

    return Finding(level, t(title_key, DEFAULT), t(key, DEFAULT, **params), key, title_key, params)
