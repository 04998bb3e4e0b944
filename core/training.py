"""The explicit training loop: train(config, run, ...) -> TrainResult. Read it top to bottom.

1. seed, threads, device and precision        5. the loop: forward (autocast), loss (+L1), backward,
2. data: prepared once, splits saved in the       clip, step, schedule; log, evaluate, checkpoint,
   run folder; tokenized once                     stop / time budget / early stopping / NaN checks
3. model (+ dropout, freezing or LoRA)          6. keep the best, save the final model, score
4. optimizer (param groups) and schedule           validation and test, write results.json
"""

from __future__ import annotations

import errno
import gc
import json
import math
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import RunConfig
from core.errors import TrainingError, WorkbenchError
from core.events import JsonlSink, MetricsSink
from core.runs import Run, atomic_write_text

Hook = Callable[[str, dict[str, Any]], None]
RESTART_CYCLES = 3  # cosine_with_restarts: the learning rate falls to zero and jumps back this many times
# On a CPU, freed heap memory goes back to the OS every this many steps (glibc's malloc_trim). With batches of
# varying width glibc kept ~300 MB of freed activation blocks resident: a MiniLM run's peak fell from 1,382 to
# 1,316 MB trimming every 4 steps (1,338 every 10; 1,260 every step, but that cost 16% of the step's CPU time,
# every 4 about 1%).
TRIM_EVERY = 4


class StopSignal:
    """Set from any thread; the loop checks it every micro-batch. ``keep_best`` restores the best checkpoint."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.keep_best = False

    def set(self, keep_best: bool = False) -> None:
        self.keep_best = self.keep_best or keep_best
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


STOP_FILE = "stop.json"  # in the run folder: a Stop that reaches the run from any process


class FileStopSignal(StopSignal):
    """A stop that crosses processes: ``set`` also writes ``<run>/stop.json``; ``is_set`` also looks for it.

    A training worker process and the server (or a second server, or the CLI) share nothing but the run
    folder, so the folder carries the request. Looking is a stat() at most every ``every`` seconds; the loop
    asks every micro-batch.
    """

    def __init__(self, run_dir: Path, every: float = 0.2) -> None:
        super().__init__()
        self.path = Path(run_dir) / STOP_FILE
        self.every = every
        self._looked = 0.0

    def set(self, keep_best: bool = False) -> None:
        super().set(keep_best)
        atomic_write_text(self.path, json.dumps({"keep_best": self.keep_best, "at": time.time()}))

    def is_set(self) -> bool:
        if self._event.is_set():
            return True
        now = time.monotonic()
        if now - self._looked < self.every:
            return False
        self._looked = now
        try:
            request = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError):  # half-visible or damaged: a stop was asked for all the same
            request = {}
        super().set(keep_best=bool(isinstance(request, dict) and request.get("keep_best")))
        return True

    def clear(self) -> None:
        """Forget an old request (before a run starts or resumes), so it cannot stop the new attempt at once."""
        self._event.clear()
        self.keep_best = False
        self.path.unlink(missing_ok=True)


@dataclass
class TrainResult:
    run_id: str
    state: str
    message: str = ""
    steps: int = 0
    train_seconds: float = 0.0
    samples_per_s: float = 0.0
    tokens_per_s: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """What a resumed run needs to continue exactly where it stopped (saved in trainer_state.pt)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    samples: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    best_metric: float | None = None
    best_step: int = 0
    bad_evals: int = 0


