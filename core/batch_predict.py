"""Predict a whole unlabelled file: stream it in chunks, write the same rows plus the predictions as CSV.

Why chunks: a 100 MB file read whole, then copied into a frame, then into an output frame, would sit in memory
three times. Here the input is read ``chunk_rows`` rows at a time (pandas' chunked CSV / JSON Lines readers,
pyarrow's Parquet batches, lines of a .txt) and each chunk's output is appended to the CSV at once, so at any
moment only one chunk is held. A JSON array file is the one format that cannot be streamed: it is read whole.

Rows whose text is empty are never dropped: they stay in the output with empty predictions and a note in the
``prediction_note`` column, and the summary counts them and names the first few row numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DataError

HEAD_BYTES = 256 * 1024  # enough lines to detect the encoding, separator and header as the Data page does
NOTE_COLUMN = "prediction_note"
EMPTY_NOTE = "empty text: not predicted"


@dataclass
class FileLayout:
    """What was detected about an input file, from its first lines only."""

    path: Path
    format: str
    columns: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    has_header: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass
class BatchSummary:
    """What a whole-file prediction did; the rows themselves are in ``output``."""

    output: Path
    rows: int
    predicted: int
    bad_rows: int
    bad_examples: list[int]
    """1-based row numbers (of the data, header excluded) of the first few rows that were not predicted."""
    columns: list[str]
    """The output's columns: the input's, then the prediction columns."""

    def message(self) -> str:
        text = f"Predicted {self.predicted:,} of {self.rows:,} rows."
        if self.bad_rows:
            shown = ", ".join(str(n) for n in self.bad_examples)
            more = " ..." if self.bad_rows > len(self.bad_examples) else ""
            one = self.bad_rows == 1
            text += (
                f" {self.bad_rows:,} {'row has' if one else 'rows have'} an empty text and "
                f"{'was' if one else 'were'} not predicted (row{'' if one else 's'} {shown}{more}); "
                f"{'it is' if one else 'they are'} kept in the output with '{EMPTY_NOTE}' in the {NOTE_COLUMN} column."
            )
        return text


def inspect_file(path: str | Path, max_mb: float = 2000.0) -> FileLayout:
    """Detect the format, encoding, separator, header and column names from the start of the file."""
    from core import data

    path = Path(path)
    if not path.is_file():
        raise DataError("error.data.no_file", hint="error.hint.check_path", path=path)
    size = path.stat().st_size
    if size == 0:
        raise DataError("error.data.zero_bytes", hint="error.hint.need_data", name=path.name)
    if size > max_mb * 1024 * 1024:
        raise DataError("error.batch.too_large", hint="error.hint.split_file", name=path.name, limit=f"{max_mb:,.0f}")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    fmt, notes = data._detect_format(path, head)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return FileLayout(path, fmt, [str(c) for c in pq.ParquetFile(path).schema_arrow.names], notes=notes)
    if size > len(head):
        head = head[: head.rfind(b"\n") + 1] or head  # whole lines only: a cut character would look like Latin-1
    text, encoding = data._decode(head, path, notes)
    if fmt == "json":
        return FileLayout(path, fmt, list(data.read_table(path, max_mb=max_mb).frame.columns), encoding, notes=notes)
    table = data._read_text_format(fmt, text, path, False, notes)
    return FileLayout(
        path, table.format, [str(c) for c in table.frame.columns], encoding, table.delimiter, table.has_header, notes
    )


def read_chunks(layout: FileLayout, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows, ``chunk_rows`` at a time, as frames of strings with the layout's column names."""
    path, fmt = layout.path, layout.format
    if fmt in ("csv", "tsv"):
        kwargs = {"header": 0} if layout.has_header else {"header": None, "names": layout.columns}
        reader = pd.read_csv(
            path,
            sep=layout.delimiter or "\x1f",
            encoding=layout.encoding,
            dtype=str,
            keep_default_na=False,
            chunksize=chunk_rows,
            skip_blank_lines=True,
            **kwargs,
        )
        for chunk in reader:
            chunk.columns = layout.columns[: len(chunk.columns)]
            yield chunk
    elif fmt == "jsonl":
        yield from pd.read_json(path, lines=True, dtype=False, chunksize=chunk_rows, encoding=layout.encoding)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    elif fmt == "json":
        from core.data import read_table

        frame = read_table(path, max_mb=1e9).frame
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start : start + chunk_rows]
    else:  # txt: one text per line
        lines: list[str] = []
        with open(path, encoding=layout.encoding or "utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                if len(lines) == chunk_rows:
                    yield pd.DataFrame({layout.columns[0]: lines})
                    lines = []
        if lines:
            yield pd.DataFrame({layout.columns[0]: lines})


def estimate_rows(layout: FileLayout) -> int:
    """About how many rows the file has (exact for Parquet; newlines otherwise), for the progress bar."""
    if layout.format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(layout.path).metadata.num_rows)
    lines = 0
    with open(layout.path, "rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
    return max(1, lines - (1 if layout.has_header and layout.format in ("csv", "tsv") else 0))


def output_columns(task: str, label_names: list[str] | None, taken: list[str]) -> dict[str, object]:
    """Names of the prediction columns; a name the input already uses gets a suffix so nothing is overwritten."""

    def free(name: str) -> str:
        out, n = name, 2
        while out in taken:
            out, n = f"{name}_{n}", n + 1
        taken.append(out)
        return out

    if task == "generation":
        return {"response": free("generated_response"), "note": free(NOTE_COLUMN)}
    if task == "regression":
        return {"value": free("predicted_value"), "note": free(NOTE_COLUMN)}
    names = label_names or ["0", "1"]
    return {
        "label": free("predicted_label"),
        "probs": [free(f"probability_{name}") for name in names],
        "note": free(NOTE_COLUMN),
    }


def _texts(chunk: pd.DataFrame, column: str) -> pd.Series:
    from core.data import _as_text

    return _as_text(chunk[column]).str.strip()


def predict_file(
    bundle,
    path: str | Path,
    output: str | Path,
    *,
    text_column: str | None = None,
    pair_column: str | None = None,
    max_length: int = 128,
    chunk_rows: int = 2000,
    batch_size: int = 64,
    generation=None,
    device: str = "cpu",
    on_progress: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Predict every row of ``path`` with ``bundle`` and write the rows plus predictions to ``output`` (CSV).

    ``on_progress(rows_done, rows_estimated)`` is called after each chunk. ``generation``: GenerationSettings
    for a generation model (default: greedy, 64 new tokens).
    """
    layout = inspect_file(path)
    text_column = text_column or _guess_text(layout)
    for name, role in ((text_column, "error.role.text"), (pair_column, "error.role.text_pair")):
        if name and name not in layout.columns:
            raise DataError(
                "error.data.no_such_column",
                hint="error.hint.available_columns",
                column=name,
                role=role,
                name=layout.path.name,
                available=", ".join(layout.columns),
            )
    names = output_columns(bundle.task, bundle.label_names, list(layout.columns))
    total = estimate_rows(layout)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.part")
    rows = predicted = bad = 0
    bad_examples: list[int] = []
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            for i, chunk in enumerate(read_chunks(layout, chunk_rows)):
                chunk = chunk.reset_index(drop=True)
                texts = _texts(chunk, text_column)
                ok = texts != ""
                if pair_column:
                    ok &= _texts(chunk, pair_column) != ""
                out = _predict_chunk(
                    bundle, chunk, texts, ok, pair_column, names, max_length, batch_size, generation, device
                )
                out.to_csv(fh, index=False, header=i == 0, quoting=csv.QUOTE_MINIMAL)
                bad_rows = np.flatnonzero(~ok.to_numpy())
                bad_examples += [rows + int(j) + 1 for j in bad_rows[: max(0, 10 - len(bad_examples))]]
                rows += len(chunk)
                bad += len(bad_rows)
                predicted += int(ok.sum())
                if on_progress:
                    on_progress(rows, max(total, rows))
        if rows == 0:
            raise DataError("error.data.no_rows", hint="error.hint.need_data", name=layout.path.name)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return BatchSummary(output, rows, predicted, bad, bad_examples, [*layout.columns, *_flat(names)])


def _guess_text(layout: FileLayout) -> str:
    from core.data import TEXT_NAMES

    lowered = {c.lower(): c for c in layout.columns}
    return next((lowered[n] for n in TEXT_NAMES if n in lowered), layout.columns[0])


def _flat(names: dict[str, object]) -> list[str]:
    out: list[str] = []
    for value in names.values():
        out.extend(value if isinstance(value, list) else [value])
    return out


def _predict_chunk(bundle, chunk, texts, ok, pair_column, names, max_length, batch_size, generation, device):
    """The chunk with its prediction columns added; rows that are not ``ok`` get empty cells and the note."""
    out = chunk.copy()
    good = texts[ok].tolist()
    pairs = _texts(chunk, pair_column)[ok].tolist() if pair_column else None
    note = pd.Series("", index=chunk.index, dtype=object)
    note[~ok] = EMPTY_NOTE
    if bundle.task == "generation":
        response = pd.Series("", index=chunk.index, dtype=object)
        if good:
            response[ok] = _generate(bundle, good, generation, batch_size, device)
        out[names["response"]] = response
    else:
        from core.generation import predict_proba

        probs = (
            predict_proba(bundle, good, pairs, batch_size=batch_size, max_length=max_length, device=device)
            if good
            else None
        )
        if bundle.task == "regression":
            value = pd.Series(np.nan, index=chunk.index)
            if probs is not None:
                value[ok] = probs[:, 0]
            out[names["value"]] = value
        else:
            labels = bundle.label_names or [str(i) for i in range(len(names["probs"]))]
            label = pd.Series("", index=chunk.index, dtype=object)
            if probs is not None:
                label[ok] = [labels[int(k)] for k in probs.argmax(axis=1)]
            out[names["label"]] = label
            for k, column in enumerate(names["probs"]):
                col = pd.Series(np.nan, index=chunk.index)
                if probs is not None:
                    col[ok] = np.round(probs[:, k], 6)
                out[column] = col
    out[names["note"]] = note
    return out


def _generate(bundle, prompts: list[str], settings, batch_size: int, device: str) -> list[str]:
    from core.generation import GenerationSettings, generate_batch

    settings = settings or GenerationSettings(max_new_tokens=64)
    step = max(1, min(batch_size, 16))  # generation holds a growing cache per prompt: smaller batches
    out: list[str] = []
    for start in range(0, len(prompts), step):
        out += generate_batch(bundle, prompts[start : start + step], settings, device=device)
    return out
