"""One no-grad pass of a model over an encoded split: the loss and the outputs, for evaluation and prediction.

Used by evaluation (scores and metrics), generation (class probabilities) and the training loop (validation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SplitScores:
    """What one pass over a split gives: mean loss and the model's outputs."""

    loss: float
    logits: np.ndarray | None = None  # (n, k) for classification/regression, in dataset order
    tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def rows_of(scores: SplitScores, index: np.ndarray, labels: np.ndarray, task: str) -> SplitScores:
    """The scores of the rows at ``index`` of a classification or regression pass: their outputs, and their mean
    loss recomputed from those outputs with the pass's own loss (the pass's loss is the mean over all rows)."""
    import torch
    import torch.nn.functional as F

    logits = scores.logits[index]
    outputs, target = torch.from_numpy(logits), torch.from_numpy(labels[index])
    if task == "regression":
        loss = F.mse_loss(outputs[:, 0], target.float())
    else:
        loss = F.cross_entropy(outputs, target)
    return SplitScores(float(loss), logits)


def score_encoded(
    model, data, task: str, *, batch_size: int, pad_id: int, device, precision: str, stop=None, fast_path: bool = True
):
    """One no-grad pass over an encoded split. Batches are sorted by length (least padding), results reordered.

    Returns None when ``stop`` is set midway. The model is left in the train/eval mode it was found in.
    ``fast_path`` False scores a language model with its own loss (the run's fast-path switch reaches here too).
    """
    if len(data) == 0:
        return SplitScores(float("nan"))
    was_training = model.training
    model.eval()
    try:
        return _score(model, data, task, batch_size, pad_id, device, precision, stop, fast_path)
    finally:
        model.train(was_training)  # the mode it found: training mid-run, eval for a loaded model


def _score(model, data, task: str, batch_size: int, pad_id: int, device, precision: str, stop, fast_path: bool):
    import torch
    import torch.nn.functional as F

    from core.batching import collate, pad_multiple, scoring_batch_cost, scoring_batches
    from core.device import autocast
    from core.fastpath import bf16_twin, language_model_loss

    total_loss, total_n, tokens = 0.0, 0, 0
    outputs = [None] * len(data)
    # On a CPU at bf16 the fast path scores a bf16 copy of the model, which needs no autocast (fastpath.bf16_twin).
    scored = bf16_twin(model, device=device, precision=precision) if fast_path else model
    context = autocast(device, precision if scored is model else "fp32")
    model = scored
    multiple = pad_multiple(device, precision)
    with torch.inference_mode(), context:
        for index in scoring_batches(data.lengths, batch_size, multiple, scoring_batch_cost(device)):
            if stop is not None and stop.is_set():
                return None
            batch, labels = collate(data, index, pad_id, device, multiple)
            if task == "generation":
                loss = language_model_loss(model, batch, labels, fast=fast_path)  # the same computation as training's
                learned = labels[:, 1:] != -100 if labels is not None else batch["attention_mask"][:, 1:]
                n = int(learned.sum())
                total_loss += float(loss) * n
                total_n += n
                tokens += n
                continue
            logits = model(**batch).logits.float()
            if task == "regression":
                loss = F.mse_loss(logits.squeeze(-1), labels.float(), reduction="sum")
            else:
                loss = F.cross_entropy(logits, labels, reduction="sum")
            total_loss += float(loss)
            total_n += len(index)
            for row, i in zip(logits.cpu().numpy(), index):
                outputs[i] = row
    logits = np.stack(outputs) if task != "generation" else None
    return SplitScores(total_loss / max(total_n, 1), logits, tokens)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
