"""Validation during training by default: 8 to 10 points per run, on a fixed capped subset."""

from __future__ import annotations

import numpy as np
import pytest

from core.batching import Encoded
from core.config import TrainConfig
from core.evalplan import (
    EVAL_SHARE,
    MAX_ROWS,
    MIN_ROWS,
    TRAIN_COST,
    checkpoint_interval,
    evaluation_interval,
    subset_index,
    subset_size,
    validation_rows,
    validation_subset,
)


@pytest.mark.parametrize("total", [10, 31, 44, 100, 433, 5000, 123_457])
def test_a_run_of_any_length_gets_eight_to_ten_points(total):
    interval = evaluation_interval(0, total)
    points = len(set(range(interval, total + 1, interval)) | {total})  # the loop also scores the last step
    assert 8 <= points <= 10, (total, interval, points)
    assert all(7 <= len(set(range(i := evaluation_interval(0, t), t + 1, i)) | {t}) <= 10 for t in range(13, 3000))


def test_a_very_short_run_evaluates_every_step_and_the_users_interval_wins():
    assert evaluation_interval(0, 3) == 1
    assert evaluation_interval(7, 5000) == 7


def test_subset_costs_at_most_a_tenth_of_training_and_is_capped():
    # A one-epoch run on 5,536 rows (batch 16): nine evaluations of the subset vs three forward passes per row.
    size = subset_size(validation_rows=692, train_examples=5536, evaluations=9)
    assert size * 9 <= EVAL_SHARE * TRAIN_COST * 5536
    assert size >= 150  # still a readable curve
    assert subset_size(50_000, 10_000_000, 9) == MAX_ROWS
    assert subset_size(20, 10_000, 9) == 20  # a small split is scored whole
    assert subset_size(500, 100, 9) == MIN_ROWS  # a tiny run pays a little more for a curve worth reading


def test_the_subset_is_fixed_and_keeps_labels_with_their_texts():
    assert (subset_index(1000, 50, seed=3) == subset_index(1000, 50, seed=3)).all()
    assert len(set(subset_index(1000, 50, seed=3).tolist())) == 50
    data = Encoded([[i, i] for i in range(400)], None, np.arange(400), 32)
    cut = validation_subset(data, TrainConfig(batch_size=4, seed=1), total_steps=10, interval=2)
    assert len(cut) == MIN_ROWS
    assert [ids[0] for ids in cut.input_ids] == cut.labels.tolist()  # rows and labels cut alike
    whole = validation_subset(data, TrainConfig(batch_size=64), total_steps=1000, interval=100)
    assert whole is data  # 64,000 examples trained: 400 rows are affordable at every evaluation


def test_checkpoints_stay_about_once_per_epoch_unless_evaluations_must_be_kept():
    auto = TrainConfig()
    assert checkpoint_interval(auto, eval_interval=10, steps_per_epoch=100) == 100  # not at all ten evaluations
    assert checkpoint_interval(auto, eval_interval=12, steps_per_epoch=100) == 96  # on an evaluated step
    assert checkpoint_interval(auto, eval_interval=30, steps_per_epoch=10) == 30
    assert checkpoint_interval(TrainConfig(early_stopping_patience=2), 10, 100) == 10  # the best must be on disk
    assert checkpoint_interval(TrainConfig(eval_every=5), 5, 100) == 5  # as documented before: at each evaluation
    assert checkpoint_interval(TrainConfig(save_every=7), 10, 100) == 7


def test_validation_rows_are_the_subsets_rows():
    data = Encoded([[i, i] for i in range(400)], None, np.arange(400), 32)
    rows = validation_rows(len(data), TrainConfig(batch_size=4, seed=1), total_steps=10, interval=2)
    assert rows is not None and len(rows) == MIN_ROWS
    cut = validation_subset(data, TrainConfig(batch_size=4, seed=1), total_steps=10, interval=2)
    assert cut.labels.tolist() == rows.tolist()  # the subset is exactly those rows, in order
    assert validation_rows(len(data), TrainConfig(batch_size=64), total_steps=1000, interval=100) is None


def test_rows_of_a_pass_give_the_loss_those_rows_give_alone():
    """The last validation scores the whole split once; the curve's point is its subset's rows, whose mean loss is
    recomputed from their outputs: the same as a pass over those rows alone (torch's losses on the same logits)."""
    import torch
    import torch.nn.functional as F

    from core.scoring import SplitScores, rows_of

    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(50, 3)) * 8).astype(np.float32)  # large logits: the log-sum-exp must not overflow
    labels = rng.integers(0, 3, size=50)
    whole = SplitScores(float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))), logits)
    index = np.array([1, 4, 9, 30, 49])
    part = rows_of(whole, index, labels, "classification")
    expected = F.cross_entropy(torch.from_numpy(logits[index]), torch.from_numpy(labels[index]))
    assert part.loss == pytest.approx(float(expected), rel=1e-6)
    assert part.loss != pytest.approx(whole.loss, rel=1e-3)
    assert (part.logits == logits[index]).all()

    targets = rng.normal(size=50).astype(np.float32)
    outputs = rng.normal(size=(50, 1)).astype(np.float32)
    part = rows_of(SplitScores(0.0, outputs), index, targets, "regression")
    expected = F.mse_loss(torch.from_numpy(outputs[index, 0]), torch.from_numpy(targets[index]))
    assert part.loss == pytest.approx(float(expected), rel=1e-6)
