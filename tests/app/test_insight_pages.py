"""Issue 18 on the pages: probes on the Train form, live panel and Compare; calibration, threshold, slices and
the swap test on Evaluate; the label-error review on Data; the learning-curve button on Tune."""

from __future__ import annotations

import json

import pandas as pd

from core.calibration import clear_decision, load_decision
from core.datasets import DatasetSettings, DatasetStore
from core.runs import RunStore
from core.training import train
from tests.app.conftest import button, fragment_timers, no_exception, open_app, widget
from tests.app.test_train_page import _dataset, _fill_form
from tests.conftest import tiny_run_config, wait_for


def test_probe_box_on_the_train_form_goes_into_the_config(workspace, toy_csv, tiny_bert_dir):
    at = open_app("views/train.py", dataset=_dataset(toy_csv))
    _fill_form(at, tiny_bert_dir)
    box = widget(at.text_area, "Up to 5 inputs, one per line")
    box.set_value("\n".join(f"probe {i}" for i in range(6)))
    at.run()
    assert any("at most 5" in e.value for e in at.error), [e.value for e in at.error]  # refused, named
    assert not [b for b in at.button if b.label == "Start training"]
    widget(at.text_area, "Up to 5 inputs, one per line").set_value("a wonderful film\n\n<b>an awful film</b>")
    widget(at.number_input, "Max steps").set_value(2)
    at.run()
    button(at, "Start training").click()
    at.run()
    no_exception(at)
    [run] = RunStore().list()
    assert json.loads(run.config_path.read_text())["train"]["probe_texts"] == [
        "a wonderful film",
        "<b>an awful film</b>",
    ]


def test_live_panel_and_compare_show_the_probes(workspace, toy_csv, tiny_bert_dir):
    store = RunStore(workspace / "runs")
    texts = ["a wonderful film", "**an awful** film"]
    ids = []
    for seed in (0, 1):
        cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4, eval_every=2, probe_texts=texts, seed=seed)
        run = store.create(cfg)
        assert train(cfg, run).state == "finished"
        ids.append(run.id)
    at = open_app("views/train.py", run=ids[0])
    no_exception(at)
    table = next(d.value for d in at.dataframe if "probe" in d.value.columns)
    assert table["probe"].tolist() == texts  # as typed: a dataframe never renders markdown
    assert any(c.key == f"probes_{ids[0]}" for c in at.get("plotly_chart"))

    at = open_app("views/compare.py", run=ids[0])
    at.multiselect(key="cmp_runs").set_value(ids)
    at.run()
    no_exception(at)
    table = next(d.value for d in at.dataframe if "probe" in d.value.columns)
    assert table["probe"].tolist() == texts and set(ids) <= set(table.columns)
    assert all(str(v).split(" (")[0] in ("positive", "negative") for v in table[ids[0]])


def test_evaluate_saves_a_threshold_and_runs_the_swap_test(trained):
    run = RunStore(trained / "runs").get("run-full")
    try:
        at = open_app("views/evaluate.py", run="run-full")
        widget(at.selectbox, "Split").set_value("validation")
        at.run()
        button(at, "Evaluate").click()
        at.run()
        no_exception(at)
        assert any(m.label == "Expected calibration error" for m in at.metric)
        widget(at.slider, "Unsure band (±)").set_value(0.1)
        at.run()
        unsure = float(next(m.value for m in at.metric if m.label == "Unsure").rstrip("%"))
        assert 0.0 <= unsure <= 100.0
        button(at, "Save this threshold with the model").click()
        at.run()
        no_exception(at)
        decision = load_decision(run.model_dir)
        assert decision is not None and decision.band == 0.1 and decision.positive == "positive"
        assert any(m.label == "Expected calibration error" for m in at.metric)  # still evaluated after the save
        # The slice chart's bar labels are plotly's template filled with the catalog's words, not the key.
        (chart,) = [c for c in at.get("plotly_chart") if c.proto.id and "slices_chart" in c.proto.id]
        assert json.loads(chart.proto.spec)["data"][0]["texttemplate"] == "%{text} rows"
        slices = next(df.value for df in at.dataframe if "the other rows" in df.value.columns)
        assert list(slices.columns) == ["group", "rows", "accuracy", "the other rows", "gap"]

        widget(at.radio, "Word pairs").set_value("own")
        at.run()
        widget(at.text_area, "One pair per line").set_value("film,movie")
        at.run()
        button(at, "Run the swap test").click()
        at.run()
        no_exception(at)
        tested = next(m.value for m in at.metric if m.label == "Texts with a pair word")
        assert int(tested.replace(",", "")) > 0
        assert any("not proof of fairness" in c.value for c in at.caption)
    finally:
        clear_decision(run.model_dir)


