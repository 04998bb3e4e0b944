"""Each diagnosis on a crafted curve, its fix, the CLI's printout, and the stuck case on a real run."""

from __future__ import annotations

import json
import math
import re

import pytest

from core.config import RunConfig
from core.diagnose import diagnose, diagnose_run, fixed_config, format_findings

CONFIG = {
    "model": {"task": "classification", "method": "full", "source": "default"},
    "train": {"learning_rate": 5e-5, "epochs": 2.0, "max_steps": 0},
}
TWO = ["negative", "positive"]


def records(train_losses, val_losses=(), every=10, eval_every=None, total=None, extra_eval=None):
    """metrics.jsonl lines: a start event, a training line every ``every`` steps, evaluations spread evenly."""
    n = len(train_losses)
    out = [{"event": "start", "total_steps": total or n * every, "train_examples": 1000}]
    out += [{"step": (i + 1) * every, "epoch": 0.0, "loss": loss, "lr": 5e-5} for i, loss in enumerate(train_losses)]
    if val_losses:
        gap = eval_every or (n * every) // len(val_losses)
        for i, v in enumerate(val_losses):
            out.append({"step": (i + 1) * gap, "epoch": 0.0, "val_loss": v, **(extra_eval or {})})
    return out


def kinds(findings):
    return [f.kind for f in findings]


def test_overfitting_names_the_best_step_and_offers_early_stopping():
    train = [0.7 - 0.03 * i for i in range(20)]  # falls throughout
    val = [0.6, 0.45, 0.35, 0.33, 0.36, 0.41, 0.47, 0.55]
    found = diagnose(records(train, val, every=10, eval_every=25), CONFIG, state="finished", label_names=TWO)
    assert kinds(found) == ["overfitting"]
    f = found[0]
    assert f.best_step == 100 and "step 100" in f.detail_text()
    assert [x.action for x in f.fixes] == ["retrain"]
    assert f.fixes[0].train["early_stopping_patience"] >= 1
    live = diagnose(records(train, val, every=10, eval_every=25), CONFIG, state="running", label_names=TWO)
    assert [x.action for x in live[0].fixes] == ["stop_keep_best", "retrain"]
    cfg = fixed_config(RunConfig.from_dict({"data": {"train_path": "x.csv"}, **CONFIG}), f.fixes[0], "fix")
    assert cfg.train.early_stopping_patience == 2 and cfg.name.endswith("(fix)")


def test_validation_rising_with_training_loss_is_not_called_overfitting():
    train = [0.7, 0.6, 0.5, 0.45, 0.5, 0.55, 0.6, 0.62]
    val = [0.6, 0.5, 0.55, 0.6]
    assert "overfitting" not in kinds(diagnose(records(train, val), CONFIG, label_names=TWO))


def test_divergence_suggests_a_tenth_of_the_rate():
    train = [0.69, 0.5, 0.3, 0.25, 0.6, 1.2, 2.5, 3.0, 3.4]
    found = diagnose(records(train), {**CONFIG, "train": {"learning_rate": 1e-3}}, label_names=TWO)
    assert kinds(found) == ["diverged"]
    assert found[0].fixes[0].train == {"learning_rate": 1e-4}
    nan = diagnose(records([0.7, 0.6]), CONFIG, state="failed", message="The loss became NaN/infinite at step 6")
    assert kinds(nan) == ["diverged"] and nan[0].fixes[0].train["learning_rate"] == 5e-6


def test_still_improving_at_the_end_says_train_longer():
    train = [0.7 - 0.025 * i for i in range(20)]
    val = [0.65, 0.55, 0.47, 0.40, 0.34]
    found = diagnose(records(train, val), CONFIG, label_names=TWO)
    assert kinds(found) == ["underfitting"]
    assert found[0].fixes[0].train == {"epochs": 4.0} and "4 epochs" in found[0].detail_text()
    # A run still training is not told to train longer.
    assert "underfitting" not in kinds(diagnose(records(train, val), CONFIG, state="running", label_names=TWO))


