"""Time each issue-18 feature on a 5,000-row set, with the load average beside each figure; one command.

python bench/insight_times.py [--rows 5000] [--folds 5] [--flip 0.1]

1. label check: the Data page's background job (core.label_check.run_check: MiniLM embeddings of every row,
   k folds, cleanlab) on a saved copy of the set with a share of the labels flipped at random (seed 0); prints
   the precision and recall of the flagged rows against the planted flips.
2. learning curve: all four points (10/25/50/100% of the training split, 1 epoch each, the same validation
   rows) through its CLI, with 5 probe sentences pinned, so each point's run also logs them at every validation.
3. probes: the cost of one validation's probe answers (core.probes.answer on the 100% point's model, in this
   process), times the validations of that run.
4. calibration and bias (slices by source + the bundled swap test) of the 100% point's model on the whole set,
   through their CLIs.
The set: synthetic reviews (data/samples/make_samples.py); a quarter mention a person, so the swap test has
texts to swap. Each CLI step is a fresh `python -m core ...` process, as a user runs it: times include the start.
The machine is shared: every row carries the 1-minute load average before and after it.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "data" / "samples"))

from bench import common  # noqa: E402

PROBES = ["a wonderful film", "a painful evening", "the plot was fine", "I want my money back", "he loved it"]
ROWS: list[dict] = []


def record(feature: str, seconds: float, before: tuple, note: str = "") -> None:
    row = {
        "feature": feature,
        "seconds": round(seconds, 2),
        "load_before": round(before[0], 1),
        "load_after": round(os.getloadavg()[0], 1),
        "note": note,
    }
    ROWS.append(row)
    print(json.dumps(row), flush=True)


def cli(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float, tuple]:
    before = os.getloadavg()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-2000:], file=sys.stderr, flush=True)
    return out, time.perf_counter() - t0, before


def make_sets(tmp: Path, n: int, flip: float):
    import pandas as pd
    from make_samples import sentiment_rows

    rows = sentiment_rows(n)
    names = ["John", "Mary", "he", "she"]
    texts = [f"{names[i % 4]} said: {t}" if i % 4 == 0 else t for i, (t, _) in enumerate(rows)]
    labels = [y for _, y in rows]
    clean = pd.DataFrame({"text": texts, "label": labels, "source": ["a", "b"] * (n // 2) + ["a"] * (n % 2)})
    clean.to_csv(tmp / "reviews.csv", index=False)
    flipped = set(random.Random(0).sample(range(n), int(flip * n)))
    other = {"positive": "negative", "negative": "positive"}
    noisy = clean.assign(label=[other[y] if i in flipped else y for i, y in enumerate(labels)])
    noisy.to_csv(tmp / "reviews-flipped.csv", index=False)
    return tmp / "reviews.csv", tmp / "reviews-flipped.csv", flipped


def label_check(ws: Path, noisy: Path, flipped: set[int], folds: int) -> None:
    from core import label_check
    from core.datasets import DatasetSettings, DatasetStore

    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    dataset = DatasetStore(ws / "datasets").save("flipped", noisy, noisy.name, settings)
    before = os.getloadavg()
    t0 = time.perf_counter()
    result = label_check.run_check(dataset, folds)
    seconds = time.perf_counter() - t0
    if result["state"] != "finished":
        record(f"label check ({folds} folds)", seconds, before, f"FAILED: {result['message']}")
        return
    found = {i["row"] - 1 for i in result["issues"]}  # rows count from 1
    hits = len(found & flipped)
    note = (
        f"{len(flipped)} planted flips, {len(found)} flagged: precision {hits / max(len(found), 1):.3f}, "
        f"recall {hits / len(flipped):.3f}"
    )
    record(f"label check ({folds} folds, background job's code path)", seconds, before, note)


def learning_curve(ws: Path, data: Path, env: dict) -> str | None:
    """Runs the curve; returns the 100% point's run id."""
    args = ["--workspace", str(ws), "learning-curve", "--data", str(data), "--epochs", "1", "--eval-every", "50"]
    out, seconds, before = cli([*args, "--probe-texts", *PROBES], env)
    try:
        curve = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        record("learning curve 10/25/50/100%", seconds, before, f"FAILED (exit {out.returncode})")
        return None
    searches = {p.parent.name: json.loads(p.read_text()) for p in (ws / "searches").glob("*/search.json")}
    parts = []
    for point in curve["points"]:
        trial = searches.get(point.get("search"), {}).get("trials", [{}])[0]
        parts.append(
            f"{point['fraction']:.0%} ({point['rows']} rows): {trial.get('seconds')} s, "
            f"{curve['metric']} {point.get('score') or float('nan'):.3f}"
        )
    done = sum(p["state"] == "finished" for p in curve["points"])
    record(f"learning curve, {done} of 4 points (1 epoch each)", seconds, before, "; ".join(parts))
    last = curve["points"][-1]
    return last["runs"][0] if last.get("runs") and last["state"] == "finished" else None


def probe_cost(ws: Path, run_id: str) -> None:
    from core.device import resolve_device, resolve_precision
    from core.models import load_for_inference
    from core.probes import answer, latest_probes
    from core.runs import RunStore

    run = RunStore(ws / "runs").get(run_id)
    bundle = load_for_inference(run.model_dir)
    dev = resolve_device("cpu")
    precision = resolve_precision("auto", dev)
    answer(bundle, PROBES, "classification", dev, precision, 128)  # warm-up
    before = os.getloadavg()
    t0 = time.perf_counter()
    for _ in range(10):
        answer(bundle, PROBES, "classification", dev, precision, 128)
    each = (time.perf_counter() - t0) / 10
    validations = len({r.get("step") for r in run.metrics() if "probes" in r})
    train_s = float(run.results().get("train_seconds") or 0)
    share = f"{validations * each / train_s:.2%} of the run's {train_s:.0f} s training" if train_s else ""
    assert latest_probes(run.metrics()), "the run logged no probes"
    record("probes: 5 answers at one validation", each, before, f"{validations} validations in the 100% run: {share}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--flip", type=float, default=0.1)
    args = p.parse_args()
    tmp = common.scratch_dir("insight-bench-")
    ws = tmp / "ws"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    print(f"{args.rows:,} rows, {os.cpu_count()} cores, workspace {tmp}", flush=True)
    data, noisy, flipped = make_sets(tmp, args.rows, args.flip)
    label_check(ws, noisy, flipped, args.folds)
    run_id = learning_curve(ws, data, env)
    if run_id is not None:
        probe_cost(ws, run_id)
        out, seconds, before = cli(["--workspace", str(ws), "calibration", run_id, "--file", str(data)], env)
        ece = json.loads(out.stdout)["ece"] if out.returncode == 0 else float("nan")
        record(f"calibration ({args.rows:,} rows)", seconds, before, f"ECE {ece:.3f}")
        bias_args = ["bias", run_id, "--file", str(data), "--by", "source", "--json"]
        out, seconds, before = cli(["--workspace", str(ws), *bias_args], env)
        note = ""
        if out.returncode == 0:
            swap = json.loads(out.stdout)["swap"]
            note = f"swap test: {swap['tested']:,} texts with a pair word, answer changed on {swap['flips']:,}"
        record(f"bias: slices by source + swap test ({args.rows:,} rows)", seconds, before, note)
    print("\n| feature | seconds | load before -> after | note |\n|---|---|---|---|")
    for row in ROWS:
        print(
            f"| {row['feature']} | {row['seconds']:,} | {row['load_before']} -> {row['load_after']} | {row['note']} |"
        )


if __name__ == "__main__":
    main()
