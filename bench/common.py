"""Shared pieces of the benchmarks: deterministic data, matmul peak, FLOP counts, RSS, subprocess runs, tables.

Each benchmark configuration runs in a fresh subprocess so that its peak RSS is its own (ru_maxrss only ever
grows within a process) and so that no configuration warms caches or allocator pools for the next one.
The parent still runs them one after another on the same data and seed, and prints one table.
"""

from __future__ import annotations

import atexit
import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------------------------- scratch
def scratch_dir(prefix: str) -> Path:
    """A fresh folder for a benchmark's data and runs, removed when the benchmark exits.

    Runs hold checkpoints of ~100 MB each, and left-over folders once filled the disk that CI shares with the
    developer's session. BENCH_KEEP=1 keeps the folder for a look afterwards.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("BENCH_KEEP") != "1":
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# ----------------------------------------------------------------------------------------------- data
_SUBJECTS = [
    "The film",
    "This movie",
    "The sequel",
    "The new thriller",
    "Their latest comedy",
    "This drama",
    "The animated feature",
    "The western",
    "The mystery",
    "The biopic",
    "This romance",
    "The war epic",
]
_ASPECTS = [
    "acting",
    "plot",
    "script",
    "soundtrack",
    "pacing",
    "camera work",
    "dialogue",
    "ending",
    "cast",
    "score",
    "direction",
    "editing",
    "lead performance",
    "story",
    "humour",
    "set design",
    "final act",
]
_GOOD = [
    "brilliant",
    "superb",
    "wonderful",
    "moving",
    "gripping",
    "charming",
    "clever",
    "heartfelt",
    "funny",
    "thrilling",
    "memorable",
    "inventive",
    "touching",
    "sharp",
    "gorgeous",
    "powerful",
    "warm",
    "smart",
]
_BAD = [
    "dull",
    "tedious",
    "awful",
    "clumsy",
    "boring",
    "predictable",
    "lifeless",
    "confusing",
    "bland",
    "forgettable",
    "weak",
    "messy",
    "shallow",
    "flat",
    "sloppy",
    "dreary",
    "pointless",
    "hollow",
]
_SOFT = ["really", "truly", "quite", "rather", "surprisingly", "consistently", "at times", "mostly"]
_FILLER = [
    "I saw it on a rainy Sunday with two friends who had read the book.",
    "The cinema was half empty and the popcorn was stale.",
    "It runs a little over two hours including the credits.",
    "My sister had recommended it after a long week at work.",
    "The trailer had given away most of the second half.",
    "We argued about it all the way home on the bus.",
    "There is a long scene on a train that goes on for a while.",
    "The story follows a family moving to a small coastal town.",
    "It is based on a novel from the seventies that few people remember.",
]
_GOOD_END = ["Highly recommended.", "I would happily watch it again.", "Worth every penny.", "Go and see it."]
_BAD_END = ["Skip this one.", "Save your money.", "What a waste of an evening.", "I nearly walked out."]


def review(rng: random.Random) -> tuple[str, int]:
    """One movie-review-like text of about 5-60 words; label 1 when most of its opinions are positive.

    A review has 1, 3 or 5 opinions, each agreeing with the overall leaning 70% of the time, some negated
    ("the plot is not dull"), among neutral filler sentences; the label is the majority. Getting the mixed and
    negated ones right takes more than spotting one word, so accuracy after one epoch is informative (not 100%).
    """
    leaning = rng.random() < 0.5
    n_opinions = rng.choice([1, 1, 3, 3, 5])
    votes, parts = 0, []
    for i in range(n_opinions):
        positive = leaning if rng.random() < 0.7 else not leaning
        votes += 1 if positive else -1
        negated = rng.random() < 0.2
        adjective = rng.choice(_BAD if positive == negated else _GOOD)
        adverb = "not" if negated else rng.choice(_SOFT)
        subject = rng.choice(_SUBJECTS) if i == 0 else f"The {rng.choice(_ASPECTS)}"
        parts.append(f"{subject} is {adverb} {adjective}.")
    label = votes > 0
    parts += [rng.choice(_FILLER) for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))]
    if rng.random() < 0.3:
        parts.append(rng.choice(_GOOD_END if label else _BAD_END))
    rng.shuffle(parts)
    words = " ".join(parts).split()[:60]
    return " ".join(words), int(label)


_OPENERS = ["a", "an", "this", "the film is a", "it is a", "the movie is an", "what a", "here is a"]
_NOUNS = [
    "portrait",
    "comedy",
    "thriller",
    "drama",
    "story",
    "debut",
    "adaptation",
    "film",
    "romance",
    "mess",
    "exercise in style",
    "character study",
    "piece of work",
    "sequel",
    "ride",
]
_TAILS = [
    "of a family in crisis",
    "about growing up in a small town",
    "with a cast that clearly enjoys itself",
    "that never quite finds its feet",
    "for anyone who loved the book",
    "in the tradition of old hollywood",
    "that runs out of ideas in the second hour",
    "whose ending stays with you",
    "set in a rainy city",
    "from a director with a sharp eye",
    "about two brothers and a boat",
    "that borrows from better films",
    "with dialogue that sounds lived in",
    "and its soundtrack",
    "even when the plot wobbles",
    "though the middle act drags",
    "as the credits roll",
    "and the actors know it",
]


def short_sentence(rng: random.Random) -> tuple[str, int]:
    """One short review sentence like those of public sentence-level sentiment sets: about 20 words on average,
    most between 8 and 35, a long tail to 50. Label 1 when most of its 1-3 opinions are positive (as review())."""
    target = max(3, min(50, round(rng.lognormvariate(2.9, 0.45))))
    leaning = rng.random() < 0.5
    votes, words = 0, []
    for i in range(rng.choice([1, 1, 1, 2, 3])):
        positive = leaning if rng.random() < 0.75 else not leaning
        votes += 1 if positive else -1
        negated = rng.random() < 0.15
        adjective = rng.choice(_BAD if positive == negated else _GOOD)
        lead = rng.choice(_OPENERS) if i == 0 else rng.choice(["but", "and", "yet", "if"])
        words += f"{lead} {'not ' if negated else ''}{adjective} {rng.choice(_NOUNS)}".split()
        if len(words) >= target:
            break
    while len(words) < target:
        words += rng.choice(_TAILS).split()
    return " ".join(words[: max(target, 4)]) + " .", int(votes > 0)


_OPINION_WORDS = {*_GOOD, *_BAD, "not", "but", "yet", "and", "if", "a", "an", "the", "."}  # kept by wide_sentence
_WORDS: list[str] = []
_WORD_WEIGHTS: list[float] = []


def _word_list() -> tuple[list[str], list[float]]:
    """English words with Zipf weights, for a vocabulary of real size (no word list ships offline but MiniLM's:
    its whole-word WordPiece entries, which are roughly in order of frequency)."""
    if not _WORDS:
        from transformers import AutoTokenizer

        from core.models import minilm_path

        vocab = AutoTokenizer.from_pretrained(minilm_path()).get_vocab()
        ranked = sorted((i, w) for w, i in vocab.items() if w.isascii() and w.isalpha() and len(w) > 2)
        _WORDS.extend(w for _, w in ranked[:20000])
        total = 0.0
        for rank in range(len(_WORDS)):
            total += 1.0 / (rank + 10)  # Zipf, flattened at the top (the commonest words are the fixed ones)
            _WORD_WEIGHTS.append(total)
    return _WORDS, _WORD_WEIGHTS


def wide_sentence(rng: random.Random) -> tuple[str, int]:
    """short_sentence() with a vocabulary of real size: its opinions (and so its labels), lengths and openers,
    but the rest of each sentence drawn from 20,000 English words with Zipf frequencies.

    short_sentence() uses ~145 distinct tokens in all; real sentences of a set that size use thousands.
    What a step costs can depend on that (the token embedding's rows that get a gradient: core/fastpath.py)."""
    text, label = short_sentence(rng)
    words, weights = _word_list()
    kept = []
    for word in text.split():
        if word not in _OPINION_WORDS and rng.random() < 0.8:
            word = rng.choices(words, cum_weights=weights)[0]
        kept.append(word)
    return " ".join(kept), label


def write_reviews(
    folder: Path, n_train: int = 3000, n_val: int = 500, seed: int = 0, kind: str = "reviews"
) -> tuple[Path, Path]:
    """Write train.csv and validation.csv (text,label with label names) under ``folder``; deterministic.

    ``kind``: "reviews" (review(): 5-60 words, ~36 tokens), "short" (short_sentence(): ~20 words) or "wide"
    (wide_sentence(): the short sentences with a vocabulary of real size)."""
    make = {"short": short_sentence, "wide": wide_sentence}.get(kind, review)
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, n in (("train", n_train), ("validation", n_val)):
        path = folder / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            for _ in range(n):
                text, y = make(rng)
                w.writerow([text, "positive" if y else "negative"])
        paths.append(path)
    return paths[0], paths[1]


def write_corpus(path: Path, n_docs: int = 4000, seed: int = 1) -> Path:
    """A plain-text corpus for language-model benchmarks: one review per paragraph (blank-line separated)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(review(rng)[0] for _ in range(n_docs)) + "\n", encoding="utf-8")
    return path


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [r["label"] for r in rows]


# ----------------------------------------------------------------------------------------------- hardware
def matmul_peak(dtype_name: str, n: int = 1024, seconds: float = 2.0, device: str = "cpu") -> float:
    """Best-of FLOP/s of square matmuls (sizes around the model's) on all threads torch uses, or on a GPU
    (``device="cuda"``: larger sizes, timed after the device has finished)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sizes = (n // 2, n, 2 * n) if device == "cpu" else (2 * n, 4 * n, 8 * n)
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        for _ in range(2):
            a @ b
        sync()
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            a @ b
            reps += 1
            if device != "cpu" and reps % 16 == 0:
                sync()
        sync()
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - t0))
    return best


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> float:
    return os.getloadavg()[0]


def encoder_train_flops(model, lengths) -> float:
    """Useful training FLOPs: 6 x non-embedding params per real token, plus attention 12 x layers x width x len.

    Only real tokens count, so padding a configuration computes is waste, not credit.
    """
    cfg = model.config
    embed = sum(p.numel() for n, p in model.named_parameters() if "embed" in n or ".wte." in n or ".wpe." in n)
    dense = sum(p.numel() for p in model.parameters()) - embed
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    width = getattr(cfg, "hidden_size", None) or cfg.n_embd
    tokens = float(sum(lengths))
    squares = float(sum(length * length for length in lengths))
    return 6.0 * dense * tokens + 12.0 * layers * width * squares


# ----------------------------------------------------------------------------------------------- orchestration
def child_main(configs: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> bool:
    """In a child process (argv: --child NAME JSON), run one configuration and print its result as JSON."""
    if len(sys.argv) < 4 or sys.argv[1] != "--child":
        return False
    name, args = sys.argv[2], json.loads(sys.argv[3])
    t0 = time.perf_counter()
    out = configs[name](args)
    out.setdefault("wall_s", time.perf_counter() - t0)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)
    return True


def run_child(script: Path, name: str, args: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one configuration of ``script`` in a fresh interpreter and return its JSON result."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script), "--child", name, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"benchmark configuration {name!r} failed (exit {proc.returncode})")
    out = json.loads(lines[-1][len("RESULT ") :])
    out["process_s"] = time.perf_counter() - t0
    return out


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table: columns are (key, header, format)."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("-" if r.get(k) is None else format(r[k], f)) for k, _, f in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
