"""The pre-launch estimate: parameters that will train, approximate memory, and time per epoch.

Time comes from a few real training steps on a small sample of the user's data, with the same model,
method, optimizer, device and precision the run will use, because throughput on a CPU depends on all of
them (and on text lengths) far more than any formula could say.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import RunConfig
from core.errors import TrainingError

# Bytes of optimizer state per trainable parameter (fp32 moments).
_OPTIMIZER_BYTES = {"adamw": 8, "adam": 8, "sgd": 4, "adafactor": 4}


@dataclass
class Estimate:
    """What a run will cost, measured on a sample before it starts."""

    trainable_params: int
    total_params: int
    memory_gb: float
    """Peak memory for weights, gradients, optimizer state and activations (measured on CUDA, else computed)."""
    memory_measured: bool
    seconds_per_step: float
    """One optimizer step (grad_accum forward/backward passes), measured."""
    steps_per_epoch: int
    train_examples: int
    samples_per_s: float
    device: str
    precision: str
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds_per_step * self.steps_per_epoch

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / max(self.total_params, 1)


def estimate_run(config: RunConfig, *, timed_steps: int = 3, runs_root: Path | None = None) -> Estimate:
    """Build the run's model, time ``timed_steps`` optimizer steps (after one warm-up step) on a data sample."""
    import torch

    from core import components, fastpath, models
    from core.batching import pad_multiple
    from core.data import prepare_data
    from core.device import resolve_device, resolve_precision
    from core.training import TrainStep

    tc, mc, task = config.train, config.model, config.model.task
    threads_before = torch.get_num_threads()  # process-wide: the server goes on with its own count
    fast = None
    try:
        if tc.num_threads:
            torch.set_num_threads(tc.num_threads)
        device = resolve_device(tc.device)
        precision = resolve_precision(tc.precision, device)
        prepared = prepare_data(config.data, task)
        if len(prepared.train) == 0:
            raise TrainingError("The training split is empty.", hint="Check the data and the split fractions.")
        bundle = components.build_run_model(config, prepared, runs_root)
        bundle = models.prepare_for_method(bundle, mc)
        model = bundle.model.to(device).train()
        trainable, total = models.count_parameters(model)

        micro_batches = (timed_steps + 1) * tc.grad_accum
        rng = np.random.default_rng(tc.seed)
        if task == "generation":
            # blocks: their count sets the epoch length
            data = components.encode_split(bundle, prepared.train, task, tc.max_length)
            examples = len(data)
            rows = rng.permutation(examples)
        else:
            examples = len(prepared.train)
            wanted = min(examples, tc.batch_size * micro_batches)
            sample = prepared.train.iloc[rng.choice(examples, size=wanted, replace=False)]
            data = components.encode_split(bundle, sample, task, tc.max_length)
            rows = np.arange(len(data))
        if len(data) == 0:
            raise TrainingError("The training split has no usable rows after tokenizing.", hint="Add more text.")
        steps_per_epoch = max(1, math.ceil(math.ceil(examples / tc.batch_size) / tc.grad_accum))
        batches = [np.resize(rows, tc.batch_size * micro_batches)[i::micro_batches] for i in range(micro_batches)]

        # The training loop's own step, fast path included (the thread tuner too, as the run would have it).
        optimizer = components.build_optimizer(model, tc, device)
        fast = fastpath.install(model, optimizer, device=device, world=1, num_threads=tc.num_threads,
                                l1_penalty=tc.l1_penalty, on=fastpath.enabled(tc.fast_path))  # fmt: skip
        step = TrainStep(model, model, data=data, task=task, tc=tc, device=device, precision=precision,
                         optimizer=optimizer, fast=fast, pad_id=bundle.tokenizer.pad_token_id,
                         multiple=pad_multiple(device, precision))  # fmt: skip
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started, longest = 0.0, 0
        for k in range(timed_steps + 1):
            if k == 1:  # the first step pays for lazy allocations and kernel selection
                _sync(device)
                started = time.perf_counter()
            for j in range(tc.grad_accum):
                step.forward_backward(batches[k * tc.grad_accum + j])
                longest = max(longest, step.last_shape[1])
            step.clip()
            step.update()
        _sync(device)
        per_step = (time.perf_counter() - started) / max(timed_steps, 1)
    finally:
        if fast is not None:
            fast.close()
        torch.set_num_threads(threads_before)

    measured = device.type == "cuda"
    if measured:
        memory = torch.cuda.max_memory_allocated(device)
    else:
        memory = _memory_bytes(model, trainable, total, tc, longest, precision, task, mc)
    notes = [f"Timed on {timed_steps} steps of {tc.batch_size * tc.grad_accum} examples; evaluation time not included."]
    if mc.teacher_run or mc.student_layers:
        notes.append("Distillation adds a teacher forward pass per step: expect it to take longer.")
    return Estimate(
        trainable_params=trainable,
        total_params=total,
        memory_gb=memory / 2**30,
        memory_measured=measured,
        seconds_per_step=per_step,
        steps_per_epoch=steps_per_epoch,
        train_examples=examples,
        samples_per_s=tc.batch_size * tc.grad_accum / max(per_step, 1e-9),
        device=str(device),
        precision=precision,
        notes=notes,
    )


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory_bytes(model, trainable: int, total: int, tc, seq: int, precision: str, task: str, mc=None) -> int:
    """Weights + gradients + optimizer state + activations.

    Activations per transformer layer follow Korthikanti et al. (2022): about s*b*h*34 + 5*a*s^2*b bytes in
    16-bit, doubled in fp32; they dominate for long inputs, the optimizer state for large models. Gradient
    checkpointing keeps only each layer's input (s*b*h values) and one layer's full activations at a time;
    QLoRA holds the frozen weights in 4 bits (half a byte each).
    """
    cfg = model.config
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model") or 768
    layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers") or 12
    heads = _first(cfg, "num_attention_heads", "n_head") or 12
    vocab = _first(cfg, "vocab_size") or 0
    scale = 1 if precision in ("bf16", "fp16") else 2
    b = tc.batch_size
    per_layer = (seq * b * hidden * 34 + 5 * heads * seq * seq * b) * scale
    activations = layers * per_layer
    if mc is not None and mc.gradient_checkpointing:
        activations = layers * seq * b * hidden * 2 * scale + per_layer
    if task == "generation":
        activations += b * seq * vocab * 4 * 2  # fp32 logits and their gradient
    state = trainable * (4 + _OPTIMIZER_BYTES.get(tc.optimizer, 8))
    weights = total * 4
    if mc is not None and mc.method == "qlora":
        weights = trainable * 4 + (total - trainable) // 2
    return int(weights + state + activations)


def _first(cfg, *names: str) -> int | None:
    for name in names:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
