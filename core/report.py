"""One self-contained HTML page per run (or per comparison of runs) to send to someone.

The page opens from disk without a server or a network: plotly.js is inlined once (about 4.7 MB; the charts
stay interactive, and no image renderer such as kaleido is needed), everything else is plain HTML and CSS.
Every string that comes from outside (file names, column and label names, run names, model output) goes
through ``esc`` before it is placed in the page.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2937}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #e5e7eb;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d1d5db;padding:.3em .7em;text-align:left}
th{background:#f3f4f6}.muted{color:#6b7280}.ok{color:#047857}.warning{color:#b45309}.problem{color:#b91c1c}
pre{background:#f3f4f6;padding:.8em;overflow-x:auto;white-space:pre-wrap}
"""


def esc(value: Any) -> str:
    """Outside text as text: never markup."""
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class _Figures:
    """Plotly figures as HTML divs; the first one carries plotly.js, the rest reuse it."""

    def __init__(self) -> None:
        self.inlined = False

    def html(self, fig) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=not self.inlined, config={"displaylogo": False})
        self.inlined = True
        return out


def _curves(runs: dict[str, Any]):
    """Training and validation loss of one or several runs on one chart."""
    import plotly.graph_objects as go

    from core.curves import curve_frames

    fig = go.Figure()
    for name, run in runs.items():
        train, evals = curve_frames(run.metrics())
        prefix = f"{esc(name)}: " if len(runs) > 1 else ""  # plotly reads tags in trace names: escape
        if "loss" in train:
            fig.add_trace(go.Scatter(x=train["step"], y=train["loss"], mode="lines", name=f"{prefix}training loss"))
        if "val_loss" in evals:
            fig.add_trace(
                go.Scatter(x=evals["step"], y=evals["val_loss"], mode="lines+markers", name=f"{prefix}validation loss")
            )
    fig.update_layout(title="Loss (lower is better)", height=360, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    fig.update_xaxes(title_text="Optimizer step")
    fig.update_yaxes(title_text="Loss")
    return fig


def _confusion(matrix: list[list[int]], labels: list[str]):
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", text=matrix, texttemplate="%{text}"))
    fig.update_layout(title="Confusion matrix (test split)", height=360, margin={"l": 80, "r": 20, "t": 50, "b": 60})
    fig.update_xaxes(title_text="Predicted")
    fig.update_yaxes(title_text="True", autorange="reversed")
    return fig


def _page(title: str, body: list[str]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + f'<p class="muted">Written by the Fine-Tuning Workbench on {esc(stamp)}.</p></body></html>'
    )


def _data_section(run) -> list[str]:
    from core.model_card import _run_facts

    facts = _run_facts(run.dir)
    out = ["<h2>Data</h2>"]
    file = facts["config"]["data"].get("train_path", "")
    sizes = ", ".join(f"{n:,} {name}" for name, n in facts["splits"].items())
    out.append(f"<p>File <code>{esc(file.rsplit('/', 1)[-1])}</code>: {esc(sizes)} rows.</p>")
    if facts["class_counts"]:
        out.append(_table(["class", "training rows"], [[k, v] for k, v in facts["class_counts"].items()]))
    for note in facts["notes"]:
        out.append(f"<p class='muted'>{esc(note)}</p>")
    if facts["findings"]:
        out.append("<h3>Data check</h3><ul>")
        out += [
            f"<li class='{esc(f['level'])}'><b>{esc(f['title'])}</b>: {esc(f['detail'])}</li>"
            for f in facts["findings"]
        ]
        out.append("</ul>")
    return out


def _scores(results: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for split in ("validation", "test"):
        for key, value in (results.get(split) or {}).items():
            if isinstance(value, int | float):
                rows.append([split, key, _fmt(value)])
    return rows


def _settings(config: dict[str, Any]) -> list[list[Any]]:
    return [
        [f"{section}.{k}", json.dumps(v) if isinstance(v, list | dict) else _fmt(v)]
        for section in ("data", "model", "train")
        for k, v in config.get(section, {}).items()
    ]


def _examples(run, bundle, figures: _Figures) -> list[str]:
    """A confusion matrix (classification), errors (regression) or generated examples, from the test split."""
    from core.evaluation import evaluate_run

    split = "test" if (run.data_dir / "test.parquet").exists() else "validation"
    try:
        report = evaluate_run(run, split=split, bundle=bundle)
    except Exception as err:  # noqa: BLE001 - the rest of the report is still worth having
        return [f"<p class='muted'>No examples: {esc(err)}</p>"]
    task = run.config().model.task
    if task == "classification":
        metrics = report.metrics
        out = ["<h2>Confusion matrix</h2>", figures.html(_confusion(metrics["confusion_matrix"], metrics["labels"]))]
        wrong = report.misclassified().head(10)
        if len(wrong):
            cols = [c for c in ("text", "text_pair", "label_name", "predicted", "confidence") if c in wrong]
            out += ["<h3>Some mistakes</h3>", _table(cols, wrong[cols].astype(str).values.tolist())]
        return out
    if task == "regression":
        cols = [c for c in ("text", "label", "predicted", "error") if c in report.predictions]
        return ["<h2>Examples</h2>", _table(cols, report.predictions[cols].head(10).astype(str).values.tolist())]
    frame = report.predictions
    if "generated" not in frame:
        from core.generation import GenerationSettings, generate_batch
        from core.models import load_for_inference

        bundle = bundle or load_for_inference(run.model_dir)
        prompts = [" ".join(t.split()[:6]) for t in frame["text"].astype(str).head(5)]
        outs = generate_batch(bundle, prompts, GenerationSettings(max_new_tokens=40))
        frame = pd.DataFrame({"prompt": prompts, "generated": outs})
    cols = [c for c in ("prompt", "reference", "generated") if c in frame]
    return ["<h2>Generation examples</h2>", _table(cols, frame[cols].head(10).astype(str).values.tolist())]


def _setting(config: dict[str, Any], key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def run_report(run, bundle=None) -> str:
    """The whole story of one run on one page: data, curves, scores, examples, settings, the command."""
    from core.export import train_command
    from core.inference import describe_run_model

    config = run.config_dict()
    figures = _Figures()
    status = run.status()
    name = config.get("name") or run.id
    body = [f"<h1>Run {esc(name)}</h1>", f"<p class='muted'>{esc(run.id)} · {esc(status.get('state', '?'))}</p>"]
    if run.has_model():
        body.append(f"<p>{esc(describe_run_model(run))}</p>")
    if status.get("message"):
        body.append(f"<p>{esc(status['message'])}</p>")
    body += _data_section(run)
    body += ["<h2>Learning curves</h2>", figures.html(_curves({run.id: run}))]
    results = run.results()
    body += [
        "<h2>Scores</h2>",
        _table(["split", "metric", "value"], _scores(results)) if results else "<p>None yet.</p>",
    ]
    if run.has_model():
        body += _examples(run, bundle, figures)
    body += ["<h2>Settings</h2>", _table(["setting", "value"], _settings(config))]
    body += ["<h2>The command</h2>", f"<pre>{esc(train_command(run.config_path))}</pre>"]
    return _page(f"Run {name}", body)


def comparison_report(runs: list) -> str:
    """Several runs side by side: scores, the settings that differ, the curves on one chart."""
    from core.config import config_diff

    figures = _Figures()
    names = [r.config_dict().get("name") or r.id for r in runs]
    body = [
        f"<h1>Comparison of {len(runs)} runs</h1>",
        "<p>" + ", ".join(f"<code>{esc(n)}</code>" for n in names) + "</p>",
    ]
    metrics = sorted(
        {
            (s, k)
            for r in runs
            for s in ("validation", "test")
            for k, v in (r.results().get(s) or {}).items()
            if isinstance(v, int | float)
        }
    )
    rows = [[f"{s} {k}", *[_fmt((r.results().get(s) or {}).get(k, "")) for r in runs]] for s, k in metrics]
    body += ["<h2>Scores</h2>", _table(["metric", *names], rows)]
    configs = [r.config_dict() for r in runs]
    keys = sorted({k for c in configs[1:] for k in config_diff(configs[0], c)})
    diff = {k: [_setting(c, k) for c in configs] for k in keys}
    body += ["<h2>Settings that differ</h2>"]
    body.append(_table(["setting", *names], [[k, *map(_fmt, v)] for k, v in diff.items()]) if diff else "<p>None.</p>")
    body += ["<h2>Learning curves</h2>", figures.html(_curves(dict(zip(names, runs))))]
    return _page("Comparison", body)
