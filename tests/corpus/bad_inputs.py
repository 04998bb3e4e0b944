"""Malformed data files, generated on demand so nothing binary lives in git.

The unit tests write them into ``tmp_path``; to try them by hand in the app, write them to a folder:

    python tests/corpus/bad_inputs.py /tmp/bad-inputs
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BadInput:
    name: str
    """File name to write (the error message must mention it)."""
    content: bytes | Callable[[Path], None] | None
    """The bytes, a function that writes the file, or None for a file that does not exist."""
    expect: tuple[str, ...]
    """Pieces the DataError message must contain (compared case-insensitively)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra arguments for read_table."""


def _folder(path: Path) -> None:
    path.mkdir()


def _nested_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": ["good", "bad"], "tags": [["a", "b"], ["c"]], "label": [1, 0]})
    pq.write_table(table, path)


def _duplicate_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays(
        [pa.array(["a", "b"]), pa.array([1, 0]), pa.array(["c", "d"])], ["text", "label", "text"]
    )
    pq.write_table(table, path)


def _jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


_GOOD_LINE = json.dumps({"text": "fine", "label": 1})
# High bytes with many control characters: not UTF-8, and not plausible Latin-1 text either.
_CONTROL_NOISE = bytes((i * 37 + 11) % 32 for i in range(600)).replace(b"\x00", b"\x01") + bytes(range(0x80, 0x100))

BAD_INPUTS: list[BadInput] = [
    BadInput("missing.csv", None, ("no file at",)),
    BadInput("folder.csv", _folder, ("folder",)),
    BadInput("empty.csv", b"", ("empty",)),
    BadInput("blank.csv", b"\n   \n\t\n", ("empty",)),
    BadInput("header_only.csv", b"text,label\n", ("header row", "no data rows")),
    BadInput("header_blank_lines.tsv", b"text\tlabel\n\n\n", ("header row", "no data rows")),
    BadInput("binary_nul.csv", b"text,label\n\x00\x01\x02\x03\xff\xfe\x00\x00junk\x00", ("binary",)),
    BadInput("control_bytes.csv", _CONTROL_NOISE, ("binary",)),
    BadInput("workbook.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, ("excel",)),
    BadInput("report.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", ("pdf",)),
    BadInput("ragged.csv", b"text,label\na,1\nb,2\nc,3,extra\nd,4\n", ("line 4", "3 fields", "first line has 2")),
    BadInput("unclosed_quote.csv", b'text,label\nfine,1\n"broken,0\nmore,1\n', ("line 3", "never closed")),
    BadInput(
        "too_big.csv",
        b"text,label\n" + b"some words here,1\n" * 200,
        ("3.5 kb", "larger than the limit of 1.0 kb"),
        {"max_mb": 0.001},
    ),
    BadInput("scalar.json", b"42", ("not a list of records", "a number")),
    BadInput("config.json", b'{"name": "x", "version": 2}', ("not a list of records", "an object")),
    BadInput("syntax.json", b'[{"text": "a", "label": 1},\n {"text": "b" "label": 2}]', ("not valid json", "line 2")),
    BadInput("numbers.json", b"[1, 2, 3]", ("item 1", "a number")),
    BadInput("empty_list.json", b"[]", ("no rows",)),
    BadInput("nested.json", b'[{"text": "a", "meta": {"x": 1}, "label": 1}]', ("'meta'", "nested")),
    BadInput("bad_line.jsonl", _jsonl(_GOOD_LINE, _GOOD_LINE, '{"text": "oops", "label": }', _GOOD_LINE), ("line 3",)),
    BadInput("list_line.jsonl", _jsonl(_GOOD_LINE, '["text", 1]'), ("line 2", "a list")),
    BadInput("blank.jsonl", b"\n\n  \n", ("empty",)),
    BadInput("nested.parquet", _nested_parquet, ("'tags'", "nested")),
    BadInput("duplicate.parquet", _duplicate_parquet, ("more than one column named 'text'",)),
    BadInput("fake.parquet", b"text,label\na,1\n", ("parquet",)),
    BadInput("truncated.parquet", b"PAR1" + b"\x15\x04" * 20, ("could not be read as parquet",)),
    BadInput("duplicate_columns.csv", b"text,label,text\na,1,b\nc,0,d\n", ("more than one column named 'text'",)),
    BadInput("notes.docx", b"hello", ("'.docx' extension", "format is unknown")),
    BadInput("noextension", b"text,label\na,1\n", ("no extension",)),
    BadInput("blank_lines.txt", b"\n\n   \n\n", ("empty",)),
    BadInput("utf16_odd.csv", b"\xff\xfet\x00e\x00x\x00t", ("binary",)),
]


def write_bad_input(case: BadInput, folder: Path) -> Path:
    path = folder / case.name
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        case.content(path)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    out.mkdir(parents=True, exist_ok=True)
    for case in BAD_INPUTS:
        if case.content is not None:
            write_bad_input(case, out)
    print(f"Wrote {sum(c.content is not None for c in BAD_INPUTS)} files to {out}")
