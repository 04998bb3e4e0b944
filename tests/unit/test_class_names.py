"""Class names: labels 0/1 named negative/positive reach the model's id2label, evaluation and predictions."""

from __future__ import annotations

import json

import pytest

from core.config import DataConfig, RunConfig
from core.data import prepare_data
from core.errors import ConfigError
from core.evaluation import evaluate_run
from core.models import load_for_inference
from core.runs import RunStore
from core.training import train
from tests.conftest import toy_sentiment_rows

NAMES = {"0": "negative", "1": "positive"}


@pytest.fixture
def numeric_csv(tmp_path):
    """A headerless file whose labels are 0 and 1."""
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join(f"{t},{int(y == 'positive')}" for t, y in toy_sentiment_rows(120)) + "\n")
    return path


def test_names_replace_the_values_but_not_the_split_or_the_ids(numeric_csv):
    plain = prepare_data(DataConfig(train_path=str(numeric_csv)), "classification")
    named = prepare_data(DataConfig(train_path=str(numeric_csv), class_names=NAMES), "classification")
    assert plain.label_names == ["0", "1"] and named.label_names == ["negative", "positive"]
    for split in ("train", "validation", "test"):
        assert getattr(plain, split).equals(getattr(named, split))
    # Naming one class only keeps the other's value.
    assert prepare_data(
        DataConfig(train_path=str(numeric_csv), class_names={"1": "yes"}), "classification"
    ).label_names == ["0", "yes"]


def test_bad_names_are_refused_with_the_field_named():
    with pytest.raises(ConfigError, match="class_names.*same name"):
        DataConfig(class_names={"0": "same", "1": "same"})
    with pytest.raises(ConfigError, match="class_names.*empty"):
        DataConfig(class_names={"0": " "})
    assert DataConfig(class_names={"0": "0", "1": " yes "}).class_names == {"1": "yes"}


def test_the_model_and_its_scores_use_the_names(workspace, numeric_csv, tiny_bert_dir, tmp_path):
    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(numeric_csv), "class_names": NAMES},
            "model": {"source": str(tiny_bert_dir), "task": "classification"},
            "train": {"max_steps": 2, "batch_size": 8, "max_length": 32, "precision": "fp32"},
        }
    )
    run = RunStore(workspace / "runs").create(cfg)
    assert train(cfg, run).state == "finished"
    config = json.loads((run.model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert load_for_inference(run.model_dir).label_names == ["negative", "positive"]
    # A new test file may hold the values (0/1) or the names: both are understood.
    values = tmp_path / "more.csv"
    values.write_text("\n".join(f"{t},{int(y == 'positive')}" for t, y in toy_sentiment_rows(20, seed=5)) + "\n")
    named = tmp_path / "named.csv"
    named.write_text("\n".join(f"{t},{y}" for t, y in toy_sentiment_rows(20, seed=5)) + "\n")
    a, b = evaluate_run(run, file=values), evaluate_run(run, file=named)
    assert a.metrics["labels"] == ["negative", "positive"]
    assert a.metrics["confusion_matrix"] == b.metrics["confusion_matrix"]


def test_the_cli_names_classes_and_says_when_a_pair_is_malformed(numeric_csv, capsys):
    from core.cli import _config_from_args, build_parser

    args = ["train", "--data", str(numeric_csv), "--class-names", "0=negative", "1=positive", "--lr", "1e-3"]
    cfg = _config_from_args(build_parser().parse_args(args))
    assert cfg.data.class_names == NAMES and cfg.train.learning_rate == 1e-3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--class-names", "negative"])
    assert "is not VALUE=NAME" in capsys.readouterr().err
