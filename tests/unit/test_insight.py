"""Know your data and your model: each check on data built with a known answer (issue 18).

Label errors: planted flips are found. Bias: a planted word bias and a planted weak group are named.
Learning curve: a crafted plateau and a crafted rising curve read as such. Probes: logged at every
validation. Calibration: a known calibration error, and a saved threshold answers predictions.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from core import bias, calibration, i18n, learning_curve, probes
from core.cli import main
from core.config import RunConfig
from core.errors import ConfigError, DataError
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config, toy_sentiment_rows
from tests.unit.test_strategies import one_thread  # noqa: F401 - autouse: tiny models, one thread


def _flipped_csv(tmp_path, n=200, share=0.1, seed=3):
    rows = toy_sentiment_rows(n, seed=seed)
    flipped = set(random.Random(seed).sample(range(n), int(share * n)))
    other = {"positive": "negative", "negative": "positive"}
    frame = pd.DataFrame(
        {
            "text": [t for t, _ in rows],
            "label": [other[y] if i in flipped else y for i, (_, y) in enumerate(rows)],
            "source": ["web" if i % 2 else "mail" for i in range(n)],
        }
    )
    path = tmp_path / "flipped.csv"
    frame.to_csv(path, index=False)
    return path, flipped, frame


# ------------------------------------------------------------------------------------------- label errors
def test_label_issues_cli_finds_the_planted_flips(tmp_path, capsys):
    path, flipped, frame = _flipped_csv(tmp_path)
    code = main(["label-issues", str(path), "--folds", "5", "--json"])  # the default frozen MiniLM
    out = capsys.readouterr().out
    assert code == 0, out
    issues = [json.loads(line) for line in out.splitlines()]
    flagged = {i["row"] - 1 for i in issues}  # rows count from 1
    hits = len(flagged & flipped)
    assert hits / len(flipped) >= 0.8, (hits, len(flagged))
    assert hits / len(flagged) >= 0.6, (hits, len(flagged))
    for issue in issues:
        row = frame.iloc[issue["row"] - 1]
        assert issue["given_label"] == row["label"] and issue["text"] == row["text"]
        assert issue["suggested_label"] != issue["given_label"]
        assert 0.0 <= issue["score"] < 0.5 < issue["confidence"] <= 1.0
    scores = [i["score"] for i in issues]
    assert scores == sorted(scores), "worst (lowest label quality) first"


def test_review_saves_a_new_dataset_version_and_keeps_the_old(tmp_path, workspace):
    from core.datasets import DatasetSettings, DatasetStore
    from core.label_issues import apply_review, read_labeled

    path, _, frame = _flipped_csv(tmp_path, n=40)
    store = DatasetStore()
    original = store.save("reviews", path, "reviews.csv", DatasetSettings(text_column="text", label_column="label"))
    rows = read_labeled(original.path, "text", "label")
    given = rows.frame.loc[2, "label"]
    new_label = "positive" if given == "negative" else "negative"
    reviewed = apply_review(rows.frame, "label", {3: new_label}, drop=[1, 5])
    version = store.save_version(original, reviewed)

    assert version.name == "reviews-v2" and version.parent == "reviews" and version.version == 2
    again = store.get("reviews-v2")  # from disk
    assert again.parent == "reviews" and again.settings.label_column == "label" and again.rows == 38
    saved = read_labeled(again.path, "text", "label").frame
    assert len(saved) == 38
    assert saved.loc[1, "label"] == new_label and saved.loc[1, "text"] == frame.loc[2, "text"]  # row 3 is now 2nd
    assert pd.read_csv(store.get("reviews").path).equals(frame)  # the old version is untouched
    assert store.save_version(again, reviewed).name == "reviews-v3"
    with pytest.raises(DataError, match="not in the file"):
        apply_review(rows.frame, "label", {41: "positive"}, drop=[])


def test_review_keeps_a_numeric_label_column_numeric():
    from core.label_issues import apply_review

    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    out = apply_review(frame, "label", {1: "1"}, drop=[])
    assert out["label"].tolist() == [1, 1, 0] and pd.api.types.is_integer_dtype(out["label"])


# ------------------------------------------------------------------------------------------------- bias
def test_swapper_swaps_whole_words_both_ways_and_keeps_capitals():
    swap = bias.swapper([("he", "she"), ("his", "her"), ("他", "她"), ("他们", "她们")])
    assert swap("He said she saw the theme of his book.") == "She said he saw the theme of her book."
    assert swap("他们说她和他") == "她们说他和她"
    assert swap("nothing here") == "nothing here"


def test_swap_test_measures_a_planted_word_bias_exactly():
    texts = ["he liked it", "she liked it", "he was bored", "the cat sat", "she was bored", "they came"]

    def biased(batch):  # planted: 'she' lowers P(positive) from 0.8 to 0.3
        return np.array([[0.7, 0.3] if "she" in t.split() else [0.2, 0.8] for t in batch])

    result = bias.swap_test(biased, texts, [("he", "she")], ["negative", "positive"])
    assert result.tested == 4 and result.flips == 4 and result.flip_rate == 1.0
    assert result.mean_shift == pytest.approx(0.5)
    assert result.per_pair == [{"pair": "he / she", "texts": 4, "flips": 4, "mean_shift": 0.5}]
    assert result.worst[0]["swapped"] in ("she liked it", "he liked it")
    assert "sign of bias" in bias.swap_reading(result) and bias.CAVEAT in bias.swap_reading(result)

    fair = bias.swap_test(lambda b: np.tile([0.2, 0.8], (len(b), 1)), texts, [("he", "she")], ["n", "p"])
    assert fair.flips == 0 and fair.mean_shift == 0.0
    reading = bias.swap_reading(fair)
    assert "barely move" in reading and "not proof of fairness" in reading


def test_slice_metrics_name_a_planted_weak_group():
    groups = pd.Series(["web"] * 40 + ["mail"] * 20)
    correct = [True] * 40 + [True] * 10 + [False] * 10
    table = bias.slice_metrics(pd.DataFrame({"correct": correct}), groups)
    mail = table.set_index("group").loc["mail"]
    assert mail["rows"] == 20 and mail["accuracy"] == 0.5 and mail["rest"] == 1.0 and mail["gap"] == -0.5
    reading = bias.slice_reading(table, "source")
    assert "'source' = 'mail'" in reading and "50.0%" in reading and bias.CAVEAT in reading
    even = bias.slice_metrics(pd.DataFrame({"correct": [True, False] * 30}), pd.Series(["a", "b", "c"] * 20))
    assert "No group" in bias.slice_reading(even, "x")
    # The same reading for a Chinese reader: the key and its figures, and the caveat in Chinese.
    zh = bias.slice_reading(table, "source", "zh")
    assert "“source” = “mail”（20 行）" in zh and "50.0%" in zh and zh.endswith(i18n.t("insight.bias.caveat", "zh"))
    stored = bias.slice_message(table, "source")
    assert stored["message_code"] == "insight.slice.worst_accuracy" and json.loads(json.dumps(stored)) == stored


def test_readings_are_stored_as_keys_and_read_in_the_readers_language():
    curve = learning_curve.curve_message([100, 1000], [0.6, 0.8])
    assert curve["message_code"] == "insight.curve.helps" and json.loads(json.dumps(curve)) == curve
    assert i18n.status_message(curve, "en") == curve["message"]
    assert i18n.status_message(curve, "zh").startswith("更多数据很可能有帮助") and "1,000" in i18n.status_message(
        curve, "zh"
    )
    assert calibration.reading(0.3, "zh").startswith("校准较差（误差 30.0%）")
    assert calibration.reading(0.01, "en").startswith("Well calibrated (error 1.0%)")
    fair = bias.SwapResult(10, 0, 0.01, [], [])
    assert "几乎不影响模型" in bias.swap_reading(fair, "zh") and "barely move" in bias.swap_reading(fair, "en")


def test_bundled_pair_lists_load(tmp_path):
    en, zh = bias.load_pairs(bias.DEFAULT_PAIRS["en"]), bias.load_pairs(bias.DEFAULT_PAIRS["zh"])
    assert ("he", "she") in en and ("他", "她") in zh and len(en) >= 10 and len(zh) >= 10
    bad = tmp_path / "bad.csv"
    bad.write_text("he\n", encoding="utf-8")
    with pytest.raises(DataError, match="two words"):
        bias.load_pairs(bad)


def _biased_rows(n: int, seed: int = 0):
    """Planted: 'he' rows are positive and 'she' rows negative, whatever else they say."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        who = "he" if i % 2 else "she"
        words = rng.sample(["the", "film", "was", "seen", "on", "sunday", "with", "friends", "at", "night"], 5)
        rows.append((f"{who} said " + " ".join(words), "positive" if who == "he" else "negative"))
    return rows


