"""Tune: try several learning rates, batch sizes, epochs and weight decays automatically, then train the best."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.runs import ACTIVE
from ui import keys, live_api, live_ticker, nav
from ui.format import state_badge
from ui.forms import WATCHABLE
from ui.guard import guarded, show_error
from ui.i18n import state_label, status_message, t
from ui.learning_curve import learning_curve_panel
from ui.safe import md, md_code
from ui.state import dataset_store, registry, workspace

SEARCH_PARAM = "search"
LR_CHOICES = [1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 3e-3]
BATCH_CHOICES = [4, 8, 16, 32, 64]
EPOCH_CHOICES = [1.0, 2.0, 3.0, 4.0, 5.0]
DECAY_CHOICES = [0.0, 0.01, 0.05, 0.1]
FOLD_CHOICES = (0, 3, 5)
# Literal keys (the catalog test finds them in the code); the values the engine sees stay English.
PARAM_NAMES = {
    "learning_rate": "tune.param.learning_rate",
    "batch_size": "tune.param.batch_size",
    "epochs": "tune.param.epochs",
    "weight_decay": "tune.param.weight_decay",
}
METHOD_NAMES = {"full": "tune.method.full", "lora": "tune.method.lora"}
STRATEGY_NAMES = {"grid": "tune.strategy.grid", "random": "tune.strategy.random"}


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
        symbol=[t("tune.chart.symbol", epochs=r["epochs"]) for r in scored],
        hover_data=["trial", "weight_decay", "epochs", "batch_size"],
        log_x=True,
        labels={
            "color": t("tune.param.batch_size"),
            "symbol": t("tune.param.epochs"),
            "learning_rate": t("tune.chart.lr"),
        },
        title=t("tune.chart.title", metric=metric),
    )
    fig.update_traces(marker={"size": 12})
    fig.update_layout(height=340, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def search_status(search_id: str) -> None:
    """The search's progress, table and chart, read from disk (polled while it runs)."""
    import pandas as pd

    from core.search import TRIAL_ACTIVE, results_table

    record = runner().store.get(search_id)
    if record["state"] in ACTIVE and live_api.available():
        # Served with the live route: no timer; the browser asks for the record's signature and reruns this
        # fragment when a trial starts or ends (every 2 s, it sent the same table and chart again and again).
        from core.live_feed import record_signature

        live_ticker.watch_record("searches", search_id, record_signature(record))
    metric = record["config"]["metric"]
    trials = record["trials"]
    done = sum(t["state"] not in TRIAL_ACTIVE for t in trials)
    st.markdown(f"**{md(record['name'])}** {state_badge(record['state'])}  \n{md(status_message(record))}")
    st.progress(done / len(trials), text=t("tune.progress", done=md(done), total=len(trials)))
    rows = results_table(record)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(t("tune.table.caption"))
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
    timed = active and not live_api.available()
    st.fragment(run_every=2.0 if timed else None)(search_status)(search_id)
    if active:
        # Through the search's folder: it reaches a search this server, another one or the CLI runs.
        if st.button(t("tune.stop"), icon=":material/stop:", key="stop_search") and runner().stop(search_id):
            st.toast(t("tune.stopping"))
        return
    best = best_trial(record)
    if best is None:
        return
    params = t("tune.list_separator").join(
        f"{t(PARAM_NAMES[k]) if k in PARAM_NAMES else k} {v:g}" for k, v in best["params"].items()
    )
    st.success(t("tune.best", trial=md(best["trial"]), params=md(params)))
    if st.button(t("tune.start_best"), type="primary", icon=":material/play_arrow:"):
        job, created = registry().start(best_config(record))
        if not created:
            st.warning(t("tune.busy", run=md_code(job.run_id)))
            return
        st.switch_page(nav.TRAIN.path, query_params={"run": job.run_id})


# ----------------------------------------------------------------------------------------------- a new search
def _lr(value: float) -> str:
    return f"{value:.0e}"


