"""Metrics (scikit-learn, sacrebleu, rouge-score; never evaluate.load, which needs the hub) and scoring runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Scoring lives in core.scoring, which generation imports too (it used to import this module, and this module
# imports generation: a cycle). Training imports score_encoded from here.
from core.scoring import SplitScores, score_encoded, softmax

__all__ = ["SplitScores", "score_encoded", "softmax"]  # re-exported for callers of the old home


def classification_metrics(y_true, y_pred, label_names: list[str] | None = None) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

    scikit-learn's definitions (a class never predicted has precision 0, not an error), computed from the
    confusion matrix with NumPy: importing sklearn.metrics took 1.1 s, paid by every training process at its
    first validation. tests/unit/test_evaluation.py checks these against scikit-learn."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = len(label_names) if label_names else int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    names = label_names or [str(i) for i in range(k)]
    known = (y_true >= 0) & (y_true < k) & (y_pred >= 0) & (y_pred < k)
    matrix = np.bincount(y_true[known] * k + y_pred[known], minlength=k * k).reshape(k, k)
    tp, support, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    p, r, f = _ratio(tp, predicted), _ratio(tp, support), _ratio(2 * tp, support + predicted)
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "precision": float(p.mean()),
        "recall": float(r.mean()),
        "f1": float(f.mean()),
        "per_class": {
            names[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i in range(k)
        },
        "confusion_matrix": matrix.tolist(),
        "labels": names,
    }


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    return np.divide(top, bottom, out=np.zeros(len(top)), where=bottom > 0)


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MSE, MAE and R² as scikit-learn defines them (R² of a constant target: 1 if predicted exactly, else 0)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    err = y_true - y_pred
    r2 = float("nan")
    if len(y_true) > 1:
        residual, total = float((err**2).sum()), float(((y_true - y_true.mean()) ** 2).sum())
        r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return {
        "mse": float((err**2).mean()) if len(err) else float("nan"),
        "mae": float(np.abs(err).mean()) if len(err) else float("nan"),
        "r2": r2,
    }


def has_cjk(texts: list[str]) -> bool:
    """Whether any text holds Chinese, Japanese or Korean characters (then scores count characters, not words)."""
    from core.sft import CJK

    return any(CJK.search(t) for t in texts)


class _CharTokenizer:
    """rouge-score's tokenizer keeps only [a-z0-9], so a Chinese sentence has no tokens and ROUGE is always 0.
    This one makes each CJK character a token and keeps other words whole (lower-cased, any script)."""

    pattern = None

    def tokenize(self, text: str) -> list[str]:
        import re

        from core.sft import CJK

        if self.pattern is None:
            type(self).pattern = re.compile(f"{CJK.pattern}|[^\\W_]+")
        return self.pattern.findall(text.lower())


def _normalized(text: str) -> str:
    return " ".join(str(text).split())


def text_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu), mean ROUGE-L F1 (rouge-score) and exact match (after collapsing whitespace) of
    generations against references. CJK text is scored by characters: sacrebleu's ``zh`` tokenizer and a character tokenizer for ROUGE-L."""
    import sacrebleu

    cjk = has_cjk(references)
    # Effective order: answers of under four tokens (a headline word, a label) would otherwise score BLEU 0.
    tokenize = "zh" if cjk else "13a"
    bleu = sacrebleu.corpus_bleu(predictions, [references], tokenize=tokenize, use_effective_order=True).score
    rouge = _rouge_l(predictions, references, cjk)
    exact = [_normalized(p) == _normalized(r) for p, r in zip(predictions, references)]
    return {
        "bleu": float(bleu),
        "rouge_l": float(np.mean(rouge)) if rouge else 0.0,
        "exact_match": float(np.mean(exact)) if exact else 0.0,
    }


def _rouge_l(predictions: list[str], references: list[str], cjk: bool) -> list[float]:
    from rouge_score import rouge_scorer

    if cjk:
        scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_CharTokenizer())
    else:
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]


def example_scores(predictions: list[str], references: list[str]) -> dict[str, list]:
    """Per-example sentence BLEU, ROUGE-L F1 and exact match (the Evaluate page's table)."""
    import sacrebleu

    cjk = has_cjk(references)
    tokenize = "zh" if cjk else "13a"
    return {
        "bleu": [sacrebleu.sentence_bleu(p, [r], tokenize=tokenize).score for p, r in zip(predictions, references)],
        "rouge_l": _rouge_l(predictions, references, cjk),
        "exact": [_normalized(p) == _normalized(r) for p, r in zip(predictions, references)],
    }


def perplexity(loss: float) -> float:
    return float(math.exp(min(loss, 50.0)))


