"""Evaluate: score a finished run on a held-out split or a new file; see where it goes wrong."""

from __future__ import annotations

import streamlit as st

from ui import charts, keys
from ui.format import metric
from ui.guard import guarded
from ui.i18n import t, translated_options
from ui.insight import insight_sections
from ui.pickers import pick_finished_run
from ui.safe import md
from ui.state import load_bundle, run_store
from ui.uploads import stage

MAX_ROWS_SHOWN = 1_000
HEADLINE = (
    "accuracy", "precision", "recall", "f1", "loss", "mse", "mae", "r2", "perplexity", "bleu", "rouge_l",
    "exact_match", "stopped",
)  # fmt: skip
MAX_GENERATIONS = 50  # test prompts answered by a generation run (each is a full generate call)
# Literal keys (the catalog test finds them in the code); the English texts are the ones the tests read.
METRIC_NAMES = {
    "accuracy": "eval.metric.accuracy", "precision": "eval.metric.precision", "recall": "eval.metric.recall",
    "f1": "eval.metric.f1", "loss": "eval.metric.loss", "mse": "eval.metric.mse", "mae": "eval.metric.mae",
    "r2": "eval.metric.r2", "perplexity": "eval.metric.perplexity", "bleu": "eval.metric.bleu",
    "rouge_l": "eval.metric.rouge_l", "exact_match": "eval.metric.exact_match", "stopped": "eval.metric.stopped",
    "rows": "eval.metric.rows",
}  # fmt: skip
SOURCES = {"split": "eval.source.split", "file": "eval.source.file"}
SPLIT_NAMES = {"test": "eval.split.test", "validation": "eval.split.validation", "train": "eval.split.train"}
# Columns of the tables shown (the data keeps its own names; only the header a reader sees is translated).
COLUMNS = {
    "class": "eval.col.class", "true class": "eval.col.true_class", "predicted class": "eval.col.predicted_class",
    "text": "eval.col.text", "text_pair": "eval.col.text_pair", "confidence": "eval.col.confidence",
    "label": "eval.col.label", "predicted": "eval.col.predicted", "error": "eval.col.error",
    "precision": "eval.col.precision", "recall": "eval.col.recall", "f1": "eval.col.f1",
    "support": "eval.col.support", "prompt": "eval.col.prompt", "reference": "eval.col.reference",
    "generation": "eval.col.generation", "exact": "eval.col.exact", "rouge_l": "eval.col.rouge_l",
    "stopped": "eval.col.stopped",
}  # fmt: skip


def shown_columns(frame):
    """The table with its column headers in the reader's language (filters run on the original names first)."""
    return frame.rename(columns={c: t(COLUMNS[c]) for c in frame.columns if c in COLUMNS})


@st.cache_data(max_entries=6, show_spinner=False)
def evaluate(run_id: str, stamp: float, split: str, file: str | None, generation: bool = False):
    """Scores are cached by run, model time stamp and data, so moving a filter does not re-run the model.

    The model itself comes from the shared model cache (keyed by run and model time stamp), so scoring
    another split or file, or trying the run in the Playground next, does not load it again.
    """
    from pathlib import Path

    from core.evaluation import evaluate_run

    run = run_store().get(run_id)
    # A generation run answers the test prompts one batch at a time: a progress bar, made (and removed) in here
    # because a cached function may only draw into elements it creates itself.
    bar = st.progress(0.0, text=t("eval.answering")) if generation else None

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=t("eval.answering.progress", done=md(done), total=md(total)))

    report = evaluate_run(
        run,
        split=split,
        file=Path(file) if file else None,
        bundle=load_bundle(run),
        max_generations=MAX_GENERATIONS,
        progress=progress if bar is not None else None,
    )
    if bar is not None:
        bar.empty()
    return report


def choose_data(run) -> tuple[str, str | None] | None:
    source = st.radio(
        t("eval.source"), list(SOURCES), format_func=translated_options(SOURCES), horizontal=True, key="eval_source"
    )
    if source == "split":
        splits = [s for s in ("test", "validation", "train") if (run.data_dir / f"{s}.parquet").exists()]
        if not splits:
            st.info(t("eval.no_splits"))
            return None
        return st.selectbox(
            t("eval.split"), splits, format_func=translated_options(SPLIT_NAMES), key="eval_split"
        ), None
    from core.data import EXTENSIONS

    up = st.file_uploader(
        t("eval.upload"),
        key="eval_upload",
        type=[e.lstrip(".") for e in EXTENSIONS],
    )
    if up is None:
        return None
    return "file", str(stage(up, "evaluate"))


def headline(report) -> None:
    shown = {k: metric(report.metrics[k]) for k in HEADLINE if k in report.metrics}
    shown["rows"] = len(report.predictions)
    cols = st.columns(min(len(shown), 6))
    for i, (k, v) in enumerate(shown.items()):
        name = t(METRIC_NAMES[k]) if k in METRIC_NAMES else k.replace("_", " ").capitalize()
        cols[i % len(cols)].metric(md(name), md(v))


