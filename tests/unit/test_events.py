"""The metrics sink protocol and the JSONL reader that pages poll while training writes."""

from __future__ import annotations

import json

from core.events import JsonlSink, ListSink, read_jsonl


def test_jsonl_sink_writes_whole_flushed_lines(tmp_path):
    path = tmp_path / "sub" / "metrics.jsonl"
    sink = JsonlSink(path)
    sink.log({"step": 1, "loss": 0.5})
    # Flushed at once: another reader sees the line before the sink is closed.
    assert path.read_text() == '{"step":1,"loss":0.5}\n'
    sink.log({"step": 2, "loss": float("nan"), "lr": float("inf")})
    sink.close()
    sink.close()  # closing twice is harmless (train() closes in a finally)
    lines = path.read_text().splitlines()
    assert json.loads(lines[1]) == {"step": 2, "loss": "nan", "lr": "inf"}  # JSON has no NaN; the line stays valid


def test_jsonl_sink_appends_to_an_existing_file(tmp_path):
    path = tmp_path / "m.jsonl"
    for step in (1, 2):
        sink = JsonlSink(path)
        sink.log({"step": step})
        sink.close()
    assert read_jsonl(path)[0] == [{"step": 1}, {"step": 2}]


def test_list_sink_keeps_copies_and_forwards(tmp_path):
    inner = ListSink()
    outer = ListSink(forward=inner)
    record = {"step": 1}
    outer.log(record)
    record["step"] = 99
    assert outer.records == [{"step": 1}] and inner.records == [{"step": 1}]  # copies, not the caller's dict


def test_read_jsonl_skips_a_partial_last_line_and_resumes_from_the_offset(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step":1}\n{"step":2}\n{"step":3,"lo')
    records, offset = read_jsonl(path)
    assert records == [{"step": 1}, {"step": 2}]
    assert offset == len(b'{"step":1}\n{"step":2}\n')
    with open(path, "ab") as fh:  # the writer finishes its line and adds one more
        fh.write(b'ss":0.1}\n{"step":4}\n')
    more, offset2 = read_jsonl(path, offset)
    assert more == [{"step": 3, "loss": 0.1}, {"step": 4}]
    assert offset2 == path.stat().st_size
    assert read_jsonl(path, offset2) == ([], offset2)


def test_read_jsonl_skips_a_torn_line_in_the_middle(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step":1}\n{"step":2,"lo\n\n{"step":3}\n')
    records, offset = read_jsonl(path)
    assert records == [{"step": 1}, {"step": 3}]
    assert offset == path.stat().st_size


def test_read_jsonl_of_a_missing_or_unfinished_file(tmp_path):
    assert read_jsonl(tmp_path / "none.jsonl") == ([], 0)
    half = tmp_path / "half.jsonl"
    half.write_bytes(b'{"step":1')
    assert read_jsonl(half) == ([], 0)
