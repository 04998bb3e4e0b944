"""Drop-in replacements that compute the same thing as the stock modules, faster on a CPU.

A run gets all of them through one call, ``install(...)``, which returns a ``FastPath``: the loop calls its
methods at fixed points of the step, and ``close()`` undoes every process-wide change (the thread count, the
"sdpa" attention routing). One setting turns it off: ``train.fast_path = False`` for a run, or
``WORKBENCH_FAST_PATH=0`` in the environment for every run of the process; then the loop runs the stock modules.

Why each exists: torch's CPU dropout draws each mask element from a scalar Mersenne Twister, which made dropout
one of the largest costs of a small-batch fine-tuning step; NumPy's PCG64 fills the same Bernoulli mask in a
fraction of that time. The figures for this and every other speed-up here are in bench/README.md
("Measurement history").
"""

from __future__ import annotations

import copy
import functools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.hf import load_transformers

_LEVELS = 1 << 16  # mask resolution: p is honoured to within 1/65,536
_LOCK = threading.Lock()


class FastDropout(torch.nn.Module):
    """nn.Dropout with the mask drawn by NumPy on CPU tensors (same distribution and scaling; elsewhere: stock).

    Each call seeds its generator from torch's RNG, so a seeded run repeats exactly and a resumed run (which
    restores torch's RNG state) draws the masks it would have drawn.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training)
        return x * _scaled_keep_mask(x.shape, self.p, x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A Bernoulli(1 - p) keep mask (bool) drawn by NumPy, seeded from torch's RNG (seeded runs repeat; resume
    continues).

    The draws are the generator's raw 64-bit outputs cut into four 16-bit numbers, each uniform on [0, 65,536):
    a quarter of the generator calls of ``integers(dtype=uint16)``, which also spends time on range checks.
    """
    n = math.prod(shape)
    seed = int(torch.randint(0, 2**62, (1,)))
    raw = np.random.PCG64(seed).random_raw((n + 3) // 4).view(np.uint16)[:n]
    return torch.from_numpy(raw >= round(p * _LEVELS)).view(shape)


# A dtype's bit pattern as an unsigned integer type of the same width (NumPy has no bfloat16).
_BIT_TYPES = {torch.bfloat16: np.uint16, torch.float16: np.uint16, torch.float32: np.uint32}


def _scaled_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """The dropout multiplier: 1/(1-p) where kept, 0 where dropped, in ``dtype``, built in one NumPy pass.

    For bf16, fp16 and fp32 the kept value's bit pattern is written straight into an integer array that is then
    viewed as ``dtype``, instead of converting a bool mask and scaling it (two more passes over the mask). The
    values are those of ``mask.to(dtype) * (1 / (1 - p))``: the scale rounded once to ``dtype``.
    """
    keep = _keep_mask(shape, p)
    bits = _BIT_TYPES.get(dtype)
    if bits is None:
        return keep.to(dtype).mul_(1.0 / (1.0 - p))
    return torch.from_numpy(np.multiply(keep.numpy(), _kept_bits(p, dtype), dtype=bits)).view(dtype)


@functools.cache
def _kept_bits(p: float, dtype: torch.dtype):
    """The bit pattern of 1/(1-p) in ``dtype``, as NumPy's unsigned integer of its width (worked out once per
    rate and dtype: building it took ~15 us, ~0.3 ms of a MiniLM step's 20 masks)."""
    bits = _BIT_TYPES[dtype]
    pattern = torch.tensor([1.0 / (1.0 - p)], dtype=dtype).view(torch.int16 if bits is np.uint16 else torch.int32)
    return bits(int(pattern) & np.iinfo(bits).max)


_STOCK_SDPA = None


def _attention_with_fast_dropout(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                                 is_causal=None, **kwargs):  # fmt: skip
    """transformers' "sdpa" attention, except in CPU training with attention dropout: there, the same math as
    SDPA's own CPU math path (which it takes whenever dropout > 0), with the dropout mask drawn by NumPy.

    torch draws that mask from a scalar Mersenne Twister, a large share of a small GPT-2's training step with
    128-token blocks. Everywhere else (evaluation, generation, GPUs, grouped-query or biased attention) the
    stock function runs unchanged, and models keep "sdpa" in their config, so saved models are stock.
    """
    plain = (
        dropout == 0.0
        or not module.training
        or query.device.type != "cpu"
        or kwargs.get("position_bias") is not None
        or kwargs.get("softcap") is not None
        or getattr(module, "num_key_value_groups", 1) > 1
    )
    if plain:
        return _STOCK_SDPA(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                           is_causal=is_causal, **kwargs)  # fmt: skip
    q_len, kv_len = query.shape[2], key.shape[2]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scale
    lowest = torch.finfo(scores.dtype).min  # not -inf: a fully masked row gives zeros, not NaN
    if attention_mask is not None:
        mask = attention_mask[:, :, :, :kv_len]
        scores = scores.masked_fill(~mask, lowest) if mask.dtype == torch.bool else scores + mask
    elif q_len > 1 and (is_causal if is_causal is not None else getattr(module, "is_causal", True)):
        future = torch.ones(q_len, kv_len, dtype=torch.bool, device=scores.device).triu(kv_len - q_len + 1)
        scores = scores.masked_fill(future, lowest)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    probs = (probs * _scaled_keep_mask(probs.shape, dropout, probs.dtype)).to(value.dtype)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


_ATTENTION_USERS = 0  # runs that have the routing installed (threads of one process can train at once)


def use_fast_attention_dropout() -> Callable[[], None] | None:
    """Route transformers' "sdpa" attention through _attention_with_fast_dropout; returns the call that undoes it.

    The registration is process-wide, so it is counted: the stock function comes back when the last run that
    installed it undoes it. None when transformers has no attention registry.
    """
    global _STOCK_SDPA, _ATTENTION_USERS
    load_transformers()
    try:
        from transformers import AttentionInterface
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
    except ImportError:
        return None
    with _LOCK:
        if _ATTENTION_USERS == 0:
            _STOCK_SDPA = sdpa_attention_forward
            AttentionInterface.register("sdpa", _attention_with_fast_dropout)
        _ATTENTION_USERS += 1
    undone = False

    def undo() -> None:
        global _ATTENTION_USERS
        nonlocal undone
        with _LOCK:
            if undone:
                return
            undone = True
            _ATTENTION_USERS -= 1
            if _ATTENTION_USERS == 0:
                AttentionInterface.register("sdpa", _STOCK_SDPA)

    return undo


class TanhGELU(torch.nn.Module):
    """GPT-2's "gelu_new" (and FastGELU) as torch's one fused kernel: the same tanh formula, not six elementwise ops.

    transformers writes it in Python (pow, mul, add, tanh, add, mul), each a pass over the MLP's largest
    activation, in the forward and again in the backward.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


def use_fused_gelu(model: torch.nn.Module) -> int:
    """Swap transformers' Python tanh-GELU modules for TanhGELU (no weights: saved models are unchanged)."""
    load_transformers()
    try:
        from transformers.activations import FastGELUActivation, NewGELUActivation
    except ImportError:
        return 0
    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) in (NewGELUActivation, FastGELUActivation):
                setattr(parent, name, TanhGELU())
                swapped += 1
    return swapped


