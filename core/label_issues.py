"""Label-error finder: rows whose given label a model trained without them confidently disagrees with.

How, and why this way:
1. Every row gets an embedding from the frozen sentence encoder (the default MiniLM, mean-pooled), computed
   once. Fine-tuning k transformers (one per fold) would cost k - 1 epochs of training over the whole set; one
   frozen forward pass over the rows has no backward pass and no optimizer step, and a logistic regression per
   fold then fits in about a second. Confident learning only needs probabilities that are roughly calibrated
   and honest (out of fold), not the best possible classifier. (Figures: bench/README.md.)
2. The rows are cut into k folds with the hyperparameter search's own fold assignment
   (``core.search.fold_splits``: stratified when every class has k rows); each fold's rows are predicted by a
   model fitted on the other folds, so no row is judged by a model that saw its label.
3. cleanlab's ``find_label_issues`` (confident learning: per-class thresholds from the average self-confidence,
   the confident joint, prune by noise rate) picks the suspect rows; cleanlab's label-quality score ranks
   them. cleanlab is the method's reference implementation, well kept and tested; writing our own copy would
   only add code to maintain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError

DEFAULT_FOLDS = 5
Progress = Callable[[str, int, int], None]


@dataclass
class LabelIssue:
    """One flagged row; ``row`` counts data rows of the file from 1 (the header is not a row)."""

    row: int
    text: str
    given_label: str
    suggested_label: str
    score: float
    """cleanlab's label quality: the out-of-fold probability of the given label (low: likely wrong)."""
    confidence: float
    """Out-of-fold probability of the suggested label."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LabeledRows:
    """The usable rows of a file: texts, labels as class ids, and where each row sits in the file."""

    frame: pd.DataFrame  # the whole file as read
    text_column: str
    label_column: str
    positions: np.ndarray  # file row index (0-based) of each usable row
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]


def read_labeled(path: str | Path, text_column: str | None = None, label_column: str | None = None) -> LabeledRows:
    """Read a classification file; rows without a text or a label are left out (and are never flagged)."""
    from core.data import guess_columns, label_keys, read_table

    table = read_table(path)
    frame = table.frame
    guess = guess_columns(frame, "classification")
    text_col, label_col = text_column or guess.text, label_column or guess.label
    for role, col in (("text", text_col), ("label", label_col)):
        if not col or col not in frame.columns:
            raise DataError(
                f"There is no {role} column '{col}' in {table.path.name}.",
                hint=f"Available columns: {', '.join(map(str, frame.columns))}.",
            )
    texts = frame[text_col].fillna("").astype(str).str.strip()
    keys = label_keys(frame[label_col])
    usable = (texts != "") & keys.notna()
    names = sorted(keys[usable].unique())
    if len(names) < 2:
        raise DataError(
            f"{table.path.name} has fewer than two classes in '{label_col}'.", hint="Pick the label column."
        )
    ids = keys[usable].map({n: i for i, n in enumerate(names)}).to_numpy(dtype=np.int64)
    return LabeledRows(
        frame, text_col, label_col, np.flatnonzero(usable.to_numpy()), texts[usable].tolist(), ids, names
    )


def embed_texts(
    texts: list[str],
    source: str = "default",
    *,
    max_length: int = 128,
    batch_size: int = 64,
    progress: Progress | None = None,
):
    """Mean-pooled, L2-normalised sentence embeddings from a frozen encoder (no gradient, no head).

    ``progress("embedding", rows done, rows)`` is called after every batch."""
    import torch

    from core import models
    from core.batching import collate, encode_pairs, scoring_batch_cost, scoring_batches
    from core.device import autocast, resolve_device, resolve_precision
    from core.hf import load_transformers

    transformers = load_transformers()
    models.quiet_transformers()
    path = models.minilm_path() if source == "default" else models.resolve_source(source)[0]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    encoder = transformers.AutoModel.from_pretrained(path).eval()
    dev = resolve_device("cpu")
    precision = resolve_precision("auto", dev)
    data = encode_pairs(tokenizer, texts, None, None, max_length)
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    done = 0
    with torch.inference_mode(), autocast(dev, precision):
        for index in scoring_batches(data.lengths, batch_size, 1, scoring_batch_cost(dev)):
            batch, _ = collate(data, index, tokenizer.pad_token_id or 0, dev)
            hidden = encoder(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out[index] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            done += len(index)
            if progress is not None:
                progress("embedding", done, len(texts))
    return out


def out_of_fold_probabilities(
    features: np.ndarray, labels: np.ndarray, folds: int, seed: int = 0, progress: Progress | None = None
) -> np.ndarray:
    """Each row's class probabilities from a logistic regression fitted on the other folds
    (``progress("folds", folds fitted, folds)`` after each)."""
    from sklearn.linear_model import LogisticRegression

    from core.search import fold_splits

    k = int(labels.max()) + 1
    probs = np.zeros((len(labels), k))
    splits = fold_splits(labels, folds, seed, stratify=True)
    for done, (fit, held) in enumerate(splits, start=1):
        model = LogisticRegression(max_iter=1000, C=10.0).fit(features[fit], labels[fit])
        # A fold's training part may lack a rare class: its column stays 0 for those rows.
        probs[np.ix_(held, model.classes_)] = model.predict_proba(features[held])
        if progress is not None:
            progress("folds", done, len(splits))
    return probs


def rank_issues(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged row indices, worst first; every row's label-quality score), by cleanlab's confident learning."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    return np.asarray(flagged, dtype=np.int64), get_label_quality_scores(labels, probs)


def find_label_issues(
    path: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    folds: int = DEFAULT_FOLDS,
    source: str = "default",
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[LabeledRows, list[LabelIssue]]:
    """The usable rows of a file and its flagged rows, the most likely wrong first.

    ``progress(stage, done, total)`` reports the rows embedded ("embedding") and the folds fitted ("folds"); a
    background check (core.label_check) shows it and may raise from it to cancel."""
    if not 2 <= folds <= 20:
        raise DataError("Folds must be between 2 and 20.", hint="5 is a good default.")
    rows = read_labeled(path, text_column, label_column)
    counts = np.bincount(rows.labels)
    if len(rows.labels) < 2 * folds or counts.min() < 2:
        raise DataError(
            f"Too few rows to cross-check the labels: {len(rows.labels)} rows, the smallest class has {counts.min()}.",
            hint="Each class needs at least 2 rows, and the file at least twice as many rows as folds.",
        )
    features = embed_texts(rows.texts, source, progress=progress)
    probs = out_of_fold_probabilities(features, rows.labels, folds, seed, progress)
    flagged, quality = rank_issues(rows.labels, probs)
    issues = [
        LabelIssue(
            row=int(rows.positions[i]) + 1,
            text=rows.texts[i],
            given_label=rows.label_names[rows.labels[i]],
            suggested_label=rows.label_names[int(probs[i].argmax())],
            score=round(float(quality[i]), 4),
            confidence=round(float(probs[i].max()), 4),
        )
        for i in flagged
    ]
    return rows, issues


def apply_review(frame: pd.DataFrame, label_column: str, relabel: dict[int, str], drop: list[int]) -> pd.DataFrame:
    """The file's rows after the user's review: ``relabel`` maps row numbers (from 1) to new labels, ``drop``
    lists row numbers to remove. Other rows and columns are untouched."""
    out = frame.copy()
    bad = [r for r in [*relabel, *drop] if not 1 <= r <= len(frame)]
    if bad:
        raise DataError(f"Row {bad[0]} is not in the file ({len(frame)} rows).")
    numeric = pd.api.types.is_numeric_dtype(out[label_column])
    for row, label in relabel.items():
        # Suggested labels are class names ('1'); a column of numbers keeps numbers.
        value = _as_number(label) if numeric else label
        if numeric and value is None:
            out[label_column] = out[label_column].astype(object)
            numeric, value = False, label
        out.iat[row - 1, out.columns.get_loc(label_column)] = value
    return out.drop(index=out.index[[r - 1 for r in drop]]).reset_index(drop=True)


def _as_number(label: str) -> float | int | None:
    try:
        value = float(label)
    except (TypeError, ValueError):
        return None
    return int(value) if value.is_integer() else value
