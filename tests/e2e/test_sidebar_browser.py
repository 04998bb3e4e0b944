"""The sidebar's running-job line in a real browser: when a run ends, its progress bar and "Open the live view"
button go at the same moment as "No training running." appears, never shown together.

Before the fix, the sidebar fragment wrote its lines one element at a time. On the rerun after a run finished, the
new caption replaced the first line at once while the old bar and button stayed on screen (greyed, stale) until the
whole page script had finished: seconds on a busy Train page, seen in screenshots as "No training running." above
"step 70 of 120". The run here is made by hand (a status file owned by a `sleep` process), so no training is needed;
the test samples the sidebar's text every 20 ms through the whole change, in the browser itself.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from core.config import RunConfig
from core.runs import RunStatus, RunStore, process_started
from tests.e2e.conftest import READY, SCREENSHOTS

pytestmark = pytest.mark.e2e

SIDEBAR = "[data-testid='stSidebar']"
# Started in the page and left running (not awaited): collect the sidebar's text every 20 ms until it says no run
# is training, then for 5 s more, and then set window.sidebarSeen.
WATCH = """([sidebar, none]) => { (async () => {
  const seen = []; let end = Date.now() + 120000; let settled = false;
  while (Date.now() < end) {
    const text = document.querySelector(sidebar).innerText;
    seen.push(text);
    if (text.includes(none) && !settled) { settled = true; end = Date.now() + 5000; }
    await new Promise(resolve => setTimeout(resolve, 20));
  }
  window.sidebarSeen = seen;
})(); }"""


@pytest.fixture
def owner():
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def test_a_finished_run_leaves_no_stale_progress_in_the_sidebar(server, page, owner):
    store = RunStore(server.workspace / "runs")
    config = {"data": {"train_path": "train.csv"}, "model": {"source": "tiny", "task": "classification"}}
    run = store.create(RunConfig.from_dict(config), "sidebar-run")
    owned = {"pid": owner.pid, "pid_started": process_started(owner.pid), "host": socket.gethostname()}
    run.set_status(RunStatus.RUNNING, step=70, total_steps=120, **owned)

    page.goto(f"{server.url}/train?run=sidebar-run")
    page.wait_for_selector(READY)
    sidebar = page.locator(SIDEBAR)
    page.wait_for_function(f'document.querySelector("{SIDEBAR}").innerText.includes("step 70 of 120")')
    assert sidebar.get_by_role("button", name="Open the live view").count() == 1

    page.evaluate(WATCH, [SIDEBAR, "No training running."])
    run.set_status(RunStatus.FINISHED, step=120, total_steps=120)
    page.wait_for_function("window.sidebarSeen !== undefined")
    seen = page.evaluate("window.sidebarSeen")

    assert "No training running." in seen[-1], seen[-1]
    both = [text for text in seen if "No training running." in text and "Open the live view" in text]
    assert not both, f"{len(both)} of {len(seen)} samples showed the finished run's bar under the new line: {both[0]}"
    assert sidebar.locator("[data-testid='stProgress']").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "sidebar-after-run.png"))
