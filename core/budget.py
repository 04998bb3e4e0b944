"""A learning-rate schedule planned for a time budget: warmup and decay fit the steps the budget allows.

Without it, a run with a time budget keeps the schedule of its epochs (say 50 epochs) and is cut off when the
time is up, at a learning rate near its peak: the weights are left mid-stride, far from where a decayed rate
would have settled them. Here the schedule's length is the number of steps the budget allows, re-estimated
after every step from the measured step times, so the rate has decayed (to zero) when the time runs out.

``BudgetedLR`` is an ordinary torch scheduler: the loop calls ``step()`` once per optimizer step as it does for
any other, and its plan is saved in checkpoints with the rest of the scheduler's state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from torch.optim.lr_scheduler import LambdaLR

MARGIN = 0.95
"""Plan to finish at this share of the budget: evaluations and checkpoints also take some of it."""
MIN_TIMED = 3
"""Steps to time before the first re-plan (the very first steps are slower: caches, allocator, tuning)."""


class BudgetPlan:
    """The multiplier of the peak rate at each step, for a run planned to last ``planned`` steps.

    Holds plain numbers only: torch saves a scheduler's callable objects by their ``__dict__``, and checkpoints
    are loaded with ``weights_only=True``.
    """

    def __init__(self, planned: int, warmup_ratio: float, warmup_steps: int, shape: str, budget_s: float) -> None:
        self.planned = max(1, planned)
        self.warmup_ratio = warmup_ratio
        self.warmup_steps = warmup_steps
        self.shape = shape
        self.budget_s = budget_s
        self.spent_s = 0.0
        self.timed_steps = 0

    def warmup(self) -> int:
        wanted = self.warmup_steps or round(self.warmup_ratio * self.planned)
        return min(wanted, self.planned // 3)  # a shrunken plan must still leave most of it for decay

    def __call__(self, step: int) -> float:
        warm = self.warmup()
        if step < warm:
            return (step + 1) / (warm + 1)
        if self.shape == "constant":
            return 1.0
        done = min(1.0, (step - warm) / max(1, self.planned - warm))
        if self.shape == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * done))
        return 1.0 - done

    def replan(self, step: int, seconds_per_step: float, ceiling: int) -> None:
        """Steps the rest of the budget allows at the measured pace; never more than the run's own length."""
        left = MARGIN * self.budget_s - self.spent_s
        if left <= 0:
            return  # the plan has ended (the rate is 0); steps until the loop stops must not stretch it
        self.planned = int(min(ceiling, max(1, step + left / max(seconds_per_step, 1e-9))))


class BudgetedLR(LambdaLR):
    """LambdaLR over a BudgetPlan that re-plans from its own clock at every step."""

    def __init__(self, optimizer, plan: BudgetPlan, ceiling: int, clock: Callable[[], float] | None = None):
        # Read at call time (not bound at import), so a test can give the loop and the plan one fake clock.
        self.plan, self.ceiling, self.clock = plan, ceiling, clock or (lambda: time.perf_counter())
        self._last: float | None = None
        super().__init__(optimizer, plan)

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Time the steps on ``clock``: the training loop's budget clock, which leaves out evaluation time.

        Timed on a plain clock, the plan counted the evaluations and the setup before the first step that the
        loop does not count against the budget, so it ended early and the last steps trained at a rate of zero.
        """
        self.clock, self._last = clock, None

    def step(self, epoch=None) -> None:  # noqa: D401 - torch's signature
        now = self.clock()
        if self._last is not None and self.last_epoch >= 0:
            self.plan.spent_s += now - self._last
            self.plan.timed_steps += 1
            if self.plan.timed_steps >= MIN_TIMED:
                self.plan.replan(self.last_epoch + 1, self.plan.spent_s / self.plan.timed_steps, self.ceiling)
        self._last = now
        super().step()

    def state_dict(self) -> dict:
        # The plan is saved through lr_lambdas (its numbers); the clock and the object itself cannot be.
        return {k: v for k, v in super().state_dict().items() if k not in ("plan", "clock", "_last")}

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self._last = None  # a resumed run's clock starts again; the time already spent is in the plan


def budgeted_scheduler(optimizer, cfg, total_steps: int, clock: Callable[[], float] | None = None):
    """The schedule of a run with ``cfg.time_budget_min``: first planned for its full length, then fitted."""
    shape = {"cosine": "cosine", "cosine_with_restarts": "cosine", "constant": "constant"}.get(cfg.schedule, "linear")
    plan = BudgetPlan(total_steps, cfg.warmup_ratio, cfg.warmup_steps, shape, cfg.time_budget_min * 60)
    return BudgetedLR(optimizer, plan, total_steps, clock)
