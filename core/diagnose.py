"""A diagnosis of a run in plain words, each with what to do and, where one exists, a one-click fix.

Pure functions over what a run leaves on disk (metrics records, results, config): the Train page shows them
live and on the finished run, Compare beside each run, and the CLI prints them after training. A fix is a
set of setting changes (retrain with them) or the live "stop and keep the best model".

Cases, in the order they are looked for (the first ones make the later ones meaningless):
- diverged: the loss became NaN/infinite, or climbed back above where it started (the learning rate is too high);
- stuck: a classifier's loss stayed at ln(number of classes), what guessing gets: nothing was learned;
- overfitting: validation loss rose after its best point while training loss kept falling;
- underfitting: the run ended while its loss was still clearly falling: it should train longer;
- class gap: the model finds some classes far more often than others (recall per class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.curves import curve_frames, start_record
from core.i18n import DEFAULT

CHANCE_BAND = 0.1
"""A loss within 10% of ln(classes) is a loss at chance."""
RISE = 0.05
"""Validation loss this much (5%) above its best counts as risen."""
STILL_FALLING = 0.03
"""A last stretch that lowered the loss by more than 3% means the run stopped while still learning."""
CLASS_GAP = 0.3
"""A difference in recall between two classes above this is a large gap."""
MAX_EPOCHS = 20.0


def _text(parts: list[tuple[str, dict[str, Any]]], lang: str | None) -> str:
    from core.i18n import t

    return "".join(t(key, lang, **params) for key, params in parts)


@dataclass
class Fix:
    """One click: ``action`` 'retrain' (the run's config with ``train``/``model`` changed), 'stop_keep_best'
    (a live run) or 'keep_best_checkpoint' (a finished run's best checkpoint becomes its model)."""

    label_key: str
    label_params: dict[str, Any] = field(default_factory=dict)
    action: str = "retrain"
    train: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str | None = None) -> str:
        """The button's words in ``lang`` (default: the environment's)."""
        return _text([(self.label_key, self.label_params)], lang)

    @property
    def label(self) -> str:
        """In English (run names, logs)."""
        return self.text(DEFAULT)

    def cli_options(self) -> str:
        """The same change as options of ``python -m core train --config <run>/config.json``."""
        pairs = [*self.model.items(), *self.train.items()]
        return " ".join(
            f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
            for k, v in pairs
        )


@dataclass
class Finding:
    """One finding, stored as catalog keys and parameters (core.i18n) so it reads in the reader's language."""

    kind: str
    """diverged, stuck, overfitting, underfitting, class_gap or healthy."""
    level: str
    """problem, warning or ok."""
    title_key: str
    detail: list[tuple[str, dict[str, Any]]]
    """The detail's sentences: (key, parameters) pairs, shown one after the other."""
    fixes: list[Fix] = field(default_factory=list)
    best_step: int | None = None

    def title_text(self, lang: str | None = None) -> str:
        return _text([(self.title_key, {})], lang)

    def detail_text(self, lang: str | None = None) -> str:
        return _text(self.detail, lang)

    @property
    def title(self) -> str:
        """In English (logs, the CLI's JSON summary)."""
        return self.title_text(DEFAULT)

    def to_dict(self) -> dict[str, Any]:
        """What is stored: the English words, and the keys and parameters to show them in another language."""
        return {
            "kind": self.kind,
            "level": self.level,
            "title": self.title,
            "detail": self.detail_text(DEFAULT),
            "title_key": self.title_key,
            "detail_parts": [[key, params] for key, params in self.detail],
        }


def diagnose(
    records: list[dict[str, Any]],
    config: dict[str, Any],
    results: dict[str, Any] | None = None,
    *,
    state: str = "finished",
    message: str = "",
    label_names: list[str] | None = None,
    frames: tuple | None = None,
    best_checkpoint_step: int | None = None,
) -> list[Finding]:
    """Findings for one run; ``state`` 'running' judges a run still training (no 'train longer' yet).

    ``frames`` is ``curve_frames(records)`` where the caller has it already (the live page shares one per run).
    ``best_checkpoint_step``: the step of a finished run's best evaluation when its checkpoint is kept and is not
    already the model (core.best_checkpoint): overfitting then offers to make it the model.
    """
    train, evals = frames if frames is not None else curve_frames(records)
    head = start_record(records)
    tc, mc = config.get("train", {}), config.get("model", {})
    task = mc.get("task", "classification")
    losses = _finite(train["loss"]) if "loss" in train else np.array([])
    steps = train["step"].to_numpy() if "step" in train else np.array([])
    total = int(head.get("total_steps") or 0)
    finished = state not in ("running", "queued")
    results = results or {}
    found: list[Finding] = []

    diverged = _diverged(losses, tc, message, task, label_names)
    if diverged:
        return [diverged]
    if task == "classification" and label_names and len(label_names) > 1:
        stuck = _stuck(losses, steps, total, finished, len(label_names), tc, mc, results, evals, head)
        if stuck:
            return [stuck]
    over = _overfitting(train, evals, finished, best_checkpoint_step, results.get("model_step"))
    if over:
        found.append(over)
    elif finished and state == "finished":
        under = _underfitting(train, evals, tc, head)
        if under:
            found.append(under)
    gap = _class_gap(records, results, label_names)
    if gap:
        found.append(gap)
    if not found and finished and len(losses):
        found.append(Finding("healthy", "ok", "diagnose.healthy.title", [_healthy_detail(train, evals)]))
    return found


def diagnose_run(run) -> list[Finding]:
    """``diagnose`` over a run folder (metrics, results, config, status, label names and checkpoints)."""
    from core.best_checkpoint import best_checkpoint, best_step_of

    status = run.status()
    finished = status.get("state") == "finished"
    return diagnose(
        run.metrics(),
        run.config().to_dict(),
        run.results(),
        state=status.get("state", "finished"),
        message=status.get("message", ""),
        label_names=label_names(run),
        best_checkpoint_step=best_step_of(run) if finished and best_checkpoint(run) else None,
    )


def label_names(run) -> list[str] | None:
    """The run's class names (core.inference.run_label_names), or None where that file cannot tell: a diagnosis
    is drawn without them rather than not at all."""
    from core.inference import run_label_names

    try:
        names = run_label_names(run)
    except (OSError, ValueError, AttributeError):  # AttributeError: the file holds no object
        return None
    return names if isinstance(names, list) else None


def fixed_config(config, fix: Fix, name_suffix: str = ""):
    """The run's RunConfig with the fix's settings changed (validated like any config)."""
    from core.config import RunConfig

    raw = config.to_dict()
    raw["train"].update(fix.train)
    raw["model"].update(fix.model)
    if name_suffix:
        raw["name"] = f"{raw.get('name') or 'run'} ({name_suffix})"
    return RunConfig.from_dict(raw)


def format_findings(
    findings: list[Finding], config_path: str = "CONFIG", run_id: str = "RUN", lang: str | None = None
) -> str:
    """Plain text for the command line: one paragraph per finding, with the fix as a command."""
    from core.i18n import t

    lines = []
    for f in findings:
        lines.append(f"[{f.level}] {f.title_text(lang)}: {f.detail_text(lang)}")
        for fix in f.fixes:
            if fix.action == "retrain":
                command = f"python -m core train --config {config_path} {fix.cli_options()}"
            elif fix.action == "keep_best_checkpoint":
                command = f"python -m core keep-best {run_id}"
            else:
                continue
            lines.append("    " + t("diagnose.cli.fix", lang, fix=fix.text(lang), command=command))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- the cases
def _finite(series) -> np.ndarray:
    values = np.asarray(series, dtype=float)
    return values[np.isfinite(values)]


def _lr(tc: dict[str, Any]) -> float:
    return float(tc.get("learning_rate") or 5e-5)


def _diverged(losses, tc, message: str, task: str, label_names) -> Finding | None:
    lower = _round(_lr(tc) / 10)
    fix = [Fix("diagnose.fix.lr", {"lr": lower}, train={"learning_rate": lower})]
    if "NaN" in message or "infinite" in message:
        detail = [("diagnose.diverged.nan", {"lr": _lr(tc), "lower": lower})]
        return Finding("diverged", "problem", "diagnose.diverged.title", detail, fix)
    if len(losses) < 6:
        return None
    start, low, end = float(np.mean(losses[:3])), float(np.min(losses)), float(np.mean(losses[-3:]))
    worse_than_guessing = (
        task == "classification" and label_names and end > 1.5 * math.log(max(len(label_names), 2)) + 0.1
    )
    if (end > start * 1.1 and end > 2 * low) or worse_than_guessing:
        params = {"low": low, "end": end, "start": start, "lower": lower, "lr": _lr(tc)}
        return Finding("diverged", "problem", "diagnose.lr_high.title", [("diagnose.lr_high.detail", params)], fix)
    return None


def _stuck(losses, steps, total, finished, classes, tc, mc, results, evals, head) -> Finding | None:
    from core.defaults import recommended_train_settings

    if len(losses) < 5 or (not finished and total and steps[-1] < total / 3):
        return None  # too early to tell: a fresh head starts at chance
    chance = math.log(classes)
    tail = losses[-max(3, len(losses) // 3) :]
    if abs(float(np.mean(tail)) - chance) > CHANCE_BAND * chance:
        return None
    accuracy = (results.get("validation") or {}).get("accuracy")
    if accuracy is None and "val_accuracy" in evals and len(evals):
        accuracy = float(evals["val_accuracy"].iloc[-1])
    if accuracy is not None and accuracy > 1 / classes + 0.15:
        return None  # the loss is flat but the answers are not chance: leave it to the other checks
    method = mc.get("method", "full")
    wanted = recommended_train_settings(
        mc.get("task", "classification"),
        mc.get("source", "default"),
        head.get("train_examples"),
        method=method,
        distill=bool(mc.get("teacher_run")),
    )
    detail = [("diagnose.stuck.detail", {"loss": float(np.mean(tail)), "classes": classes, "chance": chance})]
    if accuracy is not None:
        detail.append(("diagnose.stuck.accuracy", {"accuracy": accuracy}))
    detail.append(("diagnose.stuck.causes", {}))
    fixes = []
    if _lr(tc) < 0.5 * wanted["learning_rate"]:
        detail.append(("diagnose.stuck.cause.lr", {"lr": _lr(tc), "method": method, "wanted": wanted["learning_rate"]}))
        fixes.append(
            Fix(
                "diagnose.fix.lr",
                {"lr": wanted["learning_rate"]},
                train={"learning_rate": wanted["learning_rate"], "epochs": max(wanted["epochs"], tc.get("epochs", 1))},
            )
        )
    rows = head.get("train_examples")
    if rows is not None and rows < 50 * classes:
        detail.append(("diagnose.stuck.cause.rows", {"rows": rows, "classes": classes}))
    detail.append(("diagnose.stuck.cause.labels", {}))
    return Finding("stuck", "problem", "diagnose.stuck.title", detail, fixes)


def _overfitting(train, evals, finished: bool, kept_step: int | None, model_step: int | None) -> Finding | None:
    if "val_loss" not in evals or len(evals) < 3:
        return None
    val = evals["val_loss"].to_numpy(dtype=float)
    if not np.isfinite(val).all():
        return None
    best = int(np.argmin(val))
    if best == len(val) - 1 or val[-1] < val[best] * (1 + RISE):
        return None
    best_step, last_step = int(evals["step"].iloc[best]), int(evals["step"].iloc[-1])
    if _loss_near(train, last_step) > _loss_near(train, best_step) * 1.02:
        return None  # both rising is not memorising: the divergence check looks at that
    fixes = [
        Fix(
            "diagnose.fix.early_stopping",
            train={"early_stopping_patience": 2, "early_stopping_metric": "val_loss"},
        )
    ]
    detail = [("diagnose.overfitting.detail", {"step": best_step, "best": float(val[best]), "last": float(val[-1])})]
    if not finished:
        fixes.insert(0, Fix("diagnose.fix.stop_keep_best", action="stop_keep_best"))
    elif kept_step is not None:
        fixes.insert(0, Fix("diagnose.fix.keep_best_checkpoint", {"step": kept_step}, action="keep_best_checkpoint"))
    if finished and model_step is not None:
        detail.append(("diagnose.overfitting.model_is_best", {"step": model_step}))
    return Finding("overfitting", "warning", "diagnose.overfitting.title", detail, fixes, best_step=best_step)


def _underfitting(train, evals, tc, head) -> Finding | None:
    if "val_loss" in evals and len(evals) >= 3:
        val = evals["val_loss"].to_numpy(dtype=float)
        still = np.isfinite(val[-2:]).all() and val[-1] < val[-2] * (1 - STILL_FALLING) and val[-1] <= val.min()
    else:
        losses = _finite(train["loss"]) if "loss" in train else np.array([])
        if len(losses) < 8:
            return None
        quarter = max(2, len(losses) // 4)
        still = float(np.mean(losses[-quarter:])) < float(np.mean(losses[-2 * quarter : -quarter])) * (
            1 - STILL_FALLING
        )
    if not still:
        return None
    epochs = float(tc.get("epochs") or 1.0)
    if tc.get("max_steps"):
        more = {"max_steps": int(tc["max_steps"]) * 2}
        what = ("diagnose.more_steps", {"steps": more["max_steps"]})
    else:
        more = {"epochs": min(MAX_EPOCHS, max(epochs + 1, epochs * 2))}
        what = ("diagnose.more_epochs", {"epochs": more["epochs"]})
    detail = [("diagnose.underfitting.detail", {}), what, ("diagnose.underfitting.this_run", {"epochs": epochs})]
    fix = Fix("diagnose.fix.more_steps" if "max_steps" in more else "diagnose.fix.more_epochs", what[1], train=more)
    return Finding("underfitting", "warning", "diagnose.underfitting.title", detail, [fix])


def _class_gap(records, results, label_names) -> Finding | None:
    recall = (results.get("validation") or {}).get("class_recall")
    if recall is None:
        latest = (r for r in reversed(records) if isinstance(r.get("val_class_recall"), list))
        recall = next(latest, {}).get("val_class_recall")
    if not recall or len(recall) < 2:
        return None
    names = label_names if label_names and len(label_names) == len(recall) else [str(i) for i in range(len(recall))]
    hi, lo = int(np.argmax(recall)), int(np.argmin(recall))
    if recall[hi] - recall[lo] <= CLASS_GAP:
        return None
    params = {"high": str(names[hi]), "high_recall": recall[hi], "low": str(names[lo]), "low_recall": recall[lo]}
    return Finding("class_gap", "warning", "diagnose.class_gap.title", [("diagnose.class_gap.detail", params)])


def _loss_near(train, step: int) -> float:
    """Mean training loss over the few logged points up to ``step`` (single points are noisy)."""
    if "loss" not in train or not len(train):
        return math.nan
    window = train[train["step"] <= step]["loss"].tail(3)
    return float(window.mean()) if len(window) else math.nan


def _healthy_detail(train, evals) -> tuple[str, dict[str, Any]]:
    if "val_loss" in evals and len(evals):
        params = {"first": evals["val_loss"].iloc[0], "last": evals["val_loss"].iloc[-1], "n": len(evals)}
        return "diagnose.healthy.detail", {k: float(v) if k != "n" else int(v) for k, v in params.items()}
    return "diagnose.healthy.detail_train", {}


def _round(lr: float) -> float:
    return float(f"{lr:.1g}")