@pytest.mark.slow
def test_bias_cli_flags_a_model_trained_on_a_planted_pronoun_bias(tmp_path, workspace, tiny_bert_dir, capsys):
    data = tmp_path / "biased.csv"
    pd.DataFrame(_biased_rows(320), columns=["text", "label"]).to_csv(data, index=False)
    store = RunStore(workspace / "runs")
    run = store.create(tiny_run_config(data, tiny_bert_dir, epochs=4, learning_rate=3e-3))
    assert train(run.config(), run).state == "finished"
    check = tmp_path / "check.csv"
    frame = pd.DataFrame(_biased_rows(60, seed=9), columns=["text", "label"])
    frame["group"] = ["a"] * 30 + ["b"] * 30
    frame.to_csv(check, index=False)
    code = main(["--workspace", str(workspace), "bias", run.id, "--file", str(check), "--by", "group", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["swap"]["tested"] == 60
    assert report["swap"]["flip_rate"] >= 0.8, report["swap"]
    assert report["swap"]["per_pair"][0]["pair"] == "he / she"
    assert "sign of bias" in report["swap_reading"]
    assert {g["group"] for g in report["slices"]["group"]["groups"]} == {"a", "b"}
    assert bias.LENGTH_BUCKET in report["slices"]
    # The plain printout: one line per group, and the readings.
    assert main(["--workspace", str(workspace), "bias", run.id, "--file", str(check), "--words", "film"]) == 0
    text = capsys.readouterr().out
    assert f"== {bias.MENTIONS}" in text and "sign of bias" in text and bias.CAVEAT in text


# ---------------------------------------------------------------------------------------- learning curve
def test_curve_reading_tells_a_plateau_from_a_rising_curve():
    rows = [100, 250, 500, 1000]
    rising = learning_curve.curve_reading(rows, [0.62, 0.70, 0.78, 0.86])
    plateau = learning_curve.curve_reading(rows, [0.70, 0.85, 0.90, 0.902])
    assert rising.lower().startswith(learning_curve.HELPS) and "500 and 1,000 rows" in rising
    assert plateau.lower().startswith(learning_curve.PLATEAU)
    # Losses go down: a falling loss is a rising curve.
    assert learning_curve.curve_reading(rows, [0.9, 0.7, 0.55, 0.4], "val_loss").lower().startswith("more data")
    assert learning_curve.curve_reading(rows, [0.9, 0.5, 0.41, 0.405], "val_loss").lower().startswith("the model")
    # A small last gain after a large one is a plateau, even above one accuracy point.
    assert learning_curve.curve_reading(rows, [0.40, 0.60, 0.80, 0.815]).lower().startswith("the model")
    assert "Not enough" in learning_curve.curve_reading([100], [0.5])


def test_learning_curve_subsets_are_nested_and_share_one_validation_set(tmp_path, toy_csv, tiny_bert_dir):
    base = tiny_run_config(toy_csv, tiny_bert_dir)
    subsets, val_path = learning_curve.write_subsets(base, tmp_path / "lc")
    sizes = [n for _, n, _ in subsets]
    assert sizes == sorted(sizes) and [f for f, _, _ in subsets] == [0.1, 0.25, 0.5, 1.0]
    frames = [pd.read_parquet(p) for _, _, p in subsets]
    for small, large in zip(frames, frames[1:]):
        assert set(small["text"]) <= set(large["text"])
    shares = [f["label"].value_counts(normalize=True)["positive"] for f in frames]
    assert max(shares) - min(shares) < 0.1  # every subset keeps the class balance
    val = pd.read_parquet(val_path)
    assert not set(val["text"]) & set(frames[-1]["text"])


@pytest.mark.slow
def test_learning_curve_cli_trains_each_share_through_the_search(
    workspace, toy_csv, tiny_bert_dir, capsys, monkeypatch
):
    monkeypatch.setenv("WORKBENCH_JOB_MODE", "thread")
    code = main(
        ["--workspace", str(workspace), "learning-curve", "--fractions", "0.25,1", "--data", str(toy_csv),
         "--model", str(tiny_bert_dir), "--max-steps", "3", "--max-length", "32", "--precision", "fp32"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads(out.splitlines()[-1])
    assert [p["state"] for p in record["points"]] == ["finished", "finished"]
    assert record["points"][0]["rows"] < record["points"][1]["rows"]
    runs = RunStore(workspace / "runs")
    vals = {runs.get(p["runs"][0]).config().data.validation_path for p in record["points"]}
    assert len(vals) == 1  # the same validation set for every point
    assert record["reading"].lower().startswith((learning_curve.HELPS, learning_curve.PLATEAU))
    stored = learning_curve.CurveStore(workspace / "curves").get(record["id"])
    assert stored["reading_message"]["message"] == record["reading"]
    assert i18n.status_message(stored, "zh") == "已完成。"


# ----------------------------------------------------------------------------------------------- probes
def test_probe_texts_are_validated():
    with pytest.raises(ConfigError, match="probe_texts.*at most 5"):
        RunConfig.from_dict({"train": {"probe_texts": [f"t{i}" for i in range(6)]}})
    with pytest.raises(ConfigError, match="probe 2 is empty"):
        RunConfig.from_dict({"train": {"probe_texts": ["fine", "  "]}})
    assert RunConfig.from_dict({"train": {"probe_texts": ["a great film"]}}).train.probe_texts == ["a great film"]


def test_probes_are_logged_at_every_validation(workspace, toy_csv, tiny_bert_dir):
    texts = ["a wonderful film", "an awful film"]
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, eval_every=2, probe_texts=texts)
    run = RunStore(workspace / "runs").create(config)
    assert train(config, run).state == "finished"
    records = run.metrics()
    eval_steps = [r["step"] for r in records if "val_loss" in r]
    history = probes.probe_history(records)
    assert sorted({r["step"] for r in history}) == eval_steps == [2, 4, 6]
    for row in history:
        assert row["text"] == texts[row["probe"] - 1]
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        assert row["label"] == max(row["probs"], key=row["probs"].get)
    latest = probes.latest_probes(records)
    assert [r["step"] for r in latest] == [6, 6]
    assert probes.describe(latest[0]).startswith(latest[0]["label"])


def test_probes_for_generation_are_greedy_continuations(toy_corpus, workspace):
    config = RunConfig.from_dict(
        {
            "data": {"train_path": str(toy_corpus)},
            "model": {"task": "generation"},
            "train": {"max_steps": 2, "eval_every": 2, "max_length": 32, "batch_size": 8, "precision": "fp32",
                      "probe_texts": ["the movie"]},
        }
    )  # fmt: skip
    run = RunStore(workspace / "runs").create(config)
    assert train(config, run).state == "finished"
    (row,) = probes.latest_probes(run.metrics())
    assert row["text"] == "the movie" and isinstance(row["continuation"], str)


# ------------------------------------------------------------------------------------------ calibration
def test_calibration_error_of_a_known_overconfident_model():
    # Says 90% every time and is right 60% of the time: error 0.3. Says 60% and is right 60%: error 0.
    labels = np.array([0] * 6 + [1] * 4)
    over = np.tile([0.9, 0.1], (10, 1))
    honest = np.tile([0.6, 0.4], (10, 1))
    assert calibration.expected_calibration_error(over, labels) == pytest.approx(0.3)
    assert calibration.expected_calibration_error(honest, labels) == pytest.approx(0.0)
    (only,) = calibration.reliability(over, labels)
    assert only["rows"] == 10 and only["accuracy"] == pytest.approx(0.6) and only["confidence"] == pytest.approx(0.9)
    assert "Poorly" in calibration.reading(0.3) and "Well" in calibration.reading(0.0)


def test_threshold_and_unsure_band_move_precision_recall_and_unsure_share():
    p = np.array([0.05, 0.3, 0.45, 0.55, 0.7, 0.95])
    truth = np.array([False, False, True, False, True, True])
    plain = calibration.threshold_effect(p, truth, calibration.Decision("pos", 0.5, 0.0))
    assert plain == {"precision": 2 / 3, "recall": 2 / 3, "accuracy": 4 / 6, "unsure_share": 0.0}
    banded = calibration.threshold_effect(p, truth, calibration.Decision("pos", 0.5, 0.1))
    assert banded == {"precision": 1.0, "recall": 1.0, "accuracy": 1.0, "unsure_share": 2 / 6}
    assert calibration.Decision("pos", 0.5, 0.1).decide(p, "neg") == ["neg", "neg", "unsure", "unsure", "pos", "pos"]
    with pytest.raises(ConfigError, match="threshold"):
        calibration.Decision("pos", 1.0)


@pytest.mark.slow
def test_saved_threshold_is_used_by_predict(workspace, toy_csv, tiny_bert_dir, capsys):
    store = RunStore(workspace / "runs")
    run = store.create(tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2))
    assert train(run.config(), run).state == "finished"
    text = "the movie was wonderful"
    main(["--workspace", str(workspace), "predict", run.id, "--text", text])
    before = json.loads(capsys.readouterr().out)
    p_pos = before["probabilities"]["positive"]
    # A band around this very probability: the saved decision must answer "unsure".
    threshold = min(max(p_pos, 0.05), 0.95)
    code = main(
        ["--workspace", str(workspace), "calibration", run.id, "--positive", "positive", "--threshold",
         str(threshold), "--band", "0.04", "--save"]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["saved"] and 0.0 <= out["ece"] <= 1.0 and out["bins"]
    meta = json.loads((run.model_dir / "workbench.json").read_text())
    assert meta["decision"] == {"positive": "positive", "threshold": threshold, "band": 0.04}
    assert meta["label_names"] == ["negative", "positive"]  # the rest of the file is kept
    main(["--workspace", str(workspace), "predict", run.id, "--text", text])
    after = json.loads(capsys.readouterr().out)
    assert after["label"] == "unsure" and after["probabilities"] == before["probabilities"]


def test_slice_reading_of_a_single_group():
    table = bias.slice_metrics(pd.DataFrame({"correct": [True] * 12}), pd.Series(["≤10"] * 12))
    assert "no groups to compare" in bias.slice_reading(table, bias.LENGTH_BUCKET)
