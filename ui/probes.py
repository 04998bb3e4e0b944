"""Live probe sentences on the Train form, in the live panel and on Compare (core.probes logs them)."""

from __future__ import annotations

import streamlit as st

from core.probes import MAX_PROBES, describe, latest_probes, probe_history
from ui.i18n import t
from ui.safe import plot_text


def probe_inputs(task: str, key_prefix: str) -> dict:
    """The Train form's probe box: up to five inputs, one per line; returns {"probe_texts": [...]}."""
    generation = task == "generation"
    with st.expander(t("insight.probes.expander")):
        raw = st.text_area(
            t("insight.probes.box", n=MAX_PROBES),
            key=f"{key_prefix}probe_texts",
            placeholder=t("insight.probes.placeholder.generation" if generation else "insight.probes.placeholder"),
            help=t("insight.probes.help.generation" if generation else "insight.probes.help"),
        )
    return {"probe_texts": [line.strip() for line in raw.splitlines() if line.strip()]}


def probes_live(records: list, run_id: str) -> None:
    """The probes' answers at the last validation, and how each answer's probability moved over the run."""
    history = probe_history(records)
    if not history:
        return
    import plotly.graph_objects as go

    st.markdown(t("insight.probes.title"))
    latest = latest_probes(records)
    st.dataframe(
        [{"probe": r["text"], t("insight.probes.answer_at", step=r["step"]): describe(r)} for r in latest],
        hide_index=True,
        width="stretch",
    )
    if "probs" not in history[0]:
        return  # generation: the continuations are the story; a chart of text would say nothing
    fig = go.Figure()
    for r in latest:
        # Each probe's line follows the label it gives now, so the chart ends where the table is.
        rows = [h for h in history if h["probe"] == r["probe"]]
        fig.add_trace(
            go.Scatter(
                x=[h["step"] for h in rows],
                y=[h["probs"].get(r["label"], 0.0) for h in rows],
                mode="lines+markers",
                name=plot_text(f"{r['text'][:40]} → {r['label']}"),
            )
        )
    fig.update_layout(
        title=t("insight.probes.chart"),
        height=300,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.25},
        yaxis={"range": [0, 1], "title": t("insight.probes.probability")},
        xaxis={"title": t("insight.probes.step")},
    )
    st.plotly_chart(fig, key=f"probes_{run_id}")


def probes_across_runs(runs: list) -> None:
    """Compare: every probe any of the runs pinned, with each run's last answer."""
    answers: dict[str, dict[str, str]] = {}
    for run in runs:
        for r in latest_probes(run.metrics()):
            answers.setdefault(r["text"], {})[run.id] = describe(r)
    if not answers:
        st.caption(t("insight.probes.none"))
        return
    st.dataframe(
        [{"probe": text, **{run.id: got.get(run.id, "–") for run in runs}} for text, got in answers.items()],
        hide_index=True,
        width="stretch",
    )
