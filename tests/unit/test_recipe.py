"""The training recipe: the same losses as stock PyTorch, the fast path behind one switch that gives back every
process-wide change, and the GPU behaviour (fp16 loss scaling, no sync per step) checked with fakes on a CPU."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core import components, fastpath, training
from core.batching import Encoded
from core.config import TrainConfig
from core.runs import RunStore
from core.training import TrainStep, train
from tests.conftest import tiny_run_config


def _losses(run) -> list[float]:
    return [r["loss"] for r in run.metrics() if "loss" in r and "event" not in r]


def _train(workspace, config, **kwargs):
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run, **kwargs)
    assert result.state == "finished", result.message
    return run


def _stock_sdpa():
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return AttentionInterface._global_mapping["sdpa"] is sdpa_attention_forward


# ------------------------------------------------------------------------------------------------ same numbers
def test_with_the_fast_path_off_the_losses_are_stock_pytorchs(workspace, toy_csv, tiny_bert_dir):
    """A hand-written stock loop (torch's own dropout, cross-entropy, AdamW, clipping) over the same batches."""
    from transformers import get_linear_schedule_with_warmup

    from core import models
    from core.batching import collate, length_grouped_batches
    from core.data import prepare_data

    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=4, num_threads=1, fast_path=False)
    run = _train(workspace, config)

    tc = config.train
    components.seed_everything(tc.seed)
    prepared = prepare_data(config.data, "classification")
    bundle = models.prepare_for_method(components.build_run_model(config, prepared, None), config.model)
    model = bundle.model.train()
    data = components.encode_split(bundle, prepared.train, "classification", tc.max_length)
    optimizer = torch.optim.AdamW(components.param_groups(model, tc), lr=tc.learning_rate)  # not fused
    schedule = get_linear_schedule_with_warmup(optimizer, 0, tc.max_steps)
    batches = length_grouped_batches(data.lengths, tc.batch_size, tc.seed)
    expected = []
    for index in batches[: tc.max_steps]:
        batch, labels = collate(data, index, bundle.tokenizer.pad_token_id, torch.device("cpu"))
        loss = torch.nn.functional.cross_entropy(model(**batch).logits.float(), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        expected.append(loss.item())
    got = _losses(run)
    assert got[0] == expected[0]  # the same model, batch and dropout masks: the very same first loss
    assert got == pytest.approx(expected, rel=1e-5)  # fused vs stock AdamW differ only in rounding


@pytest.mark.parametrize("task", ["classification", "generation"])
def test_fast_path_on_and_off_train_the_same_within_rounding(workspace, toy_csv, toy_corpus, tiny_bert_dir, task):
    """Without dropout (whose masks the fast path draws from another generator) every speed-up is exact math:
    the sparse-row AdamW, the blocked LM loss, the fused GELU."""
    if task == "generation":
        config = tiny_run_config(toy_corpus, "default", max_steps=5, num_threads=1)
        config.model.task = "generation"
    else:
        config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=5, num_threads=1)
    config.model.dropout = 0.0
    on = _losses(_train(workspace, config))
    off = _losses(
        _train(workspace, dataclasses.replace(config, train=dataclasses.replace(config.train, fast_path=False)))
    )
    assert len(on) == len(off) == 5
    assert on[0] == pytest.approx(off[0], rel=1e-6)
    assert on == pytest.approx(off, rel=1e-4)
    assert on != off or task == "classification"  # generation: the blocked loss really ran (rounding differs)


# ------------------------------------------------------------------------------------------------ the switch
def test_one_setting_and_one_environment_variable_turn_the_fast_path_off(monkeypatch):
    assert TrainConfig().fast_path is True and fastpath.enabled(True)
    assert not fastpath.enabled(False)
    for value in ("0", "false", "OFF", "no"):
        monkeypatch.setenv("WORKBENCH_FAST_PATH", value)
        assert not fastpath.enabled(True)
    monkeypatch.setenv("WORKBENCH_FAST_PATH", "1")
    assert fastpath.enabled(True)


