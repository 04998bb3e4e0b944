"""The live panel sends the browser only what changed: the curves have a fragment and a slower timer of their own
(the numbers' refresh sends no figure), an unchanged chart is the same bytes, curves are redrawn at most every
CHART_REFRESH_S while a run trains (at their next refresh for a new evaluation, at once when it ends), and a hidden
tab draws nothing."""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from tests.app.conftest import fragment_timers, no_exception, open_app
from tests.played_run import PlayedRun
from ui import keys
from ui.live import CHART_REFRESH_S, REFRESH_S


def charts(at) -> list[str]:
    """The plotly specifications the page sends, as the bytes that are hashed to decide whether to redraw."""
    return [chart.proto.spec for chart in at.get("plotly_chart")]


def last_step(spec: str) -> float:
    """The last x of the first trace (plotly sends arrays as typed base64 when they come from numpy)."""
    x = json.loads(spec)["data"][0]["x"]
    if isinstance(x, dict):
        x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x["dtype"]))
    return float(x[-1])


@pytest.fixture
def played(workspace, toy_csv):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield PlayedRun(workspace, toy_csv, owner=owner.pid)
    finally:
        owner.kill()
        owner.wait()


def test_charts_are_redrawn_only_with_new_points_and_at_most_every_few_seconds(played, feed_clock):
    played.log(3)
    at = open_app("views/train.py", run=played.run.id)
    no_exception(at)
    first = charts(at)
    assert len(first) == 2 and last_step(first[0]) == 3

    # No new metrics line: every refresh sends the very same figures.
    for _ in range(3):
        feed_clock.advance(REFRESH_S)
        at.run()
        assert charts(at) == first
    progress = at.progress[0].value

    # The first new points after a quiet spell are drawn at the next refresh.
    played.log(5)
    feed_clock.advance(REFRESH_S)
    at.run()
    no_exception(at)
    drawn = charts(at)
    assert last_step(drawn[0]) == 8 and at.progress[0].value > progress

    # More points within CHART_REFRESH_S of that drawing: the numbers move, the charts are the same bytes.
    progress = at.progress[0].value
    played.log(2)
    feed_clock.advance(REFRESH_S)
    at.run()
    assert at.progress[0].value > progress
    assert charts(at) == drawn

    # Once the charts are CHART_REFRESH_S old, the next refresh draws the new points.
    feed_clock.advance(CHART_REFRESH_S)
    at.run()
    redrawn = charts(at)
    assert last_step(redrawn[0]) == played.step == 10

    # A new evaluation is drawn at the next refresh, whatever the charts' age.
    played.log(1)
    played.evaluate()
    feed_clock.advance(REFRESH_S)
    at.run()
    with_eval = charts(at)
    assert with_eval != redrawn and len(json.loads(with_eval[0])["data"]) == 2  # training and validation loss


def test_the_numbers_refresh_sends_no_figure_and_the_curves_refresh_more_slowly(played, monkeypatch):
    """Which fragment draws the charts, and each fragment's timer (a figure sent again costs the browser about as
    much as a new drawing: bench/live_page.py --synthetic)."""
    import streamlit

    real_fragment, real_chart = streamlit.fragment, streamlit.plotly_chart
    timers: dict[str, float | None] = {}
    running: list[str] = []
    drawn_in: list[str | None] = []

    def fragment(func=None, *, run_every=None):
        def wrap(body):
            timers[body.__name__] = run_every

            @functools.wraps(body)  # the same name and module: Streamlit tells fragments apart by them
            def inner(*args, **kwargs):
                running.append(body.__name__)
                try:
                    return body(*args, **kwargs)
                finally:
                    running.pop()

            return real_fragment(inner, run_every=run_every)

        return wrap(func) if func is not None else wrap

    def chart(*args, **kwargs):
        drawn_in.append(running[-1] if running else None)
        return real_chart(*args, **kwargs)

    monkeypatch.setattr(streamlit, "fragment", fragment)
    monkeypatch.setattr(streamlit, "plotly_chart", chart)
    played.log(3)
    at = open_app("views/train.py", run=played.run.id)
    no_exception(at)
    assert len(charts(at)) == 2
    assert (timers["panel"], timers["curves"]) == (REFRESH_S, CHART_REFRESH_S) and CHART_REFRESH_S > REFRESH_S
    assert drawn_in and set(drawn_in) == {"curves"}


