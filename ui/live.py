"""The live view of one run: it refreshes itself while the run trains and reads everything from disk."""

from __future__ import annotations

import streamlit as st

from core.curves import CurveFeed, downsample, start_record
from core.live_feed import signature
from core.runs import ACTIVE, RESUMABLE, RunStatus
from ui import charts, keys, live_api, live_ticker, nav, share
from ui.diagnosis import show_diagnosis
from ui.format import duration, metric, state_badge
from ui.guard import guarded
from ui.i18n import language, status_message, t, translated_options
from ui.probes import probes_live
from ui.safe import hide_paths, md, md_code
from ui.state import registry, run_store, select_run

# Each refresh costs the browser and the server a fixed share of CPU, even when nothing changed (a fragment rerun
# and its render; see bench/live_page.py): on 2 cores a refresh every 2 s took a quarter of a core from training.
REFRESH_S = 4.0
# The curves have a fragment of their own, which reruns this often while a run trains (the numbers above them
# every REFRESH_S); the run's end redraws them at once. Plotly's drawing was the largest share of the browser's
# JavaScript on the live page (a profile during training: 0.2 to 1 s a drawing of the two charts), and a figure that is
# sent again in a rerun costs the browser about as much as a new one, so the numbers' refresh must not send them.
# Measured with bench/live_page.py --synthetic 60: the browser took 0.14 cores with both in one fragment and the
# curves redrawn every 8 s, 0.09 with this.
CHART_REFRESH_S = 15.0
LIVE_POINTS = 600  # points per live curve: a chart a few hundred pixels wide shows no more

# Reports whether the browser tab is hidden. Streamlit's run_every is a plain setInterval in the page, which keeps
# firing in a background tab (Chrome throttles it only after minutes): while hidden, the panel has no timer and
# draws nothing but this hook, whose report on return brings the timer and the drawing back at once. Fixed code of
# ours, no data from outside in it.
_TAB_HOOK_JS = """
export default function (component) {
  const { setStateValue } = component;
  const report = () => setStateValue("hidden", document.visibilityState === "hidden");
  document.addEventListener("visibilitychange", report);
  if (document.visibilityState === "hidden") report();
  return () => document.removeEventListener("visibilitychange", report);
}
"""
_tab_hook = st.components.v2.component("workbench.tab_visibility", js=_TAB_HOOK_JS)


def _feed(metrics_path: str) -> CurveFeed:
    # One per run for the whole server, shared with the live route: every session and the browsers' requests read
    # and tabulate its new lines once.
    return live_api.shared_feed(metrics_path)


@st.cache_resource(show_spinner=False, max_entries=32)
def _figures(metrics_path: str, version: int, x: str, log_y: bool, lang: str):
    # Building a plotly figure costs ~12 ms of the server's Python; sessions that see the same snapshot (in the
    # same language) share it.
    _, _, train, evals = _feed(metrics_path).frames()
    shown = downsample(train, LIVE_POINTS)
    loss = charts.loss_curves(shown, evals, x=x, log_y=log_y, lang=lang)
    return loss, charts.learning_rate(shown, x=x, lang=lang)


def live_view(run, x: str = "step", log_y: bool = False, fresh: bool = False, chart_version: int | None = None):
    """(records, train table, eval table, loss figure, learning-rate figure) for one run, shared by all sessions.

    ``chart_version``: the snapshot whose figures to show (an earlier one keeps the charts as they were drawn).
    """
    feed = _feed(str(run.metrics_path))
    version, records, train, evals = feed.frames(fresh)
    if not (len(train) or len(evals)):
        return records, train, evals, None, None
    shown = version if chart_version is None else chart_version
    loss, lr = _figures(str(run.metrics_path), shown, x, log_y, language())
    return records, train, evals, loss, lr


def chart_version(run_id: str, version: int, evaluations: int, active: bool) -> int:
    """The snapshot this session's charts show: the newest one when there are new points and the charts are
    CHART_REFRESH_S old, a new evaluation arrived or the run has ended; otherwise the one drawn last time."""
    drawn = st.session_state.get(keys.live_charts(run_id))
    now = CurveFeed.clock()
    if (
        drawn is None
        or not active
        or evaluations != drawn["evaluations"]
        # The curves' timer fires every CHART_REFRESH_S; a drawing a little younger than that counts as due (timers
        # drift), or the new points would wait for the next tick.
        or (version != drawn["version"] and now - drawn["at"] >= 0.9 * CHART_REFRESH_S)
    ):
        drawn = {"version": version, "evaluations": evaluations, "at": now}
        st.session_state[keys.live_charts(run_id)] = drawn
    return drawn["version"]


