"""Live probe sentences: a few inputs pinned before training, answered by the model at every validation.

The training loop calls ``log_probes`` once per evaluation; it appends one ``{"event": "probes", ...}`` line
to metrics.jsonl (class probabilities, a predicted value, or a greedy continuation for generation), so the
Train panel can show the model changing its mind and Compare can put runs side by side. Pages read the lines
back with ``probe_history`` / ``latest_probes``.
"""

from __future__ import annotations

from typing import Any

MAX_PROBES = 5
MAX_PROBE_CHARS = 500
CONTINUATION_TOKENS = 20


def check_probe_texts(texts: list[str]) -> list[str]:
    """The reasons a list of probes is refused (empty when it is fine); TrainConfig reports the first."""
    problems = []
    if len(texts) > MAX_PROBES:
        problems.append(f"pin at most {MAX_PROBES} probe inputs (got {len(texts)}).")
    for i, text in enumerate(texts, start=1):
        if not isinstance(text, str) or not text.strip():
            problems.append(f"probe {i} is empty; remove it or type a sentence.")
        elif len(text) > MAX_PROBE_CHARS:
            problems.append(f"probe {i} is longer than {MAX_PROBE_CHARS} characters; shorten it.")
    return problems


def answer(bundle, texts: list[str], task: str, device, precision: str, max_length: int) -> list[dict[str, Any]]:
    """Each probe's answer now: probabilities per label, a value, or a greedy continuation."""
    import torch

    from core.device import autocast

    model, tok = bundle.model, bundle.tokenizer
    was_training = model.training
    model.eval()
    try:
        if task == "generation":
            from core.generation import GenerationSettings, generate_batch

            side = tok.padding_side
            try:
                outs = generate_batch(bundle, texts, GenerationSettings(max_new_tokens=CONTINUATION_TOKENS), device)
            finally:
                tok.padding_side = side  # generation pads on the left; leave the tokenizer as training had it
            return [{"text": t, "continuation": o} for t, o in zip(texts, outs)]
        enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.inference_mode(), autocast(device, precision):
            logits = model(**enc).logits.float().cpu()
        if task == "regression":
            return [{"text": t, "value": round(float(v), 4)} for t, v in zip(texts, logits[:, 0])]
        probs = torch.softmax(logits, dim=-1).numpy()
        names = bundle.label_names or [str(i) for i in range(probs.shape[1])]
        return [
            {"text": t, "label": names[int(p.argmax())], "probs": {n: round(float(x), 4) for n, x in zip(names, p)}}
            for t, p in zip(texts, probs)
        ]
    finally:
        model.train(was_training)


def log_probes(sink, bundle, config, step: int, device, precision: str) -> None:
    """Append the probes' answers at this step to the run's metrics (nothing when no probe is pinned)."""
    texts = list(config.train.probe_texts or [])
    if not texts:
        return
    answers = answer(bundle, texts, config.model.task, device, precision, config.train.max_length)
    sink.log({"event": "probes", "step": step, "probes": answers})


def probe_history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (step, probe) from a run's metrics records; later lines for a step win (a resumed run)."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("event") == "probes" and isinstance(r.get("probes"), list):
            by_step[int(r.get("step", 0))] = r["probes"]
    rows = []
    for step in sorted(by_step):
        for i, p in enumerate(by_step[step]):
            rows.append({"step": step, "probe": i + 1, **p})
    return rows


def latest_probes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The probes' answers at the last evaluation (empty when the run pinned none)."""
    history = probe_history(records)
    if not history:
        return []
    last = history[-1]["step"]
    return [r for r in history if r["step"] == last]


def describe(answer: dict[str, Any]) -> str:
    """An answer in a few words: 'positive (93%)', '4.21', or the continuation."""
    if "probs" in answer:
        return f"{answer['label']} ({answer['probs'].get(answer['label'], 0.0):.0%})"
    if "value" in answer:
        return f"{answer['value']:.3g}"
    return str(answer.get("continuation", ""))
