"""Which offline generation default? Tiny GPT-2 from scratch vs a causal decoder warm-started from MiniLM.

Trains each for the same wall-clock budget on the same corpus with the same loop (bf16 autocast where the
CPU supports it, AdamW) and prints parameters, tokens/s and held-out bits per character before and after.
Bits per character (not perplexity) because the two use different tokenizers.

    .venv/bin/python bench/generation_default.py [--seconds 90] [--corpus data/samples/stories.txt]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def blocks(tokenizer, texts, size):
    import torch

    ids = []
    for doc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(doc + [tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id])
    n = len(ids) // size
    return torch.tensor(ids[: n * size]).view(n, size)


def bits_per_char(model, data, chars: int, precision_ctx) -> float:
    import torch

    model.eval()
    total = 0.0
    with torch.inference_mode(), precision_ctx():
        for i in range(0, len(data), 16):
            x = data[i : i + 16]
            out = model(input_ids=x, labels=x)
            total += float(out.loss) * x[:, 1:].numel()
    model.train()
    return total / math.log(2) / chars


def run(name, model, tokenizer, train_texts, val_texts, seconds, block, lr, ctx):
    import torch

    train = blocks(tokenizer, train_texts, block)
    val = blocks(tokenizer, val_texts, block)
    val_chars = (
        sum(len(t) + 1 for t in val_texts)
        * len(val)
        * block
        / max(1, sum(len(x) for x in tokenizer(val_texts)["input_ids"]))
    )
    params = sum(p.numel() for p in model.parameters())
    before = bits_per_char(model, val, val_chars, ctx)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
    g = torch.Generator().manual_seed(0)
    tokens, steps, start = 0, 0, time.perf_counter()
    model.train()
    while time.perf_counter() - start < seconds:
        idx = torch.randint(0, len(train), (16,), generator=g)
        x = train[idx]
        with ctx():
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += x.numel()
        steps += 1
    elapsed = time.perf_counter() - start
    after = bits_per_char(model, val, val_chars, ctx)
    return {
        "model": name,
        "params_M": params / 1e6,
        "steps": steps,
        "tokens_per_s": tokens / elapsed,
        "bpc_before": before,
        "bpc_after": after,
    }


def main() -> None:
    import torch
    from transformers import AutoTokenizer, BertLMHeadModel

    from core.device import autocast, resolve_device, resolve_precision
    from core.models import build_tiny_gpt2, minilm_path, quiet_transformers

    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=90)
    p.add_argument("--corpus", default="data/samples/stories.txt")
    args = p.parse_args()
    quiet_transformers()
    text = Path(args.corpus).read_text(encoding="utf-8")
    paras = [x.strip() for x in text.split("\n\n") if x.strip()]
    cut = int(len(paras) * 0.9)
    train_texts, val_texts = paras[:cut], paras[cut:]
    dev = resolve_device("cpu")
    precision = resolve_precision("auto", dev)

    def ctx():
        return autocast(dev, precision)

    rows = []
    torch.manual_seed(0)
    gpt, gpt_tok = build_tiny_gpt2(train_texts, 128, 0)
    rows.append(
        run("tiny GPT-2 (scratch, own BPE)", gpt, gpt_tok, train_texts, val_texts, args.seconds, 128, 1e-3, ctx)
    )
    tok = AutoTokenizer.from_pretrained(minilm_path())
    tok.eos_token = tok.sep_token
    dec = BertLMHeadModel.from_pretrained(minilm_path(), is_decoder=True)
    rows.append(run("MiniLM warm-started decoder", dec, tok, train_texts, val_texts, args.seconds, 128, 1e-4, ctx))
    print(
        f"corpus {args.corpus}: {len(train_texts)} train / {len(val_texts)} held-out paragraphs; "
        f"{args.seconds:g} s each; precision {precision}"
    )
    print(f"{'model':<32}{'params M':>10}{'steps':>8}{'tokens/s':>10}{'bpc before':>12}{'bpc after':>11}")
    for r in rows:
        print(
            f"{r['model']:<32}{r['params_M']:>10.1f}{r['steps']:>8}{r['tokens_per_s']:>10.0f}"
            f"{r['bpc_before']:>12.3f}{r['bpc_after']:>11.3f}"
        )


if __name__ == "__main__":
    main()
