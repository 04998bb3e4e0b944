"""Faults during training: diverging loss, out of memory, stops at awkward moments, a killed process,
a failed or interrupted checkpoint write, and a full disk. Each ends in a state the user can act on and
keeps what was learnt up to the last complete checkpoint.

Faults are injected through the loop's hook (``train(..., hook=fn)`` calls ``fn(event, info)`` at
"data", "step", "eval" and "save") or by replacing the function that writes to disk.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import models
from core.config import RunConfig
from core.events import read_jsonl
from core.jobs import JobRegistry
from core.runs import RunStore
from core.training import StopSignal, train
from tests.conftest import tiny_run_config

REPO = Path(__file__).resolve().parents[2]


def config_for(data: Path, model: Path, **train_settings) -> RunConfig:
    return tiny_run_config(data, model, **{"max_steps": 6, "num_threads": 1, **train_settings})


def losses(run) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in run.metrics() if "loss" in r and "event" not in r}


def no_temporaries(run) -> None:
    hidden = [p for p in run.dir.rglob(".*") if ".tmp" in p.name or p.name.startswith((".model-", ".old-"))]
    assert not hidden, hidden


def finite_weights(folder: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    return all(torch.isfinite(t).all() for t in load_file(folder / "model.safetensors").values())


def loads_and_predicts(folder: Path) -> None:
    from core.generation import predict_proba

    bundle = models.load_for_inference(folder)
    probs = predict_proba(bundle, ["a wonderful film", "an awful film"])
    assert probs.shape == (2, 2)


@pytest.fixture
def capture_model(monkeypatch):
    """Remember the model the run builds, so a hook can poison it."""
    seen: dict = {}
    real = models.prepare_for_method

    def wrapped(bundle, model_cfg):
        seen["bundle"] = real(bundle, model_cfg)
        return seen["bundle"]

    monkeypatch.setattr(models, "prepare_for_method", wrapped)
    return seen


# ------------------------------------------------------------------------------------------------ diverging loss
def test_nan_loss_fails_within_a_step_and_keeps_the_last_good_checkpoint(workspace, toy_csv, tiny_bert_dir,
                                                                         capture_model):  # fmt: skip
    import torch

    def poison(event, info):
        if event == "step" and info["step"] == 5:  # about to compute step 6
            with torch.no_grad():
                capture_model["bundle"].model.classifier.weight.fill_(float("nan"))

    config = config_for(toy_csv, tiny_bert_dir, max_steps=10, save_every=2)
    store = RunStore(workspace / "runs")
    run = store.create(config)
    result = train(config, run, hook=poison)
    assert result.state == "failed" and run.state == "failed"
    assert "nan" in result.message.lower() and "step 6" in result.message
    assert "lower the learning rate" in result.message.lower()
    assert max(losses(run)) == 5  # nothing was logged after the step that diverged
    latest = run.latest_checkpoint()
    assert latest is not None and latest.name == "step-000004" and finite_weights(latest)
    no_temporaries(run)
    # The kept checkpoint is good enough to continue from.
    registry = JobRegistry(store)
    job, created = registry.resume(run.id)
    assert created and job.join(300).state == "finished", job.result
    assert max(losses(run)) == 10


def test_infinite_gradient_never_reaches_a_checkpoint(workspace, toy_csv, tiny_bert_dir, capture_model):
    """A finite loss with an infinite gradient turns the weights into NaN at the optimizer step; the run must
    fail before saving those weights as its 'last good' checkpoint."""
    handles = []

    def blow_up(event, info):
        if event == "step" and info["step"] == 3 and not handles:  # the step that ends on a save (step 4)
            weight = capture_model["bundle"].model.classifier.weight
            handles.append(weight.register_hook(lambda g: g * float("inf")))

    config = config_for(toy_csv, tiny_bert_dir, max_steps=8, save_every=2)
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run, hook=blow_up)
    assert result.state == "failed", result
    assert "lower the learning rate" in result.message.lower()
    for checkpoint in run.checkpoints():
        assert finite_weights(checkpoint), f"{checkpoint.name} holds NaN weights"
    assert run.latest_checkpoint().name == "step-000002"


# ------------------------------------------------------------------------------------------------ out of memory
@pytest.mark.parametrize("kind", ["runtime", "torch"])
def test_out_of_memory_fails_with_advice_and_frees_the_registry(workspace, toy_csv, tiny_bert_dir, kind):
    """A RuntimeError OOM in a training thread (test mode), torch's OutOfMemoryError in the real worker process."""

    def oom(event, info):
        if event == "step" and info["step"] == 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)")

    if kind == "torch":
        registry = JobRegistry(RunStore(workspace / "runs"), mode="process")
        hook = "tests.unit.fault_hooks:oom_at_step_2"  # imported by the worker process
    else:
        registry, hook = JobRegistry(RunStore(workspace / "runs"), mode="thread"), oom
    job, created = registry.start(config_for(toy_csv, tiny_bert_dir), hook=hook)
    assert created
    result = job.join(300)
    assert result.state == "failed" and job.run.state == "failed"
    message = result.message.lower()
    assert "out of memory" in message and "batch size" in message and "max length" in message
    assert registry.active() is None
    # The next run starts and finishes: the registry and the workspace's device lock are free.
    nxt, created = registry.start(config_for(toy_csv, tiny_bert_dir, max_steps=2))
    assert created and nxt.run_id != job.run_id
    assert nxt.join(300).state == "finished"
    assert nxt.run.has_model()