def classification(report) -> None:
    m = report.metrics
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.confusion_matrix(m["confusion_matrix"], m["labels"]), key="cm")
    c2.plotly_chart(charts.per_class_scores(m["per_class"]), key="per_class")
    per_class = [
        {"class": k, **{kk: round(vv, 4) if isinstance(vv, float) else vv for kk, vv in v.items()}}
        for k, v in m["per_class"].items()
    ]
    st.dataframe(
        [{t(COLUMNS[c]) if c in COLUMNS else c: v for c, v in row.items()} for row in per_class], hide_index=True
    )
    st.subheader(t("eval.misclassified"))
    wrong = report.misclassified()
    names = report.label_names or []
    c1, c2, c3, c4 = st.columns(4)
    # Streamlit's own placeholder ("Choose options") is English: give ours.
    true_f = c1.multiselect(t("eval.filter.true"), names, key="f_true", placeholder=t("eval.filter.any"))
    pred_f = c2.multiselect(t("eval.filter.predicted"), names, key="f_pred", placeholder=t("eval.filter.any"))
    min_conf = c3.slider(
        t("eval.filter.confidence"),
        0.0,
        1.0,
        0.0,
        0.05,
        key="f_conf",
        help=t("eval.filter.confidence.help"),
    )
    contains = c4.text_input(t("eval.filter.contains"), key="f_text")
    if true_f:
        wrong = wrong[wrong["label_name"].isin(true_f)]
    if pred_f:
        wrong = wrong[wrong["predicted"].isin(pred_f)]
    wrong = wrong[wrong["confidence"] >= min_conf]
    if contains:
        wrong = wrong[wrong["text"].str.contains(contains, case=False, regex=False)]
    st.caption(t("eval.wrong.shown", n=len(wrong), total=len(report.predictions)))
    shown = wrong.drop(columns=[c for c in ("label", "correct") if c in wrong.columns])
    shown = shown.rename(columns={"label_name": "true class", "predicted": "predicted class"})
    if len(shown) > MAX_ROWS_SHOWN:  # a browser table of 100,000 rows stalls the page; the download has them all
        st.caption(t("eval.wrong.capped", n=MAX_ROWS_SHOWN))
    shown = shown.sort_values("confidence", ascending=False).head(MAX_ROWS_SHOWN)
    st.dataframe(shown_columns(shown), hide_index=True)


def regression(report) -> None:
    import plotly.graph_objects as go

    table = report.predictions
    fig = go.Figure(go.Scatter(x=table["label"], y=table["predicted"], mode="markers", name=t("eval.reg.rows")))
    low, high = float(table["label"].min()), float(table["label"].max())
    fig.add_trace(
        go.Scatter(x=[low, high], y=[low, high], mode="lines", name=t("eval.reg.perfect"), line={"dash": "dash"})
    )
    fig.update_layout(title=t("eval.reg.title"), xaxis_title=t("eval.reg.x"), yaxis_title=t("eval.reg.y"), height=380)
    st.plotly_chart(fig, key="reg_scatter")
    st.subheader(t("eval.reg.largest"))
    largest = table.reindex(table["error"].abs().sort_values(ascending=False).index).head(200)
    st.dataframe(shown_columns(largest), hide_index=True)


def generation(report) -> None:
    if "bleu" not in report.metrics:
        st.caption(t("eval.gen.no_references"))
        st.dataframe(shown_columns(report.predictions.head(200)), hide_index=True)
        return
    m = report.metrics
    st.caption(t("eval.gen.about", n=int(m["generated"])))
    st.subheader(t("eval.gen.answers"))
    table = report.predictions
    c1, c2, c3 = st.columns(3)
    wrong_only = c1.toggle(t("eval.gen.wrong_only"), key="g_wrong")
    max_rouge = c2.slider(t("eval.gen.max_rouge"), 0.0, 1.0, 1.0, 0.05, key="g_rouge",
                          help=t("eval.gen.max_rouge.help"))  # fmt: skip
    contains = c3.text_input(t("eval.gen.contains"), key="g_text")
    if wrong_only:
        table = table[~table["exact"]]
    table = table[table["rouge_l"] <= max_rouge + 1e-9]
    if contains:
        hit = table["prompt"].str.contains(contains, case=False, regex=False)
        hit |= table["generation"].str.contains(contains, case=False, regex=False)
        table = table[hit]
    st.caption(t("eval.gen.shown", n=len(table), total=len(report.predictions)))
    st.dataframe(shown_columns(table.sort_values("rouge_l")), hide_index=True)


def main() -> None:
    st.title(t("nav.page.evaluate"))
    run = pick_finished_run()
    if run is None:
        return
    choice = choose_data(run)
    if choice is None:
        return
    split, file = choice
    stamp = (run.model_dir / "workbench.json").stat().st_mtime
    key = (run.id, stamp, split, file)
    answers = run.config().model.task == "generation"  # a generation run answers the test prompts too
    if st.button(t("eval.button"), type="primary", icon=":material/fact_check:"):
        with st.spinner(t("eval.scoring")):
            evaluate(run.id, stamp, split, file, answers)
        st.session_state.setdefault(keys.EVALUATED, set()).add(key)
    if key not in st.session_state.get(keys.EVALUATED, set()):
        st.caption(t("eval.press"))
        return
    report = evaluate(run.id, stamp, split, file, answers)
    headline(report)
    {"classification": classification, "regression": regression, "generation": generation}[report.task](report)
    st.download_button(
        t("eval.download"),
        report.predictions.to_csv(index=False).encode("utf-8"),
        file_name=f"{run.id}-{split}-predictions.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    if report.task == "classification":
        insight_sections(run, report)  # calibration, threshold, slices, swap test


with guarded():
    main()
