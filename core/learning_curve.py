"""Would more data help? Train on 10/25/50/100% of the training split, score each on the same validation set.

Each share is a one-trial search run by the search runner (core.search.run_search): every point is a normal
run in the RunStore, started through the JobRegistry (one job per device), stoppable, shown on the Runs page.
The subsets are nested (each holds the smaller ones), so the curve measures the data, not a reshuffle. The
curve lives in workspace/curves/<id>/curve.json, rewritten after each point, so a page can re-attach.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from core.config import RunConfig, TrainConfig
from core.errors import WorkbenchError
from core.i18n import message, t
from core.runs import atomic_write_text, default_workspace

FRACTIONS = (0.1, 0.25, 0.5, 1.0)
HELPS = "more data would likely help"  # how the English readings begin (insight.curve.*)
PLATEAU = "the model has plateaued"
# The last doubling of the data must still buy this much to call the curve rising: one point of accuracy
# (or F1), or 2% of the loss.
MIN_GAIN_SCORE = 0.01
MIN_GAIN_LOSS = 0.02


def curve_message(rows: list[int], scores: list[float], metric: str = "val_accuracy") -> dict[str, Any]:
    """One sentence, as a message (key + parameters): does the score still improve over the last step in data,
    or has it levelled off?

    A pure function of the points, so it is tested on crafted curves. The judgement is the gain between the
    last two points: compared with a fixed small amount (an accuracy point, or 2% of a loss), and with the
    gain over the whole curve (a curve that gained 20 points and then 1 has plateaued).
    """
    points = [(r, s) for r, s in zip(rows, scores) if isinstance(s, (int, float)) and math.isfinite(s)]
    if len(points) < 2:
        return message("insight.curve.too_few")
    points.sort()
    higher = TrainConfig(early_stopping_metric=metric).metric_higher_is_better
    sign = 1.0 if higher else -1.0
    first, before, last = points[0][1], points[-2][1], points[-1][1]
    gain_last, gain_all = sign * (last - before), sign * (last - first)
    needed = MIN_GAIN_SCORE if higher else MIN_GAIN_LOSS * abs(before)
    figures = {
        "metric": metric.removeprefix("val_"),
        "before": float(before),
        "last": float(last),
        "rows_before": int(points[-2][0]),
        "rows_last": int(points[-1][0]),
    }
    if gain_last >= needed and gain_last >= 0.2 * max(gain_all, 0.0):
        return message("insight.curve.helps", **figures)
    return message("insight.curve.plateau", **figures)


def curve_reading(rows: list[int], scores: list[float], metric: str = "val_accuracy", lang: str | None = None) -> str:
    """The curve's reading in ``lang`` (default: the environment's)."""
    msg = curve_message(rows, scores, metric)
    return t(msg["message_code"], lang, **msg["message_params"])


def write_subsets(base: RunConfig, folder: Path, fractions=FRACTIONS, seed: int = 0):
    """Nested training subsets (stratified order for classification) and the one validation file.

    Returns ([(fraction, rows, train_path)], validation_path).
    """
    from core.data import prepare_data

    no_augment = dataclasses.replace(base.data, augment_multiplier=0, augment_ops=[])
    prepared = prepare_data(no_augment, base.model.task)
    train, val = prepared.train, prepared.validation
    if len(val) == 0:
        raise WorkbenchError(
            "A learning curve needs a validation split to score every point on.",
            hint="Save the dataset with a validation share above 0.",
        )
    if prepared.label_names is not None:
        names = prepared.label_names
        train = train.assign(label=[names[i] for i in train["label"]])
        val = val.assign(label=[names[i] for i in val["label"]])
    order = _nested_order(train["label"].to_numpy() if prepared.label_names else None, len(train), seed)
    folder.mkdir(parents=True, exist_ok=True)
    val_path = folder / "validation.parquet"
    val.to_parquet(val_path, index=False)
    out = []
    for f in sorted(fractions):
        n = max(2, math.ceil(f * len(train)))
        path = folder / f"train-{int(round(f * 100)):03d}.parquet"
        train.iloc[np.sort(order[:n])].to_parquet(path, index=False)
        out.append((f, n, path))
    return out, val_path


def _nested_order(labels, n: int, seed: int) -> np.ndarray:
    """A row order whose every prefix keeps the class shares (round-robin over shuffled classes)."""
    rng = np.random.default_rng(seed)
    if labels is None:
        return rng.permutation(n)
    keys = np.empty(n)
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        # A row's key is its rank within its class over the class size: each class spreads evenly over [0, 1).
        keys[rows] = (np.arange(len(rows)) + rng.random()) / len(rows)
    return np.argsort(keys, kind="stable")


class CurveStore:
    """Learning curves under workspace/curves/<id>/curve.json."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_workspace() / "curves"
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, base: RunConfig, fractions=FRACTIONS, metric: str = "") -> dict[str, Any]:
        metric = metric or ("val_accuracy" if base.model.task == "classification" else "val_loss")
        curve_id = uuid.uuid4().hex[:8]
        record = {
            "id": curve_id,
            "created_at": time.time(),
            "state": "queued",
            **message("insight.curve.status.queued"),
            "metric": metric,
            "base": base.to_dict(),
            "points": [{"fraction": f, "rows": None, "state": "pending"} for f in sorted(fractions)],
            "reading": "",
        }
        (self.root / curve_id).mkdir()
        self.save(record)
        return record

    def save(self, record: dict[str, Any]) -> None:
        atomic_write_text(self.root / record["id"] / "curve.json", json.dumps(record, indent=2, default=str))

    def get(self, curve_id: str) -> dict[str, Any]:
        path = self.root / str(curve_id) / "curve.json"
        if "/" in str(curve_id) or not path.exists():
            raise WorkbenchError(f"There is no learning curve '{curve_id}'.")
        return json.loads(path.read_text(encoding="utf-8"))

    def latest(self) -> dict[str, Any] | None:
        found = [json.loads(p.read_text(encoding="utf-8")) for p in self.root.glob("*/curve.json")]
        return max(found, key=lambda r: r.get("created_at", 0)) if found else None


