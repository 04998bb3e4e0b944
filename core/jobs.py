"""Background training: ProcessJob (a worker process), TrainingJob (a thread) and JobRegistry (one job per device).

The registry lives once per server process (the UI keeps it in st.cache_resource); the truth about each
run stays on disk, so a refresh, a second tab or a restarted server finds the same state.

By default a job trains in its own process (core/worker.py), so the pages polling it do not share the GIL with
the training loop. A job with a hook (tests inject faults through hooks) runs as a thread of this process, and
WORKBENCH_JOB_MODE=thread makes every job a thread. Both kinds stop through stop.json in the run folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.errors import WorkbenchError
from core.progress import FileStopSignal, Hook, StopSignal, TrainResult
from core.runs import ACTIVE, Run, RunStore

JOB_MODE_ENV = "WORKBENCH_JOB_MODE"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Jobs training in this process, across every registry (tests and st.cache_resource resets can make
# several): a run in here is never mistaken for one a dead process left behind, and a newer registry
# finds (and adopts) a job an older one started instead of starting a second one on the same device.
_LIVE: dict[str, Any] = {}  # run id -> TrainingJob | ProcessJob
_LIVE_LOCK = threading.Lock()
# Shared by every registry of the process, so "is the device free? then start" is one step for all of them.
_START_LOCK = threading.Lock()


def live_run_ids() -> frozenset[str]:
    with _LIVE_LOCK:
        jobs = list(_LIVE.values())
    return frozenset(job.run_id for job in jobs if job.is_alive())


@dataclass
class _Job:
    """What every job has: its run, its config, the device it holds, and its result once it has ended."""

    run: Run
    config: RunConfig
    device_key: str
    resume: bool = False
    result: TrainResult | None = None
    started_at: float = field(default_factory=time.time)
    stop_signal: StopSignal | None = None

    def __post_init__(self) -> None:
        if self.stop_signal is None:
            self.stop_signal = FileStopSignal(self.run.dir)

    @property
    def run_id(self) -> str:
        return self.run.id

    def stop(self, keep_best: bool = False) -> None:
        self.stop_signal.set(keep_best=keep_best)


@dataclass
class TrainingJob(_Job):
    """One training run in a daemon thread of this process. Never touches the UI: it only writes the run folder."""

    hook: Hook | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        with _LIVE_LOCK:
            _LIVE[self.run.id] = self
        self._thread = threading.Thread(target=self._work, name=f"train-{self.run.id}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            from core.training import train  # the loop is imported only where a thread runs it

            self.result = train(self.config, self.run, stop=self.stop_signal, resume=self.resume, hook=self.hook)
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(self.run.id, None)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> TrainResult | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result


def job_mode() -> str:
    """'process' (the default) or 'thread', from WORKBENCH_JOB_MODE."""
    mode = os.environ.get(JOB_MODE_ENV, "process").strip().lower()
    return mode if mode in ("process", "thread") else "process"


def result_from_disk(run: Run) -> TrainResult:
    """What a worker process reports: its run folder's final status and results."""
    status = run.status()
    state = status.get("state", "failed")
    # results.json may be an earlier attempt's (a resume that failed): only a run that ended well owns it.
    results = run.results() if state in ("finished", "stopped") else {}
    return TrainResult(
        run.id,
        state,
        status.get("message", ""),
        int(results.get("steps") or status.get("step") or 0),
        float(results.get("train_seconds") or status.get("elapsed_s") or 0.0),
        float(results.get("samples_per_s") or 0.0),
        float(results.get("tokens_per_s") or 0.0),
        results,
    )


def _ended_early(code: int, log: Path) -> str:
    """The message for a worker that died without writing its final state."""
    if code < 0:
        why = f"was killed (signal {-code})"
        if -code == 9:
            why += "; when nobody stopped it, this is usually the system running out of memory"
    else:
        why = f"ended unexpectedly (exit code {code})"
    tail = ""
    try:
        lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        tail = lines[-1][:300] if lines else ""
    except OSError:
        pass
    hint = " Lower the batch size or the max length and start again, or resume from the last checkpoint."
    return f"The training process {why}.{hint}" + (f" Its last words: {tail}" if tail else "")


