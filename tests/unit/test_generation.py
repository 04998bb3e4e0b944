"""Decoding (greedy, sampling, beam, repetition penalty, streaming) and batched class probabilities."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.generation import GenerationSettings, generate, generate_batch, predict_proba, ready_end, stream
from core.models import build_model
from tests.conftest import toy_sentiment_rows

PROMPT = "the movie was"


@pytest.fixture(scope="module")
def lm():
    """The generation default, untrained: decoding behaviour does not need a good model, only a fixed one."""
    texts = [t + "." for t, _ in toy_sentiment_rows(300, seed=1)]
    return build_model("default", "generation", train_texts=texts, max_length=32, seed=0)


def settings(**kw) -> GenerationSettings:
    return GenerationSettings(**{"max_new_tokens": 16, "repetition_penalty": 1.0, **kw})


def test_greedy_is_deterministic(lm):
    first = generate(lm, PROMPT, settings())
    assert first == generate(lm, PROMPT, settings(seed=123))  # the seed plays no part in greedy decoding
    assert len(lm.tokenizer(first, add_special_tokens=False)["input_ids"]) >= 8
    assert not first.startswith(PROMPT)  # only the continuation comes back


def test_sampling_with_a_seed_is_reproducible(lm):
    a = generate(lm, PROMPT, settings(strategy="sample", seed=1))
    assert a == generate(lm, PROMPT, settings(strategy="sample", seed=1))
    assert a != generate(lm, PROMPT, settings(strategy="sample", seed=2))
    assert a != generate(lm, PROMPT, settings())


def test_beam_search_returns_text_and_differs_in_strategy(lm):
    beam = generate(lm, PROMPT, settings(strategy="beam", num_beams=3))
    assert isinstance(beam, str) and beam
    assert beam == generate(lm, PROMPT, settings(strategy="beam", num_beams=3))
    kwargs = settings(strategy="beam", num_beams=3).generate_kwargs(lm.tokenizer)
    assert kwargs["num_beams"] == 3 and kwargs["do_sample"] is False


def test_repetition_penalty_is_applied(lm):
    def most_repeated(text: str) -> int:
        ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        return Counter(ids).most_common(1)[0][1]

    plain = generate(lm, PROMPT, settings(repetition_penalty=1.0))
    penalised = generate(lm, PROMPT, settings(repetition_penalty=3.0))
    # The untrained model loops on one token; a strong penalty breaks the loop.
    assert most_repeated(plain) >= 8
    assert most_repeated(penalised) < most_repeated(plain)


def test_stream_pieces_concatenate_to_the_greedy_output(lm):
    pieces = list(stream(lm, PROMPT, settings()))
    assert len(pieces) > 1  # it really streams, piece by piece
    assert "".join(pieces) == generate(lm, PROMPT, settings())
    beam_pieces = list(stream(lm, PROMPT, settings(strategy="beam", num_beams=2)))
    assert beam_pieces == [generate(lm, PROMPT, settings(strategy="beam", num_beams=2))]


def test_stream_batches_tokens_by_time_after_the_first_word(lm):
    sample = settings(strategy="sample", seed=5, max_new_tokens=24)
    per_token = list(stream(lm, PROMPT, sample, interval=0.0))
    batched = list(stream(lm, PROMPT, sample, interval=60.0))
    assert "".join(per_token) == "".join(batched) == generate(lm, PROMPT, sample)  # seeded sampling repeats
    # With a long interval only the first word goes out early (after any leading spaces), the rest at the end.
    assert len(batched) <= 3 and batched[-2].strip()
    assert len(per_token) > len(batched)


def test_closing_the_stream_stops_generation_and_restores_grad_mode(lm):
    calls = []
    hook = lm.model.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    try:
        pieces = stream(lm, PROMPT, settings(max_new_tokens=200), interval=0.0)
        first = next(p for p in pieces if p.strip())
        assert first and torch.is_grad_enabled() and not torch.is_inference_mode_enabled()  # caller's own modes
        pieces.close()  # what Streamlit does when Stop ends the script run
        stopped_after = len(calls)
        assert stopped_after < 20 and not any(calls)  # generate ran without grad and stopped early
        assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
        assert len(generate(lm, PROMPT, settings(max_new_tokens=30))) > 0 and len(calls) > stopped_after
    finally:
        hook.remove()


def test_an_error_inside_generate_reaches_the_reader(lm):
    def fail_on_third(_module, _args, _out, seen=[]):  # noqa: B006 (counts calls across this one hook)
        seen.append(1)
        if len(seen) == 3:
            raise RuntimeError("model broke")

    hook = lm.model.register_forward_hook(fail_on_third)
    try:
        with pytest.raises(RuntimeError, match="model broke"):
            list(stream(lm, PROMPT, settings(), interval=0.0))
    finally:
        hook.remove()
    assert "".join(stream(lm, PROMPT, settings())) == generate(lm, PROMPT, settings())  # nothing left behind


def test_ready_end_holds_back_only_what_may_change():
    assert ready_end(" the movie", 0, done=False) == len(" the movie")  # letters and spaces go out at once
    assert ready_end(" great, the pl", 0, done=False) == len(" great, the ")  # a symbol waits for a space
    assert ready_end(" caf\ufffd", 1, done=False) == 1  # an incomplete character waits
    assert ready_end(" caf\ufffd", 1, done=True) == len(" caf\ufffd")  # the end flushes everything
    assert ready_end("line one.\n", 0, done=False) == len("line one.\n")


def test_batched_generation_matches_one_by_one(lm):
    prompts = [PROMPT, "a", "the plot and the actors were"]
    batch = generate_batch(lm, prompts, settings(max_new_tokens=8))
    assert batch == [generate(lm, p, settings(max_new_tokens=8)) for p in prompts]


def test_empty_prompt_and_bad_settings_are_clear_errors(lm):
    with pytest.raises(ConfigError, match="prompt is empty"):
        list(stream(lm, "   ", settings()))
    assert isinstance(generate(lm, "", settings(max_new_tokens=4)), str)  # generate starts from end-of-text
    for bad in ({"strategy": "nucleus"}, {"max_new_tokens": 0}, {"temperature": 0}, {"top_p": 0},
                {"repetition_penalty": 0.5}, {"num_beams": 32}):  # fmt: skip
        with pytest.raises(ConfigError, match="Setting '"):
            GenerationSettings(**bad)


@pytest.fixture(scope="module")
def classifier(tiny_bert_dir):
    return build_model(str(tiny_bert_dir), "classification", label_names=["a", "b", "c"], seed=0)


def test_predict_proba_rows_sum_to_one_in_input_order(classifier):
    texts = ["short", "a much longer sentence with many more words in it than the others", "medium length text"]
    probs = predict_proba(classifier, texts, batch_size=2, max_length=32)
    assert probs.shape == (3, 3)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and (probs >= 0).all()
    # Batches are sorted by length inside; rows still come back in the caller's order.
    reversed_probs = predict_proba(classifier, texts[::-1], batch_size=2, max_length=32)
    assert np.allclose(reversed_probs[::-1], probs, atol=1e-4)
    single = predict_proba(classifier, [texts[1]], max_length=32)
    assert np.allclose(single[0], probs[1], atol=1e-2)  # alone (no padding) or batched: the same answer


def test_predict_regression_returns_values(tiny_bert_dir):
    bundle = build_model(str(tiny_bert_dir), "regression", seed=0)
    values = predict_proba(bundle, ["one", "two words", "three words here"], max_length=32)
    assert values.shape == (3, 1) and np.isfinite(values).all()
