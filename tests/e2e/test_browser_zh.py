"""Chromium with its locale set to zh-CN: the app opens in Chinese, and a GBK-encoded Chinese CSV (what Chinese
Excel exports) goes from upload to a prediction. Needs a CJK font for the screenshots (Debian's fonts-noto-cjk)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from core.data import read_table
from tests.e2e.conftest import CHROMIUM, choose_local_model, launch_chromium, wait_ready
from tests.e2e.test_browser import shot

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
        context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)
        yield context.new_page()
        context.close()
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
    page.get_by_role("heading", name="Columns").wait_for()
    wait_ready(page)
    page.get_by_text("GB18030/GBK").first.wait_for()
    # A text of the file in its own characters (the preview grid is drawn on a canvas; its cells stay hidden).
    page.get_by_text(rows["文本"].iloc[0]).first.wait_for(state="attached")
    page.get_by_text("字数：").first.wait_for()
    page.get_by_text("适合中文的模型：").first.wait_for()
    page.get_by_role("button", name="Save dataset").click()
    wait_ready(page)
    page.get_by_text("Saved as dataset").wait_for()
    shot(page, "zh-2-data")

    # Train a tiny local model for a few steps; the run's state badge is in Chinese.
    page.get_by_role("button", name="Train with this dataset").click()
    wait_ready(page)
    page.get_by_text("适合中文的模型：").first.wait_for()
    choose_local_model(page, tiny_bert_dir)
    page.get_by_text("Advanced settings").click()
    for label, value in (("Max steps", 20), ("Num threads", 1)):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(str(value))
        field.press("Enter")
        wait_ready(page)
    page.get_by_role("button", name="Start training").click()
    wait_ready(page)
    page.locator("h3").filter(has_text="已完成").wait_for(timeout=180_000)
    wait_ready(page)
    shot(page, "zh-3-train")

    # Playground: a Chinese sentence in, one of the Chinese labels out.
    page.get_by_role("button", name="Try it in the Playground").click()
    wait_ready(page)
    texts = page.get_by_role("textbox", name="Texts to classify (one per line)", exact=True)
    texts.fill("这家餐厅的味道很好，服务也很热情。")
    page.get_by_role("button", name="Predict").click()
    wait_ready(page)
    answer = page.locator("[data-testid='stMarkdownContainer']").filter(
        has_text=re.compile(r"(正面|负面) \(\d+\.\d%\): 这家餐厅的味道很好")
    )
    answer.first.wait_for()
    shot(page, "zh-4-playground")
    assert not page.locator("[data-testid='stException']").count()
