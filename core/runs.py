"""Truth lives on disk: each run is a folder with its config, status, metrics and checkpoints.

runs/<run_id>/
  config.json          the whole RunConfig (enough to reproduce)
  status.json          state (queued -> running -> finished | failed | stopped | interrupted), message, progress,
                       and the owner: pid, its start time and host (a run whose owner is gone reads as interrupted)
  metrics.jsonl        one flushed line per logged step / evaluation
  data/                the prepared splits (parquet) and label names, so evaluation sees the same split
  checkpoints/step-000100/   model + tokenizer + trainer_state.pt (optimizer, scheduler, RNG; a complete run's last: no optimizer)
  model/               the final (or best) model, save_pretrained + tokenizer + workbench.json
  results.json         final metrics on validation and test
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.errors import WorkbenchError
from core.events import read_jsonl
from core.i18n import message


class RunStatus(StrEnum):
    """A run's state in status.json. A str, so JSON output and comparisons with plain strings keep working.

    (Not to be confused with core.training.RunState, the training loop's own state object.)
    """

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    # Not a state a run goes through: what is shown for a run whose config.json or status.json cannot be read.
    DAMAGED = "damaged"


STATES = tuple(s for s in RunStatus if s is not RunStatus.DAMAGED)  # the states a run can be set to
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
ENDED = (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.INTERRUPTED)
RESUMABLE = (RunStatus.INTERRUPTED, RunStatus.STOPPED, RunStatus.FAILED)
ENDED_WELL = (RunStatus.FINISHED, RunStatus.STOPPED)
DAMAGED = RunStatus.DAMAGED
INTERRUPTED_MESSAGE = "The process running this job stopped. Resume continues from the last checkpoint."
CHECKPOINT_RE = re.compile(r"^step-(\d{6,})$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


def default_workspace() -> Path:
    return Path(os.environ.get("WORKBENCH_HOME", "workspace")).resolve()


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside, fsync, then rename: a reader or a crash never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave hidden debris beside the old file
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when there is no such process.

    Recorded next to a pid, it tells the process that wrote it from a later one that was given the same pid
    (pids are reused, after a reboot most of all).
    """
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, ValueError, OverflowError):
        return None


def owner_fields() -> dict[str, Any]:
    """Who owns a run or a search now: this process (its pid, start time and host)."""
    return {"pid": os.getpid(), "pid_started": process_started(os.getpid()), "host": socket.gethostname()}


def owner_alive(record: dict[str, Any]) -> bool:
    """Is the process named in ``record`` (pid, pid_started, host) still the one that wrote it?

    A dead pid, or a live one that started at another time (the pid was reused), is a foreign owner: the run
    it left active was cut off. Another machine's process cannot be looked at; it counts as gone, as a
    workspace is local to one machine.
    """
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if record.get("host") not in (None, socket.gethostname()):
        return False
    if not _pid_alive(pid):
        return False
    recorded = record.get("pid_started")
    if not isinstance(recorded, (int, float)):
        return True  # written before start times were recorded: the pid is all there is to go on
    started = process_started(pid)
    # psutil derives the start time from boot time and clock ticks: the same process reads the same value.
    return started is not None and abs(started - recorded) < 1.0


