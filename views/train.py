"""Train: choose data, model, method and settings; estimate; start; then watch the run live."""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.config import TrainConfig, recommended_train_settings
from ui import keys, nav
from ui.format import duration
from ui.forms import field_widget, fields_grid, follow_defaults
from ui.guard import guarded, show_error
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
METHOD_HELP = {
    "full": "Full fine-tuning: every weight learns. Best results, most memory.",
    "freeze": "Freeze the embeddings and the first layers; only the top of the model learns. Faster, less memory.",
    "lora": "LoRA: small adapter matrices learn, the model stays frozen. A few % of the parameters; fast.",
    "qlora": "QLoRA: LoRA on the model loaded in 4 bits. Large models fit in a small GPU's memory.",
    "prefix": "Prefix tuning: learn virtual tokens prepended to every layer; the model stays frozen.",
    "prompt": "Prompt tuning: learn virtual tokens prepended to the input; the model stays frozen.",
}
CUSTOM = "Another model (Hugging Face id or local folder)"


@st.cache_resource(max_entries=16, show_spinner="Reading the model's configuration...")
def outline(source: str, task: str, runs_root: str, trust_remote_code: bool):
    from core.inference import outline_model

    return outline_model(source, task, runs_root=runs_root, trust_remote_code=trust_remote_code)


def choose_dataset():
    store = dataset_store()
    datasets = store.list()
    if not datasets:
        st.info("No dataset yet. Save one on the Data page (or use **Try the sample** on Home).")
        st.page_link(nav.DATA.path, label="Go to the Data page", icon=":material/table:")
        return None
    names = [d.name for d in datasets]
    wanted = st.query_params.get(DATASET_PARAM) or st.session_state.get(keys.TRAIN_DATASET)
    name = st.selectbox(
        "Dataset",
        names,
        index=names.index(wanted) if wanted in names else 0,
        key="train_ds",
        help="Datasets saved on the Data page.",
    )
    if name != st.query_params.get(DATASET_PARAM):
        st.query_params[DATASET_PARAM] = name
    dataset = store.get(name)
    s = dataset.settings
    cols = ", ".join(
        f"{md(k)} = {md_code(v)}"
        for k, v in (("text", s.text_column), ("second text", s.text_pair_column), ("label", s.label_column))
        if v
    )
    st.caption(
        f"Task **{md(s.task)}**; {md(dataset.rows or '?')} rows; columns {cols or 'guessed'}; "
        f"validation {s.val_fraction:.0%}, test {s.test_fraction:.0%}."
    )
    return dataset


def remote_code_box() -> bool:
    """The trust_remote_code box, off and disabled when the server's owner has switched remote code off."""
    from core.models import REMOTE_CODE_ENV, remote_code_allowed

    allowed = remote_code_allowed()
    trust = st.checkbox(
        "Allow code shipped with the model (trust_remote_code)",
        value=False,
        key="trust_remote_code" if allowed else "trust_remote_code_off",
        disabled=not allowed,
        help="Only for models you trust: it runs the model author's Python code here.",
    )
    if not allowed:
        st.caption(
            f"The server's owner turned off code shipped with models ({REMOTE_CODE_ENV}=0): only models that "
            "need no code of their own can be used here."
        )
    return trust and allowed


def choose_model(task: str):
    from core.models import OFFLINE_DEFAULTS

    builtin = f"Built-in: {OFFLINE_DEFAULTS[task].split(' (')[0]}"
    kind = st.radio("Model", [builtin, CUSTOM], key=f"model_kind_{task}")
    trust = False
    if kind == builtin:
        source = "default"
        st.caption(md(OFFLINE_DEFAULTS[task] + "."))
        if task == "generation":
            st.info(
                "The generation default is a **tiny GPT-2 trained from scratch** on your text: it knows no "
                "language beforehand, so expect it to imitate the style of your data, not to be clever."
            )
    else:
        source = st.text_input(
            "Hugging Face id or local folder",
            key="model_source",
            placeholder="e.g. distilbert-base-uncased or /models/my-bert",
            help="A model id on huggingface.co (needs internet or a local cache), a folder "
            "saved with save_pretrained, or the id of one of your finished runs.",
        ).strip()
        trust = remote_code_box()
        if trust:
            st.warning(
                "Code shipped with this model will run on this server with your permissions. Turn this on only "
                "for a model whose author you trust.",
                icon=":material/warning:",
            )
        if not source:
            st.info("Type a model id or folder, or use the built-in model.")
            return None, False, None
    try:
        shape = outline(source, task, str(run_store().root), trust)
    except Exception as err:  # noqa: BLE001 - shown as a message, the page stays usable
        show_error(err, "reading the model")
        return None, trust, None
    if source != "default":
        st.caption(
            f"{shape.parameters / 1e6:.1f}M parameters, {shape.layers:,} layers, up to {shape.max_positions:,} tokens."
        )
    return source, trust, shape


