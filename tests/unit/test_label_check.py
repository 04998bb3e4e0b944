"""The label-error finder as a background job (core.label_check): progress and result on disk beside the
dataset, one check per dataset at a time, cancel, a readable failure, and a check cut off by a restart.

The finder's quality is test_insight's; here a planted embedding (rows 3 and 8 on the wrong side) keeps each
check to a fraction of a second, and waits are on conditions, never on time.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest

import core.label_issues as li
from core import label_check
from core.datasets import DatasetSettings, DatasetStore
from core.i18n import status_message
from tests.conftest import wait_for


@pytest.fixture(autouse=True)
def thread_mode(monkeypatch):
    """The planted embedding is patched into this process: the checks run here (the last test runs a child)."""
    monkeypatch.setenv("WORKBENCH_JOB_MODE", "thread")


def _dataset(tmp_path, n=20, labels=None):
    labels = labels or ["positive" if i % 2 else "negative" for i in range(n)]
    path = tmp_path / "small.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(n)], "label": labels}).to_csv(path, index=False)
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    return DatasetStore().save("small", path, "small.csv", settings, rows=n)


def planted_embedding(texts, source="default", *, progress=None, gate: threading.Event | None = None, **_):
    """Separates the classes by each row's given label, except rows 3 and 8 (from 1), planted on the wrong side;
    reports its rows one by one, as the real encoder reports batches, and may wait on ``gate`` halfway."""
    ids = np.array([int(t.split()[1]) for t in texts])
    side = np.where(ids % 2 == 1, 1.0, -1.0)
    side[[2, 7]] *= -1
    for done in range(1, len(texts) + 1):
        if gate is not None and done == len(texts) // 2:
            gate.wait(60)
        if progress is not None:
            progress("embedding", done, len(texts))
    return np.stack([side, np.ones(len(ids))], axis=1)


def _gated(monkeypatch, gate: threading.Event, seen: list | None = None):
    def embed(texts, source="default", *, progress=None, **kw):
        def spy(stage, done, total):
            if seen is not None:
                seen.append((stage, done, total))
            progress(stage, done, total)

        return planted_embedding(texts, source, progress=spy, gate=gate)

    monkeypatch.setattr(li, "embed_texts", embed)


def _finished(dataset):
    record = label_check.read_check(dataset.dir)
    return record if record and record["state"] not in label_check.ACTIVE else None


def test_a_check_runs_in_the_background_and_leaves_its_result_beside_the_dataset(workspace, tmp_path, monkeypatch):
    dataset = _dataset(tmp_path)
    gate, seen = threading.Event(), []
    _gated(monkeypatch, gate, seen)
    job, created = label_check.start_check(dataset, folds=4)
    assert created
    # Halfway through the rows it is running, its progress is on disk, and a second start attaches to it.
    running = wait_for(
        lambda: (r := label_check.read_check(dataset.dir)) and r.get("stage") == "embedding" and r["done"] and r,
        "the check to write its progress",
    )
    assert running["state"] == "running" and running["total"] == 20 and running["message_code"]
    assert "of 20 rows" in status_message(running, "en") and "20 行" in status_message(running, "zh")
    again, created_again = label_check.start_check(dataset, folds=4)
    assert again is job and not created_again
    gate.set()
    record = wait_for(lambda: _finished(dataset), "the check to end")
    assert record["state"] == "finished", record
    assert sorted(i["row"] for i in record["issues"]) == [3, 8]
    assert record["rows"] == 20 and record["label_names"] == ["negative", "positive"] and record["folds"] == 4
    # The progress went through every row, then every fold, in order.
    assert [s for s in seen if s[0] == "embedding"][-1] == ("embedding", 20, 20)
    # What a restarted server reads: the file beside the dataset, nothing from this process.
    on_disk = json.loads((dataset.dir / label_check.CHECK_FILE).read_text(encoding="utf-8"))
    assert on_disk["issues"] == record["issues"]
    assert status_message(on_disk, "zh") == "完成：20 行中标出 2 行。"
    job.join(30)
    assert job.outcome()["state"] == "finished"


def test_progress_counts_the_folds(workspace, tmp_path, monkeypatch):
    dataset = _dataset(tmp_path)
    calls = []

    def embed(texts, source="default", *, progress=None, **kw):
        return planted_embedding(texts, source)

    monkeypatch.setattr(li, "embed_texts", embed)
    li.find_label_issues(dataset.path, folds=4, progress=lambda *a: calls.append(a))
    assert calls == [("folds", k, 4) for k in range(1, 5)]


def test_cancel_stops_the_check_and_says_so(workspace, tmp_path, monkeypatch):
    dataset = _dataset(tmp_path)
    gate = threading.Event()
    _gated(monkeypatch, gate)
    job, _ = label_check.start_check(dataset, folds=4)
    wait_for(lambda: (label_check.read_check(dataset.dir) or {}).get("done"), "the check to start embedding")
    assert label_check.cancel_check(dataset.dir)
    gate.set()
    record = wait_for(lambda: _finished(dataset), "the check to stop")
    assert record["state"] == "stopped" and "cancelled" in status_message(record, "en")
    assert "issues" not in record
    assert not label_check.cancel_check(dataset.dir)  # nothing runs now
    job.join(30)


def test_a_failing_check_leaves_a_readable_message(workspace, tmp_path, monkeypatch):
    one_class = _dataset(tmp_path, labels=["positive"] * 20)
    label_check.start_check(one_class, folds=4)[0].join(60)
    record = label_check.read_check(one_class.dir)
    assert record["state"] == "failed" and "fewer than two classes" in status_message(record, "en")

    other = DatasetStore().save(
        "other", one_class.path, "small.csv", DatasetSettings(text_column="text", label_column="label")
    )
    pd.DataFrame({"text": [f"text {i}" for i in range(20)], "label": ["a", "b"] * 10}).to_csv(other.path, index=False)

    def broken(texts, source="default", **kw):
        raise RuntimeError("the encoder is gone")

    monkeypatch.setattr(li, "embed_texts", broken)
    label_check.start_check(other, folds=4)[0].join(60)
    record = label_check.read_check(other.dir)
    assert record["state"] == "failed"
    assert "RuntimeError: the encoder is gone" in status_message(record, "en")
    assert "意外错误" in status_message(record, "zh")


def test_a_check_left_running_by_a_gone_process_reads_as_interrupted(workspace, tmp_path):
    dataset = _dataset(tmp_path)
    gone = {"state": "running", "folds": 5, "pid": 2**22 + 12345, "pid_started": 1.0, "host": None}
    (dataset.dir / label_check.CHECK_FILE).write_text(json.dumps(gone), encoding="utf-8")
    record = label_check.read_check(dataset.dir)
    assert record["state"] == "interrupted" and "cut off" in status_message(record, "en")
    (dataset.dir / label_check.CHECK_FILE).write_text("{half a fi", encoding="utf-8")
    assert label_check.read_check(dataset.dir)["state"] == "failed"  # damaged: said, not a traceback


@pytest.mark.parametrize("folds", [1, 21])
def test_folds_out_of_range_fail_with_a_message(workspace, tmp_path, folds):
    dataset = _dataset(tmp_path)
    record = label_check.run_check(dataset, folds)
    assert record["state"] == "failed" and "Folds must be between" in status_message(record, "en")


def test_a_check_runs_in_its_own_process_and_reports_there(workspace, tmp_path, monkeypatch):
    """As the app runs it: a child process (python -m core.label_check) writes the record; here it fails early
    (one class), so no model is loaded, and the failure reaches the reader in words."""
    monkeypatch.delenv("WORKBENCH_JOB_MODE")
    dataset = _dataset(tmp_path, labels=["positive"] * 20)
    job, created = label_check.start_check(dataset, folds=4)
    assert created and job.mode == "process"
    record = job.join(300)
    assert record["state"] == "failed" and record["pid"] != os.getpid()  # written by the child
    assert "fewer than two classes" in status_message(label_check.read_check(dataset.dir), "en")
