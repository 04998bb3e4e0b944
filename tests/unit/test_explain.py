"""Token attributions: the word that decides the label gets the largest share; IG adds up; HTML is escaped."""

from __future__ import annotations

import pytest
import torch

from core import models
from core.errors import ConfigError
from core.explain import explain, to_html
from core.runs import RunStore
from core.training import train
from tests.conftest import NEGATIVE, POSITIVE, tiny_run_config, toy_sentiment_rows
from tests.unit.test_strategies import one_thread  # noqa: F401 - autouse: tiny models, one thread

SENTIMENT = set(POSITIVE) | set(NEGATIVE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir):
    """The tiny BERT after a short training on sentences decided by one sentiment word among filler."""
    root = tmp_path_factory.mktemp("explain")
    data = root / "toy.csv"
    data.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in toy_sentiment_rows(240)) + "\n")
    config = tiny_run_config(data, tiny_bert_dir, epochs=4, learning_rate=3e-3)
    run = RunStore(root / "runs").create(config)
    result = train(config, run)
    assert result.state == "finished" and result.results["test"]["accuracy"] >= 0.9
    return models.load_for_inference(run.model_dir)


def _log_odds_of(bundle, text: str, target: int, blank: bool) -> float:
    """The target's log-odds for the text, or for the same text with every word blanked (IG's baseline)."""
    enc = bundle.tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    special = enc.pop("special_tokens_mask").bool()[0]
    with torch.no_grad():
        embeds = bundle.model.get_input_embeddings()(enc.pop("input_ids"))
        if blank:
            embeds = torch.where(special[None, :, None], embeds, torch.zeros_like(embeds))
        logits = bundle.model(inputs_embeds=embeds, **enc).logits[0]
    return float(logits[target] - logits[1 - target])


def _deciding_vs_filler(scores) -> tuple[float, float]:
    deciding = [abs(s) for w, s in scores if w in SENTIMENT]
    filler = [abs(s) for w, s in scores if w not in SENTIMENT]
    return deciding[0], max(filler)


def test_gradient_x_input_ranks_the_deciding_word_first(trained):
    sentences = toy_sentiment_rows(20, seed=11)
    wins, deciding_all, filler_all = 0, [], []
    for text, _ in sentences:
        scores = explain(trained, text, method="gradient_x_input")
        assert [w for w, _ in scores] == text.split()
        deciding, filler = _deciding_vs_filler(scores)
        wins += deciding > filler
        deciding_all.append(deciding)
        filler_all.extend(abs(s) for w, s in scores if w not in SENTIMENT)
    # Chance would put the one deciding word first in about 1 sentence in 7; the exact count moves with the
    # short training's trajectory, so the bound leaves room while staying far above chance.
    assert wins >= 15, f"the sentiment word was the strongest in only {wins} of 20 sentences"
    mean_deciding, mean_filler = sum(deciding_all) / len(deciding_all), sum(filler_all) / len(filler_all)
    assert mean_deciding > 3 * mean_filler, (mean_deciding, mean_filler)


def test_integrated_gradients_credit_the_word_that_moves_the_prediction(trained):
    """IG explains the change from an empty input. A short-trained model often has a default class (the empty
    input gets it): sentences of the other class are decided by their sentiment word, and IG must credit it."""
    moved, stayed = [], []
    for text, _ in toy_sentiment_rows(20, seed=11):
        scores = explain(trained, text)
        predicted = int(_log_odds_of(trained, text, 1, blank=False) > 0)
        default = int(_log_odds_of(trained, text, 1, blank=True) > 0)
        (moved if predicted != default else stayed).append(scores)
    assert len(moved) >= 5
    wins = sum(d > f for d, f in map(_deciding_vs_filler, moved))
    assert wins >= len(moved) - 1, f"the sentiment word led in {wins} of {len(moved)} decided sentences"

    # Where the text only confirms the default, much less needed explaining.
    def total(scores):
        return abs(sum(s for _, s in scores))

    if stayed:
        assert max(map(total, stayed)) < min(map(total, moved))


def test_integrated_gradients_add_up_to_the_change_of_the_log_odds(trained):
    text = "the plot was superb on sunday"
    scores = explain(trained, text, target="positive", steps=128)
    change = _log_odds_of(trained, text, 1, blank=False) - _log_odds_of(trained, text, 1, blank=True)
    assert sum(s for _, s in scores) == pytest.approx(change, rel=0.05)
    assert dict(scores)["superb"] > 0  # pushes towards 'positive'
    assert dict(explain(trained, text, target="negative", steps=128))["superb"] < 0


def test_word_pieces_merge_into_the_words_of_the_text(trained):
    text, pair = "Unbelievably charming!", "a tedious plot"
    pieces = explain(trained, text, pair, merge_words=False, method="gradient_x_input")
    words = explain(trained, text, pair, method="gradient_x_input")
    assert len(pieces) > len(words)
    assert [w for w, _ in words] == ["Unbelievably", "charming", "!", "a", "tedious", "plot"]
    assert sum(s for _, s in words) == pytest.approx(sum(s for _, s in pieces), abs=1e-5)


def test_bad_requests_are_clear_errors(trained):
    with pytest.raises(ConfigError, match="not one of the model's labels"):
        explain(trained, "a film", target="neutral")
    with pytest.raises(ConfigError, match="empty"):
        explain(trained, "   ")
    with pytest.raises(ConfigError, match="method"):
        explain(trained, "a film", method="shap")


def test_html_is_escaped_and_coloured_by_sign():
    page = to_html([("<script>alert(1)</script>", 0.5), ("dull", -1.0), ("film", 0.0)])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "rgba(22,163,74,0.42)" in page  # half the strongest score, towards the class
    assert "rgba(220,38,38,0.85)" in page  # the strongest, against it
    assert to_html([]) == '<div style="line-height:2"></div>'
