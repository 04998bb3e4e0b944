"""Generative fine-tuning in the pages: the Data page maps the three shapes, the Playground answers (and chats)
with model text shown as text, Evaluate shows the generation scores with a filterable table, Home offers the
headline sample."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.app.conftest import ROOT, button, no_exception, open_app, widget

SAMPLES = ROOT / "data" / "samples"


def train_tiny(data: Path, run_id: str, **data_cfg) -> None:
    from core.config import RunConfig
    from core.runs import RunStore
    from core.training import train

    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(data), **data_cfg},
            "model": {"source": "default", "task": "generation"},
            "train": {"max_steps": 2, "batch_size": 4, "max_length": 64, "learning_rate": 1e-3, "precision": "fp32"},
        }
    )
    assert train(cfg, RunStore().create(cfg, run_id=run_id)).state == "finished"


@pytest.fixture
def pairs_csv(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.csv"
    rows = [{"prompt": f"*bold* question {i}?", "response": f"answer {i}"} for i in range(40)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_playground_answers_a_prompt_response_run_as_plain_text(workspace, pairs_csv):
    train_tiny(pairs_csv, "qa")
    at = open_app("views/playground.py", run="qa")
    no_exception(at)
    assert any("only the answer comes back" in c.value for c in at.caption)
    widget(at.text_area, "Prompt").set_value("*bold* question 3?")
    widget(at.number_input, "Max new tokens").set_value(6)
    at.run()
    button(at, "Generate").click()
    at.run()
    no_exception(at)
    # The answer is a text element (never markdown), and the prompt is not repeated as the answer's start.
    assert not any("*bold*" in m.value for m in at.markdown)
    assert any(c.value == "Answer" for c in at.caption)
    answers = [t.value for t in at.text] + [c.value for c in at.caption if "stop token at once" in c.value]
    assert answers and not any(a.startswith("*bold* question") for a in answers)


def test_playground_offers_a_multi_turn_chat_for_a_chat_run_with_history_per_run(workspace):
    train_tiny(SAMPLES / "chat.jsonl", "chat", val_fraction=0.1, test_fraction=0.1)
    at = open_app("views/playground.py", run="chat")
    no_exception(at)
    assert not [t for t in at.text_area if t.label == "Prompt"]  # a chat box instead of a prompt box
    widget(at.number_input, "Max new tokens").set_value(4)
    at.run()
    at.chat_input[0].set_value("Where is my order 12345?").run()
    no_exception(at)
    at.chat_input[0].set_value("<b>Thanks</b>").run()
    no_exception(at)
    history = at.session_state["chat_chat"]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in history[::2]] == ["Where is my order 12345?", "<b>Thanks</b>"]
    assert [cm.name for cm in at.get("chat_message")] == ["user", "assistant", "user", "assistant"]
    assert "<b>Thanks</b>" in [t.value for t in at.text]  # user text shown as text, not markup
    button(at, "New conversation").click().run()
    assert at.session_state["chat_chat"] == []


def test_evaluate_shows_generation_scores_and_filters_the_answers(workspace, pairs_csv):
    train_tiny(pairs_csv, "qa", val_fraction=0.2, test_fraction=0.2)
    at = open_app("views/evaluate.py", run="qa")
    button(at, "Evaluate").click()
    at.run()
    no_exception(at)
    labels = [m.label for m in at.metric]
    assert {"Bleu", "Rouge l", "Exact match", "Stopped", "Perplexity"} <= set(labels), labels
    (table,) = [d for d in at.dataframe if "generation" in d.value.columns]
    assert list(table.value.columns[:3]) == ["prompt", "reference", "generation"] and len(table.value) == 8
    at.text_input(key="g_text").set_value("question 1").run()
    (table,) = [d for d in at.dataframe if "generation" in d.value.columns]
    assert len(table.value) < 8 and all(
        "question 1" in p or "question 1" in g for p, g in zip(table.value["prompt"], table.value["generation"])
    )


def test_data_page_maps_chat_and_prompt_response_shapes(workspace):
    at = open_app("views/data.py")
    at.radio(key="data_source").set_value("Use a bundled sample").run()
    at.selectbox(key="data_sample").set_value("headlines.csv").run()
    at.selectbox(key="task_headlines.csv").set_value("generation").run()
    no_exception(at)
    assert widget(at.selectbox, "Response column").value == "headline"
    assert widget(at.selectbox, "Prompt column").value == "article"
    assert any("learns to write the response" in i.value for i in at.info)
    titles = " ".join(s.value for s in [*at.success, *at.warning])
    assert "Prompt and response length" in titles and "Responses cut" in titles
    at.selectbox(key="data_sample").set_value("chat.jsonl").run()
    at.selectbox(key="task_chat.jsonl").set_value("generation").run()
    no_exception(at)
    assert any("Conversations" in i.value for i in at.info)
    assert "messages" in [t.value for t in at.text]


def test_home_offers_the_headline_sample_for_generation(workspace):
    at = open_app()
    button(at, "Try the headline sample").click()
    at.run()
    no_exception(at)
    from core.datasets import DatasetStore

    saved = DatasetStore(workspace / "datasets").find("headlines-sample")
    assert saved is not None and saved.settings.task == "generation"
    assert (saved.settings.text_column, saved.settings.text_pair_column) == ("article", "headline")
    assert json.loads(json.dumps(saved.data_config().__dict__))["text_pair_column"] == "headline"
