"""The training recipe: train(config, run, ...) -> TrainResult. Read it top to bottom.

1. seed, threads, device and precision        5. the loop: forward (autocast), loss (+L1), backward,
2. data: prepared once, splits saved in the       clip, step, schedule; log, evaluate, checkpoint,
   run folder; tokenized once                     stop / time budget / early stopping / NaN checks
3. model (+ dropout, freezing or LoRA)          6. keep the best, save the final model, score
4. optimizer (param groups) and schedule           validation and test, write results.json

``Recipe.setup`` does 1-4, ``Recipe.fit`` does 5 (one ``train_step`` per micro-batch, then ``after_update``
at each optimizer step), ``Recipe.finish`` does 6 and ``Recipe.cleanup`` gives back what the run borrowed
from the process. Everything the loop changes lives on one ``RunState``; everything it tells the outside
world goes through one ``Callbacks`` object. The CPU fast path (core.fastpath) enters through one call,
``fastpath.install``, and is turned off by ``train.fast_path`` or ``WORKBENCH_FAST_PATH=0``.
"""

from __future__ import annotations

import errno
import gc
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import components, evalplan, i18n
from core.config import RunConfig
from core.errors import TrainingError, WorkbenchError
from core.events import MetricsSink
from core.hf import load_transformers

# The loop's own types live in a light module (jobs, search and the CLI import them without the loop);
# they are re-exported here because train() takes and returns them.
from core.progress import STOP_FILE, FileStopSignal, Hook, Progress, StopSignal, TrainResult  # noqa: F401
from core.runs import STATE_FILE, Run
from core.tracking import run_sink

# On a CPU, freed heap memory goes back to the OS every this many steps (glibc's malloc_trim): with batches of
# varying width glibc keeps freed activation blocks resident. Not more often: each trim hands back the ~140 MB the
# next step then takes again page by page, and those page faults made a MiniLM step 14% slower when it was every
# 4 steps, for 18 MB less peak (evaluations and saves trim too; figures in bench/README.md).
TRIM_EVERY = 64


# ----------------------------------------------------------------------------------------------- callbacks
class Callbacks:
    """What the loop tells the outside world, at fixed points. Every method is a no-op here: override some."""

    def on_data(self, prepared) -> None:
        """The data is prepared (before the model is built)."""

    def on_step(self, step: int, micro: int) -> None:
        """A micro-batch is about to be computed (``step`` optimizer steps done so far)."""

    def on_eval(self, step: int) -> None:
        """Validation is about to be scored."""

    def on_save(self, path: Path, step: int) -> None:
        """A checkpoint's weights are written to ``path`` (a hidden temporary folder, renamed once complete)."""

    def on_log(self, record: dict[str, Any]) -> None:
        """A metrics line was written."""


class HookCallbacks(Callbacks):
    """The callbacks as train()'s ``hook(event, info)`` (tests inject faults through it) and ``on_progress``."""

    def __init__(self, hook: Hook | None = None, on_progress: Callable[[dict[str, Any]], None] | None = None):
        self.hook, self.on_progress = hook, on_progress

    def _call(self, event: str, info: dict[str, Any]) -> None:
        if self.hook:
            self.hook(event, info)

    def on_data(self, prepared) -> None:
        self._call("data", {"prepared": prepared})

    def on_step(self, step: int, micro: int) -> None:
        self._call("step", {"step": step, "micro": micro})

    def on_eval(self, step: int) -> None:
        self._call("eval", {"step": step})

    def on_save(self, path: Path, step: int) -> None:
        self._call("save", {"path": path, "step": step})

    def on_log(self, record: dict[str, Any]) -> None:
        if self.on_progress:
            self.on_progress(record)


# ----------------------------------------------------------------------------------------------- DDP
def _distributed() -> tuple[int, int]:
    """(rank, world size) when launched by accelerate/torchrun, else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def _init_distributed(device) -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _shard(global_index: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, float]:
    """This process's rows of a global batch, and the weight of its mean loss.

    Weighting each process's mean loss by its share of the rows makes DDP's average of gradients the mean over
    the whole batch even when shares differ.
    """
    if world == 1:
        return global_index, 1.0
    index = global_index[rank::world]
    return index, len(index) * world / len(global_index)


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


# ----------------------------------------------------------------------------------------------- the step
def syncs_every_step(device) -> bool:
    """Whether the loop reads the loss and the gradient norm back every step. On a CPU that costs nothing and a
    NaN is caught at the very step; on a GPU each read waits for the device to finish all queued work, so there
    values stay on the device and are read at the log interval (and before evaluating or saving). (Apple's MPS
    has no float64 to sum them in: it reads every step, as a CPU does.)"""
    return device.type != "cuda"


def _host(value) -> float:
    """Read a device value on the host: the loop's only synchronising read (a test counts the calls)."""
    return float(value)


