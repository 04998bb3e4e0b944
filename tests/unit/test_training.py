"""The training loop on tiny models: it learns, it is reproducible, it resumes exactly, it saves what it says."""

from __future__ import annotations

import json
import random

import pytest

from core.config import RunConfig
from core.runs import RunStore
from core.training import StopSignal, train
from tests.conftest import FILLER, NEGATIVE, POSITIVE, tiny_run_config

# Enough for the tiny BERT (random weights) to learn the one-word toy tasks: 120 steps, a few seconds on 2 cores.
# A random-init transformer sits at chance for a while, then learns suddenly; these settings got there for
# each of 8 seeds tried (3e-3 without the longer warmup stayed at chance for 2 of 5).
LEARNS = {"epochs": 5, "learning_rate": 2e-3, "batch_size": 8, "warmup_steps": 20}
TRAIN_KEYS = {"step", "epoch", "loss", "lr", "samples_per_s", "tokens_per_s", "elapsed_s"}


def run_training(workspace, config: RunConfig, **kwargs):
    run = RunStore(workspace / "runs").create(config)
    return run, train(config, run, **kwargs)


def train_lines(run) -> list[dict]:
    return [m for m in run.metrics() if "loss" in m]


def eval_lines(run) -> list[dict]:
    return [m for m in run.metrics() if "val_loss" in m]


def start_line(run) -> dict:
    return next(m for m in run.metrics() if m.get("event") == "start")


def test_loss_goes_down_and_accuracy_beats_chance(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, **LEARNS)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished", result.message
    losses = [m["loss"] for m in train_lines(run)]
    assert len(losses) == 5 * 24  # 192 training rows / batch 8, 5 epochs, a line per step
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > 0.6 and last < 0.3, (first, last)  # from chance (ln 2 = 0.69) to clearly learnt
    assert result.results["test"]["accuracy"] >= 0.8  # two balanced classes: chance is 0.5
    assert result.results["validation"]["accuracy"] >= 0.8
    assert run.results()["test"] == result.results["test"]
    evals = eval_lines(run)
    # 8 to 10 validation points per run by default (not one per epoch), the last at the last step.
    assert [e["step"] for e in evals] == [12, 24, 36, 48, 60, 72, 84, 96, 108, 120]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]


def test_metrics_lines_have_the_documented_fields(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4, eval_every=2, log_every=2)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished", result.message
    start = start_line(run)
    assert start["train_examples"] == 192 and start["validation_examples"] == 24
    assert start["total_steps"] == 4 and start["precision"] == "fp32" and start["device"] == "cpu"
    assert 0 < start["trainable_params"] == start["total_params"]
    lines = train_lines(run)
    assert [m["step"] for m in lines] == [2, 4]
    for m in lines:
        assert set(m) >= TRAIN_KEYS
        assert m["samples_per_s"] > 0 and m["tokens_per_s"] > m["samples_per_s"] and m["elapsed_s"] > 0
        assert 0 < m["epoch"] <= 1
    assert lines[0]["elapsed_s"] < lines[1]["elapsed_s"]
    evals = eval_lines(run)
    assert [e["step"] for e in evals] == [2, 4]
    for e in evals:
        assert {"val_loss", "val_accuracy", "val_f1", "best_step"} <= set(e)
        assert 0 <= e["val_accuracy"] <= 1
    # Each line of the file is whole JSON on its own (a reader polls it while training writes).
    for raw in run.metrics_path.read_text().splitlines():
        json.loads(raw)


def test_status_goes_queued_running_finished(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2)
    run = RunStore(workspace / "runs").create(cfg)
    seen = [run.state]

    def hook(event, info):
        if event in ("data", "step"):
            seen.append(run.state)

    result = train(cfg, run, hook=hook)
    seen.append(run.state)
    assert result.state == "finished"
    assert seen[0] == "queued" and seen[-1] == "finished" and set(seen[1:-1]) == {"running"}
    status = run.status()
    assert status["step"] == 2 and status["total_steps"] == 2
    assert status["finished_at"] >= status["started_at"] >= status["created_at"]
    assert run.has_model()


