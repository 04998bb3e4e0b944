"""Playground speed: generation through the engine (streamed and not) against a raw model.generate call with the
same settings, time to the first streamed token, and batched classification predictions/s against a
transformers pipeline.

    .venv/bin/python bench/generate.py [--prompts 8] [--new-tokens 64] [--rounds 6] [--texts 1000]

The generation model is the engine's default (the tiny GPT-2 and its BPE tokenizer, built from the benchmark
corpus, saved and loaded the way the Playground loads a run's model); the classifier is the default MiniLM.
Each measurement rotates engine and raw calls over the same prompts so load from neighbours hits all alike.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


def _generation_bundle(work: Path):
    from core.models import build_model, load_for_inference, save_model

    rng = random.Random(3)
    texts = [common.review(rng)[0] for _ in range(3000)]
    bundle = build_model("default", "generation", train_texts=texts, max_length=128, seed=0)
    save_model(bundle, work / "gpt", {"run_id": "bench"})
    return load_for_inference(work / "gpt")


def bench_generation(work: Path, n_prompts: int, new_tokens: int, rounds: int) -> list[dict]:
    import torch

    from core.generation import GenerationSettings, generate, stream

    bundle = _generation_bundle(work)
    tok, model = bundle.tokenizer, bundle.model
    rng = random.Random(4)
    prompts = [" ".join(common.review(rng)[0].split()[:8]) for _ in range(n_prompts)]
    rows = []
    for strategy in ("greedy", "sample"):
        settings = GenerationSettings(strategy=strategy, max_new_tokens=new_tokens, seed=0)
        kwargs = settings.generate_kwargs(tok)
        times = {"raw": 0.0, "engine": 0.0, "stream": 0.0}
        ttft, raw_first, tokens = [], [], 0
        generate(bundle, prompts[0], settings)  # warm-up: first calls allocate and pick kernels
        tok.padding_side = "left"
        paths = ["raw", "engine", "stream"]
        for turn in range(rounds * len(prompts)):
            prompt = prompts[turn % len(prompts)]
            texts = {}
            # The three paths take turns in a rotating order, so a change in the machine's speed in the middle of
            # a prompt, or a cache warmed by the path before, does not always favour the same one.
            for name in paths[turn % 3 :] + paths[: turn % 3]:
                t0 = time.perf_counter()
                if name == "raw":  # what a script calling transformers directly does
                    enc = tok([prompt], return_tensors="pt", add_special_tokens=False)
                    torch.manual_seed(settings.seed)
                    with torch.inference_mode():
                        out = model.generate(**enc, **kwargs)
                    texts["raw"] = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                    times["raw"] += time.perf_counter() - t0
                    tokens += out.shape[1] - enc["input_ids"].shape[1]
                elif name == "engine":  # engine, not streamed
                    texts["engine"] = generate(bundle, prompt, settings)
                    times["engine"] += time.perf_counter() - t0
                else:  # engine, streamed (what the Playground shows)
                    first = None
                    for piece in stream(bundle, prompt, settings):
                        if first is None and piece:
                            first = time.perf_counter() - t0
                    times["stream"] += time.perf_counter() - t0
                    ttft.append(first if first is not None else float("nan"))
            assert texts["engine"] == texts["raw"], (
                "engine and raw generate must give the same text for the same settings"
            )
            t0 = time.perf_counter()  # time to the first token of a raw call: prompt encoded above, one new token
            with torch.inference_mode():
                model.generate(**enc, **{**kwargs, "max_new_tokens": 1})
            raw_first.append(time.perf_counter() - t0)
        for name, label in (("raw", "raw model.generate"), ("engine", "engine generate"),
                            ("stream", "engine stream (Playground)")):  # fmt: skip
            rows.append({
                "what": f"{strategy}: {label}",
                "tokens_per_s": tokens / times[name],
                "ratio": times["raw"] / times[name],
                "first_ms": 1000 * statistics.median(ttft) if name == "stream" else
                (1000 * statistics.median(raw_first) if name == "raw" else None),
            })  # fmt: skip
    return rows


def bench_predict(n_texts: int) -> list[dict]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from core.generation import predict_proba
    from core.models import ModelBundle, minilm_path, quiet_transformers

    quiet_transformers()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2).eval()
    tok = AutoTokenizer.from_pretrained(minilm_path())
    bundle = ModelBundle(model, tok, "classification", ["negative", "positive"], "default", "MiniLM", 512)
    rng = random.Random(5)
    texts = [common.review(rng)[0] for _ in range(n_texts)]
    pipe = pipeline("text-classification", model=model, tokenizer=tok, device=-1, top_k=None)
    predict_proba(bundle, texts[:64])
    pipe(texts[:64], batch_size=64, truncation=True)
    t0 = time.perf_counter()
    probs = predict_proba(bundle, texts)
    t_engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipe(texts, batch_size=64, truncation=True)
    t_pipe = time.perf_counter() - t0
    assert probs.shape == (n_texts, 2)
    return [
        {"what": "predict_proba (engine, batch 64)", "per_s": n_texts / t_engine, "ratio": t_pipe / t_engine},
        {"what": "transformers pipeline, batch_size 64", "per_s": n_texts / t_pipe, "ratio": 1.0},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6, help="passes over the prompts (more: steadier ratios)")
    opts = parser.parse_args()
    work = common.scratch_dir("bench-gen-")
    print(f"load average before: {common.load_average():.1f}")
    gen = bench_generation(work, opts.prompts, opts.new_tokens, opts.rounds)
    print(
        f"\nGeneration, default tiny GPT-2, {opts.rounds} x {opts.prompts} prompts x up to {opts.new_tokens} new tokens"
        " (fp32)"
    )
    print(
        common.table(
            gen,
            [
                ("what", "path", "s"),
                ("tokens_per_s", "tokens/s", ".0f"),
                ("ratio", "× raw", ".3f"),
                ("first_ms", "first token ms (median)", ".1f"),
            ],
        )
    )
    pred = bench_predict(opts.texts)
    print(f"\nBatched classification, default MiniLM, {opts.texts} reviews")
    print(
        common.table(pred, [("what", "path", "s"), ("per_s", "predictions/s", ".0f"), ("ratio", "× pipeline", ".2f")])
    )
    print(f"load average after: {common.load_average():.1f}")


if __name__ == "__main__":
    main()
