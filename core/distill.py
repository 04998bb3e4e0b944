"""Knowledge distillation: a finished run teaches a smaller student of the same family.

The student learns from a mix of the labels and the teacher's softened probabilities (Hinton et al. 2015):
loss = (1 - alpha) * CE(labels) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)).
The T^2 factor keeps the soft term's gradients on the same scale as the labels' when T changes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.errors import ModelError
from core.runs import Run, RunStore


def teacher_run_of(teacher_id: str, runs_root: Path) -> Run:
    """The finished run named as teacher, or a clear error saying why it cannot teach."""
    from core.errors import WorkbenchError

    try:
        run = RunStore(runs_root).get(teacher_id)
    except WorkbenchError:
        raise ModelError("error.distill.no_teacher", hint="error.hint.finished_run", run=teacher_id) from None
    if not run.has_model():
        raise ModelError("error.distill.teacher_unsaved", hint="error.hint.finished_run", run=teacher_id)
    return run


def load_teacher(teacher_id: str, runs_root: Path, student, device):
    """Load the teacher frozen, in eval mode, on the student's device; refuse a teacher that cannot teach it."""
    from core.models import load_for_inference

    run = teacher_run_of(teacher_id, runs_root)
    teacher = load_for_inference(run.model_dir, merge=True, device=str(device))
    if teacher.task != "classification" or student.task != "classification":
        raise ModelError("error.distill.classification", hint="error.hint.classification_teacher")
    if teacher.label_names != student.label_names:
        raise ModelError(
            "error.distill.labels",
            hint="error.hint.same_labels",
            run=teacher_id,
            teacher=teacher.label_names,
            student=student.label_names,
        )
    if teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab():
        # Different token ids would make the teacher read other words than the student: its advice is noise.
        raise ModelError("error.distill.tokenizer", hint="error.hint.same_family", run=teacher_id)
    teacher.model.requires_grad_(False)
    teacher.model.eval()
    return teacher.model


def teacher_logits(teacher, batch):
    """The teacher's logits for a training batch, without building a graph."""
    import torch

    with torch.no_grad():
        return teacher(**batch).logits.float()


def blend(label_loss, student_logits, teacher_logits_, alpha: float, temperature: float):
    """(1 - alpha) * label loss + alpha * T^2 * KL(teacher || student) at temperature T."""
    import torch.nn.functional as F

    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=-1),
        F.log_softmax(teacher_logits_ / t, dim=-1),
        log_target=True,
        reduction="batchmean",
    )
    return (1.0 - alpha) * label_loss + alpha * t * t * soft


def _split_frame(run: Run, split: str):
    import pandas as pd

    from core.errors import WorkbenchError

    for name in (split, "validation", "test"):
        path = run.data_dir / f"{name}.parquet"
        if path.exists():
            frame = pd.read_parquet(path)
            if len(frame):
                return name, frame
    raise WorkbenchError("error.distill.no_rows", hint="error.hint.finished_runs", run=run.id)


def _measure(bundle, data, max_length: int, device, min_seconds: float) -> dict[str, Any]:
    """Accuracy on the split and predictions per second (passes repeated until ``min_seconds`` for a steady figure)."""
    from core.device import resolve_precision
    from core.evaluation import metrics_from_scores, score_encoded
    from core.models import count_parameters

    precision = resolve_precision("auto", device)
    kwargs = {"batch_size": 32, "pad_id": bundle.tokenizer.pad_token_id, "device": device, "precision": precision}
    bundle.model.to(device)
    scores = score_encoded(bundle.model, data, "classification", **kwargs)  # also warms up
    passes, started = 0, time.perf_counter()
    while passes < 50 and (passes == 0 or time.perf_counter() - started < min_seconds):
        score_encoded(bundle.model, data, "classification", **kwargs)
        passes += 1
    seconds = time.perf_counter() - started
    metrics = metrics_from_scores(scores, data, "classification", bundle.label_names)
    _, total = count_parameters(bundle.model)
    size = sum(p.numel() * p.element_size() for p in bundle.model.parameters())
    return {
        "accuracy": metrics["accuracy"],
        "f1": metrics["f1"],
        "parameters": total,
        "size_mb": round(size / 2**20, 2),
        "layers": getattr(bundle.model.config, "num_hidden_layers", None),
        "predictions_per_s": round(passes * len(data) / max(seconds, 1e-9), 1),
    }


def compare_models(
    student_run: Run, teacher_run: Run, *, split: str = "test", device: str = "cpu", min_seconds: float = 0.5
) -> list[dict[str, Any]]:
    """Student and teacher side by side on the student's split: accuracy, F1, size and prediction speed."""
    from core.batching import encode_pairs
    from core.device import resolve_device
    from core.models import load_for_inference

    dev = resolve_device(device)
    split_name, frame = _split_frame(student_run, split)
    max_length = student_run.config().train.max_length
    rows = []
    for role, run in (("student", student_run), ("teacher", teacher_run)):
        bundle = load_for_inference(run.model_dir, merge=True, device=str(dev))
        pairs = frame["text_pair"].astype(str).tolist() if "text_pair" in frame else None
        texts = frame["text"].astype(str).tolist()
        data = encode_pairs(bundle.tokenizer, texts, pairs, frame["label"].to_numpy(), max_length)
        rows.append(
            {"model": role, "run": run.id, "split": split_name, **_measure(bundle, data, max_length, dev, min_seconds)}
        )
        del bundle
    return rows


def comparison_results(student_run: Run, device) -> dict[str, Any]:
    """``{"distillation": rows}`` for a student's results.json ({} for a run without a teacher)."""
    teacher_id = student_run.config().model.teacher_run
    if not teacher_id:
        return {}
    teacher = teacher_run_of(teacher_id, student_run.dir.parent)
    return {"distillation": compare_models(student_run, teacher, device=str(device))}


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table for the CLI."""
    cols = ["model", "run", "layers", "parameters", "size_mb", "accuracy", "f1", "predictions_per_s"]
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)
