"""Training curves from metrics.jsonl records: train / evaluation tables, display downsampling, overfitting."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MAX_POINTS = 2000


def curve_frames(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, eval): one row per logged step with loss/lr/throughput, one per evaluation with val_* metrics.

    A resumed run logs the steps after its last checkpoint again; the later record of a step wins.
    """
    train = [r for r in records if "event" not in r and "loss" in r]
    evals = [r for r in records if "event" not in r and any(k.startswith("val_") for k in r)]
    return _tidy(train), _tidy(evals)


def _tidy(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=["step", "epoch"])
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        if frame[col].dtype == object:
            # NaN/inf were written as the strings "nan"/"inf" to keep the JSON valid; plot them as gaps.
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame = frame.drop_duplicates(subset="step", keep="last").sort_values("step")
    return frame.reset_index(drop=True)


def downsample(frame: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Evenly spaced rows (first and last kept): a browser draws 2,000 points fast, 200,000 slowly."""
    if len(frame) <= max_points:
        return frame
    index = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[index]


def rising_evaluations(values: list[float]) -> int:
    """How many evaluations in a row, counting back from the latest, were worse (higher) than the one before."""
    count = 0
    clean = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    for earlier, later in zip(clean[-2::-1], clean[::-1]):
        if later > earlier:
            count += 1
        else:
            break
    return count


def overfitting(evals: pd.DataFrame, metric: str = "val_loss", evaluations: int = 2) -> bool:
    """True when validation loss has risen for ``evaluations`` evaluations in a row."""
    if metric not in evals.columns:
        return False
    return rising_evaluations(evals[metric].tolist()) >= evaluations


def start_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest 'start' event (trainable parameters, device, precision, total steps)."""
    starts = [r for r in records if r.get("event") == "start"]
    return starts[-1] if starts else {}
