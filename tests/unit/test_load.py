"""Load: many clicks on Start at once, many sessions polling a training run, and a run with 100,000 points.

The figures with 10 readers at the UI's real refresh rate come from ``bench/load_polling.py``; these tests
keep the guarantees (one job, the same points for everyone, a bounded cost) in the suite.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from core.config import RunConfig
from core.curves import curve_frames, downsample
from core.jobs import JobRegistry
from core.runs import Run, RunStore
from tests.conftest import tiny_run_config, wait_for


def config_for(data: Path, model: Path, **train_settings) -> RunConfig:
    return tiny_run_config(data, model, **{"max_steps": 4, "num_threads": 1, **train_settings})


def hammer(registries: list[JobRegistry], config: RunConfig, clicks: int = 8):
    """``clicks`` threads press Start at the same instant, spread over the given registries."""
    release = threading.Event()

    def hold(event, info):
        if event == "data":
            release.wait(30)  # keep the first job alive until every click has been answered

    barrier = threading.Barrier(clicks)
    answers: list = []

    def click(registry: JobRegistry) -> None:
        barrier.wait()
        answers.append(registry.start(config, hook=hold))

    threads = [threading.Thread(target=click, args=(registries[i % len(registries)],)) for i in range(clicks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    release.set()
    return answers


def test_eight_simultaneous_starts_make_exactly_one_job(workspace, toy_csv, tiny_bert_dir):
    store = RunStore(workspace / "runs")
    answers = hammer([JobRegistry(store, mode="thread")], config_for(toy_csv, tiny_bert_dir))
    assert len(answers) == 8
    assert sum(created for _, created in answers) == 1
    assert len({job.run_id for job, _ in answers}) == 1
    assert len([p for p in store.root.iterdir() if p.is_dir()]) == 1
    assert answers[0][0].join(300).state == "finished"


def test_a_second_registry_in_the_same_process_does_not_start_a_second_job(workspace, toy_csv, tiny_bert_dir):
    """A cleared st.cache_resource makes a new registry while the old one's job still trains."""
    store = RunStore(workspace / "runs")
    registries = [JobRegistry(store, mode="thread"), JobRegistry(RunStore(workspace / "runs"), mode="thread")]
    answers = hammer(registries, config_for(toy_csv, tiny_bert_dir))
    assert sum(created for _, created in answers) == 1
    assert len({job.run_id for job, _ in answers}) == 1
    assert len([p for p in store.root.iterdir() if p.is_dir()]) == 1
    assert answers[0][0].join(300).state == "finished"


class PollingReader(threading.Thread):
    """What one browser session's live fragment does on each refresh: status, new metric lines, the chart."""

    def __init__(self, run: Run, interval: float):
        super().__init__(daemon=True)
        self.watched, self.interval = run, interval
        self.records: list[dict] = []
        self.offset = 0
        self.polls = 0
        self.polls_with_news = 0
        self.done = threading.Event()

    def poll(self) -> str:
        state = self.watched.status().get("state", "queued")
        new, self.offset = self.watched.metrics_since(self.offset)
        self.records += new
        self.polls += 1
        self.polls_with_news += bool(new)
        train, _ = curve_frames(self.records)
        downsample(train)
        return state

    def run(self) -> None:  # noqa: D102 - Thread API
        while not self.done.is_set():
            self.poll()
            time.sleep(self.interval)
        self.poll()  # one last refresh after the run ended, as the page does


def train_watched(registry: JobRegistry, config: RunConfig, readers: int, interval: float):
    pollers: list[PollingReader] = []

    def hold(event: str, info: dict) -> None:
        # Half-way through, training waits until every reader has seen new lines arrive: that the readers saw the
        # run while it trained is then a fact of the test, not of how a busy machine scheduled the threads.
        if event == "step" and info["step"] == config.train.max_steps // 2 and info["micro"] == 0:
            wait_for(
                lambda: len(pollers) == readers and all(p.polls_with_news for p in pollers), "readers to see lines"
            )

    job, created = registry.start(config, hook=hold)
    assert created
    pollers.extend(PollingReader(job.run, interval) for _ in range(readers))
    for p in pollers:
        p.start()
    result = job.join(300)
    for p in pollers:
        p.done.set()
        p.join(300)
    assert result is not None and result.state == "finished", result
    return job.run, pollers


@pytest.mark.slow
def test_ten_polling_readers_see_the_same_points_while_it_trains(workspace, toy_csv, tiny_bert_dir):
    # How much readers slow training is a timing claim: bench/load_polling.py measures it at the page's rate.
    registry = JobRegistry(RunStore(workspace / "runs"), mode="thread")  # the hold below is a Python hook
    config = config_for(toy_csv, tiny_bert_dir, max_steps=36, eval_every=6)
    run, pollers = train_watched(registry, config, readers=10, interval=0.1)
    truth = run.metrics()
    assert len([r for r in truth if "loss" in r]) == 36
    for p in pollers:
        assert p.records == truth  # every session ends with exactly the points on disk, none twice, none torn
        assert p.polls_with_news >= 2  # lines while it trained (before the hold let it go on), and after


def write_long_run(path: Path, steps: int) -> None:
    # Formatted by hand: json.dumps per line would make writing the file the slowest part of the test.
    lines = [json.dumps({"event": "start", "total_steps": steps})]
    for s in range(1, steps + 1):
        lines.append(f'{{"step":{s},"epoch":{s / 1000:.4f},"loss":{2.0 / (1 + s / 5000) + (s % 7) * 1e-3!r},'
                     f'"lr":5e-05,"samples_per_s":120.5,"tokens_per_s":3000.25,"elapsed_s":{s * 0.1!r},'
                     f'"eta_s":{(steps - s) * 0.1!r}}}')  # fmt: skip
        if s % 1000 == 0:
            lines.append(f'{{"step":{s},"val_loss":{1.0 + 1 / s!r},"val_accuracy":0.8}}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_run_with_100k_points_reads_and_downsamples_everything(tmp_path, monkeypatch):
    # How fast is bench/long_run_read.py's to say; here, what is read and how much of it.
    run = Run(tmp_path / "long-run")
    run.dir.mkdir()
    write_long_run(run.metrics_path, 100_000)
    records = run.metrics()
    train, evals = curve_frames(records)
    shown = downsample(train)
    assert len(records) == 100_000 + 100 + 1  # everything stays on disk and is read back
    assert len(train) == 100_000 and len(evals) == 100
    assert len(shown) <= 2000
    assert shown["step"].iloc[0] == 1 and shown["step"].iloc[-1] == 100_000  # first and last kept
    # A live page reads only the lines written since its last refresh: count the bytes that reach the parser.
    offset = run.metrics_path.stat().st_size
    with open(run.metrics_path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"step": 100_001, "loss": 0.5}) + "\n")
    parsed: list[int] = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text, **kw: parsed.append(len(text)) or real_loads(text, **kw))
    new, end = run.metrics_since(offset)
    assert new == [{"step": 100_001, "loss": 0.5}] and end == run.metrics_path.stat().st_size
    assert 0 < sum(parsed) < 100, parsed  # the new line alone, not the 12 MB before it
