"""Background jobs: ProcessJob (a training worker process), TrainingJob (a thread, for tests), JobRegistry.

One job model for everything that runs in the background (a training run, a search): a ``BackgroundJob`` is a
daemon thread of this process, listed in ``LIVE`` while it works, that stops through a ``stop.json`` in its
folder, so a Stop from any tab, server or the CLI reaches it. A training job's thread starts and waits for a
worker process (core/worker.py), so the pages polling it do not share the GIL with the training loop; a search's
thread runs its trials one after the other as such jobs.

The registry lives once per server process (the UI keeps it in st.cache_resource); the truth about each
run stays on disk, so a refresh, a second tab or a restarted server finds the same state. One job per device:
within this process under the registry's lock, across processes through the workspace's device lock
(core/devicelock.py), which the CLI takes too.

Thread mode (``JobRegistry(mode="thread")``, or WORKBENCH_JOB_MODE=thread for the app tests) is for tests only:
a hook given as a function runs in this process. A hook named "module:function" runs in the worker process.
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
from core.devicelock import DeviceBusy, DeviceLock, parallel_allowed
from core.errors import WorkbenchError
from core.i18n import message, state_key
from core.progress import FileStopSignal, Hook, StopSignal, TrainResult
from core.runs import ACTIVE, ENDED_WELL, RESUMABLE, Run, RunStatus, RunStore

JOB_MODE_ENV = "WORKBENCH_JOB_MODE"  # tests only: "thread" trains in this process
PROJECT_ROOT = Path(__file__).resolve().parent.parent
WINDING_DOWN_S = 60.0  # how long a Start waits for a worker that has written its final state to exit


class LiveJobs:
    """Background jobs working in this process, by kind ("run", "search") and id, across every registry.

    Tests and st.cache_resource resets can make several registries: a job in here is never mistaken for one
    a dead process left behind, and a newer registry finds (and adopts) a job an older one started instead of
    starting a second one on the same device.
    """

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], Any] = {}
        self.lock = threading.Lock()

    def add(self, kind: str, key: str, job: Any) -> None:
        with self.lock:
            self._jobs[(kind, key)] = job

    def discard(self, kind: str, key: str, job: Any) -> None:
        with self.lock:
            if self._jobs.get((kind, key)) is job:
                del self._jobs[(kind, key)]

    def is_current_locked(self, kind: str, key: str, job: Any) -> bool:
        """Whether ``job`` is the one listed under (kind, key); the caller holds ``self.lock``."""
        return self._jobs.get((kind, key)) is job

    def get(self, kind: str, key: str) -> Any:
        with self.lock:
            return self._jobs.get((kind, key))

    def of_kind(self, kind: str) -> list[Any]:
        with self.lock:
            return [job for (k, _), job in self._jobs.items() if k == kind]


LIVE = LiveJobs()
# Shared by every registry of the process, so "is the device free? then start" is one step for all of them.
_START_LOCK = threading.Lock()


def live_run_ids() -> frozenset[str]:
    return frozenset(job.run_id for job in LIVE.of_kind("run") if job.is_alive())


class BackgroundJob:
    """A daemon thread of this process doing one job's work; listed in LIVE from start() until the work ends."""

    kind = "job"

    @property
    def key(self) -> str:
        raise NotImplementedError

    def _work(self) -> None:
        raise NotImplementedError

    def _cleanup(self) -> None:
        """After the work, before the job leaves LIVE (a training job frees its device here)."""

    def start(self) -> None:
        LIVE.add(self.kind, self.key, self)  # before the thread runs: a reader never sees it as cut off
        self._thread = threading.Thread(target=self._run, name=f"{self.kind}-{self.key}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._work()
        finally:
            try:
                self._cleanup()
            finally:
                LIVE.discard(self.kind, self.key, self)

    def thread_alive(self) -> bool:
        thread = getattr(self, "_thread", None)
        return thread is not None and thread.is_alive()

    def is_alive(self) -> bool:
        return self.thread_alive()

    def join(self, timeout: float | None = None) -> Any:
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout)
        return self.outcome()

    def outcome(self) -> Any:
        return None


@dataclass(eq=False)
class _Job(BackgroundJob):
    """What every training job has: its run, its config, the device it holds, and its result once it has ended."""

    run: Run
    config: RunConfig
    device_key: str
    resume: bool = False
    result: TrainResult | None = None
    started_at: float = field(default_factory=time.time)
    stop_signal: StopSignal | None = None
    device_lock: DeviceLock | None = None  # held from before the run folder exists until the job has ended

    kind = "run"

    def __post_init__(self) -> None:
        if self.stop_signal is None:
            self.stop_signal = FileStopSignal(self.run.dir)

    @property
    def key(self) -> str:
        return self.run.id

    @property
    def run_id(self) -> str:
        return self.run.id

    def stop(self, keep_best: bool = False) -> None:
        self.stop_signal.set(keep_best=keep_best)

    def outcome(self) -> TrainResult | None:
        return self.result

    def _cleanup(self) -> None:
        if self.device_lock is not None:
            self.device_lock.release()


