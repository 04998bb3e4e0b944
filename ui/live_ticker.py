"""The live panel's numbers and curves and the sidebar's progress, drawn and refreshed by the browser itself.

Used when the server answers ui/live_api.py's route (serve.py, which start.sh runs). A Streamlit timer reruns the
page's Python every few seconds and the browser then redraws the elements; on a 2-core machine that cost a
training run a third of its speed with the live page open (bench/live_page.py). Here the browser asks for the
numbers (one small JSON request per run every few seconds, shared by all the parts of a page) and updates only the
text and the canvases that changed. The page's Python runs again only when the run's signature changes (a new
state, status message or evaluation), because the part mounted with the old one asks for it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import i18n as core_i18n
from ui import live_api
from ui.i18n import language, t

_CSS = """
:host { display: block; }
.progress-text { font-size: 14px; margin-bottom: 4px; color: rgb(49, 51, 63); }
.progress-text.small { font-size: 13px; }
.track { height: 8px; border-radius: 4px; background: rgba(49, 51, 63, 0.12); overflow: hidden; }
.bar { height: 100%; width: 0; background: #4f46e5; }
/* Five across on a wide page; on a narrow one they wrap to more rows rather than cut a number short. */
.metrics { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 16px; margin-top: 16px; }
.metric .label { font-size: 14px; color: rgb(49, 51, 63); }
.metric .value { font-size: 2.25rem; line-height: 1.4; color: rgb(49, 51, 63); white-space: nowrap; }
.chart { width: 100%; margin-top: 8px; position: relative; }
.tip { display: none; position: absolute; pointer-events: none; background: rgba(255, 255, 255, 0.95);
  border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 4px; padding: 4px 8px; font-size: 13px;
  color: rgb(49, 51, 63); white-space: nowrap; }
canvas { display: block; }
"""

_component = st.components.v2.component(
    "workbench.live_ticker", js=(Path(__file__).with_name("live_ticker.js")).read_text(encoding="utf-8"), css=_CSS
)

# The labels the browser fills in. Strings with fields ({step}, {s:02d}) go as their templates.
_TEMPLATES = {
    "progress": "live.progress",
    "seconds": "format.seconds",
    "minutes": "format.minutes",
    "hours": "format.hours",
}
_LABELS = {
    "speed": "live.metric.speed",
    "elapsed": "live.metric.elapsed",
    "eta": "live.metric.eta",
    "val_loss": "live.metric.val_loss",
    "score": "live.metric.val_score",
    "x_step": "chart.x.step",
    "x_epoch": "chart.x.epoch",
    "loss_title": "chart.loss.title",
    "loss_y": "chart.loss.y",
    "loss_train": "chart.loss.train",
    "loss_val": "chart.loss.val",
    "lr_title": "chart.lr.title",
    "lr_y": "chart.lr.y",
    "lr_name": "chart.lr.name",
}


def _template(key: str) -> str:
    lang = language()
    for source in (lang, core_i18n.DEFAULT):
        entry = core_i18n.catalog(source).get(key)
        if isinstance(entry, str):
            return entry
    return key


def _text(headlines: dict[str, str], sidebar: bool = False) -> dict:
    text = {name: _template(key) for name, key in _TEMPLATES.items()}
    if sidebar:
        text["progress"] = _template("sidebar.progress")
        return text
    text.update({name: t(key) for name, key in _LABELS.items()})
    text["headlines"] = {metric: t(key) for metric, key in headlines.items()}
    return text


def _mount(url: str, part: str, key: str, text: dict, watch: dict | None, **extra) -> None:
    # ``watch``: values of the route's answer (core/live_feed.py) whose change must rerun the fragment.
    data = {
        "url": url,
        "poll_ms": int(live_api.POLL_S * 1000),
        "part": part,
        "text": text,
        "watch": watch or {},
        **extra,
    }
    _component(key=key, data=data, default={"changed": None}, on_changed_change=_noop)


def numbers(run_id: str, signature: str, headlines: dict[str, str]) -> None:
    """The progress bar and the five numbers; a change of ``signature`` reruns the fragment they are in."""
    _mount(live_api.url(run_id), "numbers", f"live_numbers_{run_id}", _text(headlines), {"signature": signature})


def curves(run_id: str, x: str, log_y: bool) -> None:
    """The loss and learning-rate curves, drawn on canvases as the points arrive."""
    _mount(live_api.url(run_id), "curves", f"live_curves_{run_id}", _text({}), None, x=x, log_y=log_y)


def sidebar_bar(run_id: str) -> None:
    """The sidebar's progress bar for a training run; the run's end, or a run made or deleted elsewhere (the CLI
    starts one), reruns the sidebar."""
    from ui.state import workspace

    watch = {"active": True, "runs": live_api.runs_version(str(workspace() / "runs"))}
    _mount(live_api.url(run_id), "bar", f"sidebar_bar_{run_id}", _text({}, sidebar=True), watch)


def _noop() -> None:
    """A trigger needs a callback to be reported; the rerun it brings is all that is needed."""


def watch_record(kind: str, record_id: str, signature: str) -> None:
    """Nothing to see: it asks for a background job's signature (``kind``: "searches" or "curves") every few seconds
    and reruns the fragment it is in when the job's record changes."""
    _mount(live_api.record_url(kind, record_id), "watch", f"watch_{kind}_{record_id}", {}, {"signature": signature})
