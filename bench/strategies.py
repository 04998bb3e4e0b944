"""Full fine-tuning vs LoRA vs frozen layers on the default classifier (MiniLM-L6), side by side.

    .venv/bin/python bench/strategies.py [--epochs 3] [--data data/samples/sentiment.csv]

Same data (data/samples/sentiment.csv, or generated reviews where it is missing), same split and seed,
batch 16, one table: validation accuracy, trainable parameters, training samples/s (evaluation excluded),
and the peak memory of the process (ru_maxrss). Each method runs in its own fresh process one after another
(bench/common.py says why). LoRA gets its customary 10x learning rate: with the full fine-tune's rate its
few parameters barely move in a short run, which would compare a method with a misconfiguration.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

SEED, BATCH, MAX_LEN = 0, 16, 128
METHODS: dict[str, dict[str, Any]] = {
    "full": {"model": {"method": "full"}, "lr": 5e-5},
    "lora r=8 (query, value)": {"model": {"method": "lora", "lora_r": 8, "lora_alpha": 16}, "lr": 5e-4},
    "frozen emb. + 4 of 6 layers": {
        "model": {"method": "freeze", "freeze_embeddings": True, "freeze_layers": 4},
        "lr": 5e-5,
    },
}


def run_method(args: dict[str, Any]) -> dict[str, Any]:
    """One method through the engine, exactly as the Train page would start it."""
    from core.config import RunConfig
    from core.runs import RunStore
    from core.training import train

    method = METHODS[args["method"]]
    config = RunConfig.from_dict(
        {
            "data": {"train_path": args["data"], "val_fraction": 0.2, "test_fraction": 0.0, "split_seed": SEED},
            "model": {"source": "default", "task": "classification", **method["model"]},
            "train": {
                "batch_size": BATCH,
                "learning_rate": method["lr"],
                "epochs": args["epochs"],
                "seed": SEED,
                "max_length": MAX_LEN,
                "warmup_ratio": 0.06,
            },
        }
    )
    with tempfile.TemporaryDirectory() as ws:
        run = RunStore(Path(ws) / "runs").create(config)
        result = train(config, run)
        if result.state != "finished":
            raise RuntimeError(result.message)
        start = run.metrics()[0]
    return {
        "val_accuracy": result.results["validation"]["accuracy"],
        "trainable": start["trainable_params"],
        "share": start["trainable_params"] / start["total_params"],
        "samples_per_s": result.samples_per_s,
        "train_s": result.train_seconds,
        "precision": start["precision"],
        "lr": method["lr"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(common.ROOT / "data" / "samples" / "sentiment.csv"))
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--only", help="Comma-separated subset of: " + ", ".join(METHODS))
    opts = parser.parse_args()
    data = Path(opts.data)
    if not data.exists():
        data, _ = common.write_reviews(common.scratch_dir("bench-"), n_train=600, n_val=1)
    names = [m.strip() for m in opts.only.split(",")] if opts.only else list(METHODS)
    print(f"data {data} ({sum(1 for _ in data.open()) - 1} rows, 20% validation), epochs {opts.epochs:g}, "
          f"batch {BATCH}, seed {SEED}, load average {common.load_average():.1f}", flush=True)  # fmt: skip
    rows = []
    for name in names:
        out = common.run_child(Path(__file__), "method", {"method": name, "data": str(data), "epochs": opts.epochs})
        rows.append({"method": name, **out})
        print(f"  {name}: done in {out['process_s']:.0f} s", flush=True)
    columns = [
        ("method", "method", ""),
        ("lr", "lr", ".0e"),
        ("val_accuracy", "val acc", ".3f"),
        ("trainable", "trainable params", ","),
        ("share", "share", ".1%"),
        ("samples_per_s", "samples/s", ".1f"),
        ("train_s", "train s", ".1f"),
        ("peak_rss_mb", "peak RSS MB", ".0f"),
        ("precision", "precision", ""),
    ]
    print(common.table(rows, columns))


if __name__ == "__main__":
    if not common.child_main({"method": run_method}):
        main()
