"""The CPU fast paths compute what the stock code computes: dropout with the same distribution and scaling,
and the embedding's sparse-row AdamW giving the same weights and optimizer state as torch's dense AdamW."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core.fastpath import FastDropout, SparseRowAdamW, sparse_row_adamw, use_fast_dropout


def test_fast_dropout_drops_at_rate_p_and_keeps_the_expectation():
    torch.manual_seed(0)
    layer = FastDropout(0.1).train()
    x = torch.ones(400, 1000)
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.003  # 400k draws: the standard error is 0.0005
    assert torch.allclose(y[y != 0], torch.full((), 1 / 0.9))
    assert abs(y.mean().item() - 1.0) < 0.005
    x.requires_grad_(True)
    torch.manual_seed(1)
    y = layer(x)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient is the same scaled mask
    assert layer.eval()(x) is x  # evaluation: identity, like nn.Dropout


def test_fast_dropout_repeats_with_the_torch_seed_and_keeps_bf16():
    layer = FastDropout(0.3).train()
    x = torch.randn(8, 16, 32, dtype=torch.bfloat16)
    torch.manual_seed(7)
    a = layer(x)
    torch.manual_seed(7)
    b = layer(x)
    torch.manual_seed(8)
    c = layer(x)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_scaled_keep_mask_is_the_bool_mask_times_the_scale_in_the_dtype(dtype):
    from core.fastpath import _keep_mask, _scaled_keep_mask

    shape = torch.Size([3, 70, 11])  # an odd element count: the raw draws are cut four to a 64-bit word
    torch.manual_seed(3)
    scaled = _scaled_keep_mask(shape, 0.25, dtype)
    torch.manual_seed(3)
    keep = _keep_mask(shape, 0.25)
    assert scaled.shape == keep.shape == shape and scaled.dtype == dtype and keep.dtype == torch.bool
    assert torch.equal(scaled, keep.to(dtype) * torch.tensor(1 / 0.75, dtype=dtype))  # the bit patterns are right
    assert 0.22 < 1 - keep.float().mean().item() < 0.28
    # The same draws as NumPy's integers(0, 65536, uint16) from that seed: a seeded run keeps its old masks.
    import numpy as np

    torch.manual_seed(3)
    seed = int(torch.randint(0, 2**62, (1,)))
    draws = np.random.Generator(np.random.PCG64(seed)).integers(0, 65536, size=tuple(shape), dtype=np.uint16)
    assert torch.equal(keep, torch.from_numpy(draws >= round(0.25 * 65536)))
    torch.manual_seed(3)
    assert torch.equal(_keep_mask(torch.Size([10_000]), 0.0), torch.ones(10_000, dtype=torch.bool))
    assert _keep_mask(torch.Size([0, 4]), 0.5).shape == (0, 4)


def _tiny_bert(dropout: float = 0.0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout, num_labels=2)  # fmt: skip
    return BertForSequenceClassification(cfg)


def test_use_fast_dropout_swaps_every_dropout_and_keeps_p():
    model = _tiny_bert(dropout=0.2)
    stock = sum(type(m) is torch.nn.Dropout for m in model.modules())
    assert use_fast_dropout(model) == stock > 0
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert {m.p for m in model.modules() if isinstance(m, FastDropout)} == {0.2}


def _optimizer(model, fused: bool = True):
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                             lr=1e-2, fused=fused)  # fmt: skip


def _batch(step: int):
    g = torch.Generator().manual_seed(step)
    # Few distinct tokens per batch (like real text), drawn from a growing range, so rows enter over time.
    ids = torch.randint(0, 40 + 60 * step, (4, 12), generator=g)
    return ids, torch.randint(0, 2, (4,), generator=g)


def _train(model, steps, max_norm, fast: bool, start: int = 0, fused: bool = True, make=None):
    optimizer = make(model) if make else _optimizer(model, fused)
    rows = sparse_row_adamw(model, optimizer, device=torch.device("cpu"), world=1, l1_penalty=0.0) if fast else None
    assert (rows is not None) == fast
    norms = []
    sparse_steps = 0  # steps whose embedding rows were updated by the row update (not yet by the fused kernel)
    for step in range(start, start + steps):
        ids, labels = _batch(step)
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids).logits, labels)
        loss.backward()
        if rows:
            sparse_steps += not rows.dense
            norms.append(float(rows.clip_grad_norm_(list(model.parameters()), max_norm)))
            rows.step()
        else:
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return optimizer, norms, sparse_steps


# Clipping active on every step / never; with the fused AdamW the clip is its grad_scale, otherwise a multiply.
# dense_share 1: sparse to the end; 0.2: past 100 of the 500 rows touched, the fused kernel takes over mid-run.
@pytest.mark.parametrize(
    "max_norm,fused,dense_share",
    [(0.05, True, 1.0), (float("inf"), True, 1.0), (0.05, False, 1.0), (0.05, True, 0.2), (0.05, False, 0.2)],
)
def test_sparse_row_adamw_matches_dense_adamw(max_norm, fused, dense_share, monkeypatch):
    monkeypatch.setattr(SparseRowAdamW, "DENSE_SHARE", dense_share)
    dense_model = _tiny_bert()
    fast_model = copy.deepcopy(dense_model)
    dense_opt, dense_norms, _ = _train(dense_model, 6, max_norm, fast=False)
    fast_opt, fast_norms, sparse_steps = _train(fast_model, 6, max_norm, fast=True, fused=fused)
    if dense_share == 1.0:
        assert sparse_steps == 6
    else:  # sparse for the first steps, dense after: both halves are checked against torch below
        assert 1 <= sparse_steps <= 4
    assert (getattr(fast_opt, "grad_scale", None) is not None) == (fused and max_norm < 1)
    assert fast_norms == pytest.approx(dense_norms, rel=1e-4)
    if max_norm < 1:
        assert min(dense_norms) > max_norm  # the clip really scaled every step
    # Float rounding differs (a sparse sum vs a dense scatter), and Adam amplifies it where moments are tiny:
    # agreement to 1e-5 against weights that moved by up to 6e-2 (a wrong formula or a missing decay: > 1e-4).
    # (A key bias cannot change attention, so its true gradient is 0 and Adam turns rounding noise into full
    # steps in both runs alike: it is left out.)
    for (name, a), b in zip(dense_model.named_parameters(), fast_model.parameters()):
        if not name.endswith("key.bias"):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name
    emb = fast_model.get_input_embeddings().weight
    dense_state = dense_opt.state[dense_model.get_input_embeddings().weight]
    for key in ("exp_avg", "exp_avg_sq"):
        scale = float(dense_state[key].abs().max())
        assert torch.allclose(fast_opt.state[emb][key], dense_state[key], rtol=1e-4, atol=1e-4 * scale), key
    assert float(fast_opt.state[emb]["step"]) == float(dense_state["step"]) == 6
    untouched = dense_state["exp_avg_sq"].eq(0).all(dim=1)
    assert untouched.sum() > 100  # most rows never had a gradient: the case the fast path exists for


def _adafactor(model):
    from transformers.optimization import Adafactor

    return Adafactor(model.parameters(), lr=1e-2, scale_parameter=False, relative_step=False, warmup_init=False,
                     weight_decay=0.1)  # fmt: skip


# The optimizers core.components.build_optimizer makes besides AdamW, set up as it does.
OTHER_OPTIMIZERS = {
    "adam": lambda m: torch.optim.Adam(m.parameters(), lr=1e-2, weight_decay=0.1, fused=True),
    "sgd": lambda m: torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1),
    "adafactor": _adafactor,
}


@pytest.mark.parametrize("name", list(OTHER_OPTIMIZERS))
def test_other_optimizers_read_the_kept_buffer_and_train_as_with_a_dense_gradient(name):
    """Without AdamW there is no row update: the embedding's sparse gradient is written into a buffer kept from
    step to step, which the optimizer reads as a dense gradient. The same weights as the stock dense path."""
    make = OTHER_OPTIMIZERS[name]
    dense_model = _tiny_bert()
    fast_model = copy.deepcopy(dense_model)
    start = fast_model.get_input_embeddings().weight.detach().clone()
    _, dense_norms, _ = _train(dense_model, 6, 0.05, fast=False, make=make)
    _, fast_norms, sparse_steps = _train(fast_model, 6, 0.05, fast=True, make=make)
    assert sparse_steps == 0
    assert fast_norms == pytest.approx(dense_norms, rel=1e-4)
    assert min(dense_norms) > 0.05  # the clip scaled the buffer too
    for (pname, a), b in zip(dense_model.named_parameters(), fast_model.parameters()):
        if not pname.endswith("key.bias"):  # see test_sparse_row_adamw_matches_dense_adamw
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), pname
    assert float((fast_model.get_input_embeddings().weight.detach() - start).abs().max()) > 1e-3  # it trained


@pytest.mark.parametrize("name", list(OTHER_OPTIMIZERS))
def test_the_other_optimizers_leave_the_gradient_they_read_as_it_was(name):
    """The kept buffer is cleared row by row (only the rows written last step): an optimizer that added into
    its gradient in place would leave other rows non-zero for the next step. None of the engine's does."""
    model = torch.nn.Linear(8, 64)
    optimizer = OTHER_OPTIMIZERS[name](model)
    grad = torch.zeros_like(model.weight)
    grad[3] = 1.0
    for _ in range(3):
        model.weight.grad, model.bias.grad = grad, None
        optimizer.step()
    expected = torch.zeros_like(grad)
    expected[3] = 1.0
    assert torch.equal(grad, expected)