def test_with_the_fast_path_off_a_run_uses_stock_modules(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    swapped = []
    real = fastpath.use_fast_dropout
    monkeypatch.setattr(fastpath, "use_fast_dropout", lambda model: swapped.append(1) or real(model))
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=1, num_threads=1)
    header = next(m for m in _train(workspace, config).metrics() if m.get("event") == "start")
    assert header["fast_path"] is True and swapped == [1]
    monkeypatch.setenv("WORKBENCH_FAST_PATH", "0")
    header = next(m for m in _train(workspace, config).metrics() if m.get("event") == "start")
    assert header["fast_path"] is False and swapped == [1]


@pytest.mark.parametrize("fails", [False, True])
def test_a_run_gives_back_every_process_wide_change(workspace, toy_csv, tiny_bert_dir, fails):
    """The tuner's thread count and the "sdpa" routing are in place while the run trains, and gone after it,
    however it ends."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so the thread tuner has a choice to make (num_threads 0: automatic)
    try:
        seen = {}

        def hook(event, info):
            if event == "step" and info["step"] == 1:
                seen["routed"] = not _stock_sdpa()
                if fails:
                    raise RuntimeError("killed")

        config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=3, num_threads=0)
        run = RunStore(workspace / "runs").create(config)
        result = train(config, run, hook=hook)
        assert result.state == ("failed" if fails else "finished")
        assert seen["routed"]
        assert _stock_sdpa()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_estimate_times_the_training_step_and_gives_back_the_thread_count(workspace, toy_csv, tiny_bert_dir,
                                                                               monkeypatch):  # fmt: skip
    from core.estimate import estimate_run

    calls = []
    real = TrainStep.forward_backward
    monkeypatch.setattr(TrainStep, "forward_backward", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    before = torch.get_num_threads()
    config = tiny_run_config(toy_csv, tiny_bert_dir, grad_accum=2, num_threads=1)
    estimate = estimate_run(config, timed_steps=2)
    assert len(calls) == (2 + 1) * 2  # a warm-up step and two timed ones, two micro-batches each
    assert estimate.seconds_per_step > 0
    assert torch.get_num_threads() == before  # num_threads 1 was the estimate's, not the server's
    assert _stock_sdpa()


# ------------------------------------------------------------------------------------------------ GPU, faked
class _Stub(torch.nn.Module):
    """Inputs so small (1e-7) that the weight gradient of the fp16 matmul is below fp16's smallest subnormal."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        torch.nn.init.constant_(self.emb.weight, 1e-7)
        self.emb.weight.requires_grad_(False)
        self.head = torch.nn.Linear(4, 2)
        self.config = SimpleNamespace()

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=self.head(self.emb(input_ids).mean(1)))


def _fp16_step(scaled: bool):
    torch.manual_seed(0)
    model = _Stub()
    data = Encoded([[1, 2, 3]] * 8, None, np.array([0, 1] * 4, dtype=np.int64))
    tc = TrainConfig(optimizer="sgd", momentum=0.0, weight_decay=0.0, learning_rate=1.0)
    optimizer = torch.optim.SGD(model.head.parameters(), lr=1.0)
    step = TrainStep(model, model, data=data, task="classification", tc=tc, device=torch.device("cpu"),
                     precision="fp16", optimizer=optimizer, fast=fastpath.FastPath(False))  # fmt: skip
    if not scaled:
        step.scaler = None
    before = model.head.weight.detach().clone()
    step.forward_backward(np.arange(8))
    grad = model.head.weight.grad.detach().clone()
    step.clip()
    step.update()
    return step, grad, model.head.weight.detach() - before


def test_fp16_trains_through_a_gradient_scaler_so_small_gradients_survive():
    step, grad, moved = _fp16_step(scaled=True)
    assert step.scaler is not None
    assert grad.abs().max() > 0 and moved.abs().max() > 0  # unscaled before the step: a real, small update
    assert moved.abs().max() < 1e-3
    _, grad, moved = _fp16_step(scaled=False)
    assert grad.abs().max() == 0 and moved.abs().max() == 0  # what fp16 did without the scaler: nothing learnt


def test_a_bf16_or_fp32_step_has_no_scaler():
    model = _Stub()
    for precision in ("bf16", "fp32"):
        step = TrainStep(model, model, data=None, task="classification", tc=TrainConfig(), device=torch.device("cpu"),
                         precision=precision, optimizer=None, fast=fastpath.FastPath(False))  # fmt: skip
        assert step.scaler is None