def test_a_hook_function_cannot_go_to_a_worker_process(workspace, toy_csv, tiny_bert_dir):
    registry = JobRegistry(RunStore(workspace / "runs"), mode="process")
    with pytest.raises(ValueError, match="module:function"):
        registry.start(config_for(toy_csv, tiny_bert_dir), hook=lambda event, info: None)
    assert registry.active() is None and list((workspace / "runs").iterdir()) == []  # refused before any folder


# ------------------------------------------------------------------------------------------------ stops at awkward moments
def run_with_stop_at(workspace, toy_csv, tiny_bert_dir, when, **settings):
    stop = StopSignal()

    def hook(event, info):
        if when(event, info):
            stop.set()

    config = config_for(toy_csv, tiny_bert_dir, **settings)
    run = RunStore(workspace / "runs").create(config)
    return run, train(config, run, stop=stop, hook=hook)


def test_stop_during_evaluation_keeps_a_loadable_model(workspace, toy_csv, tiny_bert_dir):
    run, result = run_with_stop_at(workspace, toy_csv, tiny_bert_dir, lambda e, i: e == "eval", eval_every=2)
    assert result.state == "stopped" and run.state == "stopped"
    assert "evaluation" in result.message
    assert result.steps == 2 and run.latest_checkpoint().name == "step-000002"
    loads_and_predicts(run.model_dir)
    no_temporaries(run)


def test_stop_during_checkpoint_saving_keeps_a_complete_checkpoint(workspace, toy_csv, tiny_bert_dir):
    run, result = run_with_stop_at(workspace, toy_csv, tiny_bert_dir, lambda e, i: e == "save", save_every=2)
    assert result.state == "stopped"
    latest = run.latest_checkpoint()
    assert latest.name == "step-000002"
    assert {"model.safetensors", "trainer_state.pt", "config.json"} <= {p.name for p in latest.iterdir()}
    loads_and_predicts(latest)
    loads_and_predicts(run.model_dir)
    no_temporaries(run)


def test_stop_during_the_first_step_keeps_that_step(workspace, toy_csv, tiny_bert_dir):
    run, result = run_with_stop_at(workspace, toy_csv, tiny_bert_dir, lambda e, i: e == "step")
    assert result.state == "stopped" and result.steps == 1
    loads_and_predicts(run.model_dir)


def test_stop_before_the_first_step_says_nothing_to_keep(workspace, toy_csv, tiny_bert_dir):
    run, result = run_with_stop_at(workspace, toy_csv, tiny_bert_dir, lambda e, i: e == "data", grad_accum=4)
    assert result.state == "stopped" and run.state == "stopped"
    assert "nothing to keep" in run.status()["message"]
    assert not run.model_dir.exists() and not run.checkpoints()
    no_temporaries(run)


