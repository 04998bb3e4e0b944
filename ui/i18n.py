"""The reader's language on the pages: ``t(key, **params)``, the sidebar switch, and engine messages shown in it.

The language comes from the URL (``?lang=zh``, so a shared link keeps it), else from this session's choice (the URL
loses its parameters when the page changes), else from the browser (``st.context.locale``), else English. The
catalogs and the lookup live in ``core.i18n``, shared with the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core import i18n
from ui import nav

PARAM = "lang"
STATE = "ui_language"
# Literal keys (not built from the name) so the catalog test finds every one of them in the code.
PAGE_TITLES = {
    nav.HOME.path: "nav.page.home",
    nav.DATA.path: "nav.page.data",
    nav.TRAIN.path: "nav.page.train",
    nav.TUNE.path: "nav.page.tune",
    nav.EVALUATE.path: "nav.page.evaluate",
    nav.PLAYGROUND.path: "nav.page.playground",
    nav.COMPARE.path: "nav.page.compare",
    nav.RUNS.path: "nav.page.runs",
}


def language() -> str:
    try:
        return _language()
    except Exception:  # noqa: BLE001 - no session behind this call (a bench script, a unit test): English
        return i18n.DEFAULT


def _language() -> str:
    from_url = i18n.normalize(st.query_params.get(PARAM))
    if from_url:
        return from_url
    chosen = st.session_state.get(STATE)
    if chosen in i18n.LANGUAGES:
        return chosen
    return i18n.normalize(st.context.locale) or i18n.DEFAULT


def t(key: str, **params: Any) -> str:
    """The message ``key`` in the reader's language."""
    return i18n.t(key, language(), **params)


def page_title(ref: nav.PageRef) -> str:
    key = PAGE_TITLES.get(ref.path)
    return t(key) if key else ref.title


def state_label(state: str | None) -> str:
    return i18n.state_label(state, language())


def status_message(status: dict[str, Any]) -> str:
    """A run's stored status message in the reader's language (see core.i18n.message)."""
    return i18n.status_message(status, language())


def error_text(error: BaseException) -> str:
    """An engine error (a WorkbenchError's key and parameters) in the reader's language; any other as str()."""
    return i18n.error_text(error, language())


def finding_markdown(finding: Any) -> str:
    """One data-check line as markdown ('**Rows.** 400 rows.' / '**行数**：共 400 行。'). What came from the data
    (class names, an example text) is escaped (ui.safe.md), so it shows as the text it is, never as markup."""
    from ui.safe import md

    if not getattr(finding, "key", ""):
        return t("check.line", title=md(finding.title), detail=md(finding.detail))
    params = {k: md(v) if isinstance(v, str) else v for k, v in finding.params.items()}
    lang = language()
    return t("check.line", title=i18n.t(finding.title_key, lang), detail=i18n.t(finding.key, lang, **params))


def language_switch() -> None:
    """English / 简体中文 in the sidebar; the choice goes into the session and the URL."""
    current = language()
    options = list(i18n.LANGUAGES)
    # The key carries the language so a change that came from the URL shows at once (no stale widget state).
    chosen = st.selectbox(
        t("lang.label"),
        options,
        index=options.index(current),
        format_func=i18n.LANGUAGES.get,
        key=f"language_switch_{current}",
        help=t("lang.help"),
    )
    st.session_state[STATE] = chosen
    if st.query_params.get(PARAM) != chosen:
        st.query_params[PARAM] = chosen
    if chosen != current:
        st.rerun()


def translated_options(keys: dict[Any, str]) -> Callable[[Any], str]:
    """A ``format_func`` showing each option by its catalog key (others as they are), the option values unchanged.

    The texts are looked up now: Streamlit (and AppTest) may call format_func after the script run, where the
    reader's language can no longer be read and t() would answer in English.
    """
    labels = {value: t(key) for value, key in keys.items()}
    return lambda value: labels.get(value, str(value))
