"""A training job's own process: ``python -m core.worker RUN_DIR --parent PID [--resume] [--hook MODULE:FUNCTION]``.

Why a process and not a thread of the server: every Streamlit session that shows a live chart runs Python in
the server process. In a thread, training shared the GIL with them, and ten open pages slowed a run by more than
half. In its own process the training loop only competes for CPU time, and the pages' work is small.

The worker shares nothing with the server but the run folder (config.json in, status/metrics/checkpoints out,
stop.json to stop). It dies with the server that started it: status.json names this process (pid and start
time), so the run of a killed server reads as interrupted at once, and resumes from its last checkpoint.

``--hook`` names a function the loop calls at its events (tests inject faults in the real worker this way).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path


def _die_with_parent(parent: int) -> None:
    """End this process when ``parent`` ends, even if it is killed with SIGKILL and cannot tell us."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG: the kernel kills us when the parent dies
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before we could ask
        os._exit(3)

    def watch() -> None:  # every other POSIX system: an orphan is re-parented, so its parent id changes
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    if os.name == "posix":
        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def load_hook(spec: str):
    """'package.module:function' -> the function (a training hook given by name, so it can cross processes)."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"a hook is named 'module:function', not {spec!r}")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None, *, process_ends: bool = False) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.worker", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--parent", type=int, default=None, help="end when this process ends")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hook", default=None, help="MODULE:FUNCTION called at the loop's events (tests)")
    args = parser.parse_args(argv)
    if args.parent:
        _die_with_parent(args.parent)

    from core.progress import FileStopSignal
    from core.runs import ENDED_WELL, Run
    from core.training import train

    run = Run(args.run_dir)
    config = run.config()
    hook = load_hook(args.hook) if args.hook else None
    # The server cleared any old stop request before it started us; one that arrives now is for this attempt.
    result = train(config, run, stop=FileStopSignal(run.dir), resume=args.resume, hook=hook, process_ends=process_ends)
    return 0 if result.state in ENDED_WELL else 1


if __name__ == "__main__":
    sys.exit(main(process_ends=True))