# ------------------------------------------------------------------------------------------------ checkpoint writes
def test_exception_during_a_checkpoint_save_leaves_no_half_checkpoint(workspace, toy_csv, tiny_bert_dir):
    saves = []

    def crash_second_save(event, info):
        if event == "save":
            saves.append(info["step"])
            if len(saves) == 2:
                assert Path(info["path"]).name.startswith(".tmp-")  # weights go to a hidden folder first
                raise RuntimeError("killed mid-save")

    config = config_for(toy_csv, tiny_bert_dir, save_every=2)
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run, hook=crash_second_save)
    assert result.state == "failed"
    assert [p.name for p in run.checkpoints()] == ["step-000002"]
    assert run.latest_checkpoint().name == "step-000002"
    no_temporaries(run)


def test_replacing_a_model_never_leaves_a_half_one_under_its_name(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    """A stopped run has a model; resuming replaces it. A kill while the old one is deleted must not leave a
    folder named model/ that looks complete but lacks its weights."""
    import shutil

    from core import training

    run, result = run_with_stop_at(workspace, toy_csv, tiny_bert_dir, lambda e, i: e == "save", save_every=2)
    assert result.state == "stopped" and run.has_model()
    real_rmtree = shutil.rmtree

    def killed_mid_delete(path, *args, **kwargs):
        path = Path(path)
        if (path / "model.safetensors").exists() and "checkpoints" not in path.parts:
            (path / "model.safetensors").unlink()  # the delete got this far...
            raise KeyboardInterrupt("killed")  # ...when the process died
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(training.shutil, "rmtree", killed_mid_delete)
    with pytest.raises(KeyboardInterrupt):
        train(run.config(), run, resume=True)
    monkeypatch.undo()
    assert run.has_model() and (run.model_dir / "model.safetensors").exists()
    loads_and_predicts(run.model_dir)


def test_half_written_checkpoints_are_never_picked(tmp_path):
    from core.runs import Run

    run = Run(tmp_path / "run")
    good = run.checkpoints_dir / "step-000004"
    good.mkdir(parents=True)
    (good / "trainer_state.pt").write_bytes(b"x")
    (good / "model.safetensors").write_bytes(b"x")  # a complete checkpoint has its weights too
    (run.checkpoints_dir / ".tmp-step-000008-ab12cd").mkdir()  # a save killed before its rename
    (run.checkpoints_dir / "step-000012").mkdir()  # a folder without its trainer state
    assert run.latest_checkpoint() == good


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    import torch

    real, calls = torch.save, []

    def full_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    config = config_for(toy_csv, tiny_bert_dir, save_every=2)
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run)
    assert result.state == "failed"
    assert "disk is full" in result.message and "free some disk space" in result.message.lower()
    assert run.latest_checkpoint().name == "step-000002" and finite_weights(run.latest_checkpoint())
    no_temporaries(run)


def test_disk_full_while_saving_the_final_model(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    import transformers.modeling_utils as mu

    real = mu.safe_save_file

    def full_for_final_model(tensors, filename, *args, **kwargs):
        if "/.model-" in str(filename):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, filename, *args, **kwargs)

    def no_room_for_a_link(src, dst):  # the final model links the checkpoint's weights first, then writes them
        if "/.model-" in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_link(src, dst)

    from core import models

    real_link = models.os.link
    monkeypatch.setattr(mu, "safe_save_file", full_for_final_model)
    monkeypatch.setattr(models.os, "link", no_room_for_a_link)
    config = config_for(toy_csv, tiny_bert_dir, max_steps=2)
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run)
    assert result.state == "failed"
    assert "disk is full" in result.message and "free some disk space" in result.message.lower()
    assert run.latest_checkpoint().name == "step-000002"
    assert not run.model_dir.exists()
    no_temporaries(run)


