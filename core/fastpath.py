"""Drop-in replacements that compute the same thing as the stock modules, faster on a CPU.

Measured on the 2-core benchmark machine (bench/profile_step.py): torch's CPU dropout draws each mask bit from
a scalar Mersenne Twister (about 15 ns per element), which made dropout one of the largest costs of a small-batch
fine-tuning step. NumPy's PCG64 fills the same Bernoulli mask in a fraction of that time.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

_LEVELS = 1 << 16  # mask resolution: p is honoured to within 1/65,536


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
    scale = 1.0 / (1.0 - p)
    bits = _BIT_TYPES.get(dtype)
    if bits is None:
        return keep.to(dtype).mul_(scale)
    pattern = torch.tensor([scale], dtype=dtype).view(torch.int16 if bits is np.uint16 else torch.int32)
    value = bits(int(pattern) & np.iinfo(bits).max)
    return torch.from_numpy(np.multiply(keep.numpy(), value, dtype=bits)).view(dtype)


_STOCK_SDPA = None


def _attention_with_fast_dropout(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                                 is_causal=None, **kwargs):  # fmt: skip
    """transformers' "sdpa" attention, except in CPU training with attention dropout: there, the same math as
    SDPA's own CPU math path (which it takes whenever dropout > 0), with the dropout mask drawn by NumPy.

    torch draws that mask from a scalar Mersenne Twister: with 128-token blocks it was about a fifth of a small
    GPT-2's training step. Everywhere else (evaluation, generation, GPUs, grouped-query or biased attention) the
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


def use_fast_attention_dropout() -> bool:
    """Route transformers' "sdpa" attention through _attention_with_fast_dropout (once per process)."""
    global _STOCK_SDPA
    try:
        from transformers import AttentionInterface
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
    except ImportError:
        return False
    if _STOCK_SDPA is None:
        _STOCK_SDPA = sdpa_attention_forward
        AttentionInterface.register("sdpa", _attention_with_fast_dropout)
    return True


class TanhGELU(torch.nn.Module):
    """GPT-2's "gelu_new" (and FastGELU) as torch's one fused kernel: the same tanh formula, not six elementwise ops.

    transformers writes it in Python (pow, mul, add, tanh, add, mul), each a pass over the MLP's largest
    activation, in the forward and again in the backward: about a sixth of a small GPT-2's CPU training step.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


def use_fused_gelu(model: torch.nn.Module) -> int:
    """Swap transformers' Python tanh-GELU modules for TanhGELU (no weights: saved models are unchanged)."""
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


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """The loss transformers computes for ``model(input_ids, labels=input_ids)``, a block of rows at a time.

    Labels are the inputs shifted by one (-100 after each row's last position); where the logits are longer than
    the inputs (peft's prompt tuning prepends virtual tokens) the extra leading positions get -100, as peft does.
    On the default tiny GPT-2 (4,096-token vocabulary, 16 x 128 tokens) the loss's forward and backward took
    120 ms on one thread the stock way and 35 ms this way: about a fifth of the training step.
    """
    batch, length = input_ids.shape
    labels = input_ids
    if logits.shape[1] > length:
        prefix = torch.full((batch, logits.shape[1] - length), -100, dtype=labels.dtype, device=labels.device)
        labels = torch.cat([prefix, labels], dim=1)
    targets = F.pad(labels, (0, 1), value=-100)[:, 1:].reshape(-1)
    vocab = logits.shape[-1]
    rows = max(16, (1 << 18) // vocab)  # a block of about 1 MB of fp32: it stays in a core's cache
    return _BlockedCrossEntropy.apply(logits.reshape(-1, vocab), targets, rows)


def language_model_loss(model, batch: dict) -> torch.Tensor:
    """The causal-LM loss of ``model`` on ``batch`` (labels = the inputs), as training and evaluation compute it:
    on a CPU in blocks of rows (causal_lm_loss, no fp32 copy of all the logits), elsewhere the model's own."""
    if batch["input_ids"].device.type == "cpu":
        return causal_lm_loss(model(**batch).logits, batch["input_ids"])
    return model(**batch, labels=batch["input_ids"]).loss


class SparseRowAdamW:
    """Exact AdamW for the token-embedding matrix that touches only the rows that ever had a gradient.

    A batch of 16 short texts uses a few hundred of the 30k rows, yet a dense gradient means zero-filling and
    scattering a 47 MB matrix, measuring its norm, and running Adam over all of it every step: about a fifth of
    a MiniLM step on 2 cores. Rows that never had a gradient have zero moments, so for them AdamW reduces to
    the decoupled weight decay, applied here to the whole matrix as one multiply. Rows that had one are updated
    with the same formula as torch's AdamW, from moments kept in the optimizer's own state (same keys), so
    checkpoints and resume work unchanged and the weights match a dense run to float rounding.

    Use: ``clip_grad_norm_`` instead of torch's (it counts the embedding's sparse gradient and takes it out of
    the dense path), then ``step()`` just before ``optimizer.step()``.
    """

    def __init__(self, embedding: torch.nn.Embedding, optimizer: torch.optim.Optimizer):
        self.weight = embedding.weight
        self.optimizer = optimizer
        self._rows: torch.Tensor | None = None
        self._grads: torch.Tensor | None = None
        self._touched: torch.Tensor | None = None  # bool per row: ever had a gradient (nonzero moments)
        embedding.sparse = True

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
        self.weight.grad = None  # the dense optimizer must skip it; step() applies it
        dense = [p for p in parameters if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in dense]) if dense else torch.zeros(())
        self._rows = self._grads = None
        if grad is not None:
            grad = grad.coalesce()
            self._rows, self._grads = grad.indices()[0], grad.values()
            norm = torch.sqrt(norm.float() ** 2 + self._grads.float().pow(2).sum())
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
    """The embedding fast path where it is exact and pays: one CPU process, AdamW, an untied trainable input
    embedding (a tied LM head makes its gradient dense anyway), no L1 term (dense in every row)."""
    if device.type != "cpu" or world > 1 or l1_penalty or type(optimizer) is not torch.optim.AdamW:
        return None
    if any(g.get("amsgrad") or g.get("maximize") for g in optimizer.param_groups):
        return None
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if type(embedding) is not torch.nn.Embedding or not embedding.weight.requires_grad:
        return None
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and getattr(output, "weight", None) is embedding.weight:
        return None
    if not any(p is embedding.weight for g in optimizer.param_groups for p in g["params"]):
        return None
    return SparseRowAdamW(embedding, optimizer)


