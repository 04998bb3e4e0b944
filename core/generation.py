"""Batched prediction with class probabilities, and generation: greedy, beam, sampling, streaming."""

from __future__ import annotations

import contextlib
import time
import unicodedata
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
            raise ConfigError(
                "error.config.setting", field="strategy", detail="error.config.one_of", choices=list(STRATEGIES)
            )
        if not 1 <= self.max_new_tokens <= 2048:
            raise ConfigError(
                "error.config.setting", field="max_new_tokens", detail="error.config.between", lo=1, hi=2048
            )
        if not 1 <= self.num_beams <= 16:
            raise ConfigError("error.config.setting", field="num_beams", detail="error.config.between", lo=1, hi=16)
        if not 0.01 <= self.temperature <= 5.0:
            raise ConfigError("error.config.setting", field="temperature", detail="error.config.between", lo=0.01, hi=5)
        if not 0 <= self.top_k <= 1000:
            raise ConfigError("error.config.setting", field="top_k", detail="error.config.between_off", lo=0, hi=1000)
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("error.config.setting", field="top_p", detail="error.config.above_zero_at_most_one")
        if not 1.0 <= self.repetition_penalty <= 3.0:
            raise ConfigError(
                "error.config.setting", field="repetition_penalty", detail="error.config.between_off", lo=1, hi=3
            )

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
    from core.scoring import score_encoded, softmax

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


Prompt = str | list  # a text, or a conversation so far: [{"role": "user", "content": ...}, ...]


def _formatted(bundle) -> bool:
    sft = getattr(bundle, "sft", None)
    return bool(sft is not None and sft.formatted)


def format_prompts(bundle, prompts: list[Prompt]) -> list[str]:
    """The text the model continues: for a run trained on prompt/response or chat data, each prompt through the
    run's chat template (ending with the answer's start); for a plain-text run, the prompt itself."""
    if not _formatted(bundle):
        return [p if isinstance(p, str) else "\n".join(m["content"] for m in p) for p in prompts]
    from core.sft import prompt_text

    return [prompt_text(bundle.tokenizer, p) for p in prompts]


def _kwargs(bundle, settings: GenerationSettings) -> dict:
    kwargs = settings.generate_kwargs(bundle.tokenizer)
    if _formatted(bundle):
        from core.sft import stop_token_ids

        kwargs["eos_token_id"] = stop_token_ids(bundle.tokenizer)  # EOS and the template's end of turn
    return kwargs


def _is_empty(prompt: Prompt) -> bool:
    if isinstance(prompt, str):
        return not prompt.strip()
    return not prompt or not str(prompt[-1].get("content", "")).strip()