def use_fast_dropout(model: torch.nn.Module) -> int:
    """Swap every nn.Dropout in ``model`` for FastDropout (same p); returns how many were swapped.

    Dropout holds no weights, so saving and loading the model are unaffected.
    """
    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is torch.nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
                swapped += 1
    return swapped


class _BlockedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over the rows whose target is not -100, computed a block of rows at a time.

    The stock path upcasts the whole [tokens x vocab] logits to fp32, keeps the fp32 log-softmax for the
    backward, then zero-fills and scatters a gradient of the same size: several passes over a matrix far larger
    than the caches. Here each block of rows is upcast while it is in cache, only the log-sum-exp per row is
    kept, and the backward recomputes softmax - one-hot from the saved logits. The same formula in fp32.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, rows: int) -> torch.Tensor:
        valid = targets != -100
        safe = targets.clamp(min=0)
        lse = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
        total = torch.zeros((), dtype=torch.float32, device=logits.device)
        for start in range(0, logits.shape[0], rows):
            block = logits[start : start + rows].float()
            block_lse = torch.logsumexp(block, dim=1)
            lse[start : start + rows] = block_lse
            picked = block.gather(1, safe[start : start + rows, None]).squeeze(1)
            total += ((block_lse - picked) * valid[start : start + rows]).sum()
        count = valid.sum().clamp(min=1)
        ctx.save_for_backward(logits, safe, valid, lse, count)
        ctx.rows = rows
        return total / count

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        logits, safe, valid, lse, count = ctx.saved_tensors
        rows = ctx.rows
        grad = torch.empty_like(logits)
        scale = (grad_output / count).float()
        for start in range(0, logits.shape[0], rows):
            probs = logits[start : start + rows].float().sub_(lse[start : start + rows, None]).exp_()
            probs[torch.arange(probs.shape[0], device=probs.device), safe[start : start + rows]] -= 1.0
            grad[start : start + rows] = probs.mul_(valid[start : start + rows, None] * scale)
        return grad, None, None


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss transformers computes for ``model(input_ids, labels=labels)``, a block of rows at a time.

    ``labels`` are aligned with the inputs (the input ids for plain language modelling, or ids with -100 where a
    token is not learned, such as a prompt); they are shifted by one here, as transformers does, and -100 is
    skipped. Where the logits are longer than the labels (peft's prompt tuning prepends virtual tokens) the
    extra leading positions get -100, as peft does.
    """
    batch, length = labels.shape
    if logits.shape[1] > length:
        prefix = torch.full((batch, logits.shape[1] - length), -100, dtype=labels.dtype, device=labels.device)
        labels = torch.cat([prefix, labels], dim=1)
    targets = F.pad(labels, (0, 1), value=-100)[:, 1:].reshape(-1)
    vocab = logits.shape[-1]
    rows = max(16, (1 << 18) // vocab)  # a block of about 1 MB of fp32: it stays in a core's cache
    return _BlockedCrossEntropy.apply(logits.reshape(-1, vocab), targets, rows)


def language_model_loss(model, batch: dict, labels: torch.Tensor | None = None, fast: bool = True) -> torch.Tensor:
    """The causal-LM loss of ``model`` on ``batch`` as training and evaluation compute it: on a CPU in blocks of
    rows (causal_lm_loss, no fp32 copy of all the logits), elsewhere or with the fast path off (``fast=False``)
    the model's own. ``labels`` (aligned with the inputs, -100 where not learned) default to the inputs."""
    labels = batch["input_ids"] if labels is None else labels
    if fast and labels.device.type == "cpu":
        return causal_lm_loss(model(**batch).logits, labels)
    return model(**batch, labels=labels).loss


# A bf16 twin is made for models up to this size (it holds a second copy of the weights, at half their fp32 size).
TWIN_MAX_PARAMS = 350_000_000
_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its bf16 twin, gone with the model


def bf16_twin(model, *, device, precision: str):
    """The model to score with under ``precision``: on a CPU at bf16, a copy of ``model`` whose weights are bf16,
    with ``model``'s current weights copied in (made once per model, refreshed at each call); else ``model``.

    Scoring under autocast casts the inputs of every layer norm, softmax and activation back and forth between
    fp32 and bf16; a bf16 model does none of that. Scoring MiniLM over 872 short sentences was 1.16-1.19x faster
    on the twin, refresh included (three pairs in one process; the matmuls are bf16 in both). Training keeps fp32
    weights: this is for no-grad passes only, which run without autocast on the twin. The twin is the model's own class
    (deep-copied), so every architecture and adapter scores the same way; a BERT-style twin gets the fast
    layers in eval mode too (core/fast_layers.py), since its callers read only the logits.
    """
    if device.type != "cpu" or precision != "bf16":
        return model
    params = list(model.parameters())
    if not params or any(p.dtype != torch.float32 for p in params) or sum(p.numel() for p in params) > TWIN_MAX_PARAMS:
        return model
    with _LOCK:
        twin = _TWINS.get(model)
        if twin is not None and _shape(twin) != _shape(model):
            twin = None  # the model changed shape since (an adapter merged, a head replaced): copy it again
        if twin is None:
            try:
                twin = copy.deepcopy(model).to(torch.bfloat16).eval()
            except Exception:  # noqa: BLE001 - a model that cannot be copied is scored as it is, under autocast
                return model
            from core.fast_layers import use_fast_layers

            use_fast_layers(twin, scoring=True)  # only scores: fused QKV, a first-token head's last layer on row 0
            _TWINS[model] = twin
        with torch.no_grad():
            for source, target in zip(model.parameters(), twin.parameters(), strict=True):
                target.copy_(source)
            for source, target in zip(model.buffers(), twin.buffers(), strict=True):
                target.copy_(source)
    return twin


def _shape(model) -> tuple[int, int]:
    """How many parameters and buffers ``model`` holds (a twin with other counts is stale)."""
    return sum(1 for _ in model.parameters()), sum(1 for _ in model.buffers())


class SparseRowAdamW:
    """Exact AdamW for the token-embedding matrix that touches only the rows that ever had a gradient.

    A batch of 16 short texts uses a few hundred of the 30k rows, yet a dense gradient means zero-filling and
    scattering a 47 MB matrix, measuring its norm, and running Adam over all of it every step. Rows that never had a gradient have zero moments, so for them AdamW reduces to
    the decoupled weight decay, applied here to the whole matrix as one multiply. Rows that had one are updated
    with the same formula as torch's AdamW, from moments kept in the optimizer's own state (same keys), so
    checkpoints and resume work unchanged and the weights match a dense run to float rounding.

    Rows that had a gradient keep being updated (their moments are not zero), and on real text they add up: 6,920
    short sentences with a real-size vocabulary (bench's "wide" set) touch 13,500 of MiniLM's rows in one epoch,
    and gathering and scattering that many rows cost ~60 ms a step. So once more than ``DENSE_SHARE`` of the
    rows have been touched, the fused AdamW takes the embedding over, from the same moments and step count in
    the same state (exact: untouched rows only decay in both). Its gradient stays sparse: the rows are written
    into a dense buffer kept from step to step (a fresh 47 MB gradient each step would be zero-filled and, being
    above glibc's mmap threshold, faulted in page by page), and the norm still comes from the sparse values.

    With any other optimizer (Adam, SGD, Adafactor) there is no row update: ``rows=False`` starts with the kept
    buffer, which the optimizer reads as the embedding's dense gradient. A fresh one each step cost ~11,900 page
    faults: a MiniLM step was 1.19x faster with plain Adam and 1.13x with SGD (bench/README.md).

    Use: ``clip_grad_norm_`` instead of torch's (it counts the embedding's sparse gradient and takes it out of
    the dense path), then ``step()`` just before ``optimizer.step()``.
    """

    DENSE_SHARE = 0.04
    """Share of touched rows beyond which the fused update over the whole matrix is cheaper. MiniLM's 30,522
    rows (clip + update + optimizer step): 1,000 touched 4.5 ms by rows against 9.4 fused, 2,000 22.6 against
    10.4, 10,000 68.7 against 10.7 (bench/README.md)."""

    def __init__(self, embedding: torch.nn.Embedding, optimizer: torch.optim.Optimizer, rows: bool = True):
        self.weight = embedding.weight
        self.optimizer = optimizer
        self._rows: torch.Tensor | None = None
        self._grads: torch.Tensor | None = None
        self._touched: torch.Tensor | None = None  # bool per row: ever had a gradient (nonzero moments)
        # The dense gradient the optimizer reads: once the fused AdamW took over, or from the start without rows.
        self._buffer = None if rows else torch.zeros_like(self.weight, memory_format=torch.contiguous_format)
        self._written = torch.zeros(0, dtype=torch.long)  # the buffer's rows that hold last step's gradient
        embedding.sparse = True

    @property
    def dense(self) -> bool:
        """Whether the fused AdamW has taken the embedding over (too many rows touched for the row update)."""
        return self._buffer is not None

    def _group(self) -> dict:
        # Looked up each time: load_state_dict (resume) replaces the optimizer's group dicts.
        return next(g for g in self.optimizer.param_groups if any(p is self.weight for p in g["params"]))

    def clip_grad_norm_(self, parameters, max_norm: float) -> torch.Tensor:
        """torch.nn.utils.clip_grad_norm_ over ``parameters`` with the embedding's sparse gradient included."""
        grad = self.weight.grad
        self.optimizer.grad_scale = None  # set below for this step only, where the fused kernel does the clip
        if grad is not None and not grad.is_sparse:  # something made it dense (e.g. a tied use): plain AdamW
            self._touched = None  # the dense step moves rows this cache does not know about
            return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        self.weight.grad = None  # the dense optimizer must skip it; step() applies it (or the buffer, below)
        dense = [p for p in parameters if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in dense]) if dense else torch.zeros(())
        self._rows = self._grads = None
        if grad is not None:
            grad = grad.coalesce()
            rows, values = grad.indices()[0], grad.values()
            norm = torch.sqrt(norm.float() ** 2 + values.float().pow(2).sum())
            if self._buffer is not None:  # the fused AdamW's from here on: its gradient, dense
                self._buffer.index_fill_(0, self._written, 0.0)
                self._buffer.index_copy_(0, rows, values.to(self._buffer.dtype))
                self._written = rows
                self.weight.grad = self._buffer
                dense.append(self.weight)
            else:
                self._rows, self._grads = rows, values
        coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        if dense and self.optimizer.defaults.get("fused"):
            # The fused kernel divides each gradient by grad_scale as it reads it (the hook AMP's GradScaler uses),
            # which spares a multiply pass over every dense gradient; where nothing is clipped it is left unset.
            if float(coef) < 1.0:
                self.optimizer.grad_scale = (1.0 / coef).to(torch.float32)
        elif dense:
            torch.nn.utils.clip_grads_with_norm_(dense, max_norm, norm)
        if self._grads is not None:
            self._grads = self._grads * coef
        return norm

    @torch.no_grad()
    def step(self) -> None:
        if self._rows is None:
            return
        group = self._group()
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        weight = self.weight
        state = self.optimizer.state[weight]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(weight, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(weight, memory_format=torch.preserve_format)
        if self._touched is None:  # first step, or after a resume: the moments say which rows were touched
            self._touched = state["exp_avg_sq"].ne(0).any(dim=1)
        state["step"] += 1
        t = float(state["step"])
        self._touched[self._rows] = True
        rows = self._touched.nonzero().squeeze(1)  # sorted
        if len(rows) > self.DENSE_SHARE * len(self._touched):  # from the next step on: the fused update
            self._buffer = torch.zeros_like(weight, memory_format=torch.contiguous_format)
        grads = torch.zeros((len(rows), weight.shape[1]), dtype=weight.dtype)
        grads[torch.searchsorted(rows, self._rows)] = self._grads.to(weight.dtype)
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(grads, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(grads, grads, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        if decay:
            weight.mul_(1 - lr * decay)  # every row decays in AdamW, touched or not
        denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
        weight.index_add_(0, rows, exp_avg / denom, alpha=-lr / (1 - beta1**t))
        self._rows = self._grads = None


def sparse_row_adamw(model, optimizer, *, device, world: int, l1_penalty: float) -> SparseRowAdamW | None:
    """The embedding fast path where it is exact and pays: one CPU process, an untied trainable input embedding
    (a tied LM head makes its gradient dense anyway), no L1 term (dense in every row). The row update with
    AdamW; with any other optimizer only the kept gradient buffer."""
    if device.type != "cpu" or world > 1 or l1_penalty:
        return None
    rows = type(optimizer) is torch.optim.AdamW and not any(
        g.get("amsgrad") or g.get("maximize") for g in optimizer.param_groups
    )
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if type(embedding) is not torch.nn.Embedding or not embedding.weight.requires_grad:
        return None
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and getattr(output, "weight", None) is embedding.weight:
        return None
    if not any(p is embedding.weight for g in optimizer.param_groups for p in g["params"]):
        return None
    return SparseRowAdamW(embedding, optimizer, rows=rows)


class ThreadTuner:
    """Chooses torch's CPU thread count by timing training steps, and checks again now and then.

    On cores that other programs keep busy, OpenMP threads wait at every barrier for a partner the OS has
    descheduled: with one other busy process, 2 threads can be many times slower than 1, yet on idle cores 2
    threads are clearly faster. So the candidates are timed in
    rounds, the fewer threads are kept only when clearly faster, and the candidates are timed again every
    ``recheck_every`` steps or when the speed collapses.

    What misled the first version (it kept one thread on idle cores in about one MiniLM run of three): the first step at each new batch width is slow whatever the thread count (oneDNN builds
    its kernels for the shape), and the early steps meet one new width after another; and a step has a large
    fixed cost, so tokens per second varies by 2x with the batch's length. So steps at a new shape are not
    timed, the candidates take turns step by step within a round (they meet the same mix of lengths), and
    fewer threads must be ``margin`` times faster to win: the choice that matters is between ~1.5x and a
    collapse, which neither effect can fake.

    Where the OS says how busy the cores are (psutil's per-CPU times), a round ends after its first timed step when
    other programs used less than ``QUIET_CORES`` of the cores we run on since the round began: fewer threads
    cannot win there, and each step of the trial on one thread cost ~0.1 s (a MiniLM run on idle cores spent
    12 steps, 2.4 s, on them).
    """

    QUIET_CORES = 0.25

    def __init__(self, threads: int, window: int = 6, recheck_every: int = 300, margin: float = 1.25):
        self.original = torch.get_num_threads()
        self.candidates = sorted({threads, max(1, threads // 2), 1}, reverse=True)  # most threads first
        self.window, self.recheck_every, self.margin = window, recheck_every, margin
        self.rates: dict[int, float] = {}
        self._since_check = 0
        self._t0: float | None = None
        self._shapes: set[tuple] = set()
        self._new_shape = False
        self._start_round(skip=2)  # the first steps allocate and pick kernels: not representative

    def _use(self, threads: int) -> None:
        self.current = threads
        torch.set_num_threads(threads)

    def _start_round(self, skip: int = 0) -> None:
        self._round: dict[int, list[float]] | None = {c: [0.0, 0.0] for c in self.candidates}  # tokens, seconds
        self._turn, self._skip, self._tokens = 0, skip, 0
        self._steps, self._window_tokens, self._busy = 0, 0, 0.0  # the chosen count's current window
        self._use(self.candidates[0])
        self._since = cpu_seconds()  # the machine's use when the round began: idle cores end it early

    def begin(self) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def count(self, tokens: int, shape: tuple | None = None) -> None:
        """Add this step's tokens; ``shape`` is the batch's, and a step with a shape not met before is not timed:
        its kernels are being set up (oneDNN builds a primitive per shape), which costs one of the thread counts
        a slow step that says nothing about it."""
        self._tokens += tokens
        if shape is not None and shape not in self._shapes:
            self._shapes.add(shape)
            self._new_shape = True

    def end(self) -> None:
        if self._t0 is None:
            return
        seconds, tokens, new_shape = time.perf_counter() - self._t0, self._tokens, self._new_shape
        self._t0, self._tokens, self._new_shape = None, 0, False
        if self._skip or new_shape:
            self._skip = max(0, self._skip - 1)
            return
        if self._round is not None:  # a timing round: this step counts for the candidate that ran it
            self._round[self.current][0] += tokens
            self._round[self.current][1] += seconds
            self._turn += 1
            if self._turn == 1:
                idle = self._cores_idle()
                if idle is None:  # too short a look at the machine yet: the first count runs on
                    self._turn = 0
                    return
                if idle:
                    self._round = None  # nobody else wants the cores: keep every thread, try no fewer
                    return
            if self._turn < self.window * len(self.candidates):
                self._use(self.candidates[self._turn % len(self.candidates)])
            else:
                self._decide()
            return
        self._steps += 1
        self._busy += seconds
        self._window_tokens += tokens
        if self._steps < self.window:
            return
        rate = self._window_tokens / max(self._busy, 1e-9)
        self._steps, self._busy, self._window_tokens = 0, 0.0, 0
        self._since_check += self.window
        collapsed = rate < 0.5 * self.rates.get(self.current, rate)
        self.rates[self.current] = rate
        if collapsed or self._since_check >= self.recheck_every:
            self._since_check = 0
            self._start_round()

    def _cores_idle(self) -> bool | None:
        """Whether other programs left the cores we may run on idle since the round began: False when the OS does
        not say, None until half a second has passed (the counters tick every 10 ms)."""
        now = cpu_seconds()
        if self._since is None or now is None:
            return False
        busy, own, wall = (b - a for a, b in zip(self._since[:3], now[:3], strict=True))
        if wall < 0.5:
            return None
        spare = max(0, now[3] - self.candidates[0])  # cores we may run on beyond our threads
        return (busy - own) / wall < spare + self.QUIET_CORES

    def _decide(self) -> None:
        rates = {c: tok / max(sec, 1e-9) for c, (tok, sec) in self._round.items()}
        self.rates.update(rates)
        best = max(rates.values())
        self._round = None
        self._use(next(c for c in self.candidates if rates[c] * self.margin >= best))

    def close(self) -> None:
        """Give back the thread count found at the start (the process may go on to serve predictions)."""
        torch.set_num_threads(self.original)


def cpu_seconds() -> tuple[float, float, float, int] | None:
    """(busy seconds of the cores this process may run on, this process's CPU seconds, a wall clock in seconds,
    how many such cores), from psutil's per-CPU times; None where they cannot be read. A hypervisor's steal
    counts as busy: the core was someone else's then."""
    import psutil

    try:
        me = psutil.Process()
        per_cpu = psutil.cpu_times(percpu=True)
        cores = me.cpu_affinity() if hasattr(me, "cpu_affinity") else range(len(per_cpu))  # no affinity on macOS
        allowed = [i for i in cores if i < len(per_cpu)]
        own = me.cpu_times()
    except (psutil.Error, OSError):
        return None
    idle = ("idle", "iowait", "guest", "guest_nice")  # guest time is counted in user time too
    busy = 0.0
    for i in allowed:
        times = per_cpu[i]._asdict()
        busy += sum(times.values()) - sum(times.get(k, 0.0) for k in idle)
    return busy, own.user + own.system, time.monotonic(), len(allowed)


def thread_tuner(num_threads: int, device, world: int) -> ThreadTuner | None:
    """A tuner when the thread count is left to us (0: automatic) on a multi-core CPU in one process."""
    if num_threads or device.type != "cpu" or world > 1 or torch.get_num_threads() < 2:
        return None
    return ThreadTuner(torch.get_num_threads())


# ----------------------------------------------------------------------------------------------- the one door
ENV_SWITCH = "WORKBENCH_FAST_PATH"  # 0 / false / no / off: every run in this process uses the stock modules


def enabled(setting: bool = True) -> bool:
    """Whether a run uses the fast path: its ``train.fast_path`` setting, unless the environment turns it off."""
    return bool(setting) and os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


class FastPath:
    """The fast path as one run sees it: what the loop calls at fixed points of its step, each a plain stock call
    when the fast path is off. ``close()`` undoes every process-wide change ``install`` made."""

    def __init__(self, on: bool, rows: SparseRowAdamW | None = None, tuner: ThreadTuner | None = None):
        self.on, self.rows, self.tuner = on, rows, tuner
        self._undo: list[Callable[[], None]] = []

    def lm_loss(self, model, batch: dict, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The causal-LM loss (``labels`` aligned with the inputs, -100 where not learned; None: the inputs):
        blocked on a CPU when on, the model's own when off."""
        return language_model_loss(model, batch, labels, fast=self.on)

    def logits_only(self, model) -> None:
        """A model this run keeps to itself and only reads logits from (a distillation teacher): the fast layers
        in eval mode too (core/fast_layers.py)."""
        if self.on:
            from core.fast_layers import use_fast_layers

            use_fast_layers(model, scoring=True)

    def clip_grad_norm_(self, parameters, max_norm: float) -> torch.Tensor:
        if self.rows is not None:
            return self.rows.clip_grad_norm_(parameters, max_norm)
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def before_optimizer_step(self) -> None:
        if self.rows is not None:
            self.rows.step()

    def step_begins(self) -> None:
        if self.tuner is not None:
            self.tuner.begin()

    def step_counts(self, tokens: int, shape: tuple) -> None:
        if self.tuner is not None:
            self.tuner.count(tokens, shape)

    def step_ends(self) -> None:
        if self.tuner is not None:
            self.tuner.end()

    def close(self) -> None:
        """Give back the thread count and the stock "sdpa" attention (safe to call twice)."""
        while self._undo:
            self._undo.pop()()


def install(model, optimizer, *, device, world: int, num_threads: int, l1_penalty: float, on: bool) -> FastPath:
    """Put the fast path into one run (or the estimate's timed steps); ``on=False`` gives the stock calls.

    Changes to ``model`` (module swaps, the embedding's sparse gradient) hold no weights and leave saved models
    stock. The process-wide changes (the thread count the tuner sets, the "sdpa" routing) are undone by close().
    """
    if not on:
        return FastPath(False)
    from core.fast_layers import use_fast_layers

    use_fused_gelu(model)  # GPT-2's tanh GELU as one kernel instead of six elementwise passes
    undo: list[Callable[[], None]] = []
    layers = use_fast_layers(model)  # BERT-style layers: one QKV product; a first-token head's last layer on row 0
    if layers is not None:
        undo.append(layers)
    if device.type == "cpu":
        use_fast_dropout(model)  # same masks' distribution, a fraction of torch's CPU cost
        routed = use_fast_attention_dropout()  # the same for the attention probabilities inside "sdpa"
        if routed is not None:
            undo.append(routed)
    # Exact AdamW on only the embedding rows that had a gradient, where that applies (None elsewhere).
    rows = sparse_row_adamw(model, optimizer, device=device, world=world, l1_penalty=l1_penalty)
    tuner = thread_tuner(num_threads, device, world)  # None unless the thread count is ours to choose
    if tuner is not None:
        undo.append(tuner.close)
    fast = FastPath(True, rows, tuner)
    fast._undo = undo
    return fast
