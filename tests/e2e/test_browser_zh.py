"""Chromium with its locale set to zh-CN: the app opens in Chinese, a GBK-encoded Chinese CSV (what Chinese Excel
exports) goes from upload to a prediction, and every page is screenshotted in Chinese with something on it
(test-artifacts/screenshots/zh-<page>.png). Needs a CJK font for the screenshots (Debian's fonts-noto-cjk)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from core import i18n
from core.data import read_table
from tests.conftest import tiny_run_config
from tests.e2e.conftest import CHROMIUM, choose_local_model, launch_chromium, new_tab, wait_ready
from tests.e2e.test_browser import shot
from ui import nav

pytestmark = pytest.mark.e2e
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "samples" / "sentiment_zh.csv"


@pytest.fixture
def page_zh(server):
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"BROWSER TEST NOT RUN: no Chromium at {CHROMIUM} (apt-get install -y chromium).")
    fonts = (
        subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
        if shutil.which("fc-list")
        else ""
    )
    if not fonts.strip():
        print("\nNo CJK font installed (apt-get install -y fonts-noto-cjk): screenshots will show boxes.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        tab = new_tab(browser, locale="zh-CN")  # the tests' viewport, backstop and script-run counter
        yield tab
        tab.context.close()
        browser.close()


def test_chinese_browser_from_a_gbk_upload_to_a_prediction(server, page_zh, tmp_path, tiny_bert_dir):
    page = page_zh
    rows = read_table(SAMPLE).frame.head(200)
    csv = tmp_path / "评论.csv"
    csv.write_bytes(rows.to_csv(index=False).encode("gbk"))

    # The browser's language picks Chinese, and the URL keeps it.
    page.goto(server.url)
    wait_ready(page)
    page.get_by_role("heading", name="微调工作台").wait_for()
    assert "lang=zh" in page.url
    shot(page, "zh-1-home")

    # Data: the GBK file reads right, the Chinese headers are guessed, the findings speak Chinese.
    page.get_by_role("link", name="数据").first.click()
    wait_ready(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(csv))
    page.get_by_role("heading", name=zh("datapage.columns")).wait_for()
    wait_ready(page)
    page.get_by_text("GB18030/GBK").first.wait_for()
    # A text of the file in its own characters (the preview grid is drawn on a canvas; its cells stay hidden).
    page.get_by_text(rows["文本"].iloc[0]).first.wait_for(state="attached")
    page.get_by_text("字数：").first.wait_for()
    page.get_by_text("适合中文的模型：").first.wait_for()
    page.get_by_role("button", name=zh("datapage.save.button")).click()
    wait_ready(page)
    page.get_by_text(zh("datapage.save.done", name="").split("**")[0].strip()).wait_for()
    shot(page, "zh-2-data")

    # Train a tiny local model for a few steps; the run's state badge is in Chinese.
    page.get_by_role("button", name=zh("datapage.save.train")).click()
    wait_ready(page)
    page.get_by_text("适合中文的模型：").first.wait_for()
    choose_local_model(page, tiny_bert_dir, "zh")
    page.get_by_text(zh("trainpage.advanced"), exact=True).click()
    for label, value in ((zh("trainform.max_steps"), 20), (zh("trainform.num_threads"), 1)):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(str(value))
        field.press("Enter")
        wait_ready(page)
    page.get_by_role("button", name=zh("trainpage.start")).click()
    wait_ready(page)
    page.locator("h3").filter(has_text="已完成").wait_for()
    wait_ready(page)
    shot(page, "zh-3-train")

    # Playground: a Chinese sentence in, one of the Chinese labels out.
    page.get_by_role("button", name=zh("live.to_playground")).click()
    wait_ready(page)
    texts = page.get_by_role("textbox", name="要分类的文本（每行一条）", exact=True)
    texts.fill("这家餐厅的味道很好，服务也很热情。")
    page.get_by_role("button", name="预测", exact=True).click()
    wait_ready(page)
    answer = page.locator("[data-testid='stMarkdownContainer']").filter(
        has_text=re.compile(r"(正面|负面)（\d+\.\d%）：这家餐厅的味道很好")
    )
    answer.first.wait_for()
    shot(page, "zh-4-playground")
    assert not page.locator("[data-testid='stException']").count()


def zh(key: str, **params) -> str:
    """A label as the Chinese page shows it (the catalog's text, so rewording it does not break the test)."""
    return i18n.t(key, "zh", **params)


# The heading each page is drawn under in Chinese: its title from the catalog (Home: the app's name).
TITLE_KEYS = {ref.path: "app.title" if ref == nav.HOME else f"nav.page.{ref.path[6:-3]}" for ref in nav.ALL}


DATASET = "reviews-zh"
# Streamlit loads a widget's code the first time the page shows one, with a grey placeholder until then.
WIDGETS_LOADED = """() => !document.querySelector("[data-testid='stSkeleton'], [data-testid='stAppSkeleton']")"""
# Every chart on the page has drawn its SVG (plotly draws after the script run has ended).
CHARTS_DRAWN = """() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
    .every(chart => chart.querySelector('.main-svg'))"""
# How tall the page's content is: Streamlit scrolls inside its main block, not the document.
CONTENT_HEIGHT = """() => Math.max(...[...document.querySelectorAll(
    "[data-testid='stMain'], [data-testid='stMainBlockContainer'], [data-testid='stAppViewContainer']")]
    .map(e => e.scrollHeight))"""


def whole_page_shot(page, name: str) -> Path:
    """The whole page, charts drawn: a full-page screenshot sees only the window, since the content scrolls inside
    Streamlit's main block, so the window is made as tall as the content for the shot."""
    page.wait_for_function(WIDGETS_LOADED)
    page.wait_for_function(CHARTS_DRAWN)
    size = page.viewport_size
    height = min(max(int(page.evaluate(CONTENT_HEIGHT)), size["height"]), 8_000)
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_function(CHARTS_DRAWN)
    try:
        return shot(page, name)
    finally:
        page.set_viewport_size(size)


def _chinese_workspace(workspace: Path, model_dir: Path) -> str:
    """The bundled Chinese sentiment sample saved as a dataset, and a tiny run trained on it (a few steps)."""
    from core.datasets import DatasetSettings, DatasetStore
    from core.runs import RunStore
    from core.training import train

    settings = DatasetSettings(task="classification", text_column="文本", label_column="标签")
    DatasetStore(workspace / "datasets").save(DATASET, SAMPLE, SAMPLE.name, settings, rows=400)
    cfg = tiny_run_config(SAMPLE, model_dir, max_steps=4, eval_every=2, log_every=1)
    cfg.data.text_column, cfg.data.label_column, cfg.name = "文本", "标签", "中文情感"
    run = RunStore(workspace / "runs").create(cfg, run_id="zh-run")
    assert train(cfg, run).state == "finished"
    return run.id


def test_every_page_in_chinese_screenshotted(server, page_zh, tiny_bert_dir):
    """Each page of ui/nav.py, opened as a Chinese reader would, with a dataset and a finished run to show; the
    screenshot is taken once the page's Chinese heading is there and its script has finished."""
    page = page_zh
    run_id = _chinese_workspace(server.workspace, tiny_bert_dir)
    query = {nav.TRAIN: f"dataset={DATASET}", nav.EVALUATE: f"run={run_id}", nav.PLAYGROUND: f"run={run_id}"}
    query[nav.RUNS] = f"run={run_id}"
    for ref in nav.ALL:
        slug = "" if ref == nav.HOME else ref.path[6:-3]
        page.goto(f"{server.url}/{slug}?lang=zh&{query.get(ref, '')}")
        title = i18n.t(TITLE_KEYS[ref.path], "zh")
        heading = page.locator("h1").filter(has_text=re.compile(f"^{re.escape(title)}$"))
        heading.first.wait_for()
        wait_ready(page)
        if ref == nav.EVALUATE:  # scored, so the screenshot shows the metrics, the charts and the mistakes
            page.get_by_role("button", name="开始评估", exact=True).click()
            wait_ready(page)
            page.get_by_role("heading", name="判错的样本").wait_for()
            wait_ready(page)
        elif ref == nav.PLAYGROUND:  # a Chinese sentence answered with one of the Chinese labels
            page.get_by_role("textbox", name="要分类的文本（每行一条）", exact=True).fill("服务很差，再也不来了。")
            page.get_by_role("button", name="预测", exact=True).click()
            wait_ready(page)
            page.get_by_text(re.compile(r"(正面|负面)（\d+\.\d%）：服务很差")).first.wait_for()
        assert not page.locator("[data-testid='stException']").count(), ref.title
        whole_page_shot(page, f"zh-{slug or 'home'}")