def test_unusable_data_ends_failed_with_the_message(workspace, tmp_path, tiny_bert_dir):
    bad = tmp_path / "one-class.csv"
    bad.write_text("text,label\n" + "\n".join(f"text number {i},pos" for i in range(30)) + "\n")
    run, result = run_training(workspace, tiny_run_config(bad, tiny_bert_dir))
    assert result.state == "failed"
    assert run.state == "failed"
    assert run.status()["message"] == result.message
    assert "one-class.csv" in result.message and "Traceback" not in result.message


def test_same_seed_gives_identical_losses(workspace, toy_csv, tiny_bert_dir):
    def losses(seed):
        run, result = run_training(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, seed=seed))
        assert result.state == "finished"
        return [m["loss"] for m in train_lines(run)]

    first, again, other = losses(0), losses(0), losses(1)
    assert len(first) == 6
    assert first == again  # bit for bit: weights, shuffling and dropout all follow the seed
    assert first != other


def test_resumed_run_ends_like_an_uninterrupted_one(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, epochs=2)  # 24 steps, an evaluation after each epoch
    full_run, full = run_training(workspace, cfg)
    assert full.state == "finished" and full.steps == 24

    stop = StopSignal()

    def stop_mid_epoch(event, info):
        if event == "step" and info["step"] == 7:
            stop.set()

    run, first = run_training(workspace, cfg, stop=stop, hook=stop_mid_epoch)
    assert first.state == "stopped" and run.state == "stopped"
    assert first.steps == 8  # the step in flight finishes, then the loop stops
    assert run.latest_checkpoint().name == "step-000008"

    shown = []  # the status's step as the resumed run prepares and at its first step: never back to 0

    def first_step(event, info):
        if event in ("data", "step") and len(shown) < 2:
            shown.append(run.status()["step"])

    second = train(cfg, run, resume=True, hook=first_step)
    assert second.state == "finished" and second.steps == 24
    assert shown == [8, 8]
    assert [m["resumed_from_step"] for m in run.metrics() if m.get("event") == "start"] == [0, 8]
    expected = {m["step"]: m["loss"] for m in train_lines(full_run)}
    resumed = {m["step"]: m["loss"] for m in train_lines(run)}
    assert sorted(resumed) == list(range(1, 25))
    assert abs(resumed[24] - expected[24]) < 1e-3
    for step in range(9, 25):  # every step after the resume, not only the last
        assert resumed[step] == pytest.approx(expected[step], abs=1e-3)
    assert second.results["test"]["loss"] == pytest.approx(full.results["test"]["loss"], abs=1e-3)


def test_checkpoint_folders_hold_weights_tokenizer_and_state(workspace, toy_csv, tiny_bert_dir):
    import torch

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=20, eval_every=10, keep_checkpoints=5)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    assert [p.name for p in run.checkpoints()] == ["step-000010", "step-000020"]
    for ckpt in run.checkpoints():
        names = {p.name for p in ckpt.iterdir()}
        assert {"trainer_state.pt", "model.safetensors", "config.json", "tokenizer.json", "workbench.json"} <= names
        meta = json.loads((ckpt / "workbench.json").read_text())
        assert meta["step"] == int(ckpt.name.split("-")[1])
        assert meta["label_names"] == ["negative", "positive"]
        state = torch.load(ckpt / "trainer_state.pt", weights_only=True)
        assert state["progress"]["step"] == meta["step"]
        assert {"optimizer", "scheduler", "rng_cpu"} <= set(state)
        # The moments are kept where a step may follow; the complete run's last checkpoint has none to take.
        assert (state["optimizer"] is None) == (meta["step"] == 20)
    assert [e["step"] for e in eval_lines(run)] == [10, 20]
    assert not list(run.checkpoints_dir.glob(".tmp-*"))
    first, last = (ckpt / "trainer_state.pt" for ckpt in run.checkpoints())
    assert last.stat().st_size * 10 < first.stat().st_size  # the optimizer's state is most of the file