@dataclass(eq=False)
class TrainingJob(_Job):
    """One training run in a daemon thread of this process (tests only). It only writes the run folder."""

    hook: Hook | str | None = None

    def _work(self) -> None:
        from core.training import train  # the loop is imported only where a thread runs it
        from core.worker import load_hook

        hook = load_hook(self.hook) if isinstance(self.hook, str) else self.hook
        self.result = train(self.config, self.run, stop=self.stop_signal, resume=self.resume, hook=hook)


def job_mode() -> str:
    """'process' (the default) or 'thread' (tests only), from WORKBENCH_JOB_MODE."""
    mode = os.environ.get(JOB_MODE_ENV, "process").strip().lower()
    return mode if mode in ("process", "thread") else "process"


def result_from_disk(run: Run) -> TrainResult:
    """What a worker process reports: its run folder's final status and results."""
    status = run.status()
    state = status.get("state", RunStatus.FAILED)
    # results.json may be an earlier attempt's (a resume that failed): only a run that ended well owns it.
    results = run.results() if state in ENDED_WELL else {}
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


def _ended_early(code: int, log: Path) -> dict[str, Any]:
    """The status message (core.i18n.message fields) for a worker that died without writing its final state."""
    tail = ""
    try:
        lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        tail = lines[-1][:300] if lines else ""
    except OSError:
        pass
    last = "error.worker.last_words" if tail else None
    if code == -9:  # when nobody stopped it, this is usually the kernel's out-of-memory killer
        return message("error.worker.killed_oom", last, signal=9, tail=tail)
    if code < 0:
        return message("error.worker.killed", last, signal=-code, tail=tail)
    return message("error.worker.exited", last, code=code, tail=tail)