def test_disk_full_while_writing_the_status_leaves_the_old_one(tmp_path, monkeypatch):
    from core import runs

    run = RunStore(tmp_path / "runs").create(RunConfig())
    before = run.status()

    def full_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs.os, "fsync", full_fsync)
    with pytest.raises(OSError):
        run.set_status("running", message="Training")
    monkeypatch.undo()
    assert run.status() == before
    assert [p.name for p in run.dir.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------------------------------------ killed process
KILLABLE = """
import sys, time, torch
real_save, calls = torch.save, []
def slow_second_save(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        time.sleep(120)  # the test SIGKILLs the process here: weights written, trainer state not yet
    return real_save(*args, **kwargs)
torch.save = slow_second_save
from core.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(tmp_path, toy_csv, tiny_bert_dir):
    workspace = tmp_path / "ws"
    args = ["--workspace", str(workspace), "train", "--data", str(toy_csv), "--model", str(tiny_bert_dir),
            "--task", "classification", "--max-steps", "12", "--save-every", "4", "--log-every", "1",
            "--precision", "fp32", "--seed", "0", "--num-threads", "1", "--batch-size", "16", "--lr", "1e-3",
            "--max-length", "32", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    store = RunStore(workspace / "runs")
    try:
        deadline = time.time() + 300
        half = []
        while time.time() < deadline and not half and proc.poll() is None:
            time.sleep(0.05)
            half = [p for p in (workspace / "runs").glob("*/checkpoints/.tmp-step-000008-*/model.safetensors")]
        assert half, f"the second checkpoint never started: {proc.stdout.read() if proc.poll() is not None else ''}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)  # reaped, so its pid is really gone
    (run,) = store.list()
    # What the dead process left on disk says running; every reader sees interrupted at once.
    assert run.stored_status()["state"] == "running" and run.state == "interrupted"

    # Metrics up to the last flushed line are intact.
    lines = run.metrics_path.read_bytes().split(b"\n")
    parsed = [json.loads(line) for line in lines[:-1]]
    before_kill = [r for r in parsed if "loss" in r]
    assert [r["step"] for r in before_kill] == list(range(1, 9))
    assert read_jsonl(run.metrics_path)[0] == parsed

    # A restarted server marks it interrupted; the half-written step-8 checkpoint is not picked.
    registry = JobRegistry(RunStore(workspace / "runs"))
    assert run.state == "interrupted" and "resume" in run.status()["message"].lower()
    assert run.latest_checkpoint().name == "step-000004"
    job, created = registry.resume(run.id)
    assert created and job.join(300).state == "finished", job.result
    resumed = losses(run)

    reference_config = run.config()
    reference = store.create(reference_config, run_id="reference")
    assert train(reference_config, reference).state == "finished"
    expected = losses(reference)
    assert max(resumed) == max(expected) == 12
    assert abs(resumed[12] - expected[12]) < 1e-3, (resumed[12], expected[12])
    # The steps before the kill agree with the reference too (same seed, same batches).
    assert all(abs(r["loss"] - expected[r["step"]]) < 1e-3 for r in before_kill)
    no_temporaries(reference)


# ------------------------------------------------------------------------------------------------ damaged files on disk
def test_damaged_run_files_do_not_break_reading(tmp_path):
    store = RunStore(tmp_path / "runs")
    good = store.create(RunConfig(name="good"), run_id="good")
    good.set_status("finished")
    good.write_results({"validation": {"accuracy": 0.9}})
    bad = store.create(RunConfig(name="bad"), run_id="bad")
    # Torn and garbled lines (a crash, a disk error) between whole ones; an unfinished last line.
    bad.metrics_path.write_bytes(b'{"step":1,"loss":0.5}\n\x00\xff\xfe garbage\n{"step":2,"lo{"step":3,"loss":0.4}\n'
                                 b'{"step":4,"loss":"nan"}\n{"step":5')  # fmt: skip
    assert bad.metrics() == [{"step": 1, "loss": 0.5}, {"step": 4, "loss": "nan"}]
    (bad.dir / "status.json").write_bytes(b"\xff\xfe[1,")
    (bad.dir / "results.json").write_text("[1, 2]", encoding="utf-8")
    assert bad.status()["state"] == "damaged" and bad.results() == {}
    rows = {row["run"]: row for row in store.summaries()}
    assert rows["good"]["val_accuracy"] == 0.9 and rows["bad"]["state"] == "damaged"
    # A restarted server shows the unreadable status as damaged: it is not guessed at, nor rewritten.
    assert "bad" not in store.recover_interrupted() and bad.state == "damaged"
    assert (bad.dir / "status.json").read_bytes() == b"\xff\xfe[1,"