def metrics_from_scores(scores: SplitScores, data, task: str, label_names: list[str] | None) -> dict[str, Any]:
    """Flat headline metrics (loss, accuracy, f1 ... or perplexity) for logging and early stopping."""
    if task == "generation":
        return {"loss": scores.loss, "perplexity": perplexity(scores.loss)}
    if task == "regression":
        out = regression_metrics(data.labels, scores.logits[:, 0])
        return {"loss": scores.loss, **out}
    full = classification_metrics(data.labels, scores.logits.argmax(-1), label_names)
    # Recall of each class, in label-id order (names stay out of metric keys): core.diagnose reads the gap.
    recall = [full["per_class"][name]["recall"] for name in full["labels"]]
    return {"loss": scores.loss, "accuracy": full["accuracy"], "f1": full["f1"], "class_recall": recall}


@dataclass
class EvalReport:
    """Everything the Evaluate page shows: headline metrics, details and a per-example table."""

    task: str
    metrics: dict[str, Any]
    predictions: Any  # pandas DataFrame
    label_names: list[str] | None = None

    def misclassified(self):
        if self.task != "classification":
            return self.predictions.iloc[0:0]
        return self.predictions[~self.predictions["correct"]]


def evaluate_model(
    bundle,
    frame,
    *,
    max_length: int = 128,
    batch_size: int = 64,
    device: str = "cpu",
    generate_references: bool = True,
    max_generations: int = 50,
    precision: str = "auto",
    progress=None,
) -> EvalReport:
    """Score a loaded model on a standardized frame (columns text[, text_pair][, label]).

    A generation run trained on prompt/response or chat data answers up to ``max_generations`` of the prompts
    (``progress(done, total)`` after each batch) and is scored against the references; see ``evaluate_sft``."""
    import pandas as pd

    from core.batching import encode_blocks, encode_pairs
    from core.device import resolve_device, resolve_precision

    dev = resolve_device(device)
    # A run trained in fp16 on a GPU may be scored on a CPU, where fp16 is not offered.
    precision = resolve_precision("auto" if precision == "fp16" and dev.type != "cuda" else precision, dev)
    tok, task = bundle.tokenizer, bundle.task
    bundle.model.to(dev)
    sft_options = getattr(bundle, "sft", None)
    if task == "generation" and sft_options is not None and sft_options.formatted:
        return evaluate_sft(
            bundle, frame, max_length=max_length, device=dev, precision=precision,
            max_generations=max_generations if generate_references else 0, progress=progress,
        )  # fmt: skip
    if task == "generation":
        texts = frame["text"].astype(str).tolist()
        if "text_pair" in frame:
            texts = [f"{p} {r}" for p, r in zip(texts, frame["text_pair"].astype(str))]
        data = encode_blocks(tok, texts, min(max_length, bundle.max_positions))
        scores = score_encoded(
            bundle.model, data, task, batch_size=8, pad_id=tok.pad_token_id, device=dev, precision=precision
        )
        metrics: dict[str, Any] = {"loss": scores.loss, "perplexity": perplexity(scores.loss), "tokens": scores.tokens}
        table = pd.DataFrame({"text": texts})
        if "text_pair" in frame and generate_references:
            from core.generation import GenerationSettings, generate_batch

            sub = frame.head(max_generations)
            prompts, refs = sub["text"].astype(str).tolist(), sub["text_pair"].astype(str).tolist()
            outs = generate_batch(bundle, prompts, GenerationSettings(max_new_tokens=48), device=device)
            metrics.update(text_metrics(outs, refs))
            table = pd.DataFrame({"prompt": prompts, "reference": refs, "generated": outs})
        return EvalReport(task, metrics, table)
    labels = frame["label"].to_numpy() if "label" in frame else None
    pairs = frame["text_pair"].astype(str).tolist() if "text_pair" in frame else None
    data = encode_pairs(tok, frame["text"].astype(str).tolist(), pairs, labels, min(max_length, bundle.max_positions))
    scores = score_encoded(
        bundle.model, data, task, batch_size=batch_size, pad_id=tok.pad_token_id, device=dev, precision=precision
    )
    table = frame.copy()
    if task == "regression":
        table["predicted"] = scores.logits[:, 0]
        metrics = {"loss": scores.loss, **regression_metrics(labels, scores.logits[:, 0])}
        table["error"] = table["predicted"] - table["label"]
        return EvalReport(task, metrics, table)
    probs = softmax(scores.logits)
    names = bundle.label_names or [str(i) for i in range(probs.shape[1])]
    pred = probs.argmax(-1)
    metrics = {"loss": scores.loss, **classification_metrics(labels, pred, names)}
    table["label_name"] = [names[int(i)] for i in labels]
    table["predicted"] = [names[int(i)] for i in pred]
    table["confidence"] = probs.max(-1)
    table["correct"] = pred == labels
    for j, name in enumerate(names):
        table[f"p({name})"] = probs[:, j]
    return EvalReport(task, metrics, table, names)


