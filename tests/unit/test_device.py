"""The CUDA path on a CPU machine: device and precision are chosen through one function each, so pretending a GPU
is present must change exactly those choices (and the job registry's device key), and an out-of-memory error is
recognised whichever form torch raises it in."""

from __future__ import annotations

import pytest
import torch

from core import device as dev
from core.config import RunConfig
from core.errors import ConfigError


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend one CUDA GPU with native bf16 (an Ampere, capability 8.0) is visible (nothing is ever allocated)."""
    monkeypatch.setattr(dev, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (8, 0))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


def test_auto_picks_cuda_and_bf16_when_a_gpu_is_visible(fake_cuda):
    chosen = dev.resolve_device("auto")
    assert chosen == torch.device("cuda")
    assert dev.resolve_precision("auto", chosen) == "bf16"
    assert dev.resolve_precision("fp16", chosen) == "fp16"  # allowed only on CUDA


def test_auto_falls_back_to_fp16_on_gpus_without_bf16(fake_cuda, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.resolve_precision("auto", dev.resolve_device("auto")) == "fp16"


@pytest.mark.parametrize("capability", [(7, 0), (7, 5)])  # V100, T4
def test_auto_picks_fp16_where_bf16_is_only_emulated(fake_cuda, monkeypatch, capability):
    """Recent torch says bf16 is supported on a T4 or V100 (emulated, slow): auto must not believe it."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert torch.cuda.is_bf16_supported()  # what misled the old choice
    assert dev.resolve_precision("auto", dev.resolve_device("auto")) == "fp16"
    assert dev.resolve_precision("bf16", torch.device("cuda")) == "bf16"  # an explicit choice still wins


def test_each_distributed_process_takes_its_own_gpu(fake_cuda, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert dev.resolve_device("cuda") == torch.device("cuda", 3)
    assert dev.resolve_device("auto") == torch.device("cuda", 3)


def test_without_a_gpu_auto_is_cpu_and_naming_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(dev, "cuda_available", lambda: False)
    monkeypatch.setattr(dev, "mps_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="'device'.*no CUDA GPU"):
        dev.resolve_device("cuda")
    with pytest.raises(ConfigError, match="'precision'.*fp16 needs a CUDA GPU"):
        dev.resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_cpu_precision_follows_the_hardware_probe(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: has_bf16)
    assert dev.resolve_precision("auto", torch.device("cpu")) == expected


def test_the_job_registry_keys_jobs_by_the_device_auto_would_pick(fake_cuda):
    from core.jobs import device_key

    assert device_key(RunConfig.from_dict({"train": {"device": "auto"}})) == "cuda"
    assert device_key(RunConfig.from_dict({"train": {"device": "cpu"}})) == "cpu"


def test_autocast_is_a_no_op_for_fp32_and_lowers_matmuls_for_bf16():
    a = torch.randn(4, 8)
    cpu = torch.device("cpu")
    with dev.autocast(cpu, "fp32"):
        assert (a @ a.T).dtype == torch.float32
    with dev.autocast(cpu, "bf16"):
        assert (a @ a.T).dtype == torch.bfloat16


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_targets_cuda_with_the_chosen_dtype():
    # Built, not entered: entering would need a GPU. The context must name the device type and dtype we chose.
    ctx = dev.autocast(torch.device("cuda", 0), "fp16")
    assert isinstance(ctx, torch.autocast)
    assert ctx.device == "cuda" and ctx.fast_dtype == torch.float16
    assert dev.autocast(torch.device("cuda", 0), "bf16").fast_dtype == torch.bfloat16


@pytest.mark.parametrize(
    "err, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total capacity)"), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), False),
        (RuntimeError("Expected all tensors to be on the same device"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_is_recognised_in_the_forms_torch_raises(err, expected):
    assert dev.is_oom(err) is expected


def test_training_chooses_its_device_through_resolve_device(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    """With a (pretend) GPU and device 'auto', the loop asks resolve_device and trains wherever it answers."""
    from core.runs import RunStore
    from core.training import train
    from tests.conftest import tiny_run_config

    monkeypatch.setattr(dev, "cuda_available", lambda: True)
    asked: list[str] = []

    def spy(name: str = "auto"):
        asked.append(name)
        return torch.device("cpu")  # the GPU is pretend: run on the CPU, but only through this one choice

    monkeypatch.setattr(dev, "resolve_device", spy)
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=2, device="auto")
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run)
    assert result.state == "finished", result.message
    assert asked and set(asked) == {"auto"}
    start = next(m for m in run.metrics() if m.get("event") == "start")
    assert start["device"] == "cpu"


def test_accelerate_cpu_flag_keeps_auto_on_the_cpu_even_with_a_gpu(fake_cuda, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    assert dev.resolve_device("auto") == torch.device("cpu")
    assert dev.resolve_device("cuda") == torch.device("cuda")  # an explicit choice still wins
