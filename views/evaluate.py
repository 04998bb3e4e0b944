"""Evaluate: score a finished run on a held-out split or a new file; see where it goes wrong."""

from __future__ import annotations

import streamlit as st

from ui import charts, keys
from ui.format import metric
from ui.guard import guarded
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
    bar = st.progress(0.0, text="Answering the test prompts...") if generation else None

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=md(f"Answering the test prompts: {done} of {total}"))

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
    source = st.radio("Evaluate on", ["A split saved with the run", "A new file"], horizontal=True, key="eval_source")
    if source == "A split saved with the run":
        splits = [s for s in ("test", "validation", "train") if (run.data_dir / f"{s}.parquet").exists()]
        if not splits:
            st.info("This run has no saved splits; upload a file instead.")
            return None
        return st.selectbox("Split", splits, key="eval_split"), None
    from core.data import EXTENSIONS

    up = st.file_uploader(
        "Test file with the same columns as the training data",
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
        cols[i % len(cols)].metric(md(k.replace("_", " ").capitalize()), md(v))


def classification(report) -> None:
    m = report.metrics
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.confusion_matrix(m["confusion_matrix"], m["labels"]), key="cm")
    c2.plotly_chart(charts.per_class_scores(m["per_class"]), key="per_class")
    st.dataframe(
        [
            {"class": k, **{kk: round(vv, 4) if isinstance(vv, float) else vv for kk, vv in v.items()}}
            for k, v in m["per_class"].items()
        ],
        hide_index=True,
    )
    st.subheader("Misclassified examples")
    wrong = report.misclassified()
    names = report.label_names or []
    c1, c2, c3, c4 = st.columns(4)
    true_f = c1.multiselect("True class", names, key="f_true")
    pred_f = c2.multiselect("Predicted class", names, key="f_pred")
    min_conf = c3.slider(
        "Minimum confidence",
        0.0,
        1.0,
        0.0,
        0.05,
        key="f_conf",
        help="Show only mistakes the model was at least this sure about.",
    )
    contains = c4.text_input("Text contains", key="f_text")
    if true_f:
        wrong = wrong[wrong["label_name"].isin(true_f)]
    if pred_f:
        wrong = wrong[wrong["predicted"].isin(pred_f)]
    wrong = wrong[wrong["confidence"] >= min_conf]
    if contains:
        wrong = wrong[wrong["text"].str.contains(contains, case=False, regex=False)]
    st.caption(f"{len(wrong):,} of {len(report.predictions):,} examples shown (the model got them wrong).")
    shown = wrong.drop(columns=[c for c in ("label", "correct") if c in wrong.columns])
    shown = shown.rename(columns={"label_name": "true class", "predicted": "predicted class"})
    if len(shown) > MAX_ROWS_SHOWN:  # a browser table of 100,000 rows stalls the page; the download has them all
        st.caption(f"The {MAX_ROWS_SHOWN:,} most confident mistakes are shown; download the predictions for all.")
    st.dataframe(shown.sort_values("confidence", ascending=False).head(MAX_ROWS_SHOWN), hide_index=True)


def regression(report) -> None:
    import plotly.graph_objects as go

    table = report.predictions
    fig = go.Figure(go.Scatter(x=table["label"], y=table["predicted"], mode="markers", name="rows"))
    low, high = float(table["label"].min()), float(table["label"].max())
    fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="perfect", line={"dash": "dash"}))
    fig.update_layout(
        title="Predicted against true values", xaxis_title="True value", yaxis_title="Predicted value", height=380
    )
    st.plotly_chart(fig, key="reg_scatter")
    st.subheader("Largest errors")
    st.dataframe(table.reindex(table["error"].abs().sort_values(ascending=False).index).head(200), hide_index=True)


def generation(report) -> None:
    if "bleu" not in report.metrics:
        st.caption("BLEU and ROUGE need references: evaluate on data with a second text column (prompt and answer).")
        st.dataframe(report.predictions.head(200), hide_index=True)
        return
    m = report.metrics
    st.caption(
        f"The model answered the first {m['generated']:,} prompts (greedy decoding). Exact match: the answer equals "
        "the reference; ROUGE-L and BLEU give credit for overlap (by characters for Chinese, Japanese and Korean). "
        "Stopped: answers that ended with the stop token rather than running to the length limit. Perplexity "
        "counts the response tokens only."
    )
    st.subheader("Answers")
    table = report.predictions
    c1, c2, c3 = st.columns(3)
    wrong_only = c1.toggle("Only answers that differ from the reference", key="g_wrong")
    max_rouge = c2.slider("At most this ROUGE-L", 0.0, 1.0, 1.0, 0.05, key="g_rouge",
                          help="Lower it to see the answers furthest from their reference.")  # fmt: skip
    contains = c3.text_input("Prompt or answer contains", key="g_text")
    if wrong_only:
        table = table[~table["exact"]]
    table = table[table["rouge_l"] <= max_rouge + 1e-9]
    if contains:
        hit = table["prompt"].str.contains(contains, case=False, regex=False)
        hit |= table["generation"].str.contains(contains, case=False, regex=False)
        table = table[hit]
    st.caption(f"{len(table):,} of {len(report.predictions):,} answers shown.")
    st.dataframe(table.sort_values("rouge_l"), hide_index=True)


def main() -> None:
    st.title("Evaluate")
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
    if st.button("Evaluate", type="primary", icon=":material/fact_check:"):
        with st.spinner("Loading the model and scoring every row..."):
            evaluate(run.id, stamp, split, file, answers)
        st.session_state.setdefault(keys.EVALUATED, set()).add(key)
    if key not in st.session_state.get(keys.EVALUATED, set()):
        st.caption("Press Evaluate to score the model on this data.")
        return
    report = evaluate(run.id, stamp, split, file, answers)
    headline(report)
    {"classification": classification, "regression": regression, "generation": generation}[report.task](report)
    st.download_button(
        "Download predictions (CSV)",
        report.predictions.to_csv(index=False).encode("utf-8"),
        file_name=f"{run.id}-{split}-predictions.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    if report.task == "classification":
        insight_sections(run, report)  # calibration, threshold, slices, swap test


with guarded():
    main()
