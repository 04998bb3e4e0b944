"""The live page as start.sh serves it (serve.py, with the live route) in a real Chromium: the numbers, the curves
and the sidebar's bar move while the server sends nothing over Streamlit's websocket (no rerun), a new status
message brings a rerun, a hidden tab asks for nothing, and the run's end brings the page Streamlit draws after a
run. AppTest cannot run the browser's JavaScript (ui/live_ticker.js); this is its test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import CHROMIUM, launch_chromium, new_tab, start_server, stop_server_process, wait_ready
from tests.played_run import HIDE_TAB_JS, SHOW_TAB_JS, PlayedRun

pytestmark = pytest.mark.e2e

CHART = "[data-testid='stPlotlyChart']"
ROUTE = "/api/workbench/runs/"

# Whether each live canvas has been drawn on (any pixel not transparent); canvases live in the component's shadow root.
CANVASES_DRAWN_JS = """() => {
  const found = [];
  const walk = (root) => {
    for (const node of root.querySelectorAll("*")) {
      if (node.tagName === "CANVAS") found.push(node);
      if (node.shadowRoot) walk(node.shadowRoot);
    }
  };
  walk(document);
  return found.map((c) => {
    const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i]) return true;
    return false;
  });
}"""


@pytest.fixture
def served(tmp_path):
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"BROWSER TEST NOT RUN: no Chromium at {CHROMIUM}. test.sh installs it (apt-get install chromium).")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    srv = start_server(workspace, tmp_path / "streamlit.log", script="serve.py")
    yield srv
    stop_server_process(srv.process)


def test_the_browser_moves_the_numbers_without_a_rerun_and_reruns_for_a_message_and_the_end(served, tmp_path):
    from playwright.sync_api import sync_playwright

    data = tmp_path / "rows.csv"
    data.write_text("text,label\ngood film,positive\nbad film,negative\n", encoding="utf-8")
    played = PlayedRun(served.workspace, data, total=1_000)  # owned by this test's process, not the server's
    played.log(5)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = new_tab(browser)
        frames: list[int] = []
        asked: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(len(payload))))
        page.on("request", lambda request: asked.append(request.url) if ROUTE in request.url else None)
        try:
            page.goto(f"{served.url}/train?run={played.run.id}")
            wait_ready(page)
            main = page.locator("[data-testid='stMain']")
            sidebar = page.locator("[data-testid='stSidebar']")
            main.get_by_text("Step 5 of 1000").wait_for()
            sidebar.get_by_text("step 5 of 1000").wait_for()
            assert page.locator(CHART).count() == 0  # the live curves are the browser's canvases
            page.wait_for_timeout(1_000)  # the first drawing's messages are in

            before, requests_before = len(frames), len(asked)
            played.log(5)
            main.get_by_text("Step 10 of 1000").wait_for(timeout=30_000)
            sidebar.get_by_text("step 10 of 1000").wait_for(timeout=30_000)
            assert main.get_by_text("120.0").count() == 1  # samples per second, from status.json
            assert len(frames) == before, "the numbers moved by a rerun of the page"
            assert len(asked) > requests_before
            assert page.evaluate(CANVASES_DRAWN_JS) == [True, True]  # the loss and learning-rate curves
            box = main.locator("canvas").first.bounding_box()  # the values under the pointer, as Plotly's hover
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
            main.get_by_text("training loss:").wait_for(timeout=30_000)
            assert main.get_by_text("Optimizer step:").count() == 1

            played.log(5, eval_every=15)  # an evaluation at step 15: its score is drawn by the browser
            main.get_by_text("0.7500").wait_for(timeout=30_000)  # validation accuracy
            main.get_by_text("Step 15 of 1000").wait_for(timeout=30_000)
            assert len(frames) == before, "a score was drawn by a rerun of the page"

            played.run.set_status(message="Saving the model")  # what only the page's Python draws: one rerun
            main.get_by_text("Saving the model").wait_for(timeout=30_000)
            assert len(frames) > before

            # A hidden tab asks for nothing; shown again, it asks at once and draws what happened meanwhile.
            page.evaluate(HIDE_TAB_JS)
            page.wait_for_timeout(500)  # a request already under way may still finish
            hidden_from = len(asked)
            played.log(5)
            page.wait_for_timeout(9_000)  # two polling intervals
            assert len(asked) == hidden_from
            page.evaluate(SHOW_TAB_JS)
            main.get_by_text("Step 20 of 1000").wait_for(timeout=30_000)

            # A run another process starts shows in the sidebar without a reload (its folder is new).
            other = PlayedRun(served.workspace, data, total=50, run_id="other")
            sidebar.get_by_text("other").first.wait_for(timeout=30_000)
            other.finish()

            played.finish()
            page.locator(CHART).first.wait_for(timeout=60_000)  # the whole page again, as after any run
            wait_ready(page)
            assert main.get_by_text("finished").count() >= 1 and page.locator(CHART).count() == 2
            assert sidebar.get_by_text("No training running.").count() == 1
        finally:
            page.context.close()
            browser.close()


def test_the_tune_page_reruns_when_the_search_changes_and_not_in_between(served, tmp_path):
    import subprocess
    import sys

    from playwright.sync_api import sync_playwright

    from tests.unit.test_live_feed import search_record

    data = tmp_path / "rows.csv"
    data.write_text("text,label\ngood film,positive\nbad film,negative\n", encoding="utf-8")
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        store, record = search_record(served.workspace, data, owner.pid)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = new_tab(browser)
            frames: list[int] = []
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(len(payload))))
            try:
                page.goto(f"{served.url}/tune?search={record['id']}")
                wait_ready(page)
                table = page.locator("[data-testid='stDataFrame']")
                table.first.wait_for()
                page.wait_for_timeout(1_000)
                before = len(frames)
                page.wait_for_timeout(9_000)  # two polling intervals: the old page reran four times
                assert len(frames) == before, "the Tune page reran while its search did not change"
                record["state"] = "finished"  # the search ends: the browser sees it and asks for a rerun
                record["message"] = "Search finished."
                store.save(record)
                page.get_by_text("Search finished.").wait_for(timeout=30_000)
                assert len(frames) > before
            finally:
                page.context.close()
                browser.close()
    finally:
        owner.kill()
        owner.wait()