class ThreadTuner:
    """Chooses torch's CPU thread count by timing training steps, and checks again now and then.

    On cores that other programs keep busy, OpenMP threads wait at every barrier for a partner the OS has
    descheduled: on the 2-core benchmark machine a MiniLM step took 13x longer with 2 threads than with 1 while
    one other process was busy, yet on idle cores 2 threads are ~1.5x faster. So the candidates are timed in
    rounds, the fewer threads are kept only when clearly faster, and the candidates are timed again every
    ``recheck_every`` steps or when the speed collapses.

    What misled the first version (it kept one thread on idle cores in about one MiniLM run of three: 43 instead
    of 65 samples/s): the first step at each new batch width is slow whatever the thread count (oneDNN builds
    its kernels for the shape), and the early steps meet one new width after another; and a step has a large
    fixed cost, so tokens per second varies by 2x with the batch's length. So steps at a new shape are not
    timed, the candidates take turns step by step within a round (they meet the same mix of lengths), and
    fewer threads must be ``margin`` times faster to win: the choice that matters is between ~1.5x and a
    collapse, which neither effect can fake.
    """

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

    def _decide(self) -> None:
        rates = {c: tok / max(sec, 1e-9) for c, (tok, sec) in self._round.items()}
        self.rates.update(rates)
        best = max(rates.values())
        self._round = None
        self._use(next(c for c in self.candidates if rates[c] * self.margin >= best))

    def close(self) -> None:
        """Give back the thread count found at the start (the process may go on to serve predictions)."""
        torch.set_num_threads(self.original)


_TUNERS: list[ThreadTuner] = []  # the live one, so release_threads() can undo it after a failed run too


def thread_tuner(num_threads: int, device, world: int) -> ThreadTuner | None:
    """A tuner when the thread count is left to us (0: automatic) on a multi-core CPU in one process."""
    if num_threads or device.type != "cpu" or world > 1 or torch.get_num_threads() < 2:
        return None
    tuner = ThreadTuner(torch.get_num_threads())
    _TUNERS.append(tuner)
    return tuner


def release_threads() -> None:
    """Undo every live tuner's thread choice (called when a training run ends, however it ends)."""
    while _TUNERS:
        _TUNERS.pop().close()
