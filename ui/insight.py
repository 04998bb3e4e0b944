"""Evaluate page: calibration (reliability, error, a binary decision threshold), metrics per group and the
counterfactual swap test. Each section reads the evaluation the page already made (one table of rows)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import streamlit as st

from ui import keys
from ui.i18n import language, t
from ui.safe import md, plot_text

# Literal keys (the catalog test finds them in the code); the values the page keeps are the ids.
TRUE_CLASS = "true class"
PAIR_SOURCES = {
    "en": "insight.swap.source.en",
    "zh": "insight.swap.source.zh",
    "both": "insight.swap.source.both",
    "own": "insight.swap.source.own",
}


def insight_sections(run, report) -> None:
    """Called once by the Evaluate page for a classification report."""
    st.subheader(t("insight.calibration.title"))
    calibration_section(run, report)
    st.subheader(t("insight.slice.title"))
    slices_section(report)
    st.subheader(t("insight.swap.title"))
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
    c1.metric(t("insight.calibration.ece"), f"{ece:.1%}", help=t("insight.calibration.ece.help"))
    c1.caption(md(calibration.reading(ece, language())))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=t("insight.calibration.perfect"), line={"dash": "dash"})
    )
    fig.add_trace(
        go.Bar(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            width=0.08,
            name=t("insight.calibration.this_model"),
            customdata=[b["rows"] for b in bins],
            hovertemplate=t("insight.calibration.hover") + "<extra></extra>",
        )
    )
    fig.update_layout(
        title=t("insight.calibration.chart"),
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        xaxis={"title": t("insight.calibration.stated"), "range": [0, 1]},
        yaxis={"title": t("insight.calibration.accuracy"), "range": [0, 1]},
    )
    c2.plotly_chart(fig, key="calibration_reliability")
    if len(names) == 2:
        threshold_section(run, probs, labels, names)


def threshold_section(run, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    import plotly.graph_objects as go

    from core import calibration

    saved = calibration.load_decision(run.model_dir)
    st.markdown(t("insight.threshold.title"))
    c = st.columns(3)
    positive = c[0].selectbox(
        t("insight.threshold.positive"),
        names,
        index=names.index(saved.positive) if saved else 1,
        key=f"thr_pos_{run.id}",
        help=t("insight.threshold.positive.help"),
    )
    threshold = c[1].slider(
        t("insight.threshold.threshold"), 0.05, 0.95, saved.threshold if saved else 0.5, 0.01, key=f"thr_{run.id}",
        help=t("insight.threshold.threshold.help", label=md(positive)),
    )  # fmt: skip
    band = c[2].slider(
        t("insight.threshold.band"), 0.0, 0.3, saved.band if saved else 0.0, 0.01, key=f"thr_band_{run.id}",
        help=t("insight.threshold.band.help"),
    )  # fmt: skip
    band = min(band, threshold - 0.001, 0.999 - threshold)
    pos = names.index(positive)
    decision = calibration.Decision(positive, threshold, band)
    effect = calibration.threshold_effect(probs[:, pos], labels == pos, decision)
    m = st.columns(4)
    m[0].metric(
        t("insight.threshold.precision"), f"{effect['precision']:.1%}", help=t("insight.threshold.precision.help")
    )
    m[1].metric(t("insight.threshold.recall"), f"{effect['recall']:.1%}", help=t("insight.threshold.recall.help"))
    m[2].metric(t("insight.threshold.answered"), f"{effect['accuracy']:.1%}")
    m[3].metric(t("insight.threshold.unsure"), f"{effect['unsure_share']:.1%}", help=t("insight.threshold.unsure.help"))
    sweep = pd.DataFrame(calibration.threshold_sweep(probs[:, pos], labels == pos, band))
    fig = go.Figure()
    lines = (
        ("precision", t("insight.threshold.precision")),
        ("recall", t("insight.threshold.recall")),
        ("unsure_share", t("insight.threshold.unsure_share")),
    )
    for col, name in lines:
        fig.add_trace(go.Scatter(x=sweep["threshold"], y=sweep[col], mode="lines", name=name))
    fig.add_vline(x=threshold, line_dash="dot")
    fig.update_layout(
        title=t("insight.threshold.chart", label=plot_text(positive[:30])),
        height=300,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        xaxis={"title": t("insight.threshold.threshold")},
        yaxis={"title": t("insight.threshold.share"), "range": [0, 1.02]},
    )
    st.plotly_chart(fig, key="calibration_sweep")
    c1, c2 = st.columns(2)
    if c1.button(t("insight.threshold.save"), icon=":material/save:", key=f"thr_save_{run.id}"):
        with _same_evaluation(run):
            calibration.save_decision(run.model_dir, decision)
        st.toast(t("insight.threshold.saved_toast"))
        saved = decision
    if saved is not None:
        st.caption(
            t(
                "insight.threshold.saved",
                label=md(saved.positive),
                threshold=float(saved.threshold),
                band=float(saved.band),
            )
        )
        if c2.button(t("insight.threshold.remove"), key=f"thr_clear_{run.id}"):
            with _same_evaluation(run):
                calibration.clear_decision(run.model_dir)
            st.rerun()
    st.caption(t("insight.threshold.note"))


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
    # The built-in groupings are named in the reader's language; the file's own columns keep their names.
    builtin = {
        bias.LENGTH_BUCKET: t("insight.slice.by.length"),
        TRUE_CLASS: t("insight.slice.by.class"),
        bias.MENTIONS: t("insight.slice.by.mentions"),
    }
    options = [bias.LENGTH_BUCKET, TRUE_CLASS, *extra, bias.MENTIONS]
    c1, c2 = st.columns([1, 2])
    column = c1.selectbox(
        t("insight.slice.by"),
        options,
        format_func=lambda c: builtin.get(c, str(c)),
        key="slice_by",
        help=t("insight.slice.by.help"),
    )
    if column == bias.MENTIONS:
        words = c2.text_input(t("insight.slice.words"), "he, him, his", key="slice_words")
        if not [w for w in words.split(",") if w.strip()]:
            st.info(t("insight.slice.words.none"))
            return
        groups = bias.mentions(table["text"], [w.strip() for w in words.split(",")])
    elif column == bias.LENGTH_BUCKET:
        groups = bias.length_buckets(table["text"])
    elif column == TRUE_CLASS:
        groups = table["label_name"]
    else:
        groups = table[column]
    if not extra:
        c2.caption(t("insight.slice.no_columns"))
    sliced = bias.slice_metrics(table, groups)
    fig = go.Figure(
        go.Bar(
            x=[plot_text(str(g)[:30]) for g in sliced["group"]],
            y=sliced["accuracy"],
            text=sliced["rows"],
            name=t("insight.calibration.accuracy"),
        )
    )
    # Plotly's own template field, given as the parameter: the catalog's text keeps str.format's {n}.
    fig.update_traces(texttemplate=t("insight.slice.bar_rows", n="%{text}"), textposition="outside")
    fig.update_layout(
        title=t("insight.slice.chart", column=plot_text(builtin.get(column, str(column))[:40])),
        height=300,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        yaxis={"title": t("insight.calibration.accuracy"), "range": [0, 1.1]},
        xaxis={"type": "category"},
    )
    st.plotly_chart(fig, key="slices_chart")
    st.dataframe(sliced.round(4).rename(columns=_slice_columns()), hide_index=True, width="stretch")
    st.caption(md(bias.slice_reading(sliced, builtin.get(column, str(column)), language())))


def _slice_columns() -> dict[str, str]:
    """The slice table's headers in the reader's language."""
    return {
        "group": t("insight.slice.col.group"),
        "rows": t("insight.slice.col.rows"),
        "accuracy": t("insight.slice.col.accuracy"),
        "mean_abs_error": t("insight.slice.col.mean_abs_error"),
        "rest": t("insight.slice.col.rest"),
        "gap": t("insight.slice.col.gap"),
    }


# --------------------------------------------------------------------------------------------- swap test
def _pairs(choice: str, typed: str) -> tuple[list[tuple[str, str]], str]:
    """(the word pairs, the reason none can be used: '' when they can)."""
    from core import bias

    if choice == "own":
        pairs = []
        for i, line in enumerate(typed.splitlines(), start=1):
            if not line.strip():
                continue
            a, _, b = line.partition(",")
            if not a.strip() or not b.strip():
                return [], t("insight.swap.typed.bad_line", line=i)
            pairs.append((a.strip(), b.strip()))
        return pairs, "" if pairs else t("insight.swap.typed.none")
    langs = {"en": ["en"], "zh": ["zh"]}.get(choice, ["en", "zh"])
    return [p for lang in langs for p in bias.load_pairs(bias.DEFAULT_PAIRS[lang])], ""


def swap_section(run, report) -> None:
    from core import bias
    from core.generation import predict_proba
    from ui.state import load_bundle

    c1, c2 = st.columns([1, 2])
    choice = c1.radio(
        t("insight.swap.pairs"), list(PAIR_SOURCES), format_func=lambda c: t(PAIR_SOURCES[c]), key="swap_source"
    )
    typed = ""
    if choice == "own":
        typed = c2.text_area(t("insight.swap.typed"), "he,she\n他,她", key="swap_typed", height=120)
    else:
        c2.caption(t("insight.swap.bundled"))
    pairs, problem = _pairs(choice, typed)
    if problem:
        st.info(md(problem))
        return
    key = (run.id, len(report.predictions), tuple(pairs))
    if st.button(t("insight.swap.run"), icon=":material/swap_horiz:", key="swap_run"):
        bundle = load_bundle(run)
        max_length = run.config().train.max_length
        with st.spinner(t("insight.swap.running")):
            result = bias.swap_test(
                lambda texts: predict_proba(bundle, texts, max_length=max_length),
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
    m[0].metric(t("insight.swap.tested"), f"{result.tested:,}")
    m[1].metric(
        t("insight.swap.changed"),
        f"{result.flip_rate:.1%}",
        help=t("insight.swap.changed.help", flips=int(result.flips), tested=int(result.tested)),
    )
    m[2].metric(t("insight.swap.shift"), f"{result.mean_shift:.1%}")
    st.caption(md(bias.swap_reading(result, language())))
    if result.per_pair:
        st.dataframe(pd.DataFrame(result.per_pair), hide_index=True, width="stretch")
    if result.worst:
        st.markdown(t("insight.swap.worst"))
        st.dataframe(pd.DataFrame(result.worst), hide_index=True, width="stretch")
