"""Runs on disk: the store, status, checkpoints, and recovery of runs a dead process left 'running'."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.config import RunConfig
from core.errors import WorkbenchError
from core.runs import Run, RunStatus, RunStore, atomic_write_text, process_started


def _config(name: str = "", task: str = "classification") -> RunConfig:
    return RunConfig.from_dict({"name": name, "model": {"task": task}, "data": {"train_path": "x.csv"}})


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_create_writes_config_and_queued_status(store):
    cfg = _config("My first run!")
    run = store.create(cfg)
    assert run.dir.parent == store.root and run.dir.is_dir()
    assert "My-first-run" in run.id  # the name, made safe for a folder
    assert run.config() == cfg
    status = run.status()
    assert status["state"] == "queued" and status["pid"] == os.getpid() and status["created_at"] > 0
    assert run.metrics() == [] and run.results() == {} and run.checkpoints() == [] and not run.has_model()


def test_create_with_an_id_get_list_and_delete(store):
    a = store.create(_config(), run_id="alpha")
    b = store.create(_config(task="regression"), run_id="beta")
    assert store.get("alpha").dir == a.dir
    assert [r.id for r in store.list()] == ["beta", "alpha"]  # newest first
    with pytest.raises((FileExistsError, WorkbenchError)):
        store.create(_config(), run_id="alpha")
    for bad in ("../escape", "a/b", ".hidden", "x" * 90):
        with pytest.raises(WorkbenchError):
            store.create(_config(), run_id=bad)
    with pytest.raises(WorkbenchError, match="no run named 'gamma'"):
        store.get("gamma")
    with pytest.raises(WorkbenchError):
        store.get("../runs")
    b.set_status("finished")
    store.delete("beta")
    assert not b.dir.exists() and [r.id for r in store.list()] == ["alpha"]


def test_delete_refuses_a_run_that_is_still_training(store):
    run = store.create(_config(), run_id="busy")
    run.set_status("running")  # owned by this (live) process
    with pytest.raises(WorkbenchError, match="still training"):
        store.delete("busy")
    assert run.dir.exists()


def test_set_status_keeps_fields_and_refuses_unknown_states(store):
    run = store.create(_config())
    run.set_status("running", step=3, loss=0.5)
    run.set_status(step=4)
    status = run.status()
    assert status["state"] == "running" and status["step"] == 4 and status["loss"] == 0.5
    run.set_status("failed", message="bad")
    assert run.status()["finished_at"] >= status["started_at"]
    with pytest.raises(ValueError):
        run.set_status("exploded")
    (run.dir / "status.json").write_text("{not json")
    assert run.state == "damaged"  # never taken for another state, never crashes a page


def test_checkpoints_are_sorted_and_only_complete_ones_count(store):
    run = store.create(_config())
    for name in ("step-000010", "step-000002", "step-000100", ".tmp-step-000200-abc", "notes"):
        (run.checkpoints_dir / name).mkdir(parents=True)
    assert [p.name for p in run.checkpoints()] == ["step-000002", "step-000010", "step-000100"]
    assert run.latest_checkpoint() is None  # none has its trainer state yet
    (run.checkpoints_dir / "step-000010" / "trainer_state.pt").write_bytes(b"x")
    assert run.latest_checkpoint() is None  # a trainer state without weights cannot be resumed (issue 19)
    (run.checkpoints_dir / "step-000010" / "model.safetensors").write_bytes(b"x")
    assert run.latest_checkpoint().name == "step-000010"


def test_metrics_since_reads_only_new_lines(store):
    run = store.create(_config())
    run.metrics_path.write_text('{"step":1}\n{"step":2}\n')
    first, offset = run.metrics_since(0)
    with open(run.metrics_path, "a") as fh:
        fh.write('{"step":3}\n{"st')
    more, offset2 = run.metrics_since(offset)
    assert [m["step"] for m in first] == [1, 2] and [m["step"] for m in more] == [3]
    assert offset2 < run.metrics_path.stat().st_size  # the torn tail waits for the writer
    assert [m["step"] for m in run.metrics()] == [1, 2, 3]


def test_summaries_flatten_status_config_and_results(store):
    run = store.create(_config("sentiment"))
    run.set_status("running")
    run.write_results({"validation": {"accuracy": 0.8, "f1": 0.75}, "test": {"accuracy": 0.9, "labels": ["a"]}})
    run.set_status("finished", message="Training finished.")
    store.create(_config(task="generation"))
    rows = {r["name"]: r for r in store.summaries()}
    row = rows["sentiment"]
    assert row["run"] == run.id and row["state"] == "finished" and row["task"] == "classification"
    assert row["model"] == "default" and row["method"] == "full" and row["message"] == "Training finished."
    assert row["val_accuracy"] == 0.8 and row["val_f1"] == 0.75 and row["test_accuracy"] == 0.9
    assert "test_labels" not in row  # only numbers go into the table
    assert row["duration_s"] is not None and row["duration_s"] >= 0
    assert len(rows) == 2


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recover_marks_a_run_of_a_dead_process_interrupted(store):
    dead = store.create(_config(), run_id="dead")
    dead.set_status("running", step=5)
    status = dead.status()
    status["pid"] = _dead_pid()
    atomic_write_text(dead.dir / "status.json", json.dumps(status))
    done = store.create(_config(), run_id="done")
    done.set_status("finished")

    assert store.recover_interrupted() == ["dead"]
    assert dead.state == "interrupted" and "Resume" in dead.status()["message"]
    assert dead.status()["step"] == 5  # progress is kept for the resume
    assert done.state == "finished"
    assert store.recover_interrupted() == []  # marking is done once


def test_recover_leaves_a_live_job_alone(store):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        other = store.create(_config(), run_id="other-process")
        other.set_status("running")
        status = other.status()
        status.update(pid=sleeper.pid, pid_started=process_started(sleeper.pid))
        atomic_write_text(other.dir / "status.json", json.dumps(status))
        mine = store.create(_config(), run_id="mine")
        mine.set_status("running")
        orphan = store.create(_config(), run_id="orphan")
        orphan.set_status("running")  # this process, but no job trains it any more

        marked = store.recover_interrupted(active_here={"mine"})
        assert marked == ["orphan"]
        assert other.state == "running" and mine.state == "running" and orphan.state == "interrupted"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "status.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_run_paths(tmp_path):
    run = Run(tmp_path / "r1")
    assert run.id == "r1"
    assert run.model_dir == tmp_path / "r1" / "model" and run.data_dir == tmp_path / "r1" / "data"
    assert run.status() == {"state": "queued"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"{oops", "not valid JSON"), (b"\xff\xfe\x00garbage", "not valid JSON"), (b"[1, 2]", "does not hold")],
    ids=["bad_json", "not_utf8", "not_an_object"],
)
def test_a_run_with_a_damaged_config_is_listed_refused_and_deletable(store, content, problem):
    good = store.create(_config("good"), run_id="good")
    bad = store.create(_config("bad"), run_id="bad")
    bad.set_status("finished")
    bad.config_path.write_bytes(content)
    assert good.config_problem() is None and problem in bad.config_problem()
    rows = {r["run"]: r for r in store.summaries()}
    assert set(rows) == {"good", "bad"}  # not hidden any more
    assert rows["bad"]["state"] == "damaged" and rows["good"]["state"] == "queued"
    assert problem in rows["bad"]["message"] and "Delete it" in rows["bad"]["message"]
    with pytest.raises(WorkbenchError) as err:
        store.get("bad")
    assert "damaged" in str(err.value) and "Delete it on the Runs page" in str(err.value)
    store.delete("bad")
    assert not bad.dir.exists() and [r.id for r in store.list()] == ["good"]


# ------------------------------------------------------------------------------------------------ truthful states
def _owned_by(run: Run, pid: int, started: float | None) -> None:
    """Write the status a process ``pid`` that started at ``started`` would have left while training."""
    status = run.stored_status()
    status.update(state="running", pid=pid, pid_started=started, message="Training... step 5", step=5)
    atomic_write_text(run.dir / "status.json", json.dumps(status))


def test_a_run_whose_process_is_gone_reads_as_interrupted_at_once(store):
    from core.jobs import JobRegistry

    run = store.create(_config(), run_id="cut-off")
    _owned_by(run, _dead_pid(), 1.0)
    # No restart, no recovery pass: every reader sees it as interrupted, and it is resumable and deletable.
    assert run.state == RunStatus.INTERRUPTED and run.stored_status()["state"] == "running"
    assert "Resume" in run.status()["message"] and run.status()["step"] == 5
    (row,) = store.summaries()
    assert row["state"] == "interrupted" and "Resume" in row["message"]
    registry = JobRegistry.__new__(JobRegistry)  # stop() without the start-up recovery pass
    registry.store, registry._jobs, registry._lock = store, {}, __import__("threading").Lock()
    assert registry.stop(run.id) is False and not (run.dir / "stop.json").exists()  # nothing to stop
    store.delete(run.id)
    assert not run.dir.exists()


def test_a_reused_pid_is_a_foreign_owner(store):
    """A live process with the recorded pid that started at another time (pid reuse) does not own the run."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        real = process_started(sleeper.pid)
        assert real is not None
        owned = store.create(_config(), run_id="owned")
        _owned_by(owned, sleeper.pid, real)
        reused = store.create(_config(), run_id="reused")
        _owned_by(reused, sleeper.pid, real - 3600.0)  # what a run of a process before a reboot left behind
        assert owned.state == "running" and reused.state == "interrupted"
        with pytest.raises(WorkbenchError, match="still training"):
            store.delete("owned")
        assert store.recover_interrupted() == ["reused"]
        assert reused.stored_status()["state"] == "interrupted" and owned.stored_status()["state"] == "running"
        store.delete("reused")  # Delete works for the run a foreign process seemed to hold
        assert not reused.dir.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert owned.state == "interrupted"  # and once its real owner has gone, the other one reads so too


