"""Hyperparameter search: a small grid or random search over learning rate, batch size, epochs and weight decay.

Every trial (and every fold of a trial) is a normal run in the RunStore, started through the JobRegistry,
so it trains in a worker process, and the one-job-per-device rule, the Runs page and resume all apply to it.
Trials run one at a time. The search itself lives in workspace/searches/<id>/search.json, rewritten after
every change, so a page can re-attach after a refresh; k-fold data is written beside it
(folds/fold-K/{train,validation}.parquet). A search is a background job like a run (core.jobs): a stop.json in
its folder stops it from any tab or process, and it passes the stop on to the trial in progress.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import i18n
from core.config import RunConfig, TrainConfig
from core.devicelock import DeviceBusy
from core.errors import ConfigError, WorkbenchError
from core.jobs import LIVE, BackgroundJob
from core.progress import FileStopSignal, StopSignal
from core.runs import (
    ACTIVE,
    ENDED,
    RunStatus,
    atomic_write_text,
    default_workspace,
    owner_alive,
    owner_fields,
)

PARAMS = ("learning_rate", "batch_size", "epochs", "weight_decay")
STRATEGIES = ("grid", "random")
DONE = ENDED  # a search ends as a run does: finished, stopped, failed or interrupted
PENDING = "pending"  # a trial not started yet; then it takes a run's states
TRIAL_ACTIVE = (PENDING, RunStatus.RUNNING)


@dataclass
class SearchSpace:
    """The values to try. Grid: every combination. Random: learning rate drawn log-uniformly and weight decay
    uniformly between the smallest and largest value given; batch size and epochs picked from the lists."""

    learning_rate: list[float] = field(default_factory=lambda: [2e-5, 5e-5, 1e-4])
    batch_size: list[int] = field(default_factory=lambda: [16])
    epochs: list[float] = field(default_factory=lambda: [1.0])
    weight_decay: list[float] = field(default_factory=lambda: [0.01])

    def __post_init__(self) -> None:
        for name in PARAMS:
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise ConfigError("error.config.setting", field=name, detail="error.search.one_value")
            setattr(self, name, sorted(set(values)))


@dataclass
class SearchConfig:
    """What to search, how, and how to judge a trial."""

    base: RunConfig
    """The run every trial starts from (data, model, other settings)."""
    space: SearchSpace = field(default_factory=SearchSpace)
    strategy: str = "grid"
    """grid (every combination) or random (max_trials draws)."""
    max_trials: int = 8
    """Random: how many trials. Grid: refuse grids larger than this."""
    folds: int = 0
    """k-fold cross-validation on the training split (0: use the validation split once)."""
    metric: str = ""
    """Validation metric that ranks trials ('' : val_accuracy for classification, else val_loss)."""
    seed: int = 0
    """Seed of the random draws and of the fold assignment."""
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.base, dict):
            self.base = RunConfig.from_dict(self.base)
        if isinstance(self.space, dict):
            self.space = SearchSpace(**self.space)
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                "error.config.setting", field="strategy", detail="error.config.one_of", choices=list(STRATEGIES)
            )
        if not 1 <= self.max_trials <= 200:
            raise ConfigError("error.config.setting", field="max_trials", detail="error.config.between", lo=1, hi=200)
        if self.folds == 1 or not 0 <= self.folds <= 10:
            raise ConfigError("error.config.setting", field="folds", detail="error.search.folds")
        self.metric = self.metric or ("val_accuracy" if self.base.model.task == "classification" else "val_loss")
        if not self.metric.startswith("val_"):
            raise ConfigError("error.config.setting", field="metric", detail="error.config.val_metric")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "base": self.base.to_dict()}


def plan_trials(cfg: SearchConfig) -> list[dict[str, Any]]:
    """The hyperparameters of every trial, in order; each combination is checked as a real TrainConfig."""
    space = cfg.space
    if cfg.strategy == "grid":
        combos = list(itertools.product(*(getattr(space, p) for p in PARAMS)))
        if len(combos) > cfg.max_trials:
            raise ConfigError("error.search.grid_too_big", hint="error.hint.grid", n=len(combos), most=cfg.max_trials)
        plans = [dict(zip(PARAMS, combo)) for combo in combos]
    else:
        rng = random.Random(cfg.seed)
        lo, hi = math.log(space.learning_rate[0]), math.log(space.learning_rate[-1])
        plans = [
            {
                "learning_rate": float(f"{math.exp(rng.uniform(lo, hi)):.3g}"),
                "batch_size": rng.choice(space.batch_size),
                "epochs": rng.choice(space.epochs),
                "weight_decay": round(rng.uniform(space.weight_decay[0], space.weight_decay[-1]), 4),
            }
            for _ in range(cfg.max_trials)
        ]
    for plan in plans:
        trial_config(cfg.base, plan)  # a bad value fails now, naming the field, not halfway through
    return plans


def trial_config(base: RunConfig, params: dict[str, Any], name: str = "") -> RunConfig:
    raw = base.to_dict()
    raw["train"].update(params)
    raw["name"] = name or base.name
    return RunConfig.from_dict(raw)


# ----------------------------------------------------------------------------------------------- on disk
class SearchStore:
    """All searches under workspace/searches/<id>/search.json."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_workspace() / "searches"
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, cfg: SearchConfig) -> dict[str, Any]:
        plans = plan_trials(cfg)
        search_id = uuid.uuid4().hex[:8]
        record = {
            "id": search_id,
            "name": cfg.name or f"search-{search_id}",
            "created_at": time.time(),
            "state": RunStatus.QUEUED,
            "message": "Waiting to start...",
            **owner_fields(),
            "config": cfg.to_dict(),
            "trials": [{"trial": i + 1, "params": p, "state": PENDING, "runs": []} for i, p in enumerate(plans)],
            "best_trial": None,
        }
        (self.root / search_id).mkdir()
        self.save(record)
        return record

    def folder(self, search_id: str) -> Path:
        return self.root / search_id

    def save(self, record: dict[str, Any]) -> None:
        record["updated_at"] = time.time()
        atomic_write_text(self.folder(record["id"]) / "search.json", json.dumps(record, indent=2, default=str))

    def get(self, search_id: str) -> dict[str, Any]:
        path = self.folder(str(search_id)) / "search.json"
        if "/" in str(search_id) or not path.exists():
            raise WorkbenchError("error.search.missing", hint="error.hint.pick_from_list", search=search_id)
        record = json.loads(path.read_text(encoding="utf-8"))
        if record["state"] in ACTIVE and not _owner_alive(record):
            record["state"] = RunStatus.INTERRUPTED
            record.update(i18n.message("tune.search_status.interrupted"))
        return record

    def list(self) -> list[dict[str, Any]]:
        found = [self.get(p.name) for p in self.root.iterdir() if (p / "search.json").exists()]
        return sorted(found, key=lambda r: r.get("created_at", 0), reverse=True)

    def stop_signal(self, search_id: str) -> FileStopSignal:
        """The search's own stop request, on disk (searches/<id>/stop.json): any process can set it."""
        return FileStopSignal(self.folder(search_id))

    def request_stop(self, search_id: str) -> bool:
        """Ask a search to stop (and its trial in progress); False when it is not running."""
        if self.get(search_id)["state"] not in ACTIVE:
            return False
        self.stop_signal(search_id).set()
        return True


