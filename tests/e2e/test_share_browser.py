"""A real browser puts a trained model to work: a whole file in, a CSV of predictions out; the run's report
downloads as one HTML page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config, toy_sentiment_rows
from tests.e2e.conftest import SCREENSHOTS, wait_ready

pytestmark = pytest.mark.e2e


def test_whole_file_prediction_and_report_download(server, page, tmp_path, tiny_bert_dir):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in toy_sentiment_rows(160)), encoding="utf-8")
    config = tiny_run_config(data, tiny_bert_dir, max_steps=3)
    run = RunStore(server.workspace / "runs").create(config)
    assert train(config, run).state == "finished"
    unlabelled = tmp_path / "to_predict.csv"
    unlabelled.write_text("id,review\n1,a wonderful film\n2,\n3,an awful dull plot\n", encoding="utf-8")

    page.goto(f"{server.url}/playground?run={run.id}")
    wait_ready(page)
    page.get_by_role("heading", name="Playground").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "share-playground.png"), full_page=True)
    page.get_by_text("Whole file", exact=True).click()
    wait_ready(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(unlabelled))
    wait_ready(page)
    page.get_by_role("button", name="Predict every row").click()
    wait_ready(page)
    button = page.get_by_role("button", name="Download the predictions (CSV)")
    button.wait_for()
    page.get_by_text("1 row has an empty text").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "share-whole-file.png"), full_page=True)
    with page.expect_download() as download:
        button.click()
    frame = pd.read_csv(download.value.path(), keep_default_na=False)
    assert download.value.suggested_filename == "to_predict-predictions.csv"
    assert frame.columns.tolist() == [
        "id",
        "review",
        "predicted_label",
        "probability_negative",
        "probability_positive",
        "prediction_note",
    ]
    assert frame["id"].tolist() == [1, 2, 3]
    assert set(frame.loc[[0, 2], "predicted_label"]) <= {"negative", "positive"}
    assert frame.loc[1, "prediction_note"] == "empty text: not predicted"

    # The Runs page hands out the one-page report.
    page.goto(f"{server.url}/runs?run={run.id}")
    wait_ready(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the report (HTML)").click()
    report = Path(download.value.path()).read_text(encoding="utf-8")
    assert report.startswith("<!DOCTYPE html>") and "Confusion matrix" in report and run.id in report
    assert not page.locator("[data-testid='stException']").count()
