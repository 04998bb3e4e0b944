"""Checks that a run can start, made before its run folder exists.

A model that cannot be found or data that cannot be read would otherwise create a run folder whose only
content is 'failed'. These checks read the data (as the run would, without augmenting it) and look the model
source up without loading any weights, so the Train page and ``python -m core train`` refuse such a config at
once, with the same message the run would have ended with, and the workspace stays as it was.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from core.config import DataConfig, ModelConfig, RunConfig


def preflight(config: RunConfig, runs_root: Path | None = None) -> None:
    """Raise a WorkbenchError (what is wrong and what to do) if ``config`` cannot start; return quietly if it can."""
    check_model_source(config.model, runs_root)
    check_data(config.data, config.model.task)


def check_model_source(model: ModelConfig, runs_root: Path | None = None) -> None:
    """The source resolves: the built-in default, a local model folder, a run with a model, or a cached hub id."""
    from core import models

    models.check_remote_code(model.trust_remote_code)
    if model.teacher_run and runs_root is not None:
        from core.distill import teacher_run_of

        teacher_run_of(model.teacher_run, Path(runs_root))
    if model.source == "default":
        if model.task != "generation":
            models.minilm_path()  # the built-in classifier ships as a package: is it installed?
        return
    path, is_local = models.resolve_source(model.source, runs_root)
    if is_local:
        models._check_local_folder(path)
    elif os.environ.get("HF_HUB_OFFLINE") == "1" and not _cached_on_disk(path):
        raise models.offline_error(model.source)


def _cached_on_disk(repo_id: str) -> bool:
    """Whether the hub cache holds this model's config (a model repository or a LoRA adapter repository)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = [try_to_load_from_cache(repo_id, name) for name in ("config.json", "adapter_config.json")]
    except ValueError:  # not a valid repository id (spaces, two slashes...): it cannot be in the cache either
        return False
    return any(isinstance(hit, str) for hit in found)


def check_data(data: DataConfig, task: str) -> None:
    """Everything the run's data preparation would refuse: read, columns, labels, split, extra files.

    Augmentation is left out: it only adds rows to the training split and cannot fail on the data.
    """
    from core.data import prepare_data

    prepare_data(dataclasses.replace(data, augment_multiplier=0), task)
