"""Every st.session_state key the pages share or read back, in one place (page references live in ui/nav.py).

Session state dies with the tab: these hold only what a tab needs between reruns (a flash message, a pending
confirmation, a result to show again). The truth stays on disk and the selected run in the URL (ui/state.py).
"""

from __future__ import annotations

FLASH = "flash"  # a warning the Train page shows once, after the rerun that follows Start or Resume
TUNE_FLASH = "tune_flash"  # the same on the Tune page
DIAGNOSIS_DONE = "diagnosis_done"  # (run id, message) of a diagnosis fix applied in place, shown after the rerun
TRAIN_DATASET = "train_dataset"  # the dataset the Train page opens with (set by Home's sample and the Data page)
SIDEBAR_TICKING = "sidebar_ticking"  # the sidebar's bars refresh themselves (ui/live_ticker.py): it has no timer
SIDEBAR_LINES = "sidebar_lines"  # the runs the sidebar's job line showed last time, and how many elements it took
SHOW_FORM = "show_form"  # the Train page's "Set up a new run" toggle (Home folds it when it opens the page)
SAVED_DATASET = "saved_dataset"  # the dataset the Data page just saved, to offer "Train on it"
CONFIRM_DELETE = "confirm_delete"  # the run id the Runs page asks to confirm deleting
CONFIRM_DELETE_DATASET = "confirm_delete_ds"  # the dataset the Data page asks to confirm deleting
ESTIMATE = "estimate"  # the Train page's last estimate, with the settings it was made for
PREDICTIONS = "predictions"  # the Playground's last predictions, with the texts they were made for
EVALUATED = "evaluated"  # the (run, split) pairs the Evaluate page has scored in this tab
SWAP_RESULT = "swap_result"  # Evaluate's last counterfactual swap test, with the run and pairs it was made for
LABEL_ISSUES_DEFAULT = "li_default"  # the label review table's starting decisions (relabel / keep / drop)
TAB_HIDDEN = "tab_hidden"  # the live panel's hook last reported this tab hidden: timed fragments declare no timer
LABEL_ISSUES_SAVED = "li_saved"  # the new dataset version the label review just saved, to offer "Train on it"


def was_active(search_id: str) -> str:
    """Whether the Tune page saw this search running at its last rerun (to rerun the page once it ends)."""
    return f"was_active_{search_id}"


def x_axis(run_id: str) -> str:
    """The live panel's x-axis radio (step or epoch) for one run."""
    return f"x_{run_id}"


def log_scale(run_id: str) -> str:
    """The live panel's log-scale toggle for one run."""
    return f"log_{run_id}"


def live_charts(run_id: str) -> str:
    """The snapshot the live panel's charts last showed for one run (version, evaluations, when)."""
    return f"live_charts_{run_id}"


def tab_hook(run_id: str) -> str:
    """The live panel's hidden-tab hook for one run."""
    return f"tab_hook_{run_id}"


def staged_upload(slot: str) -> str:
    """The staged copy of the file last uploaded into one upload box (to discard it when it is replaced)."""
    return f"staged_{slot}"


HUB_STAGED = "hub_staged"  # the public dataset the Data page loaded (name, staged Parquet path)


def whole_file_staged(run_id: str) -> str:
    """The Playground's whole-file upload for one run, copied to disk (upload id, path)."""
    return f"wf_staged_{run_id}"


def whole_file_result(run_id: str) -> str:
    """The Playground's last whole-file prediction for one run (input path, summary)."""
    return f"wf_result_{run_id}"
