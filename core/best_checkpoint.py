"""Make a finished run's best checkpoint its model: the overfitting diagnosis's "keep the best" after the fact.

During a run, "stop and keep best" restores the best evaluation's weights before the model is saved. After the
run has finished, its model is the last step's; if the checkpoint of the best evaluation was kept (the loop never
prunes it), its weights become the run's model, and the run's validation and test scores are computed again on
them, so every page shows the scores of the model it serves. Without that checkpoint nothing is changed: the
honest fix is then a retrain with early stopping (the diagnosis offers it).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from core.errors import TrainingError
from core.runs import STATE_FILE


def best_step_of(run) -> int | None:
    """The step of the run's best evaluation (results, else status), or None."""
    step = run.results().get("best_step") or run.status().get("best_step")
    return int(step) if step else None


def model_step_of(run) -> int | None:
    """The step whose weights the run's model holds (from the model's workbench.json)."""
    from core.models import META_FILE

    try:
        meta = json.loads((run.model_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    step = meta.get("weights_step", meta.get("step"))
    return int(step) if step is not None else None


def best_checkpoint(run) -> Path | None:
    """The complete checkpoint of the best evaluation, when it was kept and is not already the model."""
    from core.runs import checkpoint_complete

    best = best_step_of(run)
    if best is None or model_step_of(run) == best:
        return None
    folder = run.checkpoints_dir / f"step-{best:06d}"
    return folder if folder.is_dir() and checkpoint_complete(folder) else None


def keep_best_checkpoint(run, device: str = "cpu") -> dict[str, Any]:
    """Replace the run's model by its best checkpoint's weights and score it again; returns the new results.

    A TrainingError (with a hint) when the run is not finished or has no such checkpoint; the model is untouched.
    """
    from core.evaluation import evaluate_run
    from core.model_card import write_model_card
    from core.models import META_FILE, link_saved_model
    from core.training import model_scores_status, replace_folder

    if run.status().get("state") != "finished" or not run.has_model():
        raise TrainingError("error.keep_best.not_finished", hint="error.hint.keep_best.live", run=run.id)
    best = best_step_of(run)
    folder = best_checkpoint(run)
    if folder is None:
        if best is not None and model_step_of(run) == best:
            raise TrainingError("error.keep_best.already", run=run.id, step=best)
        raise TrainingError(
            "error.keep_best.no_checkpoint", hint="error.hint.keep_best.early_stopping", run=run.id, step=best or 0
        )
    meta = json.loads((run.model_dir / META_FILE).read_text(encoding="utf-8"))
    tmp = run.dir / f".model-{uuid.uuid4().hex[:6]}"
    try:
        tmp.mkdir()
        if not link_saved_model(folder, tmp):  # weights linked, not copied; written out where links fail
            shutil.copytree(folder, tmp, ignore=shutil.ignore_patterns(STATE_FILE), dirs_exist_ok=True)
        # The model's own description (task, labels, adapter...) with the step its weights now come from.
        meta.update(weights_step=best, best_step=best, last_step=meta.get("step"))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_folder(tmp, run.model_dir)
    results = dict(run.results())
    for split in ("validation", "test"):
        if (run.data_dir / f"{split}.parquet").exists():
            try:
                results[split] = evaluate_run(run, split=split, device=device).metrics
            except Exception:  # noqa: BLE001 - an empty split has no score; the model itself is in place
                results.pop(split, None)
    results["model_step"] = best
    run.write_results(results)
    run.set_status(**model_scores_status(results))  # the page's figures: this model's, not the last step's
    write_model_card(run.model_dir)
    return results
