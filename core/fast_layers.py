"""BERT-style encoder layers that train the same function with fewer, larger matrix products (part of the fast path).

Three changes, all exact in arithmetic terms (the same sums of the same products; only rounding order differs):

- **one product for query, key and value.** The three 384 x 384 projections of MiniLM run as one 384 x 1,152
  product on the weights concatenated at each step. At a short batch's ~450 rows a CPU's matrix units run
  a wider product much closer to their peak (bench/README.md has the figures).
- **the last layer computes only position 0 when the head reads only position 0.** A sequence classifier's
  head (BERT's pooler, RoBERTa's and ELECTRA's classification heads) reads the first token of the last layer and
  nothing else. That position still attends to every token, so keys and values are computed for all of them,
  but its query, attention output, feed-forward block and layer norms run on one row per example instead of
  every token: about four fifths of the last layer's work, in the forward and the backward.
- **no work on padding outside attention (CPU).** A batch of short sentences padded to its longest row (rounded
  up to 8) is ~14% padding. From the first layer on, the layers pass only the positions that hold tokens
  (their count rounded up by ``rounded_rows``), so the projections, the feed-forward block, layer norms and
  dropout skip the padding; attention alone reads the padded layout, where padded keys are masked as before. A
  classifier's predictions are unchanged; a tagger gets zeros at most padded positions, which no loss reads.

Installed for training: a layer in eval mode (the Playground, the probes and the interpretability views read
every position or the attention weights) runs the stock forward, except in the bf16 twin that only scores
(``scoring=True``). With a cache or cross-attention a layer runs the stock forward; adapters on the projections
run their own forward, unfused. The layers keep their class's weights and names, so
checkpoints and saved models are stock; ``undo()`` gives the layers their own class back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.hf import load_transformers

# Sequence-classification heads that read only position 0 of the last hidden state (pooler or head).
FIRST_TOKEN_HEADS = {
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "XLMRobertaForSequenceClassification",
    "ElectraForSequenceClassification",
    "CamembertForSequenceClassification",
}
# Layer classes whose forward is BERT's: self-attention (query/key/value), output block, intermediate, output.
BERT_LAYERS = {"BertLayer", "RobertaLayer", "XLMRobertaLayer", "ElectraLayer", "CamembertLayer"}


def _plain(*modules) -> bool:
    """Plain nn.Linear projections (not a LoRA or quantised wrapper, whose own forward must run)."""
    return all(type(m) is torch.nn.Linear for m in modules)


def _project(x: torch.Tensor, linears) -> list[torch.Tensor]:
    """x through each of ``linears``: one product on the concatenated weights when they are all plain."""
    if len(linears) == 1 or not _plain(*linears):
        return [lin(x) for lin in linears]
    return list(_product(x, linears).split([lin.out_features for lin in linears], dim=-1))


def _product(x: torch.Tensor, linears) -> torch.Tensor:
    """x through each of ``linears``, side by side in one tensor (one product when they are all plain)."""
    if not _plain(*linears):
        return torch.cat([lin(x) for lin in linears], dim=-1)
    weight = torch.cat([lin.weight for lin in linears])
    bias = None if linears[0].bias is None else torch.cat([lin.bias for lin in linears])
    return F.linear(x, weight, bias)


def _heads(x: torch.Tensor, size: int) -> torch.Tensor:
    return x.view(*x.shape[:-1], -1, size).transpose(1, 2)


# Token rows of an unpadded batch are rounded up to a multiple of this, or for a large batch of a power-of-two
# multiple of it (``rounded_rows``; the extra rows are padding positions): every distinct row count is a new shape
# for oneDNN, whose first product at a shape builds its kernels, and whose cached primitives and kernels stay in
# memory (~3-9 MB of RSS per row count; bench/README.md).
ROW_MULTIPLE = 32
# From this many token rows on, the multiple doubles, and again at each doubling of the rows: rounding then adds at
# most 1/8 of the rows (~1/16 on average) while a batch of long texts meets half the row counts. 32 throughout put
# the engine's peak RSS 140 MB above the fp32 Trainer's on 3,000 reviews (bench/README.md, "Issue 15, memory").
DOUBLE_FROM_ROWS = 512


def rounded_rows(count: int) -> int:
    """``count`` token rows rounded up to the row multiple for a batch of that many."""
    multiple, limit = ROW_MULTIPLE, DOUBLE_FROM_ROWS
    while count >= limit:
        multiple, limit = multiple * 2, limit * 2
    return -(-count // multiple) * multiple


@dataclass
class _Tokens:
    """Where the tokens of one padded batch sit: found by the first layer of a forward, read by the next ones."""

    index: torch.Tensor  # flat positions (row * width + column) the layers compute, ascending
    firsts: torch.Tensor | None  # each example's position 0 among them (for a first-token head)
    batch: int
    width: int


def _find_tokens(mask, hidden: torch.Tensor, first_only: bool) -> _Tokens | None:
    """The positions worth computing in a padded CPU batch; None when padding is too little to drop (or the mask is
    not a boolean key mask, or a first-token head's position 0 is padding: left padding runs padded)."""
    if mask is None or mask.dtype != torch.bool or mask.dim() != 4 or hidden.device.type != "cpu":
        return None
    batch, width = hidden.shape[:2]
    real = mask[:, 0].any(dim=1)  # [batch, width]: a padding key is one that no query attends to
    if first_only and not bool(real[:, 0].all()):
        return None
    flat = real.reshape(-1)
    count = int(flat.sum())
    rows = rounded_rows(count)
    if rows >= flat.numel():
        return None
    if rows > count:  # fill up with padding positions: computed as stock computes padding, and never read
        flat = flat.clone()
        flat[(~flat).nonzero().squeeze(1)[: rows - count]] = True
    index = flat.nonzero().squeeze(1)
    firsts = torch.searchsorted(index, torch.arange(batch) * width) if first_only else None
    return _Tokens(index, firsts, batch, width)


def _padded(rows: torch.Tensor, found: _Tokens) -> torch.Tensor:
    """[tokens, features] back into the padded [batch, width, features] layout attention reads (zeros elsewhere)."""
    full = rows.new_zeros(found.batch * found.width, rows.shape[-1]).index_copy(0, found.index, rows)
    return full.view(found.batch, found.width, -1)


def _padded_projections(rows: torch.Tensor, linears, found: _Tokens) -> list[torch.Tensor]:
    """Token rows through ``linears`` (one product), each result in the padded layout attention reads."""
    return list(_padded(_product(rows, linears), found).split([lin.out_features for lin in linears], dim=-1))


class _FastLayer:
    """Mixed into a BERT-style layer's own class (see ``use_fast_layers``); ``first_only`` on the last layer.

    Unpadded: the first layer of a CPU forward finds the batch's tokens (``_find_tokens``) and from there on
    the layers pass [tokens, hidden] rows to each other, so the projections, the feed-forward block, the layer
    norms and dropout skip the padding. Attention alone reads the padded layout. The last layer gives the stock
    shape back: [batch, 1, hidden] when it computes position 0 only, else [batch, width, hidden] with zeros at
    the padding."""

    first_only = False
    scoring = False
    first = last = False
    shared: dict | None = None  # one per encoder: {"tokens": the current forward's _Tokens}; None: never unpad

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                cache=None, **kwargs):  # fmt: skip
        att = self.attention.self
        attend = _ATTENTION.get_interface(att.config._attn_implementation, None)  # None for "eager"
        if (
            attend is None
            or not (self.training or self.scoring)
            or cache is not None
            or encoder_hidden_states is not None
            or kwargs.get("past_key_values")
        ):
            return super().forward(hidden_states, attention_mask, encoder_hidden_states,  # type: ignore[misc]
                                   encoder_attention_mask=encoder_attention_mask, cache=cache, **kwargs)  # fmt: skip
        size = att.attention_head_size
        found = None
        if self.shared is not None:
            if self.first:  # padded rows in
                self.shared["tokens"] = found = _find_tokens(attention_mask, hidden_states, self.shared["first_only"])
                if found is not None:
                    hidden_states = hidden_states.reshape(-1, hidden_states.shape[-1]).index_select(0, found.index)
            else:
                found = self.shared["tokens"]
        if found is None:
            return self._padded_forward(hidden_states, attention_mask, attend, att, size, kwargs)
        if self.first_only:
            residual = hidden_states.index_select(0, found.firsts)
            (query,) = _project(residual, [att.query])
            query = query.unsqueeze(1)
            key, value = _padded_projections(hidden_states, [att.key, att.value], found)
            attention_mask = attention_mask[:, :, :1]
        else:
            residual = hidden_states
            query, key, value = _padded_projections(hidden_states, [att.query, att.key, att.value], found)
        out, _ = attend(att, _heads(query, size), _heads(key, size), _heads(value, size), attention_mask,
                        dropout=att.dropout.p if self.training else 0.0, scaling=att.scaling, **kwargs)  # fmt: skip
        out = out.reshape(found.batch, -1, out.shape[-2] * out.shape[-1])
        out = out[:, 0] if self.first_only else out.reshape(-1, out.shape[-1]).index_select(0, found.index)
        layer_output = self.feed_forward_chunk(self.attention.output(out, residual))
        if self.first_only:
            return layer_output.unsqueeze(1)
        return _padded(layer_output, found) if self.last else layer_output

    def _padded_forward(self, hidden_states, attention_mask, attend, att, size, kwargs):
        if self.first_only:
            residual = hidden_states[:, :1]
            (query,) = _project(residual, [att.query])
            key, value = _project(hidden_states, [att.key, att.value])
            if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[2] > 1:
                attention_mask = attention_mask[:, :, :1]
        else:
            residual = hidden_states
            query, key, value = _project(hidden_states, [att.query, att.key, att.value])
        out, _ = attend(att, _heads(query, size), _heads(key, size), _heads(value, size), attention_mask,
                        dropout=att.dropout.p if self.training else 0.0, scaling=att.scaling, **kwargs)  # fmt: skip
        out = out.reshape(*residual.shape[:-1], -1).contiguous()
        attention_output = self.attention.output(out, residual)
        return self.feed_forward_chunk(attention_output)