def live_panel(run_id: str) -> None:
    run = run_store().get(run_id)
    active = run.state in ACTIVE
    # Served with the live route (serve.py): while the run trains, the browser refreshes the numbers and the curves
    # itself (ui/live_ticker.py) and the fragments below have no timer; a change only this Python draws (a new
    # state or message, the first point, a diagnosis finding, new probe answers: core.live_feed.signature) makes the
    # browser ask for a rerun. Without the route, timed fragments refresh them.
    ticker = active and live_api.available()
    paused = active and bool(st.session_state.get(keys.TAB_HIDDEN))  # the tab was hidden at the last look
    timed = active and not paused and not ticker

    # The timer runs only while the run trains; when it ends, one full rerun turns it off. Every refresh is work
    # in the server that competes with training for the CPU (and, for a thread job, the GIL): refresh every
    # REFRESH_S, and share the metrics reading and the figures between sessions (live_view).
    @st.fragment(run_every=REFRESH_S if timed else None)
    def panel() -> None:
        # A timed rerun runs this body alone, outside the page's guard: it needs its own.
        with guarded("showing the run"):
            body()

    def body() -> None:
        status = run.status()
        state = status["state"]
        if active and state not in ACTIVE:
            st.rerun()
        if active and not ticker:
            hidden = _tab_hidden(run.id)
            if hidden != bool(st.session_state.get(keys.TAB_HIDDEN)):
                # Only a whole run can switch the fragment's timer off or on (the browser clears every timer then).
                st.session_state[keys.TAB_HIDDEN] = hidden
                st.rerun()
            if hidden:
                st.caption(t("live.hidden"))  # nothing is drawn, and no timer runs, until the reader is back
                return
        # The browser's ticker asks for a rerun when its snapshot's signature differs from this one: read the
        # metrics now, or a throttled read could miss the lines that brought the rerun and sign the old state.
        fresh = state not in ACTIVE or ticker
        _, records, train, evals = _feed(str(run.metrics_path)).frames(fresh)
        head = start_record(records)
        st.markdown(t("live.heading", run=md_code(run.id), badge=state_badge(state)))
        if status.get("message"):
            (st.error if state in (RunStatus.FAILED, RunStatus.DAMAGED) else st.caption)(
                md(hide_paths(status_message(status)))
            )
        if ticker:
            live_ticker.numbers(run.id, signature(run, status, records, train, evals), HEADLINES)
        else:
            _numbers(status, head, state)
        if head:
            st.caption(
                t(
                    "live.model_line",
                    trainable=int(head.get("trainable_params", 0)),
                    total=int(head.get("total_params", 0)),
                    examples=int(head.get("train_examples", 0)),
                    device=md(head.get("device")),
                    precision=md(head.get("precision")),
                )
            )
            scored, held = head.get("validation_scored_during_training"), head.get("validation_examples")
            if scored and held and scored < held:
                st.caption(t("live.val_sample", scored=int(scored), held=int(held)))
        _controls(run, state, evals)
        probes_live(records, run.id)  # pinned probe sentences: the model's answers at each validation
        # What went right or wrong, in plain words, with a one-click fix (live and after the run).
        show_diagnosis(run, records, frames=(train, evals))
        # Scores and the next steps come before the charts: after a run, "what now" must not be below the fold.
        if state == RunStatus.FINISHED or (state == RunStatus.STOPPED and run.has_model()):
            _finished(run)
        if not (len(train) or len(evals)) and state in ACTIVE:
            st.info(t("live.preparing"))

    # The curves have a fragment and a timer of their own: a numbers refresh does not send the figures again (a
    # figure sent again costs the browser about as much as a new one), and the curves are drawn every
    # CHART_REFRESH_S while the run trains. The run's end reruns the whole page, which draws the last points.
    @st.fragment(run_every=CHART_REFRESH_S if timed else None)
    def curves() -> None:
        with guarded("showing the run"):
            if active and not ticker and st.session_state.get(keys.TAB_HIDDEN):
                return
            # While the timer runs the run was training at the page's last full run; its end reruns the whole page.
            x = st.session_state.get(keys.x_axis(run.id), "step")
            log_y = bool(st.session_state.get(keys.log_scale(run.id), False))
            if ticker:
                _axis_widgets(run.id)
                live_ticker.curves(run.id, x, log_y)  # drawn by the browser as the points arrive
                return
            version, _, train, evals = _feed(str(run.metrics_path)).frames(fresh=not active)
            if not (len(train) or len(evals)):
                return
            shown = chart_version(run.id, version, len(evals), active=active)
            loss_fig, lr_fig = _figures(str(run.metrics_path), shown, x, log_y, language())
            # The figures were built above from these widgets' values (a change reruns this fragment at once).
            _axis_widgets(run.id)
            st.plotly_chart(loss_fig, key=f"loss_{run.id}")
            st.plotly_chart(lr_fig, key=f"lr_{run.id}")

    panel()
    curves()


