"""A run's diagnosis on a page: each finding in plain words, with its one-click fix (Train page and Compare)."""

from __future__ import annotations

import streamlit as st

from core.diagnose import Finding, diagnose, fixed_config, label_names
from ui.i18n import language, t
from ui.safe import md

_ICON = {"problem": ":material/error:", "warning": ":material/warning:", "ok": ":material/check_circle:"}


def show_diagnosis(run, records=None, *, frames=None, key: str = "") -> None:
    """The findings of ``run`` (live or finished) with a button per fix; nothing while it is too early to tell.

    ``records`` and ``frames`` (the curve tables) are passed where the page has them already.
    """
    from core.best_checkpoint import best_checkpoint, best_step_of

    status = run.status()
    finished = status.get("state") == "finished"
    findings = diagnose(
        run.metrics() if records is None else records,
        run.config_dict(),
        run.results(),
        state=status.get("state", "finished"),
        message=status.get("message", ""),
        label_names=label_names(run),
        frames=frames,
        best_checkpoint_step=best_step_of(run) if finished and best_checkpoint(run) else None,
    )
    from ui import keys

    done = st.session_state.get(keys.DIAGNOSIS_DONE)
    if done and done[0] == run.id:
        step = int(st.session_state.pop(keys.DIAGNOSIS_DONE)[1])
        st.success(t("diagnosis.toast.kept", step=step), icon=":material/check_circle:")
    for i, finding in enumerate(findings):
        _finding(run, finding, f"{key}{run.id}_{i}")


def _finding(run, finding: Finding, key: str) -> None:
    box = {"problem": st.error, "warning": st.warning}.get(finding.level, st.success)
    lang = language()
    # Details can hold class names from the user's data: every part's parameters escaped (ui.safe.md).
    parts = [(k, {n: md(v) if isinstance(v, str) else v for n, v in p.items()}) for k, p in finding.detail]
    detail = "".join(t(k, **p) for k, p in parts)
    box(t("diagnosis.finding", title=md(finding.title_text(lang)), detail=detail), icon=_ICON.get(finding.level))
    if not finding.fixes:
        return
    cols = st.columns(len(finding.fixes))
    for col, (j, fix) in zip(cols, enumerate(finding.fixes)):
        # Buttons render markdown: the catalog's words (filled with numbers) are escaped like every label, so a
        # translation's '*' or '_' shows as typed.
        if col.button(md(fix.text(lang)), key=f"fix_{key}_{j}", help=md(_help(fix))):
            _apply(run, fix)


def _help(fix) -> str:
    if fix.action == "stop_keep_best":
        return t("diagnosis.help.stop_keep_best")
    if fix.action == "keep_best_checkpoint":
        return t("diagnosis.help.keep_best_checkpoint", **fix.label_params)
    return t("diagnosis.help.retrain", changes=", ".join(f"{k} = {v}" for k, v in {**fix.model, **fix.train}.items()))


def _apply(run, fix) -> None:
    from core.errors import WorkbenchError
    from core.preflight import preflight
    from ui import keys, nav
    from ui.guard import show_error
    from ui.state import RUN_PARAM, registry, run_store

    if fix.action == "stop_keep_best":
        registry().stop(run.id, keep_best=True)
        st.toast(t("diagnosis.toast.stopping"))
        return
    if fix.action == "keep_best_checkpoint":
        from core.best_checkpoint import keep_best_checkpoint

        try:
            with st.spinner(t("diagnosis.doing.keep_best")):
                keep_best_checkpoint(run)
        except WorkbenchError as err:
            show_error(err, t("diagnosis.doing.keep_best"))
            return
        st.session_state[keys.DIAGNOSIS_DONE] = (run.id, fix.label_params["step"])
        st.rerun()
    try:
        config = fixed_config(run.config(), fix, name_suffix=fix.label.lower())
        preflight(config, run_store().root)
    except WorkbenchError as err:
        show_error(err, t("diagnosis.doing.retrain"))
        return
    job, created = registry().start(config)
    if not created:
        st.session_state[keys.FLASH] = t("diagnosis.flash.busy", run=job.run_id)
    st.switch_page(nav.TRAIN.path, query_params={RUN_PARAM: job.run_id})