def run_learning_curve(curve_id: str, registry, store: CurveStore, searches=None, stop=None) -> dict[str, Any]:
    """Train every point of a curve, one at a time, through the search runner; returns the record."""
    from core.search import SearchConfig, SearchSpace, SearchStore, _fold_config, run_search
    from core.training import StopSignal

    stop = stop or StopSignal()
    searches = searches or SearchStore(store.root.parent / "searches")
    record = store.get(curve_id)
    record.update(state="running", **message("insight.curve.status.running"))
    store.save(record)
    try:
        base = RunConfig.from_dict(record["base"])
        fractions = [p["fraction"] for p in record["points"]]
        subsets, val_path = write_subsets(base, store.root / curve_id / "data", fractions)
        tc = base.train
        for point, (fraction, rows, train_path) in zip(record["points"], subsets):
            if stop.is_set():
                break
            point.update(rows=rows, state="running")
            store.save(record)
            cfg = SearchConfig(
                base=_fold_config(
                    dataclasses.replace(base, name=f"curve-{curve_id}-{round(fraction * 100)}pct"), train_path, val_path
                ),
                space=SearchSpace(
                    learning_rate=[tc.learning_rate],
                    batch_size=[tc.batch_size],
                    epochs=[tc.epochs],
                    weight_decay=[tc.weight_decay],
                ),
                max_trials=1,
                metric=record["metric"],
                name=f"learning curve {curve_id}: {fraction:.0%} of the rows",
            )
            search = run_search(searches.create(cfg)["id"], registry, stop, searches)
            trial = search["trials"][0]
            point.update(state=trial["state"], score=trial.get("metric"), runs=trial["runs"], search=search["id"])
            store.save(record)
        done = [p for p in record["points"] if p["state"] == "finished"]
        # The English sentence for old readers and the CLI; the key and parameters for the reader's language.
        reading = curve_message([p["rows"] for p in done], [p["score"] for p in done], record["metric"])
        record.update(reading=reading["message"], reading_message=reading)
        if stop.is_set():
            record.update(state="stopped", **message("insight.curve.status.stopped"))
        elif len(done) < len(record["points"]):
            record.update(state="failed", **message("insight.curve.status.incomplete"))
        else:
            record.update(state="finished", **message("insight.curve.status.finished"))
    except WorkbenchError as err:
        record.update(state="failed", **message("insight.curve.status.failed", error=str(err)))
    except Exception as err:  # noqa: BLE001 - the thread must always leave a readable state behind
        error = f"{type(err).__name__}: {str(err)[:300]}"
        record.update(state="failed", **message("insight.curve.status.crashed", error=error))
    finally:
        store.save(record)
    return record


class CurveRunner:
    """One learning curve at a time per server process, in a daemon thread (the page polls curve.json)."""

    def __init__(self, registry, store: CurveStore | None = None):
        from core.training import StopSignal

        self.registry, self.store = registry, store or CurveStore()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = StopSignal()
        self.curve_id: str | None = None

    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, base: RunConfig, metric: str = "", fractions=FRACTIONS) -> tuple[str, bool]:
        from core.training import StopSignal

        with self._lock:
            if self.active():
                return self.curve_id, False
            record = self.store.create(base, fractions, metric)
            self.curve_id, self._stop = record["id"], StopSignal()
            self._thread = threading.Thread(
                target=run_learning_curve,
                args=(record["id"], self.registry, self.store, None, self._stop),
                name=f"curve-{record['id']}",
                daemon=True,
            )
            self._thread.start()
            return record["id"], True

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
