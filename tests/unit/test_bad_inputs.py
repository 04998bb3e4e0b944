"""The bad-input corpus: every way a user's file, settings or model can be wrong, driven through the real
entry points (``train`` into a run folder, ``prepare_data``, ``RunConfig``, ``load_for_inference``).

Each case asserts that the one message the user sees names the problem and says what to do, and that
nothing is left half-written in the workspace (no hidden temporary folders, no model or checkpoint in a
failed run, no data split of a run whose data could not be read).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from core.config import DataConfig, RunConfig, TrainConfig
from core.data import check_data, guess_columns, prepare_data, read_table
from core.errors import ConfigError, DataError, ModelError, WorkbenchError
from core.runs import RunStore
from core.training import train
from tests.conftest import toy_sentiment_rows

ROWS = toy_sentiment_rows(60, seed=3)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Two cores shared with other work: OpenMP spin-waiting with 2 threads made tiny steps 6x slower.
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------ helpers
def told(message: str, problem: tuple[str, ...], action: tuple[str, ...]) -> None:
    """The message names the problem (every word in ``problem``) and says what to do (any word in ``action``)."""
    low = message.lower()
    missing = [w for w in problem if w.lower() not in low]
    assert not missing, f"message does not name {missing}: {message!r}"
    assert any(w.lower() in low for w in action), f"message says nothing of {action}: {message!r}"
    assert "traceback" not in low and "keyerror" not in low, message


def nothing_half_written(workspace: Path) -> None:
    """No hidden temporary file or folder anywhere; a failed run holds no model, checkpoint or data split."""
    leftovers = [p for p in workspace.rglob("*") if p.name.startswith((".model-", ".old-")) or
                 (p.name.startswith(".") and ".tmp" in p.name)]  # fmt: skip
    assert not leftovers, leftovers
    store = RunStore(workspace / "runs")
    for run in store.list():
        if run.state == "failed":
            assert not run.model_dir.exists(), f"{run.id} failed but has a model folder"
            assert not run.checkpoints(), f"{run.id} failed before training but has checkpoints"


def start(workspace: Path, source: Path | str, data: dict, task: str = "classification", **train_settings):
    """Start a run the way the Train page does (config -> run folder -> train) and return (run, result)."""
    settings = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "max_length": 32, "precision": "fp32",
                "seed": 0, "num_threads": 1, "log_every": 1}  # fmt: skip
    settings.update(train_settings)
    config = RunConfig.from_dict({"data": data, "model": {"source": str(source), "task": task}, "train": settings})
    store = RunStore(workspace / "runs")
    run = store.create(config)
    result = train(config, run)
    return run, result


def failed_with(workspace: Path, source, data: dict, problem, action, task="classification", **settings) -> str:
    run, result = start(workspace, source, data, task, **settings)
    assert result.state == "failed", result
    status = run.status()
    assert status["state"] == "failed" and status["message"] == result.message
    told(result.message, problem, action)
    nothing_half_written(workspace)
    return result.message


def csv_text(rows: list[tuple[str, str]], header: str = "text,label", sep: str = ",") -> str:
    return "\n".join([header] + [f"{t}{sep}{y}" for t, y in rows]) + "\n"


def write(folder: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode(encoding))
    return path


# ------------------------------------------------------------------------------------------------ files a run cannot read
# (name, file name, content, problem words, action words)
UNREADABLE = [
    ("empty_file", "empty.csv", b"", ("empty",), ("choose a file",)),
    ("whitespace_only", "blank.csv", "\n  \n\t\n", ("empty",), ("choose a file",)),
    ("header_only", "header.csv", "text,label\n", ("header", "no data rows"), ("add rows",)),
    ("binary_renamed_csv", "data.csv", bytes(range(256)) * 8, ("not a text file", "binary"), ("export",)),
    ("xlsx_renamed_csv", "sheet.csv", b"PK\x03\x04" + b"\x00" * 200, ("excel",), ("save as",)),
    ("pdf_renamed_csv", "paper.csv", b"%PDF-1.7\n" + b"x" * 100, ("pdf",), ("copy the text",)),
    ("unknown_extension", "notes.docx", "text,label\na,b\n", ("extension", ".docx"), ("use csv",)),
    (
        "ragged_rows",
        "ragged.csv",
        "text,label\ngood film,pos\nbad, awful film,neg\nok film,pos\n",
        ("line 3", "3 fields"),
        ("double quotes",),
    ),
    (
        "unclosed_quote",
        "quote.csv",
        'text,label\n"good film,pos\nbad film,neg\n',
        ("quote", "never closed"),
        ("close the quote",),
    ),
    (
        "duplicate_column_names",
        "dup.csv",
        "text,text,label\na b c,d e f,pos\ng h i,j k l,neg\n",
        ("more than one column", "'text'"),
        ("rename",),
    ),
    ("json_not_records_string", "data.json", '"just one string"', ("a string", "not a list of records"), ("expected",)),
    ("json_list_of_numbers", "numbers.json", "[1, 2, 3]", ("item 1", "a number"), ("every item must",)),
    (
        "json_syntax_error",
        "broken.json",
        '[{"text": "a", "label": "b"},, ]',
        ("not valid json", "line 1"),
        ("fix the file",),
    ),
    (
        "jsonl_one_bad_line",
        "rows.jsonl",
        '{"text": "good film", "label": "pos"}\n{"text": "bad film", "label": "neg"}\n{"text": "oops", label: neg}\n'
        '{"text": "fine film", "label": "pos"}\n',
        ("line 3", "not valid json"),
        ("fix or delete",),
    ),
    (
        "jsonl_line_not_object",
        "rows2.jsonl",
        '{"text": "a film", "label": "pos"}\n["a", "list"]\n',
        ("line 2", "a list"),
        ("each line must",),
    ),
    ("parquet_not_parquet", "fake.parquet", "text,label\na,b\n", ("parquet",), ("save it again",)),
    ("missing_file", None, None, ("no file",), ("check the path", "upload")),
]


@pytest.mark.parametrize(("name", "content", "problem", "action"), [c[1:] for c in UNREADABLE],
                         ids=[c[0] for c in UNREADABLE])  # fmt: skip
def test_unreadable_file_fails_the_run_with_advice(tmp_path, workspace, tiny_bert_dir, name, content, problem, action):
    path = tmp_path / "nowhere.csv" if name is None else write(tmp_path, name, content)
    message = failed_with(workspace, tiny_bert_dir, {"train_path": str(path)}, problem, action)
    assert path.name in message or name is None


def test_parquet_with_nested_columns(tmp_path, workspace, tiny_bert_dir):
    path = tmp_path / "nested.parquet"
    pd.DataFrame({"text": ["a film", "b film"] * 5, "label": ["x", "y"] * 5,
                  "tags": [["a", "b"], ["c"]] * 5}).to_parquet(path)  # fmt: skip
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path)}, ("'tags'", "nested"), ("flatten",))


def test_file_larger_than_the_limit(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "big.csv", csv_text(ROWS * 20))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "max_file_mb": 0.01},
                ("big.csv", "larger than the limit"), ("use a sample", "raise the file size limit"))  # fmt: skip


# ------------------------------------------------------------------------------------------------ columns a run cannot use
def test_label_column_all_missing(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "nolabels.csv", "text,label\n" + "".join(f"{t},\n" for t, _ in ROWS))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "label_column": "label"},
                ("'label'",), ("choose", "pick"))  # fmt: skip


def test_label_column_with_some_nan_rows_are_left_out_and_said(tmp_path):
    lines = ["text,label"] + [f"{t},{'' if i % 5 == 0 else y}" for i, (t, y) in enumerate(ROWS)]
    path = write(tmp_path, "gaps.csv", "\n".join(lines) + "\n")
    prepared = prepare_data(DataConfig(train_path=str(path), val_fraction=0.0, test_fraction=0.0), "classification")
    assert len(prepared.train) == len(ROWS) - len(ROWS[::5])
    assert any("without a label were left out" in n for n in prepared.notes), prepared.notes
    assert prepared.label_names == ["negative", "positive"]


def test_label_column_with_one_class_only(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "oneclass.csv", csv_text([(t, "positive") for t, _ in ROWS]))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path)}, ("'positive'",),
                ("at least two classes", "add examples"))  # fmt: skip


def test_label_column_with_a_thousand_distinct_values(tmp_path, workspace, tiny_bert_dir):
    rows = [(f"sentence number {i} about films", f"id-{i}") for i in range(1000)]
    path = write(tmp_path, "ids.csv", csv_text(rows))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "label_column": "label"},
                ("1,000 distinct values",), ("choose regression", "another column"))  # fmt: skip


def test_numeric_text_column(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "numbers.csv", csv_text([(str(i * 7), y) for i, (_, y) in enumerate(ROWS)]))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "text_column": "text"},
                ("'text'", "numbers, not text"), ("choose the column",))  # fmt: skip


def test_text_column_of_empty_strings(tmp_path, workspace, tiny_bert_dir):
    path = tmp_path / "empty_texts.jsonl"
    path.write_text("".join(json.dumps({"text": "", "note": f"n{i}", "label": y}) + "\n" for i, (_, y) in
                            enumerate(ROWS)), encoding="utf-8")  # fmt: skip
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "text_column": "text"},
                ("'text'", "empty in every row"), ("choose the column",))  # fmt: skip


def test_regression_target_that_is_not_numeric(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "reg.csv", csv_text(ROWS))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "label_column": "label"},
                ("must hold numbers for regression",), ("pick a numeric column", "choose classification"),
                task="regression")  # fmt: skip


def test_sentence_pair_task_with_one_text_column(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "single.csv", csv_text(ROWS))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "text_column": "text",
                                           "text_pair_column": "sentence2"},
                ("no column 'sentence2'", "second text"), ("available columns",))  # fmt: skip


def test_sentence_pair_with_the_same_column_twice(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "same.csv", csv_text(ROWS))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "text_column": "text",
                                           "text_pair_column": "text"},
                ("same as the first",), ("pick another",))  # fmt: skip


def test_label_column_that_does_not_exist(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "label_column": "sentiment"},
                ("no column 'sentiment'",), ("available columns",))  # fmt: skip


def test_wrong_delimiter_leaves_one_column_and_says_so(tmp_path, workspace, tiny_bert_dir):
    # Colons are no delimiter we try, so the file reads as one column and there is no label to learn.
    path = write(tmp_path, "colon.csv", csv_text(ROWS, header="text:label", sep=":"))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path)}, ("no label column", "only one column"),
                ("separate them with commas",))  # fmt: skip


# ------------------------------------------------------------------------------------------------ files that read, with a note
def test_semicolon_delimited_csv_is_read_and_noted(tmp_path):
    path = write(tmp_path, "semi.csv", csv_text(ROWS, header="text;label", sep=";"))
    table = read_table(path)
    assert list(table.frame.columns) == ["text", "label"] and table.delimiter == ";"
    assert any("semicolons" in n for n in table.notes)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "latin-1", "utf-8-sig"])
def test_text_encodings_read_the_same_rows(tmp_path, encoding):
    rows = [('"très bon café, déjà vu"', "positive"), ("naïve but dull", "negative")] * 10
    path = write(tmp_path, f"enc-{encoding}.csv", csv_text(rows), encoding=encoding)
    table = read_table(path)
    # A BOM must not stick to the first column name, and accents must survive.
    assert list(table.frame.columns) == ["text", "label"]
    assert table.frame["text"].iloc[0] == "très bon café, déjà vu"
    if encoding in ("latin-1", "utf-16-le"):
        assert any("not UTF-8" in n or "UTF-16" in n for n in table.notes), table.notes


def test_extremely_long_texts_are_flagged_and_still_train(tmp_path, workspace, tiny_bert_dir):
    long_rows = [("great " * 20_000, "positive"), ("awful " * 20_000, "negative")]  # 120k characters each
    path = write(tmp_path, "long.csv", csv_text(ROWS + long_rows))
    table = read_table(path)
    report = check_data(table.frame, guess_columns(table.frame, "classification"), "classification")
    very_long = [f for f in report.findings if f.title == "Very long texts"]
    assert very_long and "2 texts" in very_long[0].detail and "split them" in very_long[0].detail.lower()
    run, result = start(workspace, tiny_bert_dir, {"train_path": str(path)}, max_steps=2)
    assert result.state == "finished", result.message
    nothing_half_written(workspace)


# ------------------------------------------------------------------------------------------------ splits
def test_split_fractions_that_leave_nothing_for_training():
    with pytest.raises(ConfigError) as err:
        DataConfig(train_path="x.csv", val_fraction=0.5, test_fraction=0.45)
    told(str(err.value), ("val_fraction", "10%"), ("must leave",))


def test_split_fraction_out_of_range():
    with pytest.raises(ConfigError) as err:
        DataConfig(train_path="x.csv", val_fraction=1.5)
    told(str(err.value), ("val_fraction",), ("between 0 and 1",))


def test_too_few_rows_for_every_split(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "two.csv", csv_text([("good film", "positive"), ("bad film", "negative")]))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path), "stratify": False, "val_fraction": 0.3,
                                           "test_fraction": 0.3},
                ("only 2 rows",), ("add rows", "lower the validation"))  # fmt: skip


def test_stratified_split_with_a_class_of_one_row(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "lonely.csv", csv_text(ROWS + [("an odd neutral film", "neutral")]))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path)}, ("'neutral'", "only one row"),
                ("add rows", "random (non-stratified) split"))  # fmt: skip


def test_no_validation_split_still_trains(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "all.csv", csv_text(ROWS))
    run, result = start(workspace, tiny_bert_dir, {"train_path": str(path), "val_fraction": 0.0,
                                                   "test_fraction": 0.0}, max_steps=3)  # fmt: skip
    assert result.state == "finished", result.message
    assert run.has_model()
    nothing_half_written(workspace)


# ------------------------------------------------------------------------------------------------ hyperparameters
@pytest.mark.parametrize(
    ("field", "value", "action"),
    [
        ("learning_rate", -1e-3, "try 5e-5"),
        ("learning_rate", 0.0, "try 5e-5"),
        ("batch_size", 0, "between 1 and"),
        ("max_length", 4, "between 8 and"),
        ("warmup_ratio", 1.5, "between 0 and 1"),
        ("epochs", 0, "set max_steps"),
    ],
)
def test_hyperparameter_out_of_range_is_refused_before_any_run(workspace, field, value, action):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"train": {field: value}})
    told(str(err.value), (f"'{field}'",), (action,))
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_max_length_above_the_models_limit(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path)}, ("512", "limit of 128"),
                ("set max length to 128",), max_length=512)  # fmt: skip


def test_warmup_longer_than_training(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    failed_with(workspace, tiny_bert_dir, {"train_path": str(path)}, ("warmup", "100 steps"),
                ("lower warmup", "train longer"), warmup_steps=100)  # fmt: skip


def test_unknown_setting_name_is_named():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"train": {"learnin_rate": 1e-4}})
    told(str(err.value), ("learnin_rate",), ("known:",))


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("train", "batch_size", "16"),
        ("train", "learning_rate", True),
        ("train", "epochs", [1]),
        ("model", "lora_targets", "query"),
    ],
)
def test_wrong_type_in_a_hand_edited_config_names_the_field(section, field, value):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({section: {field: value}})
    told(str(err.value), (f"'{field}'", repr(value)), ("must be",))


def test_whole_number_given_as_float_is_accepted():
    assert RunConfig.from_dict({"train": {"batch_size": 8.0}}).train.batch_size == 8
    assert isinstance(TrainConfig().batch_size, int)


# ------------------------------------------------------------------------------------------------ models
def test_model_id_that_cannot_be_reached_offline(tmp_path, workspace):
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    failed_with(workspace, "no-such-org/no-such-model-xyz", {"train_path": str(path)},
                ("no-such-org/no-such-model-xyz", "cannot be reached"),
                ("check the spelling", "built-in offline default"))  # fmt: skip


def test_local_folder_that_is_not_a_model(tmp_path, workspace):
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    folder = tmp_path / "my-downloads"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a model", encoding="utf-8")
    failed_with(workspace, folder, {"train_path": str(path)}, ("not a model", "config.json"),
                ("save_pretrained",))  # fmt: skip


def test_model_path_that_does_not_exist(tmp_path, workspace):
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    failed_with(workspace, tmp_path / "missing-model", {"train_path": str(path)}, ("does not exist",),
                ("check the path",))  # fmt: skip


def test_checkpoint_folder_with_a_missing_tokenizer(tmp_path, workspace, tiny_bert_dir):
    from core.models import load_for_inference

    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    folder = tmp_path / "step-000010"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(tiny_bert_dir) / name, folder / name)
    failed_with(workspace, folder, {"train_path": str(path)}, ("no tokenizer",), ("save the tokenizer",))
    with pytest.raises(ModelError) as err:
        load_for_inference(folder)
    told(str(err.value), ("no tokenizer",), ("save the tokenizer",))


def test_model_file_instead_of_a_folder(tmp_path, workspace, tiny_bert_dir):
    path = write(tmp_path, "ok.csv", csv_text(ROWS))
    failed_with(workspace, Path(tiny_bert_dir) / "model.safetensors", {"train_path": str(path)},
                ("is a file, not a model folder",), ("give the folder",))  # fmt: skip


def test_every_failure_above_is_a_workbench_error_subclass():
    # The pages show str(err) of WorkbenchError; anything else would be a traceback to the user.
    for cls in (DataError, ModelError, ConfigError):
        assert issubclass(cls, WorkbenchError)


# ------------------------------------------------------------------------------------------------ saving a dataset
@pytest.mark.parametrize(
    ("main", "validation", "problem", "action"),
    [
        (("notes.docx", b"text,label\na,b\n"), None, ("not a file type",), ("use csv",)),
        (("empty.csv", b""), None, ("empty",), ("choose a file",)),
        (("big.csv", b"text,label\n" + b"a long film review,pos\n" * 2000), None, ("above the", "limit"),
         ("smaller sample",)),
        (("ok.csv", b"text,label\na film,pos\n"), ("val.csv", b"text,label\n" + b"x,y\n" * 20000),
         ("val.csv", "limit"), ("smaller sample",)),
        (("ok.csv", b"text,label\na film,pos\n"), ("val.csv", Path("/nonexistent/val.csv")), ("does not exist",),
         ("choose the file again",)),
    ],
    ids=["unsupported_type", "empty_upload", "too_large", "validation_too_large", "validation_missing"],
)  # fmt: skip
def test_failed_dataset_save_leaves_no_folder(workspace, main, validation, problem, action):
    from core.datasets import DatasetSettings, DatasetStore

    store = DatasetStore(workspace / "datasets")
    kept = store.save("kept", b"text,label\na film,pos\n", "kept.csv", DatasetSettings())
    with pytest.raises(DataError) as err:
        store.save("new", main[1], main[0], DatasetSettings(), validation=validation, max_mb=0.01)
    told(str(err.value), problem, action)
    assert sorted(p.name for p in store.root.iterdir()) == [kept.dir.name]  # no half-saved 'new' folder
    assert store.get("kept").path.read_bytes() == b"text,label\na film,pos\n"
    nothing_half_written(workspace)
