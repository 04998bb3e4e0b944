"""Causal-LM training: our engine's generation default (a tiny GPT-2 with a BPE tokenizer trained on the text)
against transformers.Trainer on the same packed 128-token blocks.

    .venv/bin/python bench/train_lm.py [--docs 6000] [--only engine,trainer_fp32,trainer_bf16]

Same corpus (deterministic reviews, one paragraph each), tokenizer, initial weights (same seed), block size 128,
batch 16, lr 1e-3 with cosine decay and 5% warmup, weight decay 0.1, one epoch. Each configuration runs in a
fresh process, one after another. Tokens/s counts the training loop only (evaluation excluded for both).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

BATCH, LR, SEED, BLOCK, WARMUP, DECAY = 16, 1e-3, 0, 128, 0.05, 0.1


def _data_config(args: dict[str, Any]) -> dict[str, Any]:
    return {"train_path": args["train_txt"], "validation_path": args["val_txt"], "test_fraction": 0.0}


def _train_settings(n_blocks: int) -> dict[str, Any]:
    steps = math.ceil(n_blocks / BATCH)
    return {
        "batch_size": BATCH,
        "learning_rate": LR,
        "epochs": 1,
        "seed": SEED,
        "max_length": BLOCK,
        "warmup_steps": int(round(WARMUP * steps)),
        "weight_decay": DECAY,
        "schedule": "cosine",
    }


def engine(args: dict[str, Any]) -> dict[str, Any]:
    """The engine as the CLI runs it, with the generation default model."""
    from core.config import RunConfig
    from core.runs import RunStore
    from core.training import train

    config = RunConfig.from_dict(
        {
            "data": _data_config(args),
            "model": {"source": "default", "task": "generation"},
            "train": {
                **_train_settings(args["n_blocks"]),
                "device": args.get("device", "cpu"),
                **args.get("train", {}),
            },
        }
    )
    with tempfile.TemporaryDirectory() as ws:
        run = RunStore(Path(ws) / "runs").create(config)
        result = train(config, run, process_ends=True)  # as the CLI and the app's worker run it
        if result.state != "finished":
            raise RuntimeError(result.message)
        precision = run.status().get("precision")
    return {
        "train_s": result.train_seconds,
        "tokens_per_s": result.tokens_per_s,
        "val_loss": result.results["validation"]["loss"],
        "precision": precision,
    }


def _trainer(args: dict[str, Any], *, bf16: bool) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments, default_data_collator

    from core.batching import encode_blocks
    from core.config import DataConfig
    from core.data import prepare_data
    from core.models import build_tiny_gpt2, quiet_transformers

    quiet_transformers()
    prepared = prepare_data(DataConfig(**_data_config(args)), "generation")
    texts = prepared.train["text"].astype(str).tolist()
    # The same tokenizer and initial weights the engine builds (same texts, same seed).
    torch.manual_seed(SEED)
    model, tok = build_tiny_gpt2(texts, BLOCK, SEED)

    def blocks(frame) -> Dataset:
        ids = encode_blocks(tok, frame["text"].astype(str).tolist(), BLOCK).input_ids
        return Dataset.from_dict({"input_ids": ids, "labels": ids})

    train_ds, val_ds = blocks(prepared.train), blocks(prepared.validation)
    settings = _train_settings(len(train_ds))
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=BATCH * 4,
            learning_rate=LR,
            num_train_epochs=1,
            warmup_steps=settings["warmup_steps"],
            weight_decay=DECAY,
            lr_scheduler_type="cosine",
            max_grad_norm=1.0,
            seed=SEED,
            use_cpu=args.get("device", "cpu") == "cpu",
            bf16=bf16,
            optim="adamw_torch_fused",
            eval_strategy="no",
            save_strategy="no",
            logging_steps=10,
            report_to=[],
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=train_ds, data_collator=default_data_collator)
        runtime = trainer.train().metrics["train_runtime"]
        val_loss = trainer.evaluate(val_ds)["eval_loss"]
    return {
        "train_s": runtime,
        "tokens_per_s": len(train_ds) * BLOCK / runtime,
        "val_loss": val_loss,
        "precision": "bf16" if bf16 else "fp32",
    }


CONFIGS = {
    "engine": engine,
    # The engine with its CPU fast path off (stock PyTorch modules): the fast path's share, on request only.
    "engine_stock": lambda a: engine({**a, "train": {**a.get("train", {}), "fast_path": False}}),
    "trainer_fp32": lambda a: _trainer(a, bf16=False),
    "trainer_bf16": lambda a: _trainer(a, bf16=True),
}
LABELS = {
    "engine": "engine (defaults)",
    "trainer_fp32": "Trainer fp32, packed blocks",
    "trainer_bf16": "Trainer bf16 + adamw_torch_fused, packed blocks",
    "engine_stock": "engine, fast path off (stock PyTorch modules)",
}
DEFAULT = [name for name in CONFIGS if name != "engine_stock"]  # the comparison with the Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=6000, help="training reviews (one paragraph each)")
    parser.add_argument("--only", default=",".join(DEFAULT))
    parser.add_argument("--engine-train", default="{}", help="JSON overrides of the engine's train settings")
    parser.add_argument("--baseline", default="trainer_fp32", choices=list(CONFIGS), help="ratios are against this")
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where both sides train (cuda: the engine's device setting and the Trainer's, bench/gpu.sh)",
    )
    opts = parser.parse_args()

    import json

    from core.batching import encode_blocks
    from core.config import DataConfig
    from core.data import prepare_data
    from core.models import build_tiny_gpt2, quiet_transformers

    quiet_transformers()
    work = common.scratch_dir("bench-lm-")
    train_txt = common.write_corpus(work / "train.txt", opts.docs, seed=1)
    val_txt = common.write_corpus(work / "validation.txt", max(opts.docs // 10, 50), seed=2)
    args: dict[str, Any] = {
        "train_txt": str(train_txt),
        "val_txt": str(val_txt),
        "train": json.loads(opts.engine_train),
        "device": opts.device,
    }
    prepared = prepare_data(DataConfig(**_data_config(args)), "generation")
    model, tok = build_tiny_gpt2(prepared.train["text"].astype(str).tolist(), BLOCK, SEED)
    n_blocks = len(encode_blocks(tok, prepared.train["text"].astype(str).tolist(), BLOCK))
    args["n_blocks"] = n_blocks
    flops = common.encoder_train_flops(model, [BLOCK] * n_blocks)
    lm_head = 6.0 * model.config.vocab_size * model.config.n_embd * BLOCK * n_blocks  # tied head: a real matmul
    flops += lm_head
    print(
        f"data: {len(prepared.train)} documents -> {n_blocks} blocks of {BLOCK} tokens "
        f"({n_blocks * BLOCK:,} tokens), vocab {len(tok)}",
        flush=True,
    )
    peaks = {k: common.matmul_peak(k, device=opts.device) for k in ("fp32", "bf16")}
    rows = []
    for name in opts.only.split(","):
        load = common.load_average()
        out = common.run_child(Path(__file__), name, args)
        out.update(config=LABELS[name], load_before=load, gflops=flops / out["train_s"] / 1e9)
        rows.append(out)
        print(f"  {name}: {out['tokens_per_s']:.0f} tokens/s, val loss {out['val_loss']:.4f}", flush=True)
    peaks = {k: max(v, common.matmul_peak(k, device=opts.device)) for k, v in peaks.items()}
    base = next((r for r in rows if r["config"] == LABELS[opts.baseline]), None)
    for r in rows:
        r["ratio"] = r["tokens_per_s"] / base["tokens_per_s"] if base else None
        r["mfu_bf16"] = 100 * r["gflops"] * 1e9 / peaks["bf16"]
        r["mfu_fp32"] = 100 * r["gflops"] * 1e9 / peaks["fp32"]
    print()
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    print(common.table(rows, [
        ("config", "configuration", "s"),
        ("precision", "prec", "s"),
        ("tokens_per_s", "tokens/s", ".0f"),
        ("train_s", "train s", ".1f"),
        ("process_s", "wall s", ".1f"),
        ("peak_rss_mb", "peak RSS MB", ".0f"),
        ("val_loss", "val loss", ".4f"),
        ("ratio", f"× {opts.baseline}", ".2f"),
        ("gflops", "GFLOP/s", ".0f"),
        ("mfu_fp32", "% fp32 peak", ".0f"),
        ("mfu_bf16", "% bf16 peak", ".0f"),
        ("load_before", "load", ".1f"),
    ]))  # fmt: skip


if __name__ == "__main__":
    if not common.child_main(CONFIGS):
        main()
