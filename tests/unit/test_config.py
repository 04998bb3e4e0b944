"""RunConfig: validation names the field, JSON round-trip, diffs, field docs."""

from __future__ import annotations

import json

import pytest

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig, config_diff, field_docs
from core.errors import ConfigError, WorkbenchError


@pytest.mark.parametrize(
    ("section", "settings", "field"),
    [
        ("train", {"learning_rate": -1e-4}, "learning_rate"),
        ("train", {"learning_rate": 0}, "learning_rate"),
        ("train", {"batch_size": 0}, "batch_size"),
        ("train", {"grad_accum": 0}, "grad_accum"),
        ("train", {"max_length": 4}, "max_length"),
        ("train", {"schedule": "exponential"}, "schedule"),
        ("train", {"optimizer": "lion"}, "optimizer"),
        ("train", {"precision": "int4"}, "precision"),
        ("train", {"early_stopping_metric": "loss"}, "early_stopping_metric"),
        ("train", {"epochs": 0, "max_steps": 0}, "epochs"),
        ("data", {"val_fraction": 1.5}, "val_fraction"),
        ("data", {"val_fraction": 0.5, "test_fraction": 0.45}, "val_fraction"),
        ("data", {"augment_ops": ["shout"]}, "augment_ops"),
        ("model", {"task": "translation"}, "task"),
        ("model", {"method": "prefix", "task": "classification"}, "method"),
        ("model", {"lora_r": 0}, "lora_r"),
        ("model", {"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_setting_is_refused_naming_the_field(section, settings, field):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({section: settings})
    assert f"'{field}'" in str(err.value)
    # A ConfigError is both a user-facing WorkbenchError and a ValueError (the UI catches the latter).
    assert isinstance(err.value, WorkbenchError) and isinstance(err.value, ValueError)


def test_unknown_keys_are_refused_and_listed():
    with pytest.raises(ConfigError, match=r"\['lr'\]"):
        RunConfig.from_dict({"train": {"lr": 0.1}})
    with pytest.raises(ConfigError, match=r"\['extra'\]"):
        RunConfig.from_dict({"extra": 1})
    with pytest.raises(ConfigError, match="JSON object"):
        RunConfig.from_dict(["not", "a", "dict"])


@pytest.mark.parametrize("key", ["token", "HF_TOKEN", "api_key", "password"])
def test_secrets_are_refused(key):
    with pytest.raises(ConfigError, match="credentials") as err:
        RunConfig.from_dict({"model": {"source": "x", key: "hf_abc123"}})
    assert "hf_abc123" not in str(err.value)  # the secret itself is never echoed back


def test_generation_watches_only_loss_or_perplexity():
    with pytest.raises(ConfigError, match="early_stopping_metric"):
        RunConfig.from_dict({"model": {"task": "generation"}, "train": {"early_stopping_metric": "val_accuracy"}})
    cfg = RunConfig.from_dict({"model": {"task": "generation"}, "train": {"early_stopping_metric": "val_perplexity"}})
    assert cfg.train.metric_higher_is_better is False


def test_metric_direction():
    assert TrainConfig(early_stopping_metric="val_accuracy").metric_higher_is_better
    assert TrainConfig(early_stopping_metric="val_f1").metric_higher_is_better
    for lower in ("val_loss", "val_mse", "val_mae", "val_perplexity"):
        assert not TrainConfig(early_stopping_metric=lower).metric_higher_is_better


def test_json_round_trip_is_exact(tmp_path):
    cfg = RunConfig(
        data=DataConfig(train_path="a.csv", text_column="review", augment_ops=["swap"], augment_multiplier=2),
        model=ModelConfig(source="default", method="lora", lora_r=4, lora_targets=["query"]),
        train=TrainConfig(learning_rate=3e-4, batch_size=8, grad_accum=2, max_steps=7, seed=3),
        name="my run",
    )
    text = cfg.to_json()
    back = RunConfig.from_dict(json.loads(text))
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    assert RunConfig.load(path) == cfg
    assert json.loads(text)["train"]["learning_rate"] == 3e-4


def test_load_reports_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="No run config"):
        RunConfig.load(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"train": {"seed": 1,}}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON .* line 1"):
        RunConfig.load(broken)


def test_wrong_type_of_section_is_a_config_error():
    with pytest.raises(ConfigError, match="TrainConfig"):
        RunConfig.from_dict({"train": 5})


def test_config_diff_lists_only_changed_settings():
    a = RunConfig.from_dict({"train": {"learning_rate": 1e-4, "seed": 1}}).to_dict()
    b = RunConfig.from_dict({"train": {"learning_rate": 2e-4, "seed": 1}, "model": {"method": "lora"}}).to_dict()
    diff = config_diff(a, b)
    assert diff == {"train.learning_rate": (1e-4, 2e-4), "model.method": ("full", "lora")}
    assert config_diff(a, a) == {}
    assert config_diff({"x": {"y": 1}}, {"x": {}}) == {"x.y": (1, None)}


def test_field_docs_cover_every_field():
    import dataclasses

    for cls in (DataConfig, ModelConfig, TrainConfig):
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert missing == []
    assert "Peak learning rate" in field_docs(TrainConfig)["learning_rate"]