def test_sparse_row_state_is_plain_adamw_state():
    """A checkpoint from the fast path resumes in stock AdamW (and back) with the same result."""
    reference = _tiny_bert()
    mixed = copy.deepcopy(reference)
    _train(reference, 6, 1.0, fast=False)
    fast_opt, _, _ = _train(mixed, 3, 1.0, fast=True)
    mixed.get_input_embeddings().sparse = False
    dense_opt = _optimizer(mixed)
    dense_opt.load_state_dict(fast_opt.state_dict())
    for step in range(3, 6):
        ids, labels = _batch(step)
        torch.nn.functional.cross_entropy(mixed(input_ids=ids).logits, labels).backward()
        torch.nn.utils.clip_grad_norm_(mixed.parameters(), 1.0)
        dense_opt.step()
        dense_opt.zero_grad(set_to_none=True)
    for (name, a), b in zip(reference.named_parameters(), mixed.parameters()):
        if not name.endswith("key.bias"):  # see above
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name


def test_fast_path_is_only_taken_where_it_is_exact():
    model = _tiny_bert()
    cpu = torch.device("cpu")
    opt = _optimizer(model)
    assert isinstance(sparse_row_adamw(model, opt, device=cpu, world=1, l1_penalty=0.0), SparseRowAdamW)
    model.get_input_embeddings().sparse = False
    assert sparse_row_adamw(model, opt, device=cpu, world=2, l1_penalty=0.0) is None  # DDP: dense all-reduce
    assert sparse_row_adamw(model, opt, device=cpu, world=1, l1_penalty=1e-4) is None  # L1 is dense
    other = sparse_row_adamw(model, torch.optim.Adam(model.parameters()), device=cpu, world=1, l1_penalty=0)
    assert other is not None and other.dense  # not AdamW: no row update, only the kept gradient buffer
    model.get_input_embeddings().weight.requires_grad_(False)
    assert sparse_row_adamw(model, opt, device=cpu, world=1, l1_penalty=0.0) is None  # frozen embeddings
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=16, n_layer=1, n_head=2, n_positions=32))
    assert sparse_row_adamw(gpt, _optimizer(gpt), device=cpu, world=1, l1_penalty=0.0) is None  # tied LM head


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _drive(tuner, clock, steps: int, seconds_per_step) -> list[int]:
    chosen = []
    for _ in range(steps):
        tuner.begin()
        clock.now += seconds_per_step(tuner.current)
        tuner.count(1000)
        tuner.end()
        clock.now += 5.0  # evaluation, logging, checkpoints between steps: never counted
        chosen.append(tuner.current)
    return chosen


