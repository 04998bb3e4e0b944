"""Background training: TrainingJob (a thread + a stop signal) and JobRegistry (one job per device, a lock).

The registry lives once per server process (the UI keeps it in st.cache_resource); the truth about each
run stays on disk, so a refresh, a second tab or a restarted server finds the same state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from core.config import RunConfig
from core.errors import WorkbenchError
from core.runs import Run, RunStore
from core.training import Hook, StopSignal, TrainResult, train

# Jobs training in this process, across every registry (tests and st.cache_resource resets can make
# several): a run in here is never mistaken for one a dead process left behind, and a newer registry
# finds (and adopts) a job an older one started instead of starting a second one on the same device.
_LIVE: dict[str, TrainingJob] = {}
_LIVE_LOCK = threading.Lock()
# Shared by every registry of the process, so "is the device free? then start" is one step for all of them.
_START_LOCK = threading.Lock()


def live_run_ids() -> frozenset[str]:
    with _LIVE_LOCK:
        return frozenset(_LIVE)


@dataclass
class TrainingJob:
    """One training run in a daemon thread. Never touches the UI: it only writes the run folder."""

    run: Run
    config: RunConfig
    device_key: str
    resume: bool = False
    hook: Hook | None = None
    stop_signal: StopSignal = field(default_factory=StopSignal)
    result: TrainResult | None = None
    started_at: float = field(default_factory=time.time)
    _thread: threading.Thread | None = None

    @property
    def run_id(self) -> str:
        return self.run.id

    def start(self) -> None:
        with _LIVE_LOCK:
            _LIVE[self.run.id] = self
        self._thread = threading.Thread(target=self._work, name=f"train-{self.run.id}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self.result = train(self.config, self.run, stop=self.stop_signal, resume=self.resume, hook=self.hook)
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(self.run.id, None)

    def stop(self, keep_best: bool = False) -> None:
        self.stop_signal.set(keep_best=keep_best)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> TrainResult | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result


def device_key(config: RunConfig) -> str:
    """Jobs are limited per device: 'cpu', 'cuda', 'mps' (auto resolves to what it would pick)."""
    name = config.train.device
    if name == "auto":
        from core.device import resolve_device

        name = resolve_device("auto").type  # the one place that decides what 'auto' means
    return name


class JobRegistry:
    """Starts jobs idempotently: a double click, a second tab or a rerun never makes a second job."""

    def __init__(self, store: RunStore):
        self.store = store
        self._lock = _START_LOCK
        self._jobs: dict[str, TrainingJob] = {}  # run_id -> job (finished ones kept for their results)
        # Runs left 'running' by a previous server process are marked interrupted once, at start-up.
        self.store.recover_interrupted(live_run_ids())

    def active(self, device: str | None = None) -> TrainingJob | None:
        with self._lock:
            return self._active_locked(device)

    def _active_locked(self, device: str | None) -> TrainingJob | None:
        with _LIVE_LOCK:
            for job in _LIVE.values():
                self._jobs.setdefault(job.run_id, job)  # adopt a job an older registry started, so Stop works
        for job in self._jobs.values():
            if job.is_alive() and (device is None or job.device_key == device):
                return job
        return None

    def active_jobs(self) -> list[TrainingJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.is_alive()]

    def start(self, config: RunConfig, *, hook: Hook | None = None) -> tuple[TrainingJob, bool]:
        """Start a new run, or return the job already running on that device. Returns (job, created)."""
        key = device_key(config)
        with self._lock:
            running = self._active_locked(key)
            if running is not None:
                return running, False
            run = self.store.create(config)
            job = TrainingJob(run, config, key, hook=hook)
            self._jobs[run.id] = job
            job.start()
            return job, True

    def resume(self, run_id: str, *, hook: Hook | None = None) -> tuple[TrainingJob, bool]:
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
            job = TrainingJob(run, config, key, resume=True, hook=hook)
            self._jobs[run.id] = job
            job.start()
            return job, True

    def stop(self, run_id: str, keep_best: bool = False) -> bool:
        with self._lock:
            job = self._jobs.get(run_id)
        if job is None or not job.is_alive():
            return False
        job.stop(keep_best=keep_best)
        return True

    def get(self, run_id: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def describe(self) -> list[dict[str, Any]]:
        return [{"run_id": j.run_id, "device": j.device_key, "state": j.run.state} for j in self.active_jobs()]
