"""One training job per device across processes: a lock file in the workspace that the CLI and the server take.

``workspace/locks/<device>.lock`` is held with ``flock`` by the process that launches a job (the CLI that
trains, or the server whose worker trains) for as long as the job lives. The kernel drops the lock when that
process ends, however it ends (kill -9 included), so a stale lock is impossible. Beside the lock, the file
holds who took it (run, pid, command), so a refused start can name the job in the way.

Running several jobs on one device on purpose: ``--allow-parallel`` on the CLI, or ``WORKBENCH_ALLOW_PARALLEL=1``
for any process (the server included). Such a process neither takes nor checks the lock.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from core.errors import WorkbenchError

PARALLEL_ENV = "WORKBENCH_ALLOW_PARALLEL"


def parallel_allowed() -> bool:
    return os.environ.get(PARALLEL_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class DeviceBusy(WorkbenchError):
    """Another process trains on this device; ``holder`` says which run (may be empty if it cannot be read)."""

    def __init__(self, device: str, holder: dict[str, Any]):
        self.device = device
        self.holder = holder
        # who/by name messages of their own, filled with run/owner/pid (core.i18n.resolve)
        super().__init__(
            "error.device.busy",
            hint="error.hint.busy",
            device=device.upper() if device == "cpu" else device,
            who="error.device.who_run" if holder.get("run") else "error.device.who_other",
            by="error.device.by" if holder.get("by") else "",
            run=holder.get("run"),
            owner=holder.get("by"),
            pid=holder.get("pid"),
            env=PARALLEL_ENV,
        )


class DeviceLock:
    """The lock of one device in one workspace. ``acquire`` never waits: it takes the lock or raises DeviceBusy."""

    def __init__(self, workspace: Path, device: str):
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", device) or "device"
        self.device = device
        self.path = Path(workspace) / "locks" / f"{safe}.lock"
        self._fd: int | None = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, run_id: str = "", by: str = "") -> None:
        import fcntl

        with self._mutex:
            if self._fd is not None:
                raise RuntimeError("this DeviceLock is already held")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                # flock locks belong to the open file: a second open() in this very process is refused too,
                # so two registries (or a registry and an in-process CLI call) exclude each other as well.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DeviceBusy(self.device, self.holder()) from None
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            self._write({"run": run_id, "by": by, "pid": os.getpid(), "since": time.time()})

    def set_run(self, run_id: str) -> None:
        """Name the run once it exists (the lock is taken before its folder is made)."""
        with self._mutex:
            if self._fd is not None:
                info = self.holder()
                self._write({**info, "run": run_id})

    def _write(self, info: dict[str, Any]) -> None:
        data = json.dumps(info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        import fcntl

        with self._mutex:
            if self._fd is None:
                return
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def holder(self) -> dict[str, Any]:
        """Who holds the lock, as its holder wrote it ({} when nobody says)."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def is_free(self) -> bool:
        """Whether nobody holds the lock now (a look, not a reservation)."""
        try:
            self.acquire()
        except DeviceBusy:
            return False
        self.release()
        return True

    def __enter__(self) -> DeviceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
