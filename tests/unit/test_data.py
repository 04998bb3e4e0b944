"""core.data: readers, detection, validation, checks, splits and prepare_data on small generated files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.config import DataConfig, RunConfig
from core.data import (
    ColumnChoice,
    DataReport,
    Splits,
    check_data,
    guess_columns,
    prepare_data,
    prepare_frame_like_run,
    read_table,
    split_frame,
    validate_columns,
)
from core.errors import DataError, WorkbenchError
from tests.corpus.bad_inputs import BAD_INPUTS, write_bad_input

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"

POS = ["great fun", "a lovely film", "brilliant acting", "I loved it", "superb and moving", "a joy to watch"]
NEG = ["dull and slow", "a boring mess", "awful script", "I hated it", "tedious and flat", "a waste of time"]


def write(folder: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding=encoding, newline="")
    return path


def sentiment_lines(n: int, sep: str = ",", labels: tuple[str, str] = ("1", "0")) -> list[str]:
    """n unique 'text<sep>label' lines, alternating classes."""
    lines = []
    for i in range(n):
        words = (POS if i % 2 == 0 else NEG)[i % 6]
        lines.append(f"{words} number {i}{sep}{labels[i % 2]}")
    return lines


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, WorkbenchError)
    return str(info.value)


# ------------------------------------------------------------------------------------------------ readers


def test_csv_with_header(tmp_path):
    path = write(tmp_path, "reviews.csv", "text,label\n" + "\n".join(sentiment_lines(10)) + "\n")
    table = read_table(path)
    assert (table.format, table.delimiter, table.encoding, table.has_header) == ("csv", ",", "utf-8", True)
    assert list(table.frame.columns) == ["text", "label"]
    assert len(table.frame) == 10
    assert table.frame["label"].tolist() == [1, 0] * 5
    assert table.frame["text"].iloc[0] == "great fun number 0"


def test_headerless_tsv_sentence_label_loads_as_text_and_label(tmp_path):
    path = write(tmp_path, "train.tsv", "\n".join(sentiment_lines(12, sep="\t")) + "\n")
    table = read_table(path)
    assert table.has_header is False
    assert table.delimiter == "\t"
    assert list(table.frame.columns) == ["text", "label"]
    assert len(table.frame) == 12, "the first line is data, not a header"
    assert table.frame["text"].iloc[0] == "great fun number 0"
    assert pd.api.types.is_integer_dtype(table.frame["label"])
    assert any("no header" in note for note in table.notes)


def test_headerless_tsv_with_word_labels(tmp_path):
    path = write(tmp_path, "train.tsv", "\n".join(sentiment_lines(12, "\t", ("positive", "negative"))) + "\n")
    table = read_table(path)
    assert table.has_header is False
    assert len(table.frame) == 12
    assert set(table.frame["label"]) == {"positive", "negative"}


def test_headerless_label_first_column_is_named_label(tmp_path):
    lines = [f"{y},{t}" for t, y in (line.rsplit(",", 1) for line in sentiment_lines(10))]
    table = read_table(write(tmp_path, "flipped.csv", "\n".join(lines) + "\n"))
    assert list(table.frame.columns) == ["label", "text"]
    assert table.frame["text"].iloc[0] == "great fun number 0"


def test_headerless_three_columns_are_text_pair_label(tmp_path):
    lines = [f"A man plays {i},Someone plays {i},{'entailment' if i % 2 else 'contradiction'}" for i in range(8)]
    table = read_table(write(tmp_path, "pairs.csv", "\n".join(lines) + "\n"))
    assert list(table.frame.columns) == ["text", "text_pair", "label"]
    assert len(table.frame) == 8


def test_unknown_header_names_detected_as_header(tmp_path):
    lines = ["Phrase,Category"] + sentiment_lines(10, ",", ("pos", "neg"))
    table = read_table(write(tmp_path, "odd.csv", "\n".join(lines) + "\n"))
    assert table.has_header is True
    assert list(table.frame.columns) == ["Phrase", "Category"]
    assert len(table.frame) == 10


def test_numeric_column_under_word_header_is_header(tmp_path):
    table = read_table(write(tmp_path, "scores.csv", "review,polarity\nnice one,1\nbad one,0\nok one,1\n"))
    assert table.has_header and list(table.frame.columns) == ["review", "polarity"]


def test_single_column_headerless_sentences(tmp_path):
    table = read_table(write(tmp_path, "lines.csv", "I liked it a lot.\nIt was too long.\nGreat cast, weak plot.\n"))
    assert table.has_header is False
    assert list(table.frame.columns) == ["text"]
    assert table.frame["text"].tolist()[2] == "Great cast, weak plot."


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolons"), ("|", "vertical bars"), ("\t", "tabs")])
def test_other_delimiters_in_csv(tmp_path, sep, name):
    path = write(tmp_path, "data.csv", f"text{sep}label\n" + "\n".join(sentiment_lines(6, sep)) + "\n")
    table = read_table(path)
    assert table.delimiter == sep
    assert list(table.frame.columns) == ["text", "label"]
    assert any(name in note for note in table.notes)


def test_quoted_fields_with_commas_and_newlines(tmp_path):
    content = 'text,label\n"Funny, warm and\nwise",1\n"Slow, ""dull"" and long",0\nplain,1\n'
    frame = read_table(write(tmp_path, "q.csv", content)).frame
    assert frame["text"].tolist() == ["Funny, warm and\nwise", 'Slow, "dull" and long', "plain"]


def test_crlf_blank_lines_and_trailing_separator(tmp_path):
    content = "text,label,\r\ngood film,1,\r\n\r\nbad film,0,\r\n"
    table = read_table(write(tmp_path, "win.csv", content))
    assert list(table.frame.columns) == ["text", "label"]
    assert table.frame["text"].tolist() == ["good film", "bad film"]


def test_blank_cells_become_missing(tmp_path):
    frame = read_table(write(tmp_path, "gaps.csv", "text,label\ngood,1\n,0\nbad,\n")).frame
    assert frame["text"].isna().tolist() == [False, True, False]
    assert frame["label"].isna().tolist() == [False, False, True]


def test_json_list_of_records(tmp_path):
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]
    table = read_table(write(tmp_path, "d.json", json.dumps(rows)))
    assert table.format == "json"
    assert table.frame.to_dict("records") == rows


def test_json_wrapped_in_data_key(tmp_path):
    table = read_table(write(tmp_path, "d.json", json.dumps({"version": 1, "data": [{"text": "a", "label": "x"}]})))
    assert table.frame["text"].tolist() == ["a"]
    assert any("'data'" in note for note in table.notes)


def test_json_columns_object(tmp_path):
    table = read_table(write(tmp_path, "d.json", json.dumps({"text": ["a", "b"], "label": [1, 0]})))
    assert table.frame.to_dict("list") == {"text": ["a", "b"], "label": [1, 0]}


def test_json_list_of_strings(tmp_path):
    table = read_table(write(tmp_path, "d.json", json.dumps(["first line", "second line"])))
    assert table.frame["text"].tolist() == ["first line", "second line"]


def test_jsonl(tmp_path):
    lines = [json.dumps({"prompt": f"q{i}", "response": f"a{i}"}) for i in range(5)]
    table = read_table(write(tmp_path, "d.jsonl", "\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n"))
    assert table.format == "jsonl"
    assert table.frame["response"].tolist() == ["a0", "a1", "a2", "a3", "a4"]


def test_json_extension_holding_json_lines(tmp_path):
    lines = [json.dumps({"text": f"t{i}", "label": i % 2}) for i in range(4)]
    table = read_table(write(tmp_path, "d.json", "\n".join(lines)))
    assert table.format == "jsonl"
    assert len(table.frame) == 4
    assert any("JSON Lines" in note for note in table.notes)


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 0]}).to_parquet(path)
    table = read_table(path)
    assert (table.format, table.encoding, table.delimiter) == ("parquet", None, None)
    assert table.frame["label"].tolist() == [0, 1, 0]


def test_parquet_renamed_to_csv_is_read_by_content(tmp_path):
    path = tmp_path / "really.csv"
    pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}).to_parquet(path)
    table = read_table(path)
    assert table.format == "parquet"
    assert table.frame["text"].tolist() == ["a", "b"]
    assert any("Parquet" in note for note in table.notes)


def test_txt_one_example_per_line(tmp_path):
    table = read_table(write(tmp_path, "notes.txt", "first line\n\n  second line  \nthird\n"))
    assert table.format == "txt" and table.has_header is False
    assert table.frame["text"].tolist() == ["first line", "second line", "third"]


def test_txt_corpus_paragraphs(tmp_path):
    text = "Para one line one.\nPara one line two.\n\nPara two.\n\n\nPara three.\n"
    frame = read_table(write(tmp_path, "c.txt", text), corpus=True).frame
    assert frame["text"].tolist() == ["Para one line one.\nPara one line two.", "Para two.", "Para three."]


def test_txt_corpus_chunks_long_text(tmp_path):
    lines = [f"Sentence number {i} is here." for i in range(1000)]  # one paragraph, ~28 KB
    frame = read_table(write(tmp_path, "c.txt", "\n".join(lines)), corpus=True).frame
    assert len(frame) > 10
    assert frame["text"].str.len().max() <= 2000
    assert "\n".join(frame["text"]) == "\n".join(lines), "chunking keeps every line, in order"


def test_txt_corpus_splits_one_giant_line(tmp_path):
    frame = read_table(write(tmp_path, "c.txt", "word " * 3000), corpus=True).frame
    assert len(frame) >= 7
    assert frame["text"].str.len().max() <= 2000


# ------------------------------------------------------------------------------------------------ encodings


def test_utf8_bom_does_not_leak_into_column_name(tmp_path):
    path = write(tmp_path, "bom.csv", "text,label\ncafé,1\nthé,0\n", encoding="utf-8-sig")
    table = read_table(path)
    assert table.encoding == "utf-8-sig"
    assert list(table.frame.columns) == ["text", "label"]
    assert table.frame["text"].tolist() == ["café", "thé"]


def test_utf16_with_bom(tmp_path):
    table = read_table(write(tmp_path, "u16.tsv", "text\tlabel\nnaïve\t1\nbien sûr\t0\n", encoding="utf-16"))
    assert table.encoding == "utf-16"
    assert table.frame["text"].tolist() == ["naïve", "bien sûr"]


def test_utf16_without_bom(tmp_path):
    table = read_table(write(tmp_path, "u16.csv", "text,label\nzoë,1\nmax,0\n", encoding="utf-16-le"))
    assert table.encoding == "utf-16-le"
    assert table.frame["text"].tolist() == ["zoë", "max"]
    assert any("UTF-16" in note for note in table.notes)


def test_latin1_is_read_with_a_note(tmp_path):
    table = read_table(write(tmp_path, "l1.csv", "text,label\ncafé crème,1\nmauvais goût,0\n", encoding="latin-1"))
    assert table.encoding == "latin-1"
    assert table.frame["text"].tolist() == ["café crème", "mauvais goût"]
    assert any("not UTF-8" in note and "Latin-1" in note for note in table.notes)


def test_windows_1252_curly_quotes(tmp_path):
    table = read_table(write(tmp_path, "w.csv", "text,label\n“quoted” – fine,1\nbad,0\n", encoding="cp1252"))
    assert table.encoding == "cp1252"
    assert table.frame["text"].iloc[0] == "“quoted” – fine"


# ------------------------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.name for c in BAD_INPUTS])
def test_bad_input_messages(tmp_path, case):
    path = write_bad_input(case, tmp_path)
    message = error_of(read_table, path, **case.kwargs)
    assert case.name in message, "the message names the file"
    for piece in case.expect:
        assert piece.lower() in message.lower(), f"{piece!r} missing from: {message}"


def test_ragged_row_error_counts_disagreeing_lines(tmp_path):
    content = "text,label\n" + "a,1\n" * 5 + "b,2,x\n" + "c,3\n" + "d,4,y\n"
    message = error_of(read_table, write(tmp_path, "r.csv", content))
    assert "Line 7" in message and "2 of 9 lines" in message


def test_header_only_message_names_the_columns(tmp_path):
    message = error_of(read_table, write(tmp_path, "h.csv", "review,sentiment\n"))
    assert "(review, sentiment)" in message


# ------------------------------------------------------------------------------------------------ columns


def test_guess_columns_classification_by_names():
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "review": ["a long text here", "another text", "x y z"], "sentiment": ["p", "n", "p"]}
    )
    assert guess_columns(frame, "classification") == ColumnChoice("review", None, "sentiment")


def test_guess_columns_picks_longest_text_and_low_cardinality_label():
    frame = pd.DataFrame(
        {
            "title": ["a", "b", "c", "d"],
            "body": ["long text one", "long text two", "long three", "four"],
            "tag": ["x", "y", "x", "y"],
        }
    )
    assert guess_columns(frame, "classification") == ColumnChoice("body", None, "tag")


def test_guess_columns_regression_prefers_numeric_not_row_counter():
    frame = pd.DataFrame({"row": [0, 1, 2, 3], "text": ["a b", "c d", "e f", "g h"], "value": [0.5, 2.5, 1.0, 3.0]})
    assert guess_columns(frame, "regression") == ColumnChoice("text", None, "value")
    named = pd.DataFrame({"text": ["a b c", "d e f"], "label": ["x", "y"], "score": [1.0, 2.0]})
    assert guess_columns(named, "regression").label == "score"
    assert guess_columns(named, "classification").label == "label"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("prompt", "response"), ("prompt", "response")),
        (("input", "output"), ("input", "output")),
        (("question", "answer"), ("question", "answer")),
        (("instruction", "output"), ("instruction", "output")),
    ],
)
def test_guess_columns_generation_pairs(names, expected):
    frame = pd.DataFrame({names[1]: ["the answer text is long"], names[0]: ["q"]})
    assert guess_columns(frame, "generation") == ColumnChoice(expected[0], expected[1], None)


def test_guess_columns_generation_single_text():
    assert guess_columns(pd.DataFrame({"text": ["a story"]}), "generation") == ColumnChoice("text")


def test_guess_columns_sentence_pair_classification():
    frame = pd.DataFrame({"premise": ["a b c"], "hypothesis": ["a b"], "label": ["entailment"]})
    assert guess_columns(frame, "classification") == ColumnChoice("premise", "hypothesis", "label")


def two_class_frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"text {i}" for i in range(n)], "label": ["a", "b"] * (n // 2), "num": range(n)})


@pytest.mark.parametrize(
    ("columns", "task", "pieces"),
    [
        (ColumnChoice("review", None, "label"), "classification", ["'review'", "available columns: text, label, num"]),
        (ColumnChoice("text", None, "stars"), "classification", ["'stars'", "label"]),
        (ColumnChoice("text"), "classification", ["no label column", "classification"]),
        (ColumnChoice("text"), "regression", ["no label column", "regression"]),
        (ColumnChoice("text", "text", "label"), "classification", ["second text", "same as the first"]),
        (ColumnChoice("num", None, "label"), "classification", ["'num'", "numbers, not text"]),
        (ColumnChoice("text", None, "text"), "classification", ["both as text and as label"]),
        (ColumnChoice("text", None, "label"), "regression", ["must hold numbers for regression", "'a'"]),
    ],
)
def test_validate_columns_errors(columns, task, pieces):
    message = error_of(validate_columns, two_class_frame(), columns, task, path_name="train.csv")
    assert "train.csv" in message or "same as" in message or "both as" in message
    for piece in pieces:
        assert piece.lower() in message.lower(), message


def test_validate_all_empty_text_column():
    frame = pd.DataFrame({"text": ["", " ", None], "label": [1, 0, 1]})
    assert "empty in every row" in error_of(
        validate_columns, frame, ColumnChoice("text", None, "label"), "classification"
    )


def test_validate_all_missing_labels():
    frame = pd.DataFrame({"text": ["a", "b"], "label": [None, None]})
    message = error_of(
        validate_columns, frame, ColumnChoice("text", None, "label"), "classification", path_name="f.csv"
    )
    assert "label column 'label' in f.csv is empty" in message


def test_validate_some_missing_labels_is_fine():
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", None, "y"]})
    validate_columns(frame, ColumnChoice("text", None, "label"), "classification")


def test_validate_single_class():
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["pos", "pos", None]})
    message = error_of(validate_columns, frame, ColumnChoice("text", None, "label"), "classification")
    assert "'pos'" in message and "at least two classes" in message


def test_validate_too_many_classes_suggests_regression_or_id():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(1000)], "label": range(1000)})
    message = error_of(validate_columns, frame, ColumnChoice("text", None, "label"), "classification")
    assert "1,000 distinct values: is this a regression target or an id column?" in message


def test_validate_constant_regression_target():
    frame = pd.DataFrame({"text": ["a", "b"], "y": [3.0, 3.0]})
    assert "nothing to learn" in error_of(validate_columns, frame, ColumnChoice("text", None, "y"), "regression")


def test_validate_generation_ignores_label():
    validate_columns(pd.DataFrame({"text": ["a"]}), ColumnChoice("text", None, "missing"), "generation")


# ------------------------------------------------------------------------------------------------ splits


def labelled(n_a: int, n_b: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"row {i}" for i in range(n_a + n_b)], "label": ["a"] * n_a + ["b"] * n_b})


def test_split_sizes_and_index_reset():
    splits = split_frame(labelled(50, 50), val_fraction=0.1, test_fraction=0.2, stratify_column=None, seed=1)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (70, 10, 20)
    for part in (splits.train, splits.validation, splits.test):
        assert list(part.index) == list(range(len(part)))
    every = pd.concat([splits.train, splits.validation, splits.test])["text"]
    assert sorted(every) == sorted(labelled(50, 50)["text"]), "no row lost or repeated"


def test_split_stratified_keeps_proportions():
    splits = split_frame(labelled(120, 80), val_fraction=0.1, test_fraction=0.1, stratify_column="label", seed=3)
    for part, size in ((splits.validation, 20), (splits.test, 20), (splits.train, 160)):
        assert len(part) == size
        assert (part["label"] == "a").mean() == pytest.approx(0.6, abs=0.051)


def test_split_is_deterministic_by_seed():
    frame = labelled(30, 30)
    first = split_frame(frame, val_fraction=0.2, test_fraction=0.2, stratify_column="label", seed=7)
    again = split_frame(frame, val_fraction=0.2, test_fraction=0.2, stratify_column="label", seed=7)
    other = split_frame(frame, val_fraction=0.2, test_fraction=0.2, stratify_column="label", seed=8)
    assert first.test["text"].tolist() == again.test["text"].tolist()
    assert first.train["text"].tolist() == again.train["text"].tolist()
    assert first.test["text"].tolist() != other.test["text"].tolist()


def test_split_zero_fraction_gives_empty_split_with_columns():
    splits = split_frame(labelled(5, 5), val_fraction=0.0, test_fraction=0.2, stratify_column=None, seed=0)
    assert len(splits.validation) == 0 and list(splits.validation.columns) == ["text", "label"]
    assert (len(splits.train), len(splits.test)) == (8, 2)


def test_split_too_few_rows():
    message = error_of(split_frame, labelled(1, 1), val_fraction=0.1, test_fraction=0.1, stratify_column=None, seed=0)
    assert "Only 2 rows" in message and "too few" in message


def test_split_fractions_leave_no_training_data():
    message = error_of(split_frame, labelled(10, 10), val_fraction=0.5, test_fraction=0.5, stratify_column=None, seed=0)
    assert "leave no rows for training" in message


def test_split_stratify_with_single_row_class_names_it():
    frame = pd.concat([labelled(10, 10), pd.DataFrame({"text": ["lonely"], "label": ["rare"]})], ignore_index=True)
    message = error_of(split_frame, frame, val_fraction=0.1, test_fraction=0.1, stratify_column="label", seed=0)
    assert "'rare'" in message and "random" in message


def test_split_stratify_impossible_sizes_is_a_data_error():
    message = error_of(
        split_frame, labelled(3, 3), val_fraction=0.1, test_fraction=0.1, stratify_column="label", seed=0
    )
    assert "class proportions" in message


# ------------------------------------------------------------------------------------------------ check_data


def findings_by_title(report: DataReport) -> dict[str, tuple[str, str]]:
    return {f.title: (f.level, f.detail) for f in report.findings}


def test_check_clean_data_is_usable():
    frame = labelled(30, 30)
    report = check_data(frame, ColumnChoice("text", None, "label"), "classification")
    assert report.usable
    assert report.rows == 60
    assert report.class_counts == {"a": 30, "b": 30}
    assert all(f.level == "ok" for f in report.findings), report.findings


def test_check_duplicates_and_conflicting_labels():
    frame = pd.DataFrame({"text": ["same", "same", "same", "other", "x"], "label": ["a", "a", "b", "b", "a"]})
    found = findings_by_title(check_data(frame, ColumnChoice("text", None, "label"), "classification"))
    assert found["Duplicates"][0] == "warning" and found["Duplicates"][1].startswith("2 rows repeat")
    assert found["Conflicting labels"][0] == "warning" and '"same"' in found["Conflicting labels"][1]


def test_check_leakage_between_splits():
    splits = Splits(
        train=pd.DataFrame({"text": ["a", "b", "c"]}),
        validation=pd.DataFrame({"text": ["a", "d"]}),
        test=pd.DataFrame({"text": ["b", "c", "e"]}),
    )
    frame = pd.concat([splits.train, splits.validation, splits.test], ignore_index=True)
    found = findings_by_title(check_data(frame, ColumnChoice("text"), "generation", splits=splits))
    assert found["Leakage"][0] == "warning"
    assert "1 validation row and 2 test rows" in found["Leakage"][1]


def test_check_truncation_count_with_word_estimate():
    frame = pd.DataFrame({"text": ["word " * 10, "word " * 200, "word " * 98, "word " * 99], "label": [0, 1, 0, 1]})
    report = check_data(frame, ColumnChoice("text", None, "label"), "classification", max_length=128)
    assert report.token_lengths == [13, 260, 127, 129]
    assert report.truncated == 2
    assert findings_by_title(report)["Length"][0] == "warning"
    assert "2 rows (50%) are longer than 128" in findings_by_title(report)["Length"][1]
    as_corpus = findings_by_title(check_data(frame, ColumnChoice("text"), "generation", max_length=128))
    assert as_corpus["Length"][0] == "ok" and "nothing is lost" in as_corpus["Length"][1]


def test_check_token_lengths_with_real_tokenizer(minilm_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    frame = pd.DataFrame({"text": ["hello world", "word " * 300], "label": [0, 1]})
    report = check_data(
        frame, ColumnChoice("text", None, "label"), "classification", max_length=64, tokenizer=tokenizer
    )
    assert report.token_lengths == [4, 302]  # [CLS] hello world [SEP]; 300 words + 2 special tokens
    assert report.truncated == 1


def test_check_class_balance_warning():
    found = findings_by_title(check_data(labelled(100, 10), ColumnChoice("text", None, "label"), "classification"))
    assert found["Class balance"][0] == "warning" and "'b' only 10" in found["Class balance"][1]


def test_check_single_row_class_is_a_problem():
    report = check_data(labelled(30, 1), ColumnChoice("text", None, "label"), "classification")
    assert not report.usable
    assert findings_by_title(report)["Class balance"][0] == "problem"


def test_check_missing_labels_and_empty_texts():
    frame = pd.DataFrame({"text": ["a", "", "c", "d", None], "label": ["x", "y", None, "y", "x"]})
    report = check_data(frame, ColumnChoice("text", None, "label"), "classification")
    found = findings_by_title(report)
    assert found["Empty texts"] == ("warning", "2 rows have an empty text; they will be left out.")
    assert found["Missing labels"] == ("warning", "1 row has no label; they will be left out.")
    assert found["Rows"][0] == "warning"


def test_check_very_long_texts_noted():
    frame = pd.DataFrame({"text": ["x" * 100_001, "short"], "label": [1, 0]})
    found = findings_by_title(check_data(frame, ColumnChoice("text", None, "label"), "classification"))
    assert found["Very long texts"][0] == "warning" and "1 text is longer than 100,000" in found["Very long texts"][1]


def test_check_reports_bad_columns_as_problem_instead_of_raising():
    report = check_data(labelled(5, 5), ColumnChoice("text", None, "nope"), "classification")
    assert not report.usable
    assert "'nope'" in findings_by_title(report)["Columns"][1]


def test_check_regression_targets():
    frame = pd.DataFrame({"text": ["a", "b", "c"], "y": [1.0, 2.0, 4.5]})
    report = check_data(frame, ColumnChoice("text", None, "y"), "regression")
    assert report.class_counts == {}
    assert "from 1 to 4.5" in findings_by_title(report)["Targets"][1]


# ------------------------------------------------------------------------------------------------ prepare_data


def test_prepare_with_separate_headerless_validation_and_test_files(tmp_path):
    lines = sentiment_lines(60, sep="\t")
    train = write(tmp_path, "train.tsv", "\n".join(lines[:40]) + "\n")
    val = write(tmp_path, "dev.tsv", "\n".join(lines[40:50]) + "\n")
    test = write(tmp_path, "test.tsv", "\n".join(lines[50:]) + "\n")
    cfg = DataConfig(train_path=str(train), validation_path=str(val), test_path=str(test))
    prepared = prepare_data(cfg, "classification")
    assert prepared.label_names == ["0", "1"]
    assert (len(prepared.train), len(prepared.validation), len(prepared.test)) == (40, 10, 10)
    assert list(prepared.train.columns) == ["text", "label"]
    assert prepared.train["label"].dtype == "int64"
    assert prepared.validation["text"].iloc[0] == "superb and moving number 40"
    assert prepared.validation["label"].iloc[0] == 1  # "1" -> id 1 since names are ["0", "1"]


def test_prepare_unseen_label_in_test_file(tmp_path):
    train = write(tmp_path, "train.csv", "text,label\n" + "\n".join(sentiment_lines(20, ",", ("pos", "neg"))) + "\n")
    test = write(tmp_path, "test.csv", "text,label\nfine,pos\nmeh,neutral\nugh,angry\n")
    message = error_of(prepare_data, DataConfig(train_path=str(train), test_path=str(test)), "classification")
    assert "test.csv" in message and "'angry', 'neutral'" in message and "train.csv" in message


def test_prepare_test_file_with_one_class_is_fine(tmp_path):
    train = write(tmp_path, "train.csv", "text,label\n" + "\n".join(sentiment_lines(20, ",", ("pos", "neg"))) + "\n")
    test = write(tmp_path, "test.csv", "text,label\nfine,pos\nnice,pos\n")
    prepared = prepare_data(DataConfig(train_path=str(train), test_path=str(test), val_fraction=0.2), "classification")
    assert prepared.test["label"].tolist() == [1, 1]  # names ["neg", "pos"]
    assert len(prepared.validation) == 4 and len(prepared.train) == 16


def test_prepare_split_drops_missing_and_notes_it(tmp_path):
    lines = sentiment_lines(40) + ["no label here,", ",1"]
    train = write(tmp_path, "d.csv", "text,label\n" + "\n".join(lines) + "\n")
    prepared = prepare_data(DataConfig(train_path=str(train), val_fraction=0.1, test_fraction=0.1), "classification")
    assert len(prepared.train) + len(prepared.validation) + len(prepared.test) == 40
    assert (len(prepared.validation), len(prepared.test)) == (4, 4)
    assert "1 row of d.csv without a label was left out." in prepared.notes
    assert "1 row of d.csv with an empty text was left out." in prepared.notes
    assert prepared.validation["label"].value_counts().to_dict() == {0: 2, 1: 2}, "stratified"


def test_prepare_numeric_label_names_sort_numerically(tmp_path):
    rows = [f"text {i},{[2, 10, 1][i % 3]}" for i in range(30)]
    prepared = prepare_data(
        DataConfig(train_path=str(write(tmp_path, "d.csv", "text,label\n" + "\n".join(rows)))), "classification"
    )
    assert prepared.label_names == ["1", "2", "10"]


def test_prepare_column_overrides_and_pairs(tmp_path):
    rows = [{"a": f"premise {i}", "b": f"hypothesis {i}", "gold": "yes" if i % 2 else "no"} for i in range(20)]
    path = write(tmp_path, "p.jsonl", "\n".join(json.dumps(r) for r in rows))
    cfg = DataConfig(
        train_path=str(path),
        text_column="a",
        text_pair_column="b",
        label_column="gold",
        val_fraction=0.2,
        test_fraction=0.0,
    )
    prepared = prepare_data(cfg, "classification")
    assert list(prepared.train.columns) == ["text", "text_pair", "label"]
    assert prepared.label_names == ["no", "yes"]
    assert len(prepared.test) == 0 and len(prepared.validation) == 4


def test_prepare_explicit_label_column_is_never_taken_as_text(tmp_path):
    rows = [f"short {i},a much longer explanation number {i}" for i in range(20)]
    path = write(tmp_path, "d.csv", "title,explanation\n" + "\n".join(rows))
    cfg = DataConfig(train_path=str(path), label_column="explanation", val_fraction=0.0, test_fraction=0.0)
    prepared = prepare_data(cfg, "classification")
    assert prepared.train["text"].str.startswith("short").all()
    assert len(prepared.label_names) == 20 and prepared.label_names[0].startswith("a much longer")


def test_prepare_regression(tmp_path):
    rows = [f"text {i},{i / 10}" for i in range(20)]
    path = write(tmp_path, "r.csv", "text,score\n" + "\n".join(rows))
    prepared = prepare_data(DataConfig(train_path=str(path), stratify=True), "regression")
    assert prepared.label_names is None
    assert prepared.train["label"].dtype == "float64"
    assert sorted(pd.concat([prepared.train, prepared.validation, prepared.test])["label"]) == [
        i / 10 for i in range(20)
    ]


def test_prepare_generation_corpus_from_txt(tmp_path):
    text = "\n\n".join(f"Story {i}. It was a day.\nThen it ended." for i in range(30))
    prepared = prepare_data(DataConfig(train_path=str(write(tmp_path, "s.txt", text))), "generation")
    assert list(prepared.train.columns) == ["text"]
    assert len(prepared.train) + len(prepared.validation) + len(prepared.test) == 30
    assert prepared.label_names is None


def test_prepare_generation_with_references(tmp_path):
    path = write(tmp_path, "qa.csv", "prompt,response\n" + "\n".join(f"What is {i}?,It is {i}." for i in range(20)))
    prepared = prepare_data(DataConfig(train_path=str(path)), "generation")
    assert list(prepared.train.columns) == ["text", "text_pair"]
    row = prepared.train.iloc[0]
    assert row["text"].replace("What is ", "").rstrip("?") == row["text_pair"].replace("It is ", "").rstrip(".")


def test_augmentation_touches_training_only(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\n" + "\n".join(sentiment_lines(50)) + "\n")
    plain = prepare_data(DataConfig(train_path=str(path)), "classification")
    cfg = DataConfig(train_path=str(path), augment_ops=["swap", "char_noise"], augment_multiplier=2)
    augmented = prepare_data(cfg, "classification")
    pd.testing.assert_frame_equal(augmented.validation, plain.validation)
    pd.testing.assert_frame_equal(augmented.test, plain.test)
    assert len(augmented.train) == 3 * len(plain.train)
    pd.testing.assert_frame_equal(augmented.train.iloc[: len(plain.train)], plain.train)
    assert augmented.train["label"].tolist()[len(plain.train) :: 2] == plain.train["label"].tolist()
    assert any("augmented" in note for note in augmented.notes)


def test_prepare_frame_like_run_maps_labels(tmp_path):
    path = write(tmp_path, "new.csv", "text,label\nnice,pos\nbad,neg\n")
    cfg = RunConfig.from_dict({"data": {"train_path": "unused.csv"}, "model": {"task": "classification"}})
    frame = prepare_frame_like_run(path, cfg, ["neg", "pos"])
    assert frame.to_dict("list") == {"text": ["nice", "bad"], "label": [1, 0]}
    message = error_of(prepare_frame_like_run, path, cfg, ["neg", "neutral"])
    assert "'pos'" in message


# ------------------------------------------------------------------------------------------------ samples


def test_bundled_samples_are_regenerated_identically(tmp_path):
    subprocess.run([sys.executable, str(SAMPLES / "make_samples.py"), str(tmp_path)], check=True, timeout=300)
    for name in ("sentiment.csv", "pairs.csv", "qa.csv", "stories.txt"):
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
        assert (SAMPLES / name).stat().st_size < 400 * 1024


def test_sample_sentiment_is_balanced_unique_and_varied():
    table = read_table(SAMPLES / "sentiment.csv")
    frame = table.frame
    assert 380 <= len(frame) <= 420 and not frame["text"].duplicated().any()
    assert frame["label"].value_counts().to_dict() == {"positive": 200, "negative": 200}
    words = frame["text"].str.split().str.len()
    assert words.min() >= 5 and words.max() <= 40 and words.std() > 5
    assert guess_columns(frame, "classification") == ColumnChoice("text", None, "label")


def test_sample_files_prepare_for_their_tasks():
    pairs = prepare_data(DataConfig(train_path=str(SAMPLES / "pairs.csv")), "classification")
    assert pairs.label_names == ["contradiction", "entailment"] and "text_pair" in pairs.train
    qa = prepare_data(DataConfig(train_path=str(SAMPLES / "qa.csv")), "generation")
    assert list(qa.train.columns) == ["text", "text_pair"] and len(qa.train) == 160
    stories = read_table(SAMPLES / "stories.txt", corpus=True)
    assert 150_000 <= (SAMPLES / "stories.txt").stat().st_size <= 300_000
    assert len(stories.frame) > 200 and stories.frame["text"].str.len().max() <= 2000
