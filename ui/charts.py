"""Plotly figures with axis titles and units; built from plain data, so the pages only place them."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from ui.safe import plot_text, plot_texts

HEIGHT = 340
_X_TITLES = {"step": "Optimizer step", "epoch": "Epoch (passes over the training data)"}


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


def loss_curves(train: pd.DataFrame, evals: pd.DataFrame, *, x: str = "step", log_y: bool = False) -> go.Figure:
    """Training loss (every logged step) and validation loss (every evaluation) on one chart."""
    fig = go.Figure()
    if "loss" in train.columns and len(train):
        fig.add_trace(go.Scatter(x=train[x], y=train["loss"], mode="lines", name="training loss"))
    if "val_loss" in evals.columns and len(evals):
        fig.add_trace(
            go.Scatter(x=evals[x], y=evals["val_loss"], mode="lines+markers", name="validation loss", marker_size=8)
        )
    return _layout(fig, "Loss (lower is better)", _X_TITLES.get(x, x), "Loss (cross-entropy, nats)", log_y=log_y)


def learning_rate(train: pd.DataFrame, *, x: str = "step") -> go.Figure:
    fig = go.Figure()
    if "lr" in train.columns and len(train):
        fig.add_trace(go.Scatter(x=train[x], y=train["lr"], mode="lines", name="learning rate"))
    return _layout(fig, "Learning rate schedule", _X_TITLES.get(x, x), "Learning rate (per step)", height=260)


def compare_curves(curves: dict[str, tuple[pd.DataFrame, pd.DataFrame]], *, x: str = "step", log_y: bool = False):
    """Training (solid) and validation (dotted, markers) loss of several runs, one colour per run."""
    fig = go.Figure()
    palette = ["#4f46e5", "#dc2626", "#059669", "#d97706", "#0891b2", "#7c3aed", "#db2777", "#65a30d"]
    for i, (name, (train, evals)) in enumerate(curves.items()):
        colour = palette[i % len(palette)]
        if "loss" in train.columns and len(train):
            fig.add_trace(
                go.Scatter(x=train[x], y=train["loss"], mode="lines", name=f"{plot_text(name)}: training", line={"color": colour})
            )
        if "val_loss" in evals.columns and len(evals):
            fig.add_trace(
                go.Scatter(
                    x=evals[x],
                    y=evals["val_loss"],
                    mode="lines+markers",
                    name=f"{plot_text(name)}: validation",
                    line={"color": colour, "dash": "dot"},
                )
            )
    return _layout(fig, "Loss of each run (lower is better)", _X_TITLES.get(x, x), "Loss (nats)", log_y=log_y)


def class_balance(counts: dict[str, int]) -> go.Figure:
    # Class names come from the data: escaped, so a label holding <a href=...> is shown, not followed.
    fig = go.Figure(go.Bar(x=plot_texts(counts), y=list(counts.values()), text=list(counts.values()), textposition="auto"))
    return _layout(fig, "Rows per class", "Class", "Rows (count)", height=300)


def token_lengths(lengths: Sequence[int], max_length: int, *, exact: bool) -> go.Figure:
    fig = go.Figure(go.Histogram(x=list(lengths), nbinsx=40, name="texts"))
    fig.add_vline(
        x=max_length,
        line_dash="dash",
        line_color="#dc2626",
        annotation_text=f"max length {max_length}",
        annotation_position="top right",
    )
    unit = "Length (tokens)" if exact else "Length (tokens, estimated from words)"
    return _layout(fig, "Text lengths (longer texts are cut at the red line)", unit, "Rows (count)", height=300)


def confusion_matrix(matrix: list[list[int]], labels: list[str]) -> go.Figure:
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=plot_texts(labels),
            y=plot_texts(labels),
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z} rows<extra></extra>",
            colorbar={"title": "rows"},
        )
    )
    fig.update_yaxes(autorange="reversed")
    size = max(320, 60 * len(labels) + 120)
    return _layout(
        fig,
        "Confusion matrix (rows: true class, columns: predicted)",
        "Predicted class",
        "True class",
        height=min(size, 800),
    )


def per_class_scores(per_class: dict[str, dict[str, float]]) -> go.Figure:
    names = list(per_class)
    fig = go.Figure()
    for metric in ("precision", "recall", "f1"):
        fig.add_trace(go.Bar(x=plot_texts(names), y=[per_class[n][metric] for n in names], name=metric))
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, "Per-class precision, recall and F1", "Class", "Score (0 to 1)", height=320)


def probabilities(names: list[str], probs: Sequence[float], title: str = "Probability of each class") -> go.Figure:
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
    return _layout(fig, plot_text(title), "Probability (0 to 1)", "Class", height=max(200, 45 * len(names) + 110))