@pytest.fixture
def tuner_env(monkeypatch):
    import core.fastpath as fp

    clock, threads = _FakeClock(), {"n": 2}
    monkeypatch.setattr(fp.time, "perf_counter", clock)
    monkeypatch.setattr(fp.torch, "set_num_threads", lambda n: threads.update(n=n))
    monkeypatch.setattr(fp.torch, "get_num_threads", lambda: threads["n"])
    monkeypatch.setattr(fp, "cpu_seconds", lambda: None)  # how busy the cores are: unknown, so rounds are timed
    return fp, clock, threads


def _machine(clock, others: dict):
    """Fake per-CPU times of 2 busy cores: other programs use ``others["cores"]`` of them, this process the rest."""
    state = {"t": clock.now, "busy": 0.0, "own": 0.0}

    def read():
        dt, state["t"] = clock.now - state["t"], clock.now
        state["own"] += (2 - others["cores"]) * dt  # the OS shares the two cores out
        state["busy"] += 2 * dt
        return state["busy"], state["own"], clock.now, 2

    return read


def test_cpu_seconds_counts_this_process_inside_the_busy_time_of_its_cores():
    import time

    import core.fastpath as fp

    before = fp.cpu_seconds()
    end = time.process_time() + 0.3
    while time.process_time() < end:  # 0.3 s of this process's CPU on one of its cores
        pass
    after = fp.cpu_seconds()
    busy, own, wall = (b - a for a, b in zip(before[:3], after[:3], strict=True))
    assert after[3] >= 1 and own >= 0.25 and wall >= own - 0.05
    assert busy >= own - 0.1  # the machine's busy time includes ours (ticks are 10 ms)


