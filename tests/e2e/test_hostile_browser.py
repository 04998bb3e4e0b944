"""Hostile input in a real browser (issue 19): links and images planted in every outside input stay text.

Planted in: the upload's file name (and a saved dataset's original name), column names, class labels, text
rows (so the Playground pre-fills with them), typed text, and the ?run= value of every page. Every page is
then read from the DOM: no ``a[href]`` or ``img[src]`` (nor plotly's SVG links) may point off this server,
the planted strings must be visible as text, every request the pages make stays on this machine, and each
response refuses framing (the server runs as start.sh runs it: ``streamlit run serve.py``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import tiny_run_config, toy_sentiment_rows
from tests.e2e.conftest import SCREENSHOTS, wait_ready

pytestmark = pytest.mark.e2e

EVIL = "evil.example"
LINK = f"[Session expired, sign in again](https://{EVIL}/login)"
IMAGE = f"![pixel](https://{EVIL}/pixel.png)"
RAW = f"<img src=https://{EVIL}/raw.png> <a href=https://{EVIL}/a>click</a> https://{EVIL}/bare www.{EVIL}"
# One label plotly would turn into a link, one markdown would (Compare shows the predicted label as a metric).
LABELS = (f"<a href='https://{EVIL}/good'>good</a>", f"[bad](https://{EVIL}/bad)")
# A file name holds no "/": the link and the image it plants use scheme-relative-free URLs.
SAVED_NAME = f"[Sign in again](https:{EVIL})![pixel](https:{EVIL}).csv"
PAGES = ["", "data", "train", "tune", "evaluate", "playground", "compare", "runs"]

OUTSIDE_JS = """() => {
    // Every link and image the page holds, in HTML and in SVG (plotly draws <a> inside its charts).
    const here = location.host;
    const urls = [];
    for (const a of document.querySelectorAll('a')) urls.push(a.getAttribute('href') || a.getAttribute('xlink:href'));
    for (const i of document.querySelectorAll('img, image, source, iframe'))
        urls.push(i.getAttribute('src') || i.getAttribute('href') || i.getAttribute('xlink:href') || i.getAttribute('srcset'));
    return urls.filter(u => u && !u.startsWith('data:') && !u.startsWith('blob:') && !u.startsWith('#'))
               .filter(u => { try { return new URL(u, location.href).host !== here; } catch (e) { return true; } });
}"""


def hostile_rows() -> str:
    rows = []
    for i, (text, label) in enumerate(toy_sentiment_rows(120, seed=5)):
        planted = (LINK, IMAGE, RAW)[i % 3] if i % 2 else ""
        rows.append(f'"{text} {planted}",{LABELS[int(label == "positive")]},{i}')
    return "\n".join(rows) + "\n"


@pytest.fixture
def hostile_workspace(tmp_path: Path, tiny_bert_dir) -> Path:
    """A workspace with a dataset and a finished run whose labels, texts and names are hostile."""
    from core.datasets import DatasetSettings, DatasetStore
    from core.runs import RunStore
    from core.training import train

    ws = tmp_path / "workspace"
    csv = tmp_path / "rows.csv"
    csv.write_text(f'text,label,"{LINK}"\n' + hostile_rows(), encoding="utf-8")
    DatasetStore(ws / "datasets").save(
        "planted", csv, SAVED_NAME, DatasetSettings(text_column="text", label_column="label")
    )
    cfg = tiny_run_config(csv, tiny_bert_dir, max_steps=4, eval_every=2, log_every=1)
    cfg.data.text_column, cfg.data.label_column = "text", "label"
    result = train(cfg, RunStore(ws / "runs").create(cfg, run_id="planted-run"))
    assert result.state == "finished", result.message
    return ws


@pytest.fixture
def hostile_server(hostile_workspace, tmp_path):
    from tests.e2e.conftest import start_server, stop_server_process

    srv = start_server(hostile_workspace, tmp_path / "streamlit.log", script="serve.py")
    yield srv
    stop_server_process(srv.process)


@pytest.fixture
def browser_page(hostile_server):
    from tests.e2e.conftest import CHROMIUM, launch_chromium, new_tab

    if not Path(CHROMIUM).exists():
        pytest.skip(f"BROWSER TEST NOT RUN: no Chromium at {CHROMIUM}.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        tab = new_tab(browser)
        yield tab
        tab.context.close()
        browser.close()


def check_page(page, what: str, requests: list[str]) -> str:
    wait_ready(page)
    outside = page.evaluate(OUTSIDE_JS)
    assert not outside, (what, outside)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"hostile-{what}.png"), full_page=True)
    off = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")]
    off = [u for u in off if urlparse(u).hostname not in ("127.0.0.1", "localhost")]
    assert not off, (what, off)
    # The word joiner ui.safe puts into bare URLs is invisible; compare the text without it.
    return page.inner_text("body").replace("\u2060", "")


def test_planted_links_and_images_stay_text_on_every_page(hostile_server, browser_page, tmp_path):
    page, url = browser_page, hostile_server.url
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    reply = page.goto(url)
    assert reply.headers.get("x-frame-options") == "DENY"
    assert "frame-ancestors 'none'" in reply.headers.get("content-security-policy", "")
    check_page(page, "home", requests)

    # ?run= with a link and an image, on every page.
    for name in PAGES:
        page.goto(f"{url}/{name}?run={LINK}{IMAGE}")
        body = check_page(page, f"run-param-{name or 'home'}", requests)
        if name in ("train", "evaluate", "playground", "runs"):
            assert "Session expired, sign in again](https://evil.example/login)" in body, name

    # Data: an upload whose name, columns, labels and rows carry links and images; the saved dataset's name.
    page.goto(f"{url}/data")
    wait_ready(page)
    body = check_page(page, "data-saved", requests)
    page.get_by_text("Saved datasets").first.click()
    wait_ready(page)
    assert SAVED_NAME in check_page(page, "data-list", requests)
    upload = tmp_path / "[Sign in](https:evil.example) ![p](https:evil.example).csv"
    upload.write_text(f'text,label,"{LINK}"\n' + hostile_rows(), encoding="utf-8")
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(upload))
    page.get_by_role("heading", name="Data check").wait_for()
    body = check_page(page, "data-upload", requests)
    assert "[Sign in](https:evil.example)" in body

    # Evaluate: confusion matrix and per-class chart with the hostile labels.
    page.goto(f"{url}/evaluate?run=planted-run")
    wait_ready(page)
    page.get_by_role("button", name="Evaluate").click()
    page.locator(".js-plotly-plot").first.wait_for()
    check_page(page, "evaluate", requests)

    # Playground: pre-filled from the test split (hostile rows), predicted, charts of hostile labels.
    page.goto(f"{url}/playground?run=planted-run")
    wait_ready(page)
    page.get_by_role("button", name="Predict").click()
    page.locator(".js-plotly-plot").first.wait_for()
    check_page(page, "playground", requests)

    # Compare: typed text; the predicted label is a metric value.
    page.goto(f"{url}/compare?run=planted-run")
    wait_ready(page)
    page.get_by_role("textbox", name="Text", exact=True).fill(f"{LINK} {IMAGE}")
    page.get_by_role("button", name="Answer with every model").click()
    page.locator("[data-testid='stMetric']").first.wait_for()
    body = check_page(page, "compare", requests)
    assert LABELS[0] in body or LABELS[1] in body

    for name in ("train", "runs"):
        page.goto(f"{url}/{name}?run=planted-run")
        check_page(page, f"{name}-run", requests)
    assert requests, "the request recorder saw nothing"
