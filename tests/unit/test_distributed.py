"""Scale-out: `accelerate launch ... -m core train --config run.json` on 2 CPU processes (gloo, DDP) learns the
same loss curve as one process with the same global batch, and writes one run folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_loss_curve(workspace, toy_csv, tiny_bert_dir, tmp_path):
    # Batch 15 splits 8/7 between the processes (uneven shares) and dropout 0 makes the two runs comparable
    # step by step; the learning rate is high enough that the loss really moves.
    config = tiny_run_config(toy_csv, tiny_bert_dir, batch_size=15, learning_rate=3e-3, max_steps=8)
    config.model.dropout = 0.0
    config_path = tmp_path / "run.json"
    config_path.write_text(config.to_json(), encoding="utf-8")

    single = RunStore(workspace / "runs").create(config)
    assert train(config, single).state == "finished"
    expected = [m["loss"] for m in single.metrics() if "loss" in m]

    launcher = Path(sys.executable).with_name("accelerate")
    multi_ws = tmp_path / "multi"
    # --multi_gpu is accelerate's torchrun launcher (the command a multi-GPU machine uses); with no GPU the
    # engine picks the CPU and gloo. (`accelerate launch --cpu` on one machine starts a single process.)
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "core", "--workspace", str(multi_ws), "train", "--config", str(config_path), "--quiet"]  # fmt: skip
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TMPDIR": str(scratch)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["state"] == "finished" and summary["steps"] == 8

    runs = RunStore(multi_ws / "runs").list()
    assert len(runs) == 1  # only rank 0 writes a run; the other rank's scratch folder is not in the workspace
    lines = [m for m in runs[0].metrics() if "loss" in m]
    got = [m["loss"] for m in lines]
    assert len(got) == len(expected) == 8
    assert max(expected) - min(expected) > 0.05  # a curve that moves, so matching it means something
    for step, (a, b) in enumerate(zip(got, expected), start=1):
        assert abs(a - b) <= 0.01 * abs(b), f"step {step}: 2 processes {a:.5f} vs 1 process {b:.5f}"
    start = next(m for m in runs[0].metrics() if m.get("event") == "start")
    assert start["train_examples"] == 192 and start["total_steps"] == 8
    # The same weights at the end: the validation loss of the saved model agrees too.
    val_multi, val_single = runs[0].results()["validation"]["loss"], single.results()["validation"]["loss"]
    assert abs(val_multi - val_single) <= 0.01 * val_single
    assert not list(scratch.glob("workbench-rank-*"))  # the other rank's throwaway run folder is cleaned up
