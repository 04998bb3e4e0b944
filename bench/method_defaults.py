"""Every method x task with the defaults of core.defaults.recommended_train_settings: score and time.

    .venv/bin/python bench/method_defaults.py [--rows 3000] [--only classification:lora,generation:prefix]

Data: bench.common's deterministic movie reviews (``--rows`` training rows; labels for classification, a
1-5 rating derived from the same reviews for regression, the texts as a corpus for generation). Each case
trains through core.training.train exactly as the CLI would with no option but the method, and prints one
row: the defaults it used, the test score, chance, and the training time. Generation: prefix, prompt, LoRA
and full start from a tiny GPT-2 first trained (full, defaults) on the bundled stories.txt, so the score is
the test perplexity before and after tuning on the reviews.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

CASES = [  # the case first: a few cases may be all a loaded machine allows
    ("classification", "lora"),
    ("classification", "freeze"),
    ("classification", "full"),
    ("classification", "distill"),
    ("generation", "prefix"),
    ("generation", "prompt"),
    ("generation", "lora"),
    ("generation", "full"),
    ("regression", "lora"),
    ("regression", "full"),
    ("regression", "freeze"),
]


def write_data(folder: Path, rows: int) -> dict[str, Path]:
    """train.csv (text,label), ratings.csv (text,rating 1-5) and reviews.txt: deterministic."""
    rng = random.Random(0)
    reviews = [common.review(rng) for _ in range(rows)]
    folder.mkdir(parents=True, exist_ok=True)
    cls, reg = folder / "train.csv", folder / "ratings.csv"
    with open(cls, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([t, "positive" if y else "negative"] for t, y in reviews)
    with open(reg, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "rating"])
        # A rating from the opinions' balance: positive words up, negative down (1 to 5).
        for t, _ in reviews:
            good = sum(t.count(g) for g in common._GOOD) - sum(t.count(b) for b in common._BAD)
            w.writerow([t, min(5, max(1, 3 + good))])
    corpus = folder / "reviews.txt"
    corpus.write_text("\n\n".join(t for t, _ in reviews) + "\n", encoding="utf-8")
    return {"classification": cls, "regression": reg, "generation": corpus}


def run_case(store, task: str, method: str, data: Path, rows: int, extra_model: dict | None = None) -> dict:
    from core.config import RunConfig
    from core.defaults import defaults_for
    from core.inference import model_outline
    from core.training import train

    model = {"task": task, "method": "full" if method == "distill" else method, **(extra_model or {})}
    if method == "freeze":
        model.update(freeze_layers=3, freeze_embeddings=True)  # what the Train page offers: half the layers
    source = model.get("source", "default")
    # What the CLI and the Train page give: the same facts (rows, the model's outline) into the same function.
    outline = model_outline(source, task, store.root)
    settings = defaults_for(task, source, int(rows * 0.8), method=model["method"], outline=outline,
                            distill=method == "distill")  # fmt: skip
    config = RunConfig.from_dict({"data": {"train_path": str(data)}, "model": model, "train": settings})
    run = store.create(config)
    clock = _PhaseClock()
    t0 = time.perf_counter()
    result = train(config, run, hook=clock.hook)
    wall = time.perf_counter() - t0
    clock.hook("end", {})
    test = result.results.get("test", {})
    return {
        "task": task,
        "method": method,
        "lr": settings["learning_rate"],
        "epochs": settings["epochs"],
        "batch": settings["batch_size"],
        "steps": result.steps,
        "state": result.state,
        "score": test.get("accuracy", test.get("r2", test.get("perplexity"))),
        "metric": "accuracy" if "accuracy" in test else "r2" if "r2" in test else "perplexity",
        "train_s": round(result.train_seconds, 1),
        # Evaluations during training (on the subset) plus checkpoint saves, as a share of the training time
        # (not the final scoring of the full splits: see _PhaseClock).
        "pause_share": round((clock.seconds("eval") + clock.seconds("save")) / max(result.train_seconds, 1e-9), 3),
        "eval_share": round(clock.seconds("eval") / max(result.train_seconds, 1e-9), 3),
        "wall_s": round(wall, 1),
        "run": run.id,
        "message": result.message if result.state != "finished" else "",
    }


class _PhaseClock:
    """Seconds spent between an 'eval' (or 'save') hook and the next hook of the loop.

    The loop's last evaluation is followed by no hook of its own: after it come the full validation and test
    splits, a distilled run's teacher comparison and the final save, which the 10% cap does not cover (they run
    once, at the end). So the phase still open when training returns is dropped, and the last evaluation is
    counted at the mean of the others."""

    def __init__(self) -> None:
        self.spent = {"eval": 0.0, "save": 0.0}
        self.closed = {"eval": 0, "save": 0}
        self.opened = {"eval": 0, "save": 0}
        self.phase, self.since = None, 0.0

    def hook(self, event: str, info: dict) -> None:
        now = time.perf_counter()
        if self.phase and event != "end":
            self.spent[self.phase] += now - self.since
            self.closed[self.phase] += 1
        self.phase = event if event in self.spent else None
        if self.phase:
            self.opened[self.phase] += 1
        self.since = now

    def seconds(self, phase: str) -> float:
        """The phase's time, its unclosed last occurrence counted at the mean of the closed ones."""
        closed = self.closed[phase]
        return self.spent[phase] * self.opened[phase] / closed if closed else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--only", default="", help="task:method,... (default: all)")
    parser.add_argument("--out", help="Also write the rows as JSON here")
    args = parser.parse_args()
    from core.runs import RunStore

    wanted = {tuple(x.split(":")) for x in args.only.split(",") if x}
    cases = [c for c in CASES if not wanted or c in wanted]
    folder = common.scratch_dir("method-defaults-")
    data = write_data(folder / "data", args.rows)
    store = RunStore(folder / "runs")
    print(f"data and runs in {folder}; load average {common.load_average():.2f}", flush=True)
    rows, teacher, base = [], None, None
    for task, method in cases:
        extra: dict = {}
        if method == "distill":
            if teacher is None:
                teacher_row = run_case(store, "classification", "full", data["classification"], args.rows)
                teacher_row.update(method="full (the teacher)", load=round(common.load_average(), 2))
                rows.append(teacher_row)
                print(json.dumps(teacher_row), flush=True)
                teacher = teacher_row["run"]
            extra = {"teacher_run": teacher, "student_layers": 3}
        if task == "generation" and method in ("prefix", "prompt", "lora", "full"):
            if base is None:
                stories = Path(__file__).resolve().parent.parent / "data" / "samples" / "stories.txt"
                base_row = run_case(store, "generation", "full", stories, 1155)
                base_row.update(method="full, from scratch (stories.txt)", load=round(common.load_average(), 2))
                rows.append(base_row)
                print(json.dumps(base_row), flush=True)
                base = base_row["run"]
                before = _perplexity_before(store, base, data["generation"])
                print(json.dumps({"base": base, "perplexity_on_reviews_before": before}), flush=True)
            extra = {"source": base}
        row = run_case(store, task, method, data[task], args.rows, extra)
        row["load"] = round(common.load_average(), 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if method == "full" and task == "classification":
            teacher = row["run"]
    print(
        common.table(
            rows,
            [
                ("task", "task", ""),
                ("method", "method", ""),
                ("lr", "lr", ".0e"),
                ("epochs", "epochs", "g"),
                ("batch", "batch", ""),
                ("steps", "steps", ""),
                ("metric", "metric", ""),
                ("score", "score", ".3f"),
                ("train_s", "train s", ".0f"),
                ("eval_share", "eval", ".1%"),
                ("pause_share", "eval+ckpt", ".1%"),
                ("load", "load", ".1f"),
            ],
        )
    )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1), encoding="utf-8")


def _perplexity_before(store, base_id: str, corpus: Path) -> float:
    """The base model's perplexity on the review corpus's last 10% (about what the test split holds)."""
    from core.evaluation import evaluate_run

    texts = [p for p in corpus.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    tail = corpus.with_name("reviews-tail.txt")
    tail.write_text("\n\n".join(texts[-len(texts) // 10 :]) + "\n", encoding="utf-8")
    return float(evaluate_run(store.get(base_id), file=tail).metrics.get("perplexity", float("nan")))


if __name__ == "__main__":
    main()