class TrainStep:
    """The one training step, used by the loop and by the pre-launch estimate alike.

    ``forward_backward`` runs one micro-batch (forward under autocast, the task's loss, + L1, backward; with
    fp16 through a gradient scaler so that small gradients do not underflow); ``update`` clips, steps the
    optimizer and the schedule, and clears the gradients.
    """

    def __init__(self, model, trainable, *, data, task: str, tc, device, precision: str, optimizer, fast,
                 scheduler=None, teacher=None, pad_id: int = 0, multiple: int = 1):  # fmt: skip
        import torch

        self.model, self.trainable, self.data, self.task, self.tc = model, trainable, data, task, tc
        self.device, self.precision, self.optimizer, self.scheduler = device, precision, optimizer, scheduler
        self.fast, self.teacher, self.pad_id, self.multiple = fast, teacher, pad_id, multiple
        # fp16 has 5 exponent bits: without loss scaling, gradients under ~6e-8 become 0 (bf16 has fp32's range).
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.last_shape: tuple = ()
        # Listed once: walking the module tree for them took ~0.3 ms of every MiniLM step. Training never adds or
        # removes parameters (freezing one only clears its gradient, which the clip skips).
        self.params = list(trainable.parameters())

    def loss(self, batch, labels):
        import torch.nn.functional as F

        from core import distill

        if self.task == "generation":
            return self.fast.lm_loss(self.model, batch, labels)  # labels: -100 where not learned (prompts)
        logits = self.model(**batch).logits.float()
        if self.task == "regression":
            return F.mse_loss(logits.squeeze(-1), labels.float())
        loss = F.cross_entropy(logits, labels, label_smoothing=self.tc.label_smoothing)
        if self.teacher is not None:
            teacher_out = distill.teacher_logits(self.teacher, batch)
            loss = distill.blend(loss, logits, teacher_out, self.tc.distill_alpha, self.tc.distill_temperature)
        return loss

    def forward_backward(self, index: np.ndarray, share: float = 1.0):
        """One micro-batch; returns the task loss (detached, on the device: reading it is the caller's choice)."""
        from core.batching import collate
        from core.device import autocast

        self.fast.step_begins()
        batch, labels = collate(self.data, index, self.pad_id, self.device, self.multiple)
        with autocast(self.device, self.precision):
            loss = self.loss(batch, labels)
        task_loss = loss.detach()
        if self.tc.l1_penalty:
            loss = loss + self.tc.l1_penalty * components.l1_norm(self.trainable)
        scaled = loss * (share / self.tc.grad_accum)
        (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        self.last_shape = tuple(batch["input_ids"].shape)
        self.fast.step_counts(int(self.data.lengths[index].sum()), self.last_shape)
        return task_loss

    def clip(self):
        """Clip the gradients (max_norm inf only measures); returns their norm before clipping, on the device."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        return self.fast.clip_grad_norm_(self.params, self.tc.grad_clip or math.inf)

    def update(self) -> None:
        self.fast.before_optimizer_step()
        if self.scaler:
            self.scaler.step(self.optimizer)  # skipped where the scaled gradients overflowed
            self.scaler.update()
        else:
            self.optimizer.step()
        self.fast.step_ends()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


class _NonFinite(TrainingError):
    def __init__(self, step: int, what: str = "loss", by: bool = False):
        super().__init__(
            f"The {what} became NaN/infinite {'by' if by else 'at'} step {step + 1}: training diverged.",
            hint="Lower the learning rate (e.g. by 10x), keep gradient clipping on, or use fp32 precision.",
        )


class _Window:
    """The sums behind one metrics line. Where the loop does not sync every step (a GPU), the loss and the
    gradient norms are summed on the device (a NaN or inf anywhere makes the sum so) and read by ``check``."""

    def __init__(self, eager: bool):
        self.eager = eager
        self._norms: Any = None  # lazy mode: the sum of gradient norms not yet checked
        self.reset()

    def reset(self) -> None:
        """Start the next metrics line (unchecked gradient norms stay until ``check``)."""
        self.loss: Any = 0.0
        self.n = self.samples = self.tokens = 0
        self.t = time.perf_counter()

    def add_loss(self, loss, share: float, step: int) -> None:
        if self.eager:
            value = _host(loss)
            if not math.isfinite(value):
                raise _NonFinite(step)
            self.loss += value * share
        else:
            self.loss = self.loss + loss.double() * share
        self.n += 1

    def add_grad_norm(self, norm, step: int, scaled: bool) -> None:
        """A finite loss can still bring an infinite gradient: stepping on it would turn the weights into NaN and
        the next checkpoint would keep them. (Under a gradient scaler an overflow is expected: the scaler skips
        that step and lowers its scale.)"""
        if scaled:
            return
        if self.eager:
            if not math.isfinite(_host(norm)):
                raise _NonFinite(step, "gradient")
            return
        self._norms = norm.double() if self._norms is None else self._norms + norm.double()

    def check(self, step: int) -> None:
        """Lazy mode: the deferred finiteness checks, in one read (eager mode checked every step)."""
        if self.eager:
            return
        if self.n and not math.isfinite(_host(self.loss)):
            raise _NonFinite(step - 1, by=True)
        if self._norms is not None:
            norms, self._norms = self._norms, None
            if not math.isfinite(_host(norms)):
                raise _NonFinite(step - 1, "gradient", by=True)

    def mean_loss(self) -> float:
        return (self.loss if self.eager else _host(self.loss)) / max(self.n, 1)


# ----------------------------------------------------------------------------------------------- run state
@dataclass
class RunState:
    """Everything the loop changes as it runs (the rest of the recipe is set once by setup)."""

    progress: Progress = field(default_factory=Progress)
    state: str = "finished"  # finished | stopped | budget | early
    # How the run ended, as a catalog message (key, then a hint key or None, then parameters), so the Runs page
    # says it in the reader's language.
    ending: tuple[str, str | None, dict[str, Any]] = ("run.status.finished", None, {})
    started: float = 0.0  # perf_counter at the start, moved forward by evaluation time
    window: _Window | None = None
    last_good: dict[str, Any] | None = None  # the last metrics line written
    micro: int = 0  # micro-batches into the current accumulation
    # (step, SplitScores) of the last validation when it scored the whole split: the final scores reuse it when
    # the kept weights are that step's (the same pass over the same rows and weights, not run twice).
    scored: tuple[int, Any] | None = None

    @property
    def running(self) -> bool:
        return self.state == "finished"


# ----------------------------------------------------------------------------------------------- the recipe
class Recipe:
    """One run: ``setup()`` (1-4), ``fit()`` (5), ``finish()`` (6), ``cleanup()``."""

    def __init__(self, config: RunConfig, run: Run, *, stop: StopSignal, sink: MetricsSink,
                 callbacks: Callbacks, writer: Run | None, rank: int, world: int):  # fmt: skip
        self.config, self.run, self.stop, self.sink, self.callbacks = config, run, stop, sink, callbacks
        self.writer, self.rank, self.world = writer, rank, world
        self.tc, self.task = config.train, config.model.task
        self.fast = None
        self.s = RunState()

    # 1-4 ------------------------------------------------------------------------------------------------
    def setup(self, resume: bool) -> None:
        import torch

        from core import distill, fastpath, models
        from core.batching import pad_multiple
        from core.device import resolve_device, resolve_precision

        config, run, tc, mc, task = self.config, self.run, self.tc, self.config.model, self.task
        # 1. seed, threads, device, precision
        components.seed_everything(tc.seed)
        if tc.num_threads:
            torch.set_num_threads(tc.num_threads)
        self.device = device = resolve_device(tc.device)
        self.precision = resolve_precision(tc.precision, device)
        if self.world > 1:
            _init_distributed(device)

        # 2. data
        self.prepared = prepared = _prepare_splits(config, run, resume)
        self.callbacks.on_data(prepared)

        # 3. model
        latest = run.latest_checkpoint() if resume else None
        if resume and latest is None and run.checkpoints():
            raise TrainingError("error.training.no_checkpoint", hint="error.hint.start_again")
        bundle = components.build_run_model(config, prepared, run.dir.parent)
        if latest is not None and mc.source == "default" and task == "generation":
            bundle.tokenizer = load_transformers().AutoTokenizer.from_pretrained(latest)  # the BPE trained for this run
        self.bundle = bundle = models.prepare_for_method(bundle, mc)
        if latest is not None:
            load_weights(bundle.model, latest)
        elif task == "regression":
            components.center_regression_head(bundle.model, prepared.train["label"].to_numpy(dtype=np.float64))
        bundle.model.to(device).train()
        teacher = distill.load_teacher(mc.teacher_run, run.dir.parent, bundle, device) if mc.teacher_run else None
        trainable, total_params = models.count_parameters(bundle.model)
        self.train_data = components.encode_split(bundle, prepared.train, task, tc.max_length)
        self.val_data = components.encode_split(bundle, prepared.validation, task, tc.max_length)
        if len(self.train_data) == 0:
            raise TrainingError("error.training.no_rows", hint="error.hint.more_text")
        model = bundle.model
        if self.world > 1:
            model = torch.nn.parallel.DistributedDataParallel(model)
        self.model = model

        # 4. optimizer and schedule
        batches_per_epoch = math.ceil(len(self.train_data) / tc.batch_size)
        steps_per_epoch = max(1, math.ceil(batches_per_epoch / tc.grad_accum))
        self.total_steps = total_steps = tc.max_steps or max(1, math.ceil(tc.epochs * steps_per_epoch))
        self.optimizer = components.build_optimizer(bundle.model, tc, device)
        self.fast = fastpath.install(
            bundle.model,
            self.optimizer,
            device=device,
            world=self.world,
            num_threads=tc.num_threads,
            l1_penalty=tc.l1_penalty,
            on=fastpath.enabled(tc.fast_path),
        )
        if teacher is not None:
            self.fast.logits_only(teacher)  # the teacher gives logits only: pruned like the scoring twin
        self.scheduler = components.build_scheduler(self.optimizer, tc, total_steps)
        if hasattr(self.scheduler, "use_clock"):  # a time budget's plan times the loop's own budget clock
            self.scheduler.use_clock(lambda: time.perf_counter() - self.s.started)
        self.step = TrainStep(
            model,
            bundle.model,
            data=self.train_data,
            task=task,
            tc=tc,
            device=device,
            precision=self.precision,
            optimizer=self.optimizer,
            fast=self.fast,
            scheduler=self.scheduler,
            teacher=teacher,
            pad_id=bundle.tokenizer.pad_token_id,
            multiple=pad_multiple(device, self.precision),  # bounds oneDNN's per-shape primitive cache
        )
        if latest is not None:
            self.s.progress = _restore_state(latest, self.optimizer, self.scheduler, self.step.scaler)
        self.eval_every = evalplan.evaluation_interval(tc.eval_every, total_steps)  # 8 to 10 points per run
        self.save_every = evalplan.checkpoint_interval(tc, self.eval_every, steps_per_epoch)  # ~once per epoch
        # The curve's rows: a fixed, capped subset (None: the whole split). The whole split is kept encoded: the
        # last validation scores it, and the final scores reuse that pass.
        self.val_rows = evalplan.validation_rows(len(self.val_data), tc, total_steps, self.eval_every)
        self.whole_val = self.val_data
        self.val_data = evalplan.validation_subset(self.whole_val, tc, total_steps, self.eval_every)  # those rows
        header = {
            "event": "start",
            "trainable_params": trainable,
            "total_params": total_params,
            "device": str(device),
            "precision": self.precision,
            "total_steps": total_steps,
            "steps_per_epoch": steps_per_epoch,
            "train_examples": len(prepared.train),
            "validation_examples": len(prepared.validation),
            "validation_scored_during_training": len(self.val_data),
            "resumed_from_step": self.s.progress.step,
            "model": bundle.description,
            "fast_path": self.fast.on,
        }
        self.sink.log(header)
        if self.writer:
            self.writer.set_status(
                "running",
                **i18n.message("run.status.training"),
                step=self.s.progress.step,  # a resumed run's restored step, not the 0 written while it prepared
                total_steps=total_steps,
                **{k: header[k] for k in ("trainable_params", "total_params", "device", "precision")},
            )

    # 5 --------------------------------------------------------------------------------------------------
    def fit(self) -> None:
        from core.batching import length_grouped_batches

        s, tc, p = self.s, self.tc, self.s.progress
        s.started = time.perf_counter() - p.train_seconds
        s.window = _Window(eager=syncs_every_step(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        while p.step < self.total_steps and s.running:
            batches = length_grouped_batches(self.train_data.lengths, tc.batch_size, tc.seed + p.epoch)
            if self.world > 1:
                # A tail batch with fewer rows than processes would leave one of them nothing to compute.
                batches = [b for b in batches if len(b) >= self.world]
            self.batches_in_epoch = len(batches)
            for b_index in range(p.batch_in_epoch, len(batches)):
                if self._stop_requested():
                    break
                self.callbacks.on_step(p.step, s.micro)
                closes = s.micro + 1 >= tc.grad_accum or b_index + 1 >= len(batches)
                if self.train_step(batches[b_index], closes, b_index):
                    self.after_update()
                    if p.step >= self.total_steps or not s.running:
                        break
            else:
                p.epoch += 1
                p.batch_in_epoch = 0

    def _stop_requested(self) -> bool:
        s, tc = self.s, self.tc
        stop_now = self.stop.is_set()
        over_budget = bool(tc.time_budget_min) and time.perf_counter() - s.started > tc.time_budget_min * 60
        if self.world > 1:
            # Every process must leave the loop at the same step, or the others wait forever in a collective.
            stop_now, over_budget = _agree(stop_now, over_budget, self.device)
        if stop_now:
            s.state, s.ending = "stopped", ("run.status.stopped_by_user", None, {})
        elif over_budget:
            s.state = "budget"
            s.ending = ("run.status.budget_reached", None, {"minutes": tc.time_budget_min})
        return not s.running

    def train_step(self, global_index: np.ndarray, closes: bool, b_index: int) -> bool:
        """One micro-batch forward and backward; when it ``closes`` an accumulation, the optimizer step.
        Returns whether the optimizer stepped."""
        s, p = self.s, self.s.progress
        index, share = _shard(global_index, self.rank, self.world)
        if self.world > 1:
            # Gradients are all-reduced only on the micro-batch that completes an accumulation.
            self.model.require_backward_grad_sync = closes
        loss = self.step.forward_backward(index, share)
        s.micro += 1
        p.batch_in_epoch = b_index + 1
        s.window.samples += len(global_index)
        s.window.tokens += int(self.train_data.lengths[global_index].sum())  # from the host: no device sync
        s.window.add_loss(loss, share, p.step)
        if not closes:
            return False
        s.micro = 0
        s.window.add_grad_norm(self.step.clip(), p.step, scaled=self.step.scaler is not None)
        self.step.update()
        p.step += 1
        return True

    def after_update(self) -> None:
        """What follows an optimizer step: trim memory, log, evaluate, checkpoint."""
        from core.device import trim_host_memory

        p, tc = self.s.progress, self.tc
        if self.device.type == "cpu" and p.step % TRIM_EVERY == 0:
            trim_host_memory()  # between steps almost nothing is live: see TRIM_EVERY
        if p.step % tc.log_every == 0 or p.step == self.total_steps:
            self.log()
        # No validation rows (val_fraction 0): nothing to score, so no evaluation events at all.
        if len(self.val_data) and (p.step % self.eval_every == 0 or p.step == self.total_steps):
            self.validate()
        if self.s.state != "stopped" and (p.step % self.save_every == 0 or self.s.state == "early"):
            self.save_checkpoint()

    def _epoch(self) -> float:
        p = self.s.progress
        return round(p.epoch + p.batch_in_epoch / self.batches_in_epoch, 4)

    def log(self) -> None:
        s, p, window = self.s, self.s.progress, self.s.window
        window.check(p.step)
        now = time.perf_counter()
        dt = max(now - window.t, 1e-9)
        mean_loss = window.mean_loss()
        if self.world > 1:
            mean_loss = _all_mean(mean_loss, self.device)
        p.samples += window.samples
        p.tokens += window.tokens
        p.train_seconds = now - s.started
        record = {
            "step": p.step,
            "epoch": self._epoch(),
            "loss": mean_loss,
            "lr": self.scheduler.get_last_lr()[0],
            "samples_per_s": window.samples / dt,
            "tokens_per_s": window.tokens / dt,
            "elapsed_s": p.train_seconds,
            "eta_s": p.train_seconds / p.step * (self.total_steps - p.step),
        }
        self.sink.log(record)
        s.last_good = record
        self.callbacks.on_log(record)
        if self.writer:
            self.writer.set_status(
                step=p.step,
                epoch=record["epoch"],
                loss=mean_loss,
                samples_per_s=record["samples_per_s"],
                eta_s=record["eta_s"],
                elapsed_s=p.train_seconds,
            )
        window.reset()

    def validate(self) -> None:
        """Score the validation split, track the best, decide early stopping. Its time is not training time."""
        from core.evaluation import metrics_from_scores, score_encoded
        from core.probes import log_probes
        from core.scoring import rows_of

        s, p, tc = self.s, self.s.progress, self.tc
        s.window.check(p.step)
        t_eval = time.perf_counter()
        self.callbacks.on_eval(p.step)
        # No malloc_trim here: scoring reuses the pages the steps left free, and the next step reuses scoring's
        # (trimming first cost ~54,000 page faults per validation, ~0.1 s, and lowered the peak by nothing).
        # At the last step the whole split is scored, once for both: the curve's point from its subset's rows (the
        # curve stays on one set of rows) and the final validation scores (a language model's pass has no rows).
        last_whole = p.step == self.total_steps and self.val_rows is not None and self.task != "generation"
        data = self.whole_val if last_whole else self.val_data
        scores = score_encoded(
            self.bundle.model,
            data,
            self.task,
            batch_size=tc.batch_size * 4,
            pad_id=self.bundle.tokenizer.pad_token_id,
            device=self.device,
            precision=self.precision,
            stop=self.stop,
            fast_path=self.fast.on,
        )
        if scores is None:
            s.state, s.ending = "stopped", ("run.status.stopped_in_evaluation", None, {})
            return
        s.scored = (p.step, scores) if data is self.whole_val else None
        if last_whole:
            scores = rows_of(scores, self.val_rows, self.whole_val.labels, self.task)
        names = self.prepared.label_names
        metrics = {f"val_{k}": v for k, v in metrics_from_scores(scores, self.val_data, self.task, names).items()}
        watched = metrics.get(tc.early_stopping_metric, metrics.get("val_loss"))
        if self._improved(watched):
            p.best_metric, p.best_step, p.bad_evals = watched, p.step, 0
        else:
            p.bad_evals += 1
        self.sink.log({"step": p.step, "epoch": self._epoch(), **metrics, "best_step": p.best_step})
        log_probes(self.sink, self.bundle, self.config, p.step, self.device, self.precision)  # pinned inputs, live
        if self.writer:
            self.writer.set_status(latest_eval=metrics, best_step=p.best_step)
        # Evaluation time is not training time: keep throughput figures honest.
        s.started += time.perf_counter() - t_eval
        s.window.t += time.perf_counter() - t_eval
        if tc.early_stopping_patience and p.bad_evals >= tc.early_stopping_patience:
            s.state = "early"
            params = {"metric": tc.early_stopping_metric, "patience": tc.early_stopping_patience, "step": p.best_step}
            s.ending = ("run.status.early_stopped", None, params)

    def _improved(self, value: float) -> bool:
        best = self.s.progress.best_metric
        if best is None or not math.isfinite(best):
            return True
        return value > best if self.tc.metric_higher_is_better else value < best

    def save_checkpoint(self) -> None:
        if self.writer:
            from core.device import trim_host_memory

            p = self.s.progress
            self.s.window.check(p.step)  # never keep weights a NaN may have reached
            trim_host_memory()  # the save allocates on top of whatever the steps left in glibc's heaps
            # A run that took all its steps has nothing left to resume into: its last checkpoint keeps the weights
            # and the progress, not the optimizer's moments (2x the weights: 180 of a MiniLM checkpoint's 270 MB,
            # ~0.8 s of writing here). Should the process die before the run is marked finished, a resume from it
            # goes straight to the end (``_restore_state``).
            complete = self.s.state == "finished" and p.step >= self.total_steps
            save_checkpoint(self.run, self.bundle, None if complete else self.optimizer, self.scheduler, p,
                            self.callbacks, self.step.scaler)  # fmt: skip
            _prune_checkpoints(self.run, self.tc.keep_checkpoints, p.best_step)

    # 6 --------------------------------------------------------------------------------------------------
    def finish(self) -> TrainResult:
        """Keep what was learnt: the last checkpoint, the best weights if asked, the model, the scores."""
        from core.device import trim_host_memory
        from core.distill import comparison_results
        from core.model_card import write_model_card
        from core.models import save_model

        run, writer, s, p, tc = self.run, self.writer, self.s, self.s.progress, self.tc
        if writer is None:
            state = "finished" if s.state in ("finished", "budget", "early") else s.state
            return TrainResult(run.id, state, i18n.message(s.ending[0], s.ending[1], **s.ending[2])["message"], p.step)
        if p.step == 0:
            writer.set_status("stopped", **i18n.message("run.status.stopped_empty"))
            return TrainResult(run.id, "stopped", "nothing to keep")
        s.window.check(p.step)
        key, hint, params = s.ending
        keep_best = (tc.early_stopping_patience > 0 or self.stop.keep_best) and p.best_step
        if not (run.checkpoints_dir / f"step-{p.step:06d}").exists():
            self.save_checkpoint()
        weights_step = p.step
        if keep_best and p.best_step != p.step:
            best = run.checkpoints_dir / f"step-{p.best_step:06d}"
            if best.exists():
                load_weights(self.bundle.model, best)
                weights_step = p.best_step
                hint, params = "run.status.restored_best", {**params, "best": p.best_step}
        writer.set_status(**i18n.message("run.status.saving"))
        trim_host_memory()
        tmp = run.dir / f".model-{uuid.uuid4().hex[:6]}"
        try:
            # The kept weights are the checkpoint's at weights_step, byte for byte: linked, not written again.
            save_model(self.bundle, tmp, {"run_id": run.id, "step": p.step, "best_step": p.best_step,
                                         "weights_step": weights_step},
                       weights_from=run.checkpoints_dir / f"step-{weights_step:06d}")  # fmt: skip
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)  # a half-saved model must not be mistaken for one
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                raise _disk_full("the final model could not be saved. The checkpoints are intact.") from None
            raise
        replace_folder(tmp, run.model_dir)
        final_state = "stopped" if s.state == "stopped" else "finished"
        results: dict[str, Any] = {
            "steps": p.step,
            "train_seconds": round(p.train_seconds, 2),
            "samples_per_s": p.samples / max(p.train_seconds, 1e-9),
            "tokens_per_s": p.tokens / max(p.train_seconds, 1e-9),
            "best_step": p.best_step,
            "last_train_loss": (s.last_good or {}).get("loss"),
        }
        if final_state == "finished":
            writer.set_status(**i18n.message("run.status.scoring"))
            results.update(self._final_scores(weights_step))
            results.update(comparison_results(run, self.device))  # student vs teacher, only for a distilled run
        run.write_results(results)
        write_model_card(run.model_dir)  # again, now with the scores
        ending = i18n.message(key, hint, **params)
        # The speed shown from now on is the run's own, as in the results and the Runs table, not its last window's.
        speed = results["samples_per_s"]
        writer.set_status(final_state, **ending, samples_per_s=speed, **model_scores_status(results))
        return TrainResult(run.id, final_state, ending["message"], p.step, p.train_seconds, speed,
                           results["tokens_per_s"], results)  # fmt: skip

    def _final_scores(self, weights_step: int) -> dict[str, Any]:
        """Full validation and test scores of the kept weights (``weights_step``'s)."""
        from core.evaluation import metrics_from_scores, score_encoded

        out: dict[str, Any] = {}
        for name in ("validation", "test"):
            frame = getattr(self.prepared, name)
            if len(frame) == 0:
                continue
            scored = self.s.scored
            if name == "validation" and scored is not None and scored[0] == weights_step:
                out[name] = metrics_from_scores(scored[1], self.whole_val, self.task, self.prepared.label_names)
                continue
            if name == "validation":
                data = self.whole_val
            else:
                data = components.encode_split(self.bundle, frame, self.task, self.tc.max_length)
            scores = score_encoded(
                self.bundle.model,
                data,
                self.task,
                batch_size=self.tc.batch_size * 4,
                pad_id=self.bundle.tokenizer.pad_token_id,
                device=self.device,
                precision=self.precision,
                fast_path=self.fast.on,
            )
            out[name] = metrics_from_scores(scores, data, self.task, self.prepared.label_names)
        return out

    def cleanup(self) -> None:
        """Give back what the run changed in the process (the fast path's thread count and attention routing)."""
        if self.fast is not None:
            self.fast.close()


# ----------------------------------------------------------------------------------------------- entry point
def train(
    config: RunConfig,
    run: Run,
    *,
    stop: StopSignal | None = None,
    sink: MetricsSink | None = None,
    resume: bool = False,
    hook: Hook | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    process_ends: bool = False,
) -> TrainResult:
    """Train ``config`` into ``run``; never raises for user-fixable problems (the run ends failed with the message).

    ``process_ends``: the caller's process ends after the run (the worker, the CLI). What setup built then stays
    out of the collector's sight (``gc.freeze``) and the closing full collection (0.2-0.4 s) is skipped; the
    process frees everything as it exits."""
    stop = stop or StopSignal()
    rank, world = _distributed()
    sink = sink or (run_sink(config, run) if rank == 0 else _NullSink())  # metrics.jsonl (+ TensorBoard)
    writer = run if rank == 0 else None
    if writer:
        # A resumed run keeps the step it shows until setup writes the one restored from its checkpoint.
        writer.set_status("running", **i18n.message("run.status.preparing"), **({} if resume else {"step": 0}))
    collecting = _pause_collection()
    import torch

    # The thread count is process-wide: a run's choice (num_threads or the tuner) must not outlive it in a
    # server that goes on to serve predictions.
    threads_before = torch.get_num_threads()
    recipe = Recipe(config, run, stop=stop, sink=sink, callbacks=HookCallbacks(hook, on_progress), writer=writer,
                    rank=rank, world=world)  # fmt: skip
    try:
        try:
            recipe.setup(resume)
        finally:
            _resume_collection(collecting)
        recipe.fit()
        return recipe.finish()
    except WorkbenchError as err:
        return _fail(run, writer, i18n.error_message(err))
    except Exception as err:  # noqa: BLE001 - every failure ends the run with a readable message
        from core.device import is_oom

        if is_oom(err):
            record = i18n.message("error.training.out_of_memory")
        else:
            record = i18n.message("error.training.crashed", kind=type(err).__name__, detail=str(err)[:500])
        return _fail(run, writer, record)
    finally:
        sink.close()
        recipe.cleanup()
        torch.set_num_threads(threads_before)
        if not process_ends:
            gc.unfreeze()  # what setup built may be garbage now, and the caller goes on in this process
            gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def model_scores_status(results: dict[str, Any]) -> dict[str, Any]:
    """The status fields that show a finished run's model scores (none without a validation split).

    The Train page's numbers read the latest evaluation: after a run (or once its best checkpoint became its model)
    they must be the whole split's scores of the model's weights, as in the results table, not the curve's last
    subset nor an earlier model's (two different "validation accuracy" figures on one finished page). The curve
    itself keeps its points."""
    if "validation" not in results:
        return {}
    return {"latest_eval": {f"val_{k}": v for k, v in results["validation"].items()}}


def _pause_collection() -> bool:
    """Turn Python's cycle collector off while the run imports torch and transformers and builds the model.

    Those ~400,000 new objects set off six full collections (each walks every object in the process), 0.6-0.7 s
    of a MiniLM run's start; nothing built there is garbage. Returns whether the collector was on."""
    on = gc.isenabled()
    gc.disable()
    return on


def _resume_collection(was_on: bool) -> None:
    """After setup: what it built goes to the permanent generation (``gc.freeze``), so that the collections the
    loop sets off do not walk it again (``train`` unfreezes it at the end unless the process ends); the collector
    is on again."""
    gc.freeze()
    if was_on:
        gc.enable()


class _NullSink:
    def log(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def _fail(run: Run, writer: Run | None, record: dict[str, Any]) -> TrainResult:
    # The record keeps the message's key and parameters (core.i18n), so the Runs page shows it in any language.
    if writer:
        writer.set_status("failed", **record)
    return TrainResult(run.id, "failed", record["message"])


def _prepare_splits(config: RunConfig, run: Run, resume: bool):
    """Prepare the data once and keep the splits in the run folder, so evaluation and resume see the same rows."""
    import json

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


# ----------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(run: Run, bundle, optimizer, scheduler, progress: Progress, callbacks: Callbacks | None = None,
                    scaler=None) -> Path:  # fmt: skip
    """Write into a hidden temporary folder, then rename: a kill mid-save never leaves a checkpoint resume would pick.
    ``optimizer`` None: the checkpoint of a run with no steps left, saved without the optimizer's state."""
    import torch

    from core.models import save_model

    final = run.checkpoints_dir / f"step-{progress.step:06d}"
    tmp = run.checkpoints_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:6]}"
    try:
        save_model(bundle, tmp, {"step": progress.step})
        if callbacks:
            callbacks.on_save(tmp, progress.step)
        state = {
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "scheduler": scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "progress": dict(progress.__dict__),
            "scaler": scaler.state_dict() if scaler is not None else {},
        }
        with _no_checksums():
            torch.save(state, tmp / STATE_FILE)
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


