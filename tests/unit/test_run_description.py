"""The sentence the Playground shows about a run's model: what it does, where it came from, which run, when;
never a raw folder path. Built from run folders written by hand (no training needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.config import RunConfig
from core.inference import describe_run_model
from core.runs import RunStore

FINISHED = time.mktime((2026, 11, 30, 4, 20, 0, 0, 0, -1))


def finished_run(root: Path, run_id: str, *, name: str = "", labels=None, **model):
    cfg = RunConfig.from_dict({"name": name, "data": {"train_path": "x.csv"}, "model": model})
    run = RunStore(root / "runs").create(cfg, run_id=run_id)
    run.model_dir.mkdir()
    meta = {"task": cfg.model.task, "label_names": labels, "source": cfg.model.source, "description": cfg.model.source}
    (run.model_dir / "workbench.json").write_text(json.dumps(meta), encoding="utf-8")
    run.set_status("finished", finished_at=FINISHED)
    return run


def test_a_classifier_fine_tuned_from_a_local_folder_names_labels_method_run_and_date(tmp_path):
    folder = tmp_path / "deep" / "models" / "my-bert"
    run = finished_run(tmp_path, "r1", name="Reviews", labels=["negative", "positive"], source=str(folder),
                       method="lora")  # fmt: skip
    text = describe_run_model(run)
    assert text.startswith("Classifier of 2 labels ('negative', 'positive')")
    assert "fine-tuned from the model in the folder 'my-bert' with LoRA adapters" in text
    assert "Run 'Reviews', finished 2026-11-30 04:20." in text
    assert str(folder) not in text and str(tmp_path) not in text  # no raw path
    base = describe_run_model(run, base=True)
    assert base.startswith("Base model before fine-tuning: the model in the folder 'my-bert'")
    assert "untrained head for 2 labels" in base


def test_the_generation_default_says_it_was_trained_from_scratch(tmp_path):
    run = finished_run(tmp_path, "gen-1", task="generation")
    text = describe_run_model(run)
    assert text.startswith("Text generator: a tiny GPT-2 trained from scratch on your text.")
    assert "Run gen-1, finished 2026-11-30 04:20." in text  # no name: the run id
    assert "random weights" in describe_run_model(run, base=True)


@pytest.mark.parametrize(
    ("model", "origin"),
    [
        ({"source": "default"}, "fine-tuned from the built-in MiniLM-L6 with full fine-tuning"),
        ({"source": "distilbert-base-uncased", "method": "freeze"},
         "fine-tuned from 'distilbert-base-uncased' from the Hugging Face hub with its first layers frozen"),
        ({"source": "teacher", "teacher_run": "teacher"}, "fine-tuned from run 'teacher' with full fine-tuning, "
         "distilled from run 'teacher'"),
        ({"source": "default", "task": "regression"}, "Regression model (predicts a number): fine-tuned from"),
    ],
    ids=["builtin", "hub_id", "from_a_run_distilled", "regression"],
)  # fmt: skip
def test_origins_in_words(tmp_path, model, origin):
    finished_run(tmp_path, "teacher", labels=["a", "b"])
    labels = [f"class {i}" for i in range(7)]
    run = finished_run(tmp_path, "student", labels=labels, **model)
    text = describe_run_model(run)
    assert origin in text, text
    if model.get("task", "classification") == "classification":
        assert "7 labels ('class 0', 'class 1', 'class 2', 'class 3', 'class 4' and 2 more)" in text
