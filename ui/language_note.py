"""The data check's note about Chinese text, on the Train page next to the model choice (core.cjk decides)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.i18n import finding_markdown


@st.cache_data(show_spinner=False, max_entries=16)
def _model_finding(path: str, stamp: float, text_column: str | None, task: str):
    from core.data import model_finding

    try:
        return model_finding(path, text_column, task)
    except Exception:  # noqa: BLE001 - an unreadable file is reported where it is used, not in this hint
        return None


def chinese_model_note(dataset) -> None:
    """Point to Chinese models when most of the chosen dataset's text is Chinese."""
    path = Path(dataset.path)
    if not path.is_file():
        return
    finding = _model_finding(str(path), path.stat().st_mtime, dataset.settings.text_column, dataset.settings.task)
    if finding is not None:
        st.info(finding_markdown(finding), icon=":material/translate:")
