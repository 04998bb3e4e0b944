"""bench/gpu.sh, the GPU comparison: on a machine without CUDA it runs nothing and says why (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_bench_says_there_is_no_cuda_and_runs_nothing():
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh")], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "no CUDA device" in done.stderr and "nothing was run" in done.stderr
    assert "###" not in done.stdout  # no benchmark started


def test_gpu_bench_runs_both_sides_on_cuda_against_the_bf16_trainer():
    """What it runs, read from the script: the same jobs as the CPU benchmarks, on CUDA, against trainer_bf16."""
    script = (REPO / "bench" / "gpu.sh").read_text()
    runs = [line for line in script.splitlines() if line.startswith('"$PY" bench/')]
    assert [r.split()[1] for r in runs] == ["bench/train_classifier.py"] * 2 + ["bench/train_lm.py"]
    follow = script.splitlines()
    for r in runs:
        at = follow.index(r)
        command = r + follow[at + 1] if r.endswith("\\") else r
        assert "--device cuda" in command and "--only engine,trainer_bf16" in command
        assert "--baseline trainer_bf16" in command
