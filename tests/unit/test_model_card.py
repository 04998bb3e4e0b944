"""Model cards: README.md with hub metadata in every saved model; LoRA adapters name their base portably."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from huggingface_hub import ModelCard

from core.models import load_for_inference, local_model_path, minilm_path
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config


def _train(workspace, config):
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run)
    assert result.state == "finished", result.message
    return run


def test_full_model_card_has_metadata_scores_and_loads_with_pipeline(workspace, toy_csv, tiny_bert_dir):
    run = _train(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4))
    card = ModelCard.load(run.model_dir / "README.md")
    meta = card.data.to_dict()
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["language"] == "en"
    # The base is a folder on this machine: no portable name, and no path of this machine in the card.
    assert "base_model" not in meta
    assert str(tiny_bert_dir) not in card.content and str(workspace) not in card.content
    test_accuracy = run.results()["test"]["accuracy"]
    assert f"| accuracy | {run.results()['validation']['accuracy']:.4f} | {test_accuracy:.4f} |" in card.text
    index = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert index[("test", "accuracy")] == round(test_accuracy, 4)
    assert "Data check of the training split" in card.text and "negative" in card.text
    # Checkpoints get a card too (without the data check, which would read every row at every save).
    ckpt = run.checkpoints()[-1]
    assert ModelCard.load(ckpt / "README.md").data.pipeline_tag == "text-classification"
    # "How to use it" is true: pipeline() loads the folder as the card says.
    from transformers import pipeline

    out = pipeline("text-classification", model=str(run.model_dir))("a wonderful film")
    assert out[0]["label"] in ("negative", "positive")


@pytest.mark.slow  # trains and scores MiniLM (22.7M parameters) for two steps
def test_lora_adapter_names_its_base_portably_and_loads_after_a_move(workspace, toy_csv, tmp_path):
    config = tiny_run_config(toy_csv, "default", max_steps=2)
    config.model.method = "lora"
    run = _train(workspace, config)
    adapter = json.loads((run.model_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert local_model_path(adapter["base_model_name_or_path"]) == minilm_path()
    card = ModelCard.load(run.model_dir / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.library_name == "peft"
    assert "site-packages" not in card.text
    texts = ["a wonderful film", "an awful dull plot"]
    from core.generation import predict_proba

    before = predict_proba(load_for_inference(run.model_dir), texts)
    # The merged model (a plain transformers model) gets its own card, with the run's scores.
    from core.export import merge_run_adapter

    merged = ModelCard.load(merge_run_adapter(run) / "README.md")
    assert merged.data.library_name == "transformers"
    assert merged.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "| accuracy |" in merged.text
    moved = tmp_path / "elsewhere" / "my-adapter"
    shutil.move(str(run.model_dir), moved)
    after = predict_proba(load_for_inference(moved), texts)
    np.testing.assert_allclose(after, before, atol=1e-6)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["the film was good"] * 3, "en"),
        (["这部电影很好看，我很喜欢"] * 3, "zh"),
        (["¿Qué tal? Ça va très bien, señor"], None),
    ],
)
def test_language_guess(texts, expected):
    from core.model_card import guess_language

    assert guess_language(texts) == expected