# ----------------------------------------------------------------------------------------------- setup
def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _distributed() -> tuple[int, int]:
    """(rank, world size) when launched by accelerate/torchrun, else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def _init_distributed(device) -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _prepare_splits(config: RunConfig, run: Run, resume: bool):
    """Prepare the data once and keep the splits in the run folder, so evaluation and resume see the same rows."""
    import pandas as pd

    from core.data import PreparedData, prepare_data

    meta_path = run.data_dir / "labels.json"
    if resume and meta_path.exists():
        splits = {name: pd.read_parquet(run.data_dir / f"{name}.parquet") for name in ("train", "validation", "test")}
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return PreparedData(splits["train"], splits["validation"], splits["test"], meta["label_names"], meta["notes"])
    prepared = prepare_data(config.data, config.model.task)
    if _distributed()[0] == 0:
        run.data_dir.mkdir(parents=True, exist_ok=True)
        for name in ("train", "validation", "test"):
            getattr(prepared, name).to_parquet(run.data_dir / f"{name}.parquet", index=False)
        meta_path.write_text(
            json.dumps({"label_names": prepared.label_names, "notes": prepared.notes}), encoding="utf-8"
        )
    return prepared


def build_run_model(config: RunConfig, prepared, runs_root: Path | None):
    """The run's model and tokenizer before any method is applied (shared with the pre-launch estimate)."""
    from core import models

    tc, mc = config.train, config.model
    bundle = models.build_model(
        mc.source,
        mc.task,
        label_names=prepared.label_names,
        train_texts=prepared.train["text"].astype(str).tolist(),
        max_length=tc.max_length,
        seed=tc.seed,
        trust_remote_code=mc.trust_remote_code,
        runs_root=runs_root,
    )
    if tc.max_length > bundle.max_positions:
        raise TrainingError(
            f"Max length {tc.max_length} is above this model's limit of {bundle.max_positions} tokens.",
            hint=f"Set max length to {bundle.max_positions} or less.",
        )
    return bundle


def _encode(bundle, frame, task: str, max_length: int):
    from core.batching import encode_blocks, encode_pairs

    if task == "generation":
        texts = frame["text"].astype(str).tolist()
        if "text_pair" in frame:
            texts = [f"{p} {r}" for p, r in zip(texts, frame["text_pair"].astype(str))]
        return encode_blocks(bundle.tokenizer, texts, max_length)
    pairs = frame["text_pair"].astype(str).tolist() if "text_pair" in frame else None
    dtype = np.float32 if task == "regression" else np.int64
    labels = frame["label"].to_numpy().astype(dtype) if "label" in frame else None
    return encode_pairs(bundle.tokenizer, frame["text"].astype(str).tolist(), pairs, labels, max_length)


def _param_groups(model, cfg) -> list[dict[str, Any]]:
    """No weight decay on biases and norm weights (1-D tensors); optional layer-wise LR decay for encoders."""
    n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", 0) or 0
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = cfg.weight_decay if p.ndim >= 2 else 0.0
        scale = 1.0
        if cfg.layerwise_lr_decay < 1.0 and n_layers:
            match = re.search(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.", name)
            if match:
                depth = n_layers - int(match.group(1))
            elif "embed" in name or "wte" in name or "wpe" in name:
                depth = n_layers + 1
            else:
                depth = 0  # head and pooler learn at the full rate
            scale = cfg.layerwise_lr_decay**depth
        groups.setdefault((decay, scale), []).append(p)
    return [{"params": ps, "weight_decay": d, "lr": cfg.learning_rate * s} for (d, s), ps in groups.items()]


def _optimizer(model, cfg, device):
    import torch

    groups = _param_groups(model, cfg)
    if not groups:
        raise TrainingError("No parameter is left to train.", hint="Freeze fewer layers or use LoRA.")
    # Fused kernels do the whole update in one pass: measured the largest single gain after bf16 on CPU,
    # since with small batches the step over 22.7M parameters is a big share of each iteration.
    fused = device.type in ("cpu", "cuda") and all(p.dtype == torch.float32 for g in groups for p in g["params"])
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused)
    if cfg.optimizer == "adam":
        # Plain Adam: weight decay is L2 added to the gradient (the classic form), not decoupled.
        return torch.optim.Adam(groups, lr=cfg.learning_rate, fused=fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum)
    from transformers.optimization import Adafactor

    return Adafactor(groups, lr=cfg.learning_rate, scale_parameter=False, relative_step=False, warmup_init=False)


def _scheduler(optimizer, cfg, total_steps: int):
    from transformers import get_scheduler

    warmup = cfg.warmup_steps or int(round(cfg.warmup_ratio * total_steps))
    if warmup >= total_steps > 1:
        raise TrainingError(
            f"Warmup ({warmup} steps) is as long as the whole training ({total_steps} steps).",
            hint="Lower warmup_steps / warmup_ratio or train longer.",
        )
    name = "constant_with_warmup" if cfg.schedule == "constant" else cfg.schedule
    # transformers' default is one cycle, which is plain cosine: without this the restarts never happen.
    extra = {"num_cycles": RESTART_CYCLES} if cfg.schedule == "cosine_with_restarts" else None
    return get_scheduler(
        name, optimizer, num_warmup_steps=warmup, num_training_steps=max(total_steps, 1), scheduler_specific_kwargs=extra
    )


