"""The pre-launch estimate on the tiny BERT: parameter counts per method, memory and timed steps."""

from __future__ import annotations

import dataclasses
import math

import pytest

from core.config import RunConfig
from core.errors import TrainingError
from core.estimate import estimate_run
from tests.conftest import tiny_run_config


def _with_model(cfg: RunConfig, **model) -> RunConfig:
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model))


def test_full_lora_and_freeze_counts_and_epoch_time(toy_csv, tiny_bert_dir, workspace):
    cfg = tiny_run_config(toy_csv, tiny_bert_dir, batch_size=8, grad_accum=2)
    full = estimate_run(cfg, timed_steps=1)
    assert full.trainable_params == full.total_params > 100_000
    # 240 rows, 10% validation and 10% test held out -> 192 training rows; batch 8 x accumulation 2.
    assert full.train_examples == 192
    assert full.steps_per_epoch == math.ceil(math.ceil(192 / 8) / 2)
    assert full.seconds_per_step > 0 and math.isfinite(full.seconds_per_step)  # how long is bench's to say
    assert full.seconds_per_epoch == pytest.approx(full.seconds_per_step * full.steps_per_epoch)
    assert full.samples_per_s == pytest.approx(16 / full.seconds_per_step)
    assert full.memory_gb > full.total_params * 4 / 2**30  # at least the fp32 weights
    assert not full.memory_measured and full.device == "cpu" and full.precision == "fp32"

    lora = estimate_run(_with_model(cfg, method="lora", lora_r=4), timed_steps=1)
    assert 0 < lora.trainable_params < full.trainable_params / 10
    assert lora.total_params > full.total_params  # the adapters are added on top
    assert lora.memory_gb < full.memory_gb  # no gradients or optimizer state for frozen weights

    frozen = estimate_run(_with_model(cfg, method="freeze", freeze_embeddings=True, freeze_layers=1), timed_steps=1)
    assert lora.trainable_params < frozen.trainable_params < full.trainable_params / 2  # embeddings dominate

    wide = estimate_run(tiny_run_config(toy_csv, tiny_bert_dir, batch_size=32), timed_steps=1)
    assert wide.memory_gb > full.memory_gb  # activations grow with the examples per forward pass
    assert wide.steps_per_epoch == math.ceil(192 / 32)


def test_too_long_max_length_is_a_clear_error(toy_csv, tiny_bert_dir, workspace):
    # The tiny BERT has 128 positions.
    with pytest.raises(TrainingError, match="above this model's limit of 128"):
        estimate_run(tiny_run_config(toy_csv, tiny_bert_dir, max_length=256), timed_steps=1)
