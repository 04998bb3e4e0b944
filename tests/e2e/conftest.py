"""A real `streamlit run` server and a real Chromium page for the end-to-end test.

Shared with tests/e2e/new_user_walkthrough.py (a script, not a test), so both drive the app the same way.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


@dataclass
class Server:
    url: str
    workspace: Path
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workspace: Path, log: Path, timeout: float = 240.0, script: str = "app.py") -> Server:
    """`streamlit run app.py` on a free port, with its own workspace (``script="serve.py"``: as start.sh runs it,
    with the security headers)."""
    port = free_port()
    env = dict(os.environ, WORKBENCH_HOME=str(workspace), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.update(TOKENIZERS_PARALLELISM="false", HF_HUB_DISABLE_TELEMETRY="1")
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port)]
    cmd += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    out = log.open("wb")
    # A session of its own, so the finaliser can end the server and anything it spawned in one signal.
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return Server(url, workspace, process, log)
        except OSError:
            time.sleep(0.3)
    stop_server_process(process)
    raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop_server_process(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# How long a browser wait may take before it counts as a hang. Every wait is on a condition, so a generous
# backstop costs nothing when things work, and a 2-core machine under load can be many times slower than a quiet one.
BACKSTOP_MS = 300_000
# Counts the script runs the page has finished (the app's script state going back to "notRunning"), so a wait
# after a click knows whether the rerun it caused has finished, however late that rerun started.
COUNT_RUNS = """
window.__stRunsDone = 0;
new MutationObserver(records => {
  for (const r of records) {
    if (r.oldValue !== "notRunning" && r.target.getAttribute("data-test-script-state") === "notRunning") {
      window.__stRunsDone += 1;
    }
  }
}).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                      attributeFilter: ["data-test-script-state"]});
"""
STARTED_OR_DONE = """seen => window.__stRunsDone > seen ||
  document.querySelector("[data-testid='stApp']")?.getAttribute("data-test-script-state") !== "notRunning" """
DONE = f"""seen => window.__stRunsDone > seen && document.querySelector("{READY}") !== null"""


def new_tab(browser, **context_options):
    """A page in a fresh context: the tests' viewport, the backstop timeout and the script-run counter."""
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 1000}, **context_options})
    context.set_default_timeout(BACKSTOP_MS)
    context.add_init_script(COUNT_RUNS)
    return context.new_page()


def wait_ready(page, timeout: float = BACKSTOP_MS, start_within: float = 3_000) -> None:
    """Wait until the script run caused by the last action has finished (then the page is complete).

    The run is told apart from the one before by the page's own count of finished runs, not by a fixed pause.
    An action that starts no run (a page that was already complete) is known by no run starting within
    ``start_within`` ms: a rerun shows as started in the browser the moment the widget changes.
    """
    seen = page.evaluate("window.__stSeen || 0")
    try:
        page.wait_for_function(STARTED_OR_DONE, arg=seen, timeout=start_within)
    except PlaywrightTimeout:
        pass  # nothing started: the page is as complete as it will get
    else:
        page.wait_for_function(DONE, arg=seen, timeout=timeout)
    page.wait_for_selector(READY, timeout=timeout)
    page.evaluate("window.__stSeen = window.__stRunsDone")


@pytest.fixture
def server(tmp_path: Path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    srv = start_server(workspace, tmp_path / "streamlit.log")
    yield srv
    stop_server_process(srv.process)


@pytest.fixture
def page(server):
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(
            f"BROWSER TEST NOT RUN: no Chromium at {CHROMIUM}. test.sh installs it with "
            "`apt-get install -y chromium`; run that, then this test."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        tab = new_tab(browser)
        yield tab
        tab.context.close()
        browser.close()


def choose_local_model(page, folder, lang: str = "en") -> None:
    """On the Train page: pick "Another model" and give it a local model folder (the tests' tiny models).
    ``lang``: the page's language; the labels come from its catalog (locales/<lang>/data_train.json)."""
    from core.i18n import t

    page.get_by_text(t("trainpage.model.custom", lang)).click()
    wait_ready(page)
    source = page.get_by_role("textbox", name=t("trainpage.model.source", lang), exact=True)
    source.fill(str(folder))
    source.press("Enter")
    wait_ready(page)
