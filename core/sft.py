"""Supervised fine-tuning of causal LMs: the data shapes, the chat template, response-only labels, packing.

A generation dataset comes in one of three shapes (``data_shape``):

- ``corpus``: plain text (column ``text``); continued pre-training, packed into blocks by ``batching.encode_blocks``;
- ``pairs``: a prompt (``text``) and a response (``text_pair``), optionally a ``system`` message per row
  (Alpaca's ``instruction`` / ``input`` / ``output`` become prompt = instruction + input, response = output);
- ``chat``: conversations (``messages``, a JSON list of ``{role, content}``; ShareGPT's ``conversations`` with
  ``from`` / ``value`` is read into the same form), multi-turn.

Pairs and chats are both conversations here, formatted with the tokenizer's own chat template
(``apply_chat_template``) or, when it has none, with ``DEFAULT_TEMPLATE``::

    <|system|>\\n{system}\\n<|user|>\\n{prompt}\\n<|assistant|>\\n{response}<eos>

Every assistant turn ends with the EOS token (or the template's own end-of-turn token), and only assistant
tokens are learned (labels -100 elsewhere) unless ``train_on_prompt``. Generation formats the prompt with the
same template (``prompt_text``) and stops at ``stop_token_ids``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.errors import DataError

IGNORE = -100  # label of a token the loss skips (transformers' and torch's convention)
CHAT_COLUMNS = ("messages", "conversations")
# ShareGPT's speaker names, and a few others seen in the wild, mapped to the chat roles templates know.
ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
}
SYSTEM_MARK, USER_MARK, ASSISTANT_MARK = "<|system|>", "<|user|>", "<|assistant|>"
MARKERS = (SYSTEM_MARK, USER_MARK, ASSISTANT_MARK)
# The template used when a tokenizer has none (the built-in tiny GPT-2 gets it, with the markers as single tokens).
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}" + SYSTEM_MARK + "\n{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}" + USER_MARK + "\n{{ message['content'] }}\n"
    "{% else %}" + ASSISTANT_MARK + "\n{{ message['content'] }}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT_MARK + "\n{% endif %}"
)
SHAPES = ("corpus", "pairs", "chat")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@dataclass
class SftOptions:
    """How a generation run turns its data into training examples (saved with the model in workbench.json)."""

    shape: str = "corpus"
    train_on_prompt: bool = False
    packing: bool = False

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> SftOptions | None:
        if not isinstance(meta, dict):
            return None
        return cls(**{k: meta[k] for k in ("shape", "train_on_prompt", "packing") if k in meta})

    @property
    def formatted(self) -> bool:
        """Whether prompts go through the chat template (pairs and chats) rather than being continued as text."""
        return self.shape in ("pairs", "chat")


# ----------------------------------------------------------------------------------------------- data shapes
def chat_columns_to_json(records: list[dict[str, Any]]) -> None:
    """Turn chat lists (``messages`` / ``conversations``) in JSON records into JSON text, in place, so they pass
    the reader's rule against nested values and are stored in Parquet like any text column."""
    for record in records:
        for key in CHAT_COLUMNS:
            if isinstance(record.get(key), list):
                record[key] = json.dumps(record[key], ensure_ascii=False)


def chat_column(frame) -> str | None:
    """The column holding conversations, if the frame has one (by name; its content is checked when parsed)."""
    lower = {str(c).strip().lower(): str(c) for c in frame.columns}
    return next((lower[name] for name in CHAT_COLUMNS if name in lower), None)


