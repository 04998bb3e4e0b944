"""Curves for the live panel (tables, downsampling, overfitting) and what the Runs page hands out."""

from __future__ import annotations

import io
import shlex
import zipfile

from core.curves import CurveFeed, curve_frames, downsample, overfitting, rising_evaluations, start_record
from core.export import multi_gpu_command, train_command, zip_folder


def test_curve_frames_split_train_and_eval_and_keep_the_latest_of_a_step():
    records = [
        {"event": "start", "total_steps": 4, "trainable_params": 10},
        {"step": 1, "epoch": 0.25, "loss": 1.0, "lr": 1e-3},
        {"step": 2, "epoch": 0.5, "loss": "nan", "lr": 1e-3},
        {"step": 2, "epoch": 0.5, "val_loss": 0.9, "val_accuracy": 0.5, "best_step": 2},
        {"event": "start", "total_steps": 4, "trainable_params": 10, "resumed_from_step": 2},
        {"step": 3, "epoch": 0.75, "loss": 0.7, "lr": 5e-4},
        {"step": 3, "epoch": 0.75, "loss": 0.6, "lr": 5e-4},  # re-logged after a resume: this one wins
    ]
    train, evals = curve_frames(records)
    assert train["step"].tolist() == [1, 2, 3]
    assert train["loss"].isna().tolist() == [False, True, False] and train["loss"].iloc[-1] == 0.6
    assert evals["step"].tolist() == [2] and evals["val_accuracy"].iloc[0] == 0.5
    assert start_record(records)["resumed_from_step"] == 2
    empty_train, empty_evals = curve_frames([])
    assert len(empty_train) == 0 and "step" in empty_evals.columns


def test_downsample_keeps_ends_and_bounds_points():
    import pandas as pd

    frame = pd.DataFrame({"step": range(1, 10_001), "loss": range(10_000)})
    small = downsample(frame, 500)
    assert len(small) <= 500 and small["step"].iloc[0] == 1 and small["step"].iloc[-1] == 10_000
    assert downsample(frame.head(20), 500).equals(frame.head(20))


def test_downsample_keeps_the_lowest_and_highest_points_of_the_loss():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    loss = 2.0 * np.exp(-np.arange(50_000) / 8_000) + 0.2 + rng.normal(0, 0.01, 50_000)
    loss[31_337], loss[12_345] = 0.01, 9.0  # the best loss and a spike, between evenly spaced rows
    loss[40_000:40_010] = np.nan  # a stretch of gaps (NaN losses) must not break it
    frame = pd.DataFrame({"step": np.arange(1, 50_001), "loss": loss})
    small = downsample(frame, 600)
    assert len(small) <= 600 and small["step"].is_monotonic_increasing
    assert small["step"].iloc[0] == 1 and small["step"].iloc[-1] == 50_000
    assert 31_338 in small["step"].values and 12_346 in small["step"].values
    assert small["loss"].min() == 0.01 and small["loss"].max() == 9.0
    # Without the column, rows are evenly spaced as before.
    assert len(downsample(frame[["step"]], 600)) == 600


def test_overfitting_needs_two_rises_in_a_row():
    import pandas as pd

    assert rising_evaluations([1.0, 0.8, 0.7]) == 0
    assert rising_evaluations([1.0, 0.8, 0.9]) == 1
    assert rising_evaluations([1.0, 0.8, 0.9, 1.1]) == 2
    assert rising_evaluations([0.5, float("nan"), 0.6, 0.7]) == 2  # a missing evaluation is skipped
    assert not overfitting(pd.DataFrame({"val_loss": [1.0, 0.8, 0.9]}))
    assert overfitting(pd.DataFrame({"val_loss": [1.0, 0.8, 0.9, 1.1]}))
    assert not overfitting(pd.DataFrame({"step": [1]}))


def test_curve_feed_reads_new_lines_at_most_once_per_interval_and_numbers_its_snapshots(tmp_path):
    import json

    path = tmp_path / "metrics.jsonl"

    def write(*steps, mode="a"):
        with open(path, mode) as fh:
            fh.writelines(json.dumps({"step": s, "loss": 1 / s}) + "\n" for s in steps)

    feed = CurveFeed(path, min_interval=3600)  # only fresh=True reads again within this test
    assert feed.snapshot() == (0, [])  # no file yet
    write(1, 2)
    assert feed.snapshot() == (0, [])  # inside the interval: the same snapshot for every viewer
    version, records = feed.snapshot(fresh=True)
    assert version == 1 and [r["step"] for r in records] == [1, 2]
    with open(path, "a") as fh:
        fh.write('{"step": 3, "lo')  # a half-written line is left for later
    assert feed.snapshot(fresh=True) == (1, records)  # nothing new: same version, same list
    with open(path, "a") as fh:
        fh.write('ss": 0.3}\n')
    version, newer = feed.snapshot(fresh=True)
    assert version == 2 and [r["step"] for r in newer] == [1, 2, 3]
    assert [r["step"] for r in records] == [1, 2]  # an earlier snapshot is never changed
    v, _, train, evals = feed.frames()
    assert v == 2 and list(train["step"]) == [1, 2, 3] and len(evals) == 0
    assert feed.frames()[2] is train  # tables are built once per snapshot
    write(7, mode="w")  # the file was replaced by a shorter one: start over
    version, records = feed.snapshot(fresh=True)
    assert version > 2 and [r["step"] for r in records] == [7]


def test_zip_folder_round_trips_the_model_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "sub" / "vocab.txt").write_text("hello\nworld\n")
    with zipfile.ZipFile(io.BytesIO(zip_folder(tmp_path))) as archive:
        assert sorted(archive.namelist()) == ["config.json", "model.safetensors", "sub/vocab.txt"]
        assert archive.read("model.safetensors") == bytes(range(256)) * 10
        assert archive.getinfo("model.safetensors").compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("config.json").compress_type == zipfile.ZIP_DEFLATED


def test_commands_quote_paths_with_spaces(tmp_path):
    path = tmp_path / "my runs" / "config.json"
    assert shlex.split(train_command(path)) == ["python", "-m", "core", "train", "--config", str(path)]
    words = shlex.split(multi_gpu_command(path, 4))
    assert words[:5] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "4"] and words[-1] == str(path)
