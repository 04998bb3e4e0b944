"""Typed run configuration: one dataclass per concern, validated once, round-tripped through JSON.

Every field has a docstring-style comment; validation lives in ``__post_init__`` and raises
``ConfigError`` (a ``ValueError``) that names the field and the accepted range.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

TASKS = ("classification", "regression", "generation")
METHODS = ("full", "freeze", "lora", "qlora", "prefix", "prompt")
OPTIMIZERS = ("adamw", "adam", "sgd", "adafactor")
SCHEDULES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
AUGMENT_OPS = ("delete", "swap", "synonym", "char_noise")
# Config keys that may hold credentials; never written to disk.
SECRET_KEYS = ("token", "hf_token", "use_auth_token", "api_key", "password")


def _check(cond: bool, field_name: str, message: str, **params: Any) -> None:
    """Refuse a setting: ``message`` is a catalog key (``error.config.*``, filled with ``params``) or plain text."""
    if not cond:
        raise ConfigError("error.config.setting", field=field_name, detail=message, **params)


@dataclass
class DataConfig:
    """Where the data comes from and how it is cut into train / validation / test."""

    train_path: str = ""
    """The main data file (csv, tsv, json, jsonl, parquet, txt)."""
    text_column: str | None = None
    """Column holding the text (None: guessed)."""
    text_pair_column: str | None = None
    """Second text column for sentence-pair tasks (None: single sentence)."""
    label_column: str | None = None
    """Column holding the label or numeric target (None: guessed; unused for generation)."""
    instruction_column: str | None = None
    """Generation: a column with an instruction put before each prompt (Alpaca's 'instruction'; None: guessed)."""
    system_column: str | None = None
    """Generation: a column with a system message for each row (None: guessed from a column named 'system')."""
    validation_path: str | None = None
    """Optional separate validation file (then val_fraction is ignored)."""
    test_path: str | None = None
    """Optional separate test file (then test_fraction is ignored)."""
    val_fraction: float = 0.1
    """Share of rows held out for validation when no validation file is given."""
    test_fraction: float = 0.1
    """Share of rows held out for testing when no test file is given."""
    stratify: bool = True
    """Keep class proportions equal across splits (classification only)."""
    split_seed: int = 42
    """Seed of the split: the same seed gives the same split."""
    augment_ops: list[str] = field(default_factory=list)
    """Text augmentation operations applied to the training split only."""
    augment_multiplier: int = 0
    """How many augmented copies of each training example to add (0: none)."""
    max_file_mb: float = 200.0
    """Refuse files larger than this many megabytes."""
    class_names: dict[str, str] = field(default_factory=dict)
    """Names for the classes as they appear in the label column, e.g. {"0": "negative", "1": "positive"}: the
    model's id2label, the Playground and every chart use them (classes not named keep their own value)."""

    def __post_init__(self) -> None:
        _check(0.0 <= self.val_fraction < 1.0, "val_fraction", "error.config.fraction")
        _check(0.0 <= self.test_fraction < 1.0, "test_fraction", "error.config.fraction")
        _check(
            self.val_fraction + self.test_fraction < 0.9,
            "val_fraction",
            "error.config.leave_train",
        )
        bad = [op for op in self.augment_ops if op not in AUGMENT_OPS]
        _check(not bad, "augment_ops", "error.config.augment_ops", bad=bad, choices=list(AUGMENT_OPS))
        _check(0 <= self.augment_multiplier <= 10, "augment_multiplier", "error.config.between", lo=0, hi=10)
        _check(self.max_file_mb > 0, "max_file_mb", "error.config.positive")
        _check(
            isinstance(self.class_names, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.class_names.items()),
            "class_names",
            "error.config.class_names_map",
        )
        named = [v.strip() for v in self.class_names.values()]
        _check(all(named), "class_names", "error.config.class_name_empty")
        _check(len(set(named)) == len(named), "class_names", "error.config.class_name_same")
        self.class_names = {str(k): v.strip() for k, v in self.class_names.items() if v.strip() != str(k)}


@dataclass
class ModelConfig:
    """Which model, for which task, and which parameters train."""

    source: str = "default"
    """'default' (the built-in offline model for the task), a Hugging Face id, a local folder or a run id."""
    task: str = "classification"
    """classification, regression or generation (causal language modelling)."""
    method: str = "full"
    """full (all weights), freeze (embeddings / first layers), lora (adapters only), qlora (adapters on a model
    loaded in 4 bits: CUDA with bitsandbytes only), prefix or prompt tuning (generation: learn virtual tokens,
    the model stays frozen)."""
    freeze_embeddings: bool = False
    """Freeze the token embeddings (a large share of a small model's parameters)."""
    freeze_layers: int = 0
    """Freeze the first N transformer layers (method 'freeze')."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling (alpha / r multiplies the adapter's output)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA adapters' input."""
    lora_targets: list[str] = field(default_factory=list)
    """Module names to adapt (empty: the attention projections the model has)."""
    dropout: float | None = None
    """Override hidden and attention dropout (None: the model's own)."""
    trust_remote_code: bool = False
    """Run code shipped with a hub model. Off unless the user turns it on knowingly."""
    num_virtual_tokens: int = 20
    """Prefix / prompt tuning: how many learned virtual tokens."""
    teacher_run: str | None = None
    """Knowledge distillation: id of a finished run whose model teaches this one (None: no distillation)."""
    student_layers: int = 0
    """Keep only the first N transformer layers of the source model (a smaller student; 0: keep all)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: much less memory for long inputs, about 30% slower."""

    def __post_init__(self) -> None:
        _check(bool(self.source and str(self.source).strip()), "source", "error.config.source")
        _check(self.task in TASKS, "task", "error.config.one_of", choices=list(TASKS))
        _check(self.method in METHODS, "method", "error.config.one_of", choices=list(METHODS))
        _check(0 <= self.freeze_layers <= 100, "freeze_layers", "error.config.between", lo=0, hi=100)
        _check(1 <= self.lora_r <= 512, "lora_r", "error.config.between", lo=1, hi=512)
        _check(self.lora_alpha > 0, "lora_alpha", "error.config.positive")
        _check(0.0 <= self.lora_dropout < 1.0, "lora_dropout", "error.config.between", lo=0, hi=1)
        _check(self.dropout is None or 0.0 <= self.dropout < 1.0, "dropout", "error.config.between", lo=0, hi=1)
        _check(1 <= self.num_virtual_tokens <= 512, "num_virtual_tokens", "error.config.between", lo=1, hi=512)
        _check(self.student_layers >= 0, "student_layers", "error.config.zero_all_layers")
        _check(
            self.method not in ("prefix", "prompt") or self.task == "generation",
            "method",
            "error.config.virtual_generation",
        )
        _check(
            self.method != "qlora" or self.task == "generation",
            "method",
            "error.config.qlora_generation",
        )
        _check(
            not self.teacher_run or self.task == "classification",
            "teacher_run",
            "error.config.distill_classification",
        )


@dataclass
class TrainConfig:
    """Hyperparameters of the training loop."""

    learning_rate: float = 5e-5
    """Peak learning rate (after warmup)."""
    schedule: str = "linear"
    """Learning-rate schedule after warmup: linear, cosine, cosine_with_restarts, polynomial, constant."""
    warmup_steps: int = 0
    """Steps of linear warmup from 0 to the peak (takes precedence over warmup_ratio when > 0)."""
    warmup_ratio: float = 0.0
    """Warmup as a share of all optimizer steps."""
    optimizer: str = "adamw"
    """adamw, adam, sgd (with momentum) or adafactor."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 0.01
    """L2 regularisation (decoupled for AdamW); never applied to biases and LayerNorm weights."""
    l1_penalty: float = 0.0
    """L1 penalty on trainable weight matrices, added to the loss."""
    label_smoothing: float = 0.0
    """Label smoothing for classification (0: none)."""
    layerwise_lr_decay: float = 1.0
    """Multiply the learning rate by this per layer going down an encoder (1: off)."""
    batch_size: int = 16
    """Examples per forward pass."""
    grad_accum: int = 1
    """Forward passes per optimizer step (effective batch = batch_size x grad_accum)."""
    epochs: float = 1.0
    """Passes over the training data (fractions allowed)."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0: use epochs)."""
    time_budget_min: float = 0.0
    """Stop cleanly after this many minutes and keep the model (0: no limit); the learning-rate schedule is then
    fitted to the steps the time allows, so the run ends at a decayed rate."""
    max_length: int = 128
    """Longest input in tokens; longer texts are truncated (generation: block size)."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this value (0: no clipping)."""
    eval_every: int = 0
    """Evaluate on the validation split every N optimizer steps (0: 8 to 10 times per run, on a fixed subset
    of the validation split that keeps evaluation under a tenth of the time; the full split is scored at the end)."""
    log_every: int = 10
    """Write a metrics line every N optimizer steps."""
    save_every: int = 0
    """Save a checkpoint every N optimizer steps (0: at each evaluation when eval_every is set or early stopping
    is on, else about once per epoch)."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep on disk (the best one is always kept)."""
    early_stopping_patience: int = 0
    """Stop when the metric has not improved for this many evaluations (0: off)."""
    early_stopping_metric: str = "val_loss"
    """Validation metric watched by early stopping and 'best checkpoint' (val_loss, val_accuracy, val_f1...)."""
    seed: int = 42
    """Seed for weights, shuffling and dropout: the same seed gives the same losses."""
    precision: str = "auto"
    """auto (bf16 where the hardware supports it), fp32, bf16, fp16 (CUDA only)."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    num_threads: int = 0
    """CPU threads for torch (0: automatic: the engine times steps with all cores and with fewer, and keeps the faster)."""
    fast_path: bool = True
    """Use the engine's exact CPU speed-ups (same results, faster); off: stock PyTorch modules (WORKBENCH_FAST_PATH=0: off for every run)."""
    distill_alpha: float = 0.5
    """Distillation: weight of the teacher's softened probabilities in the loss (the rest is the labels)."""
    distill_temperature: float = 2.0
    """Distillation: temperature that softens teacher and student probabilities."""
    train_on_prompt: bool = False
    """Generation from prompt/response or chat data: learn the prompt too (off: the loss covers answers only)."""
    packing: bool = False
    """Generation from prompt/response or chat data: put several examples in each row (they never see each other)
    instead of padding rows grouped by length."""
    probe_texts: list[str] = field(default_factory=list)
    """Up to five inputs the model answers at every validation, logged live (probabilities or a continuation)."""
    tensorboard: bool = False
    """Also write TensorBoard event files in the run folder (view them with: tensorboard --logdir workspace/runs)."""

    def __post_init__(self) -> None:
        _check(0 < self.learning_rate <= 1.0, "learning_rate", "error.config.learning_rate")
        _check(self.schedule in SCHEDULES, "schedule", "error.config.one_of", choices=list(SCHEDULES))
        _check(self.warmup_steps >= 0, "warmup_steps", "error.config.at_least", lo=0)
        _check(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", "error.config.between", lo=0, hi=1)
        _check(self.optimizer in OPTIMIZERS, "optimizer", "error.config.one_of", choices=list(OPTIMIZERS))
        _check(0.0 <= self.momentum < 1.0, "momentum", "error.config.between", lo=0, hi=1)
        _check(0.0 <= self.weight_decay <= 1.0, "weight_decay", "error.config.between", lo=0, hi=1)
        _check(0.0 <= self.l1_penalty <= 1.0, "l1_penalty", "error.config.between", lo=0, hi=1)
        _check(0.0 <= self.label_smoothing < 1.0, "label_smoothing", "error.config.between", lo=0, hi=1)
        _check(0.0 < self.layerwise_lr_decay <= 1.0, "layerwise_lr_decay", "error.config.above_zero_at_most_one")
        _check(1 <= self.batch_size <= 4096, "batch_size", "error.config.between", lo=1, hi=4096)
        _check(1 <= self.grad_accum <= 1024, "grad_accum", "error.config.between", lo=1, hi=1024)
        _check(self.epochs > 0 or self.max_steps > 0, "epochs", "error.config.epochs")
        _check(self.max_steps >= 0, "max_steps", "error.config.at_least", lo=0)
        _check(self.time_budget_min >= 0, "time_budget_min", "error.config.at_least", lo=0)
        _check(8 <= self.max_length <= 8192, "max_length", "error.config.between_tokens", lo=8, hi=8192)
        _check(self.grad_clip >= 0, "grad_clip", "error.config.zero_off")
        _check(self.eval_every >= 0, "eval_every", "error.config.at_least", lo=0)
        _check(self.log_every >= 1, "log_every", "error.config.at_least", lo=1)
        _check(self.save_every >= 0, "save_every", "error.config.at_least", lo=0)
        _check(self.keep_checkpoints >= 1, "keep_checkpoints", "error.config.at_least", lo=1)
        _check(self.early_stopping_patience >= 0, "early_stopping_patience", "error.config.at_least", lo=0)
        _check(
            self.early_stopping_metric.startswith("val_"),
            "early_stopping_metric",
            "error.config.val_metric",
        )
        _check(self.precision in PRECISIONS, "precision", "error.config.one_of", choices=list(PRECISIONS))
        _check(self.device in DEVICES, "device", "error.config.one_of", choices=list(DEVICES))
        _check(self.num_threads >= 0, "num_threads", "error.config.zero_all_cores")
        _check(0.0 <= self.distill_alpha <= 1.0, "distill_alpha", "error.config.between", lo=0, hi=1)
        _check(0.5 <= self.distill_temperature <= 20.0, "distill_temperature", "error.config.between", lo=0.5, hi=20)
        from core.probes import check_probe_texts

        problems = check_probe_texts(self.probe_texts)
        _check(not problems, "probe_texts", problems[0] if problems else "")

    @property
    def metric_higher_is_better(self) -> bool:
        return not self.early_stopping_metric.endswith(("loss", "perplexity", "mse", "mae"))


@dataclass
class RunConfig:
    """Everything needed to reproduce a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""
    """A human name for the run (shown in lists)."""

    def __post_init__(self) -> None:
        # Accept plain dicts so from_dict and keyword construction share one path; anything else
        # (a number, a list from a hand-edited config.json) is refused here rather than failing later.
        for name, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), cls):
                setattr(self, name, _build(cls, getattr(self, name)))
        if self.model.task == "generation" and self.train.early_stopping_metric not in (
            "val_loss",
            "val_perplexity",
        ):
            _check(False, "early_stopping_metric", "error.config.generation_metric")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        if not isinstance(raw, dict):
            raise ConfigError("error.config.not_object")
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError("error.config.unknown_run", names=sorted(unknown))
        return cls(
            data=raw.get("data", {}),
            model=raw.get("model", {}),
            train=raw.get("train", {}),
            name=str(raw.get("name", "")),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("error.config.missing", path=path) from None
        except json.JSONDecodeError as err:
            raise ConfigError("error.config.bad_json", path=path, reason=err.msg, line=err.lineno) from None
        return cls.from_dict(raw)


def _build(cls: type, raw: dict[str, Any]) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError("error.config.section", section=cls.__name__)
    names = {f.name for f in dataclasses.fields(cls)}
    secrets = [k for k in raw if k.lower() in SECRET_KEYS]
    if secrets:
        raise ConfigError("error.config.secrets", names=secrets)
    unknown = set(raw) - names
    if unknown:
        raise ConfigError("error.config.unknown", names=sorted(unknown), section=cls.__name__, known=sorted(names))
    raw = _check_types(cls, raw)
    try:
        return cls(**raw)
    except TypeError as err:
        raise ConfigError(f"{cls.__name__}: {err}") from None


_KINDS = {"int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool,), "str": (str,)}
_KIND_WORDS = {  # message keys (core.i18n.resolve puts them in the reader's language)
    "int": "error.config.kind.int",
    "float": "error.config.kind.float",
    "bool": "error.config.kind.bool",
    "str": "error.config.kind.str",
    "list": "error.config.kind.list",
}


def _check_types(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    """A hand-edited config.json can hold "16" for 16; name the field instead of failing inside validation."""
    raw = dict(raw)
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value, parts = raw[f.name], [p.strip() for p in str(f.type).split("|")]
        if value is None and "None" in parts:
            continue
        kind = "list" if parts[0].startswith("list") else parts[0]
        accepted = (list, tuple) if kind == "list" else _KINDS.get(kind)
        if accepted is None:
            continue
        if kind == "int" and isinstance(value, float) and value.is_integer():
            value = raw[f.name] = int(value)  # 16.0 from JSON or a number widget means 16
        bad_bool = isinstance(value, bool) and kind in ("int", "float")  # True is an int to Python, not to a user
        if bad_bool or not isinstance(value, accepted):
            _check(False, f.name, "error.config.type", kind=_KIND_WORDS[kind], value=repr(value))
        if kind in ("int", "float"):
            raw[f.name] = int(value) if kind == "int" else float(value)  # numpy scalars would not go to JSON
    return raw


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Flat ``{"train.learning_rate": (a, b)}`` of the settings that differ between two config dicts."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        name = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict):
            out.update(config_diff(va, vb, name + "."))
        elif va != vb:
            out[name] = (va, vb)
    return out


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each dataclass field (shown as help in the CLI and the UI)."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = str(nxt.value.value).strip()
    return docs
