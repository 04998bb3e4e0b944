"""Hyperparameter search: trials are normal runs, the best trial is the best by validation metric, k-fold
folds partition the training split, a stop ends the search, and everything is on disk to re-attach to."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.cli import main
from core.config import DataConfig
from core.data import prepare_data
from core.errors import ConfigError
from core.jobs import JobRegistry
from core.runs import RunStore
from core.search import (
    SearchConfig,
    SearchRunner,
    SearchSpace,
    SearchStore,
    best_config,
    plan_trials,
    results_table,
    run_search,
)
from tests.conftest import tiny_run_config
from tests.unit.test_strategies import one_thread  # noqa: F401 - autouse: tiny models, one thread


@pytest.fixture(autouse=True)
def trials_in_threads(monkeypatch):
    """Trials as threads of the test process: what is tested is the search, not where a job runs (one test
    below runs a search's trials in worker processes), and a worker process per trial costs ~4 s of imports:
    93 s for these tests instead of 17."""
    monkeypatch.setenv("WORKBENCH_JOB_MODE", "thread")


def _base(toy_csv, tiny_bert_dir, **train):
    return tiny_run_config(toy_csv, tiny_bert_dir, **{"max_steps": 3, **train})


def test_cli_grid_search_picks_the_trial_with_the_best_validation_metric(workspace, toy_csv, tiny_bert_dir, capsys):
    code = main(
        ["--workspace", str(workspace), "search", "--data", str(toy_csv), "--model", str(tiny_bert_dir),
         "--space", "learning_rate=1e-5,1e-3,1e-2", "--max-steps", "4", "--max-length", "32", "--precision", "fp32",
         "--metric", "val_loss", "--batch-size", "16"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads([line for line in out.splitlines() if line.startswith('{"search"')][0])
    record = SearchStore(workspace / "searches").get(summary["search"])
    assert record["state"] == "finished"
    runs = RunStore(workspace / "runs")

    # The truth is each trial's own run folder: re-read the validation loss from there.
    measured = {}
    for trial in record["trials"]:
        (run_id,) = trial["runs"]
        run = runs.get(run_id)
        assert run.config().name == f"search-{record['id']}-trial-{trial['trial']}"
        assert run.config().train.learning_rate == trial["params"]["learning_rate"]
        measured[trial["trial"]] = run.results()["validation"]["loss"]
    assert len(set(measured.values())) == 3
    best = min(measured, key=measured.get)
    assert record["best_trial"] == summary["best_trial"] == best
    assert [row["best"] for row in results_table(record)] == [t == best for t in (1, 2, 3)]
    chosen = best_config(record)
    assert chosen.train.learning_rate == record["trials"][best - 1]["params"]["learning_rate"]
    assert chosen.data.train_path == str(toy_csv)  # the full run trains on the whole training split
    saved = json.loads((workspace / "searches" / record["id"] / "best_config.json").read_text())
    assert saved["train"]["learning_rate"] == chosen.train.learning_rate


def test_k_fold_partitions_the_training_split_and_averages_the_folds(workspace, toy_csv, tiny_bert_dir):
    base = _base(toy_csv, tiny_bert_dir, max_steps=2)
    base.data.augment_ops, base.data.augment_multiplier = ["swap"], 1
    cfg = SearchConfig(base=base, space=SearchSpace(learning_rate=[1e-3]), folds=2, metric="val_loss")
    store = SearchStore(workspace / "searches")
    record = run_search(store.create(cfg)["id"], JobRegistry(RunStore(workspace / "runs")), store=store)
    assert record["state"] == "finished", record["message"]

    train = prepare_data(DataConfig(train_path=str(toy_csv)), "classification").train
    folds = store.folder(record["id"]) / "folds"
    held = [pd.read_parquet(folds / f"fold-{k}" / "validation.parquet") for k in (1, 2)]
    fitted = [pd.read_parquet(folds / f"fold-{k}" / "train.parquet") for k in (1, 2)]
    assert not set(held[0]["text"]) & set(held[1]["text"])
    assert sorted(pd.concat(held)["text"]) == sorted(train["text"])  # no augmented row leaked into a fold
    for fit, val in zip(fitted, held):
        assert not set(fit["text"]) & set(val["text"])
        assert abs((val["label"] == "positive").mean() - (train["label"] == 1).mean()) < 0.05  # stratified

    (trial,) = record["trials"]
    runs = [RunStore(workspace / "runs").get(r) for r in trial["runs"]]
    assert [r.config().name for r in runs] == [f"search-{record['id']}-trial-1-fold-{k}" for k in (1, 2)]
    losses = [r.results()["validation"]["loss"] for r in runs]
    assert trial["metric"] == pytest.approx(sum(losses) / 2)
    assert trial["fold_metrics"] == pytest.approx(losses)
    assert all("test" not in r.results() for r in runs)
    for run, val in zip(runs, held):
        assert len(pd.read_parquet(run.data_dir / "validation.parquet")) == len(val)


def test_stop_between_and_within_trials(workspace, toy_csv, tiny_bert_dir):
    registry = JobRegistry(RunStore(workspace / "runs"))
    store = SearchStore(workspace / "searches")
    cfg = SearchConfig(base=_base(toy_csv, tiny_bert_dir, max_steps=200), space=SearchSpace(learning_rate=[1e-3, 2e-3]))
    runner = SearchRunner(registry, store)
    job, created = runner.start(cfg)
    again, created_again = runner.start(cfg)
    assert created and not created_again and again is job  # one search at a time
    assert store.get(job.search_id)["state"] in ("queued", "running")  # never read as interrupted while starting

    # Stop while the first trial trains: the trial's run stops too, the second never starts.
    import time

    deadline = time.time() + 300
    while not store.get(job.search_id)["trials"][0]["runs"] and time.time() < deadline:
        time.sleep(0.05)
    assert runner.stop()
    assert (store.folder(job.search_id) / "stop.json").exists()  # the request is on disk, for any process
    record = job.join(300)
    assert record["state"] == "stopped"
    first, second = record["trials"]
    assert first["state"] == "stopped" and second["state"] == "pending" and not second["runs"]
    assert RunStore(workspace / "runs").get(first["runs"][0]).state in ("stopped", "finished")
    assert store.get(job.search_id)["state"] == "stopped"  # on disk, for a page that re-attaches


def test_a_search_left_running_by_a_dead_process_reads_as_interrupted(workspace, toy_csv, tiny_bert_dir):
    store = SearchStore(workspace / "searches")
    record = store.create(SearchConfig(base=_base(toy_csv, tiny_bert_dir)))
    record.update(state="running", pid=2**22 + 12345)
    store.save(record)
    assert store.get(record["id"])["state"] == "interrupted"
    assert [r["id"] for r in store.list()] == [record["id"]]
    assert store.request_stop(record["id"]) is False  # nothing to stop


def test_a_search_whose_pid_was_reused_reads_as_interrupted(workspace, toy_csv, tiny_bert_dir):
    import subprocess
    import sys

    from core.runs import process_started

    store = SearchStore(workspace / "searches")
    record = store.create(SearchConfig(base=_base(toy_csv, tiny_bert_dir)))
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        record.update(state="running", pid=sleeper.pid, pid_started=process_started(sleeper.pid))
        store.save(record)
        assert store.get(record["id"])["state"] == "running"
        record.update(pid_started=record["pid_started"] - 3600.0)  # another process had that pid before
        store.save(record)
        assert store.get(record["id"])["state"] == "interrupted"
    finally:
        sleeper.kill()
        sleeper.wait()


SEARCH_CLI = ["search", "--space", "learning_rate=1e-3,2e-3", "--max-steps", "5000", "--max-length", "32",
              "--precision", "fp32", "--num-threads", "1", "--batch-size", "16"]  # fmt: skip


def test_a_command_line_search_trains_in_worker_processes_and_stops_from_another_process(
    workspace, toy_csv, tiny_bert_dir, monkeypatch
):
    """The real job model end to end: the CLI's search, its trial in a worker process, a Stop from elsewhere."""
    import os
    import subprocess
    import sys

    from tests.conftest import wait_for
    from tests.unit.test_faults import REPO
    from tests.unit.test_jobs import _steps

    monkeypatch.delenv("WORKBENCH_JOB_MODE")  # this one runs its trials as users do
    args = [sys.executable, "-m", "core", "--workspace", str(workspace), *SEARCH_CLI, "--data", str(toy_csv),
            "--model", str(tiny_bert_dir)]  # fmt: skip
    cli = subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    store, runs = SearchStore(workspace / "searches"), RunStore(workspace / "runs")
    try:
        wait_for(lambda: runs.list() and _steps(runs.list()[0]), "the first trial's first step")
        (search,) = store.list()
        (trial_run,) = runs.list()
        owner = trial_run.status()["pid"]
        assert search["state"] == "running" and owner not in (cli.pid, os.getpid())  # a worker of the CLI
        assert store.request_stop(search["id"]) is True  # what the Tune page's Stop does, from this process
        out, _ = cli.communicate(timeout=300)
    finally:
        cli.kill()
    assert cli.returncode == 0, out
    record = store.get(search["id"])
    first, second = record["trials"]
    assert record["state"] == "stopped" and first["state"] == "stopped" and second["state"] == "pending"
    assert trial_run.state == "stopped" and trial_run.has_model()  # the stop reached the trial's worker
    assert [r.id for r in runs.list()] == [trial_run.id]


def test_plans_are_checked_and_random_draws_stay_in_range(toy_csv, tiny_bert_dir):
    base = _base(toy_csv, tiny_bert_dir)
    big = SearchSpace(learning_rate=[1e-5, 1e-4, 1e-3], batch_size=[8, 16, 32])
    with pytest.raises(ConfigError, match="9 combinations"):
        plan_trials(SearchConfig(base=base, space=big, max_trials=8))
    with pytest.raises(ConfigError, match="learning_rate"):
        plan_trials(SearchConfig(base=base, space=SearchSpace(learning_rate=[1e-4, 5.0])))
    with pytest.raises(ConfigError, match="folds"):
        SearchConfig(base=base, folds=1)

    cfg = SearchConfig(base=base, space=big, strategy="random", max_trials=40, seed=3)
    plans = plan_trials(cfg)
    assert plans == plan_trials(cfg)  # same seed, same trials
    rates = [p["learning_rate"] for p in plans]
    assert all(1e-5 <= r <= 1e-3 for r in rates)
    assert sum(r < 1e-4 for r in rates) >= 10  # log-uniform: the low decade is drawn as often as the high one
    assert {p["batch_size"] for p in plans} == {8, 16, 32}
