"""A time budget plans the schedule: the rate has decayed when the time runs out, and that scores better."""

from __future__ import annotations

import pytest
import torch

from core.budget import BudgetedLR, BudgetPlan, budgeted_scheduler
from core.config import TrainConfig


class FakeClock:
    """Seconds that pass only when a training step runs: the test never depends on the machine's speed."""

    def __init__(self, per_step: float) -> None:
        self.now, self.per_step = 1000.0, per_step

    def __call__(self) -> float:
        return self.now

    def hook(self, event: str, info: dict) -> None:
        if event == "step":
            self.now += self.per_step


def test_plan_decays_to_zero_at_the_steps_the_budget_allows():
    clock = FakeClock(per_step=2.0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    cfg = TrainConfig(time_budget_min=1.0, warmup_ratio=0.1, schedule="linear", epochs=100)
    sched = budgeted_scheduler(opt, cfg, total_steps=1000, clock=clock)
    lrs = []
    for _ in range(40):
        clock.now += 2.0
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    # 60 s at 2 s a step is 30 steps; the plan keeps 5% for evaluations: 28.
    assert sched.plan.planned == 28
    assert max(lrs) == pytest.approx(1.0, abs=0.2)  # it did reach (about) its peak after the short warmup
    assert lrs[26] < 0.05 and lrs[27:] == [0.0] * 13  # decayed by the planned end, not cut at the peak


def test_plan_never_exceeds_the_run_and_survives_a_checkpoint():
    clock = FakeClock(per_step=0.001)
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    cfg = TrainConfig(time_budget_min=10.0, schedule="cosine", epochs=1)
    sched = budgeted_scheduler(opt, cfg, total_steps=50, clock=clock)
    for _ in range(10):
        clock.now += 0.001
        opt.step()
        sched.step()
    assert sched.plan.planned == 50  # a fast run ends on its own length, the budget never lengthens it
    state = sched.state_dict()
    torch.save(state, buf := __import__("io").BytesIO())
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)  # checkpoints are loaded this way
    again = BudgetedLR(opt, BudgetPlan(1, 0.0, 0, "cosine", 600.0), 50, clock)
    again.load_state_dict(loaded)
    assert again.plan.planned == 50 and again.plan.spent_s == pytest.approx(sched.plan.spent_s)
    assert again.last_epoch == 10
