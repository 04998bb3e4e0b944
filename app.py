"""Fine-Tuning Workbench: `streamlit run app.py`. The router; every page lives in views/, the engine in core/.

Nothing heavy is imported here (no torch, no transformers): Home must paint within a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import keys, nav
from ui.guard import guarded
from ui.i18n import language_switch, page_title, t
from ui.safe import md, md_code

HERE = Path(__file__).parent


def _pages() -> list:
    refs = [nav.HOME, nav.DATA, nav.TRAIN, nav.TUNE, nav.EVALUATE, nav.PLAYGROUND, nav.COMPARE, nav.RUNS]
    # The Tune page is optional: a build without the hyperparameter search leaves its file out.
    refs = [r for r in refs if (HERE / r.path).exists()]
    return [st.Page(r.path, title=page_title(r), icon=r.icon, default=r is nav.HOME) for r in refs]


def _running_job() -> None:
    """The sidebar line about the job in progress (a timed rerun runs it alone, so it has its own guard)."""
    with guarded("reading the running job"):
        _running_job_body()


def _running_job_body() -> None:
    from ui.state import active_runs, interrupted_runs

    runs, interrupted = active_runs(), interrupted_runs()
    if not runs and st.session_state.get(keys.SIDEBAR_TICKING):
        # The bar of the run that ended asked for this rerun. Only a whole run gives the sidebar its timer back
        # (it looks for runs another process starts).
        st.session_state[keys.SIDEBAR_TICKING] = False
        st.rerun()
    shape = [run.id for run in runs], [run.id for run in interrupted]
    needed = (0 if runs else 1) + 3 * len(runs) + 2 * len(interrupted)
    last_shape, last_needed = st.session_state.get(keys.SIDEBAR_LINES, (None, 0))
    # Elements arrive in the browser one by one, and the ones a pass no longer writes are only removed when the
    # whole script run ends: written in order, "No training running." stood above a finished run's progress bar
    # and button for as long as the page took (seconds on a busy Train page). So when the runs shown change, every
    # place the last pass used is emptied first and only then filled: old and new lines never show together.
    # (When the same runs show, emptying first would only make the lines blink.)
    if shape == last_shape:  # the same lines with new numbers: each replaces itself in place
        slots = iter([st] * needed)
    else:  # creating an st.empty() at a place empties it at once
        places = [st.empty() for _ in range(max(needed, last_needed))]
        # Each new line goes inside a container at its place, not at the place itself. Streamlit merges a message
        # into one still queued for the same place, so a line written at place 0 would leave in the place of its
        # "empty", ahead of the "empty" messages of places 1 and 2: on a busy server the browser showed "No training
        # running." above the old button (tests/app/test_sidebar_order.py). The container takes that first spot;
        # the text inside it has a place of its own and leaves after every "empty".
        slots = iter([place.container() for place in places[:needed]])
    _running_job_lines(runs, interrupted, slots)
    st.session_state[keys.SIDEBAR_LINES] = (shape, needed)


def _running_job_lines(runs: list, interrupted: list, slots) -> None:
    from ui import live_api

    ticker = bool(runs) and live_api.available()  # each bar moves by itself (serve.py)
    if not runs:
        next(slots).caption(t("sidebar.none"))
    for run in runs:
        next(slots).markdown(t("sidebar.training", run=md_code(run.id)))
        if ticker:
            from ui import live_ticker

            with next(slots).container():
                live_ticker.sidebar_bar(run.id)
        else:
            status = run.status()
            step, total = status.get("step", 0) or 0, status.get("total_steps") or 0
            progress = t("sidebar.progress", step=md(step), total=md(total or "?"))
            next(slots).progress(min(step / total, 1.0) if total else 0.0, text=progress)
        if next(slots).button(t("common.open_live"), key=f"sidebar_open_{run.id}"):
            st.switch_page(nav.TRAIN.path, query_params={"run": run.id})
    for run in interrupted:  # its process is gone: said at once, not after a restart
        next(slots).markdown(t("sidebar.interrupted", run=md_code(run.id)))
        if next(slots).button(t("sidebar.resume"), key=f"sidebar_cut_{run.id}"):
            st.switch_page(nav.RUNS.path, query_params={"run": run.id})


def run() -> None:
    st.set_page_config(page_title=t("app.title"), page_icon="🛠️", layout="wide")
    page = st.navigation(_pages())
    with st.sidebar:
        language_switch()
    with st.sidebar, guarded("reading the running job"):
        from ui import live_api
        from ui.state import active_runs

        # Poll while something trains, rarely otherwise (a CLI job started elsewhere still shows up), and not at
        # all while the tab is hidden (the live panel's hook says so; its report on return reruns the whole page).
        # Every timed rerun costs the browser a fixed share of a core (bench/live_page.py), so not too often.
        # With the live route (serve.py), a training run's bar moves by itself (ui/live_ticker.py) and its end
        # reruns the sidebar: no timer while something trains.
        training = bool(active_runs())
        ticking = training and live_api.available()
        st.session_state[keys.SIDEBAR_TICKING] = ticking
        every = None if st.session_state.get(keys.TAB_HIDDEN) or ticking else 10.0 if training else 30.0
        st.fragment(run_every=every)(_running_job)()
    page.run()


run()