def test_thread_tuner_tries_no_fewer_threads_when_no_other_program_uses_the_cores(tuner_env, monkeypatch):
    fp, clock, threads = tuner_env
    monkeypatch.setattr(fp, "cpu_seconds", _machine(clock, {"cores": 0.0}))
    tuner = fp.ThreadTuner(2, window=3, recheck_every=9)
    chosen = _drive(tuner, clock, 40, lambda n: 0.10 if n == 2 else 0.16)
    assert chosen == [2] * 40 and tuner._round is None  # no step on one thread, rechecks included


def test_thread_tuner_looks_at_the_machine_for_half_a_second_before_skipping_a_recheck(tuner_env, monkeypatch):
    fp, clock, threads = tuner_env
    others = {"cores": 0.0}
    monkeypatch.setattr(fp, "cpu_seconds", _machine(clock, others))
    tuner, chosen = fp.ThreadTuner(2, window=3, recheck_every=9), []
    for _ in range(60):  # 0.1 s steps back to back: a recheck's first step alone is too short a look
        tuner.begin()
        clock.now += 0.10 if tuner.current == 2 else 0.16
        tuner.count(1000)
        tuner.end()
        chosen.append(tuner.current)
    assert chosen == [2] * 60
    others["cores"] = 0.9  # busy from now on: the next recheck times one thread again
    chosen = _drive(tuner, clock, 20, lambda n: 0.10 if n == 2 else 0.16)
    assert 1 in chosen


def test_thread_tuner_still_times_both_counts_when_another_program_is_busy(tuner_env, monkeypatch):
    fp, clock, threads = tuner_env
    others = {"cores": 0.0}
    monkeypatch.setattr(fp, "cpu_seconds", _machine(clock, others))
    tuner = fp.ThreadTuner(2, window=3, recheck_every=1000)
    assert _drive(tuner, clock, 10, lambda n: 0.10 if n == 2 else 0.16) == [2] * 10
    # Another program takes most of a core: 2 threads now wait at every barrier; the collapse starts a round,
    # the busy cores keep it going, and one thread wins.
    others["cores"] = 0.9
    chosen = _drive(tuner, clock, 30, lambda n: 1.30 if n == 2 else 0.18)
    assert 1 in chosen[:12] and chosen[-10:] == [1] * 10


def test_thread_tuner_keeps_all_threads_on_idle_cores(tuner_env):
    fp, clock, threads = tuner_env
    tuner = fp.ThreadTuner(2, window=3, recheck_every=1000)
    chosen = _drive(tuner, clock, 40, lambda n: 0.10 if n == 2 else 0.16)
    assert chosen[:2] == [2, 2] and 1 in chosen[:8]  # two warm-up steps, then both take turns
    assert chosen[-20:] == [2] * 20 and threads["n"] == 2


