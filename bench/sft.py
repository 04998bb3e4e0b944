"""Prompt -> response fine-tuning of the generation default on a task with one right answer per prompt.

    .venv/bin/python bench/sft.py [--minutes 3] [--rows 6000] [--only response_padded,all_padded,response_packed]

The task: "Reverse: w1 w2 w3" -> "w3 w2 w1" (3 words by default, --words 3-5 for more, from a list of 120). Each configuration trains the
built-in tiny GPT-2 from scratch with the recommended generation settings (core.defaults.recommended_train_settings)
for at most ``--minutes`` of training on this machine's cores, then answers 200 prompts it never saw (greedy) and
reports exact match, the share of answers that ended with the stop token, and training tokens/s. Configurations:

- response_padded: loss on the response only, padded batches grouped by length (the default);
- all_padded:      loss on prompt and response alike (train_on_prompt), padded;
- response_packed: loss on the response only, several examples packed per row (packing), 16 rows per step;
- response_packed_b2: the same with 2 rows per step (about as many examples per step as the padded runs).

Each runs in a fresh process, one after another; the load average (other programs on the same cores) is printed
with each, since it changes the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

WORDS = [
    "apple", "river", "stone", "cloud", "green", "tiger", "piano", "lemon", "bread", "chair", "table", "window",
    "garden", "music", "silver", "winter", "summer", "candle", "forest", "ocean", "rabbit", "yellow", "purple",
    "orange", "pencil", "rocket", "castle", "dragon", "button", "mirror", "planet", "coffee", "butter", "carpet",
    "ladder", "basket", "bottle", "camera", "doctor", "engine", "farmer", "finger", "flower", "guitar", "hammer",
    "island", "jacket", "kettle", "letter", "market", "needle", "number", "paper", "pepper", "pillow", "pocket",
    "rubber", "saddle", "school", "shadow", "spider", "spoon", "street", "sugar", "ticket", "tomato", "tunnel",
    "valley", "wallet", "wheel", "wizard", "yogurt", "zebra", "anchor", "bishop", "blanket", "bridge", "bucket",
    "cactus", "canvas", "carrot", "cherry", "circle", "copper", "cotton", "desert", "dinner", "eagle", "feather",
    "fountain", "glacier", "harbor", "helmet", "honey", "jungle", "lantern", "lizard", "magnet", "meadow", "monkey",
    "muffin", "napkin", "orbit", "oyster", "parrot", "pebble", "pirate", "puzzle", "quartz", "raven", "salmon",
    "sketch", "spiral", "statue", "thunder", "tulip", "velvet",
]  # fmt: skip
CONFIGS = ("response_padded", "all_padded", "response_packed", "response_packed_b2")


def example(rng: random.Random, low: int, high: int) -> tuple[str, str]:
    words = rng.sample(WORDS, rng.randint(low, high))
    return "Reverse: " + " ".join(words), " ".join(reversed(words))


def write_data(
    folder: Path, rows: int, words: tuple[int, int], unseen: int = 200, seed: int = 0
) -> tuple[Path, list[tuple[str, str]]]:
    """``rows`` training pairs (CSV) and ``unseen`` held-out pairs whose prompts are not among them."""
    import csv

    rng = random.Random(seed)
    train: dict[str, str] = {}
    while len(train) < rows:
        p, r = example(rng, *words)
        train[p] = r
    held: dict[str, str] = {}
    while len(held) < unseen:
        p, r = example(rng, *words)
        if p not in train:
            held[p] = r
    path = folder / "reverse.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "response"])
        w.writerows(train.items())
    return path, list(held.items())


def run_config(args: dict[str, Any]) -> dict[str, Any]:
    from core.config import RunConfig
    from core.defaults import recommended_train_settings
    from core.generation import GenerationSettings, generate_with_stops
    from core.models import load_for_inference
    from core.runs import RunStore
    from core.training import train

    name = args["name"]
    settings = recommended_train_settings("generation", "default", args["rows"])
    settings.update(
        time_budget_min=args["minutes"],
        train_on_prompt=name.startswith("all"),
        packing="packed" in name,
        seed=0,
        log_every=5,
        num_threads=args["threads"],
    )
    if args["epochs"]:
        settings["epochs"] = args["epochs"]
    if name.endswith("_b2"):
        # A packed row holds ~9 three-word examples: 2 rows per step is about the padded run's 16 examples, so
        # the two make about as many optimizer steps per epoch.
        settings["batch_size"] = 2
    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": args["csv"], "val_fraction": 0.02, "test_fraction": 0.0},
            "model": {"source": "default", "task": "generation"},
            "train": settings,
        }
    )
    store = RunStore(Path(args["workspace"]) / name)
    run = store.create(cfg)
    load_before = common.load_average()
    result = train(cfg, run)
    if result.state != "finished":
        raise RuntimeError(result.message)
    bundle = load_for_inference(run.model_dir)
    prompts = [p for p, _ in args["held"]]
    t0 = time.perf_counter()
    outs = []
    for start in range(0, len(prompts), 16):
        outs += generate_with_stops(bundle, prompts[start : start + 16], GenerationSettings(max_new_tokens=24,
                                    repetition_penalty=1.0))  # fmt: skip
    gen_s = time.perf_counter() - t0
    exact = sum(text.strip() == ref for (text, _), (_, ref) in zip(outs, args["held"])) / len(outs)
    stopped = sum(s for _, s in outs) / len(outs)
    return {
        "config": name,
        "steps": result.steps,
        "epochs": _last_epoch(run),
        "train_s": result.train_seconds,
        "tokens_per_s": result.tokens_per_s,
        "exact_match": exact,
        "stopped": stopped,
        "gen_s": gen_s,
        "load_before": load_before,
        "load_after": common.load_average(),
        "sample": [outs[0][0], args["held"][0][1]],
        "message": result.message,
    }


def _last_epoch(run) -> float:
    """Passes over the training data when training ended (the last metrics line that has one)."""
    import json

    lines = [json.loads(line) for line in run.metrics_path.read_text().splitlines() if line.strip()]
    return max((rec["epoch"] for rec in lines if "epoch" in rec), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="Training time budget per configuration")
    parser.add_argument("--rows", type=int, default=6000, help="Training pairs")
    parser.add_argument("--only", default=",".join(CONFIGS), help="Configurations to run, comma-separated")
    parser.add_argument("--words", default="3", help="Words per prompt: N, or LOW-HIGH (e.g. 3-5)")
    parser.add_argument("--epochs", type=float, default=0, help="Override the recommended epochs (0: keep)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: the engine's automatic choice; 1 on busy cores)"
    )
    cli = parser.parse_args()
    folder = common.scratch_dir("bench-sft-")
    low, _, high = cli.words.partition("-")
    csv_path, held = write_data(folder, cli.rows, (int(low), int(high or low)))
    rows = []
    for name in cli.only.split(","):
        args = {"name": name, "csv": str(csv_path), "held": held, "rows": cli.rows, "minutes": cli.minutes,
                "workspace": str(folder), "threads": cli.threads, "epochs": cli.epochs}  # fmt: skip
        out = common.run_child(Path(__file__), "run", args, timeout=cli.minutes * 60 + 900)
        rows.append(out)
        print(f"{name}: {out}", flush=True)
    print(
        f"\n{cli.rows} training pairs of {cli.words} words, 200 unseen prompts, budget {cli.minutes:g} min, "
        f"threads {cli.threads or 'auto'}, cores {os.cpu_count()}"
    )
    print(
        common.table(
            rows,
            [
                ("config", "config", "s"),
                ("steps", "steps", "d"),
                ("epochs", "epochs", ".2f"),
                ("train_s", "train s", ".0f"),
                ("tokens_per_s", "tokens/s", ".0f"),
                ("exact_match", "exact", ".3f"),
                ("stopped", "stopped", ".3f"),
                ("load_before", "load", ".1f"),
                ("load_after", "load after", ".1f"),
            ],
        )
    )


if __name__ == "__main__":
    if not common.child_main({"run": run_config}):
        main()