def parse_messages(value: Any, where: str) -> list[dict[str, str]]:
    """One conversation as ``[{role, content}]`` (ShareGPT's ``from`` / ``value`` mapped); DataError if malformed."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(
                f"{where} is not a list of messages.",
                hint='Each conversation must look like [{"role": "user", "content": "..."}, '
                '{"role": "assistant", "content": "..."}].',
            ) from None
    if not isinstance(value, list):
        raise DataError(f"{where} is not a list of messages.", hint="Each conversation must be a list of turns.")
    out = []
    for turn in value:
        if not isinstance(turn, dict):
            raise DataError(f"{where} has a turn that is not an object.", hint="Each turn needs a role and a content.")
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        mapped = ROLES.get(str(role).strip().lower()) if role is not None else None
        if mapped is None:
            raise DataError(
                f"{where} has a turn with the role {role!r}.",
                hint="Use the roles system, user and assistant (ShareGPT's human and gpt are read as user and "
                "assistant).",
            )
        out.append({"role": mapped, "content": "" if content is None else str(content).strip()})
    return out


def standardize(frame, columns, name: str, notes: list[str]):
    """Standardized generation frame: ``text`` + ``text_pair`` [+ ``system``] for pairs, ``messages`` (JSON) +
    ``text`` (the conversation as plain text, for the tokenizer and for display) for chats.

    Rows without a response (or a conversation without an assistant turn) are left out and noted.
    """
    import pandas as pd

    if columns.text in _chat_names(frame):
        convs, texts, keep = [], [], []
        for i, value in enumerate(frame[columns.text].tolist()):
            msgs = parse_messages(value, f"Row {i + 1} of {name}")
            ok = any(m["role"] == "assistant" and m["content"] for m in msgs)
            keep.append(ok)
            convs.append(json.dumps(msgs, ensure_ascii=False))
            texts.append("\n".join(m["content"] for m in msgs))
        out = pd.DataFrame({"text": texts, "messages": convs})
        keep = pd.Series(keep)
        if (~keep).any():
            notes.append(f"{int((~keep).sum()):,} conversation(s) of {name} with no assistant answer were left out.")
        return out[keep.to_numpy()].reset_index(drop=True)
    prompt = _text(frame[columns.text])
    if getattr(columns, "instruction", None):
        instruction = _text(frame[columns.instruction])
        # Alpaca: the instruction, then the input when there is one.
        prompt = instruction.where(prompt == "", instruction + "\n\n" + prompt).str.strip()
    out = pd.DataFrame({"text": prompt, "text_pair": _text(frame[columns.text_pair])})
    if getattr(columns, "system", None):
        out["system"] = _text(frame[columns.system])
    keep = out["text_pair"] != ""
    if (~keep).any():
        notes.append(f"{int((~keep).sum()):,} row(s) of {name} with an empty response were left out.")
    return out[keep].reset_index(drop=True)


def _chat_names(frame) -> set[str]:
    return {str(c) for c in frame.columns if str(c).strip().lower() in CHAT_COLUMNS}


def _text(series):
    return series.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip())


def data_shape(frame) -> str:
    """corpus, pairs or chat, from a standardized frame's columns."""
    if "messages" in frame:
        return "chat"
    return "pairs" if "text_pair" in frame else "corpus"


def conversations(frame) -> list[list[dict[str, str]]]:
    """Every row of a standardized pairs or chat frame as a conversation."""
    if "messages" in frame:
        return [json.loads(m) for m in frame["messages"]]
    systems = frame["system"].tolist() if "system" in frame else [""] * len(frame)
    out = []
    for system, prompt, response in zip(systems, frame["text"].astype(str), frame["text_pair"].astype(str)):
        msgs = [{"role": "system", "content": system}] if system else []
        out.append(msgs + [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}])
    return out


def tokenizer_texts(frame) -> list[str]:
    """What the built-in model's tokenizer trains on: prompts and responses alike (not the prompts only)."""
    texts = frame["text"].astype(str).tolist()
    if "text_pair" in frame:
        texts += frame["text_pair"].astype(str).tolist()
    if "system" in frame:
        texts += [s for s in frame["system"].astype(str) if s]
    return texts


# ----------------------------------------------------------------------------------------------- the template
def ensure_template(tokenizer) -> None:
    """Give a tokenizer without a chat template the default one (saved with it, so every later use formats alike)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_TEMPLATE


def render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The conversation as text through the tokenizer's template. Templates that refuse a system turn (Gemma's)
    get it folded into the first user message."""
    ensure_template(tokenizer)
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as err:  # noqa: BLE001 - jinja's TemplateError, raised by the template's own checks
        if not messages or messages[0]["role"] != "system" or "system" not in str(err).lower():
            raise
        folded = [dict(m) for m in messages[1:]]
        first = next((m for m in folded if m["role"] == "user"), None)
        if first is not None:
            first["content"] = f"{messages[0]['content']}\n\n{first['content']}"
        return tokenizer.apply_chat_template(folded, tokenize=False, add_generation_prompt=add_generation_prompt)


