"""core/fast_layers: BERT-style layers with one QKV product, and a first-token head's last layer on row 0 only,
train the same function as the stock layers (same loss, same gradients) and leave everything else stock."""

from __future__ import annotations

import copy

import pytest
import torch

from core import fast_layers
from core.fast_layers import reads_first_token_only, use_fast_layers

_SIZES = dict(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=64)  # fmt: skip


def _model(kind: str):
    import transformers as T

    torch.manual_seed(0)
    built = {
        "bert": lambda: T.BertForSequenceClassification(T.BertConfig(num_labels=3, **_SIZES)),
        "roberta": lambda: T.RobertaForSequenceClassification(T.RobertaConfig(num_labels=3, pad_token_id=1, **_SIZES)),
        "electra": lambda: T.ElectraForSequenceClassification(T.ElectraConfig(num_labels=3, **_SIZES)),
        "regression": lambda: T.BertForSequenceClassification(T.BertConfig(num_labels=1, **_SIZES)),
        "tokens": lambda: T.BertForTokenClassification(T.BertConfig(num_labels=3, **_SIZES)),
    }[kind]()
    return built.train()


LENGTHS = (11, 7, 3, 9)  # 30 tokens in 4 x 11 positions


def _batch(kind: str, lengths=LENGTHS, left: bool = False):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 120, (4, 11), generator=g)
    mask = torch.ones_like(ids)
    for row, length in enumerate(lengths):  # padded rows: the mask must reach the pruned layer right
        if left:
            mask[row, : 11 - length] = 0
        else:
            mask[row, length:] = 0
    if kind == "tokens":
        labels = torch.randint(0, 3, (4, 11), generator=g).masked_fill(mask == 0, -100)  # as core.batching pads
    elif kind == "regression":
        labels = torch.randn(4, generator=g)
    else:
        labels = torch.randint(0, 3, (4,), generator=g)
    return {"input_ids": ids, "attention_mask": mask}, labels


def _loss_and_grads(model, kind: str, **batch_kwargs):
    batch, labels = _batch(kind, **batch_kwargs)
    model.zero_grad(set_to_none=True)
    out = model(**batch, labels=labels)
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", ["bert", "roberta", "electra", "regression", "tokens"])
def test_fast_layers_train_the_same_function(kind):
    stock = _model(kind)
    fast = copy.deepcopy(stock)
    undo = use_fast_layers(fast)
    assert undo is not None
    layers = fast.base_model.encoder.layer
    assert all(type(layer).__name__.startswith("Fast") for layer in layers)
    assert layers[-1].first_only is (kind != "tokens") and not layers[0].first_only

    loss, grads = _loss_and_grads(stock, kind)
    fast_loss, fast_grads = _loss_and_grads(fast, kind)
    assert torch.allclose(loss, fast_loss, atol=1e-6)
    assert grads.keys() == fast_grads.keys()
    scale = max(g.abs().max() for g in grads.values())
    for name, grad in grads.items():
        # key biases have a zero gradient in exact arithmetic (softmax ignores a constant per row): rounding only
        assert torch.allclose(grad, fast_grads[name], rtol=1e-4, atol=1e-6 * scale), name

    undo()
    assert [type(layer).__name__ for layer in layers] == [
        type(layer).__name__ for layer in stock.base_model.encoder.layer
    ]
    assert not hasattr(layers[-1], "first_only")


def _rows_reaching(model, kind: str, layer: int = -1, **batch_kwargs) -> int:
    """How many rows a layer's feed-forward block computed in one training step."""
    seen = []
    hook = model.base_model.encoder.layer[layer].intermediate.dense.register_forward_hook(
        lambda module, args, out: seen.append(args[0].reshape(-1, args[0].shape[-1]).shape[0])
    )
    try:
        _loss_and_grads(model, kind, **batch_kwargs)
    finally:
        hook.remove()
    return seen[0]


def test_the_last_layer_computes_one_row_per_example_only_for_a_first_token_head():
    classifier, tagger = _model("bert"), _model("tokens")
    use_fast_layers(classifier)
    use_fast_layers(tagger)
    assert _rows_reaching(classifier, "bert") == 4
    assert _rows_reaching(tagger, "tokens") == 32  # a tagger reads every token: its 30, rounded up to 32


