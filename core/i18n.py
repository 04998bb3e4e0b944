"""The translation layer: ``t(key, **params)`` over one catalog per language (locales/en.json + locales/en/*.json).

Why plain JSON catalogs rather than gettext + Babel: messages are looked up by stable keys such as
``check.rows.few``, and the engine stores those keys with their parameters in status.json, so a message written by
the worker shows in whichever language the reader picks later. Keys (not English sentences as gettext msgids)
survive rewording the English, need no compile step (.po -> .mo) and no extra package, and the test that finds
every key in the code and fails on one missing from a catalog is a few lines. Chinese has no plural forms; English
ones are a ``{"one": ..., "other": ...}`` entry chosen by the ``n`` parameter (or the one ``"count"`` names).

Parameters fill ``{name}`` fields with ``str.format`` (so ``{n:,}`` works in every language); what they hold is the
caller's to escape where it is shown as markup. Nothing here imports streamlit: the CLI follows ``LANG``, the UI
passes the reader's choice as ``lang``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT = "en"


def catalog_files(lang: str) -> list[Path]:
    """The files of one language's catalog: ``locales/<lang>.json``, then ``locales/<lang>/*.json`` by name.

    One file per area of the app (``locales/zh/train.json``...) keeps each file short and lets two people add
    messages for different pages without touching the same lines. A key may live in only one of them (a test checks).
    """
    main = LOCALES / f"{lang}.json"
    return [*([main] if main.is_file() else []), *sorted((LOCALES / lang).glob("*.json"))]


@cache
def catalog(lang: str) -> dict[str, Any]:
    """The messages of one language (a flat key -> text or {"one", "other"} mapping), merged from its files."""
    merged: dict[str, Any] = {}
    for path in catalog_files(lang):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def normalize(code: str | None) -> str | None:
    """'zh-CN', 'zh_CN.UTF-8', 'zh-Hans' -> 'zh'; 'en-GB' -> 'en'; a language without a catalog -> None."""
    if not code:
        return None
    base = code.replace("_", "-").split(".")[0].split("-")[0].strip().lower()
    return base if base in LANGUAGES else None


def env_language(environ: dict[str, str] | None = None) -> str:
    """The command line's language, looked up as gettext does: LANGUAGE, then LC_ALL, LC_MESSAGES, LANG."""
    environ = os.environ if environ is None else environ
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        for part in environ.get(name, "").split(":"):  # LANGUAGE may list several, best first
            found = normalize(part)
            if found:
                return found
    return DEFAULT


def t(key: str, /, lang: str | None = None, **params: Any) -> str:
    """The message ``key`` in ``lang`` (default: the environment's), with ``params`` filled in.

    A key missing from the language falls back to English, and one missing everywhere shows as the key itself,
    so a gap is visible but never breaks a page (a test keeps both catalogs complete).
    """
    lang = lang or env_language()
    if any(_names_a_message(value) for value in params.values()):
        params = resolve(params, lang)  # an error's role, kind or reason, in the same language
    for source in (lang, DEFAULT):
        entry = _plural(catalog(source).get(key), params)
        if isinstance(entry, str):
            try:
                return entry.format(**params)
            except (KeyError, IndexError, ValueError, TypeError):  # a wrong field in a translation: try English
                continue
    return key


# Literal keys (not built from the state's name) so the catalog test finds each of them in the code.
RUN_STATES = {
    "queued": "run.state.queued",
    "running": "run.state.running",
    "finished": "run.state.finished",
    "failed": "run.state.failed",
    "stopped": "run.state.stopped",
    "interrupted": "run.state.interrupted",
    "damaged": "run.state.damaged",
}


def state_key(state: str | None) -> str:
    """A run state as a message parameter: its key, so the message shows it in the reader's language."""
    return RUN_STATES.get(str(state), str(state))


def state_label(state: str | None, lang: str | None = None) -> str:
    """A run state as the reader says it ('finished' -> '已完成'); an unknown one as it is."""
    key = RUN_STATES.get(str(state))
    return t(key, lang) if key else str(state)


def _plural(entry: Any, params: dict[str, Any]) -> Any:
    # {"one": ..., "other": ...} picks on the parameter named by "count" (default n); the pick may nest for a
    # second number in the same sentence.
    while isinstance(entry, dict):
        entry = entry.get("one" if params.get(entry.get("count", "n")) == 1 else "other")
    return entry