def test_a_complete_run_that_fails_after_its_last_checkpoint_resumes_to_the_end(workspace, toy_csv, tiny_bert_dir,
                                                                                 monkeypatch):  # fmt: skip
    import core.models

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=12)
    _, full = run_training(workspace, cfg)
    assert full.state == "finished"

    stock = core.models.save_model

    def disk_gone(bundle, folder, meta, **kwargs):
        if "weights_from" in kwargs:  # the final model, after the last checkpoint was written
            raise OSError("the disk went away")
        return stock(bundle, folder, meta, **kwargs)

    monkeypatch.setattr(core.models, "save_model", disk_gone)
    run, failed = run_training(workspace, cfg)
    assert failed.state == "failed" and run.latest_checkpoint().name == "step-000012"
    monkeypatch.setattr(core.models, "save_model", stock)

    resumed = train(cfg, run, resume=True)  # no optimizer state in that checkpoint, and no step left to take
    assert resumed.state == "finished" and resumed.steps == 12
    assert [m["step"] for m in train_lines(run)] == list(range(1, 13))  # nothing trained again
    assert run.status()["step"] == 12  # what the Train page shows (the resumed attempt logged no step)
    for split in ("validation", "test"):  # the same weights, scored again
        assert resumed.results[split]["loss"] == pytest.approx(full.results[split]["loss"], abs=1e-5)
        assert resumed.results[split]["accuracy"] == full.results[split]["accuracy"]
    assert (run.model_dir / "model.safetensors").samefile(run.latest_checkpoint() / "model.safetensors")


def test_checkpoint_state_is_saved_without_checksums_and_the_setting_given_back(workspace, toy_csv, tiny_bert_dir):
    import zipfile

    import torch

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    with zipfile.ZipFile(run.checkpoints()[-1] / "trainer_state.pt") as saved:
        assert {info.CRC for info in saved.infolist()} == {0}  # no CRC-32 computed (torch.load never reads it)
    assert torch.utils.serialization.config.save.compute_crc32 is True  # the process's own setting, as found


def test_final_model_links_the_kept_checkpoints_weights(workspace, toy_csv, tiny_bert_dir):
    import shutil

    from safetensors.torch import load_file

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=20, eval_every=10, keep_checkpoints=5)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    last = run.checkpoints_dir / "step-000020"
    weights = run.model_dir / "model.safetensors"
    assert weights.samefile(last / "model.safetensors")  # one file on disk, not a second copy
    for name in ("workbench.json", "README.md", "config.json", "tokenizer.json"):  # written or copied: their own
        assert not (run.model_dir / name).samefile(last / name), name
    meta = json.loads((run.model_dir / "workbench.json").read_text())
    assert (meta["run_id"], meta["weights_step"]) == (run.id, 20)
    expected = load_file(last / "model.safetensors")
    shutil.rmtree(run.checkpoints_dir)  # deleting the checkpoints keeps the model whole
    loaded = load_file(weights)
    assert expected.keys() == loaded.keys() and all(loaded[k].equal(v) for k, v in expected.items())


def test_final_model_is_written_where_links_fail(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    import os

    from safetensors.torch import load_file

    def no_links(src, dst):
        raise OSError(1, "links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    checkpoint = run.checkpoints_dir / "step-000004" / "model.safetensors"
    weights = run.model_dir / "model.safetensors"
    assert not weights.samefile(checkpoint)
    expected, loaded = load_file(checkpoint), load_file(weights)
    assert expected.keys() == loaded.keys() and all(loaded[k].equal(v) for k, v in expected.items())
    assert (run.model_dir / "tokenizer.json").exists() and (run.model_dir / "README.md").exists()


def test_final_model_loads_in_a_transformers_pipeline(workspace, toy_csv, tiny_bert_dir):
    from transformers import pipeline

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=3)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    out = pipeline("text-classification", model=str(run.model_dir), device="cpu")(["a wonderful film"])
    assert out[0]["label"] in ("negative", "positive") and 0.5 <= out[0]["score"] <= 1


def test_keep_checkpoints_prunes_the_oldest(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=10, save_every=2, keep_checkpoints=2)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    assert [p.name for p in run.checkpoints()] == ["step-000008", "step-000010"]


def test_max_steps_stops_there_and_the_schedule_reaches_zero(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=5, epochs=3)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished" and result.steps == 5
    lines = train_lines(run)
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 5]
    # Linear decay without warmup: lr after step s is peak * (1 - s / total).
    for m in lines:
        assert m["lr"] == pytest.approx(1e-3 * (1 - m["step"] / 5))


def test_warmup_ramps_the_learning_rate(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, warmup_steps=3, schedule="constant")
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    lrs = [m["lr"] for m in train_lines(run)]
    assert lrs == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3, 1e-3, 1e-3])


