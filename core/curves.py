"""Training curves from metrics.jsonl records: train / evaluation tables, display downsampling, overfitting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.events import read_jsonl

MAX_POINTS = 2000


def curve_frames(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, eval): one row per logged step with loss/lr/throughput, one per evaluation with val_* metrics.

    A resumed run logs the steps after its last checkpoint again; the later record of a step wins.
    """
    # Only records a chart can place: an object with a numeric step (a hand-edited or damaged line is skipped).
    points = [r for r in records if isinstance(r, dict) and "event" not in r and _is_number(r.get("step"))]
    train = [r for r in points if "loss" in r]
    evals = [r for r in points if any(str(k).startswith("val_") for k in r)]
    return _tidy(train), _tidy(evals)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def downsample(frame: pd.DataFrame, max_points: int = MAX_POINTS, keep: str = "loss") -> pd.DataFrame:
    """At most ``max_points`` rows: the first, the last, and in each of evenly cut stretches the rows with the lowest
    and the highest ``keep`` (so the best loss and a spike survive, where evenly spaced rows could skip them).

    A browser draws 2,000 points fast, 200,000 slowly; a chart a few hundred pixels wide shows no more than this.
    """
    n = len(frame)
    if n <= max_points:
        return frame
    if keep not in frame.columns or max_points < 6:
        index = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
        return frame.iloc[index]
    values = pd.to_numeric(frame[keep], errors="coerce").to_numpy(dtype=float)
    stretches = (max_points - 2) // 2
    edges = np.linspace(1, n - 1, stretches + 1).round().astype(int)  # the rows between the first and the last
    picks = [0, n - 1]
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = values[lo:hi]
        if not len(part):
            continue
        if np.isnan(part).all():  # a stretch of gaps (NaN losses): one row marks it
            picks.append(lo)
            continue
        picks += [lo + int(np.nanargmin(part)), lo + int(np.nanargmax(part))]
    return frame.iloc[np.unique(picks)]


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
    starts = [r for r in records if isinstance(r, dict) and r.get("event") == "start"]
    return starts[-1] if starts else {}


class CurveFeed:
    """One run's metrics, read incrementally and shared by every page that shows the run (one feed per run).

    Ten open pages used to read the same new lines and build the same tables ten times per refresh, each in
    the server's Python. A feed reads the file at most once per ``min_interval`` seconds and gives every
    viewer in that window the same snapshot, numbered by ``version``, so anything built from a snapshot (the
    tables, the figures) can be built once per version and reused by all of them.

    ``clock`` is what the throttle reads (``time.monotonic`` unless a test sets the class attribute to a clock
    it advances by hand, so whether a read happens never depends on how fast the test ran).
    """

    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, path: Path, min_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.min_interval = min_interval
        self.version = 0
        self._lock = threading.Lock()
        self._offset = 0
        self._records: list[dict[str, Any]] = []
        self._read_at = -float("inf")
        self._frames: tuple[int, pd.DataFrame, pd.DataFrame] | None = None

    def snapshot(self, fresh: bool = False) -> tuple[int, list[dict[str, Any]]]:
        """(version, records). A snapshot's list is never changed afterwards: new lines make a new list.

        ``fresh`` reads the file now (a run that has ended gets no later refresh to pick up its last lines).
        """
        with self._lock:
            now = self.clock()
            if fresh or now - self._read_at >= self.min_interval:
                self._read_at = now
                try:
                    size = self.path.stat().st_size
                except OSError:
                    size = 0
                if size < self._offset:  # the file was replaced (a run folder deleted and made again): start over
                    self._offset, self._records, self.version = 0, [], self.version + 1
                new, self._offset = read_jsonl(self.path, self._offset)
                if new:
                    self._records = self._records + new
                    self.version += 1
            return self.version, self._records

    def frames(self, fresh: bool = False) -> tuple[int, list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
        """(version, records, train table, eval table), the tables built once per version."""
        version, records = self.snapshot(fresh)
        with self._lock:
            if self._frames is None or self._frames[0] != version:
                self._frames = (version, *curve_frames(records))
            _, train, evals = self._frames
        return version, records, train, evals
