"""Tune: try several learning rates, batch sizes, epochs and weight decays automatically, then train the best."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.runs import ACTIVE
from ui import keys, nav
from ui.format import state_badge
from ui.forms import WATCHABLE
from ui.guard import guarded, show_error
from ui.safe import md, md_code
from ui.state import dataset_store, registry, workspace

SEARCH_PARAM = "search"
LR_CHOICES = [1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 3e-3]
BATCH_CHOICES = [4, 8, 16, 32, 64]
EPOCH_CHOICES = [1.0, 2.0, 3.0, 4.0, 5.0]
DECAY_CHOICES = [0.0, 0.01, 0.05, 0.1]
FOLD_CHOICES = {0: "No: use the validation split", 3: "3-fold", 5: "5-fold"}


@st.cache_resource(show_spinner=False)
def _runner(root: str):
    from core.search import SearchRunner, SearchStore

    # One per server process, like the job registry: it is what keeps a second search from starting.
    return SearchRunner(registry(), SearchStore(Path(root) / "searches"))


def runner():
    return _runner(str(workspace()))


# ----------------------------------------------------------------------------------------------- one search
def results_chart(rows: list[dict], metric: str):
    import plotly.express as px

    scored = [r for r in rows if isinstance(r.get(metric), float)]
    if not scored:
        return None
    fig = px.scatter(
        scored,
        x="learning_rate",
        y=metric,
        color=[str(r["batch_size"]) for r in scored],
        symbol=[f"{r['epochs']:g} epochs" for r in scored],
        hover_data=["trial", "weight_decay", "epochs", "batch_size"],
        log_x=True,
        labels={"color": "batch size", "symbol": "epochs", "learning_rate": "Learning rate (log scale)"},
        title=f"{metric} of each trial",
    )
    fig.update_traces(marker={"size": 12})
    fig.update_layout(height=340, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def search_status(search_id: str) -> None:
    """The search's progress, table and chart, read from disk (polled while it runs)."""
    import pandas as pd

    from core.search import TRIAL_ACTIVE, results_table

    record = runner().store.get(search_id)
    metric = record["config"]["metric"]
    trials = record["trials"]
    done = sum(t["state"] not in TRIAL_ACTIVE for t in trials)
    st.markdown(f"**{md(record['name'])}** {state_badge(record['state'])}  \n{md(record['message'])}")
    st.progress(done / len(trials), text=f"{done:,} of {len(trials):,} trials done")
    rows = results_table(record)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("Click a column header to sort. Each trial is a normal run: open it on the Runs page.")
    fig = results_chart(rows, metric)
    if fig is not None:
        st.plotly_chart(fig, width="stretch")
    if st.session_state.get(keys.was_active(search_id)) and record["state"] not in ACTIVE:
        st.session_state.pop(keys.was_active(search_id))
        st.rerun()  # the whole page: the buttons change and polling stops
    st.session_state[keys.was_active(search_id)] = record["state"] in ACTIVE


def show_search(search_id: str) -> None:
    from core.search import best_config, best_trial

    record = runner().store.get(search_id)
    active = record["state"] in ACTIVE
    st.fragment(run_every=2.0 if active else None)(search_status)(search_id)
    if active:
        # Through the search's folder: it reaches a search this server, another one or the CLI runs.
        if st.button("Stop the search", icon=":material/stop:", key="stop_search") and runner().stop(search_id):
            st.toast("Stopping: the running trial ends at its next step.")
        return
    best = best_trial(record)
    if best is None:
        return
    params = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in best["params"].items())
    st.success(f"Best: trial {md(best['trial'])} ({md(params)}).")
    if st.button("Start the best config as a full run", type="primary", icon=":material/play_arrow:"):
        job, created = registry().start(best_config(record))
        if not created:
            st.warning(f"A run is already training on this device ({md_code(job.run_id)}); wait for it, then try again.")
            return
        st.switch_page(nav.TRAIN.path, query_params={"run": job.run_id})


# ----------------------------------------------------------------------------------------------- a new search
def _lr(value: float) -> str:
    return f"{value:.0e}"


