"""Train: choose data, model, method and settings; estimate; start; then watch the run live."""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.config import TrainConfig
from core.defaults import defaults_for, train_rows_after_split
from ui import keys, nav
from ui.format import duration
from ui.forms import field_widget, fields_grid, follow_defaults, task_name
from ui.guard import guarded, show_error
from ui.i18n import language, t, translated_options
from ui.language_note import chinese_model_note
from ui.live import live_panel
from ui.probes import probe_inputs
from ui.safe import md, md_code
from ui.state import (
    DATASET_PARAM,
    dataset_store,
    finished_runs,
    hardware,
    hardware_line,
    registry,
    run_store,
    select_run,
    selected_run_id,
)

MAIN_FIELDS = ["epochs", "learning_rate", "batch_size", "max_length"]
OWN_SECTION = {"device", "precision", "distill_alpha", "distill_temperature", "probe_texts", *MAIN_FIELDS}
GENERATION_ONLY = {"train_on_prompt", "packing"}  # how prompt/response and chat data become examples
# Literal keys (the catalog test finds them in the code); the values the widgets return stay English, so session
# state and the tests see the same value in every language.
METHOD_HELP = {
    "full": "trainpage.method.full",
    "freeze": "trainpage.method.freeze",
    "lora": "trainpage.method.lora",
    "qlora": "trainpage.method.qlora",
    "prefix": "trainpage.method.prefix",
    "prompt": "trainpage.method.prompt",
}
CUSTOM = "Another model (Hugging Face id or local folder)"
NO_TEACHER = "(none)"


def outline(source: str, task: str, runs_root: str, trust_remote_code: bool):
    # The spinner speaks the reader's language, so it is set here rather than in the cache decorator.
    with st.spinner(t("trainpage.spinner.outline")):
        return _outline(source, task, runs_root, trust_remote_code)


@st.cache_resource(max_entries=16, show_spinner=False)
def _outline(source: str, task: str, runs_root: str, trust_remote_code: bool):
    from core.inference import outline_model

    return outline_model(source, task, runs_root=runs_root, trust_remote_code=trust_remote_code)


def choose_dataset():
    store = dataset_store()
    datasets = store.list()
    if not datasets:
        st.info(t("trainpage.dataset.none"))
        st.page_link(nav.DATA.path, label=t("trainpage.dataset.go_data"), icon=":material/table:")
        return None
    names = [d.name for d in datasets]
    wanted = st.query_params.get(DATASET_PARAM) or st.session_state.get(keys.TRAIN_DATASET)
    name = st.selectbox(
        t("trainpage.dataset"),
        names,
        index=names.index(wanted) if wanted in names else 0,
        key="train_ds",
        help=t("trainpage.dataset.help"),
    )
    if name != st.query_params.get(DATASET_PARAM):
        st.query_params[DATASET_PARAM] = name
    dataset = store.get(name)
    s = dataset.settings
    roles = (
        (t("trainpage.dataset.col.text"), s.text_column),
        (t("trainpage.dataset.col.pair"), s.text_pair_column),
        (t("trainpage.dataset.col.label"), s.label_column),
    )
    cols = t("trainpage.list_separator").join(f"{md(k)} = {md_code(v)}" for k, v in roles if v)
    st.caption(
        t(
            "trainpage.dataset.caption",
            task=md(task_name(s.task)),
            rows=md(dataset.rows or "?"),
            columns=cols or t("trainpage.dataset.guessed"),
            val=float(s.val_fraction),
            test=float(s.test_fraction),
        )
    )
    return dataset


def remote_code_box() -> bool:
    """The trust_remote_code box, off and disabled when the server's owner has switched remote code off."""
    from core.models import REMOTE_CODE_ENV, remote_code_allowed

    allowed = remote_code_allowed()
    trust = st.checkbox(
        t("trainpage.remote_code"),
        value=False,
        key="trust_remote_code" if allowed else "trust_remote_code_off",
        disabled=not allowed,
        help=t("trainpage.remote_code.help"),
    )
    if not allowed:
        st.caption(t("trainpage.remote_code.off", env=REMOTE_CODE_ENV))
    return trust and allowed


