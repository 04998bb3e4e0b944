"""One widget per config field, with the field's docstring as help: the form follows the dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from core.config import DEVICES, OPTIMIZERS, PRECISIONS, SCHEDULES, field_docs

CHOICES = {"schedule": SCHEDULES, "optimizer": OPTIMIZERS, "precision": PRECISIONS, "device": DEVICES}
WATCHABLE = {
    "classification": ("val_loss", "val_accuracy", "val_f1"),
    "regression": ("val_loss", "val_mse", "val_mae", "val_r2"),
    "generation": ("val_loss", "val_perplexity"),
}
# Fields whose values span orders of magnitude read best in scientific notation.
SCIENTIFIC = {"learning_rate", "l1_penalty"}


def label_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def field_widget(cls: type, name: str, value: Any, key: str, *, task: str = "classification", container=st) -> Any:
    """A widget for ``cls.name`` initialised to ``value``; returns what the user set."""
    kind = {f.name: str(f.type) for f in dataclasses.fields(cls)}[name]
    help_text = field_docs(cls).get(name, "")
    label = label_of(name)
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
