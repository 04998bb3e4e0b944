"""The live panel's hidden-tab hook in a real Chromium: a tab reported hidden stops drawing (and refreshing), and
draws again as soon as it is shown. AppTest cannot run the hook's JavaScript; this is its test."""

from __future__ import annotations

from tests.e2e.conftest import wait_ready
from tests.played_run import HIDE_TAB_JS, SHOW_TAB_JS, PlayedRun

CHART = "[data-testid='stPlotlyChart']"


def test_a_hidden_tab_stops_drawing_and_draws_again_when_shown(server, page, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("text,label\ngood film,positive\nbad film,negative\n", encoding="utf-8")
    played = PlayedRun(server.workspace, data, total=1_000)  # owned by this test's process, not the server's
    played.log(10, eval_every=5)
    page.goto(f"{server.url}/train?run={played.run.id}")
    wait_ready(page)
    page.locator(CHART).first.wait_for()
    assert page.locator(CHART).count() == 2

    page.evaluate(HIDE_TAB_JS)
    page.get_by_text("in the background").wait_for()
    wait_ready(page)
    assert page.locator(CHART).count() == 0

    played.log(10)
    page.evaluate(SHOW_TAB_JS)
    page.locator(CHART).first.wait_for()
    wait_ready(page)
    assert page.get_by_text("in the background").count() == 0
    assert page.locator("[data-testid='stMain']").get_by_text("Step 20 of 1000").count() == 1  # as on disk now
    played.finish()
