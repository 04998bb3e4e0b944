"""Is the model unfair to some group? Metrics per slice of the data, and a counterfactual swap test.

Slices: any column of the evaluated rows (a source, a user-given attribute), a length bucket, or "mentions
these words". Swap test: every text holding a word of a pair (he/she, 他/她, two names) is scored again with
the words swapped; a fair model answers the same. Both only ever find problems: a check that finds nothing
is no proof of fairness (the pairs and the data may simply not reach the model's bias).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from core.i18n import DEFAULT, message, t

PAIRS_DIR = Path(__file__).resolve().parent.parent / "data" / "bias"
DEFAULT_PAIRS = {"en": PAIRS_DIR / "pairs_en.csv", "zh": PAIRS_DIR / "pairs_zh.csv"}
LENGTH_BUCKET = "length (words)"
MENTIONS = "mentions the words"
# A gap this large between a slice's accuracy and the rest is worth a sentence; smaller slices are noise.
GAP_WORTH_SAYING = 0.05
MIN_SLICE_ROWS = 10
CAVEAT = t("insight.bias.caveat", DEFAULT)  # English; readings carry it in the reader's language (render)


# ------------------------------------------------------------------------------------------------ slices
def length_buckets(texts: pd.Series) -> pd.Series:
    """Word-count buckets (characters / 2 for text without spaces, e.g. Chinese)."""
    text = texts.astype(str)
    words = text.str.split().str.len()
    spaced = text.str.contains(" ", regex=False)
    size = words.where(spaced, text.str.len() // 2)
    return pd.cut(size, [-1, 10, 25, 50, 100, np.inf], labels=["≤10", "11–25", "26–50", "51–100", ">100"]).astype(str)


def mentions(texts: pd.Series, words: list[str]) -> pd.Series:
    """'yes' where a text holds any of ``words`` (whole words for spaced scripts), else 'no'."""
    pattern = _alternation([w for w in words if w.strip()])
    if pattern is None:
        raise DataError("Give at least one word to look for.")
    return texts.astype(str).str.contains(pattern, regex=True).map({True: "yes", False: "no"})


def slice_metrics(predictions: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """One row per group: rows, accuracy (or mean absolute error for regression), and the gap to the others.

    ``predictions`` is an evaluation table (core.evaluation: 'correct' for classification, 'error' for
    regression); ``groups`` has one value per row.
    """
    groups = groups.reset_index(drop=True).fillna("(empty)").astype(str)
    table = predictions.reset_index(drop=True)
    if "correct" in table:
        score, name = table["correct"].astype(float), "accuracy"
    elif "error" in table:
        score, name = table["error"].abs().astype(float), "mean_abs_error"
    else:
        raise DataError("Slices need a classification or regression evaluation.")
    rows = []
    for value, index in groups.groupby(groups).groups.items():
        inside = score.loc[index]
        outside = score.drop(index)
        rows.append(
            {
                "group": value,
                "rows": int(len(inside)),
                name: float(inside.mean()),
                "rest": float(outside.mean()) if len(outside) else float("nan"),
            }
        )
    frame = pd.DataFrame(rows)
    frame["gap"] = frame[name] - frame["rest"]
    return frame.sort_values("rows", ascending=False).reset_index(drop=True)


def slice_message(frame: pd.DataFrame, column: str) -> dict[str, Any]:
    """The reading of the slices as a message (key + parameters), so it shows in the reader's language."""
    metric = "accuracy" if "accuracy" in frame else "mean_abs_error"
    column = str(column)
    if len(frame) < 2:
        return message("insight.slice.one_group", column=column)
    sized = frame[(frame["rows"] >= MIN_SLICE_ROWS) & frame["gap"].notna()]
    if sized.empty:
        return message("insight.slice.too_small", column=column, min_rows=MIN_SLICE_ROWS)
    # Worse means lower accuracy, or higher error.
    worst = sized.loc[sized["gap"].idxmin() if metric == "accuracy" else sized["gap"].idxmax()]
    gap = abs(float(worst["gap"]))
    if gap < GAP_WORTH_SAYING:
        return message("insight.slice.even", column=column, gap=GAP_WORTH_SAYING)
    key = "insight.slice.worst_accuracy" if metric == "accuracy" else "insight.slice.worst_error"
    return message(
        key,
        column=column,
        group=str(worst["group"]),
        rows=int(worst["rows"]),
        value=float(worst[metric]),
        rest=float(worst["rest"]),
    )