@pytest.mark.parametrize(("grad_accum", "per_epoch"), [(4, 3), (5, 3)])
def test_grad_accum_gives_the_expected_optimizer_steps(workspace, toy_csv, tiny_bert_dir, grad_accum, per_epoch):
    # 192 training rows / batch 16 = 12 forward passes per epoch; a partial group at the epoch's end still steps.
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, epochs=2, grad_accum=grad_accum)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    start = start_line(run)
    assert start["steps_per_epoch"] == per_epoch and start["total_steps"] == 2 * per_epoch
    assert result.steps == 2 * per_epoch
    lines = train_lines(run)
    assert [m["step"] for m in lines] == list(range(1, 2 * per_epoch + 1))
    assert lines[-1]["epoch"] == 2.0
    assert run.status()["step"] == 2 * per_epoch


def test_time_budget_stops_cleanly_and_keeps_the_model(workspace, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, epochs=50, time_budget_min=0.005)  # 0.3 s of 600 steps
    run, result = run_training(workspace, cfg)
    assert result.state == "finished"
    assert "Time budget" in result.message
    assert 1 <= result.steps < 600
    assert run.has_model()
    assert run.latest_checkpoint().name == f"step-{result.steps:06d}"
    assert "accuracy" in result.results["test"]
    assert run.status()["message"] == result.message


def _regression_csv(path, n=240, low=0.0, high=1.0):
    rng = random.Random(3)
    lines = ["review,score"]
    for _ in range(n):
        words = rng.sample(FILLER, rng.randint(3, 8))
        positive = rng.random() < 0.5
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if positive else NEGATIVE))
        score = (high if positive else low) + rng.uniform(-0.1, 0.1)
        lines.append(f"{' '.join(words)},{score:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_regression_trains_and_reports_mse_mae_r2(workspace, tmp_path, tiny_bert_dir):
    data = _regression_csv(tmp_path / "scores.csv")
    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(data)},
            "model": {"source": str(tiny_bert_dir), "task": "regression"},
            "train": {**LEARNS, "max_length": 32, "precision": "fp32", "log_every": 1, "seed": 0},
        }
    )  # fmt: skip
    run, result = run_training(workspace, cfg)
    assert result.state == "finished", result.message
    test = result.results["test"]
    assert {"loss", "mse", "mae", "r2"} <= set(test)
    # Targets near 0 or 1 (variance ~0.25): predicting the mean would give r2 = 0 and mse ~0.25.
    assert test["r2"] > 0.6 and test["mse"] < 0.1 and test["mae"] < 0.25
    assert test["loss"] == pytest.approx(test["mse"], rel=1e-4)
    assert {"val_mse", "val_mae", "val_r2"} <= set(eval_lines(run)[-1])
    from core.models import load_for_inference

    assert load_for_inference(run.model_dir).model.config.num_labels == 1


def test_regression_on_ratings_far_from_zero_learns(workspace, tmp_path, tiny_bert_dir):
    """Ratings of 1 or 4: the head starts at the targets' mean and spread, so the run learns the signal."""
    data = _regression_csv(tmp_path / "ratings.csv", low=1.0, high=4.0)
    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(data)},
            "model": {"source": str(tiny_bert_dir), "task": "regression"},
            "train": {**LEARNS, "max_length": 32, "precision": "fp32", "log_every": 1, "seed": 0},
        }
    )  # fmt: skip
    _, result = run_training(workspace, cfg)
    assert result.state == "finished", result.message
    # Predicting the mean would give r2 = 0 and mse ~2.25.
    assert result.results["test"]["r2"] > 0.6, result.results["test"]


