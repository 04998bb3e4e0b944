"""Tune page: the learning curve in one click (train on 10/25/50/100% of the rows, read the curve)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.format import state_badge
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

    st.subheader("Would more data help? (learning curve)")
    st.caption(
        "Trains the model above on "
        + ", ".join(f"{f:.0%}" for f in FRACTIONS)
        + " of the training rows (the first value of each setting above), scores each on the same validation "
        "rows and reads the curve. Four runs: about as long as two full trainings."
    )
    if st.button("Draw the learning curve", icon=":material/show_chart:", key="lc_start"):
        _, created = runner().start(base, metric)
        if not created:
            st.info("A learning curve is already being drawn; it is shown below.")
    latest = runner().store.latest()
    if latest is not None:
        active = latest["state"] in ACTIVE and runner().active()
        st.fragment(run_every=2.0 if active else None)(_show)(latest["id"])


def _show(curve_id: str) -> None:
    import plotly.graph_objects as go

    record = runner().store.get(curve_id)
    done = [p for p in record["points"] if p["state"] == "finished"]
    st.markdown(f"Learning curve {md(record['id'])} {state_badge(record['state'])}  \n{md(record['message'])}")
    st.progress(len(done) / len(record["points"]), text=f"{len(done)} of {len(record['points'])} points")
    if done:
        metric = record["metric"]
        fig = go.Figure(
            go.Scatter(
                x=[p["rows"] for p in done],
                y=[p["score"] for p in done],
                mode="lines+markers",
                text=[f"{p['fraction']:.0%}" for p in done],
                hovertemplate="%{x:,} rows (%{text}): %{y:.4g}<extra></extra>",
            )
        )
        fig.update_layout(
            title=f"{plot_text(metric)} against training rows",
            height=320,
            margin={"l": 60, "r": 20, "t": 50, "b": 50},
            xaxis={"title": "Training rows", "type": "log"},
            yaxis={"title": plot_text(metric)},
        )
        st.plotly_chart(fig, key=f"lc_{curve_id}")
    if record.get("reading"):
        st.info(md(record["reading"]))
    if record["state"] in ACTIVE and runner().active() and st.button("Stop the learning curve", key="lc_stop"):
        runner().stop()