def test_flat_loss_at_log_classes_is_stuck_with_the_method_rate_as_cause():
    train = [math.log(2) + 0.01 * ((-1) ** i) for i in range(30)]
    lora = {"model": {"task": "classification", "method": "lora"}, "train": {"learning_rate": 5e-5, "epochs": 1.0}}
    found = diagnose(records(train), lora, {"validation": {"accuracy": 0.51}}, label_names=TWO)
    assert kinds(found) == ["stuck"]
    f = found[0]
    assert "Nothing was learned" in f.title and "ln(2) = 0.693" in f.detail_text()
    assert "far below what the lora method needs" in f.detail_text()
    assert f.fixes and f.fixes[0].train["learning_rate"] >= 5e-4
    # Three classes: chance is ln 3, and a loss of 0.69 there is learning, not stuck.
    assert "stuck" not in kinds(diagnose(records(train), lora, label_names=["a", "b", "c"]))
    three = [math.log(3)] * 30
    assert kinds(diagnose(records(three), lora, label_names=["a", "b", "c"])) == ["stuck"]


def test_class_gap_names_the_classes_as_plain_text():
    train = [0.6, 0.5, 0.45, 0.42, 0.41, 0.405, 0.40, 0.40]
    results = {"validation": {"accuracy": 0.7, "class_recall": [0.95, 0.4]}}
    names = ["*bold* <b>", "negative"]
    found = diagnose(records(train), CONFIG, results, label_names=names)
    gap = [f for f in found if f.kind == "class_gap"]
    assert gap and "*bold* <b>" in gap[0].detail_text() and "40%" in gap[0].detail_text()


def test_a_healthy_run_says_so_and_the_cli_text_has_the_fix_command():
    train = [0.7, 0.5, 0.4, 0.35, 0.33, 0.32, 0.32, 0.32, 0.32]
    val = [0.5, 0.36, 0.34, 0.335]
    assert kinds(diagnose(records(train, val), CONFIG, label_names=TWO)) == ["healthy"]
    text = format_findings(
        diagnose(records([0.7 - 0.025 * i for i in range(20)], [0.6, 0.5, 0.4, 0.3]), CONFIG, label_names=TWO),
        "runs/x/config.json",
    )
    assert "python -m core train --config runs/x/config.json --epochs 4" in text