def test_sentence_pair_classification_uses_token_type_ids(workspace, tmp_path, tiny_bert_dir, monkeypatch):
    import core.batching

    rng = random.Random(5)
    lines = ["premise,hypothesis,label"]
    for _ in range(240):
        positive = rng.random() < 0.5
        first = " ".join(rng.sample(FILLER, 3))
        second = " ".join(rng.sample(FILLER, 3) + [rng.choice(POSITIVE if positive else NEGATIVE)])
        lines.append(f"{first},{second},{'pos' if positive else 'neg'}")
    data = tmp_path / "pairs.csv"
    data.write_text("\n".join(lines) + "\n")

    seen_type_ids = []
    real_collate = core.batching.collate

    def spy(data, index, pad_id, device, *rest):
        batch, labels = real_collate(data, index, pad_id, device, *rest)
        seen_type_ids.append(batch.get("token_type_ids"))
        return batch, labels

    monkeypatch.setattr(core.batching, "collate", spy)
    cfg = tiny_run_config(data, tiny_bert_dir, **LEARNS)
    run, result = run_training(workspace, cfg)
    assert result.state == "finished", result.message
    assert cfg.data.text_pair_column is None  # guessed from the column names
    assert set(run.config().to_dict()["data"]) and (run.data_dir / "train.parquet").exists()
    import pandas as pd

    assert list(pd.read_parquet(run.data_dir / "train.parquet").columns) == ["text", "text_pair", "label"]
    # Every batch carried segment ids, and the second sentence's tokens were marked 1.
    assert seen_type_ids and all(t is not None for t in seen_type_ids)
    assert all(int(t.max()) == 1 for t in seen_type_ids)
    assert result.results["test"]["accuracy"] >= 0.75


@pytest.mark.slow
def test_generation_default_lowers_validation_perplexity(workspace, toy_corpus):
    from core.evaluation import evaluate_model
    from core.models import build_model

    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(toy_corpus)},
            "model": {"source": "default", "task": "generation"},
            "train": {"epochs": 3, "batch_size": 16, "learning_rate": 1e-3, "max_length": 32, "precision": "fp32",
                      "log_every": 1, "seed": 0, "warmup_steps": 2},
        }
    )  # fmt: skip
    run, result = run_training(workspace, cfg)
    assert result.state == "finished", result.message
    trained_ppl = result.results["validation"]["perplexity"]

    # The same model before any training: same seed and the same BPE trained on the same training split.
    import pandas as pd

    train_split = pd.read_parquet(run.data_dir / "train.parquet")
    validation = pd.read_parquet(run.data_dir / "validation.parquet")
    untrained = build_model("default", "generation", train_texts=train_split["text"].tolist(), max_length=32, seed=0)
    before = evaluate_model(untrained, validation, max_length=32)
    assert len(untrained.tokenizer) == start_vocab(run)
    untrained_ppl = before.metrics["perplexity"]
    assert untrained_ppl > 100  # near-uniform over a vocabulary of a few hundred tokens
    assert trained_ppl < untrained_ppl / 10, (trained_ppl, untrained_ppl)
    evals = eval_lines(run)
    assert evals[-1]["val_perplexity"] < evals[0]["val_perplexity"]
    assert evals[-1]["val_perplexity"] == pytest.approx(trained_ppl, rel=1e-3)


def start_vocab(run) -> int:
    from core.models import load_for_inference

    return load_for_inference(run.model_dir).model.config.vocab_size


def test_a_runs_thread_count_does_not_outlive_it(workspace, toy_csv, tiny_bert_dir):
    """torch's thread count is process-wide: the server must get its own back after a run that chose 1."""
    import torch

    before = torch.get_num_threads()
    _, result = run_training(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2, num_threads=1))
    assert result.state == "finished"
    assert torch.get_num_threads() == before


