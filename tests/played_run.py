"""A run that trains nobody: its status.json and metrics.jsonl are written by hand, at the pace of a real one.

The live page's tests and bench/live_page.py --synthetic watch it, so what they measure is the page, not training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# What a browser does when its tab goes to the background or comes back (Playwright's Chromium never hides a page
# by itself): for page.evaluate().
HIDE_TAB_JS = """() => {
  Object.defineProperty(document, "visibilityState", {get: () => "hidden", configurable: true});
  Object.defineProperty(document, "hidden", {get: () => true, configurable: true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW_TAB_JS = """() => {
  delete document.visibilityState;
  delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange"));
}"""


class PlayedRun:
    """``owner``: the pid of the live process the run belongs to (default: the one writing it). A page served by
    the writing process itself needs another owner: the app marks a run owned by its own process, but by none of
    its jobs, as interrupted."""

    def __init__(self, workspace: Path, data_path: Path, total: int = 100, run_id: str = "played", owner=None):
        from core.config import RunConfig
        from core.runs import RunStore, process_started

        config = RunConfig.from_dict(
            {"data": {"train_path": str(data_path)}, "model": {"source": "default", "task": "classification"}}
        )
        self.run = RunStore(workspace / "runs").create(config, run_id=run_id)
        self.total, self.step = total, 0
        who = {"pid": owner, "pid_started": process_started(owner)} if owner else {}
        self.run.set_status("running", step=0, total_steps=total, **who)
        start = {"event": "start", "total_steps": total, "train_examples": total * 16, "device": "cpu"}
        self.append(start | {"precision": "bf16", "trainable_params": 22_713_218, "total_params": 22_713_218})

    def append(self, record: dict) -> None:
        with open(self.run.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def log(self, steps: int = 1, eval_every: int = 0) -> None:
        """``steps`` logged steps (a falling, noisy loss), with an evaluation every ``eval_every`` steps."""
        for _ in range(steps):
            self.step += 1
            s = self.step
            loss = 0.69 * math.exp(-s / 200) + 0.2 + 0.05 * math.sin(s)
            self.append({"step": s, "epoch": s / self.total, "loss": loss, "lr": 5e-5 * (1 - s / self.total)})
            if eval_every and s % eval_every == 0:
                self.evaluate()
        eta = (self.total - self.step) * 0.13
        self.run.set_status(step=self.step, samples_per_s=120.0, elapsed_s=self.step * 0.13, eta_s=eta)

    def evaluate(self) -> None:
        record = {"step": self.step, "epoch": self.step / self.total, "val_loss": 0.5, "val_accuracy": 0.75}
        self.append(record)
        self.run.set_status(latest_eval=record)

    def finish(self) -> None:
        self.run.set_status("finished", step=self.step)
