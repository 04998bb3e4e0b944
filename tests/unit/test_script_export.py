"""The standalone train.py: same split, same batches, same first losses as the engine's run."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from core.cli import main
from core.errors import WorkbenchError
from core.runs import RunStore
from core.script_export import render_script
from core.training import train
from tests.conftest import tiny_run_config


def _load(path):
    spec = importlib.util.spec_from_file_location("exported_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["dropout off", "fast path off"])
def engine_run(request, workspace, toy_csv, tiny_bert_dir):
    # The engine's CPU fast path draws its dropout masks with NumPy (same distribution, other masks), so the two
    # programs agree loss for loss either with dropout off, or with the fast path off (stock torch dropout, the
    # same RNG draws in the same order). One thread: the thread count changes the order of sums.
    fast = request.param == "dropout off"
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4, num_threads=1, warmup_steps=1, fast_path=fast)
    if fast:
        config.model.dropout = 0.0
    run = RunStore(workspace / "runs").create(config)
    assert train(config, run).state == "finished"
    return run


def test_script_reproduces_split_and_first_losses(engine_run, workspace, tmp_path, capsys):
    script = tmp_path / "train.py"
    assert main(["--workspace", str(workspace), "export-script", engine_run.id, "--output", str(script)]) == 0
    assert json.loads(capsys.readouterr().out)["script"] == str(script)
    text = script.read_text()
    imports = set(re.findall(r"^\s*(?:from|import) (\w+)", text, re.M))
    assert imports <= {"argparse", "math", "re", "numpy", "pandas", "torch", "transformers", "peft"}, imports
    assert "core" not in imports

    # The same rows in the same order in every split (the split is sklearn's, rewritten in numpy).
    module = _load(script)
    rows = module.read_rows()
    for name, part in zip(("train", "validation", "test"), module.split(rows)):
        saved = pd.read_parquet(engine_run.data_dir / f"{name}.parquet")
        assert part["text"].tolist() == saved["text"].tolist(), name

    out = subprocess.run(
        [sys.executable, str(script), "--max-steps", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    losses = [float(x) for x in re.findall(r"^step \d+ loss ([\d.]+)$", out.stdout, re.M)]
    engine = [r["loss"] for r in engine_run.metrics() if "loss" in r and "event" not in r][:3]
    print(f"\nengine losses {engine}\nscript losses {losses}")
    assert len(losses) == 3
    assert losses == pytest.approx(engine, rel=1e-4, abs=1e-5)
    assert (tmp_path / f"{engine_run.id}-standalone-model" / "config.json").exists()


def test_stratified_cut_matches_sklearn_on_uneven_classes(tmp_path, workspace, toy_csv, tiny_bert_dir):
    from core.data import split_frame

    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=1)
    run = RunStore(workspace / "runs").create(config)
    (tmp_path / "train.py").write_text(render_script(run))
    module = _load(tmp_path / "train.py")
    labels = ["a"] * 37 + ["b"] * 11 + ["c"] * 5 + ["d"] * 3
    frame = pd.DataFrame({"text": [f"row {i}" for i in range(len(labels))], "label": labels})
    for seed in (0, 7, 42):
        module.VAL_FRACTION, module.TEST_FRACTION, module.SPLIT_SEED = 0.15, 0.2, seed
        mine = module.split(frame)
        theirs = split_frame(frame, val_fraction=0.15, test_fraction=0.2, stratify_column="label", seed=seed)
        for a, b in zip(mine, (theirs.train, theirs.validation, theirs.test)):
            assert a["text"].tolist() == b["text"].tolist()


def test_generation_runs_are_refused_with_a_message(workspace, toy_corpus):
    from core.config import RunConfig

    config = RunConfig.from_dict({"data": {"train_path": str(toy_corpus)}, "model": {"task": "generation"}})
    run = RunStore(workspace / "runs").create(config)
    with pytest.raises(WorkbenchError, match="not offered for generation"):
        render_script(run)
