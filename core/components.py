"""The parts a training run is built from, chosen by its config: seed, model, encoded splits, optimizer, schedule.

The recipe (core.training) and the pre-launch estimate (core.estimate) build a run from the same parts, so the
estimate times what training will do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from core.config import RunConfig
from core.errors import TrainingError
from core.hf import load_transformers

RESTART_CYCLES = 3  # cosine_with_restarts: the learning rate falls to zero and jumps back this many times


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_run_model(config: RunConfig, prepared, runs_root: Path | None):
    """The run's model and tokenizer before any method is applied (shared with the pre-launch estimate)."""
    from core import models, sft

    tc, mc = config.train, config.model
    bundle = models.build_model(
        mc.source,
        mc.task,
        label_names=prepared.label_names,
        train_texts=sft.tokenizer_texts(prepared.train),
        max_length=tc.max_length,
        seed=tc.seed,
        trust_remote_code=mc.trust_remote_code,
        runs_root=runs_root,
        quantize_4bit=mc.method == "qlora",
    )
    bundle.sft = sft.options_for_run(config, prepared) if mc.task == "generation" else None
    if tc.max_length > bundle.max_positions:
        raise TrainingError(
            "error.training.max_length", hint="error.hint.max_length", n=tc.max_length, limit=bundle.max_positions
        )
    return bundle


def encode_split(bundle, frame, task: str, max_length: int):
    """Tokenize a split once: for generation a corpus in packed blocks, prompt/response and chats as labelled
    examples (core.sft); one row per example otherwise.

    Never longer than the model's positions: prefix and prompt tuning take some of them for their virtual tokens
    after the run's max_length was checked (and the defaults set it to all of them)."""
    from core.batching import encode_pairs

    max_length = min(max_length, bundle.max_positions)
    if task == "generation":
        from core.sft import encode_for_run

        return encode_for_run(bundle, frame, max_length)
    pairs = frame["text_pair"].astype(str).tolist() if "text_pair" in frame else None
    dtype = np.float32 if task == "regression" else np.int64
    labels = frame["label"].to_numpy().astype(dtype) if "label" in frame else None
    return encode_pairs(bundle.tokenizer, frame["text"].astype(str).tolist(), pairs, labels, max_length)


def param_groups(model, cfg) -> list[dict[str, Any]]:
    """No weight decay on biases and norm weights (1-D tensors); optional layer-wise LR decay for encoders."""
    n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", 0) or 0
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = cfg.weight_decay if p.ndim >= 2 else 0.0
        scale = 1.0
        if cfg.layerwise_lr_decay < 1.0 and n_layers:
            match = re.search(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.", name)
            if match:
                depth = n_layers - int(match.group(1))
            elif "embed" in name or "wte" in name or "wpe" in name:
                depth = n_layers + 1
            else:
                depth = 0  # head and pooler learn at the full rate
            scale = cfg.layerwise_lr_decay**depth
        groups.setdefault((decay, scale), []).append(p)
    return [{"params": ps, "weight_decay": d, "lr": cfg.learning_rate * s} for (d, s), ps in groups.items()]


def build_optimizer(model, cfg, device):
    import torch

    groups = param_groups(model, cfg)
    if not groups:
        raise TrainingError("error.training.nothing_to_train", hint="error.hint.freeze_fewer")
    # Fused kernels do the whole update in one pass: with small batches the optimizer step over every parameter
    # is a big share of each iteration (bench/README.md, "Measurement history").
    fused = device.type in ("cpu", "cuda") and all(p.dtype == torch.float32 for g in groups for p in g["params"])
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused)
    if cfg.optimizer == "adam":
        # Plain Adam: weight decay is L2 added to the gradient (the classic form), not decoupled.
        return torch.optim.Adam(groups, lr=cfg.learning_rate, fused=fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum)
    load_transformers()
    from transformers.optimization import Adafactor

    return Adafactor(groups, lr=cfg.learning_rate, scale_parameter=False, relative_step=False, warmup_init=False)


def build_scheduler(optimizer, cfg, total_steps: int):
    get_scheduler = load_transformers().get_scheduler

    if cfg.time_budget_min:  # warmup and decay fitted to the steps the budget allows (core/budget.py)
        from core.budget import budgeted_scheduler

        return budgeted_scheduler(optimizer, cfg, total_steps)
    warmup = cfg.warmup_steps or int(round(cfg.warmup_ratio * total_steps))
    if warmup >= total_steps > 1:
        raise TrainingError("error.training.warmup", hint="error.hint.warmup", warmup=warmup, total=total_steps)
    name = "constant_with_warmup" if cfg.schedule == "constant" else cfg.schedule
    # transformers' default is one cycle, which is plain cosine: without this the restarts never happen.
    extra = {"num_cycles": RESTART_CYCLES} if cfg.schedule == "cosine_with_restarts" else None
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=max(total_steps, 1),
        scheduler_specific_kwargs=extra,
    )


def center_regression_head(model, targets: np.ndarray) -> None:
    """Start the regression head at the targets' mean and spread: a fresh head outputs about 0, and targets
    far from 0 (ratings 1-5, prices) otherwise spend the whole run learning one offset."""
    import torch

    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if not head or len(targets) == 0:
        return
    std = float(targets.std()) or 1.0
    with torch.no_grad():
        head[-1].weight.mul_(std)
        if head[-1].bias is not None:
            head[-1].bias.fill_(float(targets.mean()))


def l1_norm(model):
    import torch

    terms = [p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    return torch.stack(terms).sum() if terms else torch.zeros(())