def test_on_a_gpu_the_loop_reads_values_back_only_at_the_log_interval(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    """On a GPU every read of a device value waits for the device: with log_every 3 the loop may read only at
    steps 3 and 6, and it must log the same losses it logs when it reads every step (as on a CPU)."""
    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=6, log_every=3, eval_every=6, num_threads=1)
    eager = _losses(_train(workspace, config))

    reads: dict[int, int] = {}
    at = {"step": -1}
    real = training._host
    monkeypatch.setattr(training, "syncs_every_step", lambda device: False)  # what it answers for a GPU
    monkeypatch.setattr(training, "_host", lambda v: reads.__setitem__(at["step"], reads.get(at["step"], 0) + 1)
                        or real(v))  # fmt: skip

    def hook(event, info):
        if event == "step":
            at["step"] = info["step"] + 1  # the step this micro-batch belongs to

    lazy = _losses(_train(workspace, config, hook=hook))
    assert set(reads) == {3, 6}, reads  # nothing read back during steps 1, 2, 4, 5
    assert lazy == pytest.approx(eager, rel=1e-12) and len(lazy) == 2


def test_on_a_gpu_a_nan_still_fails_the_run_before_a_checkpoint_keeps_it(workspace, toy_csv, tiny_bert_dir,
                                                                         monkeypatch):  # fmt: skip
    from core import models

    seen = {}
    real_prepare = models.prepare_for_method
    monkeypatch.setattr(models, "prepare_for_method", lambda b, m: seen.setdefault("bundle", real_prepare(b, m)))
    monkeypatch.setattr(training, "syncs_every_step", lambda device: False)

    def poison(event, info):
        if event == "step" and info["step"] == 4:  # about to compute step 5; the next read is at step 6
            with torch.no_grad():
                seen["bundle"].model.classifier.weight.fill_(float("nan"))

    # eval_every 10: no evaluation (which reads the deferred losses too) before the log at step 6.
    config = tiny_run_config(
        toy_csv, tiny_bert_dir, max_steps=10, log_every=3, save_every=2, eval_every=10, num_threads=1
    )
    run = RunStore(workspace / "runs").create(config)
    result = train(config, run, hook=poison)
    assert result.state == "failed" and "NaN" in result.message and "by step 6" in result.message
    assert run.latest_checkpoint().name == "step-000004"  # the save at step 6 found the NaN first


def test_jobs_search_and_cli_types_do_not_import_the_loop():
    """The registry, the search and the stop/progress types load without the training loop (or torch)."""
    import subprocess
    import sys

    code = "import sys, core.jobs, core.search, core.progress; print(sorted({'core.training', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "[]"


def test_only_a_cuda_gpu_defers_the_reads():
    assert training.syncs_every_step(torch.device("cpu"))
    assert not training.syncs_every_step(torch.device("cuda", 0))
    assert training.syncs_every_step(torch.device("mps"))  # no float64 on MPS to sum the losses in


def test_the_switch_reaches_evaluation_too(monkeypatch, toy_corpus):
    """With the fast path off, scoring computes the model's own LM loss (the blocked one is never called)."""
    import pandas as pd

    from core.evaluation import score_encoded
    from core.models import build_model

    texts = toy_corpus.read_text().splitlines()[:200]
    bundle = build_model("default", "generation", train_texts=texts, max_length=32, seed=0)
    data = components.encode_split(bundle, pd.DataFrame({"text": texts}), "generation", 32)
    kwargs = dict(batch_size=8, pad_id=bundle.tokenizer.pad_token_id, device=torch.device("cpu"), precision="fp32")
    blocked = []
    real = fastpath.causal_lm_loss
    monkeypatch.setattr(fastpath, "causal_lm_loss", lambda *a: blocked.append(1) or real(*a))
    off = score_encoded(bundle.model, data, "generation", fast_path=False, **kwargs)
    assert not blocked
    on = score_encoded(bundle.model, data, "generation", **kwargs)
    assert blocked and on.loss == pytest.approx(off.loss, rel=1e-5)
