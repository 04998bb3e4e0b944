"""AppTest helpers: a fresh app per test on its own workspace, and finished tiny runs to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_run_config, toy_sentiment_rows, wait_for

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = [
    "views/home.py",
    "views/data.py",
    "views/train.py",
    "views/evaluate.py",
    "views/playground.py",
    "views/compare.py",
    "views/runs.py",
]


def open_app(page: str | None = None, **query: str) -> AppTest:
    """Run app.py (as `streamlit run` would) and switch to ``page`` with ``query`` in the URL."""
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(query)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.query_params.update(query)
        at.run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def widget(items, label: str):
    matches = [w for w in items if w.label == label]
    assert matches, f"no widget {label!r}; have: {[w.label for w in items]}"
    return matches[0]


def wait_until_done(run, timeout: float = 300.0) -> str:
    from core.runs import ACTIVE

    wait_for(lambda: run.state not in ACTIVE, f"run {run.id} to end", timeout)
    return run.state


@pytest.fixture(autouse=True)
def fresh_caches():
    """st.cache_resource/cache_data outlive a test inside one pytest process; each test starts clean."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory, tiny_bert_dir) -> Path:
    """A workspace holding two finished tiny runs of the same data: a full fine-tune and a LoRA one."""
    from core.runs import RunStore
    from core.training import train

    ws = tmp_path_factory.mktemp("trained-ws")
    data = ws / "toy.csv"
    data.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in toy_sentiment_rows(240)) + "\n")
    store = RunStore(ws / "runs")
    for name, model in (("full", {}), ("lora", {"method": "lora", "lora_r": 4})):
        cfg = tiny_run_config(data, tiny_bert_dir, max_steps=6, eval_every=3, log_every=2)
        cfg.name = name
        for key, value in model.items():
            setattr(cfg.model, key, value)
        result = train(cfg, store.create(cfg, run_id=f"run-{name}"))
        assert result.state == "finished", result.message
    return ws


@pytest.fixture
def trained(trained_workspace, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_HOME", str(trained_workspace))
    return trained_workspace


def fragment_timers(monkeypatch) -> dict[str, float | None]:
    """Each fragment's timer (``run_every``) by its function's name, as the page declares it from now on."""
    import streamlit

    real = streamlit.fragment
    timers: dict[str, float | None] = {}

    def fragment(func=None, *, run_every=None):
        def wrap(body):
            timers[body.__name__] = run_every
            return real(body, run_every=run_every)

        return wrap(func) if func is not None else wrap

    monkeypatch.setattr(streamlit, "fragment", fragment)
    return timers