def test_a_finished_runs_latest_evaluation_is_the_whole_splits_final_score(
    workspace, toy_csv, tiny_bert_dir, tmp_path, monkeypatch
):
    """During training the curve scores a fixed subset of a large validation split; once the run ends, the
    status's latest evaluation (the Train page's numbers) is the whole split's final score, as in the results,
    and the curve keeps its subset points. The last step's validation scores the whole split once for both: its
    curve point comes from the subset's rows of that pass, and the final validation scores reuse it."""
    import core.evaluation
    from tests.conftest import toy_sentiment_rows

    val = tmp_path / "val.csv"
    rows = "".join(f"{t},{y}\n" for t, y in toy_sentiment_rows(120, seed=7))
    val.write_text("text,label\n" + rows, encoding="utf-8")
    raw = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, eval_every=3).to_dict()
    cfg = RunConfig.from_dict({**raw, "data": {**raw["data"], "validation_path": str(val)}})
    passes = []
    real = core.evaluation.score_encoded
    monkeypatch.setattr(core.evaluation, "score_encoded", lambda *a, **k: passes.append(len(a[1])) or real(*a, **k))
    run, result = run_training(workspace, cfg)
    assert result.state == "finished", result.message
    assert passes == [32, 120, 24]  # subset at step 3, whole split at step 6 (not scored again), the test split
    latest, final = run.status()["latest_eval"], result.results["validation"]
    assert latest["val_loss"] == final["loss"] and latest["val_accuracy"] == final["accuracy"]
    assert run.status()["samples_per_s"] == result.results["samples_per_s"]  # the run's speed, not its last window's
    evals = eval_lines(run)
    assert [e["step"] for e in evals] == [3, 6]  # the curve keeps its points, scored on the subset
    assert evals[-1]["val_loss"] != final["loss"]

    # The last point is the subset's: the saved model scored on those rows alone gives it again.
    import pandas as pd
    import torch

    from core import components, evalplan
    from core.models import load_for_inference
    from core.scoring import score_encoded

    bundle = load_for_inference(run.model_dir)
    validation = pd.read_parquet(run.data_dir / "validation.parquet")
    whole = components.encode_split(bundle, validation, "classification", 32)
    tc = cfg.train
    subset = evalplan.validation_subset(whole, tc, total_steps=6, interval=3)
    assert len(subset) == 32
    alone = score_encoded(bundle.model, subset, "classification", batch_size=64, pad_id=bundle.tokenizer.pad_token_id,
                          device=torch.device("cpu"), precision=start_line(run)["precision"])  # fmt: skip
    assert alone.loss == pytest.approx(evals[-1]["val_loss"], rel=1e-3)
    accuracy = float((alone.logits.argmax(-1) == subset.labels).mean())
    assert accuracy == pytest.approx(evals[-1]["val_accuracy"], abs=1 / 32 + 1e-9)


def test_final_validation_reuses_the_last_validation_of_the_kept_weights(
    workspace, toy_csv, tiny_bert_dir, monkeypatch
):
    """The last validation scores the whole split at the last step; the final scores of those same weights reuse
    it instead of a second pass (the test split is still scored). Restored best weights are scored again."""
    import core.evaluation

    passes = []
    real = core.evaluation.score_encoded
    monkeypatch.setattr(core.evaluation, "score_encoded", lambda *a, **k: passes.append(len(a[1])) or real(*a, **k))
    run, result = run_training(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, eval_every=3))
    assert result.state == "finished", result.message
    evals = eval_lines(run)
    assert [e["step"] for e in evals] == [3, 6]
    assert len(passes) == len(evals) + 1  # two validations and the test split, no second validation pass
    assert result.results["validation"]["loss"] == evals[-1]["val_loss"]
    assert result.results["validation"]["accuracy"] == evals[-1]["val_accuracy"]
    assert set(result.results["validation"]) >= {"loss", "accuracy", "f1", "class_recall"}

    passes.clear()
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, eval_every=3, early_stopping_patience=5,
                          early_stopping_metric="val_accuracy", learning_rate=0.5)  # fmt: skip
    run, result = run_training(workspace, cfg)
    weights = json.loads((run.model_dir / "workbench.json").read_text())["weights_step"]
    assert len(passes) == len(eval_lines(run)) + 1 + (weights != 6)  # a restored best is scored again


def test_the_cycle_collector_rests_during_setup_and_is_given_back(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    """Setup (imports, model, data) runs with Python's cycle collector off and freezes what it built, so the
    collections the loop sets off do not walk it; the loop runs with the collector on; afterwards the caller's
    process is as it was (collector on, nothing frozen), unless the process is about to end."""
    import gc

    import core.training

    seen = {}
    real_setup = core.training.Recipe.setup

    def setup(self, resume):
        seen["setup"] = gc.isenabled()
        return real_setup(self, resume)

    monkeypatch.setattr(core.training.Recipe, "setup", setup)

    def hook(event, info):
        if event == "step":
            seen.setdefault("loop", gc.isenabled())
            seen.setdefault("frozen", gc.get_freeze_count())

    assert gc.isenabled() and gc.get_freeze_count() == 0
    run, result = run_training(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2), hook=hook)
    assert result.state == "finished", result.message
    assert seen["setup"] is False and seen["loop"] is True and seen["frozen"] > 10_000
    assert gc.isenabled() and gc.get_freeze_count() == 0

    try:
        run, result = run_training(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2), process_ends=True)
        assert result.state == "finished" and gc.isenabled() and gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()

    gc.disable()  # a caller that keeps the collector off finds it off afterwards
    try:
        run, result = run_training(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2))
        assert result.state == "finished" and not gc.isenabled()
    finally:
        gc.enable()