@dataclass
class ProcessJob(_Job):
    """One training run in its own process (``python -m core.worker``); the same interface as TrainingJob."""

    _proc: subprocess.Popen | None = None
    _reaper: threading.Thread | None = None
    _spawned: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        with _LIVE_LOCK:
            _LIVE[self.run.id] = self
        # The process is started by the thread that waits for it, which lives as long as it does. Linux ties a
        # worker's "die with the parent" to the thread that started it, and Streamlit runs each page in a
        # short-lived thread: started from there, the worker would be killed as soon as the page finished.
        self._reaper = threading.Thread(target=self._spawn_and_wait, name=f"job-{self.run.id}", daemon=True)
        self._reaper.start()
        self._spawned.wait(60)

    def _spawn_and_wait(self) -> None:
        try:
            cmd = [sys.executable, "-m", "core.worker", str(self.run.dir), "--parent", str(os.getpid())]
            if self.resume:
                cmd.append("--resume")
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
            try:
                with open(self.run.dir / "worker.log", "ab") as log:
                    self._proc = subprocess.Popen(
                        cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                    )
            except OSError as err:
                self.run.set_status("failed", message=f"The training process could not start: {err}")
                self.result = result_from_disk(self.run)
                return
            finally:
                self._spawned.set()
            code = self._proc.wait()
            with _LIVE_LOCK:
                # A worker that wrote its final state counts as done before it exits, so a Resume may already
                # have started the next attempt: its 'queued' is not this worker's unfinished business.
                if _LIVE.get(self.run.id) is self and self.run.state in ACTIVE:
                    # It died without its final word: a crash, or the kernel's out-of-memory killer.
                    self.run.set_status("failed", message=_ended_early(code, self.run.dir / "worker.log"))
            self.result = result_from_disk(self.run)
        finally:
            with _LIVE_LOCK:
                if _LIVE.get(self.run.id) is self:
                    del _LIVE[self.run.id]

    def is_alive(self) -> bool:
        # A worker that has written its final state is done for everyone, though its process may take a moment
        # more to exit: the next Start must not be told that this run is still training.
        return self._reaper is not None and self._reaper.is_alive() and self.run.state in ACTIVE

    def join(self, timeout: float | None = None) -> TrainResult | None:
        if self._reaper is not None:
            self._reaper.join(timeout)
        return self.result


Job = TrainingJob | ProcessJob


def device_key(config: RunConfig) -> str:
    """Jobs are limited per device: 'cpu', 'cuda', 'mps' (auto resolves to what it would pick)."""
    name = config.train.device
    if name == "auto":
        from core.device import resolve_device

        name = resolve_device("auto").type  # the one place that decides what 'auto' means
    return name


class JobRegistry:
    """Starts jobs idempotently: a double click, a second tab or a rerun never makes a second job."""

    def __init__(self, store: RunStore, mode: str | None = None):
        self.store = store
        self.mode = mode or job_mode()
        self._lock = _START_LOCK
        self._jobs: dict[str, Job] = {}  # run_id -> job (finished ones kept for their results)
        # Runs left 'running' by a previous server process are marked interrupted once, at start-up.
        self.store.recover_interrupted(live_run_ids())

    def active(self, device: str | None = None) -> Job | None:
        with self._lock:
            return self._active_locked(device)

    def _active_locked(self, device: str | None) -> Job | None:
        with _LIVE_LOCK:
            for job in _LIVE.values():
                self._jobs.setdefault(job.run_id, job)  # adopt a job an older registry started, so Stop works
        for job in self._jobs.values():
            if job.is_alive() and (device is None or job.device_key == device):
                return job
        return None

    def active_jobs(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.is_alive()]

    def _job(self, run: Run, config: RunConfig, key: str, resume: bool, hook: Hook | None) -> Job:
        FileStopSignal(run.dir).clear()  # an old Stop must not end the new attempt at once
        if hook is None and self.mode == "process":
            return ProcessJob(run, config, key, resume=resume)
        # Hooks are functions of this process (tests inject faults with them): those jobs stay threads.
        return TrainingJob(run, config, key, resume=resume, hook=hook)

    def start(self, config: RunConfig, *, hook: Hook | None = None) -> tuple[Job, bool]:
        """Start a new run, or return the job already running on that device. Returns (job, created)."""
        key = device_key(config)
        with self._lock:
            running = self._active_locked(key)
            if running is not None:
                return running, False
            run = self.store.create(config)
            job = self._job(run, config, key, False, hook)
            self._jobs[run.id] = job
            job.start()
            return job, True

    def resume(self, run_id: str, *, hook: Hook | None = None) -> tuple[Job, bool]:
        """Continue an interrupted or stopped run from its last checkpoint (optimizer, schedule and RNG included)."""
        run = self.store.get(run_id)
        config = run.config()
        key = device_key(config)
        with self._lock:
            running = self._active_locked(key)
            if running is not None:
                return running, False
            state = run.state
            if state not in ("interrupted", "stopped", "failed"):
                raise WorkbenchError(f"Run '{run_id}' is {state}; only stopped, failed or interrupted runs resume.")
            if run.latest_checkpoint() is None:
                raise WorkbenchError(
                    f"Run '{run_id}' has no checkpoint to resume from.", hint="Start it again instead."
                )
            run.set_status("queued", message="Resuming from the last checkpoint...")
            job = self._job(run, config, key, True, hook)
            self._jobs[run.id] = job
            job.start()
            return job, True

    def stop(self, run_id: str, keep_best: bool = False) -> bool:
        """Ask a run to stop after its current step: a job of this registry, or a run another process trains."""
        with self._lock:
            job = self._jobs.get(run_id)
        if job is not None and job.is_alive():
            job.stop(keep_best=keep_best)
            return True
        try:
            run = self.store.get(run_id)
        except WorkbenchError:
            return False
        if run.state in ACTIVE and self.store.owner_alive(run):  # the CLI, or another server on this workspace
            FileStopSignal(run.dir).set(keep_best=keep_best)
            return True
        return False

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def describe(self) -> list[dict[str, Any]]:
        return [{"run_id": j.run_id, "device": j.device_key, "state": j.run.state} for j in self.active_jobs()]
