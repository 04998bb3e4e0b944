"""The label-error finder as a background job: it runs beside the pages, and its result lives in the dataset.

A check of 5,000 rows embeds every row and fits k fold models: minutes on two cores. Run inside a page script,
it blocked the page and was lost when the user went to another page. Here it is a ``BackgroundJob`` (core.jobs)
like a training run or a search: a daemon thread of the server, listed in ``LIVE`` while it works, that writes
its progress (rows embedded, folds fitted) and then its flagged rows to ``<dataset folder>/label-check.json``.
A dataset version never changes after it is saved, so the result stays valid for it: a page change, a second
tab or a restarted server reads the same file. A check left "running" by a process that is gone reads as
interrupted (the same owner test as runs and searches), and a Cancel is a ``stop.json`` beside it.

The work itself runs in its own process (``python -m core.label_check DATASET_DIR --folds K``), started and
waited for by the job's thread, as a training run's worker is: importing torch and embedding every row inside
the server shared the server's GIL with every page it serves (measured in the browser on the loaded 2-core
machine: the check's thread was still importing torch after 200 s while the page polled). Thread mode
(``mode="thread"`` or WORKBENCH_JOB_MODE=thread) runs it in this process, for tests. It is CPU work, so no
device lock is taken.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import WorkbenchError
from core.i18n import message
from core.jobs import LIVE, PROJECT_ROOT, BackgroundJob, job_mode
from core.progress import FileStopSignal
from core.runs import atomic_write_text, owner_alive, owner_fields

CHECK_FILE = "label-check.json"
STOP_DIR = "label-check"  # stop.json lives here, apart from the dataset's own files
ACTIVE = ("queued", "running")
SAVE_EVERY_S = 0.5  # progress is rewritten at most this often (a 5,000-row check has ~80 batches)
_START_LOCK = threading.Lock()


class CheckStopped(Exception):
    """Raised from the progress callback when the user cancels the check."""


def check_path(dataset_dir: Path) -> Path:
    return Path(dataset_dir) / CHECK_FILE


def stop_signal(dataset_dir: Path) -> FileStopSignal:
    folder = Path(dataset_dir) / STOP_DIR
    folder.mkdir(exist_ok=True)
    return FileStopSignal(folder, every=0.0)


def read_check(dataset_dir: Path) -> dict[str, Any] | None:
    """The dataset's last check (None when it was never checked); an orphaned 'running' one reads as interrupted."""
    path = check_path(dataset_dir)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"state": "failed", "folds": None, **message("insight.li.status.damaged")}
    if record.get("state") in ACTIVE and not _owner_alive(record, Path(dataset_dir)):
        record.update(state="interrupted", **message("insight.li.status.interrupted"))
    return record


def _owner_alive(record: dict[str, Any], dataset_dir: Path) -> bool:
    if record.get("pid") == os.getpid():  # this process: alive while its job is listed as working
        return LIVE.get(LabelCheckJob.kind, str(Path(dataset_dir).resolve())) is not None
    return owner_alive(record)


def _save(dataset_dir: Path, record: dict[str, Any]) -> None:
    record["updated_at"] = time.time()
    atomic_write_text(check_path(dataset_dir), json.dumps(record, indent=1, ensure_ascii=False))


def run_check(dataset, folds: int, *, source: str = "default", seed: int = 0) -> dict[str, Any]:
    """Check one saved dataset's labels, writing progress and the result beside it; returns the final record."""
    from core.label_issues import find_label_issues

    folder = dataset.dir
    stop = stop_signal(folder)
    record: dict[str, Any] = {
        "dataset": dataset.name,
        "folds": folds,
        "state": "running",
        "stage": "reading",
        "done": 0,
        "total": 0,
        "started_at": time.time(),
        **owner_fields(),
        **message("insight.li.status.reading"),
    }
    _save(folder, record)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if stop.is_set():
            raise CheckStopped
        key = "insight.li.status.embedding" if stage == "embedding" else "insight.li.status.folds"
        record.update(stage=stage, done=done, total=total, **message(key, done=done, total=total))
        now = time.monotonic()
        if now - last[0] >= SAVE_EVERY_S or done == total:
            last[0] = now
            _save(folder, record)

    try:
        rows, issues = find_label_issues(
            dataset.path,
            text_column=dataset.settings.text_column,
            label_column=dataset.settings.label_column,
            folds=folds,
            source=source,
            seed=seed,
            progress=progress,
        )
        record.update(
            state="finished",
            rows=len(rows.labels),
            label_names=rows.label_names,
            issues=[i.to_dict() for i in issues],
            **message("insight.li.status.finished", flagged=len(issues), rows=len(rows.labels)),
        )
    except CheckStopped:
        record.update(state="stopped", **message("insight.li.status.stopped"))
    except WorkbenchError as err:  # bad data: the engine's message says what to fix
        record.update(state="failed", **message("insight.li.status.failed", error=str(err)))
    except Exception as err:  # noqa: BLE001 - the thread must always leave a readable state behind
        error = f"{type(err).__name__}: {str(err)[:300]}"
        record.update(state="failed", **message("insight.li.status.crashed", error=error))
    finally:
        record["finished_at"] = time.time()
        _save(folder, record)
    return record


