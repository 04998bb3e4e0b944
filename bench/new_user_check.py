"""The core-engine issue's "tried as a new user would" check, on data made to look like the real thing.

The real check uses a public movie-review set (a headerless TSV of ~7,000 training sentences, `sentence<TAB>0|1`,
and a separate test file), which is not in the repository and cannot be downloaded here. This script writes
data of the same shape that is deliberately not trivial: negation ("not funny"), contrast ("X, but Y" where
the last clause decides), mixed vocab, varied lengths and 4% label noise, so a perfect score is impossible
(the noise caps test accuracy near 96%). Then it runs exactly what a new user would run:

    python -m core train --data train.tsv --test-path test.tsv --epochs 1     (default settings otherwise)
    python -m core eval RUN --split test

and prints the wall time of each command and the test accuracy.

    .venv/bin/python bench/new_user_check.py [--train 6920] [--test 1821] [--out bench/out/new_user]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GOOD = [
    "funny",
    "moving",
    "gripping",
    "charming",
    "clever",
    "heartfelt",
    "sharp",
    "beautiful",
    "tender",
    "smart",
    "thrilling",
    "warm",
    "witty",
    "gorgeous",
    "honest",
    "confident",
    "haunting",
    "playful",
]
BAD = [
    "dull",
    "tedious",
    "clumsy",
    "predictable",
    "lifeless",
    "confusing",
    "bland",
    "forgettable",
    "shallow",
    "sloppy",
    "dreary",
    "pointless",
    "hollow",
    "bloated",
    "cheap",
    "stiff",
    "muddled",
    "smug",
]
THINGS = [
    "the script",
    "the acting",
    "the plot",
    "its pacing",
    "the dialogue",
    "the ending",
    "the cast",
    "the direction",
    "the score",
    "the humour",
    "the lead performance",
    "the final act",
    "the camera work",
    "the characters",
    "the story",
    "the editing",
    "its first hour",
    "the romance",
]
OPENERS = [
    "",
    "",
    "",
    "frankly, ",
    "in the end, ",
    "for all its ambition, ",
    "by the halfway mark, ",
    "as a whole, ",
    "despite a slow start, ",
    "on a second viewing, ",
]
TAILS = [
    "",
    "",
    "",
    ", and that is saying something",
    " from start to finish",
    " more often than not",
    " in a way few films manage",
    " for most of its running time",
    " even when it should not be",
]
NEUTRAL = [
    "it is set in a small coastal town",
    "the film runs just under two hours",
    "it is based on a novel from the seventies",
    "the director's previous film was a documentary",
    "most of it was shot in winter",
    "the story follows two brothers and their father",
]


def clause(rng: random.Random, positive: bool) -> str:
    word = rng.choice(GOOD if positive else BAD)
    thing = rng.choice(THINGS)
    form = rng.random()
    if form < 0.2:  # negation flips the word's sentiment
        word = rng.choice(BAD if positive else GOOD)
        return f"{thing} {rng.choice(['is never', 'is not', 'is hardly', 'is far from'])} {word}"
    if form < 0.4:
        return f"{thing} feels {rng.choice(['rather', 'quite', 'often', 'mostly'])} {word}"
    return f"{thing} is {word}{rng.choice(TAILS)}"


def sentence(rng: random.Random, positive: bool) -> str:
    kind = rng.random()
    if kind < 0.3:  # contrast: the last clause decides
        text = f"{clause(rng, not positive)}, but {clause(rng, positive)}"
    elif kind < 0.45:
        text = f"{rng.choice(NEUTRAL)}, and {clause(rng, positive)}"
    elif kind < 0.6:
        text = f"{clause(rng, positive)} and {clause(rng, positive)}"
    else:
        text = clause(rng, positive)
    text = rng.choice(OPENERS) + text
    return text[0].upper() + text[1:] + rng.choice([".", ".", "!", " ..."])


def write(path: Path, n: int, seed: int, noise: float) -> None:
    rng = random.Random(seed)
    seen: set[str] = set()
    lines = []
    while len(lines) < n:
        positive = rng.random() < 0.5
        text = sentence(rng, positive)
        if text in seen:
            continue
        seen.add(text)
        label = int(positive) if rng.random() >= noise else int(not positive)
        lines.append(f"{text}\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--train", type=int, default=6920)
    p.add_argument("--test", type=int, default=1821)
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "new_user"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "train.tsv", args.train, 1, 0.04)
    write(out / "test.tsv", args.test, 2, 0.04)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WORKBENCH_HOME": str(out / "workspace")}
    py = sys.executable
    t0 = time.perf_counter()
    train = subprocess.run(
        [
            py,
            "-m",
            "core",
            "train",
            "--data",
            str(out / "train.tsv"),
            "--test-path",
            str(out / "test.tsv"),
            "--epochs",
            "1",
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    train_s = time.perf_counter() - t0
    if train.returncode != 0:
        print(train.stdout, train.stderr)
        raise SystemExit(1)
    summary = json.loads(train.stdout.strip().splitlines()[-1])
    t0 = time.perf_counter()
    ev = subprocess.run(
        [py, "-m", "core", "eval", summary["run"], "--split", "test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    eval_s = time.perf_counter() - t0
    scores = json.loads(ev.stdout.strip().splitlines()[-1])
    print(f"data: {args.train} training sentences (headerless TSV), {args.test} test sentences, 4% label noise")
    print(
        f"python -m core train ... --epochs 1   wall {train_s:6.1f} s   (training loop {summary['train_seconds']} s, "
        f"{summary['samples_per_s']} samples/s)"
    )
    print(
        f"python -m core eval RUN --split test  wall {eval_s:6.1f} s   test accuracy {scores['accuracy']:.4f}  "
        f"macro F1 {scores['f1']:.4f}  ({scores['rows']} rows)"
    )


if __name__ == "__main__":
    main()