def test_the_layers_skip_the_padding_rounded_to_a_row_multiple(monkeypatch):
    model = _model("bert")
    use_fast_layers(model)
    assert fast_layers.ROW_MULTIPLE == 32
    assert _rows_reaching(model, "bert", layer=0) == 32  # 30 tokens of 44 positions, rounded up to 32
    monkeypatch.setattr(fast_layers, "ROW_MULTIPLE", 8)
    assert _rows_reaching(model, "bert", layer=0) == 32
    monkeypatch.setattr(fast_layers, "ROW_MULTIPLE", 1)
    assert _rows_reaching(model, "bert", layer=0) == 30
    monkeypatch.setattr(fast_layers, "ROW_MULTIPLE", 16)  # rounded up to all 44 positions and more: padded
    assert _rows_reaching(model, "bert", layer=0, lengths=(11, 11, 11, 9)) == 44
    monkeypatch.setattr(fast_layers, "ROW_MULTIPLE", 1)
    assert _rows_reaching(model, "bert", layer=0, lengths=(11, 11, 11, 11)) == 44  # no padding at all
    padded = _model("bert")
    use_fast_layers(padded, unpad=False)
    assert _rows_reaching(padded, "bert", layer=0) == 44


def test_large_batches_round_their_rows_to_larger_multiples():
    """Each distinct row count costs memory for good (oneDNN's kernels for the shape), so long texts' batches meet
    fewer of them: the multiple doubles from 512 rows on, at each doubling, and never adds more than 1/8."""
    assert fast_layers.ROW_MULTIPLE == 32 and fast_layers.DOUBLE_FROM_ROWS == 512
    assert [fast_layers.rounded_rows(n) for n in (1, 32, 33, 511)] == [32, 32, 64, 512]
    assert [fast_layers.rounded_rows(n) for n in (512, 513, 1023, 1024, 1025, 2100)] == [
        512,
        576,
        1024,
        1024,
        1152,
        2304,
    ]
    counts = range(1, 5000)
    assert all(fast_layers.rounded_rows(n) >= n for n in counts)
    assert max((fast_layers.rounded_rows(n) - n) / n for n in range(512, 5000)) <= 1 / 8
    assert len({fast_layers.rounded_rows(n) for n in range(512, 1024)}) == 9  # 512, 576 ... 1,024: 17 at 32


@pytest.mark.parametrize("case", ["no padding", "left padding", "one token short", "every row but one empty"])
@pytest.mark.parametrize("kind", ["bert", "tokens"])
def test_unpadded_or_not_every_batch_trains_the_same_function(kind, case, monkeypatch):
    monkeypatch.setattr(fast_layers, "ROW_MULTIPLE", 1)
    batch_kwargs = {
        "no padding": dict(lengths=(11, 11, 11, 11)),
        "left padding": dict(left=True),  # a first-token head's position 0 is padding there: it runs padded
        "one token short": dict(lengths=(11, 11, 11, 10)),
        "every row but one empty": dict(lengths=(11, 1, 1, 1)),
    }[case]
    stock = _model(kind)
    fast = copy.deepcopy(stock)
    use_fast_layers(fast)
    loss, grads = _loss_and_grads(stock, kind, **batch_kwargs)
    fast_loss, fast_grads = _loss_and_grads(fast, kind, **batch_kwargs)
    assert torch.allclose(loss, fast_loss, atol=1e-6)
    scale = max(g.abs().max() for g in grads.values())
    for name, grad in grads.items():
        assert torch.allclose(grad, fast_grads[name], rtol=1e-4, atol=1e-6 * scale), name


def test_a_tagger_gets_the_stock_outputs_at_every_token_and_zeros_at_the_padding():
    stock = _model("tokens").eval()
    fast = copy.deepcopy(stock)
    use_fast_layers(fast, scoring=True)
    batch, _ = _batch("tokens")
    with torch.no_grad():
        a = stock.bert(**batch).last_hidden_state
        b = fast.bert(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert b.shape == a.shape
    assert torch.allclose(a[real], b[real], atol=1e-5)
    # The two padded positions that round 30 rows up to 32 are computed as the stock layers compute them;
    # the other twelve are zeros.
    filled = b[~real].any(dim=-1)
    assert int(filled.sum()) == 2
    assert torch.allclose(a[~real][filled], b[~real][filled], atol=1e-5) and not b[~real][~filled].any()


def test_evaluation_runs_the_stock_layers_with_every_position():
    stock = _model("bert").eval()
    fast = copy.deepcopy(stock)
    use_fast_layers(fast)
    batch, _ = _batch("bert")
    with torch.no_grad():
        a = stock(**batch, output_hidden_states=True)
        b = fast.eval()(**batch, output_hidden_states=True)
    assert b.hidden_states[-1].shape == (4, 11, 32)  # the probes and interpretability views read every position
    assert torch.equal(a.logits, b.logits)
    assert all(torch.equal(x, y) for x, y in zip(a.hidden_states, b.hidden_states))


def test_adapters_on_the_projections_run_their_own_forward():
    from peft import LoraConfig, TaskType, get_peft_model

    base = _model("bert")
    peft_model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query", "value"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # B starts at zero: give the adapters something to add
    peft_model.train()
    fast = copy.deepcopy(peft_model)
    assert reads_first_token_only(fast)
    assert use_fast_layers(fast) is not None
    loss, grads = _loss_and_grads(peft_model, "bert")
    fast_loss, fast_grads = _loss_and_grads(fast, "bert")
    assert torch.allclose(loss, fast_loss, atol=1e-6)
    lora = [n for n in grads if "lora_" in n]
    assert lora and all(torch.allclose(grads[n], fast_grads[n], rtol=1e-4, atol=1e-7) for n in lora)


def test_models_without_bert_layers_are_left_alone():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, GPT2Config, GPT2LMHeadModel

    gpt = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2, n_positions=16))
    distil = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    )
    assert use_fast_layers(gpt) is None and use_fast_layers(distil) is None


