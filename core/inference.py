"""What the pages need to know about a model before and after training, without training anything.

``outline_model`` answers "can this source be loaded, how many layers, which modules can LoRA adapt" from
the model's config alone (weights are built on the meta device, so it costs milliseconds, not a download).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.defaults import recommended_lora
from core.errors import TASKS, ModelError, WorkbenchError


@dataclass
class ModelOutline:
    """The shape of a model source, read from its config."""

    source: str
    task: str
    description: str
    layers: int
    lora_candidates: list[str]
    lora_default: list[str]
    max_positions: int
    parameters: int
    lora_rank: int = 8
    lora_alpha: int = 16


def outline_model(source: str, task: str, *, runs_root: Path | None = None, trust_remote_code: bool = False):
    """Check that ``source`` can be loaded for ``task`` and describe it; a clear ModelError when it cannot."""
    import torch

    from core import models
    from core.hf import load_transformers

    transformers = load_transformers()

    models.check_remote_code(trust_remote_code)
    models.quiet_transformers()
    source = str(source or "").strip() or "default"
    if source == "default":
        if task == "generation":
            tiny = models.TINY_GPT2
            config = transformers.GPT2Config(
                vocab_size=tiny["vocab_size"], n_embd=tiny["n_embd"], n_layer=tiny["n_layer"], n_head=tiny["n_head"]
            )
        else:
            config = transformers.AutoConfig.from_pretrained(models.minilm_path())
        description = models.OFFLINE_DEFAULTS[task]
    else:
        path, is_local = models.resolve_source(source, runs_root)
        if is_local:
            models._check_local_folder(path)
            adapter = Path(path) / "adapter_config.json"
            if adapter.exists():  # a LoRA run: its shape is its base model's
                path = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path", path)
                path = models.local_model_path(path)
        kwargs = {"trust_remote_code": trust_remote_code}
        if not is_local:
            # Without a network the hub client retries for about half a minute; ask the cache only.
            kwargs["local_files_only"] = os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable()
        try:
            config = transformers.AutoConfig.from_pretrained(path, **kwargs)
        except (OSError, ValueError) as err:
            if is_local:
                raise ModelError(
                    "error.model.read_failed", source=source, reason=str(err).splitlines()[0][:300]
                ) from None
            raise models.offline_error(source) from None
        description = source
    auto = (
        transformers.AutoModelForCausalLM if task == "generation" else transformers.AutoModelForSequenceClassification
    )
    try:
        with torch.device("meta"):
            model = auto.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError) as err:
        raise ModelError(
            "error.model.wrong_task",
            hint="error.hint.model_for_task",
            source=source,
            task=TASKS.get(task, task),
            reason=str(err).splitlines()[0][:200],
        ) from None
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None) or 0
    limits = [int(x) for n in ("max_position_embeddings", "n_positions") if isinstance(x := getattr(config, n, 0), int)]
    candidates = models.lora_target_candidates(model)
    lora = recommended_lora(task, source, candidates)  # LoRA's rank and layers where this model wants others
    return ModelOutline(
        source=source,
        task=task,
        description=description,
        layers=int(layers),
        lora_candidates=candidates,
        lora_default=lora.get("lora_targets") or models.default_lora_targets(model),
        lora_rank=lora.get("lora_r", 8),
        lora_alpha=lora.get("lora_alpha", 16),
        # The generation default is built with as many positions as the run's max length asks for.
        max_positions=8192 if source == "default" and task == "generation" else max([*limits, 0]) or 512,
        parameters=sum(p.numel() for p in model.parameters()),
    )


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether huggingface.co answers on its HTTPS port within ``timeout`` seconds."""
    import socket

    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def run_label_names(run) -> list[str] | None:
    path = run.data_dir / "labels.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("label_names")