def _inputs(bundle, prompts: list[Prompt], dev):
    tok = bundle.tokenizer
    tok.padding_side = "left"  # decoder-only models continue from the last real token
    enc = tok(format_prompts(bundle, prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    if enc["input_ids"].shape[1] == 0:
        raise ConfigError("error.generation.empty_prompt", hint="error.hint.type_prompt")
    return {k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask")}


def generate_batch(bundle, prompts: list[Prompt], settings: GenerationSettings, device: str = "cpu") -> list[str]:
    """Answers (only the new text, up to the stop token) for several prompts at once."""
    return [text for text, _ in generate_with_stops(bundle, prompts, settings, device)]


def generate_with_stops(
    bundle, prompts: list[Prompt], settings: GenerationSettings, device: str = "cpu"
) -> list[tuple[str, bool]]:
    """(answer, whether it ended with a stop token rather than at max_new_tokens) for each prompt."""
    import torch

    from core.device import resolve_device

    dev = resolve_device(device)
    bundle.model.to(dev).eval()
    if not _formatted(bundle):
        prompts = [p if not _is_empty(p) else (bundle.tokenizer.eos_token or " ") for p in prompts]
    enc = _inputs(bundle, prompts, dev)
    kwargs = _kwargs(bundle, settings)
    torch.manual_seed(settings.seed)
    with torch.inference_mode():
        out = bundle.model.generate(**enc, **kwargs)
    new = out[:, enc["input_ids"].shape[1] :]
    stops = kwargs["eos_token_id"]
    stops = set(stops if isinstance(stops, list) else [stops])
    texts = bundle.tokenizer.batch_decode(new, skip_special_tokens=True)
    return [(text, bool(stops & set(row.tolist()))) for text, row in zip(texts, new)]


def generate(bundle, prompt: Prompt, settings: GenerationSettings, device: str = "cpu") -> str:
    return generate_batch(bundle, [prompt], settings, device)[0]


# After the first word, the stream hands text back at most this often: generate keeps the thread in between.
STREAM_INTERVAL_S = 0.04


class _TokenFeed:
    """A transformers streamer (duck-typed) that collects token ids and hands control back to the reader.

    generate runs in a greenlet on the reader's own thread: a worker thread starts a second OpenMP team, and with
    more OpenMP threads than cores libgomp stops spinning between parallel regions, which made a 4-layer model
    ~25% slower per token than the same generate in the caller's thread. ``put`` only appends ids (decoding the
    whole text per token sat on generate's critical path) and switches to the reader when text is due: at every
    token until the first word is out, then every ``interval`` seconds.
    """

    def __init__(self, reader, interval: float) -> None:
        self.ids: list[int] = []
        self.reader = reader
        self.interval = interval
        self.due = 0.0  # perf_counter time after which the next token hands control back
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # generate first puts the prompt
            self._prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        if time.perf_counter() >= self.due:
            self.reader.switch()

    def end(self) -> None:
        pass


def ready_end(text: str, shown: int, done: bool) -> int:
    """How much of ``text`` (the decoded continuation so far, ``shown`` characters already out) is safe to show.

    The rule of transformers' TextStreamer: letters, digits and spaces go out at once; other symbols wait for
    the next space (they may be an incomplete character or the start of some formatting). All at the end.
    """
    pending = text[shown:]
    if done or pending.endswith("\n"):
        return len(text)
    if all(ch.isspace() or unicodedata.category(ch)[0] in "LMN" for ch in pending):
        return len(text)
    return shown + max(pending.rfind(" "), pending.rfind("\n")) + 1


def stream(
    bundle, prompt: Prompt, settings: GenerationSettings, device: str = "cpu", interval: float = STREAM_INTERVAL_S
) -> Iterator[str]:
    """Yield text pieces as they are generated: the first word at once, then what is new every ``interval`` s.

    The pieces concatenate to ``generate``'s text. Iterate in one thread. Closing the generator early (the
    Playground's Stop ends the script run that consumes it) stops generate at once.
    """
    import torch
    from greenlet import GreenletExit, getcurrent, greenlet
    from greenlet import error as greenlet_error

    from core.device import resolve_device

    if _is_empty(prompt):
        raise ConfigError("error.generation.empty_prompt", hint="error.hint.type_prompt")
    if settings.strategy == "beam":
        # transformers cannot stream beam search (the best beam is known only at the end).
        yield generate(bundle, prompt, settings, device)
        return
    dev = resolve_device(device)
    bundle.model.to(dev).eval()
    enc = _inputs(bundle, [prompt], dev)
    feed = _TokenFeed(getcurrent(), interval)
    # generate's no_grad / inference mode are thread-local, so they would leak into the caller's code between
    # pieces: each piece is yielded under the caller's own modes.
    caller_modes = (torch.is_inference_mode_enabled(), torch.is_grad_enabled())

    def work() -> None:
        torch.manual_seed(settings.seed)
        with torch.inference_mode():
            bundle.model.generate(**enc, **_kwargs(bundle, settings), streamer=feed)

    worker = greenlet(work)
    shown = 0
    try:
        while not worker.dead:
            worker.switch()  # runs generate until text is due or it ends; its errors surface here
            text = bundle.tokenizer.decode(feed.ids, skip_special_tokens=True)
            end = ready_end(text, shown, worker.dead)
            if end > shown:
                piece, shown = text[shown:end], end
                if piece.strip():  # the first word is out: from now on, batch tokens by time
                    feed.due = time.perf_counter() + interval
                with torch.inference_mode(caller_modes[0]), torch.set_grad_enabled(caller_modes[1]):
                    yield piece
    finally:
        if not worker.dead:
            # Closed by the garbage collector on another thread, greenlet ends it on its own thread instead.
            with contextlib.suppress(greenlet_error):
                worker.throw(GreenletExit)  # the reader has gone: unwind generate where it stands