def test_the_fast_paths_door_installs_and_closes_them():
    from core.fastpath import install

    model = _model("bert")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    kwargs = dict(device=torch.device("cpu"), world=1, num_threads=1, l1_penalty=0.0)
    fast = install(model, opt, on=True, **kwargs)
    assert type(model.bert.encoder.layer[0]).__name__ == "FastBertLayer"
    fast.close()
    assert type(model.bert.encoder.layer[0]).__name__ == "BertLayer"
    install(model, opt, on=False, **kwargs)
    assert type(model.bert.encoder.layer[0]).__name__ == "BertLayer"


def test_a_scoring_only_copy_uses_them_in_evaluation_too():
    """The bf16 twin that validation scores with (core.fastpath.bf16_twin) reads only logits: pruned there too."""
    from core.fastpath import bf16_twin

    stock = _model("bert").eval()
    scorer = copy.deepcopy(stock)
    use_fast_layers(scorer, scoring=True)
    batch, _ = _batch("bert")
    seen = []
    for layer in (0, -1):
        scorer.bert.encoder.layer[layer].intermediate.dense.register_forward_hook(
            lambda m, a, o: seen.append(a[0].reshape(-1, a[0].shape[-1]).shape[0])
        )
    with torch.no_grad():
        assert torch.allclose(stock(**batch).logits, scorer(**batch).logits, atol=1e-6)
    assert seen == [32, 4]  # the first layer: 30 tokens rounded up to 32 rows of 44 positions; the last: row 0

    twin = bf16_twin(stock, device=torch.device("cpu"), precision="bf16")
    assert type(twin.bert.encoder.layer[-1]).__name__ == "FastBertLayer" and twin.bert.encoder.layer[-1].scoring
    assert type(stock.bert.encoder.layer[-1]).__name__ == "BertLayer"  # the model itself is left stock

    training = _model("bert")  # validation during a run: the twin of a model whose layers are already fast
    use_fast_layers(training)
    twin = bf16_twin(training, device=torch.device("cpu"), precision="bf16")
    assert all(layer.scoring for layer in twin.bert.encoder.layer) and twin.bert.encoder.layer[-1].first_only
    assert not any(layer.scoring for layer in training.bert.encoder.layer)
    assert type(twin.bert.encoder.layer[0]).__name__ == "FastBertLayer"  # not wrapped twice


def test_a_distillation_teacher_gives_the_same_logits_with_a_pruned_last_layer():
    from core.fastpath import FastPath

    stock = _model("bert").eval()
    teacher, untouched = copy.deepcopy(stock), copy.deepcopy(stock)
    FastPath(True).logits_only(teacher)
    FastPath(False).logits_only(untouched)
    assert teacher.bert.encoder.layer[-1].scoring and teacher.bert.encoder.layer[-1].first_only
    assert type(untouched.bert.encoder.layer[-1]).__name__ == "BertLayer"  # the switch off: stock
    batch, _ = _batch("bert")
    with torch.no_grad():
        assert torch.allclose(stock(**batch).logits, teacher(**batch).logits, atol=1e-6)


@pytest.mark.parametrize("kind", ["bert", "tokens"])
def test_unpadded_layers_under_gradient_checkpointing_train_the_same_function(kind):
    """Checkpointing runs each layer's forward again in the backward: the positions found in the forward hold."""
    from core.models import use_gradient_checkpointing

    stock = _model(kind)
    fast = copy.deepcopy(stock)
    use_gradient_checkpointing(fast)
    use_fast_layers(fast)
    seen = []
    fast.bert.encoder.layer[0].intermediate.dense.register_forward_hook(lambda m, a, o: seen.append(a[0].shape))
    loss, grads = _loss_and_grads(stock, kind)
    fast_loss, fast_grads = _loss_and_grads(fast, kind)
    assert seen == [(32, 32)] * 2  # 32 token rows, computed in the forward and again in the backward
    assert torch.allclose(loss, fast_loss, atol=1e-6)
    scale = max(g.abs().max() for g in grads.values())
    for name, grad in grads.items():
        assert torch.allclose(grad, fast_grads[name], rtol=1e-4, atol=1e-6 * scale), name