def _step_seconds(threads: int, padded_tokens: int) -> float:
    # A MiniLM step on the benchmark machine: ~115 ms of fixed cost and ~0.22 ms per padded token on one
    # thread; two threads take two thirds of that on idle cores.
    return (0.115 + 0.00022 * padded_tokens) * (1.0 if threads == 1 else 0.67)


def _run_with_random_lengths(fp, clock, seed: int) -> int:
    import random

    rng = random.Random(seed)
    tuner, seen = fp.ThreadTuner(2), set()
    for _ in range(60):
        width = rng.randrange(16, 96, 8)
        tuner.begin()
        clock.now += _step_seconds(tuner.current, 16 * width) + (0.0 if width in seen else 0.25)  # a new shape
        seen.add(width)
        real = int(16 * width * rng.uniform(0.75, 0.95))
        tuner.count(real, (16, width))
        tuner.end()
    return tuner.current


def test_thread_tuner_is_not_fooled_by_new_shapes_or_batch_lengths(tuner_env):
    """On idle cores the tuner must keep both threads in (nearly) every run, although the first step at each new
    batch width is slow whatever the thread count and tokens/s varies ~2x with a batch's length. Timing each count
    on its own consecutive batches, with every step counted, the first tuner chose one thread in about a third of
    real MiniLM runs, and 87 of these 200."""
    fp, clock, _ = tuner_env
    one_thread_runs = sum(_run_with_random_lengths(fp, clock, seed) == 1 for seed in range(200))
    assert one_thread_runs <= 2


def test_thread_tuner_drops_to_one_thread_when_cores_turn_busy(tuner_env):
    fp, clock, threads = tuner_env
    tuner = fp.ThreadTuner(2, window=3, recheck_every=1000)
    chosen = _drive(tuner, clock, 30, lambda n: 0.10 if n == 2 else 0.16)
    assert chosen[-1] == 2
    # Another program takes a core: 2 threads now wait at every barrier.
    chosen = _drive(tuner, clock, 30, lambda n: 1.30 if n == 2 else 0.18)
    assert chosen[-10:] == [1] * 10  # the collapse triggered a re-check without waiting for recheck_every
    tuner.close()
    assert threads["n"] == 2  # given back


def test_thread_tuner_is_only_used_when_the_thread_count_is_automatic(tuner_env):
    fp, _, _ = tuner_env
    cpu = torch.device("cpu")
    tuner = fp.thread_tuner(0, cpu, world=1)
    assert isinstance(tuner, fp.ThreadTuner)
    tuner.close()
    assert fp.thread_tuner(4, cpu, world=1) is None  # the user chose
    assert fp.thread_tuner(0, cpu, world=2) is None  # DDP: the launcher sets threads per process
    assert fp.thread_tuner(0, torch.device("cuda"), world=1) is None


# ------------------------------------------------------------------------------------------------ attention dropout
def _tiny_models():
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))  # fmt: skip
    gpt = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, attn_pdrop=0.0, resid_pdrop=0.0,
                                     embd_pdrop=0.0, eos_token_id=0, bos_token_id=0))  # fmt: skip
    return bert.train(), gpt.train()


def _set_attention_dropout(model, p: float) -> None:
    for module in model.modules():
        for name in ("dropout", "attn_dropout"):  # BERT's self-attention / GPT-2's attention
            child = getattr(module, name, None)
            if isinstance(child, torch.nn.Dropout) and hasattr(module, "is_causal"):
                child.p = p


