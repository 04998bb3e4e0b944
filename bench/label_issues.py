"""Precision and recall of the label-error finder on a set with planted flips, and its time.

python bench/label_issues.py --rows 5000 --flip 0.1 --folds 5
Builds --rows synthetic reviews (data/samples/make_samples.py), flips --flip of the labels at random (seeded),
runs core.label_issues.find_label_issues and prints the figures with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "data" / "samples"))

from bench import common  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--flip", type=float, default=0.1)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    import pandas as pd
    from make_samples import sentiment_rows

    from core.label_issues import find_label_issues

    rows = sentiment_rows(args.rows)
    rng = random.Random(args.seed)
    flipped = set(rng.sample(range(len(rows)), int(args.flip * len(rows))))
    other = {"positive": "negative", "negative": "positive"}
    labels = [other[y] if i in flipped else y for i, (_, y) in enumerate(rows)]
    path = common.scratch_dir("bench-") / "flipped.csv"
    pd.DataFrame({"text": [t for t, _ in rows], "label": labels}).to_csv(path, index=False)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    _, issues = find_label_issues(path, folds=args.folds, seed=args.seed)
    seconds = time.perf_counter() - t0
    found = {i.row - 1 for i in issues}
    hits = len(found & flipped)
    print(
        json.dumps(
            {
                "rows": len(rows),
                "flipped": len(flipped),
                "flagged": len(found),
                "precision": round(hits / max(len(found), 1), 3),
                "recall": round(hits / max(len(flipped), 1), 3),
                "seconds": round(seconds, 1),
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
