"""Evaluate page: calibration (reliability, error, a binary decision threshold), metrics per group and the
counterfactual swap test. Each section reads the evaluation the page already made (one table of rows)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import streamlit as st

from ui import keys
from ui.safe import md, plot_text

PAIR_SOURCES = ("English (bundled)", "Chinese (bundled)", "English and Chinese", "Type my own pairs")


def insight_sections(run, report) -> None:
    """Called once by the Evaluate page for a classification report."""
    st.subheader("Can I trust its probabilities? (calibration)")
    calibration_section(run, report)
    st.subheader("Is it worse for some group? (slices)")
    slices_section(report)
    st.subheader("Do some words alone change its answer? (swap test)")
    swap_section(run, report)


# ------------------------------------------------------------------------------------------- calibration
def _probs(report) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names = report.label_names
    return report.predictions[[f"p({n})" for n in names]].to_numpy(), report.predictions["label"].to_numpy(), names


def calibration_section(run, report) -> None:
    import plotly.graph_objects as go

    from core import calibration

    probs, labels, names = _probs(report)
    bins = calibration.reliability(probs, labels)
    ece = calibration.expected_calibration_error(probs, labels)
    c1, c2 = st.columns([1, 2])
    c1.metric("Expected calibration error", f"{ece:.1%}", help="Mean gap between stated confidence and accuracy.")
    c1.caption(md(calibration.reading(ece)))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"dash": "dash"}))
    fig.add_trace(
        go.Bar(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            width=0.08,
            name="this model",
            customdata=[b["rows"] for b in bins],
            hovertemplate="said %{x:.0%}, right %{y:.0%} (%{customdata} rows)<extra></extra>",
        )
    )
    fig.update_layout(
        title="Reliability: stated confidence against how often it was right",
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        xaxis={"title": "Stated confidence", "range": [0, 1]},
        yaxis={"title": "Accuracy", "range": [0, 1]},
    )
    c2.plotly_chart(fig, key="calibration_reliability")
    if len(names) == 2:
        threshold_section(run, probs, labels, names)


def threshold_section(run, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    import plotly.graph_objects as go

    from core import calibration

    saved = calibration.load_decision(run.model_dir)
    st.markdown("**Decision threshold** (two labels)")
    c = st.columns(3)
    positive = c[0].selectbox(
        "Positive label",
        names,
        index=names.index(saved.positive) if saved else 1,
        key=f"thr_pos_{run.id}",
        help="The label the threshold is about; the other one is said below it.",
    )
    threshold = c[1].slider(
        "Threshold", 0.05, 0.95, saved.threshold if saved else 0.5, 0.01, key=f"thr_{run.id}",
        help=f"Say '{md(positive)}' when its probability is at or above this.",
    )  # fmt: skip
    band = c[2].slider(
        "Unsure band (±)", 0.0, 0.3, saved.band if saved else 0.0, 0.01, key=f"thr_band_{run.id}",
        help="Answer 'unsure' when the probability is this close to the threshold: fewer mistakes, fewer answers.",
    )  # fmt: skip
    band = min(band, threshold - 0.001, 0.999 - threshold)
    pos = names.index(positive)
    decision = calibration.Decision(positive, threshold, band)
    effect = calibration.threshold_effect(probs[:, pos], labels == pos, decision)
    m = st.columns(4)
    m[0].metric("Precision", f"{effect['precision']:.1%}", help="Of the rows it calls positive, how many are.")
    m[1].metric("Recall", f"{effect['recall']:.1%}", help="Of the positive rows it answers, how many it finds.")
    m[2].metric("Accuracy (answered)", f"{effect['accuracy']:.1%}")
    m[3].metric("Unsure", f"{effect['unsure_share']:.1%}", help="Rows it declines to answer.")
    sweep = pd.DataFrame(calibration.threshold_sweep(probs[:, pos], labels == pos, band))
    fig = go.Figure()
    for col, name in (("precision", "precision"), ("recall", "recall"), ("unsure_share", "share unsure")):
        fig.add_trace(go.Scatter(x=sweep["threshold"], y=sweep[col], mode="lines", name=name))
    fig.add_vline(x=threshold, line_dash="dot")
    fig.update_layout(
        title=f"As the threshold moves (positive: {plot_text(positive[:30])})",
        height=300,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        xaxis={"title": "Threshold"},
        yaxis={"title": "Share", "range": [0, 1.02]},
    )
    st.plotly_chart(fig, key="calibration_sweep")
    c1, c2 = st.columns(2)
    if c1.button("Save this threshold with the model", icon=":material/save:", key=f"thr_save_{run.id}"):
        with _same_evaluation(run):
            calibration.save_decision(run.model_dir, decision)
        st.toast("Saved: the Playground, Compare and `predict` now answer with this threshold.")
        saved = decision
    if saved is not None:
        st.caption(
            md(f"Saved with the model: '{saved.positive}' at {saved.threshold:.2f}, unsure within ±{saved.band:.2f}.")
        )
        if c2.button("Remove the saved threshold", key=f"thr_clear_{run.id}"):
            with _same_evaluation(run):
                calibration.clear_decision(run.model_dir)
            st.rerun()
    st.caption("Choose the threshold on validation data, not on the test split you report scores on.")


@contextlib.contextmanager
def _same_evaluation(run):
    """The threshold lives in workbench.json, whose time stamp keys the Evaluate page's results (and the model
    cache, so the Playground loads the new threshold). Scores do not depend on it: keep this page evaluated."""
    meta = run.model_dir / "workbench.json"
    before = meta.stat().st_mtime
    yield
    after = meta.stat().st_mtime
    done = st.session_state.get(keys.EVALUATED, set())
    st.session_state[keys.EVALUATED] = done | {(k[0], after, *k[2:]) for k in done if k[:2] == (run.id, before)}


# ------------------------------------------------------------------------------------------------ slices
def slices_section(report) -> None:
    import plotly.graph_objects as go

    from core import bias

    table = report.predictions
    extra = [c for c in table.columns if c not in bias._EVAL_COLUMNS and not str(c).startswith("p(")]
    options = [bias.LENGTH_BUCKET, "true class", *extra, bias.MENTIONS]
    c1, c2 = st.columns([1, 2])
    column = c1.selectbox(
        "Group the rows by",
        options,
        key="slice_by",
        help="A column of the evaluated file (e.g. source, a user attribute), the text length, or words.",
    )
    if column == bias.MENTIONS:
        words = c2.text_input("Words (comma-separated)", "he, him, his", key="slice_words")
        try:
            groups = bias.mentions(table["text"], [w.strip() for w in words.split(",")])
        except Exception as err:  # noqa: BLE001 - a plain message beside the box
            st.info(md(str(err)))
            return
    elif column == bias.LENGTH_BUCKET:
        groups = bias.length_buckets(table["text"])
    elif column == "true class":
        groups = table["label_name"]
    else:
        groups = table[column]
    if not extra:
        c2.caption("Evaluate on a new file to group by its other columns (e.g. a source or an attribute).")
    sliced = bias.slice_metrics(table, groups)
    fig = go.Figure(
        go.Bar(
            x=[plot_text(str(g)[:30]) for g in sliced["group"]],
            y=sliced["accuracy"],
            text=sliced["rows"],
            name="accuracy",
        )
    )
    fig.update_traces(texttemplate="%{text} rows", textposition="outside")
    fig.update_layout(
        title=f"Accuracy per group of {plot_text(str(column)[:40])}",
        height=300,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        yaxis={"title": "Accuracy", "range": [0, 1.1]},
        xaxis={"type": "category"},
    )
    st.plotly_chart(fig, key="slices_chart")
    st.dataframe(sliced.round(4), hide_index=True, width="stretch")
    st.caption(md(bias.slice_reading(sliced, column)))


# --------------------------------------------------------------------------------------------- swap test
def _pairs(choice: str, typed: str) -> list[tuple[str, str]]:
    from core import bias
    from core.errors import DataError

    if choice == PAIR_SOURCES[3]:
        pairs = []
        for i, line in enumerate(typed.splitlines(), start=1):
            if not line.strip():
                continue
            a, _, b = line.partition(",")
            if not a.strip() or not b.strip():
                raise DataError(f"Line {i}: write two words separated by a comma, e.g. he,she.")
            pairs.append((a.strip(), b.strip()))
        if not pairs:
            raise DataError("Type at least one pair, e.g. he,she.")
        return pairs
    langs = {"English (bundled)": ["en"], "Chinese (bundled)": ["zh"]}.get(choice, ["en", "zh"])
    return [p for lang in langs for p in bias.load_pairs(bias.DEFAULT_PAIRS[lang])]


def swap_section(run, report) -> None:
    from core import bias
    from core.generation import predict_proba
    from ui.state import load_bundle

    c1, c2 = st.columns([1, 2])
    choice = c1.radio("Word pairs", PAIR_SOURCES, key="swap_source")
    typed = ""
    if choice == PAIR_SOURCES[3]:
        typed = c2.text_area("One pair per line", "he,she\n他,她", key="swap_typed", height=120)
    else:
        c2.caption("Bundled lists: pronouns, family words, titles and names (data/bias/pairs_en.csv, pairs_zh.csv).")
    try:
        pairs = _pairs(choice, typed)
    except Exception as err:  # noqa: BLE001 - a plain message beside the box
        st.info(md(str(err)))
        return
    key = (run.id, len(report.predictions), tuple(pairs))
    if st.button("Run the swap test", icon=":material/swap_horiz:", key="swap_run"):
        bundle = load_bundle(run)
        max_length = run.config().train.max_length
        with st.spinner("Scoring every text with the words swapped..."):
            result = bias.swap_test(
                lambda t: predict_proba(bundle, t, max_length=max_length),
                report.predictions["text"].astype(str).tolist(),
                pairs,
                report.label_names,
            )
        st.session_state[keys.SWAP_RESULT] = (key, result)
    saved = st.session_state.get(keys.SWAP_RESULT)
    if not saved or saved[0] != key:
        return
    result = saved[1]
    m = st.columns(3)
    m[0].metric("Texts with a pair word", f"{result.tested:,}")
    m[1].metric("Answer changed", f"{result.flip_rate:.1%}", help=f"{result.flips:,} of {result.tested:,} texts.")
    m[2].metric("Mean probability shift", f"{result.mean_shift:.1%}")
    st.caption(md(bias.swap_reading(result)))
    if result.per_pair:
        st.dataframe(pd.DataFrame(result.per_pair), hide_index=True, width="stretch")
    if result.worst:
        st.markdown("**Largest shifts**")
        st.dataframe(pd.DataFrame(result.worst), hide_index=True, width="stretch")
