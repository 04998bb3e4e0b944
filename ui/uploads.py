"""Uploads staged on disk for the readers, and let go of when the page moves on to another file."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import keys
from ui.state import dataset_store


def stage(upload, slot: str) -> Path:
    """Stage ``upload`` for this session's ``slot`` (one uploader); the file it replaces is deleted.

    Saved datasets hold their own copies (the store discards the staged file on save), and whatever a closed
    tab left behind is deleted after a grace period (core.datasets.clean_staging).
    """
    from core.datasets import discard_staged, stage_upload

    root = dataset_store().root
    path = stage_upload(upload.name, upload.getvalue(), root)
    key = keys.staged_upload(slot)
    previous = st.session_state.get(key)
    if previous and previous != str(path):
        discard_staged(previous, root)
    st.session_state[key] = str(path)
    return path
