"""Never a traceback on screen: a user-fixable problem shows its message, anything else a plain apology."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.errors import WorkbenchError
from ui.i18n import error_text
from ui.safe import hide_paths, md

log = logging.getLogger("workbench")
# What a page was doing when it failed, as the callers say it (in English, for the server log), and its key for
# the reader's language. A phrase not listed here is shown as it is.
DOING = {
    "this": "guard.doing.this",
    "showing this page": "guard.doing.page",
    "showing the run": "guard.doing.run",
    "showing the search": "guard.doing.search",
    "checking the search": "guard.doing.check_search",
    "reading the running job": "guard.doing.running_job",
    "reading the model": "guard.doing.model",
    "checking the run": "guard.doing.check_run",
    "starting the run": "guard.doing.start_run",
    "checking the settings": "guard.doing.settings",
    "estimating": "guard.doing.estimate",
    "preparing the fixed run": "guard.doing.fixed_run",
}


def _doing(doing: str) -> str:
    from ui.i18n import t

    return t(DOING[doing]) if doing in DOING else doing


def show_error(err: BaseException, doing: str = "this") -> None:
    if isinstance(err, WorkbenchError):
        # Messages name files, columns and labels from the user's data: text, never markup; no server paths.
        st.error(md(hide_paths(error_text(err))), icon=":material/error:")
        return
    # Full details go to the server log, where whoever runs the server can read them.
    log.exception("Unexpected error while %s", doing, exc_info=err)
    first = md(hide_paths((str(err).strip().splitlines() or [""])[0][:200]))
    from ui.i18n import t

    what = md(type(err).__name__) + (t("guard.detail", detail=first) if first else "")
    st.error(t("guard.unexpected", doing=md(_doing(doing)), error=what), icon=":material/error:")


@contextmanager
def guarded(doing: str = "showing this page") -> Iterator[None]:
    """Wrap a page body (or one action). Streamlit's own rerun/stop signals are BaseExceptions and pass."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - the point is that nothing reaches the user as a traceback
        show_error(err, doing)