def prompt_text(tokenizer, prompt: str | list[dict[str, str]], system: str | None = None) -> str:
    """The text a formatted model continues: the conversation so far (or one user prompt) and the answer's start."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system:
        messages = [{"role": "system", "content": system}, *messages]
    return render(tokenizer, messages, add_generation_prompt=True)


def stop_token_ids(tokenizer) -> list[int]:
    """EOS and the template's end-of-turn token when it is another special token (Qwen's <|im_end|>, Llama 3's
    <|eot_id|>, Gemma's <end_of_turn>): generation stops at either."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    probe = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    try:
        before = render(tokenizer, probe[:1], add_generation_prompt=True)
        full = render(tokenizer, probe)
    except Exception:  # noqa: BLE001 - a template that cannot render the probe: EOS alone
        return ids
    tail = full[len(before) :]
    tail = tail[tail.find("a") + 1 :]
    first = tokenizer(tail, add_special_tokens=False)["input_ids"][:1]
    if first and first[0] in set(tokenizer.all_special_ids) and first[0] not in ids:
        ids.append(first[0])
    return ids


# ----------------------------------------------------------------------------------------------- tokenization
@dataclass
class Example:
    """One tokenized conversation: ids, labels (IGNORE where not learned) and what truncation did."""

    input_ids: list[int]
    labels: list[int]
    prompt_tokens: int
    response_tokens: int
    response_cut: bool = False
    prompt_cut: bool = False


def _pieces(tokenizer, messages: list[dict[str, str]]) -> list[tuple[str, str]] | None:
    """The rendered conversation cut into (kind, text) pieces: 'context' (earlier turns), 'head' (the last prompt up
    to the end of its user text), 'tail' (the template's text between the prompt and the answer), 'answer' (an
    assistant turn with its end token). Earlier answers are 'answer' pieces too. None: no assistant turn."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return None
    messages = messages[: last + 1]
    pieces: list[tuple[str, str]] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True)
        through = render(tokenizer, messages[: i + 1])
        start = _common_prefix(before, through)
        prompt_part = through[len(done) : start]
        if i == last:
            user = next((x["content"] for x in reversed(messages[:i]) if x["role"] == "user"), "")
            cut = prompt_part.rfind(user) + len(user) if user and user in prompt_part else len(prompt_part)
            pieces += [("head", prompt_part[:cut]), ("tail", prompt_part[cut:])]
        else:
            pieces.append(("context", prompt_part))
        pieces.append(("answer", through[start:]))
        done = through
    return pieces


def _common_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def encode_conversations(
    tokenizer, convs: list[list[dict[str, str]]], max_length: int, train_on_prompt: bool = False
) -> list[Example | None]:
    """Tokenize conversations into examples of at most ``max_length`` tokens (None where a conversation has no
    answer). Pieces are tokenized separately, so the prompt's tokens are exactly those generation will see."""
    stops = set(stop_token_ids(tokenizer))
    eos = tokenizer.eos_token_id
    all_pieces = [_pieces(tokenizer, c) for c in convs]
    flat = [text for pieces in all_pieces if pieces for _, text in pieces]
    ids = iter(tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else [])
    out: list[Example | None] = []
    for pieces in all_pieces:
        if pieces is None:
            out.append(None)
            continue
        parts = []
        for kind, _ in pieces:
            piece_ids = list(next(ids))
            if kind == "answer" and eos is not None and not stops.intersection(piece_ids):
                piece_ids.append(eos)  # every answer ends with EOS, whatever the template writes
            parts.append([kind, piece_ids])
        out.append(_assemble(parts, max_length, train_on_prompt))
    return out


def _assemble(parts: list[list], max_length: int, train_on_prompt: bool) -> Example:
    """Truncate (oldest turns first, then the end of the last prompt's text, the answer last) and label."""
    total = sum(len(p[1]) for p in parts)
    excess = total - max_length
    response = len(parts[-1][1])
    prompt_cut = response_cut = False
    head = max(i for i, p in enumerate(parts) if p[0] == "head")
    for i in range(head):  # earlier turns, from the oldest
        if excess <= 0:
            break
        drop = min(excess, len(parts[i][1]))
        parts[i][1] = parts[i][1][drop:]
        excess -= drop
        prompt_cut = True
    if excess > 0:  # the end of the last prompt's text; its start and the template's answer marker stay
        drop = min(excess, len(parts[head][1]))
        parts[head][1] = parts[head][1][: len(parts[head][1]) - drop]
        excess -= drop
        prompt_cut = True
    for i in (-1, head + 1):  # then the answer's end (it loses its EOS), and at worst the template's marker
        if excess > 0:
            drop = min(excess, len(parts[i][1]))
            parts[i][1] = parts[i][1][: len(parts[i][1]) - drop]
            excess -= drop
            response_cut = True
    input_ids: list[int] = []
    labels: list[int] = []
    for kind, piece in parts:
        input_ids += piece
        learned = kind == "answer" or train_on_prompt
        labels += piece if learned else [IGNORE] * len(piece)
    if labels:
        labels[0] = IGNORE  # nothing in the example predicts its first token (packing puts another example before)
    return Example(input_ids, labels, len(input_ids) - len(parts[-1][1]), response, response_cut, prompt_cut)