def render(reading: dict[str, Any], lang: str | None = None) -> str:
    """A bias reading in ``lang`` (default: the environment's), always followed by the caveat."""
    return f"{t(reading['message_code'], lang, **reading['message_params'])} {t('insight.bias.caveat', lang)}"


def slice_reading(frame: pd.DataFrame, column: str, lang: str | None = None) -> str:
    """One or two plain sentences about the worst slice, and the caveat."""
    return render(slice_message(frame, column), lang)


# --------------------------------------------------------------------------------------------- swap test
def load_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Word pairs from a CSV with two columns (a header row 'a,b' is optional; '#' lines are comments)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No pairs file at '{path.name}'.", hint="Give a CSV with two columns: word,swap.")
    pairs = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for i, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise DataError(f"Line {i} of {path.name} needs two words separated by a comma.")
            if i == 1 and [c.lower() for c in cells[:2]] == ["a", "b"]:
                continue
            pairs.append((cells[0], cells[1]))
    if not pairs:
        raise DataError(f"{path.name} holds no word pairs.", hint="One pair per line: he,she")
    return pairs


def _boundary(word: str) -> str:
    # Words of spaced scripts match whole words only ('he' not inside 'the'); CJK has no spaces to look for.
    escaped = re.escape(word)
    return rf"\b{escaped}\b" if re.search(r"[A-Za-z0-9]", word) else escaped


def _alternation(words: list[str]) -> str | None:
    if not words:
        return None
    ordered = sorted(set(words), key=len, reverse=True)  # longest first: '他们' before '他'
    return "(" + "|".join(_boundary(w) for w in ordered) + ")"


def swapper(pairs: list[tuple[str, str]]) -> Callable[[str], str]:
    """A function that swaps every pair word with its partner at once (he -> she and she -> he), keeping a
    capital first letter ('He' -> 'She')."""
    mapping: dict[str, str] = {}
    for a, b in pairs:
        mapping.setdefault(a.lower(), b)
        mapping.setdefault(b.lower(), a)
    pattern = re.compile(_alternation(list(mapping)) or "(?!)", re.IGNORECASE)

    def swap(text: str) -> str:
        def one(match: re.Match) -> str:
            word = match.group(0)
            partner = mapping[word.lower()]
            return partner[:1].upper() + partner[1:] if word[:1].isupper() else partner

        return pattern.sub(one, text)

    return swap


@dataclass
class SwapResult:
    """What the swap test found."""

    tested: int
    """Texts that held at least one pair word (the others cannot show anything)."""
    flips: int
    """Texts whose predicted class changed when the words were swapped."""
    mean_shift: float
    """Mean absolute change of the originally predicted class's probability."""
    worst: list[dict[str, Any]] = field(default_factory=list)
    per_pair: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flip_rate(self) -> float:
        return self.flips / self.tested if self.tested else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tested": self.tested,
            "flips": self.flips,
            "flip_rate": self.flip_rate,
            "mean_shift": self.mean_shift,
            "worst": self.worst,
            "per_pair": self.per_pair,
        }


def swap_test(
    predict: Callable[[list[str]], np.ndarray],
    texts: list[str],
    pairs: list[tuple[str, str]],
    label_names: list[str],
    *,
    worst: int = 10,
) -> SwapResult:
    """Score each text that holds a pair word, and again with the words swapped.

    ``predict`` maps texts to class probabilities (n, k), e.g. ``lambda t: predict_proba(bundle, t)``.
    """
    swap = swapper(pairs)
    chosen = [(t, swap(t)) for t in texts if swap(t) != t]
    if not chosen:
        return SwapResult(0, 0, 0.0)
    originals, swapped = [a for a, _ in chosen], [b for _, b in chosen]
    p0, p1 = np.asarray(predict(originals)), np.asarray(predict(swapped))
    pred0, pred1 = p0.argmax(1), p1.argmax(1)
    rows = np.arange(len(chosen))
    shift = np.abs(p0[rows, pred0] - p1[rows, pred0])
    flipped = pred0 != pred1
    order = np.argsort(-shift, kind="stable")[:worst]
    examples = [
        {
            "text": originals[i],
            "swapped": swapped[i],
            "prediction": label_names[int(pred0[i])],
            "swapped_prediction": label_names[int(pred1[i])],
            "probability": round(float(p0[i, pred0[i]]), 4),
            "swapped_probability": round(float(p1[i, pred0[i]]), 4),
            "shift": round(float(shift[i]), 4),
        }
        for i in order
    ]
    per_pair = []
    for a, b in pairs:
        pattern = re.compile(_alternation([a, b]), re.IGNORECASE)
        hit = np.array([bool(pattern.search(t)) for t in originals])
        if hit.any():
            per_pair.append(
                {
                    "pair": f"{a} / {b}",
                    "texts": int(hit.sum()),
                    "flips": int(flipped[hit].sum()),
                    "mean_shift": round(float(shift[hit].mean()), 4),
                }
            )
    per_pair.sort(key=lambda r: -r["mean_shift"])
    return SwapResult(len(chosen), int(flipped.sum()), float(shift.mean()), examples, per_pair)


