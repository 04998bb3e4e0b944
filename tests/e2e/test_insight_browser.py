"""Issue 18 in a real browser: the label-error finder (flag, relabel, save a new version, retrain from it) and a
live run whose probe sentences the panel shows changing. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from tests.conftest import toy_sentiment_rows
from tests.e2e.conftest import choose_local_model, wait_ready
from tests.e2e.test_browser import set_number, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROBES = ["what a wonderful and charming film", "a dull and painful evening"]


def test_label_errors_then_a_live_run_with_probes(server, page, tiny_bert_dir):
    from core.datasets import DatasetSettings, DatasetStore

    rows = toy_sentiment_rows(200, seed=5)
    flipped = set(random.Random(5).sample(range(len(rows)), 20))
    other = {"positive": "negative", "negative": "positive"}
    frame = pd.DataFrame({"text": [t for t, _ in rows], "label": [y for _, y in rows]})
    frame.loc[sorted(flipped), "label"] = [other[rows[i][1]] for i in sorted(flipped)]
    csv = server.workspace / "noisy.csv"
    frame.to_csv(csv, index=False)
    store = DatasetStore(server.workspace / "datasets")
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    store.save("noisy", csv, "noisy.csv", settings, rows=len(frame))

    # Data: flag, accept the suggestions, save as a new version.
    page.goto(f"{server.url}/data")
    wait_ready(page)
    page.get_by_role("button", name="Find label errors").click()
    page.get_by_text("look mislabelled").wait_for()  # embeds every row: the 300 s backstop is for a shared 2-core CPU
    wait_ready(page)
    shot(page, "insight-1-flagged")
    page.get_by_role("button", name="Accept every suggestion").click()
    wait_ready(page)
    shot(page, "insight-2-accepted")
    page.get_by_role("button", name="Save as a new dataset version").click()
    wait_ready(page)
    page.get_by_text("Saved as dataset").wait_for()
    shot(page, "insight-3-saved")
    new = store.get("noisy-v2")
    assert new.parent == "noisy"
    fixed = pd.read_parquet(new.path)
    repaired = sum(fixed.loc[i, "label"] == rows[i][1] for i in flipped)
    assert repaired >= 15, f"only {repaired} of 20 flipped labels were put right"
    assert pd.read_csv(store.get("noisy").path).equals(frame)  # the old version is kept as it was

    # Retrain on the new version, with two probe sentences pinned.
    page.get_by_role("button", name="Train with the new version").click()
    wait_ready(page)
    page.get_by_role("heading", name="Model").wait_for()
    choose_local_model(page, tiny_bert_dir)
    page.get_by_text("M parameters, 2 layers").wait_for()
    page.get_by_text("Advanced settings").click()
    set_number(page, "Max steps", 120)
    set_number(page, "Eval every", 10)
    set_number(page, "Log every", 5)
    set_number(page, "Num threads", 1)
    set_number(page, "Learning rate", 0.003)
    page.get_by_text("Probe sentences (optional)").click()
    box = page.get_by_role("textbox", name="Up to 5 inputs, one per line")
    box.fill("\n".join(PROBES))
    box.press("Control+Enter")
    wait_ready(page)
    page.get_by_role("button", name="Start training").click()
    wait_ready(page)
    page.get_by_text("Probe sentences", exact=True).wait_for()
    shot(page, "insight-4-probes-early")
    page.get_by_text("Step 120 of 120").wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p._fullData || [])"
        ".some(t => String(t.name).includes('→') && t.x.length >= 10))"
    )
    shot(page, "insight-5-probes-finished")
    run_dir = next((server.workspace / "runs").iterdir())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum(r.get("event") == "probes" for r in records) == 12  # every 10 of 120 steps

    # Evaluate the new model: calibration, the threshold with its unsure band, slices, then the swap test.
    page.get_by_text("Training finished").wait_for()
    page.get_by_role("button", name="Evaluate it").click()
    wait_ready(page)
    page.get_by_role("button", name="Evaluate", exact=True).click()
    wait_ready(page)
    page.get_by_text("Expected calibration error").wait_for()
    page.get_by_role("button", name="Run the swap test").click()
    wait_ready(page)
    page.get_by_text("Texts with a pair word").wait_for()
    page.get_by_role("heading", name="Can I trust its probabilities? (calibration)").scroll_into_view_if_needed()
    shot(page, "insight-6-calibration")
    page.get_by_role("heading", name="Do some words alone change its answer? (swap test)").scroll_into_view_if_needed()
    shot(page, "insight-7-slices-swap")
