"""Public datasets by name (``datasets.load_dataset``) and folders saved with ``Dataset.save_to_disk``.

Either way the rows become one Parquet file staged like an upload, so the Data page, the data check and
training read it as they read any file. Offline, the user is told the hub cannot be reached (no traceback).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from core.errors import DataError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _offline_by_setting() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


def is_saved_dataset(path: Path) -> bool:
    """A folder written by Dataset.save_to_disk (state.json) or DatasetDict.save_to_disk (dataset_dict.json)."""
    return path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists())


def load_saved(path: Path, split: str | None = None) -> pd.DataFrame:
    """The rows of a save_to_disk folder; a DatasetDict needs a split (train by default)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as err:
        raise DataError("error.hub.unreadable", name=path.name, reason=str(err)[:200]) from None
    if isinstance(loaded, datasets.DatasetDict):
        split = split or ("train" if "train" in loaded else next(iter(loaded)))
        if split not in loaded:
            raise DataError(
                "error.hub.no_split", hint="error.hint.splits", name=path.name, split=split, splits=", ".join(loaded)
            )
        loaded = loaded[split]
    return to_frame(loaded)


def to_frame(ds) -> pd.DataFrame:
    """A flat frame: nested fields flattened, class ids replaced by their names (the labels people read)."""
    import datasets

    ds = ds.flatten()
    frame = ds.to_pandas()
    for name, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            frame[name] = [feature.int2str(int(i)) if i is not None and i >= 0 else None for i in frame[name]]
    return frame


def load_public(name: str, config: str | None = None, split: str = "train") -> pd.DataFrame:
    """Load a dataset from the Hugging Face hub by name; a clear DataError when it cannot be reached or found."""
    import datasets

    from core.inference import hub_reachable

    name = (name or "").strip()
    if not name:
        raise DataError("error.hub.no_name")
    local = Path(name).expanduser()
    if is_saved_dataset(local):
        return load_saved(local, split or None)
    if local.exists():
        raise DataError("error.hub.not_saved", hint="error.hint.save_to_disk", name=local.name)
    if _offline_by_setting() or not hub_reachable():
        raise DataError(
            "error.hub.offline",
            hint="error.hint.download_elsewhere",
            name=name,
        )
    try:
        ds = datasets.load_dataset(name, config or None, split=split or "train")
    except datasets.exceptions.DatasetNotFoundError:
        raise DataError("error.hub.not_found", hint="error.hint.spelling", name=name) from None
    except (ValueError, KeyError) as err:  # a wrong config or split name
        raise DataError("error.hub.load_failed", name=name, reason=str(err).splitlines()[0][:300]) from None
    except (ConnectionError, OSError) as err:
        raise DataError(
            "error.hub.download_failed", hint="error.hint.try_again", name=name, reason=str(err).splitlines()[0][:300]
        ) from None
    return to_frame(ds)


def stage_public(name: str, config: str | None = None, split: str = "train", root: Path | None = None) -> Path:
    """Load a public or saved dataset and stage it as a Parquet file where the Data page reads uploads."""
    from core.datasets import safe_name, stage_upload

    frame = load_public(name, config, split)
    if frame.empty:
        raise DataError("error.hub.no_rows", name=name, split=split)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    label = "-".join(p for p in (Path(name).name, config, split) if p)
    return stage_upload(f"{safe_name(label)}.parquet", buffer.getvalue(), root)
