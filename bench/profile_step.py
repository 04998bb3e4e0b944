"""Where one training step's time goes (MiniLM classifier, batch 16, the benchmark's reviews or --data short), per variant.

    .venv/bin/python bench/profile_step.py [--steps 40] [--variants bf16,bf16_frozen_emb,...] [--trace out.json]
    .venv/bin/python bench/profile_step.py --thread-table --variants bf16_fastdrop_sparse_emb_pad8 --steps 24

Variant names combine: fp32 / bf16, then any of _fastdrop, _sparse_emb, _frozen_emb, _eager, _padN (batch widths
rounded up to a multiple of N, e.g. _pad8 as the engine does under bf16), _trim (malloc_trim after every step),
_layers (core/fast_layers, unpadded: _layers_keeppad keeps the padding; _rowsN rounds the unpadded token
rows up to a multiple of N below 512 rows, doubled from there as the engine's 32 is: core/fast_layers.rounded_rows).

Variants run interleaved in rounds (A B C A B C ...) on the same batches, so a neighbour's load on a shared
machine spreads over all of them instead of penalising whichever ran last. Prints milliseconds per phase.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


def build(variant: str, texts, labels):
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core.batching import encode_pairs
    from core.models import minilm_path, quiet_transformers

    quiet_transformers()
    torch.manual_seed(0)
    kwargs = {"attn_implementation": "eager"} if "eager" in variant else {}
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2, **kwargs)
    if "frozen_emb" in variant:
        model.get_input_embeddings().weight.requires_grad_(False)
    if "fastdrop" in variant:
        from core.fastpath import use_fast_attention_dropout, use_fast_dropout

        use_fast_dropout(model)
        # The attention probabilities' dropout too, as the engine does. This registration is process-wide: once a
        # _fastdrop variant is built, the other variants' "sdpa" attention draws its masks this way as well.
        use_fast_attention_dropout()
    if "_layers" in variant:
        from core.fast_layers import use_fast_layers

        use_fast_layers(model, unpad="_keeppad" not in variant)
    model.train()
    tok = AutoTokenizer.from_pretrained(minilm_path())
    data = encode_pairs(tok, texts, None, np.asarray(labels), 128)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-5, fused=True)
    if "sparse_emb" in variant:
        from core.fastpath import sparse_row_adamw

        opt.rows = sparse_row_adamw(model, opt, device=torch.device("cpu"), world=1, l1_penalty=0.0)
    return model, opt, params, data, tok.pad_token_id


CLOCK = time.perf_counter


def _multiple(variant: str) -> int:
    """Batch widths rounded up to a multiple of N (_padN in the variant's name, e.g. _pad8), as the engine does."""
    found = re.search(r"_pad(\d+)", variant)
    return int(found.group(1)) if found else 1


def _row_multiple(variant: str) -> int:
    """The unpadded rows' smallest multiple N (_rowsN in the variant's name; doubled for large batches as the engine's
    is); the engine's otherwise."""
    from core import fast_layers

    found = re.search(r"_rows(\d+)", variant)
    return int(found.group(1)) if found else fast_layers.ROW_MULTIPLE


def step(model, opt, params, data, index, pad_id, precision, times, clip=True, multiple=1, rows=0):
    import torch

    from core import fast_layers
    from core.batching import collate
    from core.device import autocast

    if rows:  # the module's setting, which every model built here reads at its forward
        fast_layers.ROW_MULTIPLE = rows

    t0 = CLOCK()
    batch, labels = collate(data, index, pad_id, torch.device("cpu"), multiple)
    t1 = CLOCK()
    with autocast(torch.device("cpu"), precision):
        logits = model(**batch).logits.float()
        loss = torch.nn.functional.cross_entropy(logits, labels)
    t2 = CLOCK()
    loss.backward()
    t3 = CLOCK()
    rows = getattr(opt, "rows", None)
    if clip:
        (rows.clip_grad_norm_ if rows else torch.nn.utils.clip_grad_norm_)(params, 1.0)
    t4 = CLOCK()
    if rows:
        rows.step()
    opt.step()
    opt.zero_grad(set_to_none=True)
    t5 = CLOCK()
    for k, v in zip(("collate", "forward", "backward", "clip", "optim"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
        times[k] = times.get(k, 0.0) + v
    return float(loss.detach())


def thread_table(variant: str, texts, labels, steps: int) -> None:
    """Per-op time (torch.profiler's self time, milliseconds per step) at 1 and at 2 threads, in two rounds."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from core.batching import length_grouped_batches

    model, opt, params, data, pad = build(variant, texts, labels)
    prec = "fp32" if variant.startswith("fp32") else "bf16"
    batches = length_grouped_batches(data.lengths, 16, 0)
    timed = batches[3 : min(len(batches), 3 + steps)]
    per_op: dict[str, dict[int, float]] = {}
    for _ in range(2):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for index in batches[:3]:
                step(model, opt, params, data, index, pad, prec, {}, multiple=_multiple(variant))
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for index in timed:
                    step(model, opt, params, data, index, pad, prec, {}, multiple=_multiple(variant))
            for e in prof.key_averages():
                ms = e.self_cpu_time_total / len(timed) / 1000
                seen = per_op.setdefault(e.key, {})
                seen[threads] = min(seen.get(threads, ms), ms)
    rows = [{"op": k, "one": d.get(1, 0.0), "two": d.get(2, 0.0)} for k, d in per_op.items()]
    rows.sort(key=lambda r: -r["one"])
    total = {"op": "all ops", "one": sum(r["one"] for r in rows), "two": sum(r["two"] for r in rows)}
    for r in rows + [total]:
        r["ratio"] = r["one"] / r["two"] if r["two"] else None
    print(f"{variant}: {len(timed)} steps of batch 16 per round, load {common.load_average():.1f}")
    print(
        common.table(
            rows[:20] + [total],
            [
                ("op", "op", "s"),
                ("one", "1 thread ms", ".2f"),
                ("two", "2 threads ms", ".2f"),
                ("ratio", "speed-up", ".2f"),
            ],
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--variants", default="fp32,bf16,bf16_frozen_emb")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument(
        "--data",
        choices=("reviews", "short", "wide"),
        default="reviews",
        help="short: issue 15's ~20-word sentences; wide: the same with a vocabulary of real size",
    )
    p.add_argument("--trace", help="write a torch.profiler Chrome trace of a few steps of the first variant")
    p.add_argument(
        "--thread-table",
        action="store_true",
        help="instead: the first variant's time per op at 1 and "
        "at 2 threads (torch.profiler, two rounds each, the faster kept): which ops the second core speeds up",
    )
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="count process CPU time instead of wall time (a fairer "
        "measure on a busy shared machine; use with --threads 1, where no thread spins)",
    )
    opts = p.parse_args()
    global CLOCK
    if opts.cpu_time:
        CLOCK = time.process_time

    import torch

    from core.batching import length_grouped_batches
    from core.device import trim_host_memory

    if opts.threads:
        torch.set_num_threads(opts.threads)
    rng = random.Random(0)
    make = {"short": common.short_sentence, "wide": common.wide_sentence}.get(opts.data, common.review)
    rows = [make(rng) for _ in range(opts.steps * 16)]
    texts, labels = [t for t, _ in rows], [y for _, y in rows]
    variants = opts.variants.split(",")
    if opts.thread_table:
        thread_table(variants[0], texts, labels, opts.steps)
        return
    built = {v: build(v, texts, labels) for v in variants}
    batches = length_grouped_batches(built[variants[0]][3].lengths, 16, 0)
    times = {v: {} for v in variants}
    row_multiples = {v: _row_multiple(v) for v in variants}
    for v in variants:  # warm-up: first calls allocate and pick kernels
        model, opt, params, data, pad = built[v]
        prec = "fp32" if v.startswith("fp32") else "bf16"
        for index in batches[:3]:
            step(model, opt, params, data, index, pad, prec, {}, multiple=_multiple(v), rows=row_multiples[v])
    for index in batches:
        for v in variants:
            model, opt, params, data, pad = built[v]
            step(
                model,
                opt,
                params,
                data,
                index,
                pad,
                "fp32" if v.startswith("fp32") else "bf16",
                times[v],
                multiple=_multiple(v),
                rows=row_multiples[v],
            )
            if "_trim" in v:  # the engine's trim between steps (every step here: the worst case), counted as optim
                t0 = CLOCK()
                trim_host_memory()
                times[v]["optim"] += CLOCK() - t0
    if opts.trace:
        from torch.profiler import ProfilerActivity, profile

        model, opt, params, data, pad = built[variants[0]]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for index in batches[:8]:
                step(model, opt, params, data, index, pad, "fp32" if variants[0].startswith("fp32") else "bf16", {})
        prof.export_chrome_trace(opts.trace)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    n = len(batches)
    print(f"{n} steps of batch 16, {torch.get_num_threads()} threads, load {common.load_average():.1f}")
    rows_out = []
    for v in variants:
        t = times[v]
        total = sum(t.values())
        rows_out.append(
            {"variant": v, **{k: 1000 * x / n for k, x in t.items()}, "total": 1000 * total / n, "sps": 16 * n / total}
        )
    cols = [("variant", "variant", "s")] + [
        (k, f"{k} ms", ".1f") for k in ("collate", "forward", "backward", "clip", "optim", "total")
    ]
    print(common.table(rows_out, cols + [("sps", "samples/s", ".1f")]))


if __name__ == "__main__":
    main()
