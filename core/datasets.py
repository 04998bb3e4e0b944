"""Saved datasets: a data file plus the choices made on the Data page, kept under workspace/datasets/<name>/.

The folder name comes from what the user typed or uploaded, so it is sanitized (no path separators, no
leading dots, a short safe alphabet) and a new dataset never replaces an existing one: a suffix is added.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import TASKS, DataConfig
from core.errors import DataError
from core.runs import atomic_write_text, default_workspace

INFO_FILE = "dataset.json"
STAGING = ".staging"
# A staged upload nobody touched for this long was abandoned (the page re-stages the file it shows on every
# rerun, which refreshes its time, so a page left open keeps its file).
STAGING_GRACE_S = 3600.0
_MAX_NAME = 60
_MAX_SHOWN_NAME = 120
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# Letters and digits of any script (a Chinese user names a dataset 评论样例), "_", "." and "-": no separators,
# spaces, control, bidi or format characters.
_UNSAFE = re.compile(r"[^\w.-]+")
# Device names Windows refuses as file names; harmless elsewhere, but a shared workspace may move.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_name(raw: str, fallback: str = "dataset") -> str:
    """A folder/file name that cannot escape its parent: last path part only, safe characters, no leading dot."""
    text = unicodedata.normalize("NFC", str(raw or "")).replace("\\", "/").split("/")[-1]
    text = _UNSAFE.sub("-", text.strip())
    text = re.sub(r"-{2,}", "-", text).strip("-. ")[:_MAX_NAME].strip("-. ")
    if not text or text.split(".")[0].lower() in _RESERVED:
        text = f"{fallback}-{text}" if text else fallback
    return text


def display_name(raw: str) -> str:
    """An upload's original name as stored and shown: last path part, no control or bidi characters, at most
    120 characters. It stays text (pages escape it); this keeps a name from carrying paths or line breaks."""
    text = unicodedata.normalize("NFC", str(raw or "")).replace("\\", "/").split("/")[-1]
    return " ".join(CONTROL_CHARS.sub(" ", text).split())[:_MAX_SHOWN_NAME]


def _file_name(raw: str) -> str:
    """A safe file name that keeps the extension read_table needs to know the format."""
    from core.data import EXTENSIONS

    base = str(raw or "").replace("\\", "/").split("/")[-1]
    suffix = Path(base).suffix.lower()
    if suffix not in EXTENSIONS:
        raise DataError("error.dataset.file_type", hint="error.hint.formats", name=base)
    return safe_name(Path(base).stem, fallback="data") + suffix


def stage_upload(file_name: str, content: bytes, root: Path | None = None) -> Path:
    """Write an upload where read_table can open it; named by content hash, so the same upload is staged once."""
    import hashlib

    folder = (Path(root) if root is not None else default_workspace() / "datasets") / STAGING
    folder.mkdir(parents=True, exist_ok=True)
    clean_staging(folder.parent)
    digest = hashlib.sha1(content).hexdigest()[:12]
    # The hash goes in the folder, not the file name: read errors name the file, and the user should see
    # "reviews.csv is empty", not "da39a3ee5e6b-reviews.csv is empty".
    target = folder / digest / _file_name(file_name)
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")  # two sessions may stage at once
        tmp.write_bytes(content)
        tmp.replace(target)
    else:
        os.utime(target.parent)  # still in use: the grace period starts again
    return target


def discard_staged(path: str | Path, root: Path | None = None) -> bool:
    """Delete one staged upload (its hash folder); anything outside the staging folder is left alone."""
    staging = ((Path(root) if root is not None else default_workspace() / "datasets") / STAGING).resolve()
    folder = Path(path).resolve().parent
    if folder.parent != staging:
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def clean_staging(root: Path | None = None, grace_s: float = STAGING_GRACE_S) -> int:
    """Delete staged uploads untouched for ``grace_s`` seconds (abandoned pages, deleted datasets)."""
    staging = (Path(root) if root is not None else default_workspace() / "datasets") / STAGING
    if not staging.is_dir():
        return 0
    cutoff = time.time() - grace_s
    removed = 0
    for folder in staging.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder) if folder.is_dir() else folder.unlink()
                removed += 1
        except OSError:
            continue  # another session removed or re-staged it meanwhile
    return removed


@dataclass
class DatasetSettings:
    """What the Data page decided about a file: task, columns, split and augmentation."""

    task: str = "classification"
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    instruction_column: str | None = None
    system_column: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    stratify: bool = True
    split_seed: int = 42
    augment_ops: list[str] = field(default_factory=list)
    augment_multiplier: int = 0
    class_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(
                "error.dataset.unknown_task", hint="error.hint.choose_one_of", task=self.task, choices=", ".join(TASKS)
            )


@dataclass
class Dataset:
    """One saved dataset folder; the files it names live inside it."""

    dir: Path
    name: str
    file: str
    settings: DatasetSettings
    validation_file: str | None = None
    test_file: str | None = None
    original_name: str = ""
    rows: int | None = None
    created_at: float = 0.0
    parent: str | None = None
    """The dataset this one is a reviewed version of (None: an original upload)."""
    version: int = 1

    @property
    def path(self) -> Path:
        return self.dir / self.file

    def data_config(self, **overrides: Any) -> DataConfig:
        """The run's DataConfig: absolute paths, so a run still finds its data from any working directory."""
        values = dataclasses.asdict(self.settings)
        task = values.pop("task")
        values.update(
            train_path=str(self.path.resolve()),
            validation_path=str((self.dir / self.validation_file).resolve()) if self.validation_file else None,
            test_path=str((self.dir / self.test_file).resolve()) if self.test_file else None,
        )
        if task == "generation":
            values["label_column"] = None
        values.update(overrides)
        return DataConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "validation_file": self.validation_file,
            "test_file": self.test_file,
            "original_name": self.original_name,
            "rows": self.rows,
            "created_at": self.created_at,
            "settings": dataclasses.asdict(self.settings),
            "parent": self.parent,
            "version": self.version,
        }


