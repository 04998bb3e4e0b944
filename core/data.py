"""Read, check, split and prepare training data.

Everything a user can get wrong raises ``DataError`` whose message names the file, line or column and
says what to do. Nothing here imports streamlit: the Data page and the CLI share these functions.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.errors import TASKS, DataError
from core.findings import Finding  # noqa: F401 - the data check's lines; pages import it from here
from core.findings import finding as _finding

if TYPE_CHECKING:
    from core.config import DataConfig

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
    ".text": "txt",
}
SUPPORTED = "CSV (.csv), TSV (.tsv), JSON (.json), JSON Lines (.jsonl), Parquet (.parquet) or plain text (.txt)"
DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "commas", "\t": "tabs", ";": "semicolons", "|": "vertical bars"}
# Magic numbers of files people rename to .csv by mistake; the hint tells them what to do instead.
BINARY_MAGIC = {  # the first bytes of a file that is no text table -> the message that says what it is
    b"PK\x03\x04": "error.data.binary.zip",
    b"\xd0\xcf\x11\xe0": "error.data.binary.office",
    b"%PDF": "error.data.binary.pdf",
    b"\x89PNG": "error.data.binary.png",
    b"\xff\xd8\xff": "error.data.binary.jpeg",
    b"\x1f\x8b": "error.data.binary.gzip",
}
LABEL_NAMES = (
    "label", "labels", "class", "target", "sentiment", "y", "score", "category", "rating", "gold_label",
    "intent", "topic", "stars", "emotion",
)  # fmt: skip
TEXT_NAMES = (
    "text", "sentence", "review", "content", "body", "document", "comment", "tweet", "utterance", "message",
    "question", "premise", "prompt", "input", "instruction", "sentence1", "text_a", "query", "title", "output",
    "response", "answer", "completion", "hypothesis", "sentence2", "text_b", "text_pair", "context", "passage",
)  # fmt: skip
PAIR_NAMES = (
    ("premise", "hypothesis"), ("sentence1", "sentence2"), ("text_a", "text_b"), ("question1", "question2"),
    ("sentence_a", "sentence_b"), ("text", "text_pair"), ("question", "sentence"), ("query", "passage"),
)  # fmt: skip
GENERATION_PAIRS = (
    ("prompt", "response"), ("prompt", "completion"), ("input", "output"), ("question", "answer"),
    ("instruction", "output"), ("instruction", "response"), ("source", "target"), ("query", "response"),
    ("context", "response"), ("prompt", "answer"), ("article", "headline"), ("article", "summary"),
    ("document", "summary"), ("text", "summary"), ("question", "response"),
)  # fmt: skip
KNOWN_NAMES = {*LABEL_NAMES, *TEXT_NAMES, *(n for pair in PAIR_NAMES + GENERATION_PAIRS for n in pair), "id", "idx"}
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
NAME_LIKE = re.compile(r"[A-Za-z_][\w \-/#]{0,39}")
MAX_CLASSES = 200
CORPUS_CHUNK_CHARS = 2000
LONG_TEXT_CHARS = 100_000
# Limits that keep one hostile file from holding the server (issue 19): a training table with more columns
# than this is an export of something else; the data check stops after CHECK_SECONDS and says what it skipped.
MAX_COLUMNS = 1_000
CHECK_SECONDS = 5.0


# ----------------------------------------------------------------------------------------------------------
# Public data types


@dataclass
class Table:
    """A data file read into a DataFrame, with what was detected about it."""

    frame: pd.DataFrame
    """The rows; column names are strings."""
    path: Path
    """Where the file was read from."""
    format: str
    """csv, tsv, json, jsonl, parquet or txt (what the content turned out to be)."""
    encoding: str | None
    """Text encoding used to read the file (None for Parquet)."""
    delimiter: str | None
    """Column separator of CSV/TSV files (None for the other formats and one-column files)."""
    has_header: bool
    """Whether the first line held column names."""
    notes: list[str] = field(default_factory=list)
    """Plain-language remarks about how the file was read."""


@dataclass
class ColumnChoice:
    """Which columns hold the text, the optional second text and the label."""

    text: str
    text_pair: str | None = None
    label: str | None = None
    instruction: str | None = None
    """Generation: a column put before each prompt (Alpaca's instruction; the prompt column is then its input)."""
    system: str | None = None
    """Generation: a column with each row's system message."""


@dataclass
class DataReport:
    """The result of ``check_data``."""

    findings: list[Finding]
    rows: int
    class_counts: dict[str, int]
    """Rows per class (classification only)."""
    token_lengths: list[int]
    """Tokens per row (estimated from words when no tokenizer is given)."""
    max_length: int
    truncated: int
    """Rows longer than max_length tokens."""

    @property
    def usable(self) -> bool:
        return not any(f.level == "problem" for f in self.findings)


@dataclass
class Splits:
    """Train / validation / test parts of one table (index reset on each)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


@dataclass
class PreparedData:
    """Standardized splits ready for tokenization: columns text, optional text_pair, and label."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    label_names: list[str] | None
    """Classification: label id i is label_names[i]; None for regression and generation."""
    notes: list[str] = field(default_factory=list)
    """What was dropped, guessed or added on the way."""


# ----------------------------------------------------------------------------------------------------------
# Reading


def read_table(path: str | Path, *, max_mb: float = 200.0, corpus: bool = False) -> Table:
    """Read a csv/tsv/json/jsonl/parquet/txt file, detecting encoding, delimiter and header.

    With ``corpus=True`` a .txt file is cut into paragraphs (for language modelling) instead of lines.
    """
    path = Path(path)
    raw = _read_bytes(path, max_mb)
    fmt, notes = _detect_format(path, raw)
    if fmt == "parquet":
        table = Table(_read_parquet(path), path, "parquet", None, None, True, notes)
    else:
        text, encoding = _decode(raw, path, notes)
        if not text.strip():
            raise DataError("error.data.empty", hint="error.hint.need_data", name=path.name)
        table = _read_text_format(fmt, text, path, corpus, notes)
        table.encoding = encoding
    table.frame = _finish_frame(table.frame, path)
    return table


def _read_bytes(path: Path, max_mb: float) -> bytes:
    if not path.exists():
        raise DataError("error.data.no_file", hint="error.hint.check_path", path=path)
    if not path.is_file():
        raise DataError("error.data.is_folder", hint="error.hint.file_inside", path=path)
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise DataError(
            "error.data.too_large",
            hint="error.hint.sample_rows",
            name=path.name,
            size=_size_text(size),
            limit=_size_text(max_mb * 1024 * 1024),
        )
    if size == 0:
        raise DataError("error.data.zero_bytes", hint="error.hint.need_data", name=path.name)
    return path.read_bytes()


def _size_text(size: float) -> str:
    return f"{size / 1024:,.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MB"


def _detect_format(path: Path, raw: bytes) -> tuple[str, list[str]]:
    ext = path.suffix.lower()
    if raw[:4] == b"PAR1":
        notes = [] if EXTENSIONS.get(ext) == "parquet" else [f"{path.name} is a Parquet file; it was read as one."]
        return "parquet", notes
    for magic, key in BINARY_MAGIC.items():
        if raw.startswith(magic):
            raise DataError(key, hint="error.hint.formats", name=path.name)
    if ext not in EXTENSIONS:
        if ext:
            raise DataError("error.data.unknown_extension", hint="error.hint.formats", name=path.name, ext=ext)
        raise DataError("error.data.no_extension", hint="error.hint.formats", name=path.name)
    if EXTENSIONS[ext] == "parquet":
        raise DataError("error.data.not_parquet_start", hint="error.hint.parquet_again_or_ext", name=path.name)
    return EXTENSIONS[ext], []


def _decode(raw: bytes, path: Path, notes: list[str]) -> tuple[str, str]:
    """Decode bytes to text, returning (text with \\n newlines, encoding name)."""
    text, encoding = _decode_bom(raw, path)
    if text is None:
        text, encoding = _decode_without_bom(raw, path, notes)
    if "\x00" in text:
        raise _binary_error(path)
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def _decode_bom(raw: bytes, path: Path) -> tuple[str | None, str]:
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    )
    for bom, encoding in boms:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding
            except UnicodeDecodeError:
                raise _binary_error(path) from None
    return None, ""


