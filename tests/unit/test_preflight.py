"""A config that cannot start is refused before its run folder exists (core.preflight, used by the Train page and
``python -m core train``), and the server-wide switch for code shipped with models.

The bad-input corpus of test_bad_inputs.py is driven through the command line here: the same message as the
failed run would have had, exit code 2, and an empty runs folder.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.config import RunConfig
from core.errors import DataError, ModelError
from core.preflight import check_model_source, preflight
from core.runs import RunStore
from tests.unit.test_bad_inputs import ROWS, UNREADABLE, csv_text, told, write


def cli_train(workspace: Path, data: Path, source: Path | str, *extra: str) -> tuple[int, str]:
    """``python -m core train`` in-process; returns (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["--workspace", str(workspace), "train", "--data", str(data), "--model", str(source),
                     "--max-steps", "1", "--quiet", *extra])  # fmt: skip
    return code, err.getvalue()


def runs_in(workspace: Path) -> list[str]:
    root = workspace / "runs"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def config(data: Path | str, source: Path | str = "default", **model) -> RunConfig:
    return RunConfig.from_dict({"data": {"train_path": str(data)}, "model": {"source": str(source), **model}})


def refused_everywhere(workspace: Path, data: Path, source, error: type, problem, action) -> None:
    """The check and the command line give the same message, and the runs folder stays empty."""
    with pytest.raises(error) as err:
        preflight(config(data, source), workspace / "runs")
    told(str(err.value), problem, action)
    code, stderr = cli_train(workspace, data, source)
    assert code == 2
    told(stderr, problem, action)
    assert runs_in(workspace) == []


# ------------------------------------------------------------------------------------------------ data
@pytest.mark.parametrize(("name", "content", "problem", "action"), [c[1:] for c in UNREADABLE],
                         ids=[c[0] for c in UNREADABLE])  # fmt: skip
def test_unreadable_data_is_refused_before_any_run_folder(tmp_path, workspace, tiny_bert_dir, name, content, problem,
                                                          action):  # fmt: skip
    path = tmp_path / "nowhere.csv" if name is None else write(tmp_path, name, content)
    refused_everywhere(workspace, path, tiny_bert_dir, DataError, problem, action)


@pytest.mark.parametrize(
    ("rows", "data", "problem"),
    [
        ([("a great film", "positive"), ("an awful film", "negative")], {}, ("only 2 rows",)),
        (ROWS[:30] + [("a lone neutral film", "neutral")], {}, ("'neutral'", "only one row")),
        (ROWS, {"label_column": "stars"}, ("'stars'",)),
    ],
    ids=["too_few_rows", "stratified_class_of_one", "missing_label_column"],
)
def test_data_that_cannot_be_split_or_mapped_is_refused_too(tmp_path, workspace, rows, data, problem):
    path = write(tmp_path, "data.csv", csv_text(rows))
    cfg = RunConfig.from_dict({"data": {"train_path": str(path), **data}})
    with pytest.raises(DataError) as err:
        preflight(cfg, workspace / "runs")
    for word in problem:
        assert word.lower() in str(err.value).lower(), str(err.value)
    assert runs_in(workspace) == []


def test_augmentation_is_not_run_by_the_check(tmp_path, monkeypatch):
    import core.augment

    def fail(*_args, **_kwargs):
        raise AssertionError("the pre-flight check augmented the data")

    monkeypatch.setattr(core.augment, "augment_frame", fail)
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    cfg = RunConfig.from_dict({"data": {"train_path": str(path), "augment_ops": ["swap"], "augment_multiplier": 3}})
    preflight(cfg)  # no error: the data is fine and augmenting it is left to the run


# ------------------------------------------------------------------------------------------------ models
def _not_a_model(tmp_path: Path) -> Path:
    folder = tmp_path / "my-downloads"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a model", encoding="utf-8")
    return folder


def _no_tokenizer(tmp_path: Path, tiny_bert_dir: Path) -> Path:
    folder = tmp_path / "step-000010"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(tiny_bert_dir) / name, folder / name)
    return folder


MODEL_CASES = [
    ("hub_id_offline", lambda tmp, tiny: "no-such-org/no-such-model-xyz",
     ("no-such-org/no-such-model-xyz", "cannot be reached"), ("check the spelling",)),
    ("not_a_model_folder", lambda tmp, tiny: _not_a_model(tmp), ("not a model", "config.json"), ("save_pretrained",)),
    ("missing_folder", lambda tmp, tiny: tmp / "missing-model", ("does not exist",), ("check the path",)),
    ("file_not_folder", lambda tmp, tiny: Path(tiny) / "model.safetensors", ("is a file",), ("give the folder",)),
    ("no_tokenizer", _no_tokenizer, ("no tokenizer",), ("save the tokenizer",)),
]  # fmt: skip


