"""Chart builders: every chart has axis titles; class names stay a category axis; log scale only when asked."""

from __future__ import annotations

import pandas as pd

from ui import charts


def _titles(fig) -> tuple[str, str]:
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def test_every_chart_names_its_axes_with_units():
    train = pd.DataFrame({"step": [1, 2, 3], "epoch": [0.3, 0.6, 1.0], "loss": [1.0, 0.8, 0.6], "lr": [1e-3] * 3})
    evals = pd.DataFrame({"step": [3], "epoch": [1.0], "val_loss": [0.7]})
    figures = [
        charts.loss_curves(train, evals),
        charts.learning_rate(train),
        charts.compare_curves({"a": (train, evals), "b": (train, evals)}),
        charts.class_balance({"neg": 3, "pos": 5}),
        charts.token_lengths([5, 9, 30], 16, exact=True),
        charts.confusion_matrix([[3, 1], [0, 4]], ["neg", "pos"]),
        charts.per_class_scores({"neg": {"precision": 1.0, "recall": 0.75, "f1": 0.86}}),
        charts.probabilities(["neg", "pos"], [0.2, 0.8]),
    ]
    for fig in figures:
        x, y = _titles(fig)
        assert x and y, fig.layout.title.text
    assert "tokens" in _titles(figures[4])[0] and "count" in _titles(figures[4])[1]


def test_category_axes_stay_categories_and_log_scale_is_opt_in():
    probs = charts.probabilities(["negative", "positive"], [0.3, 0.7])
    assert probs.layout.yaxis.type == "category" and list(probs.data[0].y) == ["positive", "negative"]
    # Classes "0" and "1" would otherwise be read as numbers by plotly (ticks at -0.5, 0.5, 1.5).
    matrix = charts.confusion_matrix([[1, 0], [0, 1]], ["0", "1"])
    assert matrix.layout.xaxis.type == matrix.layout.yaxis.type == "category"
    assert charts.class_balance({"0": 3, "1": 5}).layout.xaxis.type == "category"
    assert charts.per_class_scores({"0": {"precision": 1.0, "recall": 1.0, "f1": 1.0}}).layout.xaxis.type == "category"
    assert charts.probabilities(["0", "1"], [0.4, 0.6]).layout.yaxis.type == "category"
    train = pd.DataFrame({"step": [1, 2], "epoch": [0.5, 1.0], "loss": [1.0, 0.5]})
    empty = pd.DataFrame(columns=["step", "epoch"])
    assert charts.loss_curves(train, empty, log_y=True).layout.yaxis.type == "log"
    by_epoch = charts.loss_curves(train, empty, x="epoch")
    assert list(by_epoch.data[0].x) == [0.5, 1.0] and "Epoch" in by_epoch.layout.xaxis.title.text