@dataclass(eq=False)
class LabelCheckJob(BackgroundJob):
    """One dataset's label check: a thread of this process that runs it in a child process (or itself, in
    thread mode), so the record on disk is the only thing the two share."""

    dataset: Any  # core.datasets.Dataset
    folds: int
    source: str = "default"
    mode: str = "process"
    record: dict[str, Any] | None = None

    kind = "label_check"

    @property
    def key(self) -> str:
        return str(Path(self.dataset.dir).resolve())

    def _work(self) -> None:
        if self.mode == "thread":
            self.record = run_check(self.dataset, self.folds, source=self.source)
            return
        folder = Path(self.dataset.dir)
        cmd = [sys.executable, "-m", "core.label_check", str(folder), "--folds", str(self.folds)]
        cmd += ["--source", self.source, "--parent", str(os.getpid())]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        try:
            with open(folder / STOP_DIR / "worker.log", "ab") as log:
                code = subprocess.run(
                    cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                ).returncode
        except OSError as err:
            code, why = -1, str(err)
        else:
            why = f"exit code {code}"
        record = read_check(folder) or {}
        if record.get("state") in ACTIVE or record.get("state") == "interrupted":
            # It died without its final word (killed, out of memory): say so rather than leave it "running".
            record.update(state="failed", **message("insight.li.status.crashed", error=why))
            _save(folder, record)
        self.record = record

    def outcome(self) -> dict[str, Any] | None:
        return self.record


def _check_in_process(argv: list[str] | None = None) -> int:
    """``python -m core.label_check DATASET_DIR --folds K``: what a LabelCheckJob runs in its child process."""
    from core.datasets import DatasetStore
    from core.worker import _die_with_parent

    parser = argparse.ArgumentParser(prog="python -m core.label_check")
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--source", default="default")
    parser.add_argument("--parent", type=int, default=None, help="end when this process ends")
    args = parser.parse_args(argv)
    if args.parent:
        _die_with_parent(args.parent)
    folder = args.dataset_dir.resolve()
    dataset = DatasetStore(folder.parent).get(folder.name)
    return 0 if run_check(dataset, args.folds, source=args.source)["state"] == "finished" else 1


def start_check(dataset, folds: int, *, source: str = "default", mode: str | None = None) -> tuple[LabelCheckJob, bool]:
    """Start checking ``dataset``, or return the check of it already working. Returns (job, created).

    One check per dataset at a time: a double click, a rerun or a second tab attaches to the running one.
    """
    key = str(Path(dataset.dir).resolve())
    with _START_LOCK:  # "is one running? else start mine" is one step: two clicks never start two
        running = LIVE.get(LabelCheckJob.kind, key)
        if running is not None and running.is_alive():
            return running, False
        stop_signal(dataset.dir).clear()
        job = LabelCheckJob(dataset, folds, source, mode or job_mode())
        LIVE.add(job.kind, key, job)  # listed before its record says queued, so no reader takes it for orphaned
        queued = {"dataset": dataset.name, "folds": folds, "state": "queued", **owner_fields()}
        _save(dataset.dir, {**queued, **message("insight.li.status.queued")})
        job.start()
    return job, True


def cancel_check(dataset_dir: Path) -> bool:
    """Ask a running check to stop (from any tab or process); False when none runs."""
    record = read_check(dataset_dir)
    if record is None or record.get("state") not in ACTIVE:
        return False
    stop_signal(dataset_dir).set()
    return True


if __name__ == "__main__":
    sys.exit(_check_in_process())