def _small_dataset(tmp_path, labels=None):
    labels = labels or ["positive" if i % 2 else "negative" for i in range(20)]
    path = tmp_path / "small.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(20)], "label": labels}).to_csv(path, index=False)
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    return DatasetStore().save("small", path, "small.csv", settings, rows=20)


def _check_ended(dataset):
    from core.label_check import ACTIVE, read_check

    record = read_check(dataset.dir)
    return record if record and record["state"] not in ACTIVE else None


def test_data_page_review_saves_a_new_version(workspace, tmp_path, monkeypatch):
    import threading

    import core.label_issues as li
    from tests.unit.test_label_check import planted_embedding

    dataset = _small_dataset(tmp_path)
    original = pd.read_csv(dataset.path)
    # The page is what is tested here (the finder itself is test_insight): a planted embedding puts rows 3 and 8
    # on the wrong side. It holds halfway until the page has shown the check running in the background.
    gate = threading.Event()
    monkeypatch.setenv("WORKBENCH_JOB_MODE", "thread")  # the check runs in this process, with the patch
    monkeypatch.setattr(
        li, "embed_texts", lambda texts, source="default", **kw: planted_embedding(texts, gate=gate, **kw)
    )
    at = open_app("views/data.py")
    button(at, "Find label errors").click()
    at.run()
    no_exception(at)
    wait_for(lambda: _progress_shown(at), "the page to show the rows embedded so far")
    assert button(at, "Cancel the check") and button(at, "Find label errors").disabled
    gate.set()
    wait_for(lambda: _check_ended(dataset), "the check to end")
    at = open_app("views/data.py")  # a fresh session: the result is read from beside the dataset
    no_exception(at)
    editor = next(d for d in at.dataframe if d.key == "li_editor_small_keep")  # st.data_editor
    assert sorted(editor.value["row"]) == [3, 8]
    assert set(editor.value["decision"]) == {"keep the given label"}
    button(at, "Accept every suggestion").click()
    at.run()
    button(at, "Save as a new dataset version").click()
    at.run()
    no_exception(at)
    new = DatasetStore().get("small-v2")
    assert new.parent == "small"
    saved = pd.read_parquet(new.path)
    assert saved.loc[2, "label"] == "positive" and saved.loc[7, "label"] == "negative"  # the suggestions
    assert pd.read_csv(DatasetStore().get("small").path).equals(original)
    assert button(at, "Train with the new version")


def _progress_shown(at) -> bool:
    """Rerun the page (as its polling fragment would) and look for the check's progress bar."""
    at.run()
    return any("of 20 rows" in p.proto.text for p in at.get("progress"))


def test_data_page_says_why_a_check_failed_in_chinese(workspace, tmp_path):
    # As users run it: the check in its own process (it fails on the data before loading any model).
    dataset = _small_dataset(tmp_path, labels=["positive"] * 20)  # one class: nothing to cross-check
    at = open_app("views/data.py", lang="zh")
    button(at, "查找标注错误").click()
    at.run()
    wait_for(lambda: _check_ended(dataset), "the check to end")
    at.run()
    no_exception(at)
    [error] = [e.value for e in at.error]
    assert error.startswith("标注检查失败") and "fewer than two classes" in error


def test_tune_page_offers_the_learning_curve(workspace, toy_csv):
    _dataset(toy_csv)
    at = open_app("views/tune.py")
    no_exception(at)
    assert button(at, "Draw the learning curve")


def test_with_the_live_route_a_running_learning_curve_has_no_timer_and_watches_its_record(
    workspace, toy_csv, monkeypatch
):
    """Served by serve.py: the curve's panel reruns when its record changes (the browser asks), not every 2 s."""
    from types import SimpleNamespace

    import ui.learning_curve
    import ui.live_ticker
    from core.learning_curve import CurveStore
    from ui import live_api

    timers = fragment_timers(monkeypatch)
    watched: list[dict] = []
    store = CurveStore(workspace / "curves")
    record = store.create(tiny_run_config(toy_csv, "tiny"))
    monkeypatch.setattr(ui.live_ticker, "_component", lambda **kwargs: watched.append(kwargs))
    monkeypatch.setattr(ui.learning_curve, "runner", lambda: SimpleNamespace(store=store, active=lambda: True))
    monkeypatch.setitem(live_api._state, "mounted", True)
    _dataset(toy_csv)
    at = open_app("views/tune.py")
    no_exception(at)
    assert timers["_show"] is None
    [mounted] = [w for w in watched if w["data"]["part"] == "watch"]
    route = live_api.record_answer("curves", str(workspace / "curves"), record["id"])[1]
    assert mounted["data"]["url"] == live_api.record_url("curves", record["id"])
    assert mounted["data"]["watch"] == {"signature": route["signature"]} and route["active"]

    monkeypatch.setitem(live_api._state, "mounted", False)  # streamlit run app.py: the timer as before
    at.run()
    assert timers["_show"] == 2.0