def search_form() -> None:
    from core.config import ModelConfig, RunConfig, TrainConfig
    from core.defaults import recommended_train_settings
    from core.search import SearchConfig, SearchSpace

    datasets = dataset_store().list()
    if not datasets:
        st.info(t("tune.no_dataset"))
        return
    names = [d.name for d in datasets]
    dataset = dataset_store().get(st.selectbox(t("tune.dataset"), names, key="tune_dataset"))
    task = dataset.settings.task
    c1, c2 = st.columns(2)
    source = c1.text_input(t("tune.model"), "default", key="tune_model", help=t("tune.model.help")).strip()
    method = c2.radio(
        t("tune.method"),
        list(METHOD_NAMES),
        format_func=lambda m: t(METHOD_NAMES[m]),
        horizontal=True,
        key="tune_method",
        help=t("tune.method.help"),
    )
    st.markdown(t("tune.values"))
    c = st.columns(4)
    space = {
        "learning_rate": c[0].multiselect(
            t("tune.learning_rates"), LR_CHOICES, [2e-5, 5e-5, 1e-4], format_func=_lr, key="tune_lr"
        ),
        "batch_size": c[1].multiselect(t("tune.batch_sizes"), BATCH_CHOICES, [16], key="tune_batch"),
        "epochs": c[2].multiselect(
            t("tune.epochs"), EPOCH_CHOICES, [1.0], format_func=lambda v: f"{v:g}", key="tune_epochs"
        ),
        "weight_decay": c[3].multiselect(
            t("tune.weight_decays"), DECAY_CHOICES, [0.01], format_func=lambda v: f"{v:g}", key="tune_decay"
        ),
    }
    c = st.columns(4)
    strategy = c[0].radio(
        t("tune.strategy"),
        list(STRATEGY_NAMES),
        format_func=lambda s: t(STRATEGY_NAMES[s]),
        key="tune_strategy",
        help=t("tune.strategy.help"),
    )
    trials = int(c[1].number_input(t("tune.trials"), 1, 200, 8, key="tune_trials"))
    folds = c[2].selectbox(
        t("tune.folds"),
        list(FOLD_CHOICES),
        format_func=lambda k: t("tune.folds.k", k=k) if k else t("tune.folds.none"),
        key="tune_folds",
        help=t("tune.folds.help"),
    )
    metric = c[3].selectbox(t("tune.metric"), WATCHABLE.get(task, ("val_loss",)), key="tune_metric")
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
        st.info(t("tune.waiting"))
    if st.button(t("tune.start"), type="primary", icon=":material/tune:"):
        job, created = runner().start(cfg)
        if not created:
            st.session_state[keys.TUNE_FLASH] = t("tune.already")
        st.query_params[SEARCH_PARAM] = job.search_id
        st.rerun()
    learning_curve_panel(cfg.base, metric)  # the same dataset and settings, on shares of the rows


def main() -> None:
    st.title(t("nav.page.tune"))
    st.caption(t("tune.intro"))
    if keys.TUNE_FLASH in st.session_state:
        st.warning(md(st.session_state.pop(keys.TUNE_FLASH)))
    searches = runner().store.list()
    active = runner().active()
    chosen = st.query_params.get(SEARCH_PARAM) or (active.search_id if active else None)
    if searches:
        ids = [s["id"] for s in searches]
        labels = {s["id"]: f"{s['name']} ({state_label(s['state'])})" for s in searches}
        picked = st.selectbox(
            t("tune.searches"),
            ids,
            index=ids.index(chosen) if chosen in ids else 0,
            format_func=labels.get,
            key="tune_pick",
        )
        if picked != st.query_params.get(SEARCH_PARAM):
            st.query_params[SEARCH_PARAM] = picked
        with guarded("showing the search"):
            show_search(picked)
        st.divider()
    st.header(t("tune.new"))
    if active is not None:
        st.info(t("tune.running"))
        return
    search_form()


with guarded():
    main()
