"""Each fine-tuning strategy proven by its effect on a tiny model, not only by running."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core import models
from core.components import RESTART_CYCLES, build_optimizer, build_scheduler, param_groups
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.errors import ModelError
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config, toy_sentiment_rows


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine two threads fight over the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def captured(monkeypatch) -> list:
    """The bundles that training builds, kept so a test can inspect the trained model in memory."""
    seen: list = []
    real = models.prepare_for_method

    def keep(bundle, model_cfg):
        bundle = real(bundle, model_cfg)
        seen.append(bundle)
        return bundle

    monkeypatch.setattr(models, "prepare_for_method", keep)
    return seen


def _train(workspace: Path, config: RunConfig):
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run)
    assert result.state == "finished", result.message
    return run, result


def _reference(tiny_bert_dir: Path) -> dict[str, torch.Tensor]:
    """The pretrained weights as loaded before any training (BERT body; the head is new)."""
    return {k: v for k, v in load_file(tiny_bert_dir / "model.safetensors").items()}


def _body(name: str) -> str:
    """Map a (peft-wrapped) parameter name to its name in the saved BertModel."""
    name = name.replace("base_model.model.", "").replace(".base_layer", "").replace("bert.", "", 1)
    return name.replace(".original_module", "")  # the pooler's frozen original beside its trained copy


# ----------------------------------------------------------------------------------------------- LoRA
def test_lora_trains_only_the_adapter_and_merges_to_the_same_logits(workspace, toy_csv, tiny_bert_dir, captured):
    from transformers import AutoModelForSequenceClassification, pipeline

    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=8, learning_rate=5e-3)
    config.model.method = "lora"
    run, _ = _train(workspace, config)
    model = captured[0].model

    start = run.metrics()[0]
    # r x (in + out) per adapted matrix: query and value in each of 2 layers, 64 wide; plus the new head and a
    # trained copy of the pooler under it (a frozen pooler made LoRA on MiniLM learn far more slowly).
    adapter = 2 * 2 * config.model.lora_r * (64 + 64)
    head = 64 * 2 + 2
    pooler = 64 * 64 + 64
    assert start["trainable_params"] == adapter + head + pooler
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "classifier" in n or "pooler.modules_to_save" in n for n in trainable)

    reference = _reference(tiny_bert_dir)
    body = {
        _body(n): p
        for n, p in model.named_parameters()
        if "lora_" not in n and "classifier" not in n and "modules_to_save" not in n
    }
    assert len(body) == len(reference)
    for name, weight in body.items():
        assert torch.equal(weight.detach().cpu(), reference[name]), f"{name} changed"
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: non-zero means the adapter learnt

    merged_dir = models.merge_adapter(run.model_dir, workspace / "merged")
    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir).eval()
    adapted = models.load_for_inference(run.model_dir)
    enc = adapted.tokenizer(["a wonderful film", "the plot was dull and clumsy"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**enc).logits, adapted.model(**enc).logits, atol=1e-5)
    scores = pipeline("text-classification", model=str(merged_dir))("a wonderful film")
    assert scores[0]["label"] in ("negative", "positive")


# ----------------------------------------------------------------------------------------------- freezing
def test_frozen_layers_stay_bit_identical(workspace, toy_csv, tiny_bert_dir, captured):
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, learning_rate=5e-3)
    config.model.method, config.model.freeze_embeddings, config.model.freeze_layers = "freeze", True, 1
    run, _ = _train(workspace, config)
    model = captured[0].model
    reference = _reference(tiny_bert_dir)
    params = {_body(n): p.detach() for n, p in model.named_parameters()}

    frozen = [n for n in reference if n.startswith(("embeddings.", "encoder.layer.0."))]
    assert frozen
    for name in frozen:
        assert torch.equal(params[name], reference[name]), f"{name} changed"
    moved = [n for n in reference if n.startswith("encoder.layer.1.") and not torch.equal(params[n], reference[n])]
    assert moved, "the unfrozen layer should have learnt"
    expected = sum(
        p.numel() for n, p in model.named_parameters() if not n.startswith(("bert.embeddings", "bert.encoder.layer.0."))
    )
    assert run.metrics()[0]["trainable_params"] == expected


# ----------------------------------------------------------------------------------------------- L1 penalty
def _l1_of_saved(run) -> float:
    state = load_file(run.model_dir / "model.safetensors")
    return float(sum(t.abs().sum() for t in state.values() if t.ndim >= 2))


def test_l1_penalty_shrinks_the_weights(workspace, toy_csv, tiny_bert_dir):
    plain, _ = _train(workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=5, learning_rate=2e-3))
    sparse, _ = _train(
        workspace, tiny_run_config(toy_csv, tiny_bert_dir, max_steps=5, learning_rate=2e-3, l1_penalty=1e-4)
    )
    assert _l1_of_saved(sparse) < 0.97 * _l1_of_saved(plain)


# ----------------------------------------------------------------------------------------------- early stopping
def test_early_stopping_stops_on_the_crafted_curve_and_restores_the_best(
    workspace, toy_csv, tiny_bert_dir, monkeypatch
):
    import core.evaluation

    curve = iter([0.9, 0.7, 0.5, 0.6, 0.65, 0.4, 0.3])  # best at step 3, then two evaluations without gain
    real = core.evaluation.metrics_from_scores

    def crafted(scores, data, task, label_names):
        out = real(scores, data, task, label_names)
        return {**out, "loss": next(curve, 1.0)}

    monkeypatch.setattr(core.evaluation, "metrics_from_scores", crafted)
    config = tiny_run_config(
        toy_csv,
        tiny_bert_dir,
        epochs=3,
        eval_every=1,
        early_stopping_patience=2,
        learning_rate=5e-3,
        keep_checkpoints=5,
    )
    run, result = _train(workspace, config)

    assert result.steps == 5
    assert [m["step"] for m in run.metrics() if "val_loss" in m] == [1, 2, 3, 4, 5]
    assert run.results()["best_step"] == 3
    final = load_file(run.model_dir / "model.safetensors")
    best = load_file(run.checkpoints_dir / "step-000003" / "model.safetensors")
    last = load_file(run.checkpoints_dir / "step-000005" / "model.safetensors")
    assert all(torch.equal(final[k], best[k]) for k in best)
    assert any(not torch.equal(final[k], last[k]) for k in last)


# ----------------------------------------------------------------------------------------------- augmentation
def test_augmentation_never_touches_validation_or_test(toy_csv):
    import pandas as pd

    from core.data import prepare_data

    plain = prepare_data(DataConfig(train_path=str(toy_csv)), "classification")
    augmented = prepare_data(
        DataConfig(train_path=str(toy_csv), augment_ops=["delete", "swap", "synonym"], augment_multiplier=2),
        "classification",
    )
    pd.testing.assert_frame_equal(plain.validation, augmented.validation)
    pd.testing.assert_frame_equal(plain.test, augmented.test)
    assert len(augmented.train) == 3 * len(plain.train)
    held_out = set(plain.validation["text"]) | set(plain.test["text"])
    new_texts = set(augmented.train["text"]) - set(plain.train["text"])
    assert new_texts and not new_texts & held_out


# ----------------------------------------------------------------------------------------------- schedules
def _lr_curve(schedule: str, total: int = 100, warmup: int = 10) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(2, 2))
    cfg = TrainConfig(learning_rate=1.0, schedule=schedule, warmup_steps=warmup, optimizer="sgd")
    optimizer = torch.optim.SGD([param], lr=cfg.learning_rate)
    scheduler = build_scheduler(optimizer, cfg, total)
    lrs = []
    for _ in range(total):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("schedule", ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant"])
def test_every_schedule_warms_up_linearly_to_the_peak(schedule):
    lrs = _lr_curve(schedule)
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(0.5)
    assert lrs[10] == pytest.approx(1.0)


def test_schedules_have_their_expected_shapes():
    cosine, linear, constant = _lr_curve("cosine"), _lr_curve("linear"), _lr_curve("constant")
    assert cosine[-1] < 0.01 and cosine[55] == pytest.approx(0.5, abs=0.01)  # half-way through the decay
    assert linear[-1] < 0.02 and linear[55] == pytest.approx(0.5, abs=0.01)
    assert cosine[30] > linear[30]  # cosine stays high longer, then falls faster
    assert constant[10:] == [1.0] * 90
    restarts = _lr_curve("cosine_with_restarts")
    jumps = [i for i in range(11, 100) if restarts[i] > restarts[i - 1] + 0.3]
    assert len(jumps) == RESTART_CYCLES - 1, "cosine with restarts jumps back up between its cycles"
    assert _lr_curve("polynomial")[-1] < 0.02


# ----------------------------------------------------------------------------------------------- optimizer groups
@pytest.fixture(scope="module")
def tiny_classifier(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)


def test_weight_decay_spares_biases_and_layernorm(tiny_classifier):
    groups = param_groups(tiny_classifier, TrainConfig(weight_decay=0.1))
    names = {id(p): n for n, p in tiny_classifier.named_parameters()}
    for group in groups:
        for p in group["params"]:
            name = names[id(p)]
            no_decay = name.endswith("bias") or "LayerNorm" in name
            assert group["weight_decay"] == (0.0 if no_decay else 0.1), name
    assert sum(len(g["params"]) for g in groups) == len(names)


def test_layerwise_lr_decay_lowers_the_rate_going_down(tiny_classifier):
    cfg = TrainConfig(learning_rate=1e-3, layerwise_lr_decay=0.5)
    lr_of = {}
    for group in param_groups(tiny_classifier, cfg):
        for p in group["params"]:
            lr_of[id(p)] = group["lr"]
    named = dict(tiny_classifier.named_parameters())
    head = lr_of[id(named["classifier.weight"])]
    top = lr_of[id(named["bert.encoder.layer.1.attention.self.query.weight"])]
    bottom = lr_of[id(named["bert.encoder.layer.0.attention.self.query.weight"])]
    emb = lr_of[id(named["bert.embeddings.word_embeddings.weight"])]
    assert head == pytest.approx(1e-3)
    assert (top, bottom, emb) == pytest.approx((5e-4, 2.5e-4, 1.25e-4))


@pytest.mark.parametrize(
    ("name", "cls"), [("adamw", "AdamW"), ("adam", "Adam"), ("sgd", "SGD"), ("adafactor", "Adafactor")]
)
def test_optimizer_choice_gives_that_optimizer(tiny_classifier, name, cls):
    opt = build_optimizer(tiny_classifier, TrainConfig(optimizer=name, momentum=0.8), torch.device("cpu"))
    assert type(opt).__name__ == cls
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.8


# ----------------------------------------------------------------------------------------------- prefix / prompt
@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide GPT-2 with a BPE tokenizer for the toy corpus, saved like a pretrained model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tok = models.train_bpe_tokenizer([t + "." for t, _ in toy_sentiment_rows(300, seed=1)], 300)
    torch.manual_seed(0)
    eos = tok.eos_token_id
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_virtual_tokens_fit_in_a_max_length_as_long_as_the_model(workspace, toy_corpus, tiny_gpt2_dir, method):
    """The defaults set max_length to the model's positions (128 here), and the virtual tokens take some of them:
    blocks of the full 128 tokens crashed the first step ("index out of range" in the position embeddings)."""
    config = RunConfig.from_dict(
        {
            "data": {"train_path": str(toy_corpus)},
            "model": {"source": str(tiny_gpt2_dir), "task": "generation", "method": method, "num_virtual_tokens": 4},
            "train": {"max_steps": 2, "batch_size": 2, "learning_rate": 3e-2, "max_length": 128, "seed": 0},
        }
    )
    run, result = _train(workspace, config)
    assert result.steps == 2
    assert math.isfinite(run.metrics()[-1].get("val_loss", float("nan")))


# Prompt tuning needs a far larger rate than fine-tuning (Lester et al. 2021 used 0.3).
@pytest.mark.parametrize(("method", "lr"), [("prefix", 3e-2), ("prompt", 0.3)])
def test_prefix_and_prompt_tuning_learn_only_virtual_tokens(workspace, toy_corpus, tiny_gpt2_dir, captured, method, lr):
    from core.evaluation import evaluate_model
    from core.training import load_weights

    config = RunConfig.from_dict(
        {
            "data": {"train_path": str(toy_corpus)},
            "model": {"source": str(tiny_gpt2_dir), "task": "generation", "method": method, "num_virtual_tokens": 4},
            "train": {
                "max_steps": 12,
                "batch_size": 4,
                "learning_rate": lr,
                "max_length": 32,
                "precision": "fp32",
                "eval_every": 12,
                "seed": 0,
            },
        }
    )
    run, result = _train(workspace, config)
    model = captured[0].model
    per_token = 2 * 2 * 32 if method == "prefix" else 32  # keys and values in each layer, or one embedding
    assert run.metrics()[0]["trainable_params"] == 4 * per_token
    assert all("prompt_encoder" in n for n, p in model.named_parameters() if p.requires_grad)
    original = load_file(tiny_gpt2_dir / "model.safetensors")
    base = {n.replace("base_model.", "", 1): p for n, p in model.named_parameters() if "prompt_encoder" not in n}
    for name, weight in original.items():
        if name in base:
            assert torch.equal(base[name].detach(), weight), name

    # The learnt virtual tokens lower the frozen model's loss on the text it was tuned on.
    import pandas as pd

    frame = pd.read_parquet(run.data_dir / "train.parquet")
    plain = models.load_for_inference(tiny_gpt2_dir)
    tuned = models.load_for_inference(run.model_dir)
    before = evaluate_model(plain, frame, max_length=32, generate_references=False).metrics["loss"]
    after = evaluate_model(tuned, frame, max_length=32, generate_references=False).metrics["loss"]
    assert after < before
    assert tuned.max_positions == plain.max_positions - 4

    # A checkpoint's adapter loads back into a freshly built model (the resume path).
    fresh = models.prepare_for_method(models.build_model(str(tiny_gpt2_dir), "generation"), config.model).model
    load_weights(fresh, run.latest_checkpoint())
    saved = load_file(run.latest_checkpoint() / "adapter_model.safetensors")
    assert len(saved) == 1
    learnt = next(p for n, p in fresh.named_parameters() if "prompt_encoder" in n)
    assert torch.equal(learnt.detach(), next(iter(saved.values())))
    with pytest.raises(ModelError, match="cannot be merged"):
        models.merge_adapter(run.model_dir, workspace / "merged")


def test_prefix_tuning_refuses_the_from_scratch_default():
    from transformers import GPT2Config, GPT2LMHeadModel

    bundle = models.ModelBundle(
        GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=1)),
        None,
        "generation",
        None,
        "default",
        "tiny",
        1024,
    )
    with pytest.raises(ModelError, match="random weights"):
        models.prepare_for_method(bundle, ModelConfig(task="generation", method="prefix"))


def test_student_layers_cut_the_model(tiny_bert_dir):
    bundle = models.build_model(str(tiny_bert_dir), "classification", label_names=["a", "b"])
    before = models.count_parameters(bundle.model)[1]
    models.prepare_for_method(bundle, ModelConfig(source=str(tiny_bert_dir), student_layers=1))
    assert bundle.model.config.num_hidden_layers == 1
    assert len(models.transformer_layers(bundle.model)) == 1
    per_layer = sum(p.numel() for p in bundle.model.bert.encoder.layer[0].parameters())
    assert models.count_parameters(bundle.model)[1] == before - per_layer
    with pytest.raises(ModelError, match="only 1"):
        models.keep_first_layers(bundle.model, 3)
    assert math.isfinite(float(bundle.model(input_ids=torch.tensor([[101, 2000, 102]])).logits.sum()))
