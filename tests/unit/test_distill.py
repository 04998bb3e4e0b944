"""Knowledge distillation: the loss, the refusals, and a student that beats labels alone where the teacher is strong."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core import distill, models
from core.cli import main
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config, toy_sentiment_rows
from tests.unit.test_strategies import one_thread  # noqa: F401 - autouse: tiny models, one thread

FLIP = {"positive": "negative", "negative": "positive"}


def _csv(path: Path, rows) -> Path:
    path.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_bert_dir):
    """A teacher (2 layers) trained on clean labels, and the files the students learn from."""
    root = tmp_path_factory.mktemp("distill")
    clean = _csv(root / "clean.csv", toy_sentiment_rows(240))
    rng = random.Random(3)
    # The students' labels are 30% wrong: the case where a strong teacher's probabilities are worth most.
    noisy = _csv(root / "noisy.csv", [(t, FLIP[y] if rng.random() < 0.3 else y) for t, y in toy_sentiment_rows(240)])
    test = _csv(root / "test.csv", toy_sentiment_rows(100, seed=7))
    store = RunStore(root / "runs")
    config = tiny_run_config(clean, tiny_bert_dir, epochs=4, learning_rate=3e-3)
    config.data.test_path = str(test)
    teacher = store.create(config)
    assert train(config, teacher).state == "finished"
    return {"root": root, "noisy": noisy, "test": test, "store": store, "teacher": teacher, "model": tiny_bert_dir}


def _student(lab, teacher: str | None):
    config = tiny_run_config(lab["noisy"], lab["model"], epochs=3, learning_rate=3e-3, distill_alpha=0.9)
    config.data.test_path = str(lab["test"])
    config.model.student_layers = 1
    config.model.teacher_run = teacher
    run = lab["store"].create(config)
    result = train(config, run)
    assert result.state == "finished", result.message
    return run, result


def test_distilled_student_beats_the_same_student_on_labels_alone(lab, capsys):
    teacher_acc = lab["teacher"].results()["test"]["accuracy"]
    assert teacher_acc >= 0.95
    _, alone = _student(lab, None)
    run, taught = _student(lab, lab["teacher"].id)
    assert taught.results["test"]["accuracy"] >= alone.results["test"]["accuracy"] + 0.25

    student_row, teacher_row = taught.results["distillation"]
    assert (student_row["model"], teacher_row["model"]) == ("student", "teacher")
    assert (student_row["layers"], teacher_row["layers"]) == (1, 2)
    assert student_row["parameters"] < teacher_row["parameters"]
    assert student_row["accuracy"] == pytest.approx(taught.results["test"]["accuracy"])
    assert teacher_row["accuracy"] == pytest.approx(teacher_acc)
    assert student_row["predictions_per_s"] > 0 and teacher_row["predictions_per_s"] > 0
    assert json.loads((run.dir / "results.json").read_text())["distillation"][0]["run"] == run.id

    code = main(["--workspace", str(lab["root"]), "distill-report", run.id, "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in printed] == ["student", "teacher"]


def test_a_teacher_with_another_tokenizer_is_refused(lab, tiny_bert_dir):
    from transformers import BertConfig, BertForSequenceClassification

    store: RunStore = lab["store"]
    stranger = store.create(tiny_run_config(lab["noisy"], tiny_bert_dir))
    tok = models.train_bpe_tokenizer(["a wonderful film", "a dull film"], 280)
    body = BertForSequenceClassification(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=16,
            num_labels=2,
        )
    )
    labels = ["negative", "positive"]
    models.save_model(models.ModelBundle(body, tok, "classification", labels, "x", "x", 512), stranger.model_dir)

    config = tiny_run_config(lab["noisy"], tiny_bert_dir, max_steps=1)
    config.model.teacher_run = stranger.id
    result = train(config, store.create(config))
    assert result.state == "failed"
    assert "different tokenizer" in result.message

    config.model.teacher_run = "no-such-run"
    assert "does not exist" in train(config, store.create(config)).message


def test_blend_is_the_weighted_sum_of_labels_and_softened_teacher():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 1, 0])
    ce = F.cross_entropy(student, labels)
    t = 2.0
    p, q = F.softmax(teacher / t, -1), F.softmax(student / t, -1)
    kl = (p * (p.log() - q.log())).sum(-1).mean()
    assert distill.blend(ce, student, teacher, 0.0, t) == pytest.approx(float(ce))
    assert distill.blend(ce, student, teacher, 0.7, t) == pytest.approx(float(0.3 * ce + 0.7 * t * t * kl), rel=1e-5)
    assert distill.blend(ce, teacher, teacher, 1.0, t) == pytest.approx(0.0, abs=1e-6)
