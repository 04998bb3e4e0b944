"""Home: what the workbench does, the steps, a one-click sample, the running job, the hardware.

No torch or transformers at import: the hardware line (which needs torch) is drawn last, after first paint.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import keys, nav
from ui.guard import guarded
from ui.safe import md, md_code
from ui.state import DATASET_PARAM, active_runs, dataset_store, hardware, hardware_line, interrupted_runs

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "sentiment.csv"
SAMPLE_NAME = "sentiment-sample"
GENERATION_SAMPLE = SAMPLE.with_name("headlines.csv")
GENERATION_SAMPLE_NAME = "headlines-sample"
STEPS = [
    (nav.DATA.path, "1. Data", "Bring a file (CSV, TSV, JSON, JSON Lines, Parquet or text), check it, split it."),
    (nav.TRAIN.path, "2. Train", "Pick a model and a method, start, and watch the loss fall live."),
    (nav.EVALUATE.path, "3. Evaluate", "Scores on held-out data, confusion matrix, the examples it gets wrong."),
    (nav.PLAYGROUND.path, "4. Playground", "Type your own text and see what the model answers."),
    (nav.COMPARE.path, "5. Compare", "Put runs side by side: curves, scores, settings and answers."),
]


def try_the_sample(generation: bool = False) -> None:
    """Save a bundled sample once as a dataset (sentiment reviews, or articles and their headlines for
    generation) and open the Train page with it chosen."""
    from core.datasets import DatasetSettings

    store = dataset_store()
    name, path = (GENERATION_SAMPLE_NAME, GENERATION_SAMPLE) if generation else (SAMPLE_NAME, SAMPLE)
    dataset = store.find(name)
    if dataset is None:
        if generation:
            settings = DatasetSettings(task="generation", text_column="article", text_pair_column="headline")
        else:
            settings = DatasetSettings(task="classification", text_column="text", label_column="label")
        from core.data import read_table

        rows = len(read_table(path).frame)
        dataset = store.save(name, path, path.name, settings, rows=rows)
    st.session_state[keys.TRAIN_DATASET] = dataset.name
    st.session_state.pop(keys.SHOW_FORM, None)
    st.switch_page(nav.TRAIN.path, query_params={DATASET_PARAM: dataset.name})


with guarded():
    st.title("Fine-Tuning Workbench")
    st.markdown(
        "Teach a language model your own task without writing code. Bring a table of examples (texts and "
        "their labels, or plain text to imitate), and the workbench fine-tunes a model on it while you watch "
        "it learn. Then score it, try it on your own sentences, and compare it with other attempts."
    )
    cols = st.columns(len(STEPS))
    for col, (page, title, text) in zip(cols, STEPS):
        with col:
            st.page_link(page, label=title)
            st.caption(text)

    st.subheader("New here? Try the sample")
    if SAMPLE.exists():
        st.write(
            "400 short movie reviews labelled positive or negative. One click saves them as a dataset and opens "
            "the Train page; press **Start training** there (about a minute on a laptop CPU), then try your own "
            "sentences in the Playground."
        )
        if st.button("Try the sample", type="primary", icon=":material/rocket_launch:"):
            try_the_sample()
        if GENERATION_SAMPLE.exists():
            st.write(
                "Or teach a model to write: 300 short news articles, each with its headline. The model learns to "
                "read an article and write the headline, then stop; score it on the Evaluate page and try your "
                "own article in the Playground."
            )
            if st.button("Try the headline sample", icon=":material/edit_note:"):
                try_the_sample(generation=True)
    else:
        st.info("The bundled sample data is missing (data/samples/sentiment.csv). Start from the Data page.")

    st.subheader("Running now")
    running = active_runs()
    if running:
        for run in running:
            status = run.status()
            st.markdown(f"{md_code(run.id)}: {md(status.get('message', status.get('state')))}")
            st.page_link(nav.TRAIN.path, label="Open the live view", query_params={"run": run.id})
    else:
        st.caption("Nothing is training.")
    for run in interrupted_runs():  # its process is gone: say so now, not after a restart
        st.markdown(f"{md_code(run.id)}: interrupted. Resume continues from the last checkpoint.")
        st.page_link(nav.RUNS.path, label="Resume or delete it", query_params={"run": run.id})

    st.subheader("This computer")
    with st.spinner("Looking at the hardware..."):
        st.write(hardware_line(hardware()))
