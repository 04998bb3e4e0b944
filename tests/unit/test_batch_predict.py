"""Whole-file prediction: same rows plus predictions, streamed in chunks, bad rows kept and reported."""

from __future__ import annotations

import json
import resource
import time
import tracemalloc

import pandas as pd
import pytest

from core.batch_predict import EMPTY_NOTE, predict_file
from core.cli import main
from core.errors import DataError
from core.generation import predict_proba
from core.models import load_for_inference
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config, toy_sentiment_rows


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_bert_dir):
    folder = tmp_path_factory.mktemp("batch")
    csv = folder / "toy.csv"
    csv.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in toy_sentiment_rows(240)), encoding="utf-8")
    config = tiny_run_config(csv, tiny_bert_dir, max_steps=3)
    run = RunStore(folder / "runs").create(config)
    assert train(config, run).state == "finished"
    return run


def test_csv_rows_kept_with_label_probabilities_and_bad_rows(tiny_run, tmp_path):
    bundle = load_for_inference(tiny_run.model_dir)
    src = tmp_path / "new.csv"
    # An id column to carry through, a quoted comma, an empty text in the middle and one of only spaces.
    src.write_text(
        'id,review\n1,"a wonderful, moving film"\n2,\n3,an awful dull plot\n4,   \n5,lovely\n', encoding="utf-8"
    )
    summary = predict_file(bundle, src, tmp_path / "out.csv", text_column="review", chunk_rows=2)
    out = pd.read_csv(tmp_path / "out.csv", dtype={"review": str}, keep_default_na=False)
    assert list(out.columns) == [
        "id",
        "review",
        "predicted_label",
        "probability_negative",
        "probability_positive",
        "prediction_note",
    ]
    assert out["id"].tolist() == [1, 2, 3, 4, 5]  # every row, in order, none dropped
    assert (summary.rows, summary.predicted, summary.bad_rows, summary.bad_examples) == (5, 3, 2, [2, 4])
    assert "2 rows have an empty text" in summary.message() and "rows 2, 4" in summary.message()
    assert out.loc[[1, 3], "prediction_note"].tolist() == [EMPTY_NOTE] * 2
    assert out.loc[[1, 3], "predicted_label"].tolist() == ["", ""]
    # The probabilities are the Playground's for the same texts.
    texts = ["a wonderful, moving film", "an awful dull plot", "lovely"]
    expected = predict_proba(bundle, texts, max_length=32)
    got = out.loc[[0, 2, 4], ["probability_negative", "probability_positive"]].astype(float).to_numpy()
    assert abs(got - expected).max() < 1e-5
    assert out.loc[[0, 2, 4], "predicted_label"].tolist() == [
        ["negative", "positive"][int(p.argmax())] for p in expected
    ]


