"""Hostile and clumsy input, round two (issue 19): limits with messages, linear readers, robust metric readers,
staged uploads that go away, and Resume only from a complete checkpoint."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from core import data
from core.cli import main as cli_main
from core.data import MAX_COLUMNS, ColumnChoice, check_data, read_table, token_lengths
from core.datasets import STAGING, DatasetSettings, DatasetStore, clean_staging, display_name, stage_upload
from core.errors import DataError
from core.events import read_jsonl


def wide_csv(path: Path, columns: int) -> Path:
    path.write_text(",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join("1" for _ in range(columns)) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- column limit
@pytest.mark.parametrize("columns", [MAX_COLUMNS + 1, 100_000])
def test_a_csv_with_too_many_columns_is_refused_with_a_message(tmp_path, columns):
    with pytest.raises(DataError) as err:
        read_table(wide_csv(tmp_path / "wide.csv", columns))
    assert f"{columns:,} columns" in str(err.value) and f"at most {MAX_COLUMNS:,}" in str(err.value)


def test_a_csv_at_the_column_limit_is_read(tmp_path):
    table = read_table(wide_csv(tmp_path / "wide.csv", MAX_COLUMNS))
    assert len(table.frame.columns) == MAX_COLUMNS


def test_json_and_parquet_with_too_many_columns_are_refused(tmp_path):
    record = {f"c{i}": 1 for i in range(MAX_COLUMNS + 5)}
    (tmp_path / "wide.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(DataError, match="columns; the workbench reads at most"):
        read_table(tmp_path / "wide.jsonl")
    pd.DataFrame([record]).to_parquet(tmp_path / "wide.parquet")
    with pytest.raises(DataError, match="columns; the workbench reads at most"):
        read_table(tmp_path / "wide.parquet")


def test_duplicate_column_names_are_found_among_many(tmp_path):
    names = [f"c{i}" for i in range(900)] + ["c5", "c7"]
    (tmp_path / "dup.csv").write_text(",".join(names) + "\n" + ",".join("x" for _ in names) + "\n")
    with pytest.raises(DataError) as err:
        read_table(tmp_path / "dup.csv")
    assert "'c5', 'c7'" in str(err.value)


def test_blank_trailing_columns_are_dropped_among_many(tmp_path):
    header = ",".join(f"c{i}" for i in range(500)) + ",,"
    row = ",".join(str(i) for i in range(500)) + ",,"
    (tmp_path / "trail.csv").write_text(f"{header}\n{row}\n{row}\n")
    frame = read_table(tmp_path / "trail.csv").frame
    assert list(frame.columns)[-1] == "c499" and len(frame.columns) == 500


# ---------------------------------------------------------------------------------------------- field length
def test_a_text_longer_than_the_csv_field_limit_is_read_and_checked(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("text,label\n" + "a" * 200_000 + ",pos\nshort,neg\nother,pos\nmore,neg\n")
    table = read_table(path)
    assert len(table.frame["text"][0]) == 200_000
    report = check_data(table.frame, ColumnChoice("text", None, "label"), "classification")
    assert any(f.title == "Very long texts" for f in report.findings)


def test_the_cli_checks_a_long_field_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "long.csv"
    path.write_text("text,label\n" + "a" * 200_000 + ",pos\nshort,neg\nother,pos\nmore,neg\n")
    code = cli_main(["check", str(path)])
    out = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in out.err and "field larger" not in out.err
    assert "Very long texts" in out.out


def test_a_corpus_line_with_no_spaces_is_cut_in_pieces_that_join_back():
    word = "x" * 10_001
    pieces = data._split_long_line(f"start {word} end", 2000)
    assert all(len(p) <= 2000 for p in pieces)
    assert " ".join(pieces).replace(" ", "") == f"start{word}end"


# ---------------------------------------------------------------------------------------------- JSON depth
@pytest.mark.parametrize("name", ["deep.json", "deep.jsonl"])
def test_json_nested_ten_thousand_deep_gives_a_message_not_a_recursion_error(tmp_path, name):
    (tmp_path / name).write_text("[" * 10_000 + "]" * 10_000 if name.endswith(".json") else '{"a":' * 10_000)
    with pytest.raises(DataError, match="nested too deeply"):
        read_table(tmp_path / name)


def test_the_cli_reports_deep_json_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "deep.json").write_text("[" * 10_000 + "]" * 10_000)
    assert cli_main(["check", str(tmp_path / "deep.json")]) == 2
    assert "nested too deeply" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- time box
def test_a_check_out_of_time_skips_the_rest_and_says_so():
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(100)], "label": ["a", "b"] * 50})
    report = check_data(frame, ColumnChoice("text", None, "label"), "classification", budget_s=0)
    cut = [f for f in report.findings if f.title == "Check cut short"]
    assert cut and "duplicates" in cut[0].detail and "lengths" in cut[0].detail
    assert report.usable  # skipped checks are a warning, not a block
    full = check_data(frame, ColumnChoice("text", None, "label"), "classification", budget_s=None)
    assert not any(f.title == "Check cut short" for f in full.findings) and len(full.token_lengths) == 100


def test_token_counting_stops_between_batches_at_the_deadline():
    class Counting:
        calls = 0

        def __call__(self, batch, second, truncation):
            Counting.calls += 1
            return {"input_ids": [[0] * 3 for _ in batch]}

    lengths = token_lengths(["a b"] * 5000, None, Counting(), deadline=time.monotonic() - 1)
    assert Counting.calls == 1 and lengths == [3] * 1000  # the first batch only


# ---------------------------------------------------------------------------------------------- metrics lines
def test_metrics_lines_that_are_json_but_not_objects_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.9, "val_loss": 1.1}]
    lines = [json.dumps(good[0]), "null", "12345", "[1, 2]", '"text"', "[" * 5000 + "]" * 5000, json.dumps(good[1])]
    path.write_text("\n".join(lines) + "\n")
    records, offset = read_jsonl(path)
    assert records == good and offset == path.stat().st_size


def test_curves_skip_records_without_a_numeric_step():
    from core.curves import CurveFeed, curve_frames, start_record

    records = [{"loss": 1.0}, {"step": "two", "loss": 2.0}, {"step": 3, "loss": 0.5}, {"step": 4, "val_loss": 0.7}]
    train, evals = curve_frames(records)
    assert train["step"].tolist() == [3] and evals["step"].tolist() == [4]
    assert start_record([None, 5, {"event": "start", "device": "cpu"}]) == {"event": "start", "device": "cpu"}
    assert CurveFeed  # the live panel reads through read_jsonl above


# ---------------------------------------------------------------------------------------------- uploads
def test_original_names_are_stored_without_paths_or_control_characters(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    src = tmp_path / "rows.csv"
    src.write_text("text,label\na,x\nb,y\n")
    hostile = "../../x/[Session expired](https://evil.example)\n\u202eevil![i](http://e/p.png).csv"
    ds = store.save("named", src, hostile, DatasetSettings())
    saved = json.loads((ds.dir / "dataset.json").read_text())["original_name"]
    assert "\n" not in saved and "\u202e" not in saved and not saved.startswith("..")
    assert saved == display_name(hostile) and store.get("named").original_name == saved
    assert display_name("C:\\Users\\me\\" + "a" * 500 + ".csv") == ("a" * 500)[:120]


def test_a_saved_upload_leaves_no_staged_copy(tmp_path):
    root = tmp_path / "datasets"
    staged = stage_upload("rows.csv", b"text,label\na,x\nb,y\n", root)
    assert staged.exists()
    DatasetStore(root).save("rows", staged, "rows.csv", DatasetSettings())
    assert not staged.exists() and not staged.parent.exists()


def test_abandoned_staged_uploads_go_after_the_grace_period(tmp_path):
    root = tmp_path / "datasets"
    old = stage_upload("old.csv", b"text\nold\n", root)
    fresh = stage_upload("new.csv", b"text\nnew\n", root)
    past = time.time() - 7200
    os.utime(old.parent, (past, past))
    assert clean_staging(root, grace_s=3600) == 1
    assert not old.parent.exists() and fresh.exists()
    # Staging the same upload again (the page reruns) refreshes its time instead of writing it again.
    os.utime(fresh.parent, (past, past))
    stage_upload("new.csv", b"text\nnew\n", root)
    assert clean_staging(root, grace_s=3600) == 0 and fresh.exists()


def test_deleting_a_dataset_cleans_abandoned_staging(tmp_path):
    root = tmp_path / "datasets"
    store = DatasetStore(root)
    src = tmp_path / "rows.csv"
    src.write_text("text,label\na,x\nb,y\n")
    store.save("rows", src, "rows.csv", DatasetSettings())
    left = stage_upload("left.csv", b"text\nx\n", root)
    past = time.time() - 7200
    os.utime(left.parent, (past, past))
    store.delete("rows")
    assert not (root / "rows").exists() and not any((root / STAGING).iterdir())


# ---------------------------------------------------------------------------------------------- checkpoints
def test_a_checkpoint_without_weights_is_not_offered_for_resume(tmp_path):
    from core.runs import Run, checkpoint_complete

    run = Run(tmp_path / "run")
    good = run.checkpoints_dir / "step-000002"
    bad = run.checkpoints_dir / "step-000004"
    for folder in (good, bad):
        folder.mkdir(parents=True)
        (folder / "trainer_state.pt").write_bytes(b"x")
    (good / "model.safetensors").write_bytes(b"x")
    assert checkpoint_complete(good) and not checkpoint_complete(bad)
    assert run.latest_checkpoint() == good  # the complete one, though older
    (good / "model.safetensors").unlink()
    assert run.latest_checkpoint() is None


# ---------------------------------------------------------------------------------------------- paths
def test_messages_show_workspace_paths_relative(tmp_path, monkeypatch):
    from ui.safe import hide_paths

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "ws"))
    message = f"No file at {tmp_path / 'ws' / 'datasets' / 'x' / 'train.csv'}."
    assert hide_paths(message) == "No file at workspace/datasets/x/train.csv."
    assert str(tmp_path) not in hide_paths(message)
