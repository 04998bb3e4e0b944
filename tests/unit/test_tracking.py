"""TensorBoard events, opt-in, beside metrics.jsonl (the truth): the same points read back."""

from __future__ import annotations

import pytest

from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_events_match_metrics_jsonl(workspace, toy_csv, tiny_bert_dir):
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4, eval_every=2, tensorboard=True)
    run = RunStore(workspace / "runs").create(config)
    assert train(config, run).state == "finished"
    assert list(run.dir.glob("events.out.tfevents.*")), "no event file beside metrics.jsonl"
    scalars = _scalars(run.dir)
    records = run.metrics()
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r and "event" not in r]
    assert [s for s, _ in scalars["train/loss"]] == [s for s, _ in losses] == [1, 2, 3, 4]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([v for _, v in losses], rel=1e-6)
    evals = [(r["step"], r["val_accuracy"]) for r in records if "val_accuracy" in r]
    assert [(s, pytest.approx(v)) for s, v in scalars["validation/accuracy"]] == evals
    assert "train/lr" in scalars and "train/epoch" not in scalars


def test_tensorboard_is_off_by_default(workspace, toy_csv, tiny_bert_dir):
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=1)
    assert config.train.tensorboard is False
    run = RunStore(workspace / "runs").create(config)
    assert train(config, run).state == "finished"
    assert not list(run.dir.glob("events.out.tfevents.*"))
    assert run.metrics()  # metrics.jsonl is written either way


def test_cli_flag_turns_it_on(workspace, toy_csv, tiny_bert_dir):
    from core.cli import main

    argv = ["train", "--data", str(toy_csv), "--model", str(tiny_bert_dir), "--max-steps", "1", "--tensorboard"]
    assert main([*argv, "--max-length", "32", "--precision", "fp32", "--quiet"]) == 0
    (run_dir,) = (workspace / "runs").iterdir()
    assert _scalars(run_dir)["train/loss"]
