"""What the second core adds to the MiniLM step's matmuls: 1 vs 2 OpenMP threads in one process, and two
single-thread processes side by side (one per core), in bf16 and fp32.

    .venv/bin/python bench/thread_scaling.py [--rounds 5] [--rows 704]

The shapes are a MiniLM layer's at the classifier benchmark's typical batch (16 reviews, ~704 padded tokens):
the attention projections, the feed-forward up and down, and the backward's weight-gradient product. Each round
times every shape at 1 thread, then 2, in turn, so a change of the machine's speed during the run spreads over
both; the table gives each one's median and the spread over the rounds. The last part starts two processes at
once, each pinned to its own core with one thread: if they together reach ~2x one thread while one process's
two threads do not, the second core is there but the in-process split of these small matmuls does not use it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


def shapes(rows: int) -> dict[str, tuple[int, int, int]]:
    # (m, k, n) of an [m x k] @ [k x n] product; MiniLM-L6: width 384, feed-forward 1,536.
    return {
        "attention projection": (rows, 384, 384),
        "feed-forward up": (rows, 384, 1536),
        "feed-forward down": (rows, 1536, 384),
        "weight gradient (ff up)": (1536, rows, 384),
    }


def gflops(m: int, k: int, n: int, dtype, seconds: float = 0.4) -> float:
    import torch

    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def child(args: dict) -> None:
    """One pinned single-thread process: the GFLOP/s of each shape, as JSON on stdout."""
    import torch

    os.sched_setaffinity(0, {args["core"]})
    torch.set_num_threads(1)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args["dtype"]]
    gflops(64, 64, 64, dtype, seconds=0.05)  # warm the library up, then start with the other process
    time.sleep(max(0.0, args["start"] - time.time()))
    out = {name: gflops(*shape, dtype, seconds=args["seconds"]) for name, shape in shapes(args["rows"]).items()}
    print("RESULT " + json.dumps(out), flush=True)


def side_by_side(rows: int, dtype: str, seconds: float) -> list[dict[str, float]]:
    start = time.time() + 8.0  # both children import torch first, then start timing together
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                json.dumps({"core": core, "dtype": dtype, "rows": rows, "seconds": seconds, "start": start}),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for core in sorted(os.sched_getaffinity(0))[:2]
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    return results


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rows", type=int, default=704, help="tokens in a batch (the matmuls' M)")
    opts = p.parse_args()
    import torch

    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("This benchmark needs at least 2 cores.")
    print(f"load {common.load_average():.1f}, {opts.rounds} rounds, M = {opts.rows}")
    table = []
    for dtype_name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        seen: dict[tuple[str, int], list[float]] = {}
        for _ in range(opts.rounds):
            for name, shape in shapes(opts.rows).items():
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    seen.setdefault((name, threads), []).append(gflops(*shape, dtype))
        pair: dict[str, list[float]] = {}
        for _ in range(opts.rounds):
            a, b = side_by_side(opts.rows, dtype_name, 0.4)
            for name in a:
                pair.setdefault(name, []).append(a[name] + b[name])
        for name in shapes(opts.rows):
            one, two, both = seen[(name, 1)], seen[(name, 2)], pair[name]
            table.append(
                {
                    "dtype": dtype_name,
                    "shape": name,
                    "one": statistics.median(one),
                    "two": statistics.median(two),
                    "ratio": statistics.median(two) / statistics.median(one),
                    "pair": statistics.median(both),
                    "pair_ratio": statistics.median(both) / statistics.median(one),
                    "spread": f"{min(one):.0f}-{max(one):.0f}",
                }
            )
    print(
        common.table(
            table,
            [
                ("dtype", "dtype", "s"),
                ("shape", "product", "s"),
                ("one", "1 thread GFLOP/s", ".0f"),
                ("spread", "1 thread, min-max over rounds", "s"),
                ("two", "2 threads, 1 process", ".0f"),
                ("ratio", "× 1 thread", ".2f"),
                ("pair", "2 processes x 1 thread (sum)", ".0f"),
                ("pair_ratio", "× 1 thread", ".2f"),
            ],
        )
    )


if __name__ == "__main__":
    main()
