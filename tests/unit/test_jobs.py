"""Background jobs: one per device, idempotent start under concurrency, stop keeps a usable model, resume."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from core.errors import WorkbenchError
from core.jobs import JobRegistry, live_run_ids
from core.runs import RunStore, atomic_write_text
from tests.conftest import tiny_run_config

WAIT = 60  # seconds; a hook never blocks a training thread for ever, even when a test fails


class Gate:
    """A training hook that holds the worker thread at a given step until the test releases it."""

    def __init__(self, at_step: int = 0):
        self.at_step = at_step
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, event, info):
        if event == "step" and info["step"] == self.at_step and not self.reached.is_set():
            self.reached.set()
            self.release.wait(WAIT)


@pytest.fixture
def registry(workspace):
    reg = JobRegistry(RunStore(workspace / "runs"))
    yield reg
    # Leave no thread behind: registries share the process-wide list of live jobs.
    for job in list(reg._jobs.values()):
        job.stop()
        job.join(WAIT)


def test_start_is_idempotent_under_eight_concurrent_callers(registry, toy_csv, tiny_bert_dir):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=3)
    gate = Gate(at_step=0)
    barrier = threading.Barrier(8)
    answers = []

    def click():
        barrier.wait(WAIT)
        answers.append(registry.start(cfg, hook=gate))

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    try:
        assert len(answers) == 8
        assert sum(created for _, created in answers) == 1
        assert len({job.run_id for job, _ in answers}) == 1
        assert len(list(registry.store.root.iterdir())) == 1  # one run folder, not eight
        assert gate.reached.wait(WAIT)
        job = answers[0][0]
        assert registry.active("cpu") is job and job.run_id in live_run_ids()
        assert registry.describe() == [{"run_id": job.run_id, "device": "cpu", "state": "running"}]
        # Another configuration while the device is busy gets the running job back, not a second one.
        other, created = registry.start(tiny_run_config(toy_csv, tiny_bert_dir, max_steps=5, seed=7))
        assert other is job and not created
        # A second registry (a cache reset in the UI) sees the same job rather than starting its own.
        again, created = JobRegistry(registry.store).start(cfg)
        assert again is job and not created
    finally:
        gate.release.set()
    result = job.join(WAIT)
    assert result.state == "finished" and result.steps == 3
    assert job.run.state == "finished" and registry.active() is None
    assert job.run_id not in live_run_ids()
    # Once the device is free, a new start makes a new run.
    nxt, created = registry.start(cfg)
    assert created and nxt.run_id != job.run_id
    assert nxt.join(WAIT).state == "finished"
    assert len(list(registry.store.root.iterdir())) == 2


def test_stop_keeps_a_checkpoint_and_a_loadable_model_then_resume_finishes(registry, toy_csv, tiny_bert_dir):
    from core.generation import predict_proba
    from core.models import load_for_inference

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=10)
    gate = Gate(at_step=3)
    job, created = registry.start(cfg, hook=gate)
    assert created and gate.reached.wait(WAIT)
    assert registry.stop(job.run_id) is True
    gate.release.set()
    result = job.join(WAIT)
    assert result.state == "stopped" and job.run.state == "stopped"
    assert result.steps == 4  # the step in flight when Stop was pressed completes
    assert job.run.latest_checkpoint().name == "step-000004"
    assert (job.run.latest_checkpoint() / "trainer_state.pt").exists()
    bundle = load_for_inference(job.run.model_dir)
    probs = predict_proba(bundle, ["a wonderful film", "a dull film"], max_length=32)
    assert probs.shape == (2, 2)
    assert registry.stop(job.run_id) is False  # nothing left to stop
    with pytest.raises(WorkbenchError):
        registry.resume("no-such-run")

    resumed, created = registry.resume(job.run_id)
    assert created
    final = resumed.join(WAIT)
    assert final.state == "finished" and final.steps == 10
    starts = [m for m in job.run.metrics() if m.get("event") == "start"]
    assert [s["resumed_from_step"] for s in starts] == [0, 4]
    with pytest.raises(WorkbenchError, match="only stopped, failed or interrupted runs resume"):
        registry.resume(job.run_id)


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted_and_resumes(workspace, toy_csv, tiny_bert_dir):
    store = RunStore(workspace / "runs")
    first = JobRegistry(store)
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6)
    gate = Gate(at_step=2)
    job, _ = first.start(cfg, hook=gate)
    assert gate.reached.wait(WAIT)
    first.stop(job.run_id)
    gate.release.set()
    assert job.join(WAIT).state == "stopped"

    # Make it look like a server process died while training this run.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = job.run.status()
    status.update(state="running", pid=dead.pid)
    atomic_write_text(job.run.dir / "status.json", json.dumps(status))

    restarted = JobRegistry(store)  # what a restarted server does first
    assert job.run.state == "interrupted"
    resumed, created = restarted.resume(job.run_id)
    assert created
    final = resumed.join(WAIT)
    assert final.state == "finished" and final.steps == 6


def test_a_failing_job_ends_failed_with_its_message(registry, tmp_path, tiny_bert_dir):
    cfg = tiny_run_config(tmp_path / "missing.csv", tiny_bert_dir)
    job, created = registry.start(cfg)
    result = job.join(WAIT)
    assert created and result.state == "failed"
    assert "missing.csv" in result.message
    assert job.run.status()["message"] == result.message
    assert registry.active() is None