def choose_method(task: str, shape) -> dict:
    methods = ["full", "freeze", "lora"] + (["prefix", "prompt"] if task == "generation" else [])
    qlora_off = None
    if task == "generation":
        from core.models import qlora_unavailable_reason

        qlora_off = qlora_unavailable_reason()
        if qlora_off is None:
            methods.insert(3, "qlora")
    method = st.radio("Method", methods, format_func=lambda m: METHOD_HELP[m], key=f"method_{task}")
    if qlora_off:
        st.caption(md(f"QLoRA is not offered: {qlora_off}"))
    out: dict = {"method": method}
    if method == "freeze":
        c1, c2 = st.columns(2)
        out["freeze_layers"] = c1.slider(
            "Freeze the first N layers",
            0,
            max(shape.layers, 1),
            min(shape.layers // 2, shape.layers),
            key="freeze_layers",
            help=f"The model has {shape.layers:,} layers; the frozen ones do not learn.",
        )
        out["freeze_embeddings"] = c2.checkbox(
            "Freeze the token embeddings",
            value=True,
            key="freeze_embeddings",
            help="Usually a large share of a small model's parameters.",
        )
    elif method in ("lora", "qlora"):
        c = st.columns(4)
        out["lora_r"] = int(
            c[0].number_input(
                "LoRA rank", 1, 512, 8, key="lora_r", help="Size of the adapters: higher learns more, trains slower."
            )
        )
        out["lora_alpha"] = int(
            c[1].number_input(
                "LoRA alpha",
                1,
                4096,
                16,
                key="lora_alpha",
                help="Scaling: alpha / rank multiplies the adapters' output.",
            )
        )
        out["lora_dropout"] = float(
            c[2].number_input(
                "LoRA dropout", 0.0, 0.9, 0.05, 0.05, key="lora_dropout", help="Dropout on the adapters' input."
            )
        )
        out["lora_targets"] = c[3].multiselect(
            "Target modules",
            shape.lora_candidates,
            default=shape.lora_default,
            key=f"lora_targets_{shape.source}",
            help="Which linear layers get adapters (attention projections are the usual choice).",
        )
    elif method in ("prefix", "prompt"):
        out["num_virtual_tokens"] = int(
            st.number_input(
                "Virtual tokens", 1, 512, 20, key="virtual_tokens", help="How many learned tokens are prepended."
            )
        )
    return out


def train_settings(task: str, source: str, shape, dataset, method: str = "full", distill: bool = False) -> dict:
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    train_rows = None
    if dataset.rows:
        train_rows = int(dataset.rows * (1 - dataset.settings.val_fraction - dataset.settings.test_fraction))
    # The same function as the CLI's: by task, method, model size and data size.
    defaults.update(
        recommended_train_settings(task, source, train_rows, method=method, params=shape.parameters, distill=distill)
    )
    defaults["max_length"] = min(defaults["max_length"], shape.max_positions)
    if dataset.rows and task != "generation":
        # About 40 points on the live curve: a 20-step run logs every step, a long one every 10.
        s = dataset.settings
        steps = dataset.rows * (1 - s.val_fraction - s.test_fraction) / defaults["batch_size"] * defaults["epochs"]
        defaults["log_every"] = int(min(max(steps // 40, 1), defaults["log_every"]))
    prefix = f"tc_{task}_{source}_"
    follow_defaults(defaults, prefix)  # a new method brings its defaults, except into fields the user changed
    values = fields_grid(TrainConfig, MAIN_FIELDS, defaults, prefix, task=task, columns=4)
    with st.expander("Advanced settings"):
        hidden = OWN_SECTION if task == "generation" else OWN_SECTION | GENERATION_ONLY
        rest = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in hidden]
        values.update(fields_grid(TrainConfig, rest, defaults, prefix, task=task, columns=3))
    return values


def model_extras(method: str) -> dict:
    out: dict = {}
    with st.expander("Advanced model settings"):
        c1, c2 = st.columns(2)
        if c1.checkbox("Override dropout", key="dropout_on", help="Use the model's own dropout unless set."):
            out["dropout"] = float(c2.number_input("Dropout", 0.0, 0.9, 0.1, 0.05, key="dropout"))
        out["gradient_checkpointing"] = st.checkbox(
            "Gradient checkpointing",
            key="grad_ckpt",
            help="Recompute activations in the backward pass: much less memory for long inputs, about 30% slower.",
        )
        if method == "full":
            out["freeze_embeddings"] = st.checkbox(
                "Freeze the token embeddings",
                key="full_freeze_emb",
                help="Keeps the vocabulary's vectors fixed: less memory.",
            )
    return out


def distillation(task: str, shape, prefix: str) -> tuple[dict, dict]:
    """Teacher run, student size and loss mix; only classification runs can teach."""
    if task != "classification":
        return {}, {}
    with st.expander("Distillation (optional): learn from a finished model"):
        teachers = [r.id for r in finished_runs("classification")]
        teacher = st.selectbox(
            "Teacher run",
            ["(none)"] + teachers,
            key="teacher_run",
            help="A finished classification run whose predictions this model learns to imitate.",
        )
        model: dict = {}
        train: dict = {}
        if teacher != "(none)":
            model["teacher_run"] = teacher
            model["student_layers"] = int(
                st.number_input(
                    "Student layers (0: keep all)",
                    0,
                    max(shape.layers, 1),
                    0,
                    key="student_layers",
                    help="Keep only the first N layers of the model: a smaller, faster student.",
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
    st.caption(f"Detected: {md(hardware_line(hw))}. 'auto' uses {md(auto_device)} with {md(auto_precision)}.")
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
        "Estimate time and memory",
        icon=":material/timer:",
        help="Builds the model and times a few training steps on a sample of your data (seconds).",
    ):
        with st.spinner("Timing a few training steps..."):
            st.session_state[keys.ESTIMATE] = (key, estimate_run(config, runs_root=run_store().root))
    saved = st.session_state.get(keys.ESTIMATE)
    if not saved:
        return
    est_key, est = saved
    if est_key != key:
        st.caption("The settings changed since the last estimate; estimate again for current figures.")
    epochs = config.train.epochs if not config.train.max_steps else config.train.max_steps / est.steps_per_epoch
    c = st.columns(4)
    c[0].metric(
        "Trainable parameters", f"{est.trainable_params:,}", f"{est.trainable_share:.1%} of all", delta_color="off"
    )
    c[1].metric(
        "Memory (approx.)",
        f"{est.memory_gb:.2f} GB",
        "measured" if est.memory_measured else "computed",
        delta_color="off",
    )
    c[2].metric(
        "Time per epoch (approx.)",
        duration(est.seconds_per_epoch),
        f"{est.samples_per_s:.0f} samples/s",
        delta_color="off",
    )
    c[3].metric(
        "Whole run (approx.)",
        duration(est.seconds_per_epoch * epochs),
        f"{est.steps_per_epoch:,} steps/epoch",
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
        with st.spinner("Checking the data and the model..."):
            preflight(config, run_store().root)
    except WorkbenchError as err:
        show_error(err, "checking the run")
        return
    try:
        job, created = registry().start(config)
    except WorkbenchError as err:  # DeviceBusy: another process (the CLI) trains on this device; it is named
        show_error(err, "starting the run")
        return
    select_run(job.run_id)
    if not created:
        st.session_state[keys.FLASH] = (
            f"A run is already training on this device ({md_code(job.run_id)}); it is shown "
            "below. Stop it or wait for it before starting another."
        )
    st.rerun()


def new_run_form() -> None:
    dataset = choose_dataset()
    if dataset is None:
        return
    task = dataset.settings.task
    st.subheader("Model")
    chinese_model_note(dataset)  # mostly Chinese text: what to expect of the default, which models to use
    source, trust, shape = choose_model(task)
    if shape is None:
        return
    st.subheader("Method")
    method = choose_method(task, shape)
    prefix = f"tc_{task}_{source}_"
    # Before the settings: a teacher changes the defaults (distillation trains like a method of its own).
    distill_model, distill_train = distillation(task, shape, prefix)
    st.subheader("Settings")
    train = train_settings(task, source, shape, dataset, method["method"], bool(distill_model.get("teacher_run")))
    extras = model_extras(method["method"])
    train.update(distill_train)
    train.update(probe_inputs(task, prefix))
    st.subheader("Device")
    train.update(device_settings(prefix))
    name = st.text_input("Run name (optional)", key="run_name", help="Shown in lists; an id is always added.")
    try:
        config = build_config(dataset, source, trust, method, extras, distill_model, train, name.strip())
    except Exception as err:  # noqa: BLE001 - a ConfigError names the field and the accepted range
        show_error(err, "checking the settings")
        return
    with guarded("estimating"):
        estimate_section(config)
    if st.button("Start training", type="primary", icon=":material/play_arrow:"):
        start(config)


def main() -> None:
    st.title("Train")
    if keys.FLASH in st.session_state:
        flash = st.session_state.pop(keys.FLASH)  # written by this program, its run id through md_code
        st.warning(flash)
    run_id = selected_run_id()
    if run_id is None:
        active = registry().active_jobs()
        run_id = active[0].run_id if active else None
    if run_id is not None and run_id not in {r.id for r in run_store().list()}:
        # The URL is anyone's to write: the name is shown as text, never as a link or an image.
        st.warning(f"There is no run named '{md(run_id)}' (deleted?). Start a new one below.")
        select_run(None)
        run_id = None
    if run_id is None:
        new_run_form()
        return
    with guarded("showing the run"):
        live_panel(run_id)
    st.divider()
    # The form stays folded while a run is shown, so the live view is what a click on Start leads to.
    if st.toggle("Set up a new run", key=keys.SHOW_FORM):
        new_run_form()


with guarded():
    main()
