"""Hostile data files through the data check: time and peak memory of read + guess + check, one process each.

    .venv/bin/python bench/hostile_files.py [--timeout 120] [--only wide-10k,long-200k]

The files are the ones issue 19 named: a CSV with 10,000 or 100,000 columns (about 1 MB: a header and two
rows), and a CSV whose one text field holds 200,000 characters, plus JSON nested 10,000 deep. Each case runs
the same calls as ``python -m core check`` (read_table, guess_columns, check_data) in a fresh subprocess, so
its peak RSS is its own; a case that runs past the timeout is killed and reported as such. The machine is
shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wide_csv(path: Path, columns: int) -> Path:
    header = ",".join(f"c{i}" for i in range(columns))
    row = ",".join("1" for _ in range(columns))
    path.write_text(f"{header}\n{row}\n{row}\n", encoding="utf-8")
    return path


def long_csv(path: Path, chars: int) -> Path:
    path.write_text(f"text,label\n{'a' * chars},pos\nshort,neg\n", encoding="utf-8")
    return path


def deep_json(path: Path, depth: int) -> Path:
    path.write_text("[" * depth + "]" * depth, encoding="utf-8")
    return path


CASES = {
    "wide-1k": lambda d: wide_csv(d / "wide1k.csv", 1_000),  # at the column limit: read and checked
    "wide-10k": lambda d: wide_csv(d / "wide10k.csv", 10_000),
    "wide-100k": lambda d: wide_csv(d / "wide100k.csv", 100_000),
    "long-200k": lambda d: long_csv(d / "long.csv", 200_000),
    "deep-json-10k": lambda d: deep_json(d / "deep.json", 10_000),
}


def child(path: str) -> None:
    sys.path.insert(0, str(ROOT))
    from core.data import check_data, guess_columns, read_table
    from core.errors import WorkbenchError

    start, cpu = time.perf_counter(), time.process_time()
    outcome = "checked"
    try:
        table = read_table(path)
        columns = guess_columns(table.frame, "classification")
        check_data(table.frame, columns, "classification")
    except WorkbenchError as err:
        outcome = f"refused: {str(err)[:110]}"
    except Exception as err:  # noqa: BLE001 - the figure to report is exactly this: a raw error
        outcome = f"RAW {type(err).__name__}: {str(err)[:80]}"
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": peak, "outcome": outcome}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            path = CASES[name](Path(tmp))
            size = path.stat().st_size
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path)],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
                )
                result = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else None
            except subprocess.TimeoutExpired:
                result = None
                print(f"{name:14} {size / 1e6:5.2f} MB  killed after {args.timeout:.0f} s (still running)")
                continue
            if result is None:
                print(f"{name:14} {size / 1e6:5.2f} MB  no result: {out.stderr.strip()[-300:]}")
                continue
            print(
                f"{name:14} {size / 1e6:5.2f} MB  wall {result['wall_s']:7.2f} s  cpu {result['cpu_s']:7.2f} s  "
                f"peak RSS {result['peak_mb']:7.0f} MB  {result['outcome']}"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
