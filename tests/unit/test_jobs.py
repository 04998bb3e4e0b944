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

WAIT = 300  # seconds; a hook never blocks a training thread for ever, even when a test fails


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
    reg = JobRegistry(RunStore(workspace / "runs"), mode="thread")  # the Gate hook is a function of this process
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
    first = JobRegistry(store, mode="thread")
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

    assert job.run.state == "interrupted"  # at once, for every reader
    restarted = JobRegistry(store, mode="thread")  # what a restarted server does first: write it down
    assert job.run.stored_status()["state"] == "interrupted"
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


# ------------------------------------------------------------------------------------------------ worker processes
def _wait_for(predicate, timeout: float = WAIT, what: str = "") -> None:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _steps(run) -> int:
    """Training steps logged so far (the metrics file starts with a 'start' record that is not a step)."""
    return len([m for m in run.metrics() if "loss" in m])


def _pid_gone(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def process_registry(workspace):
    reg = JobRegistry(RunStore(workspace / "runs"), mode="process")
    yield reg
    for job in list(reg._jobs.values()):
        job.stop()
        job.join(WAIT)


def test_a_job_trains_in_its_own_process_and_stops_through_the_run_folder(process_registry, toy_csv, tiny_bert_dir):
    import os

    from core.jobs import ProcessJob

    cfg = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=5000, num_threads=1)
    job, created = process_registry.start(cfg)
    assert created and isinstance(job, ProcessJob) and job.pid != os.getpid()
    # A second start while it trains finds it, whatever the process.
    assert process_registry.start(cfg) == (job, False)
    _wait_for(lambda: _steps(job.run) >= 3, what="three logged steps")
    assert job.run.status()["pid"] == job.pid and job.run_id in live_run_ids()

    assert process_registry.stop(job.run_id, keep_best=True) is True
    assert json.loads((job.run.dir / "stop.json").read_text())["keep_best"] is True
    result = job.join(WAIT)
    assert result.state == "stopped" and result.steps >= 3 and result.samples_per_s > 0
    assert job.run.has_model() and job.run.latest_checkpoint() is not None
    assert process_registry.active() is None and job.run_id not in live_run_ids()
    _wait_for(lambda: _pid_gone(job.pid), what="the worker to exit")


def test_a_worker_that_dies_ends_failed_with_a_message_and_frees_the_device(process_registry, toy_csv, tiny_bert_dir):
    import os
    import signal

    job, _ = process_registry.start(tiny_run_config(toy_csv, tiny_bert_dir, max_steps=5000, num_threads=1))
    _wait_for(lambda: _steps(job.run), what="the first logged step")
    os.kill(job.pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    result = job.join(WAIT)
    assert result.state == "failed" and "killed" in result.message and "batch size" in result.message
    assert process_registry.active() is None
    nxt, created = process_registry.start(tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2, num_threads=1))
    assert created and nxt.join(WAIT).state == "finished"