def swap_message(result: SwapResult) -> dict[str, Any]:
    """The reading of the swap test as a message (key + parameters)."""
    if result.tested == 0:
        return message("insight.swap.none")
    figures = {
        "flips": result.flips,
        "tested": result.tested,
        "rate": result.flip_rate,
        "shift": result.mean_shift,
    }
    if result.flip_rate >= 0.05 or result.mean_shift >= 0.1:
        if result.per_pair:
            return message("insight.swap.biased_pair", pair=str(result.per_pair[0]["pair"]), **figures)
        return message("insight.swap.biased", **figures)
    return message("insight.swap.fair", **figures)


def swap_reading(result: SwapResult, lang: str | None = None) -> str:
    """Plain sentences about the swap test, always with the caveat."""
    return render(swap_message(result), lang)


def bias_report(
    run,
    file: Path,
    *,
    pairs_path: Path | None = None,
    by: list[str] | None = None,
    words: list[str] | None = None,
    bundle: Any = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Everything the CLI prints and the Evaluate page shows, for a run and a labelled file."""
    from core.data import prepare_frame_like_run
    from core.evaluation import evaluate_model
    from core.generation import predict_proba
    from core.models import load_for_inference

    cfg = run.config()
    if cfg.model.task != "classification":
        raise DataError("The bias check is offered for classification runs.")
    bundle = bundle if bundle is not None else load_for_inference(run.model_dir, device=device)
    try:
        frame = prepare_frame_like_run(file, cfg, bundle.label_names, keep_columns=True)
        report = evaluate_model(bundle, frame, max_length=cfg.train.max_length, device=device)
    finally:
        bundle.model.eval()
    table = report.predictions
    slices = {}
    for column in [LENGTH_BUCKET, *(by or []), *([MENTIONS] if words else [])]:
        if column == LENGTH_BUCKET:
            groups = length_buckets(table["text"])
        elif column == MENTIONS:
            groups = mentions(table["text"], words or [])
        elif column in table:
            groups = table[column]
        else:
            extra = [c for c in table.columns if c not in _EVAL_COLUMNS and not c.startswith("p(")]
            raise DataError(f"There is no column '{column}' in the file.", hint=f"Columns: {', '.join(extra)}.")
        sl = slice_metrics(table, groups)
        groups_out = sl.astype(object).where(sl.notna(), None).to_dict(orient="records")  # NaN is not JSON
        reading = slice_message(sl, column)
        slices[column] = {"groups": groups_out, "reading": render(reading), "reading_message": reading}
    pairs = load_pairs(pairs_path) if pairs_path else default_pairs(table["text"])
    names = bundle.label_names or []
    swapped = swap_test(
        lambda t: predict_proba(bundle, t, max_length=cfg.train.max_length, device=device),
        table["text"].astype(str).tolist(),
        pairs,
        names,
    )
    return {
        "run": run.id,
        "rows": len(table),
        "accuracy": report.metrics.get("accuracy"),
        "slices": slices,
        "swap": swapped.to_dict(),
        "swap_reading": render(swap_message(swapped)),
        "swap_reading_message": swap_message(swapped),
        "caveat": t("insight.bias.caveat"),
    }


_EVAL_COLUMNS = {"text", "text_pair", "label", "label_name", "predicted", "confidence", "correct"}


def default_pairs(texts: pd.Series) -> list[tuple[str, str]]:
    """The bundled English pairs, and the Chinese ones when the texts hold Chinese characters."""
    pairs = load_pairs(DEFAULT_PAIRS["en"])
    if texts.astype(str).str.contains(r"[\u4e00-\u9fff]", regex=True).any():
        pairs += load_pairs(DEFAULT_PAIRS["zh"])
    return pairs