def choose_model(task: str):
    from core.models import OFFLINE_DEFAULTS

    short_name = OFFLINE_DEFAULTS[task].split(" (")[0]
    # The option's value stays English (session state and tests hold it); the reader sees it in their language.
    builtin = f"Built-in: {short_name}"
    labels = {builtin: t("trainpage.model.builtin", name=short_name), CUSTOM: t("trainpage.model.custom")}
    kind = st.radio(t("trainpage.model"), [builtin, CUSTOM], format_func=labels.get, key=f"model_kind_{task}")
    trust = False
    if kind == builtin:
        source = "default"
        if task == "generation":
            st.caption(t("trainpage.builtin.generator"))
            st.info(t("trainpage.builtin.generator.note"))
        else:
            st.caption(t("trainpage.builtin.classifier"))
    else:
        source = st.text_input(
            t("trainpage.model.source"),
            key="model_source",
            placeholder=t("trainpage.model.source.placeholder"),
            help=t("trainpage.model.source.help"),
        ).strip()
        trust = remote_code_box()
        if trust:
            st.warning(t("trainpage.remote_code.warning"), icon=":material/warning:")
        if not source:
            st.info(t("trainpage.model.source.empty"))
            return None, False, None
    try:
        shape = outline(source, task, str(run_store().root), trust)
    except Exception as err:  # noqa: BLE001 - shown as a message, the page stays usable
        show_error(err, t("trainpage.doing.model"))
        return None, trust, None
    if source != "default":
        st.caption(
            t(
                "trainpage.model.shape",
                params=float(shape.parameters / 1e6),
                layers=int(shape.layers),
                positions=int(shape.max_positions),
            )
        )
    return source, trust, shape


def choose_method(task: str, shape) -> dict:
    methods = ["full", "freeze", "lora"] + (["prefix", "prompt"] if task == "generation" else [])
    qlora_off = None
    if task == "generation":
        from core.models import qlora_unavailable_reason

        qlora_off = qlora_unavailable_reason(language())
        if qlora_off is None:
            methods.insert(3, "qlora")
    method = st.radio(t("trainpage.method"), methods, format_func=translated_options(METHOD_HELP), key=f"method_{task}")
    if qlora_off:
        st.caption(t("trainpage.method.qlora_off", reason=md(qlora_off)))
    out: dict = {"method": method}
    if method == "freeze":
        c1, c2 = st.columns(2)
        out["freeze_layers"] = c1.slider(
            t("trainpage.freeze.layers"),
            0,
            max(shape.layers, 1),
            min(shape.layers // 2, shape.layers),
            key="freeze_layers",
            help=t("trainpage.freeze.layers.help", layers=int(shape.layers)),
        )
        out["freeze_embeddings"] = c2.checkbox(
            t("trainpage.freeze.embeddings"),
            value=True,
            key="freeze_embeddings",
            help=t("trainpage.freeze.embeddings.help"),
        )
    elif method in ("lora", "qlora"):
        c = st.columns(4)
        out["lora_r"] = int(
            c[0].number_input(
                t("trainpage.lora.rank"),
                1,
                512,
                shape.lora_rank,
                key=f"lora_r_{shape.source}",
                help=t("trainpage.lora.rank.help"),
            )
        )
        out["lora_alpha"] = int(
            c[1].number_input(
                t("trainpage.lora.alpha"),
                1,
                4096,
                shape.lora_alpha,
                key=f"lora_alpha_{shape.source}",
                help=t("trainpage.lora.alpha.help"),
            )
        )
        out["lora_dropout"] = float(
            c[2].number_input(
                t("trainpage.lora.dropout"),
                0.0,
                0.9,
                0.05,
                0.05,
                key="lora_dropout",
                help=t("trainpage.lora.dropout.help"),
            )
        )
        out["lora_targets"] = c[3].multiselect(
            t("trainpage.lora.targets"),
            shape.lora_candidates,
            default=shape.lora_default,
            key=f"lora_targets_{shape.source}",
            placeholder=t("trainpage.lora.targets.placeholder"),
            help=t("trainpage.lora.targets.help"),
        )
    elif method in ("prefix", "prompt"):
        out["num_virtual_tokens"] = int(
            st.number_input(
                t("trainpage.virtual_tokens"), 1, 512, 20, key="virtual_tokens", help=t("trainpage.virtual_tokens.help")
            )
        )
    return out


def train_settings(task: str, source: str, shape, dataset, method: str = "full", distill: bool = False) -> dict:
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    s = dataset.settings
    train_rows = train_rows_after_split(dataset.rows, s.val_fraction, s.test_fraction)
    # The same function and facts as the CLI's: task, method, model outline (size, length), data size.
    defaults.update(defaults_for(task, source, train_rows, method=method, outline=shape, distill=distill))
    prefix = f"tc_{task}_{source}_"
    follow_defaults(defaults, prefix)  # a new method brings its defaults, except into fields the user changed
    values = fields_grid(TrainConfig, MAIN_FIELDS, defaults, prefix, task=task, columns=4)
    with st.expander(t("trainpage.advanced")):
        hidden = OWN_SECTION if task == "generation" else OWN_SECTION | GENERATION_ONLY
        rest = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in hidden]
        values.update(fields_grid(TrainConfig, rest, defaults, prefix, task=task, columns=3))
    return values