def _decode_without_bom(raw: bytes, path: Path, notes: list[str]) -> tuple[str, str]:
    sample = raw[:8192]
    if b"\x00" in sample:
        return _decode_utf16_guess(raw, sample, path, notes)
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if _mostly_control_bytes(sample):
        raise _binary_error(path)
    legacy = _decode_legacy_cjk(raw, notes)
    if legacy is not None:
        return legacy
    # Bytes 0x80-0x9F are printable only in Windows-1252 (smart quotes, euro sign); Latin-1 maps them to controls.
    if re.search(rb"[\x80-\x9f]", raw):  # a C-speed scan: a Python loop over 200 MB takes seconds
        try:
            text = raw.decode("cp1252")
            notes.append("The file is not UTF-8; it was read as Windows-1252 (Latin-1 with curly quotes).")
            return text, "cp1252"
        except UnicodeDecodeError:
            pass
    notes.append("The file is not UTF-8; it was read as Latin-1. If accents look wrong, save it as UTF-8.")
    return raw.decode("latin-1"), "latin-1"


def _decode_legacy_cjk(raw: bytes, notes: list[str]) -> tuple[str, str] | None:
    """GBK/GB18030, Big5 or Shift-JIS (what Chinese and Japanese Excel export) before the Latin-1 fallback."""
    from core.cjk import decode_legacy_cjk

    found = decode_legacy_cjk(raw)
    if found is None:
        return None
    text, encoding, note = found
    notes.append(note)
    return text, encoding


