"""Choosing runs: pickers that remember the choice in the URL."""

from __future__ import annotations

import streamlit as st

from core import i18n
from ui import nav
from ui.i18n import language, t
from ui.safe import md
from ui.state import finished_runs, select_run, selected_run_id

# Literal keys (the catalog test finds them in the code).
TASKS = {"classification": "runs.task.classification", "regression": "runs.task.regression",
         "generation": "runs.task.generation"}  # fmt: skip
METHODS = {"full": "pick.method.full", "freeze": "pick.method.freeze", "lora": "pick.method.lora",
           "prefix": "pick.method.prefix", "prompt": "pick.method.prompt"}  # fmt: skip
WHAT = {"run": "pick.what.run", "finished run": "pick.what.finished_run"}


def run_label(run, lang: str | None = None) -> str:
    """'run-3  (classification, lora)': the id, the task and the method, in ``lang`` (default: the reader's)."""
    lang = lang or language()
    try:
        cfg = run.config()
        task, method = cfg.model.task, cfg.model.method
        task = i18n.t(TASKS[task], lang) if task in TASKS else task
        method = i18n.t(METHODS[method], lang) if method in METHODS else method
        return i18n.t("pick.label", lang, run=run.id, task=task, method=method)
    except Exception:  # noqa: BLE001 - a damaged config still gets listed by id
        return run.id


def pick_finished_run(label: str | None = None, key: str = "pick_run", task: str | None = None):
    """A selectbox of runs with a saved model; the choice goes into ?run= so a refresh keeps it."""
    runs = finished_runs(task)
    if not runs:
        st.info(t("pick.none"))
        st.page_link(nav.TRAIN.path, label=t("pick.go_train"), icon=":material/model_training:")
        return None
    ids = [r.id for r in runs]
    wanted = selected_run_id()
    unknown = wanted is not None and wanted not in ids
    if unknown:
        unknown_run_warning(wanted, "finished run")
    chosen = st.selectbox(
        label or t("pick.run"),
        ids,
        # A link naming a run that is not here opens nothing: the newest run is not what its sender meant.
        index=None if unknown else ids.index(wanted) if wanted in ids else 0,
        key=key,
        format_func=lambda i, lang=language(): run_label(runs[ids.index(i)], lang),
        placeholder=t("pick.choose"),
    )
    if chosen is None:
        return None
    if chosen != wanted:
        select_run(chosen)
    return runs[ids.index(chosen)]


def unknown_run_warning(run_id: str, what: str = "run") -> None:
    """Say that the URL names no such run (as text: anyone can write a URL); nothing is opened in its place."""
    named = t(WHAT[what]) if what in WHAT else what
    st.warning(t("pick.unknown", what=md(named), run=md(run_id, max_chars=120)))