def model_extras(method: str) -> dict:
    out: dict = {}
    with st.expander(t("trainpage.advanced_model")):
        c1, c2 = st.columns(2)
        if c1.checkbox(t("trainpage.dropout.override"), key="dropout_on", help=t("trainpage.dropout.override.help")):
            out["dropout"] = float(c2.number_input(t("trainpage.dropout"), 0.0, 0.9, 0.1, 0.05, key="dropout"))
        out["gradient_checkpointing"] = st.checkbox(
            t("trainpage.grad_ckpt"),
            key="grad_ckpt",
            help=t("trainpage.grad_ckpt.help"),
        )
        if method == "full":
            out["freeze_embeddings"] = st.checkbox(
                t("trainpage.freeze.embeddings"),
                key="full_freeze_emb",
                help=t("trainpage.full_freeze.help"),
            )
    return out


def distillation(task: str, shape, prefix: str) -> tuple[dict, dict]:
    """Teacher run, student size and loss mix; only classification runs can teach."""
    if task != "classification":
        return {}, {}
    with st.expander(t("trainpage.distill")):
        teachers = [r.id for r in finished_runs("classification")]
        teacher = st.selectbox(
            t("trainpage.distill.teacher"),
            [NO_TEACHER] + teachers,
            key="teacher_run",
            format_func=translated_options({NO_TEACHER: "trainpage.distill.none"}),
            help=t("trainpage.distill.teacher.help"),
        )
        model: dict = {}
        train: dict = {}
        if teacher != NO_TEACHER:
            model["teacher_run"] = teacher
            model["student_layers"] = int(
                st.number_input(
                    t("trainpage.distill.student_layers"),
                    0,
                    max(shape.layers, 1),
                    0,
                    key="student_layers",
                    help=t("trainpage.distill.student_layers.help"),
                )
            )
            c1, c2 = st.columns(2)
            train["distill_alpha"] = field_widget(
                TrainConfig, "distill_alpha", 0.5, f"{prefix}distill_alpha", container=c1
            )
            train["distill_temperature"] = field_widget(
                TrainConfig, "distill_temperature", 2.0, f"{prefix}distill_temperature", container=c2
            )
    return model, train


def device_settings(prefix: str) -> dict:
    hw = hardware()
    auto_device = "cuda" if hw["cuda"] else "mps" if hw["mps"] else "cpu"
    auto_precision = {"cuda": "bf16 or fp16", "cpu": "bf16" if hw["cpu_bf16"] else "fp32"}.get(auto_device, "fp32")
    c1, c2 = st.columns(2)
    device = field_widget(TrainConfig, "device", "auto", f"{prefix}device", container=c1)
    precision = field_widget(TrainConfig, "precision", "auto", f"{prefix}precision", container=c2)
    st.caption(
        t(
            "trainpage.device.detected",
            hardware=md(hardware_line(hw)),
            device=md(auto_device),
            precision=md(auto_precision),
        )
    )
    return {"device": device, "precision": precision}


def build_config(
    dataset, source: str, trust: bool, method: dict, extras: dict, distill_model: dict, train: dict, name: str
):
    from core.config import ModelConfig, RunConfig

    model = ModelConfig(
        source=source, task=dataset.settings.task, trust_remote_code=trust, **method, **extras, **distill_model
    )
    return RunConfig(data=dataset.data_config(), model=model, train=TrainConfig(**train), name=name)