def search_form() -> None:
    from core.config import ModelConfig, RunConfig, TrainConfig, recommended_train_settings
    from core.search import SearchConfig, SearchSpace

    datasets = dataset_store().list()
    if not datasets:
        st.info("No dataset yet. Save one on the Data page first.")
        return
    names = [d.name for d in datasets]
    dataset = dataset_store().get(st.selectbox("Dataset", names, key="tune_dataset"))
    task = dataset.settings.task
    c1, c2 = st.columns(2)
    source = c1.text_input(
        "Model",
        "default",
        key="tune_model",
        help="'default' (the built-in model), a Hugging Face id, a folder or a run.",
    ).strip()
    method = c2.radio(
        "Method", ["full", "lora"], horizontal=True, key="tune_method", help="Full fine-tuning, or LoRA adapters only."
    )
    st.markdown("**Values to try**")
    c = st.columns(4)
    space = {
        "learning_rate": c[0].multiselect(
            "Learning rates", LR_CHOICES, [2e-5, 5e-5, 1e-4], format_func=_lr, key="tune_lr"
        ),
        "batch_size": c[1].multiselect("Batch sizes", BATCH_CHOICES, [16], key="tune_batch"),
        "epochs": c[2].multiselect("Epochs", EPOCH_CHOICES, [1.0], format_func=lambda v: f"{v:g}", key="tune_epochs"),
        "weight_decay": c[3].multiselect(
            "Weight decays", DECAY_CHOICES, [0.01], format_func=lambda v: f"{v:g}", key="tune_decay"
        ),
    }
    c = st.columns(4)
    strategy = c[0].radio(
        "Search", ["grid", "random"], key="tune_strategy", help="Grid: every combination. Random: draws in the ranges."
    )
    trials = int(c[1].number_input("Most trials", 1, 200, 8, key="tune_trials"))
    folds = c[2].selectbox(
        "Cross-validation",
        list(FOLD_CHOICES),
        format_func=FOLD_CHOICES.get,
        key="tune_folds",
        help="k-fold: every trial trains k times on different parts of the training split; steadier, k times slower.",
    )
    metric = c[3].selectbox("Judge trials by", WATCHABLE.get(task, ("val_loss",)), key="tune_metric")
    try:
        base = RunConfig(
            data=dataset.data_config(),
            model=ModelConfig(source=source or "default", task=task, method=method),
            train=TrainConfig(**recommended_train_settings(task, source or "default")),
            name="search",
        )
        cfg = SearchConfig(
            base=base,
            space=SearchSpace(**space),
            strategy=strategy,
            max_trials=trials,
            folds=int(folds),
            metric=metric,
        )
    except Exception as err:  # noqa: BLE001 - a ConfigError names the setting to change
        show_error(err, "checking the search")
        return
    if registry().active_jobs():
        st.info("A run is training now: the first trial waits until it ends.")
    if st.button("Start the search", type="primary", icon=":material/tune:"):
        job, created = runner().start(cfg)
        if not created:
            st.session_state[keys.TUNE_FLASH] = "A search is already running; it is shown above."
        st.query_params[SEARCH_PARAM] = job.search_id
        st.rerun()


def main() -> None:
    st.title("Tune")
    st.caption(
        "Let the workbench try several settings for you. Each trial is a normal training run, judged by its "
        "score on the validation data (never the test data); trials run one at a time and can be stopped."
    )
    if keys.TUNE_FLASH in st.session_state:
        st.warning(md(st.session_state.pop(keys.TUNE_FLASH)))
    searches = runner().store.list()
    active = runner().active()
    chosen = st.query_params.get(SEARCH_PARAM) or (active.search_id if active else None)
    if searches:
        ids = [s["id"] for s in searches]
        labels = {s["id"]: f"{s['name']} ({s['state']})" for s in searches}
        picked = st.selectbox(
            "Searches", ids, index=ids.index(chosen) if chosen in ids else 0, format_func=labels.get, key="tune_pick"
        )
        if picked != st.query_params.get(SEARCH_PARAM):
            st.query_params[SEARCH_PARAM] = picked
        with guarded("showing the search"):
            show_search(picked)
        st.divider()
    st.header("New search")
    if active is not None:
        st.info("A search is running; start another when it ends (or stop it).")
        return
    search_form()


with guarded():
    main()
