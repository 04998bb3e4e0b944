"""Tried as a new user would: from the server start.sh runs to a fine-tuned sentiment classifier tried in
the Playground, counting clicks and time. A script, not a test (pytest does not collect this file name).

    .venv/bin/python tests/e2e/new_user_walkthrough.py [--threads N]

Clicks counted: every mouse click a person makes after opening Home (typing is not a click). The path:
Home "Try the sample" -> Train "Start training" (defaults: built-in MiniLM, 1 epoch) -> wait -> "Try it in the
Playground" -> "Predict". With --threads N it also opens "Advanced settings" and types N into "Num threads"
(one more click: the field is typed into). Prints each click, the seconds from the first click to the prediction, and the load.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.conftest import SCREENSHOTS, launch_chromium, start_server, stop_server_process, wait_ready  # noqa: E402

OUT = SCREENSHOTS.parent / "walkthrough"


def main() -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="set Train > Advanced > Num threads (0: leave it)")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="walkthrough-"))
    (tmp / "workspace").mkdir()
    server = start_server(tmp / "workspace", tmp / "streamlit.log")
    clicks: list[str] = []
    shots: list[Path] = []

    def shot(page, name: str) -> None:
        path = OUT / f"{len(shots) + 1}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    def click(page, what: str, locator) -> None:
        locator.click()
        clicks.append(what)
        wait_ready(page, timeout=240_000)

    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(240_000)
            page.goto(server.url)
            wait_ready(page)
            shot(page, "home")
            t0 = time.monotonic()
            click(page, "Home: Try the sample", page.get_by_role("button", name="Try the sample"))
            page.get_by_role("button", name="Start training").wait_for()
            shot(page, "train-form")
            if args.threads:
                click(page, "Train: open Advanced settings", page.get_by_text("Advanced settings"))
                field = page.get_by_role("spinbutton", name="Num threads", exact=True)
                field.fill(str(args.threads))
                field.press("Enter")  # typing, not a click
                wait_ready(page)
            click(page, "Train: Start training", page.get_by_role("button", name="Start training"))
            page.locator("h3").filter(has_text="Run ").wait_for()
            t_start = time.monotonic()
            page.wait_for_timeout(8000)
            shot(page, "train-live")
            playground = page.get_by_role("button", name="Try it in the Playground")
            playground.wait_for(timeout=600_000)  # appears when the run has finished
            t_trained = time.monotonic()
            page.wait_for_timeout(1500)  # let the scores table paint (a canvas) before the screenshot
            shot(page, "train-finished")
            click(page, "Train: Try it in the Playground", playground)
            click(page, "Playground: Predict", page.get_by_role("button", name="Predict"))
            answer = page.locator("[data-testid='stMarkdownContainer']").filter(
                has_text=re.compile(r"(positive|negative) \(\d+\.\d%\)")
            )
            answer.first.wait_for()
            t_done = time.monotonic()
            shot(page, "playground")
            predictions = [t.strip() for t in answer.all_inner_texts()]
            browser.close()
    finally:
        stop_server_process(server.process)

    print(f"clicks after opening Home ({len(clicks)}):")
    for i, what in enumerate(clicks, 1):
        print(f"  {i}. {what}")
    print(f"predictions: {predictions}")
    print(
        f"time from the first click to the prediction: {t_done - t0:.0f} s (training {t_trained - t_start:.0f} s of it)"
    )
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    print("screenshots:")
    for path in shots:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
