"""Runs: every run with its state and scores; open, resume, download, export, delete."""

from __future__ import annotations

import functools

import streamlit as st

from core.export import merge_run_adapter, multi_gpu_command, train_command, zip_folder
from core.runs import DAMAGED, RESUMABLE
from ui import keys, nav, share
from ui.format import duration, state_badge
from ui.guard import guarded
from ui.pickers import unknown_run_warning
from ui.safe import hide_paths, md, md_code
from ui.state import registry, run_store, select_run, selected_run_id


def table(rows: list[dict]) -> None:
    shown = []
    for r in rows:
        row = {k: r.get(k) for k in ("run", "state", "task", "model", "method")}
        row["duration"] = duration(r.get("duration_s"))
        for key in ("test_accuracy", "test_f1", "test_perplexity", "test_r2", "val_accuracy", "val_loss"):
            if key in r:
                row[key.replace("_", " ")] = round(r[key], 4)
        shown.append(row)
    st.dataframe(shown, hide_index=True)


def actions(run) -> None:
    status = run.status()
    state = status.get("state")
    st.markdown(f"#### {md_code(run.id)} {state_badge(state)}")
    if status.get("message"):
        (st.error if state == DAMAGED else st.caption)(md(hide_paths(status["message"])))
    has_model = run.has_model()
    c = st.columns(4)
    for col, (label, page, icon) in zip(
        c,
        (
            ("Open in Evaluate", nav.EVALUATE.path, ":material/fact_check:"),
            ("Open in Playground", nav.PLAYGROUND.path, ":material/chat:"),
            ("Open in Compare", nav.COMPARE.path, ":material/compare:"),
            ("Open the live view", nav.TRAIN.path, ":material/monitoring:"),
        ),
    ):
        needs_model = page != nav.TRAIN.path
        if col.button(label, key=f"open_{page}", icon=icon, disabled=needs_model and not has_model):
            st.switch_page(page, query_params={"run": run.id})

    if state in RESUMABLE:
        can = run.latest_checkpoint() is not None
        if st.button(
            "Resume from the last checkpoint",
            disabled=not can,
            icon=":material/play_arrow:",
            help=None if can else "This run saved no checkpoint; start it again from the Train page.",
        ):
            job, created = registry().resume(run.id)
            if not created:
                st.warning(f"Another run is training on this device ({md_code(job.run_id)}); wait for it or stop it.")
            else:
                st.switch_page(nav.TRAIN.path, query_params={"run": job.run_id})

    st.markdown("**Take it with you**")
    c = st.columns(3)
    if has_model:
        c[1].download_button(
            "Download the model (zip)",
            functools.partial(zip_folder, run.model_dir),
            file_name=f"{run.id}-model.zip",
            mime="application/zip",
            icon=":material/download:",
            help="The save_pretrained folder: load it with transformers.pipeline after unzipping.",
        )
    c[0].download_button(
        "Download config.json",
        run.config_path.read_bytes(),
        file_name=f"{run.id}-config.json",
        mime="application/json",
        icon=":material/settings:",
    )
    share.report_button([run], key="runs_report")
    st.caption("Repeat this run from a terminal (the same code the workbench runs):")
    st.code(train_command(run.config_path), language="bash")
    gpus = st.number_input("GPUs for the multi-GPU command", 2, 64, 2, key="gpus")
    st.code(multi_gpu_command(run.config_path, int(gpus)), language="bash")

    if has_model and (run.model_dir / "adapter_config.json").exists():
        st.markdown("**LoRA adapter**")
        if st.button(
            "Merge adapter and export",
            icon=":material/merge:",
            help="Fold the adapter into the base model: one plain model that any tool can load.",
        ):
            with st.spinner("Merging..."):
                merged = merge_run_adapter(run)
            st.success(f"Merged model saved in {md(hide_paths(str(merged)))}.")
        merged = run.dir / "merged"
        if merged.is_dir():
            c[2].download_button(
                "Download the merged model (zip)",
                functools.partial(zip_folder, merged),
                file_name=f"{run.id}-merged.zip",
                mime="application/zip",
            )

    delete_section(run.id)


def delete_section(run_id: str) -> None:
    """Delete after a confirmation; also offered for a damaged run, which nothing else can open."""
    st.markdown("**Delete**")
    pending = st.session_state.get(keys.CONFIRM_DELETE) == run_id
    if not pending:
        if st.button("Delete this run", icon=":material/delete:"):
            st.session_state[keys.CONFIRM_DELETE] = run_id
            st.rerun()
        return
    st.warning(f"Delete run {md_code(run_id)} with its model and checkpoints? This cannot be undone.")
    c1, c2 = st.columns(2)
    if c1.button("Yes, delete it", type="primary"):
        st.session_state.pop(keys.CONFIRM_DELETE, None)
        run_store().delete(run_id)
        select_run(None)
        st.toast(f"Deleted {md(run_id)}.")
        st.rerun()
    if c2.button("Cancel"):
        st.session_state.pop(keys.CONFIRM_DELETE, None)
        st.rerun()


def main() -> None:
    st.title("Runs")
    rows = run_store().summaries()
    if not rows:
        st.info("No runs yet. Start one on the Train page.")
        st.page_link(nav.TRAIN.path, label="Go to the Train page", icon=":material/model_training:")
        return
    table(rows)
    ids = [r["run"] for r in rows]
    wanted = selected_run_id()
    unknown = wanted is not None and wanted not in ids
    if unknown:  # never the newest run's Delete button in place of the one a link named
        unknown_run_warning(wanted)
    chosen = st.selectbox(
        "Run",
        ids,
        index=None if unknown else ids.index(wanted) if wanted in ids else 0,
        key="runs_pick",
        placeholder="Choose a run",
    )
    if chosen is None:
        return
    if chosen != wanted:
        select_run(chosen)
    row = rows[ids.index(chosen)]
    if row["state"] == DAMAGED:
        st.markdown(f"#### {md_code(chosen)} {state_badge(DAMAGED)}")
        st.error(md(hide_paths(row["message"])), icon=":material/error:")
        delete_section(chosen)
        return
    actions(run_store().get(chosen))


with guarded():
    main()
