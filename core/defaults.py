"""Training defaults that learn: one function, shared by the Train page, the Tune page and the CLI.

The defaults depend on what trains. Full fine-tuning of a pretrained encoder wants a small learning rate
(5e-5); adapters (LoRA) start from zero and move a few thousand weights, so they need roughly ten to twenty
times more; prefix and prompt tuning learn only a handful of virtual-token vectors and need more still.
A model trained from scratch (the generation default) needs a large rate and several passes. Bigger models
want smaller rates and batches; small data sets want more passes, so that every run gets enough optimizer
steps for the new head (or the adapters) to learn.

The rates are the usual ranges for each method (LoRA 1e-4 to 1e-3, prefix ~1e-2, prompt tuning ~3e-2), at
their upper end because runs here are short; bench/method_defaults.py measures each on a generated set (figures
in bench/README.md) and tests/unit/test_defaults.py holds every method to "learns with these".
"""

from __future__ import annotations

import math
from typing import Any

# Peak learning rate by method for a pretrained model of up to ~100M parameters.
PRETRAINED_LR = {
    "full": 5e-5,
    "freeze": 1e-4,  # only the top layers and the head move: they can take a larger step
    "lora": 1e-3,  # measured: at 5e-5 a LoRA run on MiniLM stayed at chance (loss 0.693)
    "prefix": 1e-2,
    "prompt": 3e-2,
    "distill": 1e-4,  # a student (often cut to fewer layers) learning from soft targets
}
# Optimizer steps a run should get at least, by method: adapters and virtual tokens need more of them.
MIN_STEPS = {"full": 100, "freeze": 120, "lora": 200, "prefix": 200, "prompt": 200, "distill": 120}
MAX_EPOCHS = {"full": 5, "freeze": 6, "lora": 10, "prefix": 10, "prompt": 10, "distill": 6}
# The tiny GPT-2 default starts from random weights: it learns everything, at a large rate.
SCRATCH_LR = {"full": 1e-3, "freeze": 1e-3, "lora": 3e-3}


def _size_factor(params: int | None) -> float:
    """Scale a small model's learning rate down for bigger models (about 1/sqrt of the size ratio)."""
    if not params or params <= 120e6:
        return 1.0
    return max(0.2, math.sqrt(120e6 / params))


def _epochs(train_rows: int | None, batch_size: int, method: str, default: float = 1.0) -> float:
    """Enough passes for ``MIN_STEPS[method]`` optimizer steps, within 1 and ``MAX_EPOCHS[method]``."""
    if not train_rows:
        return default
    steps_per_epoch = max(1, math.ceil(train_rows / batch_size))
    wanted = math.ceil(MIN_STEPS.get(method, 100) / steps_per_epoch)
    return float(min(MAX_EPOCHS.get(method, 5), max(1, wanted, int(default))))


def recommended_train_settings(
    task: str,
    source: str = "default",
    train_rows: int | None = None,
    *,
    method: str = "full",
    params: int | None = None,
    distill: bool = False,
) -> dict[str, Any]:
    """TrainConfig values that suit this task, method, model size (``params``) and number of training rows.

    ``distill`` is true when a teacher run is chosen (distillation trains like a method of its own).
    Only the fields that differ by case are returned; the rest keep TrainConfig's defaults.
    """
    key = "distill" if distill and task == "classification" else method
    if task == "generation" and source == "default":
        # From scratch: the virtual-token methods are refused for this model (it knows no language yet).
        lr = SCRATCH_LR.get(method, 1e-3)
        batch = 16
        return {
            "learning_rate": lr,
            "warmup_ratio": 0.05,
            "epochs": _epochs(train_rows, batch, "full", default=3.0),
            "max_length": 128,
            "batch_size": batch,
            "schedule": "cosine",
            "weight_decay": 0.1 if method == "full" else 0.0,
        }
    scale = _size_factor(params)
    big = bool(params and params > 300e6)
    if task == "generation":
        batch = 4 if big else 8
        lr = {"full": 5e-5, "freeze": 1e-4, "lora": 2e-4}.get(method, PRETRAINED_LR.get(method, 5e-5))
        return {
            "learning_rate": _round(lr * scale),
            "warmup_ratio": 0.0 if method in ("prefix", "prompt") else 0.05,
            "epochs": _epochs(train_rows, batch, method),
            "max_length": 256,
            "batch_size": batch,
            "schedule": "linear",
            "weight_decay": 0.0 if method in ("prefix", "prompt", "lora") else 0.01,
        }
    batch = 8 if big else 16
    return {
        "learning_rate": _round(PRETRAINED_LR.get(key, 5e-5) * scale),
        "warmup_ratio": 0.06,
        "epochs": _epochs(train_rows, batch, key),
        "max_length": 128,
        "batch_size": batch,
        "schedule": "linear",
        "weight_decay": 0.0 if key == "lora" else 0.01,
    }


SCRATCH_LORA = {"lora_r": 32, "lora_alpha": 64}
"""LoRA on the from-scratch tiny GPT-2: its weights are random, so rank-8 adapters on the attention input alone
(c_attn) can move it only a little (test perplexity 437 of a 4,096-token vocabulary, 3 epochs on stories.txt).
Adapters on every linear layer of the blocks (attention in and out, both MLP layers) with rank 32 and alpha 64 reach
128 with the same rate (3e-3) and epochs (3); at 1e-2 they learnt more slowly (validation loss 6.14 against 5.84
after 12 steps)."""


def recommended_lora(task: str, source: str, candidates: list[str] | None = None) -> dict[str, Any]:
    """ModelConfig values for LoRA that differ from its defaults (rank 8, alpha 16, the attention projections).

    ``candidates``: the model's adaptable layers (``ModelOutline.lora_candidates``). Only the from-scratch
    generation default differs today: a pretrained model adapts well from its attention projections.
    """
    if task == "generation" and source == "default":
        return {**SCRATCH_LORA, **({"lora_targets": list(candidates)} if candidates else {})}
    return {}


def train_rows_after_split(rows: int | None, val_fraction: float, test_fraction: float) -> int | None:
    """Training rows left of ``rows`` once the validation and test shares are held out (None if unknown)."""
    if not rows:
        return None
    return max(1, int(rows * (1 - val_fraction - test_fraction)))


def defaults_for(
    task: str,
    source: str,
    train_rows: int | None,
    *,
    method: str = "full",
    outline=None,
    distill: bool = False,
) -> dict[str, Any]:
    """The Train page's and the CLI's defaults from the same facts: task, source, method, rows and the model.

    ``outline`` is the model's ``core.inference.ModelOutline`` (its size and longest input), or None where it
    could not be read; ``core.inference.model_outline`` gets it for the CLI, the page has it already.
    """
    params = getattr(outline, "parameters", None)
    settings = recommended_train_settings(task, source, train_rows, method=method, params=params, distill=distill)
    positions = getattr(outline, "max_positions", None)
    if positions:
        settings["max_length"] = min(settings["max_length"], positions)
    if train_rows and task != "generation":
        # About 40 points on the live curve: a 20-step run logs every step, a long one every 10.
        steps = train_rows / settings["batch_size"] * settings["epochs"]
        from core.config import TrainConfig

        settings["log_every"] = int(min(max(steps // 40, 1), TrainConfig.log_every))
    return settings


def _round(lr: float) -> float:
    """Two significant digits: 3.7e-05, not 3.6742346e-05, in the form and in config.json."""
    return float(f"{lr:.2g}")