def test_jsonl_parquet_txt_and_name_clash(tiny_run, tmp_path):
    bundle = load_for_inference(tiny_run.model_dir)
    rows = [{"text": "great film", "predicted_label": "mine"}, {"text": "boring", "predicted_label": "x"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    (tmp_path / "a.txt").write_text("great film\nboring\n", encoding="utf-8")
    for name in ("a.jsonl", "a.parquet"):
        summary = predict_file(bundle, tmp_path / name, tmp_path / f"{name}.csv")
        out = pd.read_csv(tmp_path / f"{name}.csv")
        # The input's own 'predicted_label' is kept; ours gets a suffix.
        assert out["predicted_label"].tolist() == ["mine", "x"]
        assert set(out["predicted_label_2"]) <= {"negative", "positive"}
        assert summary.rows == 2
    predict_file(bundle, tmp_path / "a.txt", tmp_path / "t.csv")
    assert pd.read_csv(tmp_path / "t.csv")["text"].tolist() == ["great film", "boring"]
    with pytest.raises(DataError, match="no column 'nope'"):
        predict_file(bundle, tmp_path / "a.jsonl", tmp_path / "x.csv", text_column="nope")
    assert not (tmp_path / "x.csv").exists()


def test_cli_predict_file_and_text_mode(tiny_run, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("text\ngreat film\nawful plot\n", encoding="utf-8")
    ws = ["--workspace", str(tiny_run.dir.parent.parent)]
    out = tmp_path / "out.csv"
    assert main([*ws, "predict", tiny_run.id, "--file", str(src), "--output", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 2 and summary["bad_rows"] == 0
    assert pd.read_csv(out).columns.tolist() == summary["columns"]
    # The old --text mode still prints one JSON line per text.
    assert main([*ws, "predict", tiny_run.id, "--text", "great film"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["label"] in ("negative", "positive") and set(line["probabilities"]) == {"negative", "positive"}


@pytest.fixture
def one_thread():
    """One torch thread: on 2 cores shared with other work, two threads' barriers cost 10x the CPU time of one
    (10,000 rows: 18.8 s of CPU with 2 threads under load, 1.6 s with one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow  # 110,000 rows through a model: about 30 s of CPU under tracemalloc
def test_100k_rows_stream_in_bounded_memory(tiny_run, tmp_path, one_thread):
    bundle = load_for_inference(tiny_run.model_dir)
    base = [t for t, _ in toy_sentiment_rows(1000, seed=5)]

    def measure(rows: int):
        src = tmp_path / f"rows-{rows}.csv"
        with open(src, "w", encoding="utf-8") as fh:
            fh.write("id,text\n")
            for i in range(rows):
                fh.write(f"{i},{base[i % 1000]} {i}\n")
        done: list[int] = []
        tracemalloc.start()
        started = time.process_time()
        summary = predict_file(
            bundle,
            src,
            tmp_path / f"out-{rows}.csv",
            chunk_rows=5000,
            batch_size=256,
            on_progress=lambda d, t: done.append(d),
        )
        cpu = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert summary.rows == summary.predicted == rows
        assert done[-1] == rows and len(done) == rows // 5000  # one progress call per chunk
        return src.stat().st_size, peak, cpu

    small = measure(10_000)
    size, peak, cpu = measure(100_000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n100,000 rows ({size / 1e6:.1f} MB): peak traced Python memory {peak / 1e6:.1f} MB "
        f"(10,000 rows: {small[1] / 1e6:.1f} MB), process peak RSS {rss:.0f} MB (whole pytest process), "
        f"{cpu:.1f} s CPU"
    )
    # Streaming: ten times the rows, about the same peak (a whole read would grow with the file).
    assert peak < 1.5 * small[1], (peak, small[1])
    ids = pd.read_csv(tmp_path / "out-100000.csv", usecols=["id"])["id"]
    assert ids.is_monotonic_increasing and len(ids) == 100_000


def test_generation_run_writes_a_response_per_row(tmp_path, toy_corpus):
    from core.config import RunConfig
    from core.generation import GenerationSettings

    config = RunConfig.from_dict(
        {
            "data": {"train_path": str(toy_corpus)},
            "model": {"task": "generation"},
            "train": {"max_steps": 1, "batch_size": 4, "max_length": 32, "precision": "fp32", "num_threads": 1},
        }
    )
    run = RunStore(tmp_path / "runs").create(config)
    assert train(config, run).state == "finished"
    src = tmp_path / "prompts.csv"
    src.write_text("id,prompt\n1,the movie was\n2,\n3,actors and\n", encoding="utf-8")
    settings = GenerationSettings(max_new_tokens=3)
    summary = predict_file(load_for_inference(run.model_dir), src, tmp_path / "out.csv", generation=settings)
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert out.columns.tolist() == ["id", "prompt", "generated_response", "prediction_note"]
    assert (summary.rows, summary.bad_rows) == (3, 1) and out.loc[1, "prediction_note"] == EMPTY_NOTE
    assert out.loc[0, "generated_response"] != "" and out.loc[1, "generated_response"] == ""