def estimate_section(config) -> None:
    from core.estimate import estimate_run

    key = config.to_json()
    if st.button(
        t("trainpage.estimate"),
        icon=":material/timer:",
        help=t("trainpage.estimate.help"),
    ):
        with st.spinner(t("trainpage.estimate.spinner")):
            st.session_state[keys.ESTIMATE] = (key, estimate_run(config, runs_root=run_store().root))
    saved = st.session_state.get(keys.ESTIMATE)
    if not saved:
        return
    est_key, est = saved
    if est_key != key:
        st.caption(t("trainpage.estimate.stale"))
    epochs = config.train.epochs if not config.train.max_steps else config.train.max_steps / est.steps_per_epoch
    c = st.columns(4)
    c[0].metric(
        t("trainpage.estimate.trainable"),
        f"{est.trainable_params:,}",
        t("trainpage.estimate.share", share=float(est.trainable_share)),
        delta_color="off",
    )
    c[1].metric(
        t("trainpage.estimate.memory"),
        f"{est.memory_gb:.2f} GB",
        t("trainpage.estimate.measured") if est.memory_measured else t("trainpage.estimate.computed"),
        delta_color="off",
    )
    c[2].metric(
        t("trainpage.estimate.epoch"),
        duration(est.seconds_per_epoch),
        t("trainpage.estimate.speed", speed=float(est.samples_per_s)),
        delta_color="off",
    )
    c[3].metric(
        t("trainpage.estimate.total"),
        duration(est.seconds_per_epoch * epochs),
        t("trainpage.estimate.steps", steps=int(est.steps_per_epoch)),
        delta_color="off",
    )
    for note in est.notes:
        st.caption(md(note))


def start(config) -> None:
    from core.errors import WorkbenchError
    from core.preflight import preflight

    try:
        # A model folder deleted since it was outlined (cached) or a dataset file gone from disk is told here,
        # before a run folder exists that could only say 'failed'.
        with st.spinner(t("trainpage.start.spinner")):
            preflight(config, run_store().root)
    except WorkbenchError as err:
        show_error(err, t("trainpage.doing.check_run"))
        return
    try:
        job, created = registry().start(config)
    except WorkbenchError as err:  # DeviceBusy: another process (the CLI) trains on this device; it is named
        show_error(err, t("trainpage.doing.start_run"))
        return
    select_run(job.run_id)
    if not created:
        st.session_state[keys.FLASH] = t("trainpage.start.busy", run=md_code(job.run_id))
    st.rerun()


def new_run_form() -> None:
    dataset = choose_dataset()
    if dataset is None:
        return
    task = dataset.settings.task
    st.subheader(t("trainpage.section.model"))
    chinese_model_note(dataset)  # mostly Chinese text: what to expect of the default, which models to use
    source, trust, shape = choose_model(task)
    if shape is None:
        return
    st.subheader(t("trainpage.section.method"))
    method = choose_method(task, shape)
    prefix = f"tc_{task}_{source}_"
    # Before the settings: a teacher changes the defaults (distillation trains like a method of its own).
    distill_model, distill_train = distillation(task, shape, prefix)
    st.subheader(t("trainpage.section.settings"))
    train = train_settings(task, source, shape, dataset, method["method"], bool(distill_model.get("teacher_run")))
    extras = model_extras(method["method"])
    train.update(distill_train)
    train.update(probe_inputs(task, prefix))
    st.subheader(t("trainpage.section.device"))
    train.update(device_settings(prefix))
    name = st.text_input(t("trainpage.run_name"), key="run_name", help=t("trainpage.run_name.help"))
    try:
        config = build_config(dataset, source, trust, method, extras, distill_model, train, name.strip())
    except Exception as err:  # noqa: BLE001 - a ConfigError names the field and the accepted range
        show_error(err, t("trainpage.doing.settings"))
        return
    with guarded(t("trainpage.doing.estimate")):
        estimate_section(config)
    if st.button(t("trainpage.start"), type="primary", icon=":material/play_arrow:"):
        start(config)


def main() -> None:
    st.title(t("trainpage.title"))
    if keys.FLASH in st.session_state:
        flash = st.session_state.pop(keys.FLASH)  # written by this program, its run id through md_code
        st.warning(flash)
    run_id = selected_run_id()
    if run_id is None:
        active = registry().active_jobs()
        run_id = active[0].run_id if active else None
    if run_id is not None and run_id not in {r.id for r in run_store().list()}:
        # The URL is anyone's to write: the name is shown as text, never as a link or an image.
        st.warning(t("trainpage.no_run", run=md(run_id)))
        select_run(None)
        run_id = None
    if run_id is None:
        new_run_form()
        return
    with guarded(t("trainpage.doing.show_run")):
        live_panel(run_id)
    st.divider()
    # The form stays folded while a run is shown, so the live view is what a click on Start leads to.
    if st.toggle(t("trainpage.new_run"), key=keys.SHOW_FORM):
        new_run_form()


with guarded():
    main()
