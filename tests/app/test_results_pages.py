"""Evaluate, Playground, Compare and Runs show the results of finished runs."""

from __future__ import annotations

from tests.app.conftest import button, no_exception, open_app, widget


def test_evaluate_scores_a_split_with_charts_table_and_download(trained):
    at = open_app("views/evaluate.py", run="run-full")
    no_exception(at)
    assert widget(at.selectbox, "Run").value == "run-full"
    button(at, "Evaluate").click()
    at.run()
    no_exception(at)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Rows"] == "24"  # 10% of the 240 toy rows are the test split
    assert 0.0 <= float(shown["Accuracy"]) <= 1.0 and "F1" in shown
    charts = {c.key for c in at.get("plotly_chart")}
    # Confusion matrix and per-class scores; then reliability, threshold sweep and slices (test_insight_pages).
    assert {"cm", "per_class", "calibration_reliability", "calibration_sweep", "slices_chart"} == charts
    assert at.get("download_button")
    # Filters narrow the misclassified table without scoring again.
    widget(at.slider, "Minimum confidence").set_value(1.0)
    at.run()
    no_exception(at)
    assert any("examples shown" in c.value for c in at.caption)


def test_evaluate_loads_the_model_once_for_several_presses(trained, monkeypatch):
    import core.models

    loads = []
    real = core.models.load_for_inference

    def counting(folder, *args, **kwargs):
        loads.append(str(folder))
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(core.models, "load_for_inference", counting)
    at = open_app("views/evaluate.py", run="run-full")
    shown = []
    for split in ("test", "validation", "test"):
        widget(at.selectbox, "Split").set_value(split)
        at.run()
        button(at, "Evaluate").click()
        at.run()
        no_exception(at)
        shown.append({m.label: m.value for m in at.metric}["Rows"])
    assert shown == ["24", "24", "24"]  # 10% of the 240 toy rows each
    assert len(loads) == 1, loads  # three presses, two splits: one model load
    # The Playground uses the same cached model.
    at.switch_page("views/playground.py")
    at.run()
    no_exception(at)
    assert len(loads) == 1, loads


def test_playground_predicts_with_probabilities(trained, tiny_bert_dir):
    at = open_app("views/playground.py", run="run-lora")
    no_exception(at)
    about = at.caption[0].value  # what the model is, in words, not the folder it was loaded from
    assert about.startswith("Classifier of 2 labels ('negative', 'positive'): fine-tuned from the model in the folder")
    assert "with LoRA adapters. Run 'lora', finished " in about and str(tiny_bert_dir) not in about
    widget(at.text_area, "Texts to classify (one per line)").set_value("a wonderful film\nan awful film")
    at.run()
    button(at, "Predict").click()
    at.run()
    no_exception(at)
    table = at.dataframe[0].value
    assert list(table["text"]) == ["a wonderful film", "an awful film"]
    assert set(table["label"]) <= {"negative", "positive"}
    assert ((table["probability"] >= 0.5) & (table["probability"] <= 1.0)).all()
    assert len(at.get("plotly_chart")) == 2  # one probability chart per text
    at.toggle(key="explain").set_value(True)
    at.run()
    no_exception(at)
    tinted = [m.value for m in at.markdown if "<span" in m.value]
    assert len(tinted) == 2 and "wonderful" in tinted[0] and "awful" in tinted[1]
    at.toggle(key="use_base").set_value(True)
    at.run()
    no_exception(at)
    assert "Base model before fine-tuning" in at.caption[0].value


def test_compare_overlays_curves_scores_and_settings(trained):
    at = open_app("views/compare.py")
    no_exception(at)
    assert sorted(at.multiselect[0].value) == ["run-full", "run-lora"]
    assert at.get("plotly_chart")
    diff = at.dataframe[1].value
    assert "model.method" in list(diff["setting"]) and "data.train_path" not in list(diff["setting"])
    widget(at.text_area, "Text").set_value("a lovely charming film")
    at.run()
    button(at, "Answer with every model").click()
    at.run()
    no_exception(at)
    assert len([m for m in at.metric if m.label == "Label"]) == 2


def test_runs_page_lists_commands_and_merges_lora(trained):
    at = open_app("views/runs.py", run="run-lora")
    no_exception(at)
    assert set(at.dataframe[0].value["run"]) == {"run-full", "run-lora"}
    assert any(c.value.startswith("python -m core train --config ") for c in at.code)
    assert any(c.value.startswith("accelerate launch --multi_gpu --num_processes 2") for c in at.code)
    button(at, "Merge adapter and export").click()
    at.run()
    no_exception(at)
    assert (trained / "runs" / "run-lora" / "merged" / "config.json").exists()
    assert any(b.label == "Download the merged model (zip)" for b in at.get("download_button"))


def test_runs_page_deletes_only_after_confirmation(workspace, toy_csv, tiny_bert_dir):
    from core.runs import RunStore
    from tests.conftest import tiny_run_config

    store = RunStore()
    run = store.create(tiny_run_config(toy_csv, tiny_bert_dir), run_id="doomed")
    run.set_status("failed", message="Training failed: for the test.")
    at = open_app("views/runs.py")
    assert any("for the test" in c.value for c in at.caption)
    assert button(at, "Resume from the last checkpoint").disabled  # no checkpoint was saved
    button(at, "Delete this run").click()
    at.run()
    assert run.dir.exists() and any("cannot be undone" in w.value for w in at.warning)
    button(at, "Cancel").click()
    at.run()
    button(at, "Delete this run").click()
    at.run()
    button(at, "Yes, delete it").click()
    at.run()
    no_exception(at)
    assert not run.dir.exists()
    assert any("No runs yet" in i.value for i in at.info)


def test_generation_run_streams_in_the_playground(workspace, toy_corpus):
    from core.config import RunConfig
    from core.runs import RunStore
    from core.training import train

    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(toy_corpus)},
            "model": {"source": "default", "task": "generation"},
            "train": {"max_steps": 2, "batch_size": 4, "max_length": 32, "learning_rate": 1e-3, "precision": "fp32"},
        }
    )
    assert train(cfg, RunStore().create(cfg, run_id="gen")).state == "finished"
    at = open_app("views/playground.py", run="gen")
    no_exception(at)
    assert at.caption[0].value.startswith("Text generator: a tiny GPT-2 trained from scratch on your text.")
    widget(at.text_area, "Prompt").set_value("the movie was")
    widget(at.number_input, "Max new tokens").set_value(8)
    at.run()
    button(at, "Generate").click()
    at.run()
    no_exception(at)
    assert any(m.value == "**the movie was**" for m in at.markdown)
    assert len(at.markdown) > 1  # the streamed continuation is written after the prompt
