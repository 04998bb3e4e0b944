"""The benchmarks' generated texts: the "wide" short sentences have a vocabulary of real size, the same opinions."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import common  # noqa: E402


def _sentences(make, n: int = 1500):
    rng = random.Random(0)
    return [make(rng) for _ in range(n)]


def test_wide_sentences_have_a_vocabulary_of_real_size_where_short_ones_have_a_handful():
    short = {w for text, _ in _sentences(common.short_sentence) for w in text.split()}
    wide = {w for text, _ in _sentences(common.wide_sentence) for w in text.split()}
    assert len(short) < 200
    assert len(wide) > 3000


def test_wide_sentences_keep_the_opinions_that_decide_their_labels_and_their_lengths():
    rows = _sentences(common.wide_sentence)
    opinions = set(common._GOOD) | set(common._BAD)
    assert all(opinions & set(text.split()) for text, _ in rows)
    assert 0.35 < sum(label for _, label in rows) / len(rows) < 0.65
    lengths = [len(text.split()) for text, _ in rows]
    assert 15 < sum(lengths) / len(lengths) < 25 and max(lengths) <= 51
    assert _sentences(common.wide_sentence, 50) == rows[:50]  # deterministic for a seed
