"""Time each issue-18 feature on a 5,000-row set (2 CPU cores), with the load average beside each figure.

python bench/insight_times.py [--rows 5000] [--skip-curve]
1. label-issues: the whole finder (MiniLM embeddings of every row + 5 folds + cleanlab), its CLI.
2. A 1-epoch MiniLM run on the set (80/10/10 split) with 5 probe sentences, and the cost of one probe
   evaluation (core.probes.answer on the trained model, in this process: what each validation adds).
3. calibration, bias (slices + swap test) on the run's test split / the whole set, through their CLIs.
4. learning-curve (10/25/50/100%, 1 epoch each) through its CLI, unless --skip-curve.
Each step is a fresh `python -m core ...` process, as a user runs it; times include the process start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "data" / "samples"))


def timed(label: str, args: list[str], env: dict) -> dict:
    before = os.getloadavg()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    row = {
        "feature": label,
        "seconds": round(seconds, 1),
        "rc": out.returncode,
        "load_before": [round(x, 2) for x in before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(row), flush=True)
    if out.returncode:
        print(out.stderr[-2000:], file=sys.stderr)
    return {"row": row, "stdout": out.stdout}


def probe_cost(model_dir: Path, probes: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    from core.device import resolve_device, resolve_precision
    from core.models import load_for_inference
    from core.probes import answer

    bundle = load_for_inference(model_dir)
    dev = resolve_device("cpu")
    answer(bundle, probes, "classification", dev, resolve_precision("auto", dev), 128)  # warm-up
    before = os.getloadavg()
    t0 = time.perf_counter()
    for _ in range(10):
        answer(bundle, probes, "classification", dev, resolve_precision("auto", dev), 128)
    row = {"feature": "probes: one evaluation of 5 probes", "seconds": round((time.perf_counter() - t0) / 10, 4)}
    print(json.dumps({**row, "load_before": [round(x, 2) for x in before]}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--skip-curve", action="store_true")
    args = p.parse_args()
    import pandas as pd
    from make_samples import sentiment_rows

    tmp = Path(tempfile.mkdtemp(prefix="insight-bench-"))
    rows = sentiment_rows(args.rows)
    names = ["John", "Mary", "he", "she"]
    # A quarter of the reviews mention a person, so the swap test has texts to swap.
    texts = [f"{names[i % 4]} said: {t}" if i % 4 == 0 else t for i, (t, _) in enumerate(rows)]
    data = tmp / "reviews.csv"
    pd.DataFrame({"text": texts, "label": [y for _, y in rows], "source": ["a", "b"] * (len(rows) // 2)}).to_csv(
        data, index=False
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    ws = ["--workspace", str(tmp / "ws")]
    timed("label-issues (5 folds)", [*ws, "label-issues", str(data), "--json"], env)
    probes = ["a wonderful film", "a painful evening", "the plot was fine", "I want my money back", "he loved it"]
    out = timed(
        "train 1 epoch MiniLM with 5 probes (eval every 50 steps)",
        [*ws, "train", "--data", str(data), "--epochs", "1", "--eval-every", "50", "--quiet", "--probe-texts", *probes],
        env,
    )
    run_id = json.loads(out["stdout"].strip().splitlines()[-1])["run"]
    probe_cost(tmp / "ws" / "runs" / run_id / "model", probes)
    timed("calibration (test split)", [*ws, "calibration", run_id, "--split", "test"], env)
    timed(
        "bias (slices + swap test, whole set)",
        [*ws, "bias", run_id, "--file", str(data), "--by", "source", "--json"],
        env,
    )
    if not args.skip_curve:
        timed(
            "learning-curve 10/25/50/100% (1 epoch each)",
            [*ws, "learning-curve", "--data", str(data), "--epochs", "1"],
            env,
        )
    print(f"workspace: {tmp}")


if __name__ == "__main__":
    main()
