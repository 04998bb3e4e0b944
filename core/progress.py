"""What a training run reports and how it is asked to stop: light types shared by the loop, the job registry,
the search and the CLI. Importing this module imports no torch and no part of the loop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.runs import atomic_write_text

Hook = Callable[[str, dict[str, Any]], None]
"""A test's view into the loop: ``hook(event, info)`` at "data", "step", "eval" and "save" (see training.Callbacks)."""

STOP_FILE = "stop.json"  # in the run folder: a Stop that reaches the run from any process


class StopSignal:
    """Set from any thread; the loop checks it every micro-batch. ``keep_best`` restores the best checkpoint."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.keep_best = False

    def set(self, keep_best: bool = False) -> None:
        self.keep_best = self.keep_best or keep_best
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class FileStopSignal(StopSignal):
    """A stop that crosses processes: ``set`` also writes ``<run>/stop.json``; ``is_set`` also looks for it.

    A training worker process and the server (or a second server, or the CLI) share nothing but the run
    folder, so the folder carries the request. Looking is a stat() at most every ``every`` seconds; the loop
    asks every micro-batch.
    """

    def __init__(self, run_dir: Path, every: float = 0.2) -> None:
        super().__init__()
        self.path = Path(run_dir) / STOP_FILE
        self.every = every
        self._looked = 0.0

    def set(self, keep_best: bool = False) -> None:
        super().set(keep_best)
        atomic_write_text(self.path, json.dumps({"keep_best": self.keep_best, "at": time.time()}))

    def is_set(self) -> bool:
        if self._event.is_set():
            return True
        now = time.monotonic()
        if now - self._looked < self.every:
            return False
        self._looked = now
        try:
            request = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError):  # half-visible or damaged: a stop was asked for all the same
            request = {}
        super().set(keep_best=bool(isinstance(request, dict) and request.get("keep_best")))
        return True

    def clear(self) -> None:
        """Forget an old request (before a run starts or resumes), so it cannot stop the new attempt at once."""
        self._event.clear()
        self.keep_best = False
        self.path.unlink(missing_ok=True)


@dataclass
class TrainResult:
    run_id: str
    state: str
    message: str = ""
    steps: int = 0
    train_seconds: float = 0.0
    samples_per_s: float = 0.0
    tokens_per_s: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """What a resumed run needs to continue exactly where it stopped (saved in trainer_state.pt)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    samples: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    best_metric: float | None = None
    best_step: int = 0
    bad_evals: int = 0
