"""Runs: every run with its state and scores; open, resume, download, export, delete."""

from __future__ import annotations

import functools

import streamlit as st

from core.export import merge_run_adapter, multi_gpu_command, train_command, zip_folder
from core.runs import DAMAGED, RESUMABLE
from ui import keys, nav, share
from ui.format import duration, state_badge
from ui.guard import guarded
from ui.i18n import state_label, status_message, t
from ui.pickers import METHODS, TASKS, unknown_run_warning
from ui.safe import hide_paths, md, md_code
from ui.state import registry, run_store, select_run, selected_run_id

# Literal keys (the catalog test finds them in the code): the table's headers in the reader's language.
COLUMNS = {
    "run": "runs.col.run", "state": "runs.col.state", "task": "runs.col.task", "model": "runs.col.model",
    "method": "runs.col.method", "duration": "runs.col.duration", "test_accuracy": "runs.col.test_accuracy",
    "test_f1": "runs.col.test_f1", "test_perplexity": "runs.col.test_perplexity", "test_r2": "runs.col.test_r2",
    "val_accuracy": "runs.col.val_accuracy", "val_loss": "runs.col.val_loss",
}  # fmt: skip
OPEN_LABELS = {
    nav.EVALUATE.path: "runs.open.evaluate",
    nav.PLAYGROUND.path: "runs.open.playground",
    nav.COMPARE.path: "runs.open.compare",
    nav.TRAIN.path: "runs.open.live",
}


def table(rows: list[dict]) -> None:
    shown = []
    for r in rows:
        row = {t(COLUMNS[k]): r.get(k) for k in ("run", "state", "task", "model", "method")}
        row[t(COLUMNS["state"])] = state_label(r.get("state"))
        if r.get("task") in TASKS:
            row[t(COLUMNS["task"])] = t(TASKS[r["task"]])
        if r.get("method") in METHODS:
            row[t(COLUMNS["method"])] = t(METHODS[r["method"]])
        row[t(COLUMNS["duration"])] = duration(r.get("duration_s"))
        for key in ("test_accuracy", "test_f1", "test_perplexity", "test_r2", "val_accuracy", "val_loss"):
            if key in r:
                row[t(COLUMNS[key])] = round(r[key], 4)
        shown.append(row)
    st.dataframe(shown, hide_index=True)


def actions(run) -> None:
    status = run.status()
    state = status.get("state")
    st.markdown(f"#### {md_code(run.id)} {state_badge(state)}")
    if status.get("message"):
        (st.error if state == DAMAGED else st.caption)(md(hide_paths(status_message(status))))
    has_model = run.has_model()
    c = st.columns(4)
    for col, (page, icon) in zip(
        c,
        (
            (nav.EVALUATE.path, ":material/fact_check:"),
            (nav.PLAYGROUND.path, ":material/chat:"),
            (nav.COMPARE.path, ":material/compare:"),
            (nav.TRAIN.path, ":material/monitoring:"),
        ),
    ):
        needs_model = page != nav.TRAIN.path
        if col.button(md(t(OPEN_LABELS[page])), key=f"open_{page}", icon=icon, disabled=needs_model and not has_model):
            st.switch_page(page, query_params={"run": run.id})

    if state in RESUMABLE:
        can = run.latest_checkpoint() is not None
        if st.button(
            t("runs.resume"),
            disabled=not can,
            icon=":material/play_arrow:",
            help=None if can else t("runs.resume.no_checkpoint"),
        ):
            job, created = registry().resume(run.id)
            if not created:
                st.warning(t("runs.busy", run=md_code(job.run_id)))
            else:
                st.switch_page(nav.TRAIN.path, query_params={"run": job.run_id})

    st.markdown(t("runs.take"))
    c = st.columns(3)
    if has_model:
        c[1].download_button(
            t("runs.download.model"),
            functools.partial(zip_folder, run.model_dir),
            file_name=f"{run.id}-model.zip",
            mime="application/zip",
            icon=":material/download:",
            help=t("runs.download.model.help"),
        )
    c[0].download_button(
        t("runs.download.config"),
        run.config_path.read_bytes(),
        file_name=f"{run.id}-config.json",
        mime="application/json",
        icon=":material/settings:",
    )
    share.report_button([run], key="runs_report")
    st.caption(t("runs.repeat"))
    st.code(train_command(run.config_path), language="bash")
    gpus = st.number_input(t("runs.gpus"), 2, 64, 2, key="gpus")
    st.code(multi_gpu_command(run.config_path, int(gpus)), language="bash")

    if has_model and (run.model_dir / "adapter_config.json").exists():
        st.markdown(t("runs.lora"))
        if st.button(
            t("runs.merge"),
            icon=":material/merge:",
            help=t("runs.merge.help"),
        ):
            with st.spinner(t("runs.merging")):
                merged = merge_run_adapter(run)
            st.success(t("runs.merged", path=md(hide_paths(str(merged)))))
        merged = run.dir / "merged"
        if merged.is_dir():
            c[2].download_button(
                t("runs.download.merged"),
                functools.partial(zip_folder, merged),
                file_name=f"{run.id}-merged.zip",
                mime="application/zip",
            )

    delete_section(run.id)


def delete_section(run_id: str) -> None:
    """Delete after a confirmation; also offered for a damaged run, which nothing else can open."""
    st.markdown(t("runs.delete.heading"))
    pending = st.session_state.get(keys.CONFIRM_DELETE) == run_id
    if not pending:
        if st.button(t("runs.delete"), icon=":material/delete:"):
            st.session_state[keys.CONFIRM_DELETE] = run_id
            st.rerun()
        return
    st.warning(t("runs.delete.confirm", run=md_code(run_id)))
    c1, c2 = st.columns(2)
    if c1.button(t("runs.delete.yes"), type="primary"):
        st.session_state.pop(keys.CONFIRM_DELETE, None)
        run_store().delete(run_id)
        select_run(None)
        st.toast(t("runs.deleted", run=md(run_id)))
        st.rerun()
    if c2.button(t("runs.delete.cancel")):
        st.session_state.pop(keys.CONFIRM_DELETE, None)
        st.rerun()


def main() -> None:
    st.title(t("nav.page.runs"))
    rows = run_store().summaries()
    if not rows:
        st.info(t("runs.none"))
        st.page_link(nav.TRAIN.path, label=t("pick.go_train"), icon=":material/model_training:")
        return
    table(rows)
    ids = [r["run"] for r in rows]
    wanted = selected_run_id()
    unknown = wanted is not None and wanted not in ids
    if unknown:  # never the newest run's Delete button in place of the one a link named
        unknown_run_warning(wanted)
    chosen = st.selectbox(
        t("pick.run"),
        ids,
        index=None if unknown else ids.index(wanted) if wanted in ids else 0,
        key="runs_pick",
        placeholder=t("pick.choose"),
    )
    if chosen is None:
        return
    if chosen != wanted:
        select_run(chosen)
    row = rows[ids.index(chosen)]
    if row["state"] == DAMAGED:
        st.markdown(f"#### {md_code(chosen)} {state_badge(DAMAGED)}")
        st.error(md(hide_paths(status_message(row))), icon=":material/error:")
        delete_section(chosen)
        return
    actions(run_store().get(chosen))


with guarded():
    main()
