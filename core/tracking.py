"""Opt-in tracking: TensorBoard event files beside metrics.jsonl, which stays the truth.

The engine reports through the tiny sink protocol of ``core.events``; this module adds a TensorBoard sink and a
fan-out, and ``run_sink`` picks what a run writes from its config (``train.tensorboard``). The events go into
the run folder itself, so ``tensorboard --logdir workspace/runs`` shows every run under its own id.

MLflow is not offered: its package pulls a web server, a database layer and their dependencies (hundreds of MB,
seconds of import) for what TensorBoard's event files already give a local user; a team that runs an MLflow
server can import metrics.jsonl into it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.events import JsonlSink, MetricsSink

# Record keys that are not measurements (or not per-step ones): left out of TensorBoard.
NOT_SCALARS = {"step", "epoch", "event", "best_step", "resumed_from_step"}


def scalar_tag(key: str) -> str:
    """'loss' -> 'train/loss', 'val_accuracy' -> 'validation/accuracy': TensorBoard groups by the prefix."""
    if key.startswith("val_"):
        return "validation/" + key[4:]
    return "train/" + key


class TensorBoardSink:
    """Writes each numeric value of a record as a scalar at the record's step."""

    def __init__(self, log_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "TensorBoard logging is on, but the tensorboard package is not installed.",
                hint="Install it (pip install tensorboard) or turn the tensorboard setting off.",
            ) from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, record: dict[str, Any]) -> None:
        step = record.get("step")
        if not isinstance(step, int) or record.get("event") == "start":
            return
        for key, value in record.items():
            if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(scalar_tag(key), float(value), global_step=step)
        self.writer.flush()  # a live `tensorboard` sees each point as soon as metrics.jsonl does

    def close(self) -> None:
        self.writer.close()


class FanOutSink:
    """Passes every record to several sinks, the first one (the JSONL truth) first."""

    def __init__(self, sinks: list[MetricsSink]):
        self.sinks = sinks

    def log(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.log(record)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def run_sink(config, run) -> MetricsSink:
    """The sink a run writes to: metrics.jsonl, plus TensorBoard events when ``train.tensorboard`` is on."""
    truth = JsonlSink(run.metrics_path)
    if not getattr(config.train, "tensorboard", False):
        return truth
    return FanOutSink([truth, TensorBoardSink(run.dir)])
