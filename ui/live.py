"""The live view of one run: it refreshes itself while the run trains and reads everything from disk."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.curves import CurveFeed, downsample, start_record
from core.runs import ACTIVE, RESUMABLE, RunStatus
from ui import charts, keys, nav, share
from ui.diagnosis import show_diagnosis
from ui.format import duration, metric, state_badge
from ui.guard import guarded
from ui.i18n import language, status_message
from ui.probes import probes_live
from ui.safe import hide_paths, md, md_code
from ui.state import registry, run_store, select_run

REFRESH_S = 2.0


@st.cache_resource(show_spinner=False, max_entries=16)
def _feed(metrics_path: str) -> CurveFeed:
    # One per run for the whole server: every session watching a run reads and tabulates its new lines once.
    return CurveFeed(Path(metrics_path), min_interval=REFRESH_S / 2)


@st.cache_resource(show_spinner=False, max_entries=32)
def _figures(metrics_path: str, version: int, x: str, log_y: bool, lang: str):
    # Building a plotly figure costs ~12 ms of the server's Python; sessions that see the same snapshot (in the
    # same language) share it.
    _, _, train, evals = _feed(metrics_path).frames()
    loss = charts.loss_curves(downsample(train), evals, x=x, log_y=log_y, lang=lang)
    return loss, charts.learning_rate(downsample(train), x=x, lang=lang)


def live_view(run, x: str = "step", log_y: bool = False, fresh: bool = False):
    """(records, train table, eval table, loss figure, learning-rate figure) for one run, shared by all sessions."""
    feed = _feed(str(run.metrics_path))
    version, records, train, evals = feed.frames(fresh)
    if not (len(train) or len(evals)):
        return records, train, evals, None, None
    loss, lr = _figures(str(run.metrics_path), version, x, log_y, language())
    return records, train, evals, loss, lr


def live_panel(run_id: str) -> None:
    run = run_store().get(run_id)
    active = run.state in ACTIVE

    # The timer runs only while the run trains; when it ends, one full rerun turns it off. Every refresh is work
    # in the server that competes with training for the CPU (and, for a thread job, the GIL): refresh every
    # 2 s, and share the metrics reading and the figures between sessions (live_view).
    @st.fragment(run_every=REFRESH_S if active else None)
    def panel() -> None:
        # A timed rerun runs this body alone, outside the page's guard: it needs its own.
        with guarded("showing the run"):
            body()

    def body() -> None:
        status = run.status()
        state = status["state"]
        if active and state not in ACTIVE:
            st.rerun()
        x = st.session_state.get(keys.x_axis(run.id), "step")
        log_y = bool(st.session_state.get(keys.log_scale(run.id), False))
        records, train, evals, loss_fig, lr_fig = live_view(run, x, log_y, fresh=state not in ACTIVE)
        head = start_record(records)
        st.markdown(f"### Run {md_code(run.id)} {state_badge(state)}")
        if status.get("message"):
            (st.error if state in (RunStatus.FAILED, RunStatus.DAMAGED) else st.caption)(
                md(hide_paths(status_message(status)))
            )
        step, total = int(status.get("step") or 0), int(status.get("total_steps") or head.get("total_steps") or 0)
        st.progress(min(step / total, 1.0) if total else 0.0, text=f"Step {md(step)} of {md(total or '?')}")
        latest = status.get("latest_eval") or {}
        c = st.columns(5)
        c[0].metric("Samples per second", f"{status.get('samples_per_s', 0) or 0:.1f}")
        c[1].metric("Elapsed", duration(status.get("elapsed_s")))
        c[2].metric("Time left (ETA)", duration(status.get("eta_s")) if state in ACTIVE else "–")
        c[3].metric("Validation loss", metric(latest["val_loss"]) if "val_loss" in latest else "–")
        headline = next((k for k in ("val_accuracy", "val_r2", "val_perplexity") if k in latest), None)
        c[4].metric(
            md(headline.replace("val_", "Validation ")) if headline else "Validation score",
            metric(latest[headline]) if headline else "–",
        )
        if head:
            st.caption(
                f"{head.get('trainable_params', 0):,} of {head.get('total_params', 0):,} parameters train; "
                f"{head.get('train_examples', 0):,} training examples; device {md(head.get('device'))}, "
                f"precision {md(head.get('precision'))}."
            )
            scored, held = head.get("validation_scored_during_training"), head.get("validation_examples")
            if scored and held and scored < held:
                st.caption(
                    f"Validation during training scores a fixed sample of {scored:,} of the {held:,} validation "
                    "rows (to keep it under a tenth of the time); the whole split is scored at the end."
                )
        _controls(run, state, evals)
        probes_live(records, run.id)  # pinned probe sentences: the model's answers at each validation
        # What went right or wrong, in plain words, with a one-click fix (live and after the run).
        show_diagnosis(run, records, frames=(train, evals))
        # Scores and the next steps come before the charts: after a run, "what now" must not be below the fold.
        if state == RunStatus.FINISHED or (state == RunStatus.STOPPED and run.has_model()):
            _finished(run)
        if len(train) or len(evals):
            c1, c2 = st.columns([1, 1])
            # The figures were built above from these widgets' values (a change reruns the fragment at once).
            c1.radio("X axis", ["step", "epoch"], horizontal=True, key=keys.x_axis(run.id))
            c2.toggle("Log scale for loss", key=keys.log_scale(run.id))
            st.plotly_chart(loss_fig, key=f"loss_{run.id}")
            st.plotly_chart(lr_fig, key=f"lr_{run.id}")
        elif state in ACTIVE:
            st.info("Preparing the data and the model; the first points appear after a few steps.")

    panel()


def _controls(run, state: str, evals) -> None:
    if state in ACTIVE:
        # Stop reaches any run through its folder (stop.json): one this server started, or one the CLI trains.
        mine = registry().get(run.id) is not None
        # Overfitting (with "Stop and keep best") is told by the diagnosis below the controls.
        if st.button(
            "Stop",
            key=f"stop_{run.id}",
            icon=":material/stop_circle:",
            help="Stop after the current step; the model so far is saved.",
        ) and registry().stop(run.id):
            st.toast("Stopping after the current step...")
        if not mine:
            st.caption("Another process (the command line?) trains this run; Stop reaches it all the same.")
        return
    resumable = state in RESUMABLE and run.latest_checkpoint() is not None
    if resumable and st.button("Resume from the last checkpoint", key=f"resume_{run.id}", icon=":material/play_arrow:"):
        job, created = registry().resume(run.id)
        select_run(job.run_id)
        if not created:
            st.session_state[keys.FLASH] = (
                f"Another run is training on this device ({md_code(job.run_id)}); wait or stop it."
            )
        st.rerun()


def _finished(run) -> None:
    results = run.results()
    scores = {}
    for split in ("validation", "test"):
        for key, value in (results.get(split) or {}).items():
            if isinstance(value, (int, float)):
                scores[f"{split} {key}"] = metric(value)
    if scores:
        st.dataframe([scores], hide_index=True)
    c = st.columns(3)
    if c[0].button("Try it in the Playground", type="primary", key=f"to_play_{run.id}", icon=":material/chat:"):
        st.switch_page(nav.PLAYGROUND.path, query_params={"run": run.id})
    if c[1].button("Evaluate it", key=f"to_eval_{run.id}", icon=":material/fact_check:"):
        st.switch_page(nav.EVALUATE.path, query_params={"run": run.id})
    if c[2].button("Compare runs", key=f"to_cmp_{run.id}", icon=":material/compare:"):
        st.switch_page(nav.COMPARE.path, query_params={"run": run.id})
    share.report_button([run], key=f"report_{run.id}")
