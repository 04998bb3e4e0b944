"""Batches: widths rounded for bf16 on a CPU (bounds oneDNN's primitive cache) without changing what the model sees."""

from __future__ import annotations

import numpy as np
import torch

from core.batching import Encoded, collate, encode_pairs, pad_multiple, scoring_batch_cost, scoring_batches


def test_pad_multiple_only_rounds_bf16_on_a_cpu():
    assert pad_multiple(torch.device("cpu"), "bf16") == 8
    assert pad_multiple(torch.device("cpu"), "fp32") == 1
    assert pad_multiple(torch.device("cuda"), "bf16") == 1


def test_scoring_batches_are_cut_at_length_jumps_only_on_a_cpu():
    assert scoring_batch_cost(torch.device("cpu")) > 0
    assert scoring_batch_cost(torch.device("cuda")) == 0  # fixed cuts: a token costs little there


def test_collate_rounds_the_width_up_within_the_truncation_length():
    data = Encoded([[5] * 3, [6] * 9, [7] * 19], None, np.array([0, 1, 0]), max_length=20)
    batch, labels = collate(data, np.array([0, 1]), 0, "cpu", multiple=8)
    assert batch["input_ids"].shape == (2, 16) and labels.tolist() == [0, 1]
    assert batch["attention_mask"].sum(1).tolist() == [3, 9]  # the extra columns are padding, masked out
    assert (batch["input_ids"][1, 9:] == 0).all()
    wide, _ = collate(data, np.array([2]), 0, "cpu", multiple=8)
    assert wide["input_ids"].shape == (1, 20)  # 24 would pass the truncation length: capped there
    plain, _ = collate(data, np.array([0, 1]), 0, "cpu")
    assert plain["input_ids"].shape == (2, 9)  # no rounding asked: the longest row


def test_rounded_padding_gives_the_same_logits(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2).eval()
    data = encode_pairs(tok, ["a short one", "a somewhat longer sentence than the first"], None, [0, 1], 64)
    index = np.array([0, 1])
    with torch.inference_mode():
        exact = model(**collate(data, index, tok.pad_token_id, "cpu")[0]).logits
        rounded_batch = collate(data, index, tok.pad_token_id, "cpu", multiple=16)[0]
        rounded = model(**rounded_batch).logits
    assert rounded_batch["input_ids"].shape[1] == 16 > data.lengths.max()
    assert torch.allclose(exact, rounded, atol=1e-5)


def test_row_lengths_are_counted_once_per_split():
    """The loop reads a split's lengths at every step: they are counted once, and right."""
    data = Encoded([[1, 2, 3], [4], [5, 6]], None, None)
    assert data.lengths.tolist() == [3, 1, 2]
    assert data.lengths is data.lengths


def _padded(lengths: np.ndarray, batches, multiple: int) -> int:
    return sum(len(b) * -(-int(lengths[b].max()) // multiple) * multiple for b in batches)


def test_scoring_batches_cut_where_lengths_jump_and_cover_every_row_once():
    rng = np.random.default_rng(0)
    # Many short rows and a thin tail of long ones, as real sentences are: fixed cuts of 64 give the longest 64 rows
    # the tail's width.
    lengths = np.concatenate([rng.integers(8, 30, 190), rng.integers(40, 61, 17)])
    fixed = scoring_batches(lengths, 64, 8)
    cut = scoring_batches(lengths, 64, 8, batch_cost=50)
    assert [len(b) for b in fixed] == [64, 64, 64, 15]  # no cost: the plain cuts, longest first
    for batches in (fixed, cut):
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
        assert all(0 < len(b) <= 64 for b in batches)
    saved = _padded(lengths, fixed, 8) - _padded(lengths, cut, 8)
    assert saved > 50 * (len(cut) - len(fixed))  # every extra batch paid for itself in padded tokens
    assert _padded(lengths, cut, 8) < 0.85 * _padded(lengths, fixed, 8)


def test_scoring_batches_keep_full_batches_when_lengths_are_alike():
    lengths = np.full(200, 24)
    assert sorted(len(b) for b in scoring_batches(lengths, 64, 8, batch_cost=50)) == [8, 64, 64, 64]  # as few as fit
    assert scoring_batches(np.array([], dtype=np.int64), 64, 8, batch_cost=50) == []
