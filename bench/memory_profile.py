"""Where the engine's peak memory comes from: resident memory (RSS) at each phase of one classifier run.

    .venv/bin/python bench/memory_profile.py [--train 3000] [--val 500] [--engine-train '{"precision": "fp32"}']

Runs ``core.training.train`` exactly as bench/train_classifier.py's engine configuration does (same data, model,
settings), in this process, and reads RSS through the training loop's hooks: after imports, after the data, when
the model is ready (before step 1), after steps 1, 10, 50 ..., at evaluation, during the checkpoint save and after
the run (final model save and scoring of the validation split). "peak so far" is ``ru_maxrss``: the phase where it
jumps is the phase that sets the process's peak. RSS does not depend on the machine's load; the time column does.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.train_classifier import BATCH, DECAY, LR, MAX_LEN, SEED, _warmup_steps  # noqa: E402

STEPS_SHOWN = (1, 2, 5, 10, 20, 37, 50, 100, 150)


def rss_mb() -> float:
    """Resident memory now (ru_maxrss only gives the peak)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class Recorder:
    """Rows of (phase, RSS now, peak so far, seconds since start) collected from the training hooks."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.rows: list[dict[str, Any]] = []
        self.last_step = 0

    def mark(self, phase: str) -> None:
        self.rows.append(
            {"phase": phase, "rss": rss_mb(), "peak": common.peak_rss_mb(), "t": time.perf_counter() - self.t0}
        )

    def hook(self, event: str, info: dict[str, Any]) -> None:
        if event == "data":
            self.mark("data prepared")
        elif event == "step":
            step = info["step"]
            if step == 0 and info["micro"] == 0:
                self.mark("model built, data encoded (before step 1)")
            elif step in STEPS_SHOWN and step != self.last_step:
                self.mark(f"after step {step}")
            self.last_step = step
        elif event == "eval":
            self.mark(f"after step {info['step']}, before evaluation")
        elif event == "save":
            self.mark(f"checkpoint: model written (step {info['step']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=3000, help="training sentences")
    parser.add_argument("--val", type=int, default=500, help="validation sentences")
    parser.add_argument("--engine-train", default="{}", help="JSON overrides of the engine's train settings")
    opts = parser.parse_args()
    rec = Recorder()
    rec.mark("start (python + bench imports)")
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from core.config import RunConfig
    from core.runs import RunStore
    from core.training import train

    rec.mark("torch + transformers + core imported")
    work = common.scratch_dir("bench-mem-")
    train_csv, val_csv = common.write_reviews(work, opts.train, opts.val, seed=SEED)
    config = RunConfig.from_dict(
        {
            "data": {"train_path": str(train_csv), "validation_path": str(val_csv), "test_fraction": 0.0},
            "model": {"source": "default", "task": "classification"},
            "train": {"batch_size": BATCH, "learning_rate": LR, "epochs": 1, "seed": SEED, "max_length": MAX_LEN,
                      "warmup_steps": _warmup_steps(opts.train), "weight_decay": DECAY,
                      **json.loads(opts.engine_train)},
        }
    )  # fmt: skip
    run = RunStore(work / "runs").create(config)
    result = train(config, run, hook=rec.hook)
    rec.mark("run finished (final model saved, validation scored)")
    if result.state != "finished":
        raise SystemExit(f"the run ended {result.state}: {result.message}")
    prev = 0.0
    for row in rec.rows:
        row["jump"] = row["peak"] - prev
        prev = row["peak"]
    print(f"engine, {opts.train} train / {opts.val} validation reviews, batch {BATCH}, "
          f"precision {run.status().get('precision')}; {result.samples_per_s:.1f} samples/s, "
          f"val acc {result.results['validation']['accuracy']:.4f}, load {common.load_average():.1f}")  # fmt: skip
    print(common.table(rec.rows, [("phase", "phase", "s"), ("rss", "RSS MB", ".0f"), ("peak", "peak so far MB", ".0f"),
                                  ("jump", "peak +MB", "+.0f"), ("t", "s", ".1f")]))  # fmt: skip


if __name__ == "__main__":
    main()
