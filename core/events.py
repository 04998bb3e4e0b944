"""The engine reports through a tiny sink protocol; the JSONL file is the source of truth."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol


class MetricsSink(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; keep the line parseable and say what happened.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonlSink:
    """Append one whole, flushed line per record, so a reader never sees half a record except the last line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run

    def log(self, record: dict[str, Any]) -> None:
        line = json.dumps({k: _clean(v) for k, v in record.items()}, separators=(",", ":"))
        self._fh.write(line + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class ListSink:
    """Keeps records in memory (tests, benchmarks) and optionally forwards them."""

    def __init__(self, forward: MetricsSink | None = None):
        self.records: list[dict[str, Any]] = []
        self.forward = forward

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(dict(record))
        if self.forward is not None:
            self.forward.log(record)

    def close(self) -> None:
        if self.forward is not None:
            self.forward.close()


def read_jsonl(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Records from byte ``offset`` on, and the offset after the last whole line (a partial line is left)."""
    path = Path(path)
    if not path.exists():
        return [], offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    try:
        # One parse of the whole chunk is about 2x faster than a parse per line (100,000 lines: 0.4 s of CPU
        # instead of 0.9 s); a torn or blank line makes it fail, and the line-by-line path below handles that.
        records = json.loads(b"[" + data[:end].replace(b"\n", b",") + b"]")
        if all(isinstance(r, dict) for r in records):
            return records, offset + end + 1
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError from bytes a crash left, or nesting
        pass
    records = []
    for raw in data[: end + 1].splitlines():
        if raw.strip():
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError):
                continue  # a torn or garbled line from a killed writer: skip it, keep the rest
            # Valid JSON that is not a record (null, 12345, a list) would break every reader that calls .get():
            # it is skipped like a torn line.
            if isinstance(record, dict):
                records.append(record)
    return records, offset + end + 1
