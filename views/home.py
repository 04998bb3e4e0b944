"""Home: what the workbench does, the steps, a one-click sample, the running job, the hardware.

No torch or transformers at import: the hardware line (which needs torch) is drawn last, after first paint.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import keys, nav
from ui.guard import guarded
from ui.i18n import language, status_message, t
from ui.safe import md, md_code
from ui.state import DATASET_PARAM, active_runs, dataset_store, hardware, hardware_line, interrupted_runs

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
# The samples follow the reader's language: English reviews and headlines, or the Chinese ones
# (data/samples/make_samples_zh.py). Each: (file, dataset name, text column, second text or label column).
SAMPLE_BY_LANGUAGE = {
    "en": (SAMPLES / "sentiment.csv", "sentiment-sample", "text", "label"),
    "zh": (SAMPLES / "sentiment_zh.csv", "sentiment-sample-zh", "文本", "标签"),
}
GENERATION_SAMPLE_BY_LANGUAGE = {
    "en": (SAMPLES / "headlines.csv", "headlines-sample", "article", "headline"),
    "zh": (SAMPLES / "headlines_zh.csv", "headlines-sample-zh", "正文", "标题"),
}
STEPS = [
    (nav.DATA.path, "home.step.data.title", "home.step.data.text"),
    (nav.TRAIN.path, "home.step.train.title", "home.step.train.text"),
    (nav.EVALUATE.path, "home.step.evaluate.title", "home.step.evaluate.text"),
    (nav.PLAYGROUND.path, "home.step.playground.title", "home.step.playground.text"),
    (nav.COMPARE.path, "home.step.compare.title", "home.step.compare.text"),
]


def sample(generation: bool = False) -> tuple[Path, str, str, str]:
    """(file, dataset name, text column, second column) of the sample in the reader's language."""
    table = GENERATION_SAMPLE_BY_LANGUAGE if generation else SAMPLE_BY_LANGUAGE
    return table.get(language(), table["en"])


def try_the_sample(generation: bool = False) -> None:
    """Save a bundled sample once as a dataset (sentiment reviews, or articles and their headlines for
    generation) and open the Train page with it chosen."""
    from core.datasets import DatasetSettings

    path, name, text, second = sample(generation)
    store = dataset_store()
    dataset = store.find(name)
    if dataset is None:
        if generation:
            settings = DatasetSettings(task="generation", text_column=text, text_pair_column=second)
        else:
            settings = DatasetSettings(task="classification", text_column=text, label_column=second)
        from core.data import read_table

        rows = len(read_table(path).frame)
        dataset = store.save(name, path, path.name, settings, rows=rows)
    st.session_state[keys.TRAIN_DATASET] = dataset.name
    st.session_state.pop(keys.SHOW_FORM, None)
    st.switch_page(nav.TRAIN.path, query_params={DATASET_PARAM: dataset.name})


with guarded():
    st.title(t("app.title"))
    st.markdown(t("home.intro"))
    cols = st.columns(len(STEPS))
    for col, (page, title, text) in zip(cols, STEPS):
        with col:
            st.page_link(page, label=t(title))
            st.caption(t(text))

    st.subheader(t("home.sample.heading"))
    sample_path = sample()[0]
    if sample_path.exists():
        st.write(t("home.sample.text"))
        if st.button(t("home.sample.button"), type="primary", icon=":material/rocket_launch:"):
            try_the_sample()
        if sample(generation=True)[0].exists():
            st.write(t("home.sample.generation.text"))
            if st.button(t("home.sample.generation.button"), icon=":material/edit_note:"):
                try_the_sample(generation=True)
    else:
        st.info(t("home.sample.missing", path=md(f"data/samples/{sample_path.name}")))

    st.subheader(t("home.running.heading"))
    running = active_runs()
    if running:
        for run in running:
            status = run.status()
            st.markdown(f"{md_code(run.id)}: {md(status_message(status) or status.get('state'))}")
            st.page_link(nav.TRAIN.path, label=t("common.open_live"), query_params={"run": run.id})
    else:
        st.caption(t("home.running.none"))
    for run in interrupted_runs():  # its process is gone: say so now, not after a restart
        st.markdown(f"{md_code(run.id)}: interrupted. Resume continues from the last checkpoint.")
        st.page_link(nav.RUNS.path, label="Resume or delete it", query_params={"run": run.id})

    st.subheader(t("home.hardware.heading"))
    with st.spinner(t("home.hardware.looking")):
        st.write(hardware_line(hardware()))