_CLASSES: dict[type, type] = {}
_ATTENTION = None  # transformers' attention registry, looked up at install (the "sdpa" entry may be rerouted)


def _fast_class(cls: type) -> type:
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"Fast{cls.__name__}", (_FastLayer, cls), {})
    return _CLASSES[cls]


def _stock_class(layer) -> type:
    """The layer's own transformers class, also once it has been given the fast forward."""
    return type(layer).__bases__[-1] if isinstance(layer, _FastLayer) else type(layer)


def _eligible(layer) -> bool:
    att = getattr(getattr(layer, "attention", None), "self", None)
    return (
        _stock_class(layer).__name__ in BERT_LAYERS
        and att is not None
        and all(hasattr(att, n) for n in ("query", "key", "value", "attention_head_size", "scaling", "dropout"))
        and not getattr(layer, "add_cross_attention", False)
        and not getattr(layer, "is_decoder", False)
        and not getattr(layer, "chunk_size_feed_forward", 0)
        and not getattr(getattr(layer, "attention", None), "is_cross_attention", False)
    )


def _encoder_layers(model) -> list:
    """The encoder's layer list of a BERT-style model, under a peft wrapper too; [] when there is none."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(base, "base_model", base)
    layers = getattr(getattr(body, "encoder", None), "layer", None)
    return list(layers) if layers is not None else []


def reads_first_token_only(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(base).__name__ in FIRST_TOKEN_HEADS


def use_fast_layers(model, *, scoring: bool = False, unpad: bool = True) -> Callable[[], None] | None:
    """Give a BERT-style model's encoder layers the fused projections (and the last one the first-position-only
    forward when the head reads only that); returns the call that undoes it, None when nothing applied.

    ``scoring``: also in eval mode. Only for a model that nothing but scoring uses (the bf16 twin of
    core.fastpath.bf16_twin, whose callers read the logits alone): a pruned last layer has no hidden states
    or attention weights for the other positions."""
    global _ATTENTION
    layers = _encoder_layers(model)
    if not layers or not all(_eligible(layer) for layer in layers):
        return None
    if len({id(layer) for layer in layers}) != len(layers):  # shared layers (ALBERT-like): one forward for all
        return None
    load_transformers()
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    _ATTENTION = ALL_ATTENTION_FUNCTIONS
    before = [type(layer) for layer in layers]
    for layer in layers:
        if not isinstance(layer, _FastLayer):
            layer.__class__ = _fast_class(type(layer))
        layer.scoring = scoring
    layers[-1].first_only = reads_first_token_only(model)
    shared = {"tokens": None, "first_only": layers[-1].first_only} if unpad else None
    for layer in layers:
        layer.shared = shared
    layers[0].first, layers[-1].last = True, True

    def undo() -> None:
        for layer, cls in zip(layers, before):
            for name in ("first_only", "scoring", "shared", "first", "last"):
                layer.__dict__.pop(name, None)
            layer.__class__ = cls

    return undo
