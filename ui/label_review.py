"""Data page: find rows whose label looks wrong, relabel or drop them, save the result as a new version."""

from __future__ import annotations

import streamlit as st

from ui import keys, nav
from ui.safe import md
from ui.state import DATASET_PARAM, dataset_store

KEEP, DROP, RELABEL = "keep the given label", "drop the row", "relabel: "


@st.cache_data(max_entries=4, show_spinner=False)
def _issues(path: str, stamp: float, text_column: str | None, label_column: str | None, folds: int):
    """Cached by file and time stamp: a click elsewhere on the page must not embed every row again."""
    from core.label_issues import find_label_issues

    rows, issues = find_label_issues(path, text_column=text_column, label_column=label_column, folds=folds)
    return rows, [i.to_dict() for i in issues]


def label_review_section() -> None:
    """The whole section; it works on saved classification datasets (so the result can be a new version)."""
    datasets = [d for d in dataset_store().list() if d.settings.task == "classification"]
    st.subheader("Find label errors")
    if not datasets:
        st.caption("Save a classification dataset first; then the workbench can look for rows with wrong labels.")
        return
    st.caption(
        "Cross-checks every label: a quick model learns from most rows and predicts the rest, fold by fold, and "
        "rows whose given label it confidently disagrees with are listed (confident learning). Nothing changes "
        "until you save; the original dataset is always kept."
    )
    names = [d.name for d in datasets]
    c1, c2 = st.columns([3, 1])
    name = c1.selectbox("Dataset to check", names, key="li_dataset")
    folds = int(c2.number_input("Folds", 2, 10, 5, key="li_folds", help="More folds: each model sees more rows."))
    dataset = dataset_store().get(name)
    key = (dataset.name, folds)
    if st.button("Find label errors", icon=":material/rule:", key="li_run"):
        with st.spinner("Reading every row with the built-in encoder and cross-checking the labels..."):
            _issues(
                str(dataset.path),
                dataset.path.stat().st_mtime,
                dataset.settings.text_column,
                dataset.settings.label_column,
                folds,
            )
        st.session_state[keys.LABEL_ISSUES_CHECKED] = key
    if st.session_state.get(keys.LABEL_ISSUES_CHECKED) != key:
        return
    rows, issues = _issues(
        str(dataset.path),
        dataset.path.stat().st_mtime,
        dataset.settings.text_column,
        dataset.settings.label_column,
        folds,
    )
    if not issues:
        st.success(f"No suspicious labels among {len(rows.labels):,} rows.")
        return
    st.info(f"{len(issues):,} of {len(rows.labels):,} rows look mislabelled. Decide for each, then save.")
    _review(dataset, rows, issues)


def _review(dataset, rows, issues: list[dict]) -> None:
    import pandas as pd

    from core.label_issues import apply_review

    choices = [KEEP, DROP, *[RELABEL + n for n in rows.label_names]]
    table = pd.DataFrame(
        {
            "row": [i["row"] for i in issues],
            "text": [i["text"] for i in issues],
            "given label": [i["given_label"] for i in issues],
            "suggested label": [i["suggested_label"] for i in issues],
            "confidence": [i["confidence"] for i in issues],
            "decision": KEEP,
        }
    )
    c1, c2 = st.columns(2)
    if c1.button("Accept every suggestion", key="li_accept_all"):
        st.session_state[keys.LABEL_ISSUES_DEFAULT] = "suggested"
    if c2.button("Reset decisions", key="li_reset"):
        st.session_state[keys.LABEL_ISSUES_DEFAULT] = "keep"
    if st.session_state.get(keys.LABEL_ISSUES_DEFAULT) == "suggested":
        table["decision"] = [RELABEL + s for s in table["suggested label"]]
    edited = st.data_editor(
        table,
        key=f"li_editor_{dataset.name}_{st.session_state.get(keys.LABEL_ISSUES_DEFAULT, 'keep')}",
        hide_index=True,
        width="stretch",
        disabled=["row", "text", "given label", "suggested label", "confidence"],
        column_config={
            "row": st.column_config.NumberColumn("row", help="Data row in the file (the header is not counted)."),
            "confidence": st.column_config.ProgressColumn(
                "confidence", min_value=0.0, max_value=1.0, format="percent", help="How sure the cross-check is."
            ),
            "decision": st.column_config.SelectboxColumn("decision", options=choices, required=True),
        },
    )
    relabel = {
        int(r): d.removeprefix(RELABEL)
        for r, d, given in zip(edited["row"], edited["decision"], edited["given label"])
        if d.startswith(RELABEL) and d.removeprefix(RELABEL) != given
    }
    drop = [int(r) for r, d in zip(edited["row"], edited["decision"]) if d == DROP]
    st.caption(f"{len(relabel)} rows to relabel, {len(drop)} to drop.")
    if st.button(
        "Save as a new dataset version",
        type="primary",
        icon=":material/save:",
        disabled=not (relabel or drop),
        key="li_save",
    ):
        reviewed = apply_review(rows.frame, rows.label_column, relabel, drop)
        note = f"{dataset.name} after review: {len(relabel)} relabelled, {len(drop)} dropped"
        st.session_state[keys.LABEL_ISSUES_SAVED] = dataset_store().save_version(dataset, reviewed, note).name
    saved = st.session_state.get(keys.LABEL_ISSUES_SAVED)
    if saved and dataset_store().find(saved) is not None:
        st.success(f"Saved as dataset {md(saved)}; {md(dataset.name)} is kept as it was.")
        if st.button("Train with the new version", type="primary", icon=":material/model_training:", key="li_train"):
            st.session_state[keys.TRAIN_DATASET] = saved
            st.switch_page(nav.TRAIN.path, query_params={DATASET_PARAM: saved})
