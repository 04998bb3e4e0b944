"""One widget per config field, labelled and explained in the reader's language: the form follows the dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from core.config import DEVICES, OPTIMIZERS, PRECISIONS, SCHEDULES, TrainConfig, field_docs
from ui.i18n import t

CHOICES = {"schedule": SCHEDULES, "optimizer": OPTIMIZERS, "precision": PRECISIONS, "device": DEVICES}
WATCHABLE = {
    "classification": ("val_loss", "val_accuracy", "val_f1"),
    "regression": ("val_loss", "val_mse", "val_mae", "val_r2"),
    "generation": ("val_loss", "val_perplexity"),
}
# Fields whose values span orders of magnitude read best in scientific notation.
SCIENTIFIC = {"learning_rate", "l1_penalty"}
# TrainConfig's fields as the reader sees them: (label key, help key). Literal keys, so the catalog test finds
# them; the English help repeats the field's docstring (which the CLI's --help shows), and a field missing here
# falls back to its name and docstring (tests/app/test_zh_data_train.py asks for every field to be here).
FIELD_TEXT = {
    "learning_rate": ("trainform.learning_rate", "trainform.learning_rate.help"),
    "schedule": ("trainform.schedule", "trainform.schedule.help"),
    "warmup_steps": ("trainform.warmup_steps", "trainform.warmup_steps.help"),
    "warmup_ratio": ("trainform.warmup_ratio", "trainform.warmup_ratio.help"),
    "optimizer": ("trainform.optimizer", "trainform.optimizer.help"),
    "momentum": ("trainform.momentum", "trainform.momentum.help"),
    "weight_decay": ("trainform.weight_decay", "trainform.weight_decay.help"),
    "l1_penalty": ("trainform.l1_penalty", "trainform.l1_penalty.help"),
    "label_smoothing": ("trainform.label_smoothing", "trainform.label_smoothing.help"),
    "layerwise_lr_decay": ("trainform.layerwise_lr_decay", "trainform.layerwise_lr_decay.help"),
    "batch_size": ("trainform.batch_size", "trainform.batch_size.help"),
    "grad_accum": ("trainform.grad_accum", "trainform.grad_accum.help"),
    "epochs": ("trainform.epochs", "trainform.epochs.help"),
    "max_steps": ("trainform.max_steps", "trainform.max_steps.help"),
    "time_budget_min": ("trainform.time_budget_min", "trainform.time_budget_min.help"),
    "max_length": ("trainform.max_length", "trainform.max_length.help"),
    "grad_clip": ("trainform.grad_clip", "trainform.grad_clip.help"),
    "eval_every": ("trainform.eval_every", "trainform.eval_every.help"),
    "log_every": ("trainform.log_every", "trainform.log_every.help"),
    "save_every": ("trainform.save_every", "trainform.save_every.help"),
    "keep_checkpoints": ("trainform.keep_checkpoints", "trainform.keep_checkpoints.help"),
    "early_stopping_patience": ("trainform.early_stopping_patience", "trainform.early_stopping_patience.help"),
    "early_stopping_metric": ("trainform.early_stopping_metric", "trainform.early_stopping_metric.help"),
    "seed": ("trainform.seed", "trainform.seed.help"),
    "precision": ("trainform.precision", "trainform.precision.help"),
    "device": ("trainform.device", "trainform.device.help"),
    "num_threads": ("trainform.num_threads", "trainform.num_threads.help"),
    "fast_path": ("trainform.fast_path", "trainform.fast_path.help"),
    "distill_alpha": ("trainform.distill_alpha", "trainform.distill_alpha.help"),
    "distill_temperature": ("trainform.distill_temperature", "trainform.distill_temperature.help"),
    "train_on_prompt": ("trainform.train_on_prompt", "trainform.train_on_prompt.help"),
    "packing": ("trainform.packing", "trainform.packing.help"),
    "probe_texts": ("trainform.probe_texts", "trainform.probe_texts.help"),
    "tensorboard": ("trainform.tensorboard", "trainform.tensorboard.help"),
}


TASK_NAMES = {
    "classification": "trainpage.task.classification",
    "regression": "trainpage.task.regression",
    "generation": "trainpage.task.generation",
}


def task_name(task: str) -> str:
    """A task as the reader says it ('classification' -> '文本分类'); an unknown one as it is."""
    return t(TASK_NAMES[task]) if task in TASK_NAMES else str(task)


def field_text(cls: type, name: str) -> tuple[str, str]:
    """(label, help) of a config field in the reader's language."""
    keys = FIELD_TEXT.get(name) if cls is TrainConfig else None
    if keys:
        return t(keys[0]), t(keys[1])
    return name.replace("_", " ").capitalize(), field_docs(cls).get(name, "")


def field_widget(cls: type, name: str, value: Any, key: str, *, task: str = "classification", container=st) -> Any:
    """A widget for ``cls.name`` initialised to ``value``; returns what the user set."""
    kind = {f.name: str(f.type) for f in dataclasses.fields(cls)}[name]
    label, help_text = field_text(cls, name)
    if name == "early_stopping_metric":
        options = WATCHABLE.get(task, ("val_loss",))
        return container.selectbox(
            label, options, index=options.index(value) if value in options else 0, key=key, help=help_text
        )
    if name in CHOICES:
        options = CHOICES[name]
        return container.selectbox(label, options, index=options.index(value), key=key, help=help_text)
    if kind == "bool":
        return container.checkbox(label, value=bool(value), key=key, help=help_text)
    if kind == "int":
        return int(container.number_input(label, value=int(value), step=1, key=key, help=help_text))
    if kind == "float":
        fmt = "%.1e" if name in SCIENTIFIC else "%g"
        step = float(value) / 10 if name in SCIENTIFIC and value else 0.05
        return float(container.number_input(label, value=float(value), step=step, format=fmt, key=key, help=help_text))
    return container.text_input(label, value="" if value is None else str(value), key=key, help=help_text)


def fields_grid(cls: type, names: list[str], values: dict[str, Any], key_prefix: str, *, task: str, columns: int = 3):
    """Lay several fields out in columns; returns {name: value}."""
    out: dict[str, Any] = {}
    cols = st.columns(columns)
    for i, name in enumerate(names):
        out[name] = field_widget(cls, name, values[name], f"{key_prefix}{name}", task=task, container=cols[i % columns])
    return out


OFFERED_KEY = "_offered_defaults"


def follow_defaults(defaults: dict[str, Any], key_prefix: str) -> None:
    """Let fields the user has not edited follow new defaults (e.g. another method); keep the user's own values.

    Streamlit keeps a keyed widget's value when its default changes, so a new method's learning rate would
    never show. Before the widgets are drawn, a field still holding the default offered last time takes the
    new default; a field the user changed keeps what they typed.
    """
    offered = st.session_state.setdefault(OFFERED_KEY, {})
    for name, value in defaults.items():
        key = f"{key_prefix}{name}"
        if key in offered and key in st.session_state and st.session_state[key] == offered[key] != value:
            st.session_state[key] = value
        offered[key] = value
