"""Batched prediction with class probabilities, and generation: greedy, beam, sampling, streaming."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from core.errors import ConfigError

STRATEGIES = ("greedy", "beam", "sample")


@dataclass
class GenerationSettings:
    """Decoding controls shown in the Playground."""

    strategy: str = "greedy"
    """greedy (most likely token), beam (search several continuations), sample (random, shaped below)."""
    max_new_tokens: int = 64
    num_beams: int = 4
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"Setting 'strategy': must be one of {list(STRATEGIES)}.")
        if not 1 <= self.max_new_tokens <= 2048:
            raise ConfigError("Setting 'max_new_tokens': must be between 1 and 2048.")
        if not 1 <= self.num_beams <= 16:
            raise ConfigError("Setting 'num_beams': must be between 1 and 16.")
        if not 0.01 <= self.temperature <= 5.0:
            raise ConfigError("Setting 'temperature': must be between 0.01 and 5.")
        if not 0 <= self.top_k <= 1000:
            raise ConfigError("Setting 'top_k': must be between 0 (off) and 1000.")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("Setting 'top_p': must be above 0 and at most 1.")
        if not 1.0 <= self.repetition_penalty <= 3.0:
            raise ConfigError("Setting 'repetition_penalty': must be between 1 (off) and 3.")

    def generate_kwargs(self, tokenizer) -> dict:
        kwargs = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
        if self.strategy == "beam":
            kwargs.update(num_beams=self.num_beams, do_sample=False, early_stopping=True)
        elif self.strategy == "sample":
            kwargs.update(do_sample=True, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        else:
            kwargs.update(do_sample=False, num_beams=1)
        return kwargs

    def to_dict(self) -> dict:
        return asdict(self)


def predict_proba(
    bundle,
    texts: list[str],
    pairs: list[str] | None = None,
    *,
    batch_size: int = 64,
    max_length: int = 128,
    device: str = "cpu",
) -> np.ndarray:
    """Class probabilities (classification) or predicted values (regression, shape (n, 1)) in input order."""
    from core.batching import encode_pairs
    from core.device import resolve_device, resolve_precision
    from core.evaluation import score_encoded, softmax

    dev = resolve_device(device)
    bundle.model.to(dev)
    data = encode_pairs(bundle.tokenizer, texts, pairs, None, min(max_length, bundle.max_positions))
    data.labels = np.zeros(len(texts), dtype=np.float32 if bundle.task == "regression" else np.int64)
    scores = score_encoded(
        bundle.model,
        data,
        bundle.task,
        batch_size=batch_size,
        pad_id=bundle.tokenizer.pad_token_id,
        device=dev,
        precision=resolve_precision("auto", dev),
    )
    return scores.logits if bundle.task == "regression" else softmax(scores.logits)


def _inputs(bundle, prompts: list[str], dev):
    tok = bundle.tokenizer
    tok.padding_side = "left"  # decoder-only models continue from the last real token
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    if enc["input_ids"].shape[1] == 0:
        raise ConfigError("The prompt is empty.", hint="Type a few words for the model to continue.")
    return {k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask")}


def generate_batch(bundle, prompts: list[str], settings: GenerationSettings, device: str = "cpu") -> list[str]:
    """Continuations (without the prompt) for several prompts at once."""
    import torch

    from core.device import resolve_device

    dev = resolve_device(device)
    bundle.model.to(dev).eval()
    prompts = [p if p.strip() else (bundle.tokenizer.eos_token or " ") for p in prompts]
    enc = _inputs(bundle, prompts, dev)
    torch.manual_seed(settings.seed)
    with torch.inference_mode():
        out = bundle.model.generate(**enc, **settings.generate_kwargs(bundle.tokenizer))
    new = out[:, enc["input_ids"].shape[1] :]
    return bundle.tokenizer.batch_decode(new, skip_special_tokens=True)


def generate(bundle, prompt: str, settings: GenerationSettings, device: str = "cpu") -> str:
    return generate_batch(bundle, [prompt], settings, device)[0]


def stream(bundle, prompt: str, settings: GenerationSettings, device: str = "cpu") -> Iterator[str]:
    """Yield text pieces as they are generated (generate runs in a worker thread feeding a streamer)."""
    import torch
    from transformers import TextIteratorStreamer

    from core.device import resolve_device

    if not prompt.strip():
        raise ConfigError("The prompt is empty.", hint="Type a few words for the model to continue.")
    if settings.strategy == "beam":
        # transformers cannot stream beam search (the best beam is known only at the end).
        yield generate(bundle, prompt, settings, device)
        return
    dev = resolve_device(device)
    bundle.model.to(dev).eval()
    enc = _inputs(bundle, [prompt], dev)
    streamer = TextIteratorStreamer(bundle.tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            torch.manual_seed(settings.seed)
            with torch.inference_mode():
                bundle.model.generate(**enc, **settings.generate_kwargs(bundle.tokenizer), streamer=streamer)
        except BaseException as err:  # surfaced to the caller below, never lost in the thread
            errors.append(err)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if errors:
        raise errors[0]
