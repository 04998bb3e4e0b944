"""What the Runs page hands out: the model as a zip, the exact command lines, a merged LoRA model."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import uuid
import zipfile
from pathlib import Path

# Weights are already dense binary: compressing them costs seconds and saves little.
_STORED = (".safetensors", ".bin", ".pt", ".pth", ".model")


def zip_folder(folder: Path) -> bytes:
    """An in-memory zip of a model folder, paths relative to it (what from_pretrained expects after unzipping)."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                method = zipfile.ZIP_STORED if path.suffix in _STORED else zipfile.ZIP_DEFLATED
                archive.write(path, path.relative_to(folder).as_posix(), compress_type=method)
    return buffer.getvalue()


def train_command(config_path: Path) -> str:
    """The CLI line that repeats a run exactly (the same code path as the UI)."""
    return f"python -m core train --config {shlex.quote(str(config_path))}"


def multi_gpu_command(config_path: Path, gpus: int = 2) -> str:
    return (
        f"accelerate launch --multi_gpu --num_processes {max(int(gpus), 2)} -m core train "
        f"--config {shlex.quote(str(config_path))}"
    )


def merge_run_adapter(run) -> Path:
    """Merge a LoRA run's adapter into its base model under <run>/merged (a plain model pipeline() loads)."""
    from core.errors import ModelError
    from core.models import merge_adapter

    if not (run.model_dir / "adapter_config.json").exists():
        raise ModelError(f"Run '{run.id}' has no LoRA adapter to merge.", hint="Only LoRA runs need merging.")
    out = run.dir / "merged"
    tmp = run.dir / f".merged-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        merge_adapter(run.model_dir, tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