@pytest.mark.parametrize(("make", "problem", "action"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_model_that_cannot_be_loaded_leaves_the_runs_folder_empty(tmp_path, workspace, tiny_bert_dir, make, problem,
                                                                  action):  # fmt: skip
    source = make(tmp_path, tiny_bert_dir)
    data = write(tmp_path, "ok.csv", csv_text(ROWS))
    refused_everywhere(workspace, data, source, ModelError, problem, action)


def test_run_id_without_a_model_and_a_missing_teacher(tmp_path, workspace, tiny_bert_dir):
    store = RunStore(workspace / "runs")
    store.create(config("x.csv"), run_id="unfinished")
    with pytest.raises(ModelError, match="has no saved model"):
        check_model_source(config("x.csv", "unfinished").model, store.root)
    with pytest.raises(ModelError, match="teacher run 'gone' does not exist"):
        check_model_source(config("x.csv", tiny_bert_dir, teacher_run="gone").model, store.root)
    assert runs_in(workspace) == ["unfinished"]


def test_sources_that_can_start_pass(tmp_path, workspace, tiny_bert_dir, monkeypatch):
    import huggingface_hub.constants

    data = write(tmp_path, "ok.csv", csv_text(ROWS))
    preflight(config(data), workspace / "runs")  # the built-in model
    preflight(config(data, tiny_bert_dir), workspace / "runs")  # a local model folder
    preflight(config(data, "default", task="generation"), workspace / "runs")  # the tiny GPT-2 built from scratch
    # A hub id is accepted offline once a copy is in the hub cache (the layout huggingface_hub writes).
    cache = tmp_path / "hub-cache"
    snapshot = cache / "models--some-org--cached-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}", encoding="utf-8")
    (cache / "models--some-org--cached-model" / "refs").mkdir()
    (cache / "models--some-org--cached-model" / "refs" / "main").write_text("abc123", encoding="utf-8")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    preflight(config(data, "some-org/cached-model"), workspace / "runs")
    with pytest.raises(ModelError, match="cannot be reached"):
        preflight(config(data, "some-org/not-cached"), workspace / "runs")
    assert runs_in(workspace) == []


# ------------------------------------------------------------------------------------------------ remote code switch
@pytest.mark.parametrize(("value", "allowed"), [(None, True), ("1", True), ("true", True), ("0", False),
                                                ("false", False), (" FALSE ", False), ("off", False), ("no", False)])  # fmt: skip
def test_remote_code_switch_values(monkeypatch, value, allowed):
    from core.models import REMOTE_CODE_ENV, remote_code_allowed

    if value is None:
        monkeypatch.delenv(REMOTE_CODE_ENV, raising=False)
    else:
        monkeypatch.setenv(REMOTE_CODE_ENV, value)
    assert remote_code_allowed() is allowed


def test_remote_code_switched_off_is_refused_by_every_entry_point(tmp_path, workspace, tiny_bert_dir, monkeypatch):
    from core.inference import outline_model
    from core.models import build_model

    monkeypatch.setenv("WORKBENCH_ALLOW_REMOTE_CODE", "0")
    data = write(tmp_path, "ok.csv", csv_text(ROWS))
    calls = [
        lambda: preflight(config(data, tiny_bert_dir, trust_remote_code=True), workspace / "runs"),
        lambda: outline_model(str(tiny_bert_dir), "classification", trust_remote_code=True),
        lambda: build_model(str(tiny_bert_dir), "classification", trust_remote_code=True),
    ]
    for call in calls:
        with pytest.raises(ModelError) as err:
            call()
        told(str(err.value), ("trust_remote_code", "turned off on this server"), ("untick",))
    code, stderr = cli_train(workspace, data, tiny_bert_dir, "--trust-remote-code")
    assert code == 2 and "turned off on this server" in stderr
    assert runs_in(workspace) == []
    # Without the box ticked the same model is fine, and with the switch on (the default) ticking it is allowed.
    preflight(config(data, tiny_bert_dir), workspace / "runs")
    monkeypatch.delenv("WORKBENCH_ALLOW_REMOTE_CODE")
    preflight(config(data, tiny_bert_dir, trust_remote_code=True), workspace / "runs")