def _numbers(status: dict, head: dict, state: str) -> None:
    """The progress bar and the five numbers, drawn by Streamlit (without the browser's ticker)."""
    step, total = int(status.get("step") or 0), int(status.get("total_steps") or head.get("total_steps") or 0)
    progress = t("live.progress", step=md(step), total=md(total or "?"))
    st.progress(min(step / total, 1.0) if total else 0.0, text=progress)
    latest = status.get("latest_eval") or {}
    c = st.columns(5)
    c[0].metric(t("live.metric.speed"), f"{status.get('samples_per_s', 0) or 0:.1f}")
    c[1].metric(t("live.metric.elapsed"), duration(status.get("elapsed_s")))
    c[2].metric(t("live.metric.eta"), duration(status.get("eta_s")) if state in ACTIVE else "–")
    c[3].metric(t("live.metric.val_loss"), metric(latest["val_loss"]) if "val_loss" in latest else "–")
    headline = next((k for k in HEADLINES if k in latest), None)
    score_key = HEADLINES[headline] if headline else "live.metric.val_score"
    c[4].metric(t(score_key), metric(latest[headline]) if headline else "–")


# Literal keys (not built from the metric's name) so the catalog test finds each of them in the code.
HEADLINES = {
    "val_accuracy": "live.metric.val_accuracy",
    "val_r2": "live.metric.val_r2",
    "val_perplexity": "live.metric.val_perplexity",
}
AXES = {"step": "live.axis.step", "epoch": "live.axis.epoch"}


def _axis_widgets(run_id: str) -> None:
    c1, c2 = st.columns([1, 1])
    c1.radio(
        t("live.x_axis"),
        ["step", "epoch"],
        format_func=translated_options(AXES),
        horizontal=True,
        key=keys.x_axis(run_id),
    )
    c2.toggle(t("live.log_scale"), key=keys.log_scale(run_id))


def _tab_hidden(run_id: str) -> bool:
    """Whether this reader's browser tab is hidden (the hook reports changes; a tab starts visible)."""
    result = _tab_hook(key=keys.tab_hook(run_id), default={"hidden": False}, height=0, on_hidden_change=_noop)
    return bool(getattr(result, "hidden", False))


def _noop() -> None:
    """A state must have a change callback to be reported; the rerun it brings is all the panel needs."""


def _controls(run, state: str, evals) -> None:
    if state in ACTIVE:
        # Stop reaches any run through its folder (stop.json): one this server started, or one the CLI trains.
        mine = registry().get(run.id) is not None
        # Overfitting (with "Stop and keep best") is told by the diagnosis below the controls.
        if st.button(
            t("live.stop"),
            key=f"stop_{run.id}",
            icon=":material/stop_circle:",
            help=t("live.stop.help"),
        ) and registry().stop(run.id):
            st.toast(t("live.stopping"))
        if not mine:
            st.caption(t("live.other_process"))
        return
    resumable = state in RESUMABLE and run.latest_checkpoint() is not None
    if resumable and st.button(t("live.resume"), key=f"resume_{run.id}", icon=":material/play_arrow:"):
        job, created = registry().resume(run.id)
        select_run(job.run_id)
        if not created:
            st.session_state[keys.FLASH] = t("live.device_busy", run=md_code(job.run_id))
        st.rerun()


SPLITS = {"validation": "live.score.validation", "test": "live.score.test"}


def _finished(run) -> None:
    results = run.results()
    scores = {}
    for split in ("validation", "test"):
        for key, value in (results.get(split) or {}).items():
            if isinstance(value, (int, float)):
                scores[t(SPLITS[split], metric=key)] = metric(value)
    if scores:
        st.dataframe([scores], hide_index=True)
    c = st.columns(3)
    if c[0].button(t("live.to_playground"), type="primary", key=f"to_play_{run.id}", icon=":material/chat:"):
        st.switch_page(nav.PLAYGROUND.path, query_params={"run": run.id})
    if c[1].button(t("live.to_evaluate"), key=f"to_eval_{run.id}", icon=":material/fact_check:"):
        st.switch_page(nav.EVALUATE.path, query_params={"run": run.id})
    if c[2].button(t("live.to_compare"), key=f"to_cmp_{run.id}", icon=":material/compare:"):
        st.switch_page(nav.COMPARE.path, query_params={"run": run.id})
    share.report_button([run], key=f"report_{run.id}")