SERVER = """
import sys, time
from core.jobs import JobRegistry
from core.runs import RunStore
from tests.conftest import tiny_run_config
job, _ = JobRegistry(RunStore(sys.argv[1]), mode="process").start(
    tiny_run_config(sys.argv[2], sys.argv[3], max_steps=5000, num_threads=1))
print(job.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process signals")
def test_a_worker_dies_with_the_server_that_started_it_and_the_run_resumes(workspace, toy_csv, tiny_bert_dir):
    import os
    import signal

    from tests.unit.test_faults import REPO

    runs = workspace / "runs"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(runs), str(toy_csv), str(tiny_bert_dir)],
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        worker = int(server.stdout.readline())
        store = RunStore(runs)
        _wait_for(lambda: store.list() and _steps(store.list()[0]), what="the worker's first step")
        (run,) = store.list()
        server.send_signal(signal.SIGKILL)
        server.wait(WAIT)
        _wait_for(lambda: _pid_gone(worker), what="the orphaned worker to end")
    finally:
        server.kill()
    assert run.stored_status()["state"] == "running"  # what the dead processes left on disk
    assert run.state == "interrupted"  # what every reader sees, before any restart
    restarted = JobRegistry(store, mode="process")
    assert run.stored_status()["state"] == "interrupted"
    if run.latest_checkpoint() is not None:  # it may have died before its first save
        job, created = restarted.resume(run.id)
        assert created
        _wait_for(lambda: run.state == "running" and run.status().get("pid") == job.pid, what="the resumed worker")
        restarted.stop(run.id)
        assert job.join(WAIT).state == "stopped"


def _cli_args(workspace, toy_csv, tiny_bert_dir, max_steps: int) -> list[str]:
    return ["--workspace", str(workspace), "train", "--data", str(toy_csv), "--model", str(tiny_bert_dir),
            "--task", "classification", "--max-steps", str(max_steps), "--log-every", "1", "--precision", "fp32",
            "--num-threads", "1", "--max-length", "32", "--quiet"]  # fmt: skip


def _cli(workspace, toy_csv, tiny_bert_dir) -> subprocess.Popen:
    """``python -m core train`` in its own process, training (almost) for ever."""
    import os

    from tests.unit.test_faults import REPO

    args = [sys.executable, "-m", "core", *_cli_args(workspace, toy_csv, tiny_bert_dir, 5000)]
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def test_stop_reaches_a_run_the_command_line_trains_and_the_device_is_locked_meanwhile(
    workspace, toy_csv, tiny_bert_dir, capsys
):
    from core.cli import main
    from core.devicelock import DeviceBusy

    cli = _cli(workspace, toy_csv, tiny_bert_dir)
    try:
        store = RunStore(workspace / "runs")
        _wait_for(lambda: store.list() and _steps(store.list()[0]), what="the command line's first step")
        (run,) = store.list()
        registry = JobRegistry(store)  # a server that did not start this run
        assert registry.get(run.id) is None and run.id in {r.id for r in store.list() if r.state == "running"}

        # One job per device across processes: the server's Start names the job in the way, and makes nothing.
        with pytest.raises(DeviceBusy) as busy:
            registry.start(tiny_run_config(toy_csv, tiny_bert_dir, max_steps=1))
        assert busy.value.holder["run"] == run.id and busy.value.holder["pid"] == cli.pid
        assert f"run '{run.id}'" in str(busy.value) and "--allow-parallel" in str(busy.value)
        assert [r.id for r in store.list()] == [run.id]
        # So does a second command line; with --allow-parallel it trains all the same, on purpose.
        capsys.readouterr()
        assert main(_cli_args(workspace, toy_csv, tiny_bert_dir, 1)) == 2
        err = capsys.readouterr().err
        assert "busy" in err and run.id in err and "python -m core train" in err
        assert main([*_cli_args(workspace, toy_csv, tiny_bert_dir, 1), "--allow-parallel"]) == 0
        assert len(store.list()) == 2

        assert registry.stop(run.id) is True
        out, _ = cli.communicate(timeout=WAIT)
    finally:
        cli.kill()
    assert cli.returncode == 0, out
    assert run.state == "stopped" and run.has_model()
    assert registry.stop(run.id) is False
    # The command line has ended, so its lock is free: the server starts a run now.
    job, created = registry.start(tiny_run_config(toy_csv, tiny_bert_dir, max_steps=1, num_threads=1))
    assert created and job.join(WAIT).state == "finished"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process signals")
def test_a_command_line_run_killed_with_sigkill_reads_as_interrupted_everywhere_at_once(
    workspace, toy_csv, tiny_bert_dir
):
    import os
    import signal

    from tests.unit.test_faults import REPO

    cli = _cli(workspace, toy_csv, tiny_bert_dir)
    try:
        store = RunStore(workspace / "runs")
        _wait_for(lambda: store.list() and _steps(store.list()[0]), what="the command line's first step")
        (run,) = store.list()
        cli.send_signal(signal.SIGKILL)
        cli.wait(WAIT)  # reaped: its pid is gone
    finally:
        cli.kill()
    assert run.stored_status()["state"] == "running" and run.stored_status()["pid"] == cli.pid
    # Another process, no server restart: `python -m core runs` lists it as interrupted.
    listing = subprocess.run([sys.executable, "-m", "core", "--workspace", str(workspace), "runs", "--json"],
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                             capture_output=True, text=True, timeout=WAIT)  # fmt: skip
    (row,) = json.loads(listing.stdout)
    assert row["run"] == run.id and row["state"] == "interrupted" and "Resume" in row["message"]
    # The kernel dropped its device lock; the run can be deleted (Stop has nothing to stop).
    registry = JobRegistry(store)
    assert registry.stop(run.id) is False
    from core.devicelock import DeviceLock

    assert DeviceLock(workspace, "cpu").is_free()
    store.delete(run.id)
    assert not run.dir.exists()
