"""Page pieces for putting a model to work and showing the work: whole-file prediction, report downloads,
public datasets. Each is one call from its page; the work itself is in core/."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import streamlit as st

from ui import keys
from ui.i18n import error_text, t, translated_options
from ui.safe import hide_paths, md
from ui.state import workspace

NO_PAIR = "(none)"  # the second-text choice meaning "no second text"


# ------------------------------------------------------------------------------------------ reports
def _report_bytes(run_dirs: tuple[str, ...]) -> bytes:
    """Built when the button is clicked (it loads the model and scores the test split: seconds, not at every
    rerun). A failure becomes a page that says so rather than a broken download."""
    from core.report import comparison_report, run_report
    from core.report import esc as html_esc
    from core.runs import Run

    runs = [Run(Path(d)) for d in run_dirs]
    try:
        page = run_report(runs[0]) if len(runs) == 1 else comparison_report(runs)
    except Exception as err:  # noqa: BLE001 - shown in the downloaded page
        page = f"<!DOCTYPE html><meta charset='utf-8'><p>{html_esc(t('share.report.failed', error=err))}</p>"
    return page.encode("utf-8")


def report_button(runs: list, key: str, container=st) -> None:
    """A 'Download the report' button for one run or a comparison of several."""
    import functools

    name = runs[0].id if len(runs) == 1 else f"comparison-{len(runs)}-runs"
    container.download_button(
        t("share.report") if len(runs) == 1 else t("share.report.comparison"),
        functools.partial(_report_bytes, tuple(str(r.dir) for r in runs)),
        file_name=f"{name}-report.html",
        mime="text/html",
        icon=":material/description:",
        key=key,
        help=t("share.report.help"),
    )


# ------------------------------------------------------------------------------------------ whole file
def _stage(upload) -> Path:
    """Copy the upload to disk in blocks (never a second whole copy in memory) under workspace/predictions."""
    from core.datasets import safe_name

    folder = workspace() / "predictions" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    stem, _, ext = upload.name.rpartition(".")
    path = folder / (f"{safe_name(stem or ext)}.{ext}" if stem else safe_name(ext))
    upload.seek(0)
    with open(path, "wb") as fh:
        shutil.copyfileobj(upload, fh, 1 << 20)
    return path


def whole_file(run, bundle) -> None:
    """Predict every row of an uploaded file; the rows come back with the predictions as a CSV download."""
    from core.batch_predict import inspect_file, predict_file
    from core.data import EXTENSIONS
    from core.errors import WorkbenchError

    upload = st.file_uploader(
        t("share.file"),
        type=[e.lstrip(".") for e in EXTENSIONS],
        key=f"wf_upload_{run.id}",
        help=t("share.file.help"),
    )
    if upload is None:
        return
    staged_key = keys.whole_file_staged(run.id)
    token = (upload.file_id, upload.name)
    if st.session_state.get(staged_key, (None, None))[0] != token:
        st.session_state[staged_key] = (token, _stage(upload))
    path = st.session_state[staged_key][1]
    try:
        layout = inspect_file(path)
    except WorkbenchError as err:
        st.error(md(hide_paths(error_text(err))), icon=":material/error:")
        return
    cfg = run.config().data
    names = layout.columns
    from core.batch_predict import _guess_text

    text_default = cfg.text_column if cfg.text_column in names else _guess_text(layout)
    c1, c2 = st.columns(2)
    text = c1.selectbox(t("share.text_column"), names, index=names.index(text_default), key=f"wf_text_{run.id}")
    pair = None
    if cfg.text_pair_column:
        options = [NO_PAIR, *names]
        default = options.index(cfg.text_pair_column) if cfg.text_pair_column in names else 0
        pair = c2.selectbox(
            t("share.pair_column"),
            options,
            index=default,
            format_func=translated_options({NO_PAIR: "share.none"}),
            key=f"wf_pair_{run.id}",
        )
        pair = None if pair == NO_PAIR else pair
    if st.button(t("share.predict"), type="primary", icon=":material/play_arrow:", key=f"wf_go_{run.id}"):
        bar = st.progress(0.0, text=t("share.predicting"))

        def show(done: int, total: int) -> None:
            bar.progress(min(done / total, 1.0), text=t("share.progress", done=int(done), total=int(total)))

        out = path.parent / "predictions.csv"
        try:
            summary = predict_file(
                bundle,
                path,
                out,
                text_column=text,
                pair_column=pair,
                max_length=run.config().train.max_length,
                on_progress=show,
            )
        except WorkbenchError as err:
            bar.empty()
            st.error(md(hide_paths(error_text(err))), icon=":material/error:")
            return
        bar.progress(1.0, text=t("share.done"))
        st.session_state[keys.whole_file_result(run.id)] = (str(path), summary)
    saved = st.session_state.get(keys.whole_file_result(run.id))
    if not saved or saved[0] != str(path):
        return
    summary = saved[1]
    if summary.bad_rows:
        st.warning(md(summary.message()), icon=":material/warning:")
    else:
        st.success(md(summary.message()), icon=":material/check:")
    import pandas as pd

    st.dataframe(pd.read_csv(summary.output, nrows=20, keep_default_na=False), hide_index=True)
    with open(summary.output, "rb") as fh:
        st.download_button(
            t("share.download"),
            fh,
            file_name=f"{Path(upload.name).stem}-predictions.csv",
            mime="text/csv",
            icon=":material/download:",
            key=f"wf_download_{run.id}",
        )


# ------------------------------------------------------------------------------------------ public datasets
def public_dataset(root: Path) -> tuple[Path | None, str]:
    """A public dataset by name (or a save_to_disk folder), staged as a Parquet file like an upload."""
    from core.errors import WorkbenchError
    from core.hub_data import stage_public

    c1, c2, c3 = st.columns([3, 2, 1])
    name = c1.text_input(
        t("share.hub.name"),
        key="hub_name",
        placeholder=t("share.hub.name.placeholder"),
        help=t("share.hub.name.help"),
    )
    config = c2.text_input(t("share.hub.config"), key="hub_config", placeholder=t("share.hub.config.placeholder"))
    split = c3.text_input(t("share.hub.split"), value="train", key="hub_split")
    if st.button(t("share.hub.load"), icon=":material/cloud_download:", disabled=not name.strip()):
        with st.spinner(t("share.hub.loading")):
            try:
                st.session_state[keys.HUB_STAGED] = (name, str(stage_public(name, config or None, split, root)))
            except WorkbenchError as err:
                st.session_state.pop(keys.HUB_STAGED, None)
                st.error(md(hide_paths(error_text(err))), icon=":material/cloud_off:")
    staged = st.session_state.get(keys.HUB_STAGED)
    if not staged or staged[0] != name:
        return None, ""
    path = Path(staged[1])
    return path, path.name
