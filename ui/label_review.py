"""Data page: find rows whose label looks wrong, relabel or drop them, save the result as a new version.

The check itself is a background job (core.label_check): the page starts it, polls its progress from the file it
writes beside the dataset, and shows the flagged rows once it has finished, also after a page change or a restart.
"""

from __future__ import annotations

import streamlit as st

from core.i18n import status_message
from ui import keys, nav
from ui.i18n import language, t
from ui.safe import md
from ui.state import DATASET_PARAM, dataset_store

KEEP, DROP = "keep", "drop"
POLL_S = 1.0


def label_review_section() -> None:
    """The whole section; it works on saved classification datasets (so the result can be a new version)."""
    from core.label_check import ACTIVE, read_check, start_check

    datasets = [d for d in dataset_store().list() if d.settings.task == "classification"]
    st.subheader(t("insight.li.title"))
    if not datasets:
        st.caption(t("insight.li.no_dataset"))
        return
    st.caption(t("insight.li.intro"))
    names = [d.name for d in datasets]
    c1, c2 = st.columns([3, 1])
    name = c1.selectbox(t("insight.li.dataset"), names, key="li_dataset")
    folds = int(c2.number_input(t("insight.li.folds"), 2, 10, 5, key="li_folds", help=t("insight.li.folds.help")))
    dataset = dataset_store().get(name)
    record = read_check(dataset.dir)
    running = record is not None and record.get("state") in ACTIVE
    if st.button(t("insight.li.run"), icon=":material/rule:", key="li_run", disabled=running):
        start_check(dataset, folds)  # a second click, tab or rerun attaches to the check already running
        record, running = read_check(dataset.dir), True
    if record is None:
        return
    if running:
        st.fragment(run_every=POLL_S)(_progress)(dataset.dir)
        return
    state = record.get("state")
    if state == "failed":
        st.error(t("insight.li.failed", message=md(status_message(record, language()))))
        return
    if state != "finished":  # stopped by the user, or cut off by a restart
        st.warning(t("insight.li.not_finished", message=md(status_message(record, language()))))
        return
    issues = record.get("issues", [])
    checked = int(record.get("rows", 0))
    st.caption(t("insight.li.checked", folds=int(record.get("folds") or 0), rows=checked))
    if not issues:
        st.success(t("insight.li.clean", rows=checked))
        return
    st.info(t("insight.li.found", flagged=len(issues), rows=checked))
    _review(dataset, record["label_names"], issues)


def _progress(dataset_dir) -> None:
    """Polled while the check runs: its stage and progress from disk; the whole page reruns when it ends."""
    from core.label_check import ACTIVE, cancel_check, read_check

    record = read_check(dataset_dir) or {}
    if record.get("state") not in ACTIVE:
        st.rerun()  # the whole page: the results replace the progress
    done, total = int(record.get("done") or 0), int(record.get("total") or 0)
    st.progress(done / total if total else 0.0, text=md(status_message(record, language())))
    st.caption(t("insight.li.background"))
    if st.button(t("insight.li.cancel"), icon=":material/stop:", key="li_cancel") and cancel_check(dataset_dir):
        st.toast(t("insight.li.cancelling"))


def _review(dataset, label_names: list[str], issues: list[dict]) -> None:
    import pandas as pd

    from core.label_issues import apply_review, read_labeled

    # The decision column shows the reader's words; each maps back to what to do with the row.
    actions = {t("insight.li.decision.keep"): (KEEP, None), t("insight.li.decision.drop"): (DROP, None)}
    actions.update({t("insight.li.decision.relabel", label=n): ("relabel", n) for n in label_names})
    keep_text = t("insight.li.decision.keep")
    suggested = st.session_state.get(keys.LABEL_ISSUES_DEFAULT) == "suggested"
    table = pd.DataFrame(
        {
            "row": [i["row"] for i in issues],
            "text": [i["text"] for i in issues],
            "given label": [i["given_label"] for i in issues],
            "suggested label": [i["suggested_label"] for i in issues],
            "confidence": [i["confidence"] for i in issues],
            "decision": [
                t("insight.li.decision.relabel", label=i["suggested_label"]) if suggested else keep_text for i in issues
            ],
        }
    )
    c1, c2 = st.columns(2)
    if c1.button(t("insight.li.accept_all"), key="li_accept_all"):
        st.session_state[keys.LABEL_ISSUES_DEFAULT] = "suggested"
        st.rerun()
    if c2.button(t("insight.li.reset"), key="li_reset"):
        st.session_state[keys.LABEL_ISSUES_DEFAULT] = "keep"
        st.rerun()
    edited = st.data_editor(
        table,
        key=f"li_editor_{dataset.name}_{st.session_state.get(keys.LABEL_ISSUES_DEFAULT, 'keep')}",
        hide_index=True,
        width="stretch",
        disabled=["row", "text", "given label", "suggested label", "confidence"],
        column_config={
            "row": st.column_config.NumberColumn(t("insight.li.col.row"), help=t("insight.li.col.row.help")),
            "text": st.column_config.TextColumn(t("insight.li.col.text")),
            "given label": st.column_config.TextColumn(t("insight.li.col.given")),
            "suggested label": st.column_config.TextColumn(t("insight.li.col.suggested")),
            "confidence": st.column_config.ProgressColumn(
                t("insight.li.col.confidence"),
                min_value=0.0,
                max_value=1.0,
                format="percent",
                help=t("insight.li.col.confidence.help"),
            ),
            "decision": st.column_config.SelectboxColumn(
                t("insight.li.col.decision"), options=list(actions), required=True
            ),
        },
    )
    chosen = [
        (int(r), *actions.get(d, (KEEP, None)), g)
        for r, d, g in zip(edited["row"], edited["decision"], edited["given label"])
    ]
    relabel = {row: label for row, action, label, given in chosen if action == "relabel" and label != given}
    drop = [row for row, action, _, _ in chosen if action == DROP]
    st.caption(t("insight.li.counts", relabel=len(relabel), drop=len(drop)))
    if st.button(
        t("insight.li.save"),
        type="primary",
        icon=":material/save:",
        disabled=not (relabel or drop),
        key="li_save",
    ):
        rows = read_labeled(dataset.path, dataset.settings.text_column, dataset.settings.label_column)
        reviewed = apply_review(rows.frame, rows.label_column, relabel, drop)
        note = t("insight.li.note", name=dataset.name, relabel=len(relabel), drop=len(drop))
        st.session_state[keys.LABEL_ISSUES_SAVED] = dataset_store().save_version(dataset, reviewed, note).name
    saved = st.session_state.get(keys.LABEL_ISSUES_SAVED)
    if saved and dataset_store().find(saved) is not None:
        st.success(t("insight.li.saved", new=md(saved), old=md(dataset.name)))
        if st.button(t("insight.li.train"), type="primary", icon=":material/model_training:", key="li_train"):
            st.session_state[keys.TRAIN_DATASET] = saved
            st.switch_page(nav.TRAIN.path, query_params={DATASET_PARAM: saved})
