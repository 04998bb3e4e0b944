"""When to validate during training, and on which rows: a curve of 8 to 10 points for at most ~10% of the time.

Evaluating once per epoch gave a one-epoch run a single validation point, at the very end: no curve, no
overfitting warning, nothing for early stopping to watch. Here the interval comes from the run's length
(8 to ``POINTS`` evaluations per run, whatever its size), and the rows scored during training are a fixed,
capped subset of the validation split, sized so that all the evaluations together cost at most
``EVAL_SHARE`` of the training compute. The full validation split (and the test split) is scored at the end.
"""

from __future__ import annotations

import math

import numpy as np

POINTS = 10
"""Most evaluations per run when the user sets no interval, the last step included (8 to 10 in practice)."""
EVAL_SHARE = 0.10
"""Share of the training compute that evaluations during training may take."""
TRAIN_COST = 3.0
"""A training example costs about three forward passes (forward + backward); an evaluated one costs one."""
MIN_ROWS = 32
"""Below this a validation loss is mostly noise: a tiny run pays a little more for a readable curve."""
MAX_ROWS = 1000
"""Beyond this the estimate barely improves; the full split is scored at the end anyway."""


def evaluation_interval(eval_every: int, total_steps: int) -> int:
    """Optimizer steps between validations: the user's ``eval_every``, or at most ``POINTS`` per run.

    ceil(total / POINTS) steps apart, plus the last step, gives 8 to 10 points for most lengths (a 21-step run
    gets 7, an 11-step one 6: no even spacing gives them 8 to 10)."""
    if eval_every:
        return eval_every
    return max(1, math.ceil(total_steps / POINTS))


def subset_size(validation_rows: int, train_examples: int, evaluations: int) -> int:
    """Rows to score at each evaluation so that ``evaluations`` of them cost at most EVAL_SHARE of training."""
    affordable = EVAL_SHARE * TRAIN_COST * train_examples / max(evaluations, 1)
    return int(min(validation_rows, MAX_ROWS, max(MIN_ROWS, affordable)))


def subset_index(validation_rows: int, size: int, seed: int) -> np.ndarray:
    """A fixed sample of row positions (sorted), the same for every evaluation of the run and on resume."""
    if size >= validation_rows:
        return np.arange(validation_rows)
    return np.sort(np.random.default_rng(seed).choice(validation_rows, size=size, replace=False))


def validation_rows(rows: int, train_cfg, total_steps: int, interval: int) -> np.ndarray | None:
    """Positions of the validation rows scored during training; None when that is the whole split."""
    examples = total_steps * train_cfg.batch_size * train_cfg.grad_accum
    evaluations = math.ceil(total_steps / max(interval, 1))
    size = subset_size(rows, examples, evaluations)
    return None if size >= rows else subset_index(rows, size, train_cfg.seed)


def validation_subset(data, train_cfg, total_steps: int, interval: int):
    """The encoded validation split cut to the rows scored during training (the whole split if it is small)."""
    index = validation_rows(len(data), train_cfg, total_steps, interval)
    return data if index is None else rows_subset(data, index)


def rows_subset(data, index: np.ndarray):
    """The rows of an encoded split at ``index`` (positions), with their labels."""
    from core.batching import Encoded

    return Encoded(
        [data.input_ids[i] for i in index],
        None if data.token_type_ids is None else [data.token_type_ids[i] for i in index],
        None if data.labels is None else data.labels[index],
        data.max_length,
    )


def checkpoint_interval(train_cfg, eval_interval: int, steps_per_epoch: int) -> int:
    """Steps between checkpoints: the user's ``save_every``; at each evaluation when the user chose the evaluation
    interval or early stopping is on (the best one must be on disk to be kept); otherwise about once per epoch,
    on an evaluated step.

    Saving at each of the 8-10 automatic evaluations would cost more than the evaluations themselves: a MiniLM
    checkpoint (weights and optimizer state, ~270 MB) takes about as long as ten training steps on a CPU.
    """
    if train_cfg.save_every:
        return train_cfg.save_every
    if train_cfg.eval_every or train_cfg.early_stopping_patience:
        return eval_interval
    return eval_interval * max(1, round(steps_per_epoch / eval_interval))
