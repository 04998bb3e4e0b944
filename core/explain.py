"""Which words made a classifier decide: token attributions on the input embeddings.

Integrated gradients (Sundararajan et al. 2017) average the gradient along a straight path from a baseline
(zero embeddings: "no word") to the real input and multiply by the distance, so the scores add up to the
change of the output between the baseline and the input. Gradient x input is the one-step, cheaper version.
Scores are signed: positive pushes towards the explained class, negative away from it. What is explained is
the class's log-odds, log p / (1 - p), since that (not a single raw logit) is what decides the prediction.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from core.errors import ConfigError

METHODS = ("integrated_gradients", "gradient_x_input")


@dataclass
class _Inputs:
    ids: object  # (1, L) token ids
    extra: dict  # attention_mask / token_type_ids, (1, L)
    special: object  # (L,) bool: [CLS], [SEP]... keep their real embedding and get no score
    pieces: list[str]
    groups: list[tuple[str, list[int]]]  # (word, token positions), in reading order


def explain(
    bundle,
    text: str,
    text_pair: str | None = None,
    target: int | str | None = None,
    method: str = "integrated_gradients",
    steps: int = 32,
    *,
    merge_words: bool = True,
    max_length: int = 256,
) -> list[tuple[str, float]]:
    """Signed attribution of each word (or word piece) of ``text`` to the ``target`` class (default: the prediction)."""
    import torch

    if method not in METHODS:
        raise ConfigError("error.config.setting", field="method", detail="error.config.one_of", choices=list(METHODS))
    if not 1 <= steps <= 512:
        raise ConfigError("error.config.setting", field="steps", detail="error.config.between", lo=1, hi=512)
    if not str(text).strip():
        raise ConfigError("error.explain.empty", hint="error.hint.type_sentence")
    if bundle.task == "generation":
        raise ConfigError("error.explain.task")
    model = bundle.model
    device = next(model.parameters()).device
    inputs = _tokenize(bundle.tokenizer, text, text_pair, min(max_length, bundle.max_positions), device)
    was_training = model.training
    model.eval()  # dropout would make the gradients random
    try:
        with torch.no_grad():
            embeds = model.get_input_embeddings()(inputs.ids).float()
            logits = model(input_ids=inputs.ids, **inputs.extra).logits.float()
        index = _target_index(bundle, target, logits)
        baseline = torch.where(inputs.special[None, :, None], embeds, torch.zeros_like(embeds))
        if method == "integrated_gradients":
            grads = _path_gradients(model, embeds, baseline, inputs.extra, index, steps)
        else:
            grads = _gradients(model, embeds, inputs.extra, index)
        scores = ((embeds - baseline) * grads).sum(-1)[0].detach().cpu().tolist()
    finally:
        model.train(was_training)
    if not merge_words:
        return [(p, s) for p, s, sp in zip(inputs.pieces, scores, inputs.special.tolist()) if not sp]
    return [(word, float(sum(scores[i] for i in positions))) for word, positions in inputs.groups]


def _tokenize(tokenizer, text: str, text_pair: str | None, max_length: int, device) -> _Inputs:

    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(
        text,
        text_pair,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_special_tokens_mask=True,
        return_offsets_mapping=fast,
    )
    ids = enc["input_ids"].to(device)
    extra = {k: enc[k].to(device) for k in ("attention_mask", "token_type_ids") if k in enc}
    special = enc["special_tokens_mask"][0].bool().to(device)
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    if fast:
        groups = _word_groups(enc, [text, text_pair or ""])
    else:
        groups = [(p, [i]) for i, (p, sp) in enumerate(zip(pieces, special.tolist())) if not sp]
    return _Inputs(ids, extra, special, pieces, groups)


def _word_groups(enc, sources: list[str]) -> list[tuple[str, list[int]]]:
    """Merge word pieces back into the words of the original text (by the fast tokenizer's word ids)."""
    offsets = enc["offset_mapping"][0].tolist()
    groups: list[tuple[str, list[int]]] = []
    last_key = None
    for pos, (seq, word) in enumerate(zip(enc.sequence_ids(0), enc.word_ids(0))):
        if seq is None or word is None:
            last_key = None
            continue
        if (seq, word) == last_key:
            groups[-1][1].append(pos)
        else:
            groups.append(("", [pos]))
        last_key = (seq, word)
        positions = groups[-1][1]
        start, end = offsets[positions[0]][0], offsets[positions[-1]][1]
        groups[-1] = (sources[seq][start:end], positions)
    return groups


def _target_index(bundle, target: int | str | None, logits) -> int:
    k = logits.shape[-1]
    if bundle.task == "regression" or target is None:
        return 0 if bundle.task == "regression" else int(logits[0].argmax())
    names = bundle.label_names or [str(i) for i in range(k)]
    if isinstance(target, str):
        if target not in names:
            raise ConfigError("error.explain.not_a_label", label=target, labels=names)
        return names.index(target)
    if not 0 <= int(target) < k:
        raise ConfigError("error.explain.no_class", label=target, n=k)
    return int(target)


def _log_odds(logits, index: int):
    """log p(target) / (1 - p(target)): what decides the class. A raw logit also moves with shifts common to
    every class, which change nothing in the prediction but would be credited to the words."""
    import torch

    if logits.shape[-1] == 1:
        return logits[:, 0]
    others = torch.cat([logits[:, :index], logits[:, index + 1 :]], dim=-1)
    return logits[:, index] - torch.logsumexp(others, dim=-1)


def _gradients(model, embeds, extra: dict, index: int):
    import torch

    x = embeds.detach().requires_grad_(True)
    out = _log_odds(model(inputs_embeds=x, **extra).logits.float(), index).sum()
    return torch.autograd.grad(out, x)[0]


def _path_gradients(model, embeds, baseline, extra: dict, index: int, steps: int, chunk: int = 16):
    """Mean gradient at the midpoints of ``steps`` equal segments of the baseline -> input path."""
    import torch

    alphas = (torch.arange(steps, dtype=embeds.dtype, device=embeds.device) + 0.5) / steps
    total = torch.zeros_like(embeds)
    for start in range(0, steps, chunk):  # bounded batches keep memory flat for long texts and big models
        a = alphas[start : start + chunk][:, None, None]
        path = baseline + a * (embeds - baseline)
        batch_extra = {k: v.expand(len(a), -1) for k, v in extra.items()}
        total += _gradients(model, path, batch_extra, index).sum(0, keepdim=True)
    return total / steps


def to_html(attributions: list[tuple[str, float]]) -> str:
    """Words on a background whose colour shows the score: green for the class, red against, stronger = more."""
    peak = max((abs(s) for _, s in attributions), default=0.0) or 1.0
    spans = []
    for word, score in attributions:
        strength = 0.85 * abs(score) / peak
        rgb = "22,163,74" if score >= 0 else "220,38,38"
        spans.append(
            f'<span title="{score:+.4f}" style="background:rgba({rgb},{strength:.2f});'
            f'padding:1px 4px;margin:1px;border-radius:4px">{html.escape(word)}</span>'
        )
    return '<div style="line-height:2">' + " ".join(spans) + "</div>"
