"""App cold start: from `streamlit run app.py` to the health endpoint answering, to the Home page's first paint in
a real browser, and to Home's script run finishing (the hardware line, which imports torch, is drawn last).

    .venv/bin/python bench/cold_start.py [--repeats 3]

The browser (Debian's chromium driven by Playwright) is started before the server, so its own start-up is not
counted: the clock starts when the server process is spawned. A fresh empty workspace each time. Where no
chromium is installed, Home's script run under streamlit.testing's AppTest is timed instead, as a proxy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=0.5) as r:
            return r.status == 200
    except OSError:
        return False


def one_start(page) -> dict[str, float]:
    port = _free_port()
    ws = str(common.scratch_dir("bench-cold-"))
    env = {**os.environ, "WORKBENCH_HOME": ws, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=common.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _healthy(port):
            if proc.poll() is not None or time.perf_counter() - t0 > 60:
                raise RuntimeError("streamlit did not start")
            time.sleep(0.02)
        health = time.perf_counter() - t0
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("heading", name="Fine-Tuning Workbench").wait_for(timeout=60_000)
        paint = time.perf_counter() - t0
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
        page.get_by_text("CPU").first.wait_for(timeout=60_000)
        done = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(ws, ignore_errors=True)
    return {"health": health, "paint": paint, "done": done}


def browser_runs(repeats: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        out = []
        for _ in range(repeats):
            context = browser.new_context()  # a fresh tab with no cache: a first visit
            out.append(one_start(context.new_page()))
            context.close()
        browser.close()
    return out


def apptest_runs(repeats: int) -> list[dict[str, float]]:
    """Proxy without a browser: a fresh interpreter runs Home through AppTest (imports included)."""
    code = (
        "import time; t=time.perf_counter(); from streamlit.testing.v1 import AppTest; "
        "at=AppTest.from_file('app.py', default_timeout=60); at.run(); "
        "assert not at.exception, at.exception; print(time.perf_counter()-t)"
    )
    out = []
    for _ in range(repeats):
        ws = str(common.scratch_dir("bench-cold-"))
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], cwd=common.ROOT, capture_output=True, text=True,
                             env={**os.environ, "WORKBENCH_HOME": ws, "HF_HUB_OFFLINE": "1"}, check=True)  # fmt: skip
        out.append({"health": None, "paint": None, "done": time.perf_counter() - t0,
                    "script": float(res.stdout.strip().splitlines()[-1])})  # fmt: skip
        shutil.rmtree(ws, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--apptest", action="store_true", help="use the AppTest proxy even if chromium exists")
    opts = parser.parse_args()
    print(f"load average before: {common.load_average():.1f}")
    use_browser = CHROMIUM and not opts.apptest
    runs = browser_runs(opts.repeats) if use_browser else apptest_runs(opts.repeats)
    rows = []
    for key, label in (("health", "/_stcore/health answers"), ("paint", "Home's title painted (browser)"),
                       ("done", "Home fully rendered (hardware line)" if use_browser else
                        "AppTest: process start to Home's script run done (proxy)")):  # fmt: skip
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            rows.append({"what": label, "median": statistics.median(values), "min": min(values), "max": max(values)})
    print(f"\nCold start, {opts.repeats} starts, {'chromium via Playwright' if use_browser else 'AppTest proxy'}")
    print(
        common.table(
            rows,
            [
                ("what", "from `streamlit run` to", "s"),
                ("median", "median s", ".2f"),
                ("min", "min s", ".2f"),
                ("max", "max s", ".2f"),
            ],
        )
    )
    print(f"load average after: {common.load_average():.1f}")


if __name__ == "__main__":
    main()