@dataclass(eq=False)
class ProcessJob(_Job):
    """One training run in its own process (``python -m core.worker``); the same interface as TrainingJob."""

    hook: str | None = None  # "module:function", imported by the worker (tests inject faults this way)
    _proc: subprocess.Popen | None = None
    _spawned: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        # The process is started by the thread that waits for it, which lives as long as it does. Linux ties a
        # worker's "die with the parent" to the thread that started it, and Streamlit runs each page in a
        # short-lived thread: started from there, the worker would be killed as soon as the page finished.
        super().start()
        self._spawned.wait(60)

    def _work(self) -> None:
        cmd = [sys.executable, "-m", "core.worker", str(self.run.dir), "--parent", str(os.getpid())]
        if self.resume:
            cmd.append("--resume")
        if self.hook:
            cmd += ["--hook", self.hook]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        try:
            with open(self.run.dir / "worker.log", "ab") as log:
                self._proc = subprocess.Popen(
                    cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
        except OSError as err:
            self.run.set_status(RunStatus.FAILED, **message("run.status.start_failed", error=str(err)))
            self.result = result_from_disk(self.run)
            return
        finally:
            self._spawned.set()
        code = self._proc.wait()
        with LIVE.lock:
            # A worker that wrote its final state counts as done before it exits, so a Resume may already
            # have started the next attempt: its 'queued' is not this worker's unfinished business.
            # (The stored state: a reader already sees a dead worker's run as interrupted.)
            if LIVE.is_current_locked(self.kind, self.key, self) and self.run.stored_status()["state"] in ACTIVE:
                # It died without its final word: a crash, or the kernel's out-of-memory killer.
                self.run.set_status(RunStatus.FAILED, **_ended_early(code, self.run.dir / "worker.log"))
        self.result = result_from_disk(self.run)

    def is_alive(self) -> bool:
        # A worker that has written its final state is done for everyone, though its process may take a moment
        # more to exit: the next Start must not be told that this run is still training.
        return self.thread_alive() and self.run.stored_status()["state"] in ACTIVE

    def _cleanup(self) -> None:
        self._spawned.set()  # start() never waits for a worker that was never started
        super()._cleanup()

    def winding_down(self) -> bool:
        """Its final state is written but its process has not exited yet (it still holds the device)."""
        return self.thread_alive() and not self.is_alive()


Job = TrainingJob | ProcessJob


def device_key(config: RunConfig) -> str:
    """Jobs are limited per device: 'cpu', 'cuda', 'mps' (auto resolves to what it would pick)."""
    name = config.train.device
    if name == "auto":
        from core.device import resolve_device

        name = resolve_device("auto").type  # the one place that decides what 'auto' means
    return name


def _launcher() -> str:
    """How the device lock names this process in a refusal: the app or the command line."""
    return "the app" if "streamlit" in sys.modules else "python -m core"


class JobRegistry:
    """Starts jobs idempotently: a double click, a second tab or a rerun never makes a second job.

    ``allow_parallel`` (default: WORKBENCH_ALLOW_PARALLEL) skips the workspace's device lock, so this process
    may train beside another one (the CLI) on purpose; within this process it is still one job per device.
    """

    def __init__(self, store: RunStore, mode: str | None = None, allow_parallel: bool | None = None):
        self.store = store
        self.mode = mode or job_mode()
        if self.mode not in ("process", "thread"):
            raise ValueError(f"unknown job mode {self.mode!r}")
        self.allow_parallel = parallel_allowed() if allow_parallel is None else allow_parallel
        self._lock = _START_LOCK
        self._jobs: dict[str, Job] = {}  # run_id -> job (finished ones kept for their results)
        # Readers already see a run whose process is gone as interrupted; this writes it down once.
        self.store.recover_interrupted(live_run_ids())

    def active(self, device: str | None = None) -> Job | None:
        with self._lock:
            return self._active_locked(device)

    def _adopt_locked(self) -> None:
        for job in LIVE.of_kind("run"):
            self._jobs.setdefault(job.run_id, job)  # adopt a job an older registry started, so Stop works

    def _active_locked(self, device: str | None) -> Job | None:
        self._adopt_locked()
        for job in self._jobs.values():
            if job.is_alive() and (device is None or job.device_key == device):
                return job
        return None

    def active_jobs(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.is_alive()]

    def _take_device(self, key: str) -> DeviceLock | None:
        """The workspace's lock of the device (None when parallel jobs are allowed), or DeviceBusy naming the job."""
        if self.allow_parallel:
            return None
        lock = DeviceLock(self.store.root.parent, key)
        try:
            lock.acquire(by=_launcher())
        except DeviceBusy as busy:
            # A worker of ours that has written its final state may not have exited yet: wait for it.
            mine = [j for j in self._jobs.values() if getattr(j, "winding_down", lambda: False)()]
            if not mine:
                raise
            for job in mine:
                job.join(WINDING_DOWN_S)
            try:
                lock.acquire(by=_launcher())
            except DeviceBusy:
                raise busy from None
        return lock

    def _check_hook(self, hook) -> None:
        if self.mode == "process" and hook is not None and not isinstance(hook, str):
            raise ValueError("A hook function runs only in thread mode; name it 'module:function' for a worker.")

    def _launch(self, run: Run, config: RunConfig, key: str, resume: bool, hook, lock) -> Job:
        FileStopSignal(run.dir).clear()  # an old Stop must not end the new attempt at once
        if lock is not None:
            lock.set_run(run.id)
        if self.mode == "process":
            job: Job = ProcessJob(run, config, key, resume=resume, device_lock=lock, hook=hook)
        else:
            job = TrainingJob(run, config, key, resume=resume, device_lock=lock, hook=hook)
        self._jobs[run.id] = job
        job.start()
        return job

    def start(self, config: RunConfig, *, hook: Hook | str | None = None) -> tuple[Job, bool]:
        """Start a new run, or return the job already running on that device. Returns (job, created).

        Raises DeviceBusy when another process (the CLI, another server) trains on the device.
        """
        key = device_key(config)
        self._check_hook(hook)
        with self._lock:
            running = self._active_locked(key)
            if running is not None:
                return running, False
            lock = self._take_device(key)
            try:
                run = self.store.create(config)
                return self._launch(run, config, key, False, hook, lock), True
            except BaseException:
                if lock is not None:
                    lock.release()
                raise

    def resume(self, run_id: str, *, hook: Hook | str | None = None) -> tuple[Job, bool]:
        """Continue an interrupted or stopped run from its last checkpoint (optimizer, schedule and RNG included)."""
        run = self.store.get(run_id)
        config = run.config()
        key = device_key(config)
        self._check_hook(hook)
        with self._lock:
            running = self._active_locked(key)
            if running is not None:
                return running, False
            state = run.state
            if state not in RESUMABLE:
                raise WorkbenchError("error.run.not_resumable", run=run_id, state=state_key(state))
            if run.latest_checkpoint() is None:
                raise WorkbenchError("error.run.no_checkpoint", hint="error.hint.start_again", run=run_id)
            lock = self._take_device(key)
            try:
                run.set_status(RunStatus.QUEUED, **message("run.status.resuming"))
                return self._launch(run, config, key, True, hook, lock), True
            except BaseException:
                if lock is not None:
                    lock.release()
                raise

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
        # The CLI, or another server on this workspace. A run whose process is gone reads as interrupted: there is
        # nothing to stop (Resume or Delete it).
        if run.state in ACTIVE:
            FileStopSignal(run.dir).set(keep_best=keep_best)
            return True
        return False

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def describe(self) -> list[dict[str, Any]]:
        return [{"run_id": j.run_id, "device": j.device_key, "state": j.run.state} for j in self.active_jobs()]