GENERATION_BATCH = 8  # prompts answered at once during evaluation (left-padded; one progress step each)


def evaluate_sft(
    bundle, frame, *, max_length: int, device, precision: str, max_generations: int = 50, progress=None
) -> EvalReport:
    """Perplexity on the response tokens of every row, then answers to the first ``max_generations`` prompts
    (greedy, up to the stop token) scored with BLEU, ROUGE-L and exact match; one table row per answered prompt."""
    import pandas as pd

    from core import sft
    from core.generation import GenerationSettings, generate_with_stops

    tok = bundle.tokenizer
    data = sft.encode_frame(tok, frame, min(max_length, bundle.max_positions))
    scores = score_encoded(
        bundle.model, data, "generation", batch_size=8, pad_id=tok.pad_token_id, device=device, precision=precision
    )
    metrics: dict[str, Any] = {"loss": scores.loss, "perplexity": perplexity(scores.loss), "tokens": scores.tokens}
    convs = sft.conversations(frame)[:max_generations]
    prompts, refs = [], []
    for conv in convs:
        last = max(i for i, m in enumerate(conv) if m["role"] == "assistant")
        prompts.append(conv[:last])
        refs.append(conv[last]["content"])
    # Answers long enough for the longest reference (and a margin), within what the model can hold.
    longest = max((len(tok(r, add_special_tokens=False)["input_ids"]) for r in refs), default=16)
    settings = GenerationSettings(max_new_tokens=max(8, min(512, 2 * longest + 8)), repetition_penalty=1.0)
    outs: list[tuple[str, bool]] = []
    for start in range(0, len(prompts), GENERATION_BATCH):
        outs += generate_with_stops(bundle, prompts[start : start + GENERATION_BATCH], settings, device=str(device))
        if progress:
            progress(len(outs), len(prompts))
    bundle.model.eval()
    texts = [text.strip() for text, _ in outs]
    table = pd.DataFrame(
        {
            "prompt": [next((m["content"] for m in reversed(p) if m["role"] == "user"), "") for p in prompts],
            "reference": refs,
            "generation": texts,
        }
    )
    if prompts:
        metrics.update(text_metrics(texts, refs))
        metrics["stopped"] = float(np.mean([stopped for _, stopped in outs]))
        metrics["generated"] = len(prompts)
        for name, values in example_scores(texts, refs).items():
            table[name] = values
        table["stopped"] = [stopped for _, stopped in outs]
    return EvalReport("generation", metrics, table)


def evaluate_run(
    run,
    split: str = "test",
    file: Path | None = None,
    device: str = "cpu",
    bundle: Any = None,
    max_generations: int = 50,
    progress=None,
) -> EvalReport:
    """Score a finished run on one of its saved splits, or on a new file mapped with the run's columns.

    ``bundle`` is the run's model already loaded (the app keeps it cached); without it the model is loaded here.
    """
    import pandas as pd

    from core.errors import WorkbenchError
    from core.models import load_for_inference

    if not run.has_model():
        raise WorkbenchError(f"Run '{run.id}' has no saved model yet.", hint="Wait for it to finish, or pick another.")
    cfg = run.config()
    bundle = bundle if bundle is not None else load_for_inference(run.model_dir, device=device)
    if file is not None:
        from core.data import prepare_frame_like_run

        # The file's other columns come along: the Evaluate page groups metrics by them.
        frame = prepare_frame_like_run(Path(file), cfg, bundle.label_names, keep_columns=True)
    else:
        path = run.data_dir / f"{split}.parquet"
        if not path.exists():
            raise WorkbenchError(f"Run '{run.id}' has no {split} split saved.", hint="Upload a test file instead.")
        frame = pd.read_parquet(path)
        if len(frame) == 0:
            raise WorkbenchError(f"The {split} split of run '{run.id}' is empty.", hint="Choose another split.")
    # Score in the precision the run trained in, so its numbers match the ones logged during training.
    try:
        return evaluate_model(
            bundle,
            frame,
            max_length=cfg.train.max_length,
            device=device,
            precision=cfg.train.precision,
            max_generations=max_generations,
            progress=progress,
        )
    finally:
        # A cached model is shared with the Playground: leave it ready for inference whatever happened.
        bundle.model.eval()