def test_the_run_ending_draws_its_last_points_at_once(played, feed_clock):
    played.log(4)
    at = open_app("views/train.py", run=played.run.id)
    drawn = charts(at)
    played.log(6)
    played.run.set_status("finished", step=played.step)
    feed_clock.advance(REFRESH_S)
    at.run()
    at.run()  # the timed rerun that sees the end reruns the page once, without the timer
    no_exception(at)
    final = charts(at)
    assert last_step(drawn[0]) == 4 and last_step(final[0]) == played.step == 10


def test_a_hidden_tab_draws_nothing_until_it_is_shown_again(played, feed_clock, monkeypatch):
    """The hook's state as the browser would report it (its JavaScript runs only in a browser: test_browser)."""
    import ui.live

    hidden = {"now": False}
    mounted: list[dict] = []

    def hook(**kwargs):
        mounted.append(kwargs)
        return SimpleNamespace(hidden=hidden["now"])

    monkeypatch.setattr(ui.live, "_tab_hook", hook)
    played.log(3)
    at = open_app("views/train.py", run=played.run.id)
    assert len(charts(at)) == 2 and mounted[-1]["key"] == keys.tab_hook(played.run.id)
    assert mounted[-1]["on_hidden_change"] is not None  # without a callback the state is not reported
    hidden["now"] = True
    played.log(3)
    feed_clock.advance(REFRESH_S)
    at.run()
    no_exception(at)
    assert charts(at) == [] and not at.metric
    assert any("background" in c.value for c in at.caption)
    hidden["now"] = False
    at.run()
    assert len(charts(at)) == 2 and any(m.label == "Samples per second" for m in at.metric)


def test_with_the_live_route_the_browser_draws_the_numbers_and_no_timer_runs(played, feed_clock, monkeypatch):
    """Served by serve.py: the numbers, the curves and the sidebar's bar are the browser's (ui/live_ticker.js, run in
    a real browser by tests/e2e/test_live_ticker_browser.py); the page's Python reruns when the run's signature
    changes (the browser asks), and the run's end gives back the charts drawn by Streamlit."""
    import ui.live_ticker
    from core.curves import CurveFeed
    from core.live_feed import live_snapshot
    from ui import live_api

    timers = fragment_timers(monkeypatch)
    mounted: dict[str, dict] = {}
    real_component = ui.live_ticker._component

    def component(**kwargs):
        mounted[kwargs["data"]["part"]] = kwargs
        return real_component(**kwargs)

    monkeypatch.setattr(ui.live_ticker, "_component", component)
    monkeypatch.setitem(live_api._state, "mounted", True)

    def signed() -> str:
        return live_snapshot(played.run, CurveFeed(played.run.metrics_path, min_interval=0))["signature"]

    played.log(3)
    at = open_app("views/train.py", run=played.run.id)
    no_exception(at)
    assert timers["panel"] is None and timers["curves"] is None and timers["_running_job"] is None
    assert charts(at) == [] and not at.metric and not at.progress  # the browser draws them
    assert set(mounted) == {"numbers", "curves", "bar"}
    numbers = mounted["numbers"]
    assert numbers["data"]["url"] == f"/api/workbench/runs/{played.run.id}/live"
    assert numbers["data"]["watch"] == {"signature": signed()} and numbers["on_changed_change"] is not None
    assert numbers["data"]["text"]["progress"] == "Step {step} of {total}"  # a template the browser fills
    assert numbers["data"]["text"]["headlines"]["val_accuracy"] == "Validation accuracy"
    assert mounted["bar"]["data"]["watch"] == {
        "active": True,
        "runs": live_api.runs_version(str(played.run.dir.parent)),
    }
    assert mounted["curves"]["data"]["x"] == "step" and mounted["curves"]["data"]["watch"] == {}

    before = signed()
    played.log(2, eval_every=5)  # an evaluation's score is the browser's to draw: no rerun for it
    assert signed() == before
    played.run.set_status(message="Saving the model")  # a new message: the browser asks for this rerun
    at.run()
    no_exception(at)
    assert mounted["numbers"]["data"]["watch"] == {"signature": signed()} != {"signature": before}
    assert any("Saving the model" in c.value for c in at.caption)

    played.finish()
    feed_clock.advance(REFRESH_S)
    at.run()
    at.run()
    no_exception(at)
    assert len(charts(at)) == 2 and any(m.label == "Samples per second" for m in at.metric)
