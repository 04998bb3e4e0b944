"""Training hooks named "module:function", so a fault can be injected into the real worker process.

A hook function of a test cannot cross into ``python -m core.worker``; the worker imports these by name
(``JobRegistry.start(config, hook="tests.unit.fault_hooks:oom_at_step_2")``).
"""

from __future__ import annotations

from typing import Any


def oom_at_step_2(event: str, info: dict[str, Any]) -> None:
    """What PyTorch raises when the device runs out of memory, in the second training step."""
    import torch

    if event == "step" and info["step"] == 2:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