def _center_regression_head(model, targets: np.ndarray) -> None:
    """Start the regression head at the targets' mean and spread: a fresh head outputs about 0, and targets
    far from 0 (ratings 1-5, prices) otherwise spend the whole run learning one offset."""
    import torch

    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if not head or len(targets) == 0:
        return
    std = float(targets.std()) or 1.0
    with torch.no_grad():
        head[-1].weight.mul_(std)
        if head[-1].bias is not None:
            head[-1].bias.fill_(float(targets.mean()))


def _l1_norm(model):
    import torch

    terms = [p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    return torch.stack(terms).sum() if terms else torch.zeros(())


# ----------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(run: Run, bundle, optimizer, scheduler, progress: Progress, hook: Hook | None) -> Path:
    """Write into a hidden temporary folder, then rename: a kill mid-save never leaves a checkpoint resume would pick."""
    import torch

    from core.models import save_model

    final = run.checkpoints_dir / f"step-{progress.step:06d}"
    tmp = run.checkpoints_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:6]}"
    try:
        save_model(bundle, tmp, {"step": progress.step})
        if hook:
            hook("save", {"path": tmp, "step": progress.step})
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "progress": dict(progress.__dict__),
        }
        torch.save(state, tmp / "trainer_state.pt")
        replace_folder(tmp, final)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            raise _disk_full("the checkpoint could not be saved. The previous checkpoint is intact.") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def replace_folder(new: Path, target: Path) -> None:
    """Put a fully written folder in place of ``target``. The old one is renamed aside before it is deleted:
    deleting in place, a kill half-way would leave a half folder under the real name (a model or checkpoint
    that looks complete)."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:6]}")
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _disk_full(what: str) -> TrainingError:
    return TrainingError(
        f"The disk is full: {what}",
        hint="Free some disk space (delete old runs on the Runs page), then resume this run.",
    )


def _prune_checkpoints(run: Run, keep: int, best_step: int) -> None:
    ckpts = run.checkpoints()
    for path in ckpts[:-keep]:
        if path.name != f"step-{best_step:06d}":
            shutil.rmtree(path, ignore_errors=True)
    for stale in [*run.checkpoints_dir.glob(".tmp-*"), *run.checkpoints_dir.glob(".old-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def load_weights(model, folder: Path) -> None:
    """Load saved weights (full safetensors, sharded, or a LoRA adapter) into an already built model."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if (folder / "adapter_model.safetensors").exists():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
        return
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise TrainingError(f"The checkpoint {folder.name} has no weights.", hint="Resume from an earlier checkpoint.")
    state: dict[str, Any] = {}
    for f in files:
        state.update(load_file(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied weights (LM head = embeddings) are saved once; anything else missing is a real mismatch.
    real_missing = [k for k in missing if not k.endswith(("lm_head.weight", "position_ids"))]
    if real_missing:
        raise TrainingError(f"The checkpoint {folder.name} does not fit this model (missing {real_missing[:3]}).")


def _restore_state(path: Path, optimizer, scheduler) -> Progress:
    import torch

    state = torch.load(path / "trainer_state.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return Progress(**state["progress"])


# ----------------------------------------------------------------------------------------------- the loop
def train(
    config: RunConfig,
    run: Run,
    *,
    stop: StopSignal | None = None,
    sink: MetricsSink | None = None,
    resume: bool = False,
    hook: Hook | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``config`` into ``run``; never raises for user-fixable problems (the run ends failed with the message)."""
    stop = stop or StopSignal()
    rank, world = _distributed()
    sink = sink or (JsonlSink(run.metrics_path) if rank == 0 else _NullSink())
    writer = run if rank == 0 else None
    if writer:
        writer.set_status("running", message="Preparing data and model...", step=0)
    import torch

    # The thread count is process-wide: a run's choice (num_threads or the tuner) must not outlive it in a
    # server that goes on to serve predictions.
    threads_before = torch.get_num_threads()
    try:
        return _train(config, run, stop, sink, resume, hook, on_progress, writer, rank, world)
    except WorkbenchError as err:
        return _fail(run, writer, str(err))
    except Exception as err:  # noqa: BLE001 - every failure ends the run with a readable message
        from core.device import is_oom

        if is_oom(err):
            msg = (
                "The device ran out of memory. Lower the batch size or the max length "
                "(or use gradient accumulation for the same effective batch), then start again."
            )
        else:
            msg = f"Training failed: {type(err).__name__}: {str(err)[:500]}"
        return _fail(run, writer, msg)
    finally:
        sink.close()
        from core.fastpath import release_threads

        release_threads()
        torch.set_num_threads(threads_before)
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


class _NullSink:
    def log(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def _fail(run: Run, writer: Run | None, message: str) -> TrainResult:
    if writer:
        writer.set_status("failed", message=message)
    return TrainResult(run.id, "failed", message)


def _train(config, run, stop, sink, resume, hook, on_progress, writer, rank, world) -> TrainResult:
    import torch

    from core import distill, models
    from core.batching import collate, length_grouped_batches, pad_multiple
    from core.device import autocast, resolve_device, resolve_precision, trim_host_memory
    from core.evaluation import metrics_from_scores, score_encoded
    from core.fastpath import (
        language_model_loss,
        sparse_row_adamw,
        thread_tuner,
        use_fast_attention_dropout,
        use_fast_dropout,
        use_fused_gelu,
    )

    tc, mc, task = config.train, config.model, config.model.task
    # 1. seed, threads, device, precision
    _seed_everything(tc.seed)
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    precision = resolve_precision(tc.precision, device)
    if world > 1:
        _init_distributed(device)

    # 2. data
    prepared = _prepare_splits(config, run, resume)
    if hook:
        hook("data", {"prepared": prepared})

    # 3. model
    latest = run.latest_checkpoint() if resume else None
    if resume and latest is None and run.checkpoints():
        raise TrainingError("This run has no complete checkpoint to resume from.", hint="Start it again instead.")
    bundle = build_run_model(config, prepared, run.dir.parent)
    if latest is not None and mc.source == "default" and task == "generation":
        from transformers import AutoTokenizer

        bundle.tokenizer = AutoTokenizer.from_pretrained(latest)  # the BPE trained for this run
    bundle = models.prepare_for_method(bundle, mc)
    if latest is not None:
        load_weights(bundle.model, latest)
    elif task == "regression":
        _center_regression_head(bundle.model, prepared.train["label"].to_numpy(dtype=np.float64))
    bundle.model.to(device).train()
    teacher = distill.load_teacher(mc.teacher_run, run.dir.parent, bundle, device) if mc.teacher_run else None
    trainable, total_params = models.count_parameters(bundle.model)
    train_data = _encode(bundle, prepared.train, task, tc.max_length)
    val_data = _encode(bundle, prepared.validation, task, tc.max_length)
    if len(train_data) == 0:
        raise TrainingError("The training split has no usable rows after tokenizing.", hint="Add more text.")
    use_fused_gelu(bundle.model)  # GPT-2's tanh GELU as one kernel instead of six elementwise passes
    if device.type == "cpu":
        use_fast_dropout(bundle.model)  # same masks' distribution, a fraction of torch's CPU cost
        use_fast_attention_dropout()  # the same for the attention probabilities inside "sdpa" attention
    model = bundle.model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)

    # 4. optimizer and schedule
    batches_per_epoch = math.ceil(len(train_data) / tc.batch_size)
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / tc.grad_accum))
    total_steps = tc.max_steps or max(1, math.ceil(tc.epochs * steps_per_epoch))
    optimizer = _optimizer(bundle.model, tc, device)
    # Exact AdamW on only the embedding rows that had a gradient, where that applies (None elsewhere).
    rows = sparse_row_adamw(bundle.model, optimizer, device=device, world=world, l1_penalty=tc.l1_penalty)
    clip_grad_norm_ = rows.clip_grad_norm_ if rows else torch.nn.utils.clip_grad_norm_
    tuner = thread_tuner(tc.num_threads, device, world)  # None unless the thread count is ours to choose
    scheduler = _scheduler(optimizer, tc, total_steps)
    progress = _restore_state(latest, optimizer, scheduler) if latest is not None else Progress()
    eval_every = tc.eval_every or steps_per_epoch
    save_every = tc.save_every or eval_every
    pad_id = bundle.tokenizer.pad_token_id
    multiple = pad_multiple(device, precision)  # bounds oneDNN's per-shape primitive cache
    header = {
        "event": "start",
        "trainable_params": trainable,
        "total_params": total_params,
        "device": str(device),
        "precision": precision,
        "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "train_examples": len(prepared.train),
        "validation_examples": len(prepared.validation),
        "resumed_from_step": progress.step,
        "model": bundle.description,
    }
    sink.log(header)
    if writer:
        writer.set_status(
            "running",
            message="Training",
            total_steps=total_steps,
            **{k: header[k] for k in ("trainable_params", "total_params", "device", "precision")},
        )

    def evaluate() -> dict[str, Any] | None:
        if hook:
            hook("eval", {"step": progress.step})
        trim_host_memory()  # scoring's larger batches then start from the pages the steps left free
        scores = score_encoded(
            bundle.model,
            val_data,
            task,
            batch_size=tc.batch_size * 4,
            pad_id=pad_id,
            device=device,
            precision=precision,
            stop=stop,
        )
        if scores is None:
            return None
        return {f"val_{k}": v for k, v in metrics_from_scores(scores, val_data, task, prepared.label_names).items()}

    def improved(value: float) -> bool:
        if progress.best_metric is None or not math.isfinite(progress.best_metric):
            return True
        return value > progress.best_metric if tc.metric_higher_is_better else value < progress.best_metric

    def checkpoint() -> None:
        if writer:
            trim_host_memory()  # the save allocates on top of whatever the steps left in glibc's heaps
            save_checkpoint(run, bundle, optimizer, scheduler, progress, hook)
            _prune_checkpoints(run, tc.keep_checkpoints, progress.best_step)

    # 5. the loop
    state, message = "finished", "Training finished."
    started = time.perf_counter() - progress.train_seconds
    window = {"loss": 0.0, "n": 0, "samples": 0, "tokens": 0, "t": time.perf_counter()}
    last_good: dict[str, Any] | None = None
    micro = 0
    optimizer.zero_grad(set_to_none=True)
    lengths = train_data.lengths
    while progress.step < total_steps and state == "finished":
        batches = length_grouped_batches(lengths, tc.batch_size, tc.seed + progress.epoch)
        if world > 1:
            # A tail batch with fewer rows than processes would leave one of them nothing to compute.
            batches = [b for b in batches if len(b) >= world]
        for b_index in range(progress.batch_in_epoch, len(batches)):
            stop_now = stop.is_set()
            over_budget = bool(tc.time_budget_min) and time.perf_counter() - started > tc.time_budget_min * 60
            if world > 1:
                # Every process must leave the loop at the same step, or the others wait forever in a collective.
                stop_now, over_budget = _agree(stop_now, over_budget, device)
            if stop_now:
                state, message = "stopped", "Stopped by the user."
                break
            if over_budget:
                message = f"Time budget of {tc.time_budget_min:g} minutes reached; the model so far was kept."
                state = "budget"
                break
            if hook:
                hook("step", {"step": progress.step, "micro": micro})
            global_index = index = batches[b_index]
            share = 1.0
            if world > 1:
                # Each process takes its share of the same global batch. Weighting its mean loss by its share of
                # the rows makes DDP's average of gradients the mean over the whole batch even when shares differ.
                index = global_index[rank::world]
                share = len(index) * world / len(global_index)
                # Gradients are all-reduced only on the micro-batch that completes an accumulation.
                model.require_backward_grad_sync = micro + 1 >= tc.grad_accum or b_index + 1 >= len(batches)
            if tuner:
                tuner.begin()
            batch, labels = collate(train_data, index, pad_id, device, multiple)
            with autocast(device, precision):
                if task == "generation":
                    loss = language_model_loss(model, batch)
                else:
                    logits = model(**batch).logits.float()
                    if task == "regression":
                        loss = torch.nn.functional.mse_loss(logits.squeeze(-1), labels.float())
                    else:
                        loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=tc.label_smoothing)
                        if teacher is not None:
                            teacher_out = distill.teacher_logits(teacher, batch)
                            loss = distill.blend(loss, logits, teacher_out, tc.distill_alpha, tc.distill_temperature)
            task_loss = loss.detach()
            if tc.l1_penalty:
                loss = loss + tc.l1_penalty * _l1_norm(bundle.model)
            (loss * (share / tc.grad_accum)).backward()
            micro += 1
            progress.batch_in_epoch = b_index + 1
            window["samples"] += len(global_index)
            step_tokens = int(lengths[global_index].sum())  # from the host: no device sync per step
            window["tokens"] += step_tokens
            if tuner:
                tuner.count(step_tokens, tuple(batch["input_ids"].shape))
            loss_value = float(task_loss)
            if not math.isfinite(loss_value):
                raise _NonFinite(progress.step)
            window["loss"] += loss_value * share
            window["n"] += 1
            if micro < tc.grad_accum and b_index + 1 < len(batches):
                continue
            micro = 0
            # A finite loss can still bring an infinite gradient: stepping on it would turn the weights into NaN
            # and the next checkpoint would keep them as the "last good" one. (max_norm inf only measures.)
            grad_norm = clip_grad_norm_(list(bundle.model.parameters()), tc.grad_clip or math.inf)
            if not math.isfinite(float(grad_norm)):
                raise _NonFinite(progress.step, "gradient")
            if rows:
                rows.step()
            optimizer.step()
            if tuner:
                tuner.end()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            if device.type == "cpu" and progress.step % TRIM_EVERY == 0:
                trim_host_memory()  # between steps almost nothing is live: see TRIM_EVERY
            if progress.step % tc.log_every == 0 or progress.step == total_steps:
                now = time.perf_counter()
                dt = max(now - window["t"], 1e-9)
                mean_loss = window["loss"] / max(window["n"], 1)
                if world > 1:
                    mean_loss = _all_mean(mean_loss, device)
                progress.samples += window["samples"]
                progress.tokens += window["tokens"]
                progress.train_seconds = now - started
                record = {
                    "step": progress.step,
                    "epoch": round(progress.epoch + progress.batch_in_epoch / len(batches), 4),
                    "loss": mean_loss,
                    "lr": scheduler.get_last_lr()[0],
                    "samples_per_s": window["samples"] / dt,
                    "tokens_per_s": window["tokens"] / dt,
                    "elapsed_s": progress.train_seconds,
                    "eta_s": progress.train_seconds / progress.step * (total_steps - progress.step),
                }
                sink.log(record)
                last_good = record
                if on_progress:
                    on_progress(record)
                if writer:
                    writer.set_status(
                        step=progress.step,
                        epoch=record["epoch"],
                        loss=mean_loss,
                        samples_per_s=record["samples_per_s"],
                        eta_s=record["eta_s"],
                        elapsed_s=progress.train_seconds,
                    )
                window = {"loss": 0.0, "n": 0, "samples": 0, "tokens": 0, "t": time.perf_counter()}
            # No validation rows (val_fraction 0): nothing to score, so no evaluation events at all.
            if len(val_data) and (progress.step % eval_every == 0 or progress.step == total_steps):
                t_eval = time.perf_counter()
                metrics = evaluate()
                if metrics is None:
                    state, message = "stopped", "Stopped by the user during evaluation."
                    break
                watched = metrics.get(tc.early_stopping_metric, metrics.get("val_loss"))
                if improved(watched):
                    progress.best_metric, progress.best_step, progress.bad_evals = watched, progress.step, 0
                else:
                    progress.bad_evals += 1
                sink.log(
                    {
                        "step": progress.step,
                        "epoch": round(progress.epoch + progress.batch_in_epoch / len(batches), 4),
                        **metrics,
                        "best_step": progress.best_step,
                    }
                )
                if writer:
                    writer.set_status(latest_eval=metrics, best_step=progress.best_step)
                # Evaluation time is not training time: keep throughput figures honest.
                started += time.perf_counter() - t_eval
                window["t"] += time.perf_counter() - t_eval
                if tc.early_stopping_patience and progress.bad_evals >= tc.early_stopping_patience:
                    state = "early"
                    message = (
                        f"Early stopping: {tc.early_stopping_metric} did not improve for "
                        f"{tc.early_stopping_patience} evaluations; the best (step {progress.best_step}) was kept."
                    )
            if progress.step % save_every == 0 or state == "early":
                checkpoint()
            if progress.step >= total_steps or state != "finished":
                break
        else:
            progress.epoch += 1
            progress.batch_in_epoch = 0

    # 6. finish: keep what was learnt
    return _finish(
        run,
        writer,
        bundle,
        optimizer,
        scheduler,
        progress,
        state,
        message,
        stop,
        tc,
        hook,
        last_good,
        prepared,
        task,
        device,
    )


class _NonFinite(TrainingError):
    def __init__(self, step: int, what: str = "loss"):
        super().__init__(
            f"The {what} became NaN/infinite at step {step + 1}: training diverged.",
            hint="Lower the learning rate (e.g. by 10x), keep gradient clipping on, or use fp32 precision.",
        )


def _agree(stop_now: bool, over_budget: bool, device) -> tuple[bool, bool]:
    """True on every process when true on any (a stop can reach one process; clocks differ)."""
    import torch
    import torch.distributed as dist

    flags = torch.tensor([float(stop_now), float(over_budget)], device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0]), bool(flags[1])


def _all_mean(value: float, device) -> float:
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / dist.get_world_size()


def _finish(
    run,
    writer,
    bundle,
    optimizer,
    scheduler,
    progress,
    state,
    message,
    stop,
    tc,
    hook,
    last_good,
    prepared,
    task,
    device,
) -> TrainResult:
    from core.models import save_model

    if writer is None:
        return TrainResult(
            run.id, "finished" if state in ("finished", "budget", "early") else state, message, progress.step
        )
    if progress.step == 0:
        writer.set_status("stopped", message="Stopped before the first training step finished: nothing to keep.")
        return TrainResult(run.id, "stopped", "nothing to keep")
    keep_best = (tc.early_stopping_patience > 0 or stop.keep_best) and progress.best_step
    if not (run.checkpoints_dir / f"step-{progress.step:06d}").exists():
        save_checkpoint(run, bundle, optimizer, scheduler, progress, hook)
        _prune_checkpoints(run, tc.keep_checkpoints, progress.best_step)
    if keep_best and progress.best_step != progress.step:
        best = run.checkpoints_dir / f"step-{progress.best_step:06d}"
        if best.exists():
            load_weights(bundle.model, best)
            message += f" Restored the best model (step {progress.best_step})."
    writer.set_status(message="Saving the model...")
    from core.device import trim_host_memory

    trim_host_memory()
    tmp = run.dir / f".model-{uuid.uuid4().hex[:6]}"
    try:
        save_model(bundle, tmp, {"run_id": run.id, "step": progress.step, "best_step": progress.best_step})
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)  # a half-saved model must not be mistaken for one
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise _disk_full("the final model could not be saved. The checkpoints are intact.") from None
        raise
    replace_folder(tmp, run.model_dir)
    final_state = "stopped" if state == "stopped" else "finished"
    results: dict[str, Any] = {
        "steps": progress.step,
        "train_seconds": round(progress.train_seconds, 2),
        "samples_per_s": progress.samples / max(progress.train_seconds, 1e-9),
        "tokens_per_s": progress.tokens / max(progress.train_seconds, 1e-9),
        "best_step": progress.best_step,
        "last_train_loss": (last_good or {}).get("loss"),
    }
    if final_state == "finished":
        writer.set_status(message="Scoring validation and test...")
        results.update(_final_scores(bundle, prepared, task, tc, device))
        from core.distill import comparison_results

        results.update(comparison_results(run, device))  # student vs teacher, only for a distilled run
    run.write_results(results)
    writer.set_status(final_state, message=message)
    return TrainResult(
        run.id,
        final_state,
        message,
        progress.step,
        progress.train_seconds,
        results["samples_per_s"],
        results["tokens_per_s"],
        results,
    )


def _final_scores(bundle, prepared, task, tc, device) -> dict[str, Any]:
    from core.device import resolve_precision
    from core.evaluation import metrics_from_scores, score_encoded

    precision = resolve_precision(tc.precision, device)
    out: dict[str, Any] = {}
    for name in ("validation", "test"):
        frame = getattr(prepared, name)
        if len(frame) == 0:
            continue
        data = _encode(bundle, frame, task, tc.max_length)
        scores = score_encoded(
            bundle.model,
            data,
            task,
            batch_size=tc.batch_size * 4,
            pad_id=bundle.tokenizer.pad_token_id,
            device=device,
            precision=precision,
        )
        out[name] = metrics_from_scores(scores, data, task, prepared.label_names)
    return out
