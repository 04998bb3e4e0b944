"""Can I trust this probability? Reliability bins, expected calibration error, and a binary decision threshold
with an "unsure" band that is saved with the model and used for its predictions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.i18n import t

UNSURE = "unsure"
DECISION_KEY = "decision"


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Rows by confidence (the top class's probability) in equal-width bins: how sure the model said it was
    and how often it was right there. Empty bins are left out."""
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            out.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "rows": int(inside.sum()),
                    "confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """The rows-weighted mean gap between stated confidence and accuracy over the reliability bins (0 is perfect)."""
    table = reliability(probs, labels, bins)
    total = sum(b["rows"] for b in table)
    return float(sum(b["rows"] * abs(b["confidence"] - b["accuracy"]) for b in table) / max(total, 1))


def reading_key(ece: float) -> str:
    """The catalog key of the plain sentence about the calibration error (its one parameter: ``ece``)."""
    if ece < 0.05:
        return "insight.calibration.well"
    if ece < 0.15:
        return "insight.calibration.rough"
    return "insight.calibration.poor"


def reading(ece: float, lang: str | None = None) -> str:
    """One plain sentence about the calibration error, in ``lang`` (default: the environment's)."""
    return t(reading_key(ece), lang, ece=ece)


@dataclass
class Decision:
    """How a binary classifier turns P(positive) into an answer: positive at or above ``threshold``, negative
    below it, and "unsure" within ``band`` of it (so the band is [threshold - band, threshold + band))."""

    positive: str
    threshold: float = 0.5
    band: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError("Setting 'threshold': must be between 0 and 1 (e.g. 0.5).")
        if not 0.0 <= self.band < 0.5:
            raise ConfigError("Setting 'band': the unsure band must be between 0 and 0.5.")

    def decide(self, p_positive: np.ndarray, negative: str) -> list[str]:
        p = np.asarray(p_positive, dtype=float)
        out = np.where(p >= self.threshold, self.positive, negative).astype(object)
        out[(p >= self.threshold - self.band) & (p < self.threshold + self.band)] = UNSURE
        return out.tolist()


def threshold_effect(p_positive: np.ndarray, is_positive: np.ndarray, decision: Decision) -> dict[str, float]:
    """Precision and recall of the positive class over the answered rows, and the share left unsure."""
    p, truth = np.asarray(p_positive, dtype=float), np.asarray(is_positive, dtype=bool)
    unsure = (p >= decision.threshold - decision.band) & (p < decision.threshold + decision.band)
    said = (p >= decision.threshold) & ~unsure
    answered = ~unsure
    tp = int((said & truth).sum())
    return {
        "precision": tp / max(int(said.sum()), 1),
        "recall": tp / max(int((truth & answered).sum()), 1),
        "accuracy": float(((said == truth) & answered).sum() / max(int(answered.sum()), 1)),
        "unsure_share": float(unsure.mean()) if len(p) else 0.0,
    }


def threshold_sweep(p_positive: np.ndarray, is_positive: np.ndarray, band: float, steps: int = 19) -> list[dict]:
    """threshold_effect at thresholds 0.05 ... 0.95: the curves beside the slider."""
    out = []
    for at in np.linspace(0.05, 0.95, steps):
        lo_band = min(band, at - 1e-6, 1 - at - 1e-6)  # keep the band inside (0, 1) at the ends
        out.append(
            {"threshold": round(float(at), 3), **threshold_effect(p_positive, is_positive, Decision("p", at, lo_band))}
        )
    return out


# ------------------------------------------------------------------------------------------- with the model
def save_decision(model_dir: Path, decision: Decision) -> None:
    """Write the decision into the model folder's workbench.json (the rest of the file is kept)."""
    from core.models import META_FILE, read_meta
    from core.runs import atomic_write_text

    meta = read_meta(model_dir)
    labels = meta.get("label_names") or []
    if len(labels) != 2 or decision.positive not in labels:
        raise ConfigError("A decision threshold is offered for models with exactly two labels.")
    meta[DECISION_KEY] = asdict(decision)
    atomic_write_text(Path(model_dir) / META_FILE, json.dumps(meta, indent=2))


def load_decision(model_dir: Path) -> Decision | None:
    from core.models import read_meta

    return as_decision(read_meta(model_dir).get(DECISION_KEY))


def as_decision(raw: Any) -> Decision | None:
    """A decision as workbench.json stores it (a ModelBundle carries it so), or None."""
    if isinstance(raw, Decision) or raw is None:
        return raw
    try:
        return Decision(**raw)
    except (TypeError, ConfigError):
        return None  # a hand-edited file: predict with the plain argmax rather than fail


def clear_decision(model_dir: Path) -> None:
    from core.models import META_FILE, read_meta
    from core.runs import atomic_write_text

    meta = read_meta(model_dir)
    if meta.pop(DECISION_KEY, None) is not None:
        atomic_write_text(Path(model_dir) / META_FILE, json.dumps(meta, indent=2))


def labels_for(probs: np.ndarray, label_names: list[str], decision: Decision | dict | None) -> list[str]:
    """The answer for each row: the saved decision for a binary model, else the most likely class."""
    probs = np.asarray(probs, dtype=float)
    decision = as_decision(decision)
    if decision is None or len(label_names) != 2 or decision.positive not in label_names:
        return [label_names[int(i)] for i in probs.argmax(1)]
    pos = label_names.index(decision.positive)
    return decision.decide(probs[:, pos], label_names[1 - pos])