def _owner_alive(record: dict[str, Any]) -> bool:
    if record.get("pid") == os.getpid():  # this process: alive while its search job is listed as working
        return LIVE.get(SearchJob.kind, record["id"]) is not None
    return owner_alive(record)  # the pid and its start time, as for runs


def results_table(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per trial: its settings, the validation metric (mean over folds), state and runs."""
    metric = record["config"]["metric"]
    rows = []
    for t in record["trials"]:
        row = {"trial": t["trial"], **t["params"], metric: t.get("metric"), "state": t["state"]}
        if t.get("fold_metrics"):
            row[f"{metric}_std"] = t.get("metric_std")
        row["seconds"] = t.get("seconds")
        row["best"] = t["trial"] == record.get("best_trial")
        row["runs"] = ", ".join(t["runs"])
        rows.append(row)
    return rows


def best_trial(record: dict[str, Any]) -> dict[str, Any] | None:
    """The finished trial with the best validation metric (None before any finishes)."""
    scored = [t for t in record["trials"] if t["state"] == RunStatus.FINISHED and _finite(t.get("metric"))]
    if not scored:
        return None
    # The same rule early stopping uses: losses and errors go down, everything else up.
    higher = TrainConfig(early_stopping_metric=record["config"]["metric"]).metric_higher_is_better
    return (max if higher else min)(scored, key=lambda t: t["metric"])


def best_config(record: dict[str, Any]) -> RunConfig:
    """The base run with the best trial's settings, on the full training split: ready to start as a full run."""
    best = best_trial(record)
    if best is None:
        raise WorkbenchError("error.search.no_trial", hint="error.hint.wait_trial")
    base = RunConfig.from_dict(record["config"]["base"])
    return trial_config(base, best["params"], name=f"search-{record['id']}-best")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------- running
def fold_splits(labels, folds: int, seed: int, stratify: bool) -> list[tuple[Any, Any]]:
    """(fit rows, held-out rows) of each fold: stratified when asked and every class has ``folds`` rows."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray(labels)
    if stratify and len(labels) and np.unique(labels, return_counts=True)[1].min() >= folds:
        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels))
    return list(KFold(folds, shuffle=True, random_state=seed).split(labels))


def write_folds(cfg: SearchConfig, folder: Path) -> list[tuple[Path, Path]]:
    """Cut the training split into k folds (stratified for classification) and write each fold's files.

    Augmentation is left off while cutting, so no augmented copy of a validation row lands in training; each
    fold run then augments its own training part.
    """
    from core.data import prepare_data

    no_augment = dataclasses.replace(cfg.base.data, augment_multiplier=0, augment_ops=[])
    prepared = prepare_data(no_augment, cfg.base.model.task)
    train = prepared.train
    if prepared.label_names is not None:
        train = train.assign(label=[prepared.label_names[i] for i in train["label"]])
    if len(train) < 2 * cfg.folds:
        raise WorkbenchError("error.search.too_few_rows", hint="error.hint.fewer_folds", n=len(train), folds=cfg.folds)
    splitter = fold_splits(train["label"].to_numpy(), cfg.folds, cfg.seed, stratify=prepared.label_names is not None)
    paths = []
    for k, (fit, held) in enumerate(splitter, start=1):
        fold_dir = folder / "folds" / f"fold-{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        train.iloc[fit].to_parquet(fold_dir / "train.parquet", index=False)
        train.iloc[held].to_parquet(fold_dir / "validation.parquet", index=False)
        paths.append((fold_dir / "train.parquet", fold_dir / "validation.parquet"))
    return paths


def _fold_config(base: RunConfig, train_path: Path, val_path: Path) -> RunConfig:
    raw = base.to_dict()
    data = raw["data"]
    data.update(train_path=str(train_path), validation_path=str(val_path), test_path=None, test_fraction=0.0)
    data.update(
        text_column="text", label_column="label", text_pair_column="text_pair" if data["text_pair_column"] else None
    )
    return RunConfig.from_dict(raw)


def run_search(
    search_id: str,
    registry,
    stop: StopSignal | None = None,
    store: SearchStore | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the pending trials of a search one at a time through ``registry`` (a JobRegistry); returns the record."""
    store = store or SearchStore()
    stop = stop or store.stop_signal(search_id)
    record = store.get(search_id)
    record.update(state=RunStatus.RUNNING, message="Running trials...", **owner_fields())
    store.save(record)
    try:
        cfg = SearchConfig(**record["config"])
        folds = write_folds(cfg, store.folder(search_id)) if cfg.folds else [None]
        for trial in record["trials"]:
            if trial["state"] != PENDING:
                continue
            if stop.is_set():
                break
            _run_trial(record, trial, cfg, folds, registry, stop, store, on_update)
        best = best_trial(record)
        record["best_trial"] = best["trial"] if best else None
        if stop.is_set():
            record.update(state=RunStatus.STOPPED, **i18n.message("tune.search_status.stopped"))
        elif best is None:
            record.update(
                state=RunStatus.FAILED, **i18n.message("tune.search_status.no_trial", reason=_first_failure(record))
            )
        else:
            best_text = f"{best['metric']:.4g}"
            message = i18n.message("tune.search_status.best", trial=best["trial"], metric=cfg.metric, value=best_text)
            record.update(state=RunStatus.FINISHED, **message)
    except WorkbenchError as err:
        record.update(state=RunStatus.FAILED, **i18n.error_message(err))
    except Exception as err:  # noqa: BLE001 - the search thread must always leave a readable state behind
        failed = i18n.message("tune.search_status.crashed", kind=type(err).__name__, detail=str(err)[:300])
        record.update(state=RunStatus.FAILED, **failed)
    finally:
        store.save(record)
        if on_update:
            on_update(record)
    return record


def _first_failure(record: dict[str, Any]) -> str:
    messages = [t.get("message") for t in record["trials"] if t.get("message")]
    return messages[0] if messages else "error.search.none_ran"  # a key: shown in the reader's language


def _run_trial(record, trial, cfg: SearchConfig, folds, registry, stop, store, on_update) -> None:
    started = time.time()
    trial["state"] = RunStatus.RUNNING
    values, key = [], cfg.metric.removeprefix("val_")
    for k, fold in enumerate(folds, start=1):
        name = f"search-{record['id']}-trial-{trial['trial']}" + (f"-fold-{k}" if fold else "")
        base = _fold_config(cfg.base, *fold) if fold else cfg.base
        job = _start_when_free(registry, trial_config(base, trial["params"], name), stop)
        if job is None:
            break
        trial["runs"].append(job.run_id)
        store.save(record)
        if on_update:
            on_update(record)
        while job.is_alive():  # the search's stop reaches into the running trial
            job.join(0.2)
            if stop.is_set():
                job.stop()
        job.join()
        result = job.result
        value = job.run.results().get("validation", {}).get(key)
        if result is None or result.state != RunStatus.FINISHED or not _finite(value):
            trial["message"] = (result.message if result else "") or f"No {cfg.metric} was measured."
            trial["state"] = RunStatus.STOPPED if stop.is_set() else RunStatus.FAILED
            break
        values.append(float(value))
    if trial["state"] == RunStatus.RUNNING:
        if len(values) == len(folds):
            trial.update(state=RunStatus.FINISHED, metric=sum(values) / len(values))
            if len(values) > 1:
                mean = trial["metric"]
                trial.update(
                    fold_metrics=values, metric_std=math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
                )
        else:
            trial["state"] = RunStatus.STOPPED
    trial["seconds"] = round(time.time() - started, 1)
    best = best_trial(record)
    record["best_trial"] = best["trial"] if best else None
    store.save(record)
    if on_update:
        on_update(record)


def _start_when_free(registry, config: RunConfig, stop: StopSignal):
    """Start the trial; if another job holds the device (a run from the Train page or the CLI), wait for it."""
    while not stop.is_set():
        try:
            job, created = registry.start(config)
        except DeviceBusy:  # another process trains on the device: its lock is released when it ends
            time.sleep(1.0)
            continue
        if created:
            return job
        job.join(1.0)
    return None


@dataclass(eq=False)
class SearchJob(BackgroundJob):
    """One search as a background job of this process; its stop request lives in its folder."""

    search_id: str
    store: SearchStore
    registry: Any
    record: dict[str, Any] | None = None

    kind = "search"

    @property
    def key(self) -> str:
        return self.search_id

    def _work(self) -> None:
        self.record = run_search(self.search_id, self.registry, self.store.stop_signal(self.search_id), self.store)

    def outcome(self) -> dict[str, Any] | None:
        return self.record

    def stop(self) -> None:
        self.store.stop_signal(self.search_id).set()


class SearchRunner:
    """Starts searches, one at a time per server process (the page keeps it in st.cache_resource)."""

    def __init__(self, registry, store: SearchStore | None = None):
        self.registry = registry
        self.store = store or SearchStore()
        self._lock = threading.Lock()

    def active(self) -> SearchJob | None:
        """The search working in this process (any runner's), or None."""
        alive = [job for job in LIVE.of_kind(SearchJob.kind) if job.is_alive()]
        return alive[0] if alive else None

    def start(self, cfg: SearchConfig) -> tuple[SearchJob, bool]:
        """Create and start a search, or return the one already running. Returns (job, created)."""
        with self._lock:
            running = self.active()
            if running is not None:
                return running, False
            record = self.store.create(cfg)
            self.store.stop_signal(record["id"]).clear()
            job = SearchJob(record["id"], self.store, self.registry)
            job.start()
            return job, True

    def stop(self, search_id: str | None = None) -> bool:
        """Stop a search, this process's or another's (through its folder); False when none is running."""
        if search_id is None:
            job = self.active()
            if job is None:
                return False
            search_id = job.search_id
        return self.store.request_stop(search_id)