def test_an_owner_on_another_host_or_without_a_pid_is_gone(store):
    run = store.create(_config(), run_id="elsewhere")
    status = run.stored_status()
    status.update(state="running", host="another-machine")
    atomic_write_text(run.dir / "status.json", json.dumps(status))
    assert run.state == "interrupted"
    status.update(host=None, pid="12")  # a hand-edited pid that is not a number
    atomic_write_text(run.dir / "status.json", json.dumps(status))
    assert run.state == "interrupted"


def test_set_status_records_the_owner_and_its_start_time(store):
    run = store.create(_config())
    status = run.set_status("running")
    assert status["pid"] == os.getpid() and status["pid_started"] == process_started(os.getpid())
    assert json.loads((run.dir / "status.json").read_text())["state"] == "running"  # the enum is plain JSON
    assert RunStatus("running") is RunStatus.RUNNING and f"{RunStatus.RUNNING}" == "running"


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe[1,", b"[1, 2]", b'{"state": "exploded"}', b'{"step": 3}', b'{"state": "damaged"}'],
)
def test_a_damaged_status_is_shown_as_damaged_and_never_rewritten(store, content):
    run = store.create(_config(), run_id="torn")
    run.set_status("finished", message="Training finished.")
    (run.dir / "status.json").write_bytes(content)
    assert run.state == "damaged"
    assert "status.json" in run.status()["message"] and "Damaged" in run.status()["message"]
    (row,) = store.summaries()
    assert row["state"] == "damaged" and "status.json" in row["message"]
    assert store.recover_interrupted() == []  # not taken for a run a dead process left behind
    assert (run.dir / "status.json").read_bytes() == content
    from core.jobs import JobRegistry

    with pytest.raises(WorkbenchError, match="damaged; only stopped"):
        JobRegistry(store, mode="thread").resume("torn")
    assert (run.dir / "status.json").read_bytes() == content
    store.delete("torn")  # it can be deleted
    assert not run.dir.exists()
