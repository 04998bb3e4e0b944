"""How long the live view takes to read and tabulate a long run: 100,000 logged steps, then one new line.

    .venv/bin/python bench/long_run_read.py [--steps 100000] [--repeats 5]

The suite checks what is read (tests/unit/test_load.py); the time it takes is this script's to print.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.curves import curve_frames, downsample  # noqa: E402
from core.runs import Run  # noqa: E402
from tests.unit.test_load import write_long_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp) / "long-run")
        run.dir.mkdir()
        write_long_run(run.metrics_path, args.steps)
        full_wall, full_cpu, tail_wall = [], [], []
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.thread_time()
            downsample(curve_frames(run.metrics())[0])
            full_cpu.append(time.thread_time() - cpu)
            full_wall.append(time.perf_counter() - wall)
            offset = run.metrics_path.stat().st_size
            with open(run.metrics_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": args.steps + 1, "loss": 0.5}) + "\n")
            wall = time.perf_counter()
            run.metrics_since(offset)
            tail_wall.append(time.perf_counter() - wall)
    print(f"{args.steps:,} logged steps, median of {args.repeats}")
    print(f"read + tabulate + downsample: {statistics.median(full_wall):.3f} s wall, "
          f"{statistics.median(full_cpu):.3f} s CPU")  # fmt: skip
    print(f"read one new line after them: {statistics.median(tail_wall) * 1000:.2f} ms wall")


if __name__ == "__main__":
    main()
