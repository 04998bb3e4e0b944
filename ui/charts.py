"""Plotly figures with axis titles and units; built from plain data, so the pages only place them.

Titles, axis labels and trace names are in the reader's language (``lang``, by default the page's: see ui.i18n);
a cached figure must have the language in its cache key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from core import i18n
from ui.safe import plot_text, plot_texts

HEIGHT = 340
_X_TITLES = {"step": "chart.x.step", "epoch": "chart.x.epoch"}


def _t(key: str, lang: str | None, **params: Any) -> str:
    if lang is None:
        from ui.i18n import language

        lang = language()
    return i18n.t(key, lang, **params)


def _x_title(x: str, lang: str | None) -> str:
    return _t(_X_TITLES[x], lang) if x in _X_TITLES else x


def _layout(fig: go.Figure, title: str, x: str, y: str, *, log_y: bool = False, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        hovermode="x unified",
    )
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    if log_y:  # only when asked: forcing "linear" would turn a category axis (class names) into numbers
        fig.update_yaxes(type="log")
    return fig


def loss_curves(
    train: pd.DataFrame, evals: pd.DataFrame, *, x: str = "step", log_y: bool = False, lang: str | None = None
) -> go.Figure:
    """Training loss (every logged step) and validation loss (every evaluation) on one chart."""
    fig = go.Figure()
    if "loss" in train.columns and len(train):
        fig.add_trace(go.Scatter(x=train[x], y=train["loss"], mode="lines", name=_t("chart.loss.train", lang)))
    if "val_loss" in evals.columns and len(evals):
        fig.add_trace(
            go.Scatter(
                x=evals[x], y=evals["val_loss"], mode="lines+markers", name=_t("chart.loss.val", lang), marker_size=8
            )
        )
    title, y = _t("chart.loss.title", lang), _t("chart.loss.y", lang)
    return _layout(fig, title, _x_title(x, lang), y, log_y=log_y)


def learning_rate(train: pd.DataFrame, *, x: str = "step", lang: str | None = None) -> go.Figure:
    fig = go.Figure()
    if "lr" in train.columns and len(train):
        fig.add_trace(go.Scatter(x=train[x], y=train["lr"], mode="lines", name=_t("chart.lr.name", lang)))
    title, y = _t("chart.lr.title", lang), _t("chart.lr.y", lang)
    return _layout(fig, title, _x_title(x, lang), y, height=260)


def compare_curves(
    curves: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
    *,
    x: str = "step",
    log_y: bool = False,
    lang: str | None = None,
):
    """Training (solid) and validation (dotted, markers) loss of several runs, one colour per run."""
    fig = go.Figure()
    palette = ["#4f46e5", "#dc2626", "#059669", "#d97706", "#0891b2", "#7c3aed", "#db2777", "#65a30d"]
    for i, (name, (train, evals)) in enumerate(curves.items()):
        colour = palette[i % len(palette)]
        if "loss" in train.columns and len(train):
            fig.add_trace(
                go.Scatter(
                    x=train[x],
                    y=train["loss"],
                    mode="lines",
                    name=_t("chart.compare.train", lang, name=plot_text(name)),
                    line={"color": colour},
                )
            )
        if "val_loss" in evals.columns and len(evals):
            fig.add_trace(
                go.Scatter(
                    x=evals[x],
                    y=evals["val_loss"],
                    mode="lines+markers",
                    name=_t("chart.compare.val", lang, name=plot_text(name)),
                    line={"color": colour, "dash": "dot"},
                )
            )
    title, y = _t("chart.compare.title", lang), _t("chart.compare.y", lang)
    return _layout(fig, title, _x_title(x, lang), y, log_y=log_y)


def _categories(fig: go.Figure, *, x: bool = False, y: bool = False) -> go.Figure:
    """Class names are categories: labels "0" and "1" must not become a number axis with ticks at 0.5."""
    if x:
        fig.update_xaxes(type="category")
    if y:
        fig.update_yaxes(type="category")
    return fig


def class_balance(counts: dict[str, int], *, lang: str | None = None) -> go.Figure:
    # Class names come from the data: escaped, so a label holding <a href=...> is shown, not followed.
    fig = go.Figure(
        go.Bar(x=plot_texts(counts), y=list(counts.values()), text=list(counts.values()), textposition="auto")
    )
    title, x, y = _t("chart.balance.title", lang), _t("chart.class", lang), _t("chart.rows", lang)
    return _categories(_layout(fig, title, x, y, height=300), x=True)


def token_lengths(lengths: Sequence[int], max_length: int, *, exact: bool, lang: str | None = None) -> go.Figure:
    fig = go.Figure(go.Histogram(x=list(lengths), nbinsx=40, name=_t("chart.lengths.name", lang)))
    fig.add_vline(
        x=max_length,
        line_dash="dash",
        line_color="#dc2626",
        annotation_text=_t("chart.lengths.max", lang, max_length=max_length),
        annotation_position="top right",
    )
    unit = _t("chart.lengths.x" if exact else "chart.lengths.x_estimated", lang)
    return _layout(fig, _t("chart.lengths.title", lang), unit, _t("chart.rows", lang), height=300)


def confusion_matrix(matrix: list[list[int]], labels: list[str], *, lang: str | None = None) -> go.Figure:
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=plot_texts(labels),
            y=plot_texts(labels),
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate=_t("chart.confusion.hover", lang),
            colorbar={"title": _t("chart.confusion.colorbar", lang)},
        )
    )
    fig.update_yaxes(autorange="reversed")
    size = max(320, 60 * len(labels) + 120)
    fig = _layout(
        fig,
        _t("chart.confusion.title", lang),
        _t("chart.confusion.x", lang),
        _t("chart.confusion.y", lang),
        height=min(size, 800),
    )
    return _categories(fig, x=True, y=True)


_METRIC_NAMES = {"precision": "chart.metric.precision", "recall": "chart.metric.recall", "f1": "chart.metric.f1"}


def per_class_scores(per_class: dict[str, dict[str, float]], *, lang: str | None = None) -> go.Figure:
    names = list(per_class)
    fig = go.Figure()
    for metric, key in _METRIC_NAMES.items():
        fig.add_trace(go.Bar(x=plot_texts(names), y=[per_class[n][metric] for n in names], name=_t(key, lang)))
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1.05])
    title, x, y = _t("chart.per_class.title", lang), _t("chart.class", lang), _t("chart.per_class.y", lang)
    return _categories(_layout(fig, title, x, y, height=320), x=True)


def probabilities(
    names: list[str], probs: Sequence[float], title: str | None = None, *, lang: str | None = None
) -> go.Figure:
    order = sorted(range(len(names)), key=lambda i: -probs[i])
    fig = go.Figure(
        go.Bar(
            x=[float(probs[i]) for i in order],
            y=[plot_text(names[i]) for i in order],
            orientation="h",
            text=[f"{probs[i]:.1%}" for i in order],
            textposition="auto",
        )
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(autorange="reversed")
    title = plot_text(title) if title is not None else _t("chart.probabilities.title", lang)
    x, y = _t("chart.probabilities.x", lang), _t("chart.class", lang)
    return _categories(_layout(fig, title, x, y, height=max(200, 45 * len(names) + 110)), y=True)