@dataclass
class Run:
    """One run folder. Every accessor reads from disk, so any tab or process sees the same truth."""

    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def config_path(self) -> Path:
        return self.dir / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def model_dir(self) -> Path:
        return self.dir / "model"

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def config(self) -> RunConfig:
        return RunConfig.load(self.config_path)

    def config_dict(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    def config_problem(self) -> str | None:
        """Why config.json cannot be read (None when it can). Without its settings a run can only be deleted."""
        try:
            raw = self.config_dict()
        except OSError as err:
            return f"config.json cannot be read ({err.strerror or type(err).__name__})"
        except ValueError:  # bad JSON, or bytes that are not UTF-8
            return "config.json is not valid JSON"
        return None if isinstance(raw, dict) else "config.json does not hold the run's settings"

    def stored_status(self) -> dict[str, Any]:
        """status.json as written. Unreadable, not an object or an unknown state: state 'damaged', never a guess."""
        path = self.dir / "status.json"
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"state": RunStatus.QUEUED}  # create() writes config.json first: a run being created
        except (OSError, ValueError) as err:  # ValueError: also undecodable bytes, not only bad JSON
            why = "is not valid JSON" if isinstance(err, ValueError) else f"cannot be read ({type(err).__name__})"
            return _damaged_status(f"status.json {why}")
        if not isinstance(status, dict):
            return _damaged_status("status.json does not hold a status")
        try:
            status["state"] = RunStatus(status.get("state"))
        except ValueError:
            return _damaged_status(f"status.json names an unknown state ({str(status.get('state'))[:40]!r})")
        if status["state"] is RunStatus.DAMAGED:
            return _damaged_status("status.json says damaged")
        return status

    def status(self) -> dict[str, Any]:
        """The status as it is now: an active run whose process is gone (or was replaced) reads as interrupted."""
        status = self.stored_status()
        # No pid at all: status.json is not written yet (create() is between its two writes).
        if status["state"] in ACTIVE and "pid" in status and not owner_alive(status):
            status.update(state=RunStatus.INTERRUPTED, owner_gone=True, **message("run.status.interrupted"))
        return status

    @property
    def state(self) -> RunStatus:
        return self.status()["state"]

    def set_status(self, state: str | None = None, **fields: Any) -> dict[str, Any]:
        current = self.stored_status()
        if current["state"] is RunStatus.DAMAGED:
            current = {}  # this process owns the run now: write a whole status, not the damaged one's fields
        if state is not None:
            if state not in STATES:
                raise ValueError(f"unknown run state {state!r}")
            current["state"] = RunStatus(state)
            if state in ACTIVE:
                current.setdefault("started_at", time.time())
                current.update(owner_fields())
            else:
                current["finished_at"] = time.time()
        current.update(fields)
        current["updated_at"] = time.time()
        atomic_write_text(self.dir / "status.json", json.dumps(current, indent=2, default=str))
        return current

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)[0]

    def metrics_since(self, offset: int) -> tuple[list[dict[str, Any]], int]:
        return read_jsonl(self.metrics_path, offset)

    def results(self) -> dict[str, Any]:
        path = self.dir / "results.json"
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):  # one damaged file must not hide every other run from the lists
            return {}
        return results if isinstance(results, dict) else {}

    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_text(self.dir / "results.json", json.dumps(results, indent=2, default=str))

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints only (a half-written one is still a hidden .tmp folder), oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = [p for p in self.checkpoints_dir.iterdir() if p.is_dir() and CHECKPOINT_RE.match(p.name)]
        return sorted(found, key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)))

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint that can be resumed: its training state and its weights are both there."""
        done = [p for p in self.checkpoints() if checkpoint_complete(p)]
        return done[-1] if done else None

    def has_model(self) -> bool:
        return (self.model_dir / "workbench.json").exists()


STATE_FILE = "trainer_state.pt"
"""Optimizer, scheduler and RNG state in a checkpoint: for resuming, not part of a model."""


def checkpoint_complete(folder: Path) -> bool:
    # A checkpoint whose weights were deleted or lost would offer a Resume that fails the same way forever.
    has_weights = (folder / "adapter_model.safetensors").exists() or any(folder.glob("model*.safetensors"))
    return (folder / STATE_FILE).exists() and has_weights


class RunStore:
    """All runs under one folder; creating, listing, deleting and finding runs a dead process left running."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_workspace() / "runs"
        self.root.mkdir(parents=True, exist_ok=True)

    def new_id(self, config: RunConfig) -> str:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", config.name or config.model.task).strip("-")[:40] or "run"
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{uuid.uuid4().hex[:4]}"

    def create(self, config: RunConfig, run_id: str | None = None) -> Run:
        run_id = run_id or self.new_id(config)
        if not _ID_RE.match(run_id):
            raise WorkbenchError("error.run.bad_name", hint="error.hint.run_name", run=run_id)
        folder = self.root / run_id
        folder.mkdir(parents=True, exist_ok=False)
        run = Run(folder)
        atomic_write_text(run.config_path, config.to_json())
        run.set_status(RunStatus.QUEUED, created_at=time.time())
        return run

    def get(self, run_id: str) -> Run:
        """A run whose settings can be read; a damaged one is refused with what to do."""
        run = self._find(run_id)
        problem = run.config_problem()
        if problem:
            raise WorkbenchError("error.run.damaged", hint="error.hint.delete_run", run=run_id, problem=problem)
        return run

    def _find(self, run_id: str) -> Run:
        if not _ID_RE.match(str(run_id)) or not (self.root / run_id / "config.json").exists():
            raise WorkbenchError("error.run.missing", hint="error.hint.pick_run", run=run_id)
        return Run(self.root / run_id)

    def list(self) -> list[Run]:
        runs = [Run(p) for p in self.root.iterdir() if (p / "config.json").exists()]
        return sorted(runs, key=lambda r: r.status().get("created_at", 0), reverse=True)

    def delete(self, run_id: str) -> None:
        run = self._find(run_id)  # a damaged run can still be deleted
        if run.state in ACTIVE:  # status() already reads a run whose owner is gone as interrupted
            raise WorkbenchError("error.run.still_training", hint="error.hint.stop_first", run=run_id)
        shutil.rmtree(run.dir)

    def owner_alive(self, run: Run) -> bool:
        return owner_alive(run.stored_status())

    def recover_interrupted(self, active_here: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Write 'interrupted' for runs left active by a gone owner (or by this process without a live job).

        Readers already see such a run as interrupted (Run.status); writing it down keeps the file honest
        for other tools. A damaged status.json is left as it is: it is shown as damaged, not guessed at.
        """
        marked = []
        for run in self.list():
            status = run.stored_status()
            if status["state"] not in ACTIVE or run.id in active_here:
                continue
            orphan_here = status.get("pid") == os.getpid()
            if orphan_here or ("pid" in status and not owner_alive(status)):
                run.set_status(RunStatus.INTERRUPTED, **message("run.status.interrupted"))
                marked.append(run.id)
        return marked

    def summaries(self) -> list[dict[str, Any]]:
        """One flat row per run for tables: id, state, task, model, key metrics, duration."""
        rows = []
        for run in self.list():
            problem = run.config_problem()
            if problem:
                rows.append(_damaged_row(run, problem))
                continue
            cfg = run.config_dict()
            status, results = run.status(), run.results()
            started, ended = status.get("started_at"), status.get("finished_at") or status.get("updated_at")
            row = {
                "run": run.id,
                "name": cfg.get("name") or run.id,
                "state": status.get("state"),
                "task": cfg.get("model", {}).get("task"),
                "model": cfg.get("model", {}).get("source"),
                "method": cfg.get("model", {}).get("method"),
                "duration_s": round(ended - started, 1) if started and ended else None,
                "message": status.get("message", ""),
            }
            for key, value in (results.get("validation") or {}).items():
                if isinstance(value, (int, float)):
                    row[f"val_{key}"] = value
            for key, value in (results.get("test") or {}).items():
                if isinstance(value, (int, float)):
                    row[f"test_{key}"] = value
            rows.append(row)
        return rows


def _damaged_status(problem: str) -> dict[str, Any]:
    return {
        "state": RunStatus.DAMAGED,
        "damaged": problem,
        "message": f"Damaged: {problem}, so this run's state is unknown. Delete it on the Runs page.",
    }


def _damaged_row(run: Run, problem: str) -> dict[str, Any]:
    """A run whose config.json is unreadable stays listed (hiding it would leave a folder no page can delete)."""
    return {
        "run": run.id,
        "name": run.id,
        "state": RunStatus.DAMAGED,
        "task": None,
        "model": None,
        "method": None,
        "duration_s": None,
        "message": f"Damaged: {problem}; its settings are lost, so it cannot be opened, resumed or repeated. "
        "Delete it.",
    }