Source = bytes | str | Path
"""File content (bytes, e.g. an upload) or a path to copy from."""


class DatasetStore:
    """Datasets under one folder: save (never overwriting), list, get, delete."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_workspace() / "datasets"
        self.root.mkdir(parents=True, exist_ok=True)

    def save(
        self,
        name: str,
        source: Source,
        file_name: str,
        settings: DatasetSettings,
        *,
        validation: tuple[str, Source] | None = None,
        test: tuple[str, Source] | None = None,
        rows: int | None = None,
        max_mb: float = 200.0,
    ) -> Dataset:
        """Store the file(s) and settings under a fresh folder named after ``name`` (suffixed if taken)."""
        folder = self._new_folder(safe_name(name or Path(str(file_name)).stem))
        try:
            main = _write(folder, "train", file_name, source, max_mb)
            val = _write(folder, "validation", validation[0], validation[1], max_mb) if validation else None
            tst = _write(folder, "test", test[0], test[1], max_mb) if test else None
            dataset = Dataset(folder, folder.name, main, settings, val, tst, display_name(file_name), rows, time.time())
            atomic_write_text(folder / INFO_FILE, json.dumps(dataset.to_dict(), indent=2))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        # The dataset holds its own copies now: the staged uploads it came from are not needed any more.
        for src in (source, validation and validation[1], test and test[1]):
            if isinstance(src, (str, Path)):
                discard_staged(src, self.root)
        return dataset

    def _new_folder(self, base: str) -> Path:
        # mkdir(exist_ok=False) is the lock: two saves with one name get two folders, never one shared.
        for n in range(1, 10_000):
            candidate = self.root / (base if n == 1 else f"{base}-{n}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
        raise DataError("error.dataset.too_many", hint="error.hint.other_name", name=base)

    def list(self) -> list[Dataset]:
        found = []
        for folder in self.root.iterdir():
            if folder.is_dir() and (folder / INFO_FILE).exists():
                try:
                    found.append(self._load(folder))
                except DataError:
                    continue  # a damaged folder is skipped, not fatal for the list
        return sorted(found, key=lambda d: d.created_at, reverse=True)

    def names(self) -> list[str]:
        return [d.name for d in self.list()]

    def get(self, name: str) -> Dataset:
        folder = self.root / safe_name(name)
        if safe_name(name) != name or not (folder / INFO_FILE).exists():
            raise DataError("error.dataset.missing", hint="error.hint.save_dataset", name=name)
        return self._load(folder)

    def find(self, name: str) -> Dataset | None:
        try:
            return self.get(name)
        except DataError:
            return None

    def delete(self, name: str) -> None:
        shutil.rmtree(self.get(name).dir)
        clean_staging(self.root)

    def _load(self, folder: Path) -> Dataset:
        try:
            raw = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
            settings = DatasetSettings(**raw.get("settings", {}))
            files = [raw["file"], raw.get("validation_file"), raw.get("test_file")]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(
                "error.dataset.damaged", hint="error.hint.delete_save", name=folder.name, reason=err
            ) from None
        # The info file is data from disk: a hand-edited one must not point outside its folder.
        for f in files:
            # Safe alphabet and no leading dot, without safe_name's length cap (a long upload name plus the
            # "validation-" prefix is longer than 60 characters and was saved that way).
            if f is not None and (Path(f).name != f or f.startswith(".") or _UNSAFE.search(f)):
                raise DataError("error.dataset.unsafe_file", hint="error.hint.save_again", name=folder.name, file=f)
        return Dataset(
            folder,
            folder.name,
            files[0],
            settings,
            files[1],
            files[2],
            display_name(raw.get("original_name", "")),  # saved before names were cleaned, or hand-edited
            raw.get("rows"),
            float(raw.get("created_at", 0.0)),
            raw.get("parent") if isinstance(raw.get("parent"), str) else None,
            int(raw.get("version") or 1),
        )

    # ------------------------------------------------------------------------------------------- versions
    def save_version(self, base: Dataset, frame, note: str = "") -> Dataset:
        """Save ``frame`` (the base's main file after a review) as a new dataset; the base is left as it was.

        The new folder is named after the base with the next version number (``reviews-v2``); it keeps the
        base's settings and separate validation / test files, and records which dataset it came from.
        """
        import io

        if len(frame) == 0:
            raise DataError("error.dataset.reviewed_empty", hint="error.hint.keep_rows")
        version = base.version + 1
        family = re.sub(r"-v\d+$", "", base.name) if base.parent else base.name
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)  # keeps the columns' types (a CSV would re-guess them)
        extra = {
            role: (name.removeprefix(f"{role}-"), base.dir / name)
            for role, name in (("validation", base.validation_file), ("test", base.test_file))
            if name
        }
        dataset = self.save(
            f"{family}-v{version}",
            buffer.getvalue(),
            Path(base.file).stem + ".parquet",
            base.settings,
            rows=len(frame),
            **extra,
        )
        dataset.parent, dataset.version, dataset.original_name = base.name, version, note or base.original_name
        atomic_write_text(dataset.dir / INFO_FILE, json.dumps(dataset.to_dict(), indent=2))
        return dataset


def _write(folder: Path, role: str, file_name: str, source: Source, max_mb: float) -> str:
    name = _file_name(file_name)
    if role != "train":
        name = f"{role}-{name}"
    target = folder / name
    if isinstance(source, bytes):
        size = len(source)
    else:
        src = Path(source)
        if not src.is_file():
            raise DataError("error.dataset.no_file", hint="error.hint.choose_again", name=src.name)
        size = src.stat().st_size
    if size > max_mb * 2**20:
        raise DataError(
            "error.dataset.too_large",
            hint="error.hint.smaller_sample",
            name=Path(str(file_name)).name,
            size=f"{size / 2**20:.0f}",
            limit=f"{max_mb:g}",
        )
    if size == 0:
        raise DataError("error.dataset.empty", hint="error.hint.need_data", name=Path(str(file_name)).name)
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        shutil.copyfile(source, target)
    return name