def _no_checksums():
    """torch.save without the CRC-32 of each record: torch.load never checks it (a flipped byte loads silently),
    and on the ~180 MB of a MiniLM run's optimizer state it took about half of the save (bench/README.md)."""
    import contextlib

    import torch

    config = getattr(getattr(torch.utils, "serialization", None), "config", None)
    if config is None or not hasattr(config.save, "compute_crc32"):  # an older torch: save as it does
        return contextlib.nullcontext()
    return config.patch({"save.compute_crc32": False})


def _restore_state(path: Path, optimizer, scheduler, scaler=None) -> Progress:
    import torch

    state = torch.load(path / STATE_FILE, weights_only=True, map_location="cpu")
    if state["optimizer"] is not None:  # None: a complete run's last checkpoint (no step follows it)
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return Progress(**state["progress"])


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
        load_transformers()
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
        return
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise TrainingError("error.training.no_weights", hint="error.hint.earlier_checkpoint", checkpoint=folder.name)
    state: dict[str, Any] = {}
    for f in files:
        state.update(load_file(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied weights (LM head = embeddings) are saved once; anything else missing is a real mismatch.
    real_missing = [k for k in missing if not k.endswith(("lm_head.weight", "position_ids"))]
    if real_missing:
        raise TrainingError("error.training.checkpoint_mismatch", checkpoint=folder.name, missing=real_missing[:3])
