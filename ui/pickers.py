"""Choosing runs: pickers that remember the choice in the URL."""

from __future__ import annotations

import streamlit as st

from ui import nav
from ui.safe import md
from ui.state import finished_runs, select_run, selected_run_id


def run_label(run) -> str:
    try:
        cfg = run.config()
        return f"{run.id}  ({cfg.model.task}, {cfg.model.method})"
    except Exception:  # noqa: BLE001 - a damaged config still gets listed by id
        return run.id


def pick_finished_run(label: str = "Run", key: str = "pick_run", task: str | None = None):
    """A selectbox of runs with a saved model; the choice goes into ?run= so a refresh keeps it."""
    runs = finished_runs(task)
    if not runs:
        st.info("No finished run yet. Train one on the Train page (or use **Try the sample** on Home).")
        st.page_link(nav.TRAIN.path, label="Go to the Train page", icon=":material/model_training:")
        return None
    ids = [r.id for r in runs]
    wanted = selected_run_id()
    unknown = wanted is not None and wanted not in ids
    if unknown:
        unknown_run_warning(wanted, "finished run")
    chosen = st.selectbox(
        label,
        ids,
        # A link naming a run that is not here opens nothing: the newest run is not what its sender meant.
        index=None if unknown else ids.index(wanted) if wanted in ids else 0,
        key=key,
        format_func=lambda i: run_label(runs[ids.index(i)]),
        placeholder="Choose a run",
    )
    if chosen is None:
        return None
    if chosen != wanted:
        select_run(chosen)
    return runs[ids.index(chosen)]


def unknown_run_warning(run_id: str, what: str = "run") -> None:
    """Say that the URL names no such run (as text: anyone can write a URL); nothing is opened in its place."""
    st.warning(
        f"There is no {md(what)} named '{md(run_id, max_chars=120)}' (deleted, or a wrong link). Choose one below."
    )
