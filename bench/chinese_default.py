"""The built-in classifier (MiniLM-L6, English) on the bundled Chinese sentiment sample, beside the English one.

Each run goes through the command line (``python -m core train``) with the default settings (batch 16, 10%
validation, 10% test, split seed 42) and the epochs asked for; ``--as-app`` uses instead what the Train page
fills in for a 400-row set (core.defaults.recommended_train_settings: 5 epochs, warmup 6%), so the figure is what a
new user of the app sees. Prints one line per run: sample, epochs, validation and test accuracy, seconds.

    .venv/bin/python bench/chinese_default.py                 # --epochs 1 3 --workspace /tmp/zh-bench
    .venv/bin/python bench/chinese_default.py --as-app
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

SAMPLES = {
    "zh": (ROOT / "data" / "samples" / "sentiment_zh.csv", "文本", "标签"),
    "en": (ROOT / "data" / "samples" / "sentiment.csv", "text", "label"),
}


def train(sample: str, epochs: float, workspace: Path, extra: list[str] | None = None) -> dict:
    path, text, label = SAMPLES[sample]
    cmd = [sys.executable, "-m", "core", "--workspace", str(workspace), "train", "--quiet", "--data", str(path)]
    cmd += ["--text-column", text, "--label-column", label, "--task", "classification", "--source", "default"]
    cmd += ["--epochs", str(epochs), "--name", f"{sample}-e{epochs:g}", *(extra or [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, nargs="+", default=[1, 3])
    parser.add_argument("--as-app", action="store_true", help="the Train page's recommended settings for 320 rows")
    parser.add_argument("--samples", nargs="+", default=["zh", "en"], choices=sorted(SAMPLES))
    parser.add_argument("--workspace", type=Path, default=None)
    args = parser.parse_args()
    workspace = args.workspace or common.scratch_dir("zh-bench-")
    print(f"{'sample':<7}{'epochs':>7}{'val acc':>9}{'test acc':>10}{'train s':>9}", flush=True)
    extra: list[str] = []
    epochs_list = args.epochs
    if args.as_app:
        sys.path.insert(0, str(ROOT))
        from core.defaults import recommended_train_settings

        rec = recommended_train_settings("classification", "default", train_rows=320)
        epochs_list = [rec["epochs"]]
        extra = ["--warmup-ratio", str(rec["warmup_ratio"]), "--learning-rate", str(rec["learning_rate"])]
    for sample in args.samples:
        for epochs in epochs_list:
            r = train(sample, epochs, workspace, extra)
            val, test = r.get("validation", {}), r.get("test", {})
            print(
                f"{sample:<7}{epochs:>7g}{val.get('accuracy', float('nan')):>9.3f}"
                f"{test.get('accuracy', float('nan')):>10.3f}{r['train_seconds']:>9.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
