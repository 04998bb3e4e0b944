"""The Train page turns its form into a config, starts one job through the registry, shows it live, stops it."""

from __future__ import annotations

import json

from core.datasets import DatasetSettings, DatasetStore
from core.jobs import live_run_ids
from core.runs import RunStore
from tests.app.conftest import button, no_exception, open_app, wait_until_done, widget
from tests.conftest import wait_for
from ui.live import REFRESH_S
from ui.state import registry


def _dataset(toy_csv) -> str:
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    return DatasetStore().save("toy", toy_csv, toy_csv.name, settings, rows=240).name


def _fill_form(at, model_dir, **numbers) -> None:
    widget(at.radio, "Model").set_value("Another model (Hugging Face id or local folder)")
    at.run()
    widget(at.text_input, "Hugging Face id or local folder").set_value(str(model_dir))
    at.run()
    no_exception(at)
    for label, value in numbers.items():
        widget(at.number_input, label.replace("_", " ").capitalize()).set_value(value)
    at.run()


def test_form_to_config_start_once_live_panel_and_stop(workspace, toy_csv, tiny_bert_dir, feed_clock):
    name = _dataset(toy_csv)
    at = open_app("views/train.py", dataset=name)
    no_exception(at)
    _fill_form(at, tiny_bert_dir, epochs=400.0, learning_rate=1e-3, max_length=32, batch_size=8, log_every=1)
    widget(at.selectbox, "Precision").set_value("fp32")
    at.run()
    assert not at.error, [e.value for e in at.error]
    button(at, "Start training").click()
    at.run()
    no_exception(at)
    [run] = RunStore().list()
    assert at.query_params["run"] == run.id
    cfg = json.loads(run.config_path.read_text())
    assert cfg["model"]["source"] == str(tiny_bert_dir) and cfg["model"]["method"] == "full"
    assert cfg["train"]["epochs"] == 400.0 and cfg["train"]["max_length"] == 32 and cfg["train"]["precision"] == "fp32"
    assert cfg["data"]["train_path"] == str(DatasetStore().get(name).path.resolve())
    assert run.id in live_run_ids()

    # The form is folded under the live view; a second Start while it trains (double click, second tab)
    # returns the same job: still one run.
    assert not [b for b in at.button if b.label == "Start training"]
    at.toggle(key="show_form").set_value(True)
    at.run()
    button(at, "Start training").click()
    at.run()
    assert len(RunStore().list()) == 1
    assert any("already training" in w.value for w in at.warning)

    # The live panel refreshes from disk: wait for a few logged steps, then look again once the feed's
    # throttle has passed (on the test's clock, not the wall clock's).
    wait_for(lambda: len(run.metrics()) > 3, "a few logged steps")
    feed_clock.advance(REFRESH_S)
    at.run()
    no_exception(at)
    assert at.get("plotly_chart"), "loss and learning-rate curves"
    assert any(m.label == "Samples per second" for m in at.metric)

    at.button(key=f"stop_{run.id}").click()
    at.run()
    assert wait_until_done(run) == "stopped"
    assert run.has_model() and run.id not in live_run_ids()
    at.run()
    no_exception(at)

    # Resume continues the same run; when validation loss keeps rising the panel offers to keep the best.
    button(at, "Resume from the last checkpoint").click()
    at.run()
    no_exception(at)
    assert run.state in ("queued", "running") and len(RunStore().list()) == 1
    with open(run.metrics_path, "a") as fh:  # three later evaluations, each worse than the one before
        for i, loss in enumerate((0.5, 0.6, 0.7)):
            fh.write(json.dumps({"step": 10_000 + i, "epoch": 500.0 + i, "val_loss": loss}) + "\n")
    feed_clock.advance(REFRESH_S)  # the flake this fixes: a rerun within a second of the last read saw no new lines
    at.run()
    assert any("overfitting" in w.value for w in at.warning)
    button(at, "Stop and keep best").click()
    at.run()
    assert wait_until_done(run) == "stopped"
    assert registry().get(run.id).stop_signal.keep_best


def test_unloadable_model_and_bad_setting_are_clear_errors(workspace, toy_csv, tiny_bert_dir):
    _dataset(toy_csv)
    at = open_app("views/train.py")
    _fill_form(at, "/no/such/model-folder")
    assert any("does not exist" in e.value for e in at.error)
    assert not [b for b in at.button if b.label == "Start training"]
    widget(at.text_input, "Hugging Face id or local folder").set_value(str(tiny_bert_dir))
    at.run()
    widget(at.number_input, "Max length").set_value(4)
    at.run()
    no_exception(at)
    assert any("max_length" in e.value and "between 8 and 8192" in e.value for e in at.error)
    assert RunStore().list() == []


def test_finished_run_shows_curves_and_next_steps(trained):
    at = open_app("views/train.py", run="run-full")
    no_exception(at)
    assert len(at.get("plotly_chart")) == 2
    assert at.progress[0].value == 100
    assert button(at, "Try it in the Playground")
    button(at, "Try it in the Playground").click()
    at.run()
    assert [t.value for t in at.title] == ["Playground"]


def test_method_brings_its_defaults_except_into_fields_the_user_changed(workspace, toy_csv):
    """Full fine-tuning's 5e-5 left LoRA at chance: choosing LoRA must bring LoRA's rate into the form."""
    from core.defaults import recommended_train_settings

    at = open_app("views/train.py", dataset=_dataset(toy_csv))
    no_exception(at)
    lr, epochs = widget(at.number_input, "Learning rate").value, widget(at.number_input, "Epochs").value
    rows = int(240 * 0.8)
    full = recommended_train_settings("classification", "default", rows, method="full", params=22_713_216)
    lora = recommended_train_settings("classification", "default", rows, method="lora", params=22_713_216)
    assert (
        lr == full["learning_rate"] and epochs == full["epochs"] and lora["learning_rate"] >= 10 * full["learning_rate"]
    )
    widget(at.number_input, "Batch size").set_value(8)  # the user's own choice
    at.run()
    at.radio(key="method_classification").set_value("lora")
    at.run()
    no_exception(at)
    assert widget(at.number_input, "Learning rate").value == lora["learning_rate"]
    assert widget(at.number_input, "Epochs").value == lora["epochs"] != epochs
    assert widget(at.number_input, "Batch size").value == 8  # edited: kept
    # A rate the user typed stays when the method changes again.
    widget(at.number_input, "Learning rate").set_value(3e-4)
    at.run()
    at.radio(key="method_classification").set_value("freeze")
    at.run()
    assert widget(at.number_input, "Learning rate").value == 3e-4
    assert (
        widget(at.number_input, "Epochs").value
        == recommended_train_settings("classification", "default", rows, method="freeze", params=22_713_216)["epochs"]
    )