def _decode_utf16_guess(raw: bytes, sample: bytes, path: Path, notes: list[str]) -> tuple[str, str]:
    # UTF-16 without a BOM puts a NUL beside every ASCII letter, always on the same side.
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = max(1, len(sample) // 2)
    encoding = (
        "utf-16-le" if odd > 0.3 * half and even == 0 else "utf-16-be" if even > 0.3 * half and odd == 0 else None
    )
    if encoding is None:
        raise _binary_error(path)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise _binary_error(path) from None
    notes.append("The file is UTF-16 without a byte-order mark; it was read as " + encoding.upper() + ".")
    return text, encoding


def _mostly_control_bytes(sample: bytes) -> bool:
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > 0.05 * len(sample)


def _binary_error(path: Path) -> DataError:
    return DataError(
        f"{path.name} is not a text file: it contains binary data (NUL or undecodable bytes).",
        hint=f"Export the data as {SUPPORTED}; renaming a spreadsheet to .csv is not enough.",
    )


def _read_text_format(fmt: str, text: str, path: Path, corpus: bool, notes: list[str]) -> Table:
    if fmt in ("csv", "tsv"):
        frame, delimiter, has_header = _read_delimited(text, path, fmt, notes)
        return Table(frame, path, fmt, None, delimiter, has_header, notes)
    if fmt in ("json", "jsonl"):
        frame, fmt = _read_json_text(text, path, fmt, notes)
        return Table(frame, path, fmt, None, None, True, notes)
    return Table(_read_txt(text, path, corpus, notes), path, "txt", None, None, False, notes)


# ---- CSV / TSV


def _read_delimited(text: str, path: Path, fmt: str, notes: list[str]) -> tuple[pd.DataFrame, str | None, bool]:
    delimiter = _sniff_delimiter(text, fmt)
    rows = _parse_rows(text, delimiter or "\x1f")
    if not rows:
        raise DataError("error.data.no_rows", hint="error.hint.need_data", name=path.name)
    _check_width(len(rows[0][1]), path)
    _check_quotes(rows, text, path)
    _check_ragged(rows, path)
    cells = _drop_blank_columns([r for _, r in rows])
    has_header = _looks_like_header(cells[0], cells[1:])
    if has_header:
        header, body = [c.strip() or f"column_{i + 1}" for i, c in enumerate(cells[0])], cells[1:]
        _check_duplicate_names(header, path)
        if not body:
            raise DataError(
                "error.data.header_only", hint="error.hint.rows_below_header", name=path.name, header=", ".join(header)
            )
    else:
        header, body = _default_names(cells), cells
        notes.append(f"The file has no header row; the columns were named {', '.join(header)}.")
    if delimiter and delimiter != {"csv": ",", "tsv": "\t"}[fmt]:
        notes.append(f"Columns are separated by {DELIMITER_NAMES[delimiter]}.")
    return _typed_frame(header, body), delimiter, has_header


def _check_width(width: int, path: Path) -> None:
    if width > MAX_COLUMNS:
        raise DataError(
            "error.data.too_wide", hint="error.hint.keep_columns", name=path.name, n=width, most=MAX_COLUMNS
        )


def _drop_blank_columns(cells: list[list[str]]) -> list[list[str]]:
    # A separator at the end of every line makes an unnamed column with nothing in it: drop it quietly.
    width = len(cells[0])
    blank = {j for j in range(width) if all(not r[j].strip() for r in cells)}
    if not blank or len(blank) == width:
        return cells
    kept = [j for j in range(width) if j not in blank]
    return [[r[j] for j in kept] for r in cells]


def _sniff_delimiter(text: str, fmt: str) -> str | None:
    """Pick the delimiter whose field count is most consistent across the first lines; None for one column."""
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    preferred = "\t" if fmt == "tsv" else ","
    try:
        sniffed = csv.Sniffer().sniff(sample[:8192], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = preferred
    best, best_key = None, None
    for d in DELIMITERS:
        _allow_fields_up_to(len(sample) + 1)
        widths = [len(r) for r in csv.reader(io.StringIO(sample), delimiter=d) if any(c.strip() for c in r)][:200]
        if not widths:
            continue
        mode, count = Counter(widths).most_common(1)[0]
        share = count / len(widths)
        if mode < 2 or (share < 0.6 and widths[0] != mode):
            continue
        key = (round(share, 2), d == preferred, d == sniffed, mode)
        if best_key is None or key > best_key:
            best, best_key = d, key
    return best


def _allow_fields_up_to(chars: int) -> None:
    # csv refuses a field over 131,072 characters with a raw error; the file-size cap already bounds a field, so
    # the limit is raised to the text's length (process-wide, only ever raised, so concurrent reads agree).
    if chars > csv.field_size_limit():
        csv.field_size_limit(min(chars, sys.maxsize // 2))


def _parse_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """Rows as (first line number, cells), skipping blank lines and rows of empty cells."""
    _allow_fields_up_to(len(text) + 1)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows, start = [], 1
    for row in reader:
        if "".join(row).strip():
            rows.append((start, row))
        start = reader.line_num + 1
    return rows


def _check_quotes(rows: list[tuple[int, list[str]]], text: str, path: Path) -> None:
    # csv reads an unclosed quote to the end of the file, so it always shows in the last record: a cell that
    # swallowed line breaks, with an odd number of quote characters from that record to the end.
    line, cells = rows[-1]
    if any("\n" in c for c in cells) and text.split("\n", line - 1)[-1].count('"') % 2 == 1:
        raise DataError("error.data.open_quote", hint="error.hint.close_quote", line=line, name=path.name)


def _check_ragged(rows: list[tuple[int, list[str]]], path: Path) -> None:
    expected = len(rows[0][1])
    bad = [(line, len(cells), cells) for line, cells in rows if len(cells) != expected]
    if not bad:
        return
    line, width, cells = bad[0]
    key = "error.data.ragged.many" if len(bad) > 1 else "error.data.ragged.one"
    hint = "error.hint.quote_on_line" if any("\n" in c for c in cells) else "error.hint.quote_separator"
    raise DataError(
        key, hint=hint, line=line, name=path.name, width=width, expected=expected, bad=len(bad), lines=len(rows)
    )


def _looks_like_header(first: list[str], body: list[list[str]]) -> bool:
    """Vote per column on whether the first row names the columns or is data."""
    cells = [c.strip() for c in first]
    if not body or any(_header_key(c) in KNOWN_NAMES for c in cells):
        return True
    votes = [_header_vote(cell, [r[j].strip() for r in body[:500]]) for j, cell in enumerate(cells)]
    # Numbers and class membership (+-2) are firm evidence; word shapes (+-1) only break ties.
    strong = sum(v for v in votes if abs(v) == 2)
    return strong > 0 if strong else sum(votes) >= 0


def _header_vote(cell: str, values: list[str]) -> int:
    filled = [v for v in values if v]
    if not cell or not filled:
        return 0
    if NUMBER.fullmatch(cell):
        return -2
    if all(NUMBER.fullmatch(v) for v in filled):
        return 2
    distinct = set(filled)
    if len(distinct) <= 20 and len(distinct) < len(filled):
        # A short categorical column: a header cell is a new word, a data cell is one of the classes.
        return -2 if cell in distinct else 2
    if cell in distinct:
        return -2
    if len(cell.split()) > 5 or len(cell) > 50:
        return -1
    wordy = sorted(len(v.split()) for v in filled)[len(filled) // 2] >= 3
    return (1 if NAME_LIKE.fullmatch(cell) and len(cell.split()) <= 4 else -1) if wordy else 0


def _default_names(cells: list[list[str]]) -> list[str]:
    width = len(cells[0])
    if width == 1:
        return ["text"]
    if width > 3:
        return [f"column_{i + 1}" for i in range(width)]
    label_at = _label_position(cells)
    texts = iter(["text", "text_pair"])
    return ["label" if i == label_at else next(texts) for i in range(width)]


def _label_position(cells: list[list[str]]) -> int:
    """The column of a headerless file that looks most like labels: numeric or few distinct values, short."""

    def score(j: int) -> tuple[int, float, int]:
        values = [r[j].strip() for r in cells[:1000] if r[j].strip()]
        numeric = bool(values) and all(NUMBER.fullmatch(v) for v in values)
        few = len(set(values)) <= max(2, min(MAX_CLASSES, len(values) // 2))
        mean_len = sum(map(len, values)) / max(1, len(values))
        return (2 * numeric + few, -mean_len, j)

    return max(range(len(cells[0])), key=score)


def _typed_frame(header: list[str], body: list[list[str]]) -> pd.DataFrame:
    """Blank cells become missing; columns whose filled cells are all numbers become numeric.

    One pass over the cells in plain Python: pandas' string methods cost ~10 ms of fixed overhead per call, so
    a column at a time they took 20 s for 1,000 columns of two rows.
    """
    columns: dict[str, pd.Series] = {}
    for j, name in enumerate(header):
        cells = [row[j] for row in body]
        stripped = [c.strip() for c in cells]
        filled = [s for s in stripped if s]
        if filled and all(NUMBER.fullmatch(s) for s in filled):
            columns[name] = pd.to_numeric(pd.Series([s or None for s in stripped], dtype=object))
        else:
            columns[name] = pd.Series([c if s else None for c, s in zip(cells, stripped)], dtype="str")
    return pd.DataFrame(columns)


# ---- JSON / JSON Lines


def _read_json_text(text: str, path: Path, fmt: str, notes: list[str]) -> tuple[pd.DataFrame, str]:
    if fmt == "jsonl":
        return _records_frame(_jsonl_records(text, path), path), "jsonl"
    try:
        obj = json.loads(text)
    except RecursionError:
        raise _too_deep(path) from None
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and text.lstrip().startswith("{"):
            notes.append("The file holds one JSON object per line (JSON Lines); it was read that way.")
            return _records_frame(_jsonl_records(text, path), path), "jsonl"
        raise DataError(
            "error.data.bad_json",
            hint="error.hint.fix_json",
            name=path.name,
            reason=err.msg,
            line=err.lineno,
            column=err.colno,
        ) from None
    return _records_frame(_json_records(obj, path, notes), path), "json"


def _jsonl_records(text: str, path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except RecursionError:
            raise _too_deep(path, f"Line {number} of ") from None
        except json.JSONDecodeError as err:
            raise DataError(
                "error.data.bad_jsonl_line",
                hint="error.hint.jsonl_line",
                line=number,
                name=path.name,
                reason=err.msg,
                column=err.colno,
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                "error.data.jsonl_not_object",
                hint="error.hint.jsonl_shape",
                line=number,
                name=path.name,
                kind=_json_kind(obj),
            )
        records.append(obj)
    return records


def _too_deep(path: Path, where: str = "") -> DataError:
    # Python's parser gives up (RecursionError) near 1,000 levels; a table is one or two levels deep.
    return DataError(
        f"{where}{path.name} is nested too deeply (lists or objects inside each other hundreds of times).",
        hint='A table is a list of flat records such as [{"text": "...", "label": "..."}]; export it again.',
    )


def _json_records(obj: Any, path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """Accept a list of records, a list of strings, {"data": [...]}-style wrappers and {column: [values]}."""
    if isinstance(obj, dict):
        obj = _unwrap_json_object(obj, path, notes)
    if not isinstance(obj, list):
        raise DataError("error.data.json_not_list", hint="error.hint.json_shape", name=path.name, kind=_json_kind(obj))
    if obj and all(isinstance(item, str) for item in obj):
        return [{"text": item} for item in obj]
    for index, item in enumerate(obj):
        if not isinstance(item, dict):
            raise DataError(
                "error.data.json_item_not_object",
                hint="error.hint.json_item_shape",
                item=index + 1,
                name=path.name,
                kind=_json_kind(item),
            )
    return obj


def _unwrap_json_object(obj: dict[str, Any], path: Path, notes: list[str]) -> Any:
    lists = {k: v for k, v in obj.items() if isinstance(v, list)}
    for key in ("data", "rows", "records", "examples", "train", "items", "instances"):
        if key in lists:
            notes.append(f"The rows were read from the '{key}' entry of the JSON object.")
            return lists[key]
    if len(lists) == 1 and len(obj) == 1:
        key = next(iter(lists))
        notes.append(f"The rows were read from the '{key}' entry of the JSON object.")
        return lists[key]
    if lists and len(lists) == len(obj) and len({len(v) for v in lists.values()}) == 1:
        notes.append("The JSON object holds one list per column; each list became a column.")
        return [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]
    return obj


def _json_kind(obj: Any) -> str:
    # Message keys, put in the reader's language where the error is shown (core.i18n.resolve).
    kinds = {dict: "error.kind.object", list: "error.kind.list", str: "error.kind.string", bool: "error.kind.bool"}
    return "error.kind.null" if obj is None else kinds.get(type(obj), "error.kind.number")


def _records_frame(records: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    if not records:
        raise DataError("error.data.no_rows", hint="error.hint.need_data", name=path.name)
    names: set[str] = set()
    for record in records:  # before pandas builds a frame of 100,000 columns
        names.update(record)
        if len(names) > MAX_COLUMNS:
            _check_width(len(names), path)
    from core.sft import chat_columns_to_json

    chat_columns_to_json(records)  # conversations (messages / ShareGPT) are the one nested value we read
    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        if frame[col].dtype == object:
            nested = frame[col].map(lambda v: isinstance(v, (dict, list)))
            if nested.any():
                raise _nested_error(str(col), path, f", first in row {int(nested.to_numpy().argmax()) + 1}")
    return frame


def _nested_error(column: str, path: Path, where: str = "") -> DataError:
    return DataError(
        f"Column '{column}' in {path.name} holds nested values (lists or objects){where}.",
        hint="Flatten it into plain text or number columns, or remove it, and save the file again.",
    )


# ---- Parquet


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq
    import pyarrow.types as pat

    try:
        schema = pq.read_schema(path)
    except Exception as err:  # pyarrow raises several types for a damaged file; all mean the same to a user
        raise DataError("error.data.bad_parquet", hint="error.hint.parquet_again", name=path.name, reason=err) from None
    _check_width(len(schema.names), path)
    _check_duplicate_names([str(n) for n in schema.names], path)
    for f in schema:
        if pat.is_nested(f.type):
            raise _nested_error(f.name, path)
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # same reason as above
        raise DataError("error.data.bad_parquet", hint="error.hint.parquet_again", name=path.name, reason=err) from None
    return frame.reset_index(drop=True)


# ---- Plain text


def _read_txt(text: str, path: Path, corpus: bool, notes: list[str]) -> pd.DataFrame:
    if corpus:
        chunks = _corpus_chunks(text)
        notes.append(
            f"The text was cut into {len(chunks):,} paragraphs or chunks of at most "
            f"{CORPUS_CHUNK_CHARS:,} characters for language modelling."
        )
        return pd.DataFrame({"text": chunks})
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    notes.append(f"Each non-empty line became one example ({len(lines):,} lines).")
    return pd.DataFrame({"text": lines})


def _corpus_chunks(text: str, limit: int = CORPUS_CHUNK_CHARS) -> list[str]:
    """Paragraphs (blank-line separated), each cut at line boundaries into chunks of at most ``limit`` chars."""
    chunks = []
    for paragraph in re.split(r"\n\s*\n", text):
        current: list[str] = []
        size = 0
        for line in paragraph.split("\n"):
            for piece in _split_long_line(line.rstrip(), limit):
                if current and size + len(piece) + 1 > limit:
                    chunks.append("\n".join(current))
                    current, size = [], 0
                current.append(piece)
                size += len(piece) + 1
        if any(line.strip() for line in current):
            chunks.append("\n".join(current))
    return [c.strip("\n") for c in chunks if c.strip()]


def _split_long_line(line: str, limit: int) -> list[str]:
    if len(line) <= limit:
        return [line] if line.strip() else []
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for word in line.split(" "):
        if current and size + 1 + len(word) > limit:
            pieces.append(" ".join(current))
            current, size = [], 0
        if len(word) > limit:  # one "word" longer than the limit (no spaces at all): cut it by index
            cuts = range(0, len(word), limit)
            pieces += [word[i : i + limit] for i in cuts][:-1]
            word = word[cuts[-1] :]
        current.append(word)
        size += len(word) + (1 if len(current) > 1 else 0)
    joined = " ".join(current)
    return pieces + ([joined] if joined.strip() else [])


# ---- Common finish


def _finish_frame(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    _check_width(len(frame.columns), path)
    frame.columns = [str(c).strip() or f"column_{i + 1}" for i, c in enumerate(frame.columns)]
    _check_duplicate_names(list(frame.columns), path)
    if len(frame) == 0:
        raise DataError("error.data.no_rows", hint="error.hint.need_data", name=path.name)
    return frame.reset_index(drop=True)


def _check_duplicate_names(names: list[str], path: Path) -> None:
    repeated = sorted(n for n, k in Counter(names).items() if k > 1)  # one pass: names.count was quadratic
    if repeated:
        shown = ", ".join(repr(n) for n in repeated)
        raise DataError("error.data.duplicate_columns", hint="error.hint.rename_columns", name=path.name, columns=shown)


# ----------------------------------------------------------------------------------------------------------
# Columns


def guess_columns(frame: pd.DataFrame, task: str) -> ColumnChoice:
    """Guess the text, second-text and label columns for a task (the user can override each)."""
    if len(frame.columns) == 0:
        raise DataError("error.data.no_columns", hint="error.hint.need_text_column")
    lower = _headers_by_key(frame.columns)
    if task == "generation":
        guessed = _guess_generation_columns(frame, lower)
        if guessed is not None:
            return guessed
    pairs = _generation_pairs() if task == "generation" else PAIR_NAMES
    for first, second in pairs:
        if first in lower and second in lower:
            label = None if task == "generation" else _guess_label(frame, task, {lower[first], lower[second]})
            return ColumnChoice(lower[first], lower[second], label)
    label = None if task == "generation" else _guess_label_by_name(frame, task, set())
    texts = [c for c in _text_columns(frame) if c != label]
    text = texts[0] if texts else str(frame.columns[0])
    if task != "generation" and label is None:
        label = _guess_label(frame, task, {text})
    return ColumnChoice(text, None, label)


def _guess_generation_columns(frame: pd.DataFrame, lower: dict[str, str]) -> ColumnChoice | None:
    """Chat data (a messages / conversations column), Alpaca (instruction, input, output), or a prompt/response
    pair with a system column; None: fall back to the generic pairs."""
    from core.sft import chat_column

    chat = chat_column(frame)
    if chat is not None:
        return ColumnChoice(chat)
    system = lower.get("system")
    if all(n in lower for n in ("instruction", "input", "output")):
        return ColumnChoice(lower["input"], lower["output"], instruction=lower["instruction"], system=system)
    if system is not None:
        for first, second in GENERATION_PAIRS:
            if first in lower and second in lower:
                return ColumnChoice(lower[first], lower[second], system=system)
    return None


def _header_key(name: object) -> str:
    """The lower-case English name a header stands for; Chinese headers map onto it ('标签' -> 'label')."""
    from core.cjk import header_key

    return header_key(name)


def _headers_by_key(columns) -> dict[str, str]:
    return {_header_key(c): str(c) for c in columns}


def _generation_pairs() -> tuple[tuple[str, str], ...]:
    from core.cjk import EXTRA_GENERATION_PAIRS

    return GENERATION_PAIRS + EXTRA_GENERATION_PAIRS


def _text_columns(frame: pd.DataFrame) -> list[str]:
    """String columns, longest average text first."""
    found = []
    for col in frame.columns:
        values = frame[col].dropna().head(1000)
        strings = [v for v in values if isinstance(v, str)]
        if strings and len(strings) >= 0.5 * len(values):
            found.append((sum(map(len, strings)) / len(strings), str(col)))
    return [col for _, col in sorted(found, key=lambda item: -item[0])]


def _guess_label_by_name(frame: pd.DataFrame, task: str, exclude: set[str]) -> str | None:
    lower = _headers_by_key(c for c in frame.columns if str(c) not in exclude)
    named = [lower[name] for name in LABEL_NAMES if name in lower]
    if task == "regression":  # a numeric 'score' beats a categorical 'label'
        named.sort(key=lambda c: not pd.api.types.is_numeric_dtype(frame[c]))
    return named[0] if named else None


def _guess_label(frame: pd.DataFrame, task: str, exclude: set[str]) -> str | None:
    named = _guess_label_by_name(frame, task, exclude)
    if named is not None:
        return named
    others = [str(c) for c in frame.columns if str(c) not in exclude and _header_key(c) not in ("id", "idx", "index")]
    if task == "regression":
        numeric = [c for c in others if pd.api.types.is_numeric_dtype(frame[c]) and not _is_counter(frame[c])]
        return numeric[-1] if numeric else None
    counts = [(frame[c].nunique(), -i, c) for i, c in enumerate(others)]
    usable = [item for item in counts if 2 <= item[0] <= MAX_CLASSES]
    return min(usable)[2] if usable else None


def _is_counter(series: pd.Series) -> bool:
    """A 0..n-1 or 1..n row number is an id, never a target."""
    values = series.dropna()
    return (
        len(values) > 2 and values.is_monotonic_increasing and values.is_unique and values.diff().dropna().eq(1).all()
    )


def validate_columns(
    frame: pd.DataFrame, columns: ColumnChoice, task: str, *, path_name: str = "error.word.the_file"
) -> None:
    """Raise DataError when the chosen columns cannot be used for the task."""
    _validate(frame, columns, task, path_name, whole_set=True)


def _validate(frame: pd.DataFrame, columns: ColumnChoice, task: str, path_name: str, *, whole_set: bool) -> None:
    # A separate validation/test file may hold one class only; class-count rules apply to training data.
    available = [str(c) for c in frame.columns]
    label = None if task == "generation" else columns.label
    roles = [
        ("error.role.text", columns.text),
        ("error.role.text_pair", columns.text_pair),
        ("error.role.label", label),
    ]
    if task == "generation":  # a chat's instruction and system columns must exist too
        roles += [("error.role.instruction", columns.instruction), ("error.role.system", columns.system)]
    for role, name in roles:
        if name is not None and name not in available:
            raise DataError(
                "error.data.no_such_column",
                hint="error.hint.available_columns",
                column=name,
                role=role,
                name=path_name,
                available=", ".join(available),
            )
    if columns.text_pair is not None and columns.text_pair == columns.text:
        raise DataError("error.data.pair_same", hint="error.hint.pair_columns", column=columns.text_pair)
    # Alpaca's input is often empty: then the instruction is the prompt.
    _check_text_column(frame, columns.instruction or columns.text, path_name)
    if columns.text_pair is not None:
        _check_text_column(frame, columns.text_pair, path_name)
    if task == "generation":
        return
    if label is None and len(available) == 1:
        # One column usually means a separator we do not split on (a colon, a space), not a missing label.
        raise DataError(
            "error.data.one_column",
            hint="error.hint.separators",
            task=TASKS.get(task, task),
            name=path_name,
            column=available[0],
        )
    if label is None:
        raise DataError(
            "error.data.no_label_column",
            hint="error.hint.pick_label",
            task=TASKS.get(task, task),
            name=path_name,
            available=", ".join(available),
        )
    if label in (columns.text, columns.text_pair):
        raise DataError("error.data.text_is_label", hint="error.hint.two_columns", column=label)
    _check_label_column(frame[label], label, task, path_name, whole_set)


def _column_finding(err: DataError) -> Finding:
    """The data check's line for unusable columns: the error's own message and hint, in the reader's language."""
    if not err.key:
        return _finding("problem", "check.title.columns", "check.columns.error", error=str(err))
    if not err.hint_key:
        return _finding("problem", "check.title.columns", "error.check.columns", problem=err.key, **err.params)
    params = {**err.params, "problem": err.key, "hint": err.hint_key}
    return _finding("problem", "check.title.columns", "error.check.columns_hint", **params)


def _check_text_column(frame: pd.DataFrame, name: str, path_name: str) -> None:
    series = frame[name]
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise DataError("error.data.text_numbers", hint="error.hint.sentence_column", column=name, name=path_name)
    if _as_text(series).str.strip().eq("").all():
        raise DataError("error.data.text_empty", hint="error.hint.text_column", column=name, name=path_name)


def _check_label_column(labels: pd.Series, name: str, task: str, path_name: str, whole_set: bool) -> None:
    filled = labels.dropna()
    if filled.empty:
        raise DataError("error.data.label_empty", hint="error.hint.label_column", column=name, name=path_name)
    if task == "classification":
        if whole_set:
            _check_classes(filled, name, path_name)
        return
    numbers = pd.to_numeric(filled, errors="coerce")
    bad = filled[numbers.isna()]
    if len(bad):
        examples = ", ".join(repr(str(v)) for v in bad.unique()[:3])
        raise DataError(
            "error.data.not_numbers",
            hint="error.hint.numeric_column",
            column=name,
            name=path_name,
            n=len(bad),
            examples=examples,
        )
    if whole_set and numbers.nunique() == 1:
        raise DataError(
            "error.data.constant_target",
            hint="error.hint.varying_targets",
            column=name,
            name=path_name,
            value=f"{numbers.iloc[0]:g}",
        )


def _check_classes(labels: pd.Series, name: str, path_name: str) -> None:
    keys = label_keys(labels)
    distinct = keys.nunique()
    if distinct == 1:
        raise DataError(
            "error.data.one_class", hint="error.hint.two_classes", column=name, name=path_name, label=keys.iloc[0]
        )
    if distinct > MAX_CLASSES:
        raise DataError(
            "error.data.too_many_classes",
            hint="error.hint.repeated_classes",
            column=name,
            name=path_name,
            n=distinct,
            most=MAX_CLASSES,
        )


def label_key(value: Any) -> str:
    """The class name of a label value: 1, 1.0 and "1" are all '1'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # numpy scalars
        return label_key(value.item())
    return str(value).strip()


def label_keys(series: pd.Series) -> pd.Series:
    """``label_key`` of every value (missing stays missing), computed once per distinct value for speed."""
    names = {value: label_key(value) for value in series.dropna().unique()}
    return series.map(names)


def _sorted_label_names(keys: pd.Series) -> list[str]:
    names = list(keys.unique())
    if all(NUMBER.fullmatch(n) for n in names):
        return sorted(names, key=float)
    return sorted(names)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _as_text(series: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return series.fillna("")
    return series.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).astype("str")


# ----------------------------------------------------------------------------------------------------------
# Checking


def check_data(
    frame: pd.DataFrame,
    columns: ColumnChoice,
    task: str,
    *,
    max_length: int = 128,
    tokenizer: Any = None,
    splits: Splits | None = None,
    budget_s: float | None = CHECK_SECONDS,
) -> DataReport:
    """Look the data over before training: rows, gaps, duplicates, balance, lengths and leakage.

    ``budget_s`` bounds the time a check may hold its thread (a page's server thread): the stages run cheapest
    first, and when the time is spent the rest are skipped with a finding that says so (None: no limit).
    """
    deadline = None if budget_s is None else time.monotonic() + budget_s
    findings = [_rows_finding(len(frame))]
    try:
        validate_columns(frame, columns, task)
        valid = True
    except DataError as err:
        findings.append(_column_finding(err))
        valid = False
        wanted = (columns.text, columns.text_pair, None if task == "generation" else columns.label)
        if any(c is not None and c not in frame.columns for c in wanted):
            return DataReport(findings, len(frame), {}, [], max_length, 0)
    texts = _as_text(frame[columns.text])
    pairs = _as_text(frame[columns.text_pair]) if columns.text_pair else None
    labels = frame[columns.label] if task != "generation" and columns.label else None
    findings += _empty_findings(texts, pairs)
    class_counts: dict[str, int] = {}
    if labels is not None and valid:
        findings += _label_findings(labels, task)
        if task == "classification":
            class_counts = _class_counts(labels)
            findings.append(_balance_finding(class_counts))
    findings += _long_text_findings(texts)
    findings += _language_findings(texts, task)
    lengths: list[int] = []
    truncated = 0
    formatted = task == "generation" and (columns.text_pair is not None or _is_chat(frame, columns))
    stages = ["duplicates", "lengths"] + (["leakage"] if splits is not None else [])
    for stage in stages:
        if _spent(deadline):
            findings.append(_cut_short(budget_s or 0.0, stages[stages.index(stage) :]))
            break
        if stage == "duplicates":
            findings += _duplicate_findings(texts, pairs, labels)
        elif stage == "lengths":
            lengths = token_lengths(
                texts.tolist(), None if pairs is None else pairs.tolist(), tokenizer, deadline=deadline
            )
            truncated = sum(n > max_length for n in lengths)
            if formatted:  # prompt/response or chat: the lengths of prompts and responses, answers cut
                from core import sft

                findings += (
                    [Finding(*line) for line in sft.findings(frame, columns, max_length, tokenizer)] if valid else []
                )
            else:
                findings.append(_length_finding(lengths, truncated, max_length, tokenizer is not None, task))
            if len(lengths) < len(texts):
                findings.append(_cut_short(budget_s or 0.0, [f"lengths beyond the first {len(lengths):,} rows"]))
        else:
            findings.append(_leakage_finding(splits, columns.text))
    return DataReport(findings, len(frame), class_counts, lengths, max_length, truncated)


def _spent(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _cut_short(budget_s: float, skipped: list[str]) -> Finding:
    return Finding(
        "warning",
        "Check cut short",
        f"This file is large: the data check stopped after {budget_s:g} s and skipped {', '.join(skipped)}. "
        "Training still reads every row and stops with a message if one is unusable.",
    )


def token_lengths(
    texts: list[str], pairs: list[str] | None = None, tokenizer: Any = None, *, deadline: float | None = None
) -> list[int]:
    """Tokens per row; without a tokenizer, whitespace words x 1.3 (a typical subword ratio for English) plus one
    per Chinese character.

    With a ``deadline`` (time.monotonic) the tokenizer stops between batches once it is reached: the list is
    then shorter than ``texts`` (the first rows only).
    """
    if tokenizer is None:
        return _estimated_token_lengths(texts, pairs)
    lengths: list[int] = []
    for start in range(0, len(texts), 1000):  # batches keep memory flat on large files
        if start and _spent(deadline):
            break
        batch = texts[start : start + 1000]
        second = pairs[start : start + 1000] if pairs is not None else None
        ids = tokenizer(batch, second, truncation=False)["input_ids"]
        lengths += [len(x) for x in ids]
    return lengths


def _estimated_token_lengths(texts: list[str], pairs: list[str] | None) -> list[int]:
    # A Chinese sentence has no spaces: core.cjk counts a token per Han character, 1.3 per word for the rest.
    from core.cjk import estimated_tokens

    if pairs is None:
        return [round(estimated_tokens(t)) for t in texts]
    return [round(estimated_tokens(t) + estimated_tokens(p)) for t, p in zip(texts, pairs, strict=True)]


def _rows_finding(rows: int) -> Finding:
    if rows == 0:
        return _finding("problem", "check.title.rows", "check.rows.none")
    if rows < 50:
        return _finding("warning", "check.title.rows", "check.rows.few", rows=rows)
    return _finding("ok", "check.title.rows", "check.rows.ok", rows=rows)


def _empty_findings(texts: pd.Series, pairs: pd.Series | None) -> list[Finding]:
    empty = texts.str.strip().eq("")
    if pairs is not None:
        empty |= pairs.str.strip().eq("")
    count = int(empty.sum())
    if count == 0:
        return [_finding("ok", "check.title.empty", "check.empty.none")]
    level = "problem" if count == len(texts) else "warning"
    return [_finding(level, "check.title.empty", "check.empty.some", n=count)]


def _label_findings(labels: pd.Series, task: str) -> list[Finding]:
    findings = []
    missing = int(labels.isna().sum())
    if missing:
        findings.append(_finding("warning", "check.title.missing_labels", "check.labels.missing", n=missing))
    if task == "regression":
        values = pd.to_numeric(labels, errors="coerce").dropna()
        low, high, mean = float(values.min()), float(values.max()), float(values.mean())
        findings.append(_finding("ok", "check.title.targets", "check.targets.range", low=low, high=high, mean=mean))
    return findings


def _class_counts(labels: pd.Series) -> dict[str, int]:
    keys = label_keys(labels.dropna())
    counts = keys.value_counts()
    return {name: int(counts[name]) for name in _sorted_label_names(keys)}


def _balance_finding(counts: dict[str, int]) -> Finding:
    smallest = min(counts, key=lambda k: counts[k])
    largest = max(counts, key=lambda k: counts[k])
    small, large = counts[smallest], counts[largest]
    if small < 2:
        return _finding("problem", "check.title.balance", "check.balance.single", smallest=smallest, n=small)
    if small < 0.2 * large:
        return _finding(
            "warning",
            "check.title.balance",
            "check.balance.unbalanced",
            smallest=smallest,
            largest=largest,
            small=small,
            large=large,
        )
    return _finding("ok", "check.title.balance", "check.balance.ok", classes=len(counts), small=small, large=large)


def _duplicate_findings(texts: pd.Series, pairs: pd.Series | None, labels: pd.Series | None) -> list[Finding]:
    keys = texts.str.strip() if pairs is None else texts.str.strip() + "\x1f" + pairs.str.strip()
    keys = keys[texts.str.strip() != ""]
    repeats = int(keys.duplicated().sum())
    if repeats == 0:
        return [_finding("ok", "check.title.duplicates", "check.duplicates.none")]
    findings = [_finding("warning", "check.title.duplicates", "check.duplicates.some", n=repeats)]
    if labels is not None:
        repeated = keys[keys.duplicated(keep=False)]  # only repeated texts can conflict; keeps the groupby small
        per_text = label_keys(labels.loc[repeated.index]).groupby(repeated).nunique()
        conflicting = per_text[per_text > 1]
        if len(conflicting):
            example = str(conflicting.index[0]).split("\x1f")[0][:60]
            findings.append(
                _finding(
                    "warning", "check.title.conflicts", "check.conflicts.some", n=len(conflicting), example=example
                )
            )
    return findings


def _length_finding(lengths: list[int], truncated: int, max_length: int, exact: bool, task: str) -> Finding:
    if not lengths:
        return _finding("ok", "check.title.length", "check.length.nothing")
    ordered = sorted(lengths)
    typical = ordered[len(ordered) // 2]
    if truncated == 0:
        key = "check.length.fits" if exact else "check.length.fits_estimated"
        return _finding("ok", "check.title.length", key, max_length=max_length, typical=typical)
    share = 100 * truncated / len(lengths)
    if task == "generation":  # language-model training packs texts into blocks, so long texts are not cut
        key = "check.length.packed" if exact else "check.length.packed_estimated"
        return _finding("ok", "check.title.length", key, n=truncated, share=share, max_length=max_length)
    key = "check.length.cut" if exact else "check.length.cut_estimated"
    return _finding(
        "warning", "check.title.length", key, n=truncated, share=share, max_length=max_length, longest=ordered[-1]
    )


def _long_text_findings(texts: pd.Series) -> list[Finding]:
    count = int((texts.str.len() > LONG_TEXT_CHARS).sum())
    if not count:
        return []
    return [_finding("warning", "check.title.long_texts", "check.long.some", n=count, limit=LONG_TEXT_CHARS)]


def _leakage_finding(splits: Splits, text_column: str) -> Finding:
    def texts_of(frame: pd.DataFrame) -> pd.Series:
        col = text_column if text_column in frame.columns else "text"
        return _as_text(frame[col]).str.strip() if col in frame.columns else pd.Series([], dtype="str")

    seen = set(texts_of(splits.train))
    in_val = int(texts_of(splits.validation).isin(seen).sum())
    in_test = int(texts_of(splits.test).isin(seen).sum())
    if in_val == 0 and in_test == 0:
        return _finding("ok", "check.title.leakage", "check.leakage.none")
    return _finding("warning", "check.title.leakage", "check.leakage.some", val=in_val, test=in_test)


def _language_findings(texts: pd.Series, task: str) -> list[Finding]:
    """Chinese text: lengths in characters, and which models read it (see core.cjk)."""
    from core.cjk import language_findings

    return language_findings(texts, task)


# ----------------------------------------------------------------------------------------------------------
# Splitting


def split_frame(
    frame: pd.DataFrame, *, val_fraction: float, test_fraction: float, stratify_column: str | None, seed: int
) -> Splits:
    """Cut a table into train / validation / test; the same seed gives the same split."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            "error.data.bad_fractions", hint="error.hint.fractions", val=f"{val_fraction:g}", test=f"{test_fraction:g}"
        )
    n = len(frame)
    n_test = math.ceil(n * test_fraction) if test_fraction else 0
    n_val = math.ceil(n * val_fraction) if val_fraction else 0
    if n - n_test - n_val < 1:
        raise DataError("error.data.too_few_to_split", hint="error.hint.lower_fractions", n=n)
    strata = _strata(frame, stratify_column)
    rest, test = _cut(frame, n_test, strata, seed)
    train, validation = _cut(rest, n_val, None if strata is None else strata.loc[rest.index], seed)
    return Splits(*(part.reset_index(drop=True) for part in (train, validation, test)))


def _strata(frame: pd.DataFrame, column: str | None) -> pd.Series | None:
    if column is None:
        return None
    if column not in frame.columns:
        raise DataError(
            "error.data.no_stratify_column",
            hint="error.hint.available",
            column=column,
            available=", ".join(map(str, frame.columns)),
        )
    strata = label_keys(frame[column]).fillna("(missing)")
    counts = strata.value_counts()
    lonely = counts[counts < 2]
    if len(lonely):
        raise DataError("error.data.lonely_class", hint="error.hint.lonely_class", label=lonely.index[0])
    return strata


def _cut(frame: pd.DataFrame, size: int, strata: pd.Series | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    if size == 0:
        return frame, frame.iloc[0:0]
    try:
        kept, held = train_test_split(frame, test_size=size, random_state=seed, shuffle=True, stratify=strata)
    except ValueError as err:  # sklearn's stratification limits (classes too small for the split sizes)
        raise DataError("error.data.stratify_failed", hint="error.hint.stratify_failed", reason=err) from None
    return kept, held


# ----------------------------------------------------------------------------------------------------------
# Preparing


def prepare_data(cfg: DataConfig, task: str) -> PreparedData:
    """Read, validate, clean, split and augment the data of a run into standardized frames."""
    notes: list[str] = []
    corpus = task == "generation"
    table = read_table(cfg.train_path, max_mb=cfg.max_file_mb, corpus=corpus)
    notes += table.notes
    columns = _chosen_columns(table.frame, cfg, task)
    validate_columns(table.frame, columns, task, path_name=table.path.name)
    main = _standardize(table.frame, columns, task, table.path.name, notes)
    if len(main) == 0:
        raise DataError("error.data.no_complete_row", hint="error.hint.fill_cells", name=table.path.name)
    label_names = _sorted_label_names(main["label"]) if task == "classification" else None
    splits = _split_main(main, cfg, task)
    parts = {"validation": splits.validation, "test": splits.test}
    for part, extra_path in (("validation", cfg.validation_path), ("test", cfg.test_path)):
        if extra_path:
            extra = read_table(extra_path, max_mb=cfg.max_file_mb, corpus=corpus)
            _validate(extra.frame, columns, task, extra.path.name, whole_set=False)
            parts[part] = _by_value(_standardize(extra.frame, columns, task, extra.path.name, notes), cfg.class_names)
            _check_known_labels(parts[part], label_names, extra.path.name, table.path.name)
    train = _augment_train(splits.train, cfg, notes)
    frames = [_encode_labels(f, task, label_names) for f in (train, parts["validation"], parts["test"])]
    return PreparedData(*frames, label_names=class_names(label_names, cfg.class_names), notes=notes)


def class_names(values: list[str] | None, names: dict[str, str]) -> list[str] | None:
    """The classes' names in label-id order: the user's name for a value, or the value itself.

    The ids follow the values found in the file (so naming classes never changes the split or the ids);
    only what the model calls them (id2label) and what every page shows changes.
    """
    if values is None:
        return None
    named = [names.get(v, v) for v in values]
    if len(set(named)) < len(named):
        raise DataError("error.data.same_class_name", hint="error.hint.class_names", names=named)
    return named


def _by_value(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """A new file's labels may be the values (0/1) or the names given to them: map names back to values."""
    if not names or "label" not in frame:
        return frame
    values = {name: value for value, name in names.items()}
    frame["label"] = frame["label"].map(lambda v: values.get(v, v))
    return frame


def prepare_frame_like_run(
    path: str | Path, cfg: Any, label_names: list[str] | None, keep_columns: bool = False
) -> pd.DataFrame:
    """Read a new file (e.g. a test set for a finished run) and standardize it the way the run's data was.

    ``cfg`` is the run's ``RunConfig``; labels are mapped to the run's ``label_names``. ``keep_columns``: the
    file's other columns come along (for metrics per group of a column).
    """
    data, task = cfg.data, cfg.model.task
    table = read_table(path, max_mb=data.max_file_mb, corpus=task == "generation")
    columns = _chosen_columns(table.frame, data, task)
    _validate(table.frame, columns, task, table.path.name, whole_set=False)
    frame = _standardize(table.frame, columns, task, table.path.name, [], keep_columns)
    if len(frame) == 0:
        raise DataError("error.data.no_usable_rows", name=table.path.name)
    names = getattr(data, "class_names", None) or {}
    if names and label_names is not None:
        # The run knows its classes by name; its ids follow the values in the file.
        frame = _by_value(frame, names)
        values = {name: value for value, name in names.items()}
        label_names = [values.get(n, n) for n in label_names]
    _check_known_labels(frame, label_names, table.path.name, None)
    return _encode_labels(frame, task, label_names)


def _chosen_columns(frame: pd.DataFrame, cfg: DataConfig, task: str) -> ColumnChoice:
    guessed = guess_columns(frame, task)
    text = cfg.text_column or guessed.text
    if not cfg.text_column and text == cfg.label_column:
        text = next((c for c in _text_columns(frame) if c != cfg.label_column), text)
    pair = cfg.text_pair_column if cfg.text_column else (cfg.text_pair_column or guessed.text_pair)
    label = None if task == "generation" else cfg.label_column or guessed.label
    if label is not None and label in (text, pair) and not cfg.label_column:
        label = _guess_label(frame, task, {text, pair or ""})
    if task != "generation":
        return ColumnChoice(text, pair, label)
    # An explicit text column means the user mapped the columns: their instruction/system choice stands.
    instruction = cfg.instruction_column if cfg.text_column else (cfg.instruction_column or guessed.instruction)
    system = cfg.system_column if cfg.text_column else (cfg.system_column or guessed.system)
    return ColumnChoice(text, pair, label, instruction, system)


def _is_chat(frame: pd.DataFrame, columns: ColumnChoice) -> bool:
    from core.sft import CHAT_COLUMNS

    return columns.text_pair is None and str(columns.text).strip().lower() in CHAT_COLUMNS


def _standardize(
    frame: pd.DataFrame, columns: ColumnChoice, task: str, name: str, notes: list[str], keep_columns: bool = False
) -> pd.DataFrame:
    """Columns text / text_pair / label; rows with an empty text or no label are dropped (and noted).
    ``keep_columns``: the other columns follow under their own names (unless a name is one of those three)."""
    if task == "generation" and (columns.text_pair or _is_chat(frame, columns)):
        from core.sft import standardize

        return standardize(frame, columns, name, notes)  # prompt/response or chat: see core.sft
    out = pd.DataFrame({"text": _as_text(frame[columns.text]).str.strip()})
    keep = out["text"] != ""
    if columns.text_pair:
        out["text_pair"] = _as_text(frame[columns.text_pair]).str.strip()
        keep &= out["text_pair"] != ""
    if (~keep).any():
        notes.append(_left_out(int((~keep).sum()), name, "with an empty text"))
    if task == "classification":
        out["label"] = label_keys(frame[columns.label])
    elif task == "regression":
        out["label"] = pd.to_numeric(frame[columns.label], errors="coerce").astype("float64")
    if "label" in out:
        missing = out["label"].isna() & keep
        if missing.any():
            notes.append(_left_out(int(missing.sum()), name, "without a label"))
        keep &= ~out["label"].isna()
    if keep_columns:
        used = {columns.text, columns.text_pair, columns.label}
        for col in frame.columns:
            if col not in used and str(col) not in ("text", "text_pair", "label"):
                out[str(col)] = frame[col]
    return out[keep].reset_index(drop=True)


def _left_out(n: int, name: str, why: str) -> str:
    return f"{_count(n, 'row', 'rows')} of {name} {why} {'was' if n == 1 else 'were'} left out."


def _split_main(main: pd.DataFrame, cfg: DataConfig, task: str) -> Splits:
    val_fraction = 0.0 if cfg.validation_path else cfg.val_fraction
    test_fraction = 0.0 if cfg.test_path else cfg.test_fraction
    stratify = "label" if task == "classification" and cfg.stratify else None
    if not val_fraction and not test_fraction:
        return Splits(main, main.iloc[0:0].copy(), main.iloc[0:0].copy())
    return split_frame(
        main, val_fraction=val_fraction, test_fraction=test_fraction, stratify_column=stratify, seed=cfg.split_seed
    )


def _check_known_labels(frame: pd.DataFrame, label_names: list[str] | None, name: str, train: str | None) -> None:
    """Labels of ``name`` the training file ``train`` (None: the run's training data) never has."""
    if label_names is None:
        return
    unseen = sorted(set(frame["label"]) - set(label_names))
    if unseen:
        shown = ", ".join(repr(u) for u in unseen[:10])
        key = "error.data.unseen_labels.file" if train else "error.data.unseen_labels.run"
        raise DataError(key, hint="error.hint.unseen_labels", name=name, labels=shown, train=train)


def _augment_train(train: pd.DataFrame, cfg: DataConfig, notes: list[str]) -> pd.DataFrame:
    if cfg.augment_multiplier <= 0 or not cfg.augment_ops:
        return train
    from core.augment import augment_frame

    augmented = augment_frame(train, list(cfg.augment_ops), cfg.augment_multiplier, cfg.split_seed)
    notes.append(
        f"Added {len(augmented) - len(train):,} augmented training examples ({', '.join(cfg.augment_ops)}); "
        "validation and test were left as they are."
    )
    return augmented


def _encode_labels(frame: pd.DataFrame, task: str, label_names: list[str] | None) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    if task == "classification" and label_names is not None:
        ids = {name: i for i, name in enumerate(label_names)}
        frame["label"] = frame["label"].map(ids).astype("int64")
    elif task == "regression":
        frame["label"] = frame["label"].astype("float64")
    return frame


def model_finding(path: Any, text_column: str | None, task: str) -> Any:
    """The 'Model for Chinese' finding for a saved dataset file, or None when its text is not mostly Chinese."""
    from core.cjk import language_findings

    frame = read_table(path, corpus=task == "generation").frame
    column = text_column if text_column in frame.columns else guess_columns(frame, task).text
    findings = language_findings(frame[column].dropna().astype(str), task)
    return next((f for f in findings if f.title_key == "check.title.chinese_model"), None)


def estimated_train_rows(data_cfg) -> int | None:
    """Training rows a DataConfig will give (rows of the file less the held-out shares); None if unreadable.

    The CLI has no dataset record with a row count, so it reads the file (the pre-flight check reads it anyway).
    """
    try:
        rows = len(read_table(data_cfg.train_path, max_mb=data_cfg.max_file_mb).frame)
    except Exception:  # noqa: BLE001 - a bad file is reported by the pre-flight check, with its message
        return None
    held = (0.0 if data_cfg.validation_path else data_cfg.val_fraction) + (
        0.0 if data_cfg.test_path else data_cfg.test_fraction
    )
    return max(1, int(rows * (1 - held)))
