"""Each diagnosis on a crafted curve, its fix, the CLI's printout, and the stuck case on a real run."""

from __future__ import annotations

import json
import math

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
    assert f.best_step == 100 and "step 100" in f.detail
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
    assert found[0].fixes[0].train == {"epochs": 4.0} and "4 epochs" in found[0].detail
    # A run still training is not told to train longer.
    assert "underfitting" not in kinds(diagnose(records(train, val), CONFIG, state="running", label_names=TWO))


def test_flat_loss_at_log_classes_is_stuck_with_the_method_rate_as_cause():
    train = [math.log(2) + 0.01 * ((-1) ** i) for i in range(30)]
    lora = {"model": {"task": "classification", "method": "lora"}, "train": {"learning_rate": 5e-5, "epochs": 1.0}}
    found = diagnose(records(train), lora, {"validation": {"accuracy": 0.51}}, label_names=TWO)
    assert kinds(found) == ["stuck"]
    f = found[0]
    assert "Nothing was learned" in f.title and "ln(2) = 0.693" in f.detail
    assert "far below what the lora method needs" in f.detail
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
    assert gap and "*bold* <b>" in gap[0].detail and "40%" in gap[0].detail


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
