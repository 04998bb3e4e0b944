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


def show_error(err: BaseException, doing: str = "this") -> None:
    if isinstance(err, WorkbenchError):
        # Messages name files, columns and labels from the user's data: text, never markup; no server paths.
        st.error(md(hide_paths(error_text(err))), icon=":material/error:")
        return
    # Full details go to the server log, where whoever runs the server can read them.
    log.exception("Unexpected error while %s", doing, exc_info=err)
    first = md(hide_paths((str(err).strip().splitlines() or [""])[0][:200]))
    st.error(
        f"Something went wrong while {md(doing)} ({md(type(err).__name__)}{': ' + first if first else ''}). "
        "Your runs and datasets are safe on disk. Try again; if it keeps happening, reload the page "
        "and check the server log.",
        icon=":material/error:",
    )


@contextmanager
def guarded(doing: str = "showing this page") -> Iterator[None]:
    """Wrap a page body (or one action). Streamlit's own rerun/stop signals are BaseExceptions and pass."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - the point is that nothing reaches the user as a traceback
        show_error(err, doing)
