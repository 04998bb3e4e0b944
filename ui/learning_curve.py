"""Tune page: the learning curve in one click (train on 10/25/50/100% of the rows, read the curve)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.i18n import status_message
from ui import live_api
from ui.format import state_badge
from ui.i18n import language, t
from ui.safe import md, plot_text
from ui.state import registry, workspace

ACTIVE = ("queued", "running")


@st.cache_resource(show_spinner=False)
def _runner(root: str):
    from core.learning_curve import CurveRunner, CurveStore

    # One per server process, like the search runner: a second click while one runs re-attaches to it.
    return CurveRunner(registry(), CurveStore(Path(root) / "curves"))


def runner():
    return _runner(str(workspace()))


def learning_curve_panel(base, metric: str) -> None:
    """A button that starts a curve with the settings above (the first value of each), and the latest curve."""
    from core.learning_curve import FRACTIONS

    st.subheader(t("insight.curve.title"))
    st.caption(t("insight.curve.intro", shares=t("insight.curve.list_separator").join(f"{f:.0%}" for f in FRACTIONS)))
    if st.button(t("insight.curve.start"), icon=":material/show_chart:", key="lc_start"):
        _, created = runner().start(base, metric)
        if not created:
            st.info(t("insight.curve.already"))
    latest = runner().store.latest()
    if latest is not None:
        active = latest["state"] in ACTIVE and runner().active()
        # Served with the live route (serve.py): no timer; the browser watches the curve's record (_show).
        timed = active and not live_api.available()
        st.fragment(run_every=2.0 if timed else None)(_show)(latest["id"])


def _show(curve_id: str) -> None:
    import plotly.graph_objects as go

    record = runner().store.get(curve_id)
    if record["state"] in ACTIVE and runner().active() and live_api.available():  # as the timer above
        from core.live_feed import record_signature
        from ui import live_ticker

        # A rerun when a point starts or ends, instead of one every 2 s that sent the same chart again.
        live_ticker.watch_record("curves", curve_id, record_signature(record))
    done = [p for p in record["points"] if p["state"] == "finished"]
    state = state_badge(record["state"])
    st.markdown(
        t("insight.curve.heading", id=md(record["id"]), state=state, message=md(status_message(record, language())))
    )
    st.progress(
        len(done) / len(record["points"]), text=t("insight.curve.progress", done=len(done), total=len(record["points"]))
    )
    if done:
        metric = record["metric"]
        fig = go.Figure(
            go.Scatter(
                x=[p["rows"] for p in done],
                y=[p["score"] for p in done],
                mode="lines+markers",
                text=[f"{p['fraction']:.0%}" for p in done],
                hovertemplate=t("insight.curve.hover") + "<extra></extra>",
            )
        )
        fig.update_layout(
            title=t("insight.curve.chart", metric=plot_text(metric)),
            height=320,
            margin={"l": 60, "r": 20, "t": 50, "b": 50},
            xaxis={"title": t("insight.curve.rows"), "type": "log"},
            yaxis={"title": plot_text(metric)},
        )
        st.plotly_chart(fig, key=f"lc_{curve_id}")
    reading = record.get("reading_message") or {"message": record.get("reading")}  # a curve drawn before keys
    if reading.get("message"):
        st.info(md(status_message(reading, language())))
    if record["state"] in ACTIVE and runner().active() and st.button(t("insight.curve.stop"), key="lc_stop"):
        runner().stop()
