"""The one-page report: self-contained HTML (no server, no network), outside strings escaped."""

from __future__ import annotations

import json
import re

from core.cli import main
from core.report import comparison_report, run_report
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config, toy_sentiment_rows

HOSTILE = "<script>alert(1)</script>"


def _run(workspace, tmp_path, tiny_bert_dir, name, **train_settings):
    data = tmp_path / "hostile.csv"
    # Labels and a file name a browser would read as markup if they went in unescaped.
    rows = [(t, "<b>good</b>" if y == "positive" else "bad & ugly") for t, y in toy_sentiment_rows(200)]
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    config = tiny_run_config(data, tiny_bert_dir, max_steps=3, **train_settings)
    config.name = name
    run = RunStore(workspace / "runs").create(config)
    assert train(config, run).state == "finished"
    return run


def test_run_report_is_self_contained_and_escaped(workspace, tmp_path, tiny_bert_dir, capsys):
    run = _run(workspace, tmp_path, tiny_bert_dir, HOSTILE)
    out = tmp_path / "report.html"
    assert main(["--workspace", str(workspace), "report", run.id, "--output", str(out)]) == 0
    size = json.loads(capsys.readouterr().out)["bytes"]
    page = out.read_text(encoding="utf-8")
    print(f"\nreport: {size / 1e6:.2f} MB")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # Nothing is fetched: no script or stylesheet from a URL, plotly.js inlined once.
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    assert page.count("Plotly.newPlot") >= 2 and size < 6_000_000
    for section in ("Data check", "Learning curves", "Scores", "Confusion matrix", "Settings", "The command"):
        assert section in page, section
    assert f"python -m core train --config {run.config_path}" in page
    # Outside strings are text: the run name, the labels.
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>good</b>" not in page and "&lt;b&gt;good&lt;/b&gt;" in page
    assert f"{run.results()['test']['accuracy']:.4g}" in page


def test_comparison_report_shows_differences(workspace, tmp_path, tiny_bert_dir):
    a = _run(workspace, tmp_path, tiny_bert_dir, "first", learning_rate=1e-3)
    b = _run(workspace, tmp_path, tiny_bert_dir, "second", learning_rate=3e-4)
    page = comparison_report([a, b])
    assert "Comparison of 2 runs" in page and "train.learning_rate" in page
    assert "0.001" in page and "0.0003" in page
    assert "first: training loss" in page and "second: training loss" in page
    assert run_report(a).count("<h1>") == 1
