"""Compare: several runs side by side: curves, scores, the settings that differ, and answers to one input."""

from __future__ import annotations

import streamlit as st

from core.config import config_diff
from core.curves import curve_frames, downsample
from ui import charts, share
from ui.diagnosis import show_diagnosis
from ui.format import STRATEGY_NAMES, metric
from ui.guard import guarded, show_error
from ui.i18n import language, t, translated_options
from ui.pickers import run_label
from ui.probes import probes_across_runs
from ui.safe import hide_paths, md
from ui.state import RUN_PARAM, finished_runs, load_bundle

# Literal keys (the catalog test finds them in the code).
X_AXES = {"step": "compare.x.step", "epoch": "compare.x.epoch"}
SPLIT_NAMES = {"validation": "compare.split.validation", "test": "compare.split.test"}
# The scores' own names (as in results.json) in the reader's words; English keeps the names as they are.
METRIC_WORDS = {
    "accuracy": "compare.metric.accuracy", "f1": "compare.metric.f1", "loss": "compare.metric.loss",
    "precision": "compare.metric.precision", "recall": "compare.metric.recall", "mse": "compare.metric.mse",
    "mae": "compare.metric.mae", "r2": "compare.metric.r2", "perplexity": "compare.metric.perplexity",
    "bleu": "compare.metric.bleu", "rouge_l": "compare.metric.rouge_l", "exact_match": "compare.metric.exact_match",
}  # fmt: skip
RESULT_NAMES = {
    "steps": "compare.result.steps",
    "train_seconds": "compare.result.train_seconds",
    "samples_per_s": "compare.result.samples_per_s",
}


def pick_runs() -> list:
    runs = finished_runs()
    if len(runs) < 1:
        st.info(t("compare.none"))
        return []
    ids = [r.id for r in runs]
    wanted = [i for i in st.query_params.get_all("runs") if i in ids] or (
        [st.query_params.get(RUN_PARAM)] if st.query_params.get(RUN_PARAM) in ids else []
    )
    for i in ids:  # fill up to two with the newest
        if len(wanted) >= 2:
            break
        if i not in wanted:
            wanted.append(i)
    chosen = st.multiselect(
        t("compare.runs"),
        ids,
        default=wanted,
        key="cmp_runs",
        placeholder=t("pick.choose"),
        format_func=lambda i, lang=language(): run_label(runs[ids.index(i)], lang),
    )
    st.query_params["runs"] = chosen
    return [runs[ids.index(i)] for i in chosen]


def curves(runs: list) -> None:
    c1, c2 = st.columns(2)
    x = c1.radio(t("compare.x"), list(X_AXES), format_func=translated_options(X_AXES), horizontal=True, key="cmp_x")
    log_y = c2.toggle(t("compare.log"), key="cmp_log")
    data = {}
    for run in runs:
        train, evals = curve_frames(run.metrics())
        data[run.id] = (downsample(train), evals)
    st.plotly_chart(charts.compare_curves(data, x=x, log_y=log_y), key="cmp_curves")


def scores(runs: list) -> None:
    table: dict[str, dict[str, str]] = {}
    for run in runs:
        results = run.results()
        column: dict[str, str] = {}
        for split in ("validation", "test"):
            for key, value in (results.get(split) or {}).items():
                if isinstance(value, (int, float)):
                    name = t(METRIC_WORDS[key]) if key in METRIC_WORDS else key
                    column[t("compare.score", split=t(SPLIT_NAMES[split]), metric=name)] = metric(value)
        for key in ("steps", "train_seconds", "samples_per_s"):
            if key in results:
                column[t(RESULT_NAMES[key])] = metric(results[key])
        table[run.id] = column
    rows = sorted({k for col in table.values() for k in col})
    header = t("compare.col.metric")
    st.dataframe([{header: r, **{rid: table[rid].get(r, "–") for rid in table}} for r in rows], hide_index=True)


def settings_diff(runs: list) -> None:
    configs = {r.id: r.config_dict() for r in runs}
    first = next(iter(configs.values()))
    keys = sorted({k for cfg in configs.values() for k in config_diff(first, cfg)})
    if not keys:
        st.caption(t("compare.same_settings"))
        return

    def value(cfg: dict, dotted: str):
        for part in dotted.split("."):
            cfg = cfg.get(part) if isinstance(cfg, dict) else None
        return "–" if cfg is None else hide_paths(str(cfg))

    st.dataframe(
        [{t("compare.col.setting"): k, **{rid: value(cfg, k) for rid, cfg in configs.items()}} for k in keys],
        hide_index=True,
    )


def side_by_side(runs: list, with_base: bool) -> None:
    from core.generation import GenerationSettings, generate, predict_proba

    tasks = {r.config().model.task for r in runs}
    if len(tasks) > 1:
        st.info(t("compare.mixed_tasks"))
        return
    task = tasks.pop()
    text = st.text_area(
        t("compare.prompt") if task == "generation" else t("compare.text"),
        key="cmp_text",
        placeholder=t("compare.text.placeholder"),
    )
    settings = None
    if task == "generation":
        c1, c2 = st.columns(2)
        strategy = c1.radio(
            t("play.decoding"),
            list(STRATEGY_NAMES),
            format_func=translated_options(STRATEGY_NAMES),
            horizontal=True,
            key="cmp_strategy",
        )
        max_new = c2.number_input(t("play.max_new_tokens"), 1, 512, 48, key="cmp_max_new")
        settings = GenerationSettings(strategy=strategy, max_new_tokens=int(max_new))
    if not st.button(t("compare.answer"), type="primary", icon=":material/send:") or not text.strip():
        return
    entries = [(r.id, r, False) for r in runs] + ([(t("compare.base_model"), runs[0], True)] if with_base else [])
    cols = st.columns(len(entries))
    for col, (name, run, base) in zip(cols, entries):
        with col, st.container(border=True):
            st.markdown(f"**{md(name)}**")
            try:
                with st.spinner(t("compare.thinking")):
                    bundle = load_bundle(run, base=base)
                    if task == "generation":
                        # Model output is text: a generated link or image must not come alive.
                        st.text(generate(bundle, text, settings))
                    else:
                        probs = predict_proba(bundle, [text])[0]
                        if task == "regression":
                            st.metric(t("compare.predicted_value"), f"{probs[0]:.3f}")
                        else:
                            names = bundle.label_names or [str(i) for i in range(len(probs))]
                            label = md(names[int(probs.argmax())])
                            st.metric(t("compare.label"), label, f"{probs.max():.1%}", delta_color="off")
                            st.plotly_chart(charts.probabilities(names, probs.tolist()), key=f"cmp_p_{name}")
            except Exception as err:  # noqa: BLE001 - one model failing must not hide the others
                show_error(err, t("compare.running", name=name))


def main() -> None:
    st.title(t("nav.page.compare"))
    runs = pick_runs()
    if not runs:
        return
    with_base = st.checkbox(t("compare.with_base"), key="cmp_base")
    st.subheader(t("compare.curves"))
    curves(runs)
    st.subheader(t("compare.scores"))
    scores(runs)
    st.subheader(t("compare.diagnosis"))
    for run in runs:
        st.caption(md(run_label(run)))
        show_diagnosis(run, key="cmp_")
    if len(runs) > 1:
        st.subheader(t("compare.settings"))
        settings_diff(runs)
    st.subheader(t("compare.probes"))
    probes_across_runs(runs)
    st.subheader(t("compare.one_input"))
    side_by_side(runs, with_base)
    share.report_button(runs, key="compare_report")


with guarded():
    main()