def encode_frame(tokenizer, frame, max_length: int, *, train_on_prompt: bool = False, packing: bool = False):
    """A standardized pairs/chat split as an ``Encoded`` with per-token labels (packed rows when ``packing``)."""
    from core.batching import Encoded, pack

    examples = [e for e in encode_conversations(tokenizer, conversations(frame), max_length, train_on_prompt) if e]
    examples = [e for e in examples if any(x != IGNORE for x in e.labels)]
    data = Encoded(
        [e.input_ids for e in examples],
        None,
        None,
        max_length,
        token_labels=[e.labels for e in examples],
    )
    return pack(data, max_length) if packing else data


def encode_for_run(bundle, frame, max_length: int):
    """The generation branch of training's encoding: pairs/chats as labelled examples, a corpus as packed blocks."""
    from core.batching import encode_blocks

    options = getattr(bundle, "sft", None) or SftOptions(data_shape(frame))
    if data_shape(frame) == "corpus":
        return encode_blocks(bundle.tokenizer, frame["text"].astype(str).tolist(), max_length)
    return encode_frame(
        bundle.tokenizer, frame, max_length, train_on_prompt=options.train_on_prompt, packing=options.packing
    )


def options_for_run(config, prepared) -> SftOptions:
    """The run's SftOptions from its config and data (the shape is the data's)."""
    return SftOptions(data_shape(prepared.train), config.train.train_on_prompt, config.train.packing)


# ----------------------------------------------------------------------------------------------- data check
def findings(frame, columns, max_length: int, tokenizer=None) -> list:
    """The data check's lines for prompt/response and chat data: lengths, answers cut by max_length, empty
    answers, one prompt with different answers. Token counts are estimated from words without a tokenizer.

    Each line is (level, title, detail): core.data makes them its Findings (core.data imports this module).
    """

    std = standardize(frame, columns, "the file", [])
    empty = len(frame) - len(std)
    out = []
    if empty:
        out.append(("warning", "Empty responses", f"{empty:,} row(s) have no response and will be left out."))
    else:
        out.append(("ok", "Empty responses", "Every row has a response."))
    if len(std) == 0:
        return out
    convs = conversations(std)
    if tokenizer is not None:
        examples = [e for e in encode_conversations(tokenizer, convs, max_length) if e]
        prompts = [e.prompt_tokens for e in examples]
        responses = [e.response_tokens for e in examples]
        cut = sum(e.response_cut for e in examples)
        unit = "tokens"
    else:

        def words(text: str) -> int:  # CJK has no spaces: one character is about one token
            return round(len(text.split()) * 1.3) + len(CJK.findall(text))

        prompts = [sum(words(m["content"]) for m in c if m["role"] != "assistant") + 4 for c in convs]
        responses = [words(next(m["content"] for m in reversed(c) if m["role"] == "assistant")) + 1 for c in convs]
        cut = sum(r + min(p, 8) > max_length for p, r in zip(prompts, responses))
        unit = "tokens (estimated from words)"
    out.append(
        (
            "ok",
            "Prompt and response length",
            f"Prompts: typically {int(np.median(prompts))} {unit}, longest {max(prompts):,}. "
            f"Responses: typically {int(np.median(responses))}, longest {max(responses):,}.",
        )
    )
    if cut:
        out.append(
            (
                "warning",
                "Responses cut",
                f"{cut:,} response(s) do not fit in the maximum length of {max_length} tokens even with the prompt "
                "shortened, so their end (and the stop token) is cut. Raise the maximum length.",
            )
        )
    else:
        out.append(("ok", "Responses cut", f"Every response fits in {max_length} {unit}."))
    if "messages" not in std:
        per_prompt = std.groupby(std["text"])["text_pair"].nunique()
        conflicting = per_prompt[per_prompt > 1]
        if len(conflicting):
            example = str(conflicting.index[0])[:60]
            out.append(
                (
                    "warning",
                    "Conflicting answers",
                    f'{len(conflicting):,} prompt(s) appear with different responses (e.g. "{example}"). '
                    "The model learns a mix of them; keep one answer per prompt if one is right.",
                )
            )
    return out
