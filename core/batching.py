"""Tokenize once, then cut batches: length-grouped with dynamic padding (classification), packed blocks (LM).

Why by hand rather than a DataLoader: the data is already token ids in memory, so worker processes and
per-example collate calls only add overhead; a batch is one tensor fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass
class Encoded:
    """Token ids of one split, unpadded."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: np.ndarray | None  # int64 class ids or float32 targets; None for language modelling
    max_length: int | None = None  # the truncation length: padding never goes beyond it
    token_labels: list[list[int]] | None = None  # per-token LM targets aligned with input_ids (-100: not learned)
    position_ids: list[list[int]] | None = None  # packed rows: positions restart at 0 with each example

    def __len__(self) -> int:
        return len(self.input_ids)

    @cached_property
    def lengths(self) -> np.ndarray:
        """Tokens per row, counted once (the ids never change after encoding): the training loop reads them at
        every step for its real-token counts, and counting 6,920 rows took 0.36 ms each time."""
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def encode_pairs(tokenizer, texts: list[str], pairs: list[str] | None, labels, max_length: int) -> Encoded:
    """Tokenize a classification/regression split in one fast-tokenizer call (no padding)."""
    if not len(texts):  # fast tokenizers fail on an empty batch; an empty split (val_fraction 0) is legitimate
        return Encoded([], [] if pairs is not None else None, None if labels is None else np.asarray(labels))
    out = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
    )
    type_ids = out.get("token_type_ids") if pairs is not None else None
    return Encoded(out["input_ids"], type_ids, None if labels is None else np.asarray(labels), max_length)


