"""Process-wide objects (run store, job registry, loaded models) and the run chosen in the URL.

Everything here is keyed by the workspace folder, so a server (or a test) that points WORKBENCH_HOME
elsewhere gets its own store and registry instead of another workspace's.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.runs import default_workspace

RUN_PARAM = "run"
DATASET_PARAM = "dataset"


def workspace() -> Path:
    return default_workspace()


@st.cache_resource(show_spinner=False)
def _run_store(root: str):
    from core.runs import RunStore

    return RunStore(Path(root) / "runs")


@st.cache_resource(show_spinner=False)
def _registry(root: str):
    from core.jobs import JobRegistry

    # One registry per server process: starting under its lock is what makes a double click,
    # a second tab or a rerun find the running job instead of starting another.
    return JobRegistry(_run_store(root))


def run_store():
    return _run_store(str(workspace()))


def registry():
    return _registry(str(workspace()))


def dataset_store():
    from core.datasets import DatasetStore

    return DatasetStore(workspace() / "datasets")


def active_runs() -> list:
    """Runs training now: jobs of this process first, then runs another process (the CLI) is training."""
    from core.runs import ACTIVE

    reg = registry()
    runs = [job.run for job in reg.active_jobs()]
    seen = {r.id for r in runs}
    for run in run_store().list():
        if run.id not in seen and run.state in ACTIVE:
            runs.append(run)
    return runs


def interrupted_runs(limit: int = 3) -> list:
    """The newest runs cut off before their end (their process is gone), which Resume can continue.

    A run reads as interrupted as soon as its process is gone (core.runs.Run.status), so the sidebar and
    Home say so at once, not after a server restart.
    """
    from core.runs import RunStatus

    return [run for run in run_store().list() if run.state == RunStatus.INTERRUPTED][:limit]


def selected_run_id(default: str | None = None) -> str | None:
    """The run named in the URL (?run=...), so a refresh or a shared link comes back to it."""
    value = st.query_params.get(RUN_PARAM)
    return value or default


def select_run(run_id: str | None) -> None:
    if run_id:
        st.query_params[RUN_PARAM] = run_id
    elif RUN_PARAM in st.query_params:
        del st.query_params[RUN_PARAM]


def finished_runs(task: str | None = None) -> list:
    """Runs with a saved model, newest first (optionally of one task)."""
    out = []
    for run in run_store().list():
        if not run.has_model() or run.config_problem():  # a damaged run's model cannot be read without its settings
            continue
        if task is not None:
            try:
                if run.config().model.task != task:
                    continue
            except Exception:  # noqa: BLE001 - a damaged config just leaves the run out of the list
                continue
        out.append(run)
    return out


def _model_stamp(run) -> float:
    meta = run.model_dir / "workbench.json"
    return meta.stat().st_mtime if meta.exists() else 0.0


@st.cache_resource(max_entries=2, show_spinner=False)
def _bundle(root: str, run_id: str, stamp: float, base: bool):
    from core.inference import load_base_model
    from core.models import load_for_inference

    run = _run_store(root).get(run_id)
    return load_base_model(run) if base else load_for_inference(run.model_dir)


def load_bundle(run, base: bool = False):
    """A run's model (or its base model), cached: two at most stay in memory, older ones are released.

    The model file's time stamp is part of the key, so a resumed and re-finished run is loaded afresh.
    """
    return _bundle(str(workspace()), run.id, _model_stamp(run), base)


@st.cache_resource(show_spinner=False)
def hardware() -> dict:
    from core.device import hardware_summary

    return hardware_summary()


def hardware_line(hw: dict) -> str:
    from ui.i18n import language, t

    parts = [t("hardware.cpu_bf16" if hw.get("cpu_bf16") else "hardware.cpu", cores=hw["cpu_cores"])]
    if hw.get("cuda"):
        parts += [t("hardware.cuda", name=g["name"], memory=g["memory_gb"]) for g in hw["cuda"]]
    else:
        parts.append(t("hardware.no_cuda"))
    if hw.get("mps"):
        parts.append(t("hardware.mps"))
    return ("，" if language() == "zh" else ", ").join(parts)


def counting_tokenizer():
    """MiniLM's tokenizer, to count tokens the way the default classifier will see them."""
    from ui.i18n import t

    # The cache's own spinner text is fixed when the module loads: this one is in the reader's language.
    with st.spinner(t("loading.tokenizer")):
        return _counting_tokenizer()


@st.cache_resource(show_spinner=False)
def _counting_tokenizer():
    from core.hf import load_transformers
    from core.models import minilm_path, quiet_transformers

    AutoTokenizer = load_transformers().AutoTokenizer

    quiet_transformers()
    return AutoTokenizer.from_pretrained(minilm_path())
