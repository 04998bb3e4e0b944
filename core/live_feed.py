"""What a live view needs to know about a training run, as plain JSON: its numbers and its new curve points.

The app's live page asks for this every few seconds from the browser itself (ui/live_api.py), so the numbers move
without a rerun of the page's Python: a rerun costs the browser and the server a fixed share of a core, which a
2-core machine takes from training (bench/live_page.py). Only a change the page's Python must draw anew (the state,
the status message, what the diagnosis finds) makes the browser ask for a rerun: the ``signature`` says when.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from core.curves import CurveFeed, start_record
from core.diagnose import diagnose, label_names
from core.runs import ACTIVE, Run

# The columns a live chart draws, in the order the browser reads each point.
TRAIN_COLUMNS = ("step", "epoch", "loss", "lr")
EVAL_COLUMNS = ("step", "epoch", "val_loss")
NUMBERS = ("samples_per_s", "elapsed_s", "eta_s")
# Run folder -> ((records, state, message), signature): the diagnosis behind a signature runs once per new lines.
_signatures: dict[Path, tuple[tuple, str]] = {}


def _number(value: Any) -> float | int | None:
    """A JSON-safe number: NaN and infinities (a diverged loss) become null, which a chart draws as a gap."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rows(frame, columns: tuple[str, ...], start: int = 0) -> list[list[float | int | None]]:
    if not len(frame):
        return []
    cols = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in columns]
    return [[_number(v) for v in row] for row in zip(*cols, strict=True)][start:]


def signature(run: Run, status: dict[str, Any], records: list[dict[str, Any]], train, evals) -> str:
    """Changes exactly when the page's Python must draw the run anew: a new state or status message, the first
    training point (the "preparing" note goes), a change in what the diagnosis finds while the run trains (it
    diverged, is stuck, overfits), or new answers of the pinned probes. Not at each evaluation: its score and its
    point on the curve are the browser's to draw, and a rerun every evaluation (8 to 10 a run, seconds apart on a
    short one) would cost about what the timed refresh did."""
    state = status.get("state")
    message = status.get("message") or ""  # the English text, with its parameters filled in
    key = (len(records), str(state), message)
    cached = _signatures.get(run.dir)
    if cached and cached[0] == key:
        return cached[1]
    findings = ""
    if state in ACTIVE:
        found = diagnose(
            records,
            _config(run),
            state=str(state),
            message=message,
            label_names=label_names(run),
            frames=(train, evals),
        )
        findings = ",".join(f.kind for f in found)
    probes = sum(1 for r in records if isinstance(r, dict) and r.get("event") == "probes")
    text = f"{state}|{message}|{int(bool(len(train)))}|{findings}|{probes}"
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    _signatures[run.dir] = (key, digest)
    if len(_signatures) > 64:
        _signatures.pop(next(iter(_signatures)))
    return digest


def record_signature(record: dict[str, Any]) -> str:
    """Changes whenever a job record a page draws whole (a search's search.json, as its store reads it) changes."""
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]


def _config(run: Run) -> dict[str, Any]:
    try:
        return run.config_dict()
    except (OSError, ValueError):
        return {}


def live_snapshot(run: Run, feed: CurveFeed, since: int = 0, points: bool = True) -> dict[str, Any]:
    """The run's state, its numbers, its latest evaluation and (``points``) the training points from ``since`` on.

    ``since`` is how many training points the asker already holds; ``next`` is the count to ask from next time.
    A count larger than the points there are (the run was made again under the same name) sends them all.
    """
    status = run.status()
    _, records, train, evals = feed.frames(fresh=status["state"] not in ACTIVE)
    head = start_record(records)
    latest = status.get("latest_eval") or {}
    out: dict[str, Any] = {
        "state": str(status["state"]),
        "active": status["state"] in ACTIVE,
        "step": _number(status.get("step")) or 0,
        "total": _number(status.get("total_steps")) or _number(head.get("total_steps")) or 0,
        **{key: _number(status.get(key)) for key in NUMBERS},
        "latest": {str(k): _number(v) for k, v in latest.items() if _number(v) is not None},
        "evaluations": len(evals),
        "signature": signature(run, status, records, train, evals),
    }
    if points:
        since = max(int(since), 0)
        if since > len(train):
            since = 0
        out["since"] = since
        out["train"] = _rows(train, TRAIN_COLUMNS, since)
        out["evals"] = _rows(evals, EVAL_COLUMNS)
        out["next"] = len(train)
    return out
