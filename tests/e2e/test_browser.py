"""The one real-browser test: Chromium drives `streamlit run app.py` from upload to a prediction.

Upload a CSV, map its columns, save it; train a tiny local model and watch the loss chart grow; reload and
find the same run; stop it; get a prediction in the Playground. A screenshot of every page is saved.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import toy_sentiment_rows
from tests.e2e.conftest import BACKSTOP_MS, SCREENSHOTS, choose_local_model, wait_ready

pytestmark = pytest.mark.e2e


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (a searchable combobox in Streamlit)."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_ready(page)


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_role("spinbutton", name=label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_ready(page)


LOSS_CURVE_JS = """(after) => {
    // (points, last step) of the training-loss trace from plotly's decoded data, once the last step is past
    // `after`; null until then (also while a refresh swaps the chart, which briefly leaves no trace).
    const traces = [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(p => p._fullData || []).filter(t => t.name === 'training loss' && t.x && t.x.length);
    if (!traces.length) return null;
    const x = Array.from(traces[0].x);
    const last = Math.max(...x);
    return last > after ? [x.length, last] : null;
}"""


def loss_curve_after(page, after: float, timeout: float = BACKSTOP_MS) -> tuple[int, float]:
    """Wait until the loss chart reaches past step ``after``; returns (points, last step)."""
    return tuple(page.wait_for_function(LOSS_CURVE_JS, arg=after, timeout=timeout).json_value())


def run_id_shown(page) -> str:
    heading = page.locator("h3").filter(has_text="Run ").first
    return heading.locator("code").inner_text().strip()


def test_upload_train_watch_reload_stop_predict(server, page, tmp_path, tiny_bert_dir):
    csv = tmp_path / "reviews.csv"
    # The label column comes first and has an unusual name, so the column mapping has to be chosen.
    rows = toy_sentiment_rows(200, seed=3)
    csv.write_text("verdict,review\n" + "".join(f"{y},{t}\n" for t, y in rows), encoding="utf-8")
    print(f"\nscreenshots: {SCREENSHOTS}")

    page.goto(server.url)
    wait_ready(page)
    page.get_by_role("heading", name="Fine-Tuning Workbench").wait_for()
    shot(page, "1-home")

    # Data: upload, map columns, save.
    page.goto(f"{server.url}/data")
    wait_ready(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(csv))
    page.get_by_role("heading", name="Columns").wait_for()
    wait_ready(page)
    choose(page, "Text column", "review")
    choose(page, "Label column", "verdict")
    page.get_by_role("button", name="Save dataset").click()
    wait_ready(page)
    page.get_by_text("Saved as dataset").wait_for()
    shot(page, "2-data")
    saved = list((server.workspace / "datasets").iterdir())
    assert saved, "Save dataset wrote nothing under the workspace"

    # Train: a tiny local model, logging every step, long enough to be stopped by hand.
    page.get_by_role("button", name="Train with this dataset").click()
    wait_ready(page)
    page.get_by_role("heading", name="Model").wait_for()
    choose_local_model(page, tiny_bert_dir)
    page.get_by_text("M parameters, 2 layers").wait_for()
    page.get_by_text("Advanced settings").click()
    set_number(page, "Max steps", 100_000)
    set_number(page, "Log every", 1)
    set_number(page, "Eval every", 10)
    # One thread: on a 2-core machine shared with other work, two OpenMP threads thrash (10x slower steps).
    set_number(page, "Num threads", 1)
    page.get_by_role("button", name="Start training").click()
    wait_ready(page)

    # The live panel: the loss chart appears, then has more points a moment later.
    first = loss_curve_after(page, 1)
    # The panel refreshes itself; nothing is clicked between the two looks.
    second = loss_curve_after(page, first[1])
    print(f"loss chart: {first[0]} points up to step {first[1]:g}, later {second[0]} up to step {second[1]:g}")
    assert second[1] > first[1] and second[0] >= first[0] > 1, f"the loss chart did not grow ({first} -> {second})"
    run_id = run_id_shown(page)
    assert (server.workspace / "runs" / run_id).is_dir()
    assert f"run={run_id}" in page.url
    shot(page, "3-train-live")

    # A reload comes back to the same run, still live.
    page.reload()
    wait_ready(page)
    page.locator("h3").filter(has_text=run_id).wait_for()
    assert run_id_shown(page) == run_id
    again = loss_curve_after(page, second[1] - 1)  # the whole history is back, not a fresh chart
    assert again[0] >= second[0], (second, again)

    # Stop it: the badge says stopped, and status.json on disk agrees.
    page.get_by_role("button", name="Stop", exact=True).click()
    page.locator("h3").filter(has_text="stopped").wait_for()
    status = (server.workspace / "runs" / run_id / "status.json").read_text()
    assert '"stopped"' in status
    wait_ready(page)
    shot(page, "3b-train-stopped")

    # Playground: the stopped run kept its model, and the live view offers it; a sentence in, label and
    # probabilities out.
    page.get_by_role("button", name="Try it in the Playground").click()
    wait_ready(page)
    page.get_by_role("heading", name="Playground").wait_for()
    assert f"run={run_id}" in page.url
    texts = page.get_by_role("textbox", name="Texts to classify (one per line)", exact=True)
    texts.fill("the movie was wonderful and charming")
    page.get_by_role("button", name="Predict").click()
    wait_ready(page)
    answer = page.locator("[data-testid='stMarkdownContainer']").filter(
        has_text=re.compile(r"(positive|negative) \(\d+\.\d%\): the movie was wonderful")
    )
    answer.first.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p._fullData||[]).length > 0)"
    )
    probabilities = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(p => p._fullData).flatMap(t => Array.from(t.x))"
    )
    assert len(probabilities) >= 2 and abs(sum(probabilities) - 1) < 1e-3, probabilities
    shot(page, "5-playground")

    for n, name in ((4, "evaluate"), (6, "compare"), (7, "runs")):
        page.goto(f"{server.url}/{name}?run={run_id}")
        wait_ready(page)
        page.get_by_role("heading", name=name.capitalize()).first.wait_for()
        shot(page, f"{n}-{name}")
    # No page showed a Python traceback.
    assert not page.locator("[data-testid='stException']").count()