@pytest.mark.slow
def test_a_real_run_with_shuffled_labels_is_stuck(workspace, tmp_path, tiny_bert_dir, capsys):
    """Labels drawn at random: the loss stays at ln 2 and the CLI says nothing was learned."""
    import random

    from core.cli import main
    from tests.conftest import toy_sentiment_rows

    rng = random.Random(0)
    path = tmp_path / "shuffled.csv"
    rows = [(t, rng.choice(["positive", "negative"])) for t, _ in toy_sentiment_rows(240)]
    path.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in rows) + "\n", encoding="utf-8")
    code = main(
        [
            "--workspace",
            str(workspace),
            "train",
            "--data",
            str(path),
            "--model",
            str(tiny_bert_dir),
            "--lr",
            "1e-3",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--max-length",
            "32",
            "--precision",
            "fp32",
            "--log-every",
            "1",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Nothing was learned" in out
    from core.runs import RunStore

    run = RunStore(workspace / "runs").list()[0]
    assert [f.kind for f in diagnose_run(run)] == ["stuck"]
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert summary["diagnosis"][0]["kind"] == "stuck"


def test_a_finished_run_with_its_best_checkpoint_kept_is_offered_to_use_it():
    train = [0.7 - 0.02 * i for i in range(30)]
    val = [0.6, 0.5, 0.45, 0.5, 0.6, 0.7]
    found = diagnose(records(train, val, every=10, eval_every=50), CONFIG, label_names=TWO, best_checkpoint_step=150)
    f = found[0]
    assert [x.action for x in f.fixes] == ["keep_best_checkpoint", "retrain"]
    assert f.fixes[0].label == "Use the best checkpoint (step 150) as the model"
    text = format_findings(found, "runs/x/config.json", "run-1")
    assert "python -m core keep-best run-1" in text
    # Once it is the model, the finding says so and offers it no more.
    after = diagnose(records(train, val, every=10, eval_every=50), CONFIG, {"model_step": 150}, label_names=TWO)
    assert [x.action for x in after[0].fixes] == ["retrain"]
    assert "best checkpoint (step 150)" in after[0].detail_text()


def test_findings_are_keys_and_parameters_shown_in_the_readers_language():
    train = [0.7 - 0.02 * i for i in range(30)]
    val = [0.6, 0.5, 0.45, 0.5, 0.6, 0.7]
    f = diagnose(records(train, val, every=10, eval_every=50), CONFIG, label_names=TWO)[0]
    stored = json.loads(json.dumps(f.to_dict()))  # what the CLI's summary holds: plain JSON
    assert stored["title_key"] == "diagnose.overfitting.title" and stored["detail"] == f.detail_text("en")
    assert f.title_text("zh") == "模型在死记训练数据（过拟合）"
    assert "第 150 步" in f.detail_text("zh") and "0.450" in f.detail_text("zh")
    assert f.fixes[0].text("zh") == "启用早停重新训练（保留最佳模型）"
    lora = {"model": {**CONFIG["model"], "method": "lora"}, "train": CONFIG["train"]}
    stuck = diagnose(records([0.69, 0.70, 0.69, 0.693, 0.694, 0.692]), lora, {"validation": {"accuracy": 0.5}},
                     label_names=TWO)[0]  # fmt: skip
    zh = stuck.detail_text("zh")
    assert "可能的原因" in zh and "学习率 5e-05 远低于 lora 方法所需的值" in zh and not re.search(r"[A-Za-z]{5,}", zh)
    gap = diagnose(records([0.7, 0.5, 0.4, 0.3, 0.25, 0.2]), CONFIG, {"validation": {"class_recall": [0.9, 0.2]}},
                   label_names=TWO)  # fmt: skip
    assert "「negative」" in [g for g in gap if g.kind == "class_gap"][0].detail_text("zh")


@pytest.mark.slow
def test_keep_best_checkpoint_makes_it_the_model_of_a_finished_run(workspace, toy_csv, tiny_bert_dir, capsys):
    """A finished run whose best evaluation was at an earlier, checkpointed step: that checkpoint becomes its
    model (weights, scores and model card), once; a run without such a checkpoint is refused, nothing changed."""
    import torch
    from safetensors.torch import load_file

    from core.best_checkpoint import best_checkpoint, keep_best_checkpoint, model_step_of
    from core.cli import main
    from core.errors import TrainingError
    from core.evaluation import evaluate_run
    from core.runs import RunStore
    from core.training import train
    from tests.conftest import tiny_run_config

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, eval_every=2, save_every=2, keep_checkpoints=3)
    run = RunStore(workspace / "runs").create(cfg)
    assert train(cfg, run).state == "finished"
    assert model_step_of(run) == 6
    # As a run whose validation loss rose after step 2 records it (the loop never prunes the best checkpoint).
    results = run.results()
    run.write_results({**results, "best_step": 2})
    assert best_checkpoint(run) == run.checkpoints_dir / "step-000002"
    before = results["test"]["loss"]
    assert main(["--workspace", str(workspace), "keep-best", run.id]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model_step"] == 2 and model_step_of(run) == 2
    model = load_file(run.model_dir / "model.safetensors")
    ckpt = load_file(run.checkpoints_dir / "step-000002" / "model.safetensors")
    assert all(torch.equal(model[k], ckpt[k]) for k in ckpt)
    assert (run.model_dir / "model.safetensors").samefile(run.checkpoints_dir / "step-000002" / "model.safetensors")
    assert not (run.model_dir / "trainer_state.pt").exists()
    assert (run.model_dir / "tokenizer.json").exists() and (run.model_dir / "README.md").exists()
    after = run.results()
    assert after["model_step"] == 2 and after["test"]["loss"] != before
    assert after["test"]["loss"] == pytest.approx(evaluate_run(run, split="test").metrics["loss"])
    shown = run.status()  # the Train page's figures: the promoted model's scores, the run still finished
    assert shown["state"] == "finished" and shown["latest_eval"]["val_loss"] == after["validation"]["loss"]
    assert best_checkpoint(run) is None
    with pytest.raises(TrainingError, match="already"):
        keep_best_checkpoint(run)


@pytest.mark.slow
def test_keep_best_checkpoint_copies_the_weights_where_links_fail(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    import os

    import torch
    from safetensors.torch import load_file

    from core.best_checkpoint import keep_best_checkpoint, model_step_of
    from core.runs import RunStore
    from core.training import train
    from tests.conftest import tiny_run_config

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4, eval_every=2, save_every=2, keep_checkpoints=3)
    run = RunStore(workspace / "runs").create(cfg)
    assert train(cfg, run).state == "finished"
    run.write_results({**run.results(), "best_step": 2})

    def no_links(src, dst):
        raise OSError(1, "links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    keep_best_checkpoint(run)
    assert model_step_of(run) == 2
    weights, best = run.model_dir / "model.safetensors", run.checkpoints_dir / "step-000002" / "model.safetensors"
    assert not weights.samefile(best)
    model, ckpt = load_file(weights), load_file(best)
    assert model.keys() == ckpt.keys() and all(torch.equal(model[k], ckpt[k]) for k in ckpt)
    assert not (run.model_dir / "trainer_state.pt").exists()
