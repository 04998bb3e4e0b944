"""Metrics on fixed arrays (hand-checked and against scikit-learn), text metrics, and scoring finished runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError, WorkbenchError
from core.evaluation import (
    classification_metrics,
    evaluate_model,
    evaluate_run,
    perplexity,
    regression_metrics,
    softmax,
    text_metrics,
)
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config, toy_sentiment_rows

Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]


def test_classification_metrics_hand_checked():
    m = classification_metrics(Y_TRUE, Y_PRED, ["a", "b", "c"])
    # class a: tp 1, fp 1, fn 1 -> p .5 r .5 f .5 | b: tp 2, fp 1 -> p 2/3 r 1 f .8 | c: tp 1, fn 1 -> p 1 r .5 f 2/3
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["c"]["recall"] == 0.5 and m["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["labels"] == ["a", "b", "c"]


def test_classification_metrics_agree_with_sklearn_on_random_arrays():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert m["precision"] == pytest.approx(precision_score(y, p, average="macro"))
    assert m["recall"] == pytest.approx(recall_score(y, p, average="macro"))
    assert m["f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert np.array(m["confusion_matrix"]).sum() == 200
    assert m["labels"] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_per_class_scores_confusion_matrix_and_regression_agree_with_sklearn(seed):
    from sklearn.metrics import (
        confusion_matrix,
        mean_absolute_error,
        mean_squared_error,
        precision_recall_fscore_support,
        r2_score,
    )

    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    y, p = rng.integers(0, k, 50), rng.integers(0, k - 1, 50)  # the last class is never predicted
    m = classification_metrics(y, p, [f"c{i}" for i in range(k)])
    prec, rec, f1, support = precision_recall_fscore_support(y, p, labels=list(range(k)), zero_division=0)
    for i in range(k):
        assert m["per_class"][f"c{i}"] == pytest.approx(
            {"precision": prec[i], "recall": rec[i], "f1": f1[i], "support": support[i]}
        )
    assert m["confusion_matrix"] == confusion_matrix(y, p, labels=list(range(k))).tolist()
    t, q = rng.normal(size=40), rng.normal(size=40)
    assert regression_metrics(t, q) == pytest.approx(
        {"mse": mean_squared_error(t, q), "mae": mean_absolute_error(t, q), "r2": r2_score(t, q)}
    )
    assert regression_metrics([2.0, 2.0], [2.0, 2.0])["r2"] == r2_score([2.0, 2.0], [2.0, 2.0])
    assert regression_metrics([2.0, 2.0], [1.0, 2.0])["r2"] == r2_score([2.0, 2.0], [1.0, 2.0])


def test_a_class_never_predicted_scores_zero_not_an_error():
    m = classification_metrics([0, 1, 2], [0, 1, 1], ["x", "y", "z"])
    assert m["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert len(m["confusion_matrix"]) == 3


def test_regression_metrics_hand_checked():
    m = regression_metrics([1, 2, 3, 4], [1, 2, 3, 5])
    # errors 0,0,0,1 -> mse .25, mae .25; total sum of squares around the mean 2.5 is 5 -> r2 = 1 - 1/5
    assert m == {"mse": 0.25, "mae": 0.25, "r2": pytest.approx(0.8)}
    assert math.isnan(regression_metrics([1.0], [2.0])["r2"])  # undefined on one row, not a crash


def test_text_metrics_bleu_and_rouge():
    refs = ["the cat sat on the mat today", "a quick brown fox jumps over the lazy dog"]
    same = text_metrics(refs, refs)
    assert same["bleu"] == pytest.approx(100.0) and same["rouge_l"] == pytest.approx(1.0)
    close = text_metrics(["the cat sat on a mat today", "a quick brown fox jumped over the dog"], refs)
    far = text_metrics(["completely unrelated words here", "nothing in common at all"], refs)
    assert 0 < close["bleu"] < 100 and 0.5 < close["rouge_l"] < 1
    assert far["bleu"] < close["bleu"] and far["rouge_l"] < close["rouge_l"]
    # ROUGE-L of one pair by hand: LCS "the cat sat on mat today" = 6 of 7 words each side -> F1 6/7.
    assert text_metrics(["the cat sat on a mat today"], [refs[0]])["rouge_l"] == pytest.approx(6 / 7)


def test_perplexity_and_softmax():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(50)) == pytest.approx(50)
    assert math.isfinite(perplexity(1e6))  # capped, never inf in a JSON line
    probs = softmax(np.array([[1.0, 1.0], [1000.0, 0.0], [0.0, math.log(3)]]))
    assert np.allclose(probs.sum(axis=1), 1)
    assert np.allclose(probs, [[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("eval-run")
    data = root / "toy.csv"
    data.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in toy_sentiment_rows(240)) + "\n")
    cfg = tiny_run_config(data, tiny_bert_dir, epochs=5, learning_rate=2e-3, batch_size=8, warmup_steps=20)
    run = RunStore(root / "runs").create(cfg)
    assert train(cfg, run).state == "finished"
    return run


def test_evaluate_run_on_its_test_split(finished_run):
    report = evaluate_run(finished_run, split="test")
    saved = finished_run.results()["test"]
    assert report.task == "classification" and report.label_names == ["negative", "positive"]
    assert len(report.predictions) == 24
    assert report.metrics["accuracy"] == pytest.approx(saved["accuracy"])
    assert report.metrics["accuracy"] >= 0.8
    table = report.predictions
    assert {"text", "label_name", "predicted", "confidence", "correct", "p(negative)", "p(positive)"} <= set(table)
    assert np.allclose(table["p(negative)"] + table["p(positive)"], 1)
    assert (table["confidence"] >= 0.5).all()
    assert table["correct"].mean() == pytest.approx(report.metrics["accuracy"])
    assert len(report.misclassified()) == int((~table["correct"]).sum())
    cm = np.array(report.metrics["confusion_matrix"])
    assert cm.sum() == 24 and np.trace(cm) == int(table["correct"].sum())


def test_evaluate_run_on_a_new_file(finished_run, tmp_path):
    new = tmp_path / "new.csv"
    new.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in toy_sentiment_rows(50, seed=9)) + "\n")
    report = evaluate_run(finished_run, file=new)
    assert len(report.predictions) == 50
    assert report.metrics["accuracy"] >= 0.8
    assert sum(v["support"] for v in report.metrics["per_class"].values()) == 50


def test_evaluate_run_refuses_a_file_with_unknown_labels(finished_run, tmp_path):
    new = tmp_path / "other.csv"
    new.write_text("text,label\na fine film,neutral\na wonderful film,positive\n")
    with pytest.raises(DataError, match="neutral"):
        evaluate_run(finished_run, file=new)


def test_evaluate_run_without_a_model_is_a_clear_error(tmp_path):
    run = RunStore(tmp_path / "runs").create(tiny_run_config(tmp_path / "x.csv", "default"))
    with pytest.raises(WorkbenchError, match="no saved model yet"):
        evaluate_run(run)


def test_generation_report_has_perplexity_bleu_and_rouge():
    from core.models import build_model

    texts = [f"question {i} answer {i % 3}" for i in range(40)]
    bundle = build_model("default", "generation", train_texts=texts, max_length=32, seed=0)
    frame = pd.DataFrame(
        {"text": [f"question {i}" for i in range(4)], "text_pair": [f"answer {i % 3}" for i in range(4)]}
    )
    report = evaluate_model(bundle, frame, max_length=32, max_generations=3)
    m = report.metrics
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]), rel=1e-6) and m["tokens"] > 0
    assert 0 <= m["bleu"] <= 100 and 0 <= m["rouge_l"] <= 1
    assert list(report.predictions.columns) == ["prompt", "reference", "generated"]
    assert len(report.predictions) == 3


def test_generation_split_loss_is_the_models_own_loss():
    """score_encoded computes the LM loss in blocks on a CPU (fastpath.causal_lm_loss): the model's own value."""
    import numpy as np
    import torch

    from core.batching import collate, encode_pairs
    from core.evaluation import score_encoded
    from core.models import build_model

    texts = [f"question {i} answer {i % 3} and some more words" for i in range(12)]
    bundle = build_model("default", "generation", train_texts=texts, max_length=32, seed=0)
    data = encode_pairs(bundle.tokenizer, texts, None, None, 32)
    scores = score_encoded(bundle.model, data, "generation", batch_size=64, pad_id=bundle.tokenizer.pad_token_id,
                           device=torch.device("cpu"), precision="fp32")  # fmt: skip
    batch, _ = collate(data, np.arange(len(data)), bundle.tokenizer.pad_token_id, torch.device("cpu"))
    with torch.no_grad():
        stock = bundle.model.eval()(**batch, labels=batch["input_ids"]).loss
    assert scores.loss == pytest.approx(float(stock), rel=1e-5)


@pytest.mark.parametrize("found_training", [True, False])
def test_scoring_leaves_the_model_in_the_mode_it_found(tiny_bert_dir, found_training):
    """Training mid-run stays in training mode; a model loaded for inference stays in eval mode (no dropout)."""
    import torch

    from core.batching import encode_pairs
    from core.models import build_model
    from core.scoring import score_encoded

    bundle = build_model(str(tiny_bert_dir), "classification", label_names=["bad", "good"])
    bundle.model.train(found_training)
    data = encode_pairs(bundle.tokenizer, ["a good film", "a bad film"], None, np.array([1, 0]), 16)

    class StopNow:
        def is_set(self) -> bool:
            return True

    for stop in (None, StopNow()):  # a full pass, and one a stop ends midway
        score_encoded(bundle.model, data, "classification", batch_size=8, pad_id=bundle.tokenizer.pad_token_id,
                      device=torch.device("cpu"), precision="fp32", stop=stop)  # fmt: skip
        assert bundle.model.training is found_training
        assert all(m.training is found_training for m in bundle.model.modules())
