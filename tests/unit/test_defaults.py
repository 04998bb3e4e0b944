"""Method-aware defaults: one function for the UI and the CLI, and every method learns with them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.cli import _config_from_args, build_parser
from core.config import METHODS, TASKS, TrainConfig
from core.defaults import recommended_train_settings
from core.evaluation import evaluate_run
from core.runs import RunStore
from core.training import train

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
MINILM_PARAMS = 22_713_216


def test_defaults_depend_on_method_model_size_and_data_size():
    full = recommended_train_settings("classification", method="full", train_rows=320)
    lora = recommended_train_settings("classification", method="lora", train_rows=320)
    freeze = recommended_train_settings("classification", method="freeze", train_rows=320)
    distill = recommended_train_settings("classification", method="full", train_rows=320, distill=True)
    assert lora["learning_rate"] >= 10 * full["learning_rate"]  # 5e-5 left LoRA at chance
    assert full["learning_rate"] < freeze["learning_rate"] < lora["learning_rate"]
    assert distill["learning_rate"] > full["learning_rate"]
    assert lora["epochs"] > full["epochs"]  # adapters need more steps
    # Bigger models: smaller rates and batches.
    big = recommended_train_settings("classification", method="full", params=1_300_000_000)
    assert big["learning_rate"] < full["learning_rate"] and big["batch_size"] < full["batch_size"]
    # More data: fewer passes (about the same number of steps), never below one.
    assert recommended_train_settings("classification", train_rows=100_000)["epochs"] == 1.0
    assert recommended_train_settings("classification", train_rows=200)["epochs"] == 5.0
    gen = recommended_train_settings("generation", "some/model", method="prompt")
    assert gen["learning_rate"] >= 100 * recommended_train_settings("generation", "some/model")["learning_rate"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", METHODS)
def test_every_case_gives_a_valid_config(task, method):
    for source in ("default", "org/model"):
        for params in (None, 5_000_000, 7_000_000_000):
            TrainConfig(**recommended_train_settings(task, source, 1000, method=method, params=params))


def test_the_cli_uses_the_same_function_with_the_method_and_the_rows(tmp_path):
    sample = SAMPLES / "sentiment.csv"
    args = build_parser().parse_args(["train", "--data", str(sample), "--method", "lora"])
    cfg = _config_from_args(args)
    expected = recommended_train_settings("classification", "default", 320, method="lora")
    assert cfg.train.learning_rate == expected["learning_rate"] == 1e-3
    assert cfg.train.epochs == expected["epochs"]
    # An option the user gives wins over the default.
    args = build_parser().parse_args(["train", "--data", str(sample), "--method", "lora", "--lr", "2e-4"])
    assert _config_from_args(args).train.learning_rate == 2e-4


def test_the_cli_passes_the_models_size_and_length_like_the_page(tmp_path, minilm_dir):
    """A big model (read from its config, no weights needed) gets the big-model defaults from the CLI too."""
    from transformers import AutoTokenizer, BertConfig

    from core.defaults import defaults_for
    from core.inference import model_outline

    big = tmp_path / "big-bert"
    BertConfig(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, intermediate_size=8192,
               max_position_embeddings=64).save_pretrained(big)  # fmt: skip
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(big)
    outline = model_outline(str(big), "classification")
    assert outline.parameters > 1_000_000_000 and outline.max_positions == 64
    sample = SAMPLES / "sentiment.csv"
    args = build_parser().parse_args(["train", "--data", str(sample), "--model", str(big), "--method", "lora"])
    cfg = _config_from_args(args)
    # The page's call with the same facts: the outline it shows and the rows of its dataset record.
    page = defaults_for("classification", str(big), 320, method="lora", outline=outline)
    minilm = model_outline("default", "classification")
    small = defaults_for("classification", "default", 320, method="lora", outline=minilm)
    assert cfg.train.learning_rate == page["learning_rate"] < small["learning_rate"]
    assert cfg.train.batch_size == page["batch_size"] < small["batch_size"]
    assert cfg.train.max_length == page["max_length"] == 64  # capped at the model's longest input
    assert cfg.train.log_every == page["log_every"]
    # A model that cannot be read gives the size-free defaults (the pre-flight check reports the model).
    assert model_outline(str(tmp_path / "nothing"), "classification") is None


def test_lora_on_the_from_scratch_model_adapts_every_linear_layer_in_the_cli_and_the_form():
    from core.inference import model_outline

    stories = str(SAMPLES / "stories.txt")
    outline = model_outline("default", "generation")  # what the page's LoRA fields start from
    cfg = _config_from_args(build_parser().parse_args(["train", "--data", stories, "--task", "generation",
                                                       "--method", "lora"]))  # fmt: skip
    assert (cfg.model.lora_r, cfg.model.lora_alpha) == (outline.lora_rank, outline.lora_alpha) == (32, 64)
    assert sorted(cfg.model.lora_targets) == sorted(outline.lora_default) == ["c_attn", "c_fc", "c_proj"]
    given = ["train", "--data", stories, "--task", "generation", "--method", "lora", "--lora-r", "4"]
    assert _config_from_args(build_parser().parse_args(given)).model.lora_r == 4  # the user's option wins
    # A pretrained model keeps LoRA's usual rank and attention projections.
    minilm = model_outline("default", "classification")
    assert (minilm.lora_rank, minilm.lora_default) == (8, ["query", "value"])


# ----------------------------------------------------------------------------------------------- they learn
def _train(workspace, data, model, settings):
    from core.config import RunConfig

    cfg = RunConfig.from_dict({"data": {"train_path": str(data)}, "model": model, "train": settings})
    run = RunStore(workspace / "runs").create(cfg)
    result = train(cfg, run)
    assert result.state == "finished", result.message
    return run, result


@pytest.mark.parametrize("method", ["full", "freeze", "lora"])
def test_each_method_mechanics_learn_on_the_tiny_model(workspace, toy_csv, tiny_bert_dir, method):
    """The tiny random BERT: the method's machinery (frozen layers, adapters with a trainable head) learns.

    A random-init model needs a far larger rate than a pretrained one; the ratio between methods is the
    defaults' own (LoRA and freezing train fewer weights and take larger steps), and so are the epochs.
    """
    defaults = recommended_train_settings("classification", train_rows=192, method=method)
    model = {"source": str(tiny_bert_dir), "task": "classification", "method": method}
    if method == "freeze":
        model["freeze_layers"] = 1
    settings = {
        "learning_rate": min(defaults["learning_rate"] * 40, 5e-3),
        "epochs": defaults["epochs"],
        "batch_size": 8,
        "warmup_steps": 20,
        "max_length": 32,
        "precision": "fp32",
        "seed": 0,
        "log_every": 5,
    }
    _, result = _train(workspace, toy_csv, model, settings)
    assert result.results["test"]["accuracy"] >= 0.8  # two balanced classes: chance is 0.5


# The real defaults on the real default models and the bundled samples (MiniLM: about 10-30 s each on 2 idle cores).
@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "freeze", "lora", "distill"])
def test_minilm_learns_the_sentiment_sample_with_each_methods_defaults(workspace, method):
    data = SAMPLES / "sentiment.csv"
    model = {"task": "classification", "method": "lora" if method == "lora" else "full"}
    if method == "freeze":
        model.update(method="freeze", freeze_layers=3, freeze_embeddings=True)
    if method == "distill":
        teacher, _ = _train(
            workspace, data, {"task": "classification"}, recommended_train_settings("classification", "default", 320)
        )
        model.update(teacher_run=teacher.id, student_layers=3)
    settings = recommended_train_settings(
        "classification", "default", 320, method=model["method"], params=MINILM_PARAMS, distill=method == "distill"
    )
    _, result = _train(workspace, data, model, settings)
    assert result.results["test"]["accuracy"] >= 0.8, (method, settings, result.results["test"])


@pytest.mark.slow
def test_generation_methods_learn_with_their_defaults(workspace):
    """From scratch (full, freeze, LoRA), then prefix and prompt tuning of that model on the QA pairs."""
    stories, qa = SAMPLES / "stories.txt", SAMPLES / "qa.csv"
    base = None
    from core.defaults import recommended_lora
    from core.inference import model_outline

    outline = model_outline("default", "generation")
    # The LoRA the page's form and the CLI give this model: rank 32 on every linear layer of the blocks.
    assert recommended_lora("generation", "default", outline.lora_candidates)["lora_r"] == outline.lora_rank == 32
    assert set(outline.lora_default) == {"c_attn", "c_proj", "c_fc"}
    for method in ("full", "lora"):
        settings = recommended_train_settings("generation", "default", 1000, method=method)
        model = {"task": "generation", "method": method}
        if method == "lora":
            model.update(lora_r=outline.lora_rank, lora_alpha=outline.lora_alpha, lora_targets=outline.lora_default)
        run, result = _train(workspace, stories, model, settings)
        vocab = 4096  # the tiny GPT-2's BPE: a model that knows nothing has perplexity about this
        # LoRA on a from-scratch model learns only through adapters on random weights: rank 8 on c_attn alone
        # reached 437; rank 32 on every linear layer 128 (a loaded machine, seed 0). Full fine-tuning: below a twentieth.
        bound = vocab / 20 if method == "full" else vocab / 24  # 171: 128 with a third of margin
        assert result.results["test"]["perplexity"] < bound, (method, result.results["test"])
        base = base or run
    before = evaluate_run(base, file=qa).metrics["perplexity"]
    for method in ("prefix", "prompt"):
        settings = recommended_train_settings("generation", base.id, 160, method=method)
        settings["max_length"] = 64
        _, result = _train(workspace, qa, {"task": "generation", "method": method, "source": base.id}, settings)
        after = result.results["test"]["perplexity"]
        assert math.isfinite(after) and after < 0.8 * before, (method, before, after)