def load_base_model(run, device: str = "cpu"):
    """The model a run started from (untrained head or, for the generation default, untrained weights),
    with the run's labels: the 'before' side of a before/after comparison."""
    import pandas as pd

    from core import models

    cfg = run.config()
    task = cfg.model.task
    texts = None
    if task == "generation" and cfg.model.source == "default":
        train = run.data_dir / "train.parquet"
        texts = pd.read_parquet(train)["text"].astype(str).tolist() if train.exists() else None
    bundle = models.build_model(
        cfg.model.source,
        task,
        label_names=run_label_names(run),
        train_texts=texts,
        max_length=cfg.train.max_length,
        seed=cfg.train.seed,
        runs_root=run.dir.parent,
    )
    bundle.model.to(device).eval()
    bundle.description = f"Base model before fine-tuning ({bundle.description})"
    return bundle


# Literal keys (the catalog test finds them in the code): how a run was fine-tuned, in words.
METHOD_WORDS = {
    "full": "describe.method.full",
    "freeze": "describe.method.freeze",
    "lora": "describe.method.lora",
    "prefix": "describe.method.prefix",
    "prompt": "describe.method.prompt",
}
WHAT_WORDS = {
    "classification": "describe.what.classification",
    "regression": "describe.what.regression",
    "generation": "describe.what.generation",
}


def describe_run_model(run, base: bool = False, lang: str | None = None) -> str:
    """One sentence a person reads above the Playground: what the model does, where it came from, which run.

    ``base``: describe the model the run started from (the 'before' side) instead of the trained one. ``lang``: the
    reader's language (default: the environment's, as on the command line).
    """
    import time

    from core import models
    from core.i18n import t

    cfg = run.config()
    task, source = cfg.model.task, cfg.model.source
    meta = models.read_meta(run.model_dir)
    labels = meta.get("label_names") or run_label_names(run) or []
    scratch = source == "default" and task == "generation"
    if base:
        start = t("describe.base.scratch", lang) if scratch else _origin(source, run, lang)
        head = (
            t("describe.base.head", lang, labels=_labels(labels, lang)) if task == "classification" and labels else ""
        )
        return t("describe.base", lang, start=start, head=head)
    if task == "classification" and labels:
        what = t("describe.what.classifier_of", lang, labels=_labels(labels, lang))
    else:
        what = t(WHAT_WORDS[task], lang)
    if scratch:
        how = t("describe.how.scratch", lang)
    else:
        method = t(METHOD_WORDS[cfg.model.method], lang) if cfg.model.method in METHOD_WORDS else cfg.model.method
        how = t("describe.how.tuned", lang, origin=_origin(source, run, lang), method=method)
    if cfg.model.teacher_run:
        how += t("describe.how.distilled", lang, teacher=cfg.model.teacher_run)
    status = run.status()
    when = status.get("finished_at") or (run.model_dir / models.META_FILE).stat().st_mtime
    name = t("describe.quoted", lang, name=cfg.name) if cfg.name else t("describe.run_id", lang, run=run.id)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
    return t("describe.sentence", lang, what=what, how=how, name=name, when=stamp)


def _origin(source: str, run, lang: str | None = None) -> str:
    """The model a run started from, in words: the built-in one, another run, a folder or a hub id."""
    from core import models
    from core.i18n import t

    if source == "default":
        return t("describe.origin.default", lang, model=models.DEFAULT_CLASSIFIER.split(" (")[0])
    if (run.dir.parent / source / "model").is_dir():
        return t("describe.origin.run", lang, run=source)
    if Path(source).expanduser().is_absolute() or source.startswith("."):
        return t("describe.origin.folder", lang, folder=Path(source).name)
    return t("describe.origin.hub", lang, model=source)


def _labels(labels: list[str], lang: str | None = None, shown: int = 5) -> str:
    from core.i18n import t

    quoted = t("describe.list_separator", lang).join(t("describe.quoted", lang, name=name) for name in labels[:shown])
    more = t("describe.more", lang, n=len(labels) - shown) if len(labels) > shown else ""
    return t("describe.labels", lang, n=len(labels), names=quoted, more=more)


def model_outline(source: str, task: str, runs_root=None, trust_remote_code: bool = False):
    """The model's outline (from its config, on the meta device: milliseconds) or None if it cannot be read;
    a model that cannot be loaded is reported later, by the pre-flight check, with its own message."""
    try:
        return outline_model(source, task, runs_root=runs_root, trust_remote_code=trust_remote_code)
    except (WorkbenchError, OSError, ValueError):
        return None