def message(key: str, /, hint_key: str | None = None, **params: Any) -> dict[str, Any]:
    """Fields for a status record: the English text (for old readers and logs) plus the key and parameters.

    ``hint_key`` names a second message (what to do, or more detail) that follows the first, filled with the same
    parameters.
    """
    return {
        "message": _compose(key, hint_key, DEFAULT, params),
        "message_code": key,
        "message_params": params,
        "message_hint_code": hint_key,
    }


def status_message(status: dict[str, Any], lang: str | None = None) -> str:
    """A stored status message in ``lang``: from its key when it has one, else the text as it was written."""
    text = str(status.get("message") or "")
    key, params = status.get("message_code"), status.get("message_params") or {}
    hint = status.get("message_hint_code")
    if not key or key not in catalog(DEFAULT) or not isinstance(params, dict):
        return text
    if hint is not None and hint not in catalog(DEFAULT):
        return text
    # A later plain message (set_status(message=...)) leaves the old key behind: trust the key only while the
    # English text still is what the key says.
    if _compose(key, hint, DEFAULT, params) == text:
        return _compose(key, hint, lang, params)
    return text


def is_error_key(text: str | None) -> bool:
    """Whether ``text`` names an error message of the catalog (``error.*``) rather than being the message."""
    return bool(text) and text.startswith("error.") and text in catalog(DEFAULT)


def resolve(params: dict[str, Any], lang: str | None) -> dict[str, Any]:
    """Parameters with each one that names an ``error.*`` message (a kind of thing, a reason) put in ``lang``,
    filled with the other parameters."""
    out = dict(params)
    for _ in range(3):  # a message in a parameter may need another one (a setting's detail names a kind)
        plain = {name: value for name, value in out.items() if not _names_a_message(value)}
        # A message whose fields are not all known yet comes back as its key (t's fallback): the next pass fills it.
        out = {name: t(value, lang, **plain) if _names_a_message(value) else value for name, value in out.items()}
    return out


def _names_a_message(value: Any) -> bool:
    # Only error.* keys and run states: a user's own text (a label, a file name) is never looked up.
    return isinstance(value, str) and (is_error_key(value) or value in RUN_STATES.values())


def _compose(key: str, hint: str | None, lang: str | None, params: dict[str, Any]) -> str:
    params = resolve(params, lang)
    problem = t(key, lang, **params)
    if not hint:
        return problem
    # Chinese needs no space after its full stop; English does.
    return problem + ("" if problem.endswith(("。", "！", "？", "：", "）")) else " ") + t(hint, lang, **params)


def error_text(error: BaseException, lang: str | None = None) -> str:
    """An error in ``lang``: a keyed WorkbenchError from its key and parameters, any other as ``str(error)``.

    A plain (unkeyed) hint is English text, added as it is.
    """
    key = getattr(error, "key", None)
    if not key:
        return str(error)
    params = getattr(error, "params", {}) or {}
    hint_key = getattr(error, "hint_key", None)
    text = _compose(key, hint_key, lang, params)
    plain_hint = getattr(error, "hint", None)
    return f"{text} {plain_hint}" if plain_hint and not hint_key else text


def error_message(error: BaseException) -> dict[str, Any]:
    """Fields for a status record of a failure: the English text plus the error's key, hint and parameters.

    A keyed error with a plain English hint, or an unkeyed one, is stored as its text only.
    """
    key = getattr(error, "key", None)
    if not key or (getattr(error, "hint", None) and not getattr(error, "hint_key", None)):
        return {"message": str(error), "message_code": None, "message_params": {}, "message_hint_code": None}
    params = getattr(error, "params", {}) or {}
    hint = getattr(error, "hint_key", None)
    return {"message": str(error), "message_code": key, "message_params": params, "message_hint_code": hint}


def finding_text(finding: Any, lang: str | None = None) -> tuple[str, str]:
    """(title, detail) of a data-check finding in ``lang``; a finding without keys keeps its own text."""
    if not getattr(finding, "key", ""):
        return finding.title, finding.detail
    return t(finding.title_key, lang), t(finding.key, lang, **finding.params)
