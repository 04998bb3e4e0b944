"""The engine under the app: core.jobs.JobRegistry (a worker process, as the app runs it) with a reader polling the
run every 0.5 s the way the Train page's live panel does (status.json + the shared metrics snapshot and figures +
serialising them), against the same run headless (`python -m core train --config`, a fresh process, nothing
reading).

    .venv/bin/python bench/app_overhead.py [--train 1500] [--rounds 2]

Runs alternate headless / app / app / headless ... (ABBA) in one process, so drift in a shared machine's load
falls on both; the ratio is of mean training samples/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


def _config(train_csv: Path, val_csv: Path):
    from core.config import RunConfig

    return RunConfig.from_dict(
        {
            "data": {"train_path": str(train_csv), "validation_path": str(val_csv), "test_fraction": 0.0},
            "model": {"source": "default", "task": "classification"},
            "train": {"batch_size": 16, "learning_rate": 5e-5, "epochs": 1, "seed": 0, "log_every": 5},
        }
    )


def headless(store, config) -> float:
    """The same run as a user runs it without the app: `python -m core train --config ...` in a fresh process.

    The app's worker is a fresh process too, so neither side gets caches warmed by an earlier run.
    """
    import json
    import os
    import subprocess

    root = Path(__file__).resolve().parent.parent
    cfg = store.root.parent / "headless-config.json"
    cfg.write_text(config.to_json(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-m", "core", "--workspace", str(store.root.parent), "train", "--config",
                          str(cfg), "--quiet"], cwd=root, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    results = json.loads((store.root / summary["run"] / "results.json").read_text(encoding="utf-8"))
    return results["samples_per_s"]


def under_app(store, config) -> tuple[float, int]:
    from bench.load_polling import panel_json
    from core.jobs import JobRegistry

    registry = JobRegistry(store)
    job, created = registry.start(config)
    assert created
    polls = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal polls
        while not done.wait(0.5):
            job.run.status()
            panel_json(job.run)
            polls += 1

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    result = job.join()
    done.set()
    thread.join()
    assert result is not None and result.state == "finished", result and result.message
    return result.samples_per_s, polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (each: 2 headless + 2 app runs)")
    opts = parser.parse_args()

    from core.runs import RunStore

    work = common.scratch_dir("bench-app-")
    train_csv, val_csv = common.write_reviews(work / "data", opts.train, 200, seed=0)
    config = _config(train_csv, val_csv)
    store = RunStore(work / "runs")
    print(f"{opts.train} reviews, batch 16, 1 epoch, default MiniLM; load average {common.load_average():.1f}")
    head_rates, app_rates, polls = [], [], 0
    for r in range(opts.rounds):
        order = ("headless", "app", "app", "headless") if r % 2 == 0 else ("app", "headless", "headless", "app")
        for kind in order:
            if kind == "headless":
                head_rates.append(headless(store, config))
                print(f"  headless {head_rates[-1]:.1f} samples/s", flush=True)
            else:
                rate, n = under_app(store, config)
                app_rates.append(rate)
                polls += n
                print(f"  app      {rate:.1f} samples/s ({n} polls)", flush=True)
    h, a = statistics.mean(head_rates), statistics.mean(app_rates)
    rows = [
        {"what": "headless python -m core train", "sps": h, "runs": len(head_rates), "ratio": 1.0},
        {"what": "JobRegistry worker process + 0.5 s polling reader", "sps": a, "runs": len(app_rates), "ratio": a / h},
    ]
    print()
    print(
        common.table(
            rows,
            [
                ("what", "path", "s"),
                ("sps", "samples/s (mean)", ".1f"),
                ("runs", "runs", "d"),
                ("ratio", "× headless", ".3f"),
            ],
        )
    )
    print(f"reader polls in all: {polls}; load average after: {common.load_average():.1f}")


if __name__ == "__main__":
    main()