def test_attention_with_fast_dropout_is_the_same_attention(monkeypatch):
    """Keeping every probability, our path must give what stock SDPA gives: padded BERT, causal and padded GPT-2."""
    from core import fastpath

    bert, gpt = _tiny_models()
    ids = torch.randint(0, 100, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:], mask[2, 5:] = 0, 0

    def outputs():
        return [bert(input_ids=ids, attention_mask=mask).last_hidden_state, gpt(input_ids=ids).logits,
                gpt(input_ids=ids, attention_mask=mask).logits]  # fmt: skip

    stock = outputs()
    undo = fastpath.use_fast_attention_dropout()
    assert undo is not None
    real, drawn = fastpath._keep_mask, []
    monkeypatch.setattr(fastpath, "_keep_mask", lambda shape, p: drawn.append(p) or real(shape, p))
    for model in (bert, gpt):
        # > 0 takes our path; at the mask's 1/65,536 resolution it keeps everything, and 1/(1-p) is 1 to 1e-9
        _set_attention_dropout(model, 1e-9)
    ours = outputs()
    assert len(drawn) == 6  # 3 forward passes x 2 layers went through our path
    valid = mask.bool()
    assert (ours[0] - stock[0])[valid].abs().max() < 1e-5
    assert (ours[1] - stock[1]).abs().max() < 1e-5
    assert (ours[2] - stock[2])[valid].abs().max() < 1e-5
    undo()


def test_attention_dropout_drops_at_rate_p_repeats_with_the_seed_and_is_off_in_eval():
    from core import fastpath

    undo = fastpath.use_fast_attention_dropout()
    assert undo is not None
    _, gpt = _tiny_models()
    _set_attention_dropout(gpt, 0.5)
    ids = torch.randint(0, 100, (4, 16), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(5)
    a = gpt(input_ids=ids).logits
    torch.manual_seed(5)
    b = gpt(input_ids=ids).logits
    torch.manual_seed(6)
    c = gpt(input_ids=ids).logits
    assert torch.equal(a, b) and not torch.allclose(a, c)  # seeded masks repeat; another seed draws others
    gpt.eval()
    assert torch.equal(gpt(input_ids=ids).logits, gpt(input_ids=ids).logits)  # no dropout when evaluating
    keep = fastpath._keep_mask(torch.Size([200_000]), 0.3)
    assert abs(keep.float().mean().item() - 0.7) < 0.01
    undo()


def test_fused_gelu_computes_gpt2_gelu_and_leaves_saved_models_stock(tmp_path):
    from transformers.activations import NewGELUActivation

    from core.fastpath import TanhGELU, use_fused_gelu

    x = torch.randn(10_000) * 4
    assert (TanhGELU()(x) - NewGELUActivation()(x)).abs().max() < 1e-5
    _, gpt = _tiny_models()
    ids = torch.randint(0, 100, (2, 10), generator=torch.Generator().manual_seed(3))
    gpt.eval()
    before = gpt(input_ids=ids).logits
    assert use_fused_gelu(gpt) == 2  # one per block
    assert not any(type(m) is NewGELUActivation for m in gpt.modules())
    assert (gpt(input_ids=ids).logits - before).abs().max() < 1e-5
    gpt.save_pretrained(tmp_path)  # the activation has no weights: what is saved loads as a stock GPT-2
    from transformers import GPT2LMHeadModel

    again = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert any(type(m) is NewGELUActivation for m in again.modules())
    assert (again(input_ids=ids).logits - before).abs().max() < 1e-5


# ------------------------------------------------------------------------------------------------ causal-LM loss
def _tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=300, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))  # fmt: skip


@pytest.mark.parametrize("bf16", [False, True])
def test_causal_lm_loss_is_the_models_own_loss_and_gradient(bf16):
    from core.fastpath import causal_lm_loss

    model = _tiny_gpt2()
    ids = torch.randint(0, 300, (3, 20), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 14:] = 0  # a padded row: its pad tokens stay targets, as in the stock loss given labels=input_ids

    def run(ours: bool):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if ours:
                loss = causal_lm_loss(model(input_ids=ids, attention_mask=mask).logits, ids)
            else:
                loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    stock_loss, stock_grads = run(False)
    loss, grads = run(True)
    assert loss.dtype == torch.float32 and torch.allclose(loss, stock_loss, rtol=1e-6, atol=1e-6)
    for name, grad in grads.items():
        scale = float(stock_grads[name].abs().max()) + 1e-12
        assert (grad - stock_grads[name]).abs().max() <= 1e-4 * scale, name