def encode_blocks(tokenizer, texts: list[str], block_size: int) -> Encoded:
    """Concatenate documents (separated by EOS) and cut into full blocks: no padding is ever computed."""
    eos = tokenizer.eos_token_id
    if not len(texts):
        return Encoded([], None, None)
    ids = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]
    flat: list[int] = []
    for doc in ids:
        flat.extend(doc)
        if eos is not None:
            flat.append(eos)
    if len(flat) < block_size + 1:
        # A short text still gives one (shorter) block so evaluation and tiny runs work.
        return Encoded([flat] if flat else [], None, None)
    usable = (len(flat) // block_size) * block_size
    arr = np.asarray(flat[:usable], dtype=np.int64).reshape(-1, block_size)
    return Encoded(arr.tolist(), None, None)


def pack(data: Encoded, max_length: int) -> Encoded:
    """Put several labelled examples in each row of at most ``max_length`` tokens (first fit, longest first).

    Positions restart at 0 with each example and no attention mask (nor cache) is passed, so transformers builds
    a block-diagonal causal mask from the positions: no token attends to another example. The loss cannot cross
    either, since every example's first label is -100.
    """
    order = np.argsort(-data.lengths, kind="stable")
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = len(data.input_ids[i])
        slot = next((r for r, room in enumerate(free) if room >= n), None)
        if slot is None:
            rows.append([])
            free.append(max_length)
            slot = len(rows) - 1
        rows[slot].append(int(i))
        free[slot] -= n
    ids, labels, positions = [], [], []
    for members in rows:
        ids.append([t for i in members for t in data.input_ids[i]])
        labels.append([t for i in members for t in data.token_labels[i]])
        positions.append([p for i in members for p in range(len(data.input_ids[i]))])
    return Encoded(ids, None, None, max_length, token_labels=labels, position_ids=positions)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Shuffle, then sort within mega-batches of 50 batches by length, so padding is small but order random.
    (Training batches; a no-grad pass takes ``scoring_batches``.)"""
    n = len(lengths)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    mega = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, n, mega):
        chunk = perm[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


SCORING_BATCH_COST = 50
"""A CPU's fixed cost of one more scoring batch, in padded tokens: MiniLM scored on the short sentences at ~3.6 ms a
batch plus ~71 us a padded token (fitted to whole passes at 16, 32 and 64 rows a batch; bench/README.md)."""


def scoring_batches(lengths: np.ndarray, max_rows: int, multiple: int = 1, batch_cost: float = 0.0) -> list[np.ndarray]:
    """Batches for a no-grad pass, longest rows first: at most ``max_rows`` rows each.

    With ``batch_cost`` 0 the length-sorted rows are cut every ``max_rows``. Otherwise they are cut where the padded
    tokens saved pay for one more batch (``batch_cost`` padded tokens): the cheapest cut, by dynamic programming
    over the sorted rows. Fixed cuts made a 207-row validation subset 7,920 padded tokens for 4,802 real ones (the
    tail's few long rows set the width of 64 shorter ones); these cuts make it 5,576 in 6 batches. On a GPU, where
    a token costs little against a batch, the fixed cuts stay (``batch_cost`` 0).
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    n = len(order)
    if batch_cost <= 0 or n <= 1:
        return [order[i : i + max_rows] for i in range(0, n, max_rows)]
    m = max(multiple, 1)
    widths = -(-np.asarray(lengths)[order] // m) * m  # descending: a batch's first row sets its width
    best = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        lo = max(0, end - max_rows)
        starts = np.arange(lo, end)
        cost = best[lo:end] + (end - starts) * widths[lo:end] + batch_cost
        k = int(np.argmin(cost))
        best[end], cut[end] = cost[k], lo + k
    batches, end = [], n
    while end > 0:
        batches.append(order[cut[end] : end])
        end = int(cut[end])
    return batches[::-1]


def scoring_batch_cost(device) -> float:
    """``scoring_batches``' cost of one more batch on ``device``: on a CPU every padded token costs about as much as
    a real one, so batches are cut where lengths jump; on a GPU a token costs little against a batch (0: fixed cuts)."""
    return SCORING_BATCH_COST if getattr(device, "type", device) == "cpu" else 0.0


def pad_multiple(device, precision: str) -> int:
    """The multiple that batch widths are padded to: 8 under bf16 on a CPU, else 1 (no rounding).

    oneDNN, which runs torch's bf16 matmuls on a CPU, builds and caches a primitive for every distinct shape.
    With dynamic padding a MiniLM run met ~100 widths and its peak RSS grew with each new one (1,900 MB for 1,500
    reviews; 1,354 MB with widths rounded to 8, at the same CPU time per step; 16 cost ~10% more time).
    """
    return 8 if precision == "bf16" and getattr(device, "type", device) == "cpu" else 1


def collate(data: Encoded, index: np.ndarray, pad_id: int, device, multiple: int = 1):
    """Pad the chosen rows to the longest among them (rounded up to ``multiple``, within the truncation length);
    returns model inputs and labels on ``device``."""
    import torch

    rows = [data.input_ids[i] for i in index]
    width = max(len(r) for r in rows)
    if multiple > 1:
        width = max(width, min(-(-width // multiple) * multiple, data.max_length or width))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long) if data.token_type_ids is not None else None
    for j, (row, i) in enumerate(zip(rows, index)):
        ids[j, : len(row)] = torch.as_tensor(row)
        mask[j, : len(row)] = 1
        if types is not None:
            types[j, : len(row)] = torch.as_tensor(data.token_type_ids[i])
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    labels = None
    if data.labels is not None:
        labels = torch.as_tensor(data.labels[index])
    if data.token_labels is not None:
        labels = _pad_rows([data.token_labels[i] for i in index], width, -100)
    if data.position_ids is not None:
        # Packed rows: the positions (a new run of them per example, padding included) make the mask.
        positions = _pad_rows([data.position_ids[i] for i in index], width, None)
        batch = {"input_ids": ids, "position_ids": positions}
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if data.position_ids is not None:
        batch["use_cache"] = False  # transformers reads packed positions only without a cache (see pack)
    return batch, (labels.to(device, non_blocking=True) if labels is not None else None)


def _pad_rows(rows: list[list[int]], width: int, fill: int | None):
    """Rows as one tensor of ``width`` columns; ``fill`` None: pad with positions 0, 1, 2... (a separate example)."""
    import torch

    out = torch.full((len(rows), width), fill if fill is not None else 0, dtype=torch.long)
    for j, row in enumerate(rows):
        out[j, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        if fill is None:
            out[j, len(row) :] = torch.arange(width - len(row))
    return out


def real_tokens(batch) -> int:
    return int(batch["attention_mask"].sum())
