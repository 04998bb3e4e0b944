"""BERT-style encoder layers that train the same function with fewer, larger matrix products (part of the fast path).

Two changes, both exact in arithmetic terms (the same sums of the same products; only rounding order differs):

- **one product for query, key and value.** The three 384 x 384 projections of MiniLM run as one 384 x 1,152
  product on the weights concatenated at each step. At a short batch's ~450 rows a CPU's matrix units run
  a wider product much closer to their peak (bench/README.md has the figures).
- **the last layer computes only position 0 when the head reads only position 0.** A sequence classifier's
  head (BERT's pooler, RoBERTa's and ELECTRA's classification heads) reads the first token of the last layer and
  nothing else. That position still attends to every token, so keys and values are computed for all of them,
  but its query, attention output, feed-forward block and layer norms run on one row per example instead of
  every token: about four fifths of the last layer's work, in the forward and the backward.

Installed for training: a layer in eval mode (the Playground, the probes and the interpretability views read
every position or the attention weights) runs the stock forward, except in the bf16 twin that only scores
(``scoring=True``). With a cache or cross-attention a layer runs the stock forward; adapters on the projections
run their own forward, unfused. The layers keep their class's weights and names, so
checkpoints and saved models are stock; ``undo()`` gives the layers their own class back.
"""

from __future__ import annotations

from collections.abc import Callable

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
    weight = torch.cat([lin.weight for lin in linears])
    bias = None if linears[0].bias is None else torch.cat([lin.bias for lin in linears])
    return list(F.linear(x, weight, bias).split([lin.out_features for lin in linears], dim=-1))


def _heads(x: torch.Tensor, size: int) -> torch.Tensor:
    return x.view(*x.shape[:-1], -1, size).transpose(1, 2)


class _FastLayer:
    """Mixed into a BERT-style layer's own class (see ``use_fast_layers``); ``first_only`` on the last layer."""

    first_only = False
    scoring = False

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


def use_fast_layers(model, *, scoring: bool = False) -> Callable[[], None] | None:
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

    def undo() -> None:
        for layer, cls in zip(layers, before):
            for name in ("first_only", "scoring"):
                layer.__dict__.pop(name, None)
            layer.__class__ = cls

    return undo
