"""Device and precision chosen through one function each, so the CUDA path is the CPU path plus a name."""

from __future__ import annotations

import contextlib
import os

from core.errors import ConfigError


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str = "auto"):
    """'auto' picks CUDA, then MPS, then CPU; naming an absent device is a clear error."""
    import torch

    if name == "auto":
        # `accelerate launch --cpu` asks for the CPU even where a GPU is visible.
        forced_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        name = "cpu" if forced_cpu else "cuda" if cuda_available() else "mps" if mps_available() else "cpu"
    if name == "cuda" and not cuda_available():
        raise ConfigError("error.device.no_cuda", hint="error.hint.auto_or_cpu")
    if name == "mps" and not mps_available():
        raise ConfigError("error.device.no_mps", hint="error.hint.auto_or_cpu")
    if name == "cuda" and os.environ.get("LOCAL_RANK"):
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matmul (AVX512-BF16 or AMX); elsewhere bf16 would be emulated, slower."""
    import torch

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None and fn():
            return True
    return False


def cuda_has_native_bf16(device) -> bool:
    """True on GPUs with bf16 tensor cores (compute capability 8.0, Ampere, and later).

    ``torch.cuda.is_bf16_supported()`` also answers yes where bf16 is only emulated (T4, V100: capability 7.x),
    where it runs far slower than fp16; there the engine picks fp16 with a gradient scaler instead.
    """
    import torch

    index = device.index if getattr(device, "index", None) is not None else torch.cuda.current_device()
    return torch.cuda.get_device_capability(index) >= (8, 0) and torch.cuda.is_bf16_supported()


def resolve_precision(precision: str, device) -> str:
    """Return the compute precision actually used: 'fp32', 'bf16' or 'fp16'."""

    kind = device.type
    if precision == "auto":
        if kind == "cuda":
            return "bf16" if cuda_has_native_bf16(device) else "fp16"
        if kind == "cpu":
            return "bf16" if cpu_supports_bf16() else "fp32"
        return "fp32"
    if precision == "fp16" and kind != "cuda":
        raise ConfigError("error.device.fp16_cuda", hint="error.hint.precision")
    return precision


def autocast(device, precision: str):
    """Mixed-precision context for forward passes; a no-op for fp32."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def is_oom(err: BaseException) -> bool:
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def hardware_summary() -> dict:
    """What the Home page and the Train page show: CPU cores, CUDA GPUs with memory, MPS."""
    import torch

    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1)})
    return {
        "cpu_cores": os.cpu_count() or 1,
        "cpu_bf16": cpu_supports_bf16(),
        "cuda": gpus,
        "mps": mps_available(),
        "torch": torch.__version__,
    }


def trim_host_memory() -> None:
    """Give freed heap memory back to the OS (glibc's malloc_trim); a no-op elsewhere.

    glibc keeps freed blocks of the training step's activations in its heaps, and RSS stays at its high-water
    mark; the checkpoint save and the final scoring then allocate on top of it. Trimming first lets them reuse
    pages the OS already took back.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return
    if trim is not None:
        trim(0)
