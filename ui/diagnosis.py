"""A run's diagnosis on a page: each finding in plain words, with its one-click fix (Train page and Compare)."""

from __future__ import annotations

import streamlit as st

from core.diagnose import Finding, diagnose, fixed_config
from ui.safe import md

_ICON = {"problem": ":material/error:", "warning": ":material/warning:", "ok": ":material/check_circle:"}


def show_diagnosis(run, records=None, *, frames=None, key: str = "") -> None:
    """The findings of ``run`` (live or finished) with a button per fix; nothing while it is too early to tell.

    ``records`` and ``frames`` (the curve tables) are passed where the page has them already.
    """
    status = run.status()
    findings = diagnose(
        run.metrics() if records is None else records,
        run.config_dict(),
        run.results(),
        state=status.get("state", "finished"),
        message=status.get("message", ""),
        label_names=label_names_of(run),
        frames=frames,
    )
    for i, finding in enumerate(findings):
        _finding(run, finding, f"{key}{run.id}_{i}")


def label_names_of(run) -> list[str] | None:
    """The run's class names (saved with its data splits)."""
    import json

    try:
        return json.loads((run.data_dir / "labels.json").read_text(encoding="utf-8")).get("label_names")
    except (OSError, ValueError):
        return None


def _finding(run, finding: Finding, key: str) -> None:
    box = {"problem": st.error, "warning": st.warning}.get(finding.level, st.success)
    # Details can hold class names from the user's data: escaped (ui.safe.md), shown as typed.
    box(f"**{md(finding.title)}.** {md(finding.detail)}", icon=_ICON.get(finding.level))
    if not finding.fixes:
        return
    cols = st.columns(len(finding.fixes))
    for col, (j, fix) in zip(cols, enumerate(finding.fixes)):
        if col.button(fix.label, key=f"fix_{key}_{j}", help=md(_help(fix))):
            _apply(run, fix)


def _help(fix) -> str:
    if fix.action == "stop_keep_best":
        return "Stop this run now and keep the model of its best evaluation."
    return "Start a new run with the same data and settings, changed as follows: " + ", ".join(
        f"{k} = {v}" for k, v in {**fix.model, **fix.train}.items()
    )


def _apply(run, fix) -> None:
    from core.errors import WorkbenchError
    from core.preflight import preflight
    from ui import keys, nav
    from ui.guard import show_error
    from ui.state import RUN_PARAM, registry, run_store

    if fix.action == "stop_keep_best":
        registry().stop(run.id, keep_best=True)
        st.toast("Stopping; the best model will be kept.")
        return
    try:
        config = fixed_config(run.config(), fix, name_suffix=fix.label.lower())
        preflight(config, run_store().root)
    except WorkbenchError as err:
        show_error(err, "preparing the fixed run")
        return
    job, created = registry().start(config)
    if not created:
        st.session_state[keys.FLASH] = f"A run is already training on this device ({job.run_id}); wait or stop it."
    st.switch_page(nav.TRAIN.path, query_params={RUN_PARAM: job.run_id})
