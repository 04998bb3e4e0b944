"""The built-in classifier (MiniLM-L6, English) on the bundled Chinese sentiment sample, beside the English one.

Each run goes through the command line a user would take (``python -m core train``) with the default settings
(1 epoch, batch 16, 10% validation, 10% test, split seed 42), so the figure is what a new user sees; ``--epochs``
adds runs with more passes. Prints one line per run: sample, epochs, validation and test accuracy, seconds.

    .venv/bin/python bench/chinese_default.py                 # --epochs 1 3 --workspace /tmp/zh-bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = {
    "zh": (ROOT / "data" / "samples" / "sentiment_zh.csv", "文本", "标签"),
    "en": (ROOT / "data" / "samples" / "sentiment.csv", "text", "label"),
}


def train(sample: str, epochs: int, workspace: Path) -> dict:
    path, text, label = SAMPLES[sample]
    cmd = [sys.executable, "-m", "core", "--workspace", str(workspace), "train", "--quiet", "--data", str(path)]
    cmd += ["--text-column", text, "--label-column", label, "--task", "classification", "--source", "default"]
    cmd += ["--epochs", str(epochs), "--name", f"{sample}-e{epochs}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--samples", nargs="+", default=["zh", "en"], choices=sorted(SAMPLES))
    parser.add_argument("--workspace", type=Path, default=None)
    args = parser.parse_args()
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="zh-bench-"))
    print(f"{'sample':<7}{'epochs':>7}{'val acc':>9}{'test acc':>10}{'train s':>9}", flush=True)
    for sample in args.samples:
        for epochs in args.epochs:
            r = train(sample, epochs, workspace)
            val, test = r.get("validation", {}), r.get("test", {})
            print(
                f"{sample:<7}{epochs:>7}{val.get('accuracy', float('nan')):>9.3f}"
                f"{test.get('accuracy', float('nan')):>10.3f}{r['train_seconds']:>9.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