def test_blocked_cross_entropy_over_several_blocks_with_ignored_rows():
    from core.fastpath import _BlockedCrossEntropy

    g = torch.Generator().manual_seed(4)
    logits = (torch.randn(37, 11, generator=g) * 3).requires_grad_(True)
    targets = torch.randint(0, 11, (37,), generator=g)
    targets[[0, 5, 36]] = -100
    stock = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100)
    (stock_grad,) = torch.autograd.grad(stock, logits)
    ours = _BlockedCrossEntropy.apply(logits, targets, 8)  # blocks of 8 rows: the last one is partial
    (grad,) = torch.autograd.grad(ours * 2.0, logits)  # an upstream gradient other than 1 is passed through
    assert torch.allclose(ours, stock, atol=1e-6)
    assert torch.allclose(grad, 2.0 * stock_grad, atol=1e-7)
    assert grad[[0, 5, 36]].abs().max() == 0  # ignored rows get no gradient


def test_causal_lm_loss_with_prompt_tuning_matches_peft():
    from peft import PromptTuningConfig, TaskType, get_peft_model

    from core.fastpath import causal_lm_loss

    model = get_peft_model(_tiny_gpt2(), PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4))
    ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    logits = model(input_ids=ids, attention_mask=mask).logits
    assert logits.shape[1] == 16  # the virtual tokens come first
    stock = model(input_ids=ids, attention_mask=mask, labels=ids).loss
    assert torch.allclose(causal_lm_loss(logits, ids), stock, rtol=1e-6)


# ------------------------------------------------------------------------------------------------ bf16 scoring
def _encoded(rows: int, seed: int, lm: bool = False):
    from core.batching import Encoded

    g = np.random.default_rng(seed)
    ids = [list(g.integers(5, 290, size=int(g.integers(3, 20)))) for _ in range(rows)]
    return Encoded(ids, None, None if lm else g.integers(0, 2, size=rows), max_length=64)


def _scores(model, data, task: str, fast: bool):
    from core.scoring import score_encoded

    return score_encoded(model, data, task, batch_size=8, pad_id=0, device=torch.device("cpu"), precision="bf16",
                         fast_path=fast)  # fmt: skip


def test_bf16_scoring_uses_a_refreshed_bf16_twin_and_scores_as_autocast_does():
    from core.fastpath import _TWINS, bf16_twin

    model, data = _tiny_bert(), _encoded(40, seed=1)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    fast, stock = _scores(model, data, "classification", True), _scores(model, data, "classification", False)
    twin = _TWINS[model]
    assert {p.dtype for p in twin.parameters()} == {torch.bfloat16} and not twin.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # the model itself is untouched
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert np.allclose(fast.logits, stock.logits, atol=0.01) and abs(fast.loss - stock.loss) < 0.002
    assert (fast.logits.argmax(1) == stock.logits.argmax(1)).mean() >= 0.95

    # New weights (as after training steps) reach the same twin at the next scoring.
    with torch.no_grad():
        model.classifier.weight.mul_(-3.0)
    again, stock_again = _scores(model, data, "classification", True), _scores(model, data, "classification", False)
    assert _TWINS[model] is twin
    assert not np.allclose(again.logits, fast.logits, atol=0.05)
    assert np.allclose(again.logits, stock_again.logits, atol=0.01)

    # Only on a CPU at bf16: elsewhere the model itself.
    assert bf16_twin(model, device=torch.device("cpu"), precision="fp32") is model
    assert bf16_twin(model, device=torch.device("meta"), precision="bf16") is model


def test_bf16_twin_scores_a_language_model_and_follows_a_changed_shape():
    from core.fastpath import _TWINS

    model, data = _tiny_gpt2(), _encoded(24, seed=2, lm=True)
    fast, stock = _scores(model, data, "generation", True), _scores(model, data, "generation", False)
    assert abs(fast.loss - stock.loss) < 0.002 * stock.loss and fast.tokens == stock.tokens
    first = _TWINS[model]
    model.lm_head = torch.nn.Linear(32, 300, bias=True)  # one more parameter than the twin has
    _scores(model, data, "generation", True)
    assert _TWINS[model] is not first and len(list(_TWINS[model].parameters())) == len(list(model.parameters()))
