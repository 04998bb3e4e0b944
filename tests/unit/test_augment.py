"""core.augment: each operation, determinism, frame handling and the preview."""

from __future__ import annotations

import pandas as pd
import pytest

from core.augment import OPS, SYNONYMS, augment_frame, augment_texts, preview
from core.errors import DataError

TEXTS = [
    "The movie was really good and the acting was great.",
    "I hate this boring film with its slow and predictable plot.",
    "A quiet story about a small town.",
    "Zyx qwv plmb trnk.",
]


@pytest.mark.parametrize("op", OPS)
def test_each_op_changes_text_deterministically(op):
    first = augment_texts(TEXTS, [op], 2, seed=5)
    assert first == augment_texts(TEXTS, [op], 2, seed=5)
    assert len(first) == len(TEXTS) * 2
    originals = [t for t in TEXTS for _ in range(2)]
    changed = sum(new != old for new, old in zip(first, originals, strict=True))
    assert changed >= 7, (op, first)


def test_different_seeds_give_different_texts():
    assert augment_texts(TEXTS, list(OPS), 3, seed=1) != augment_texts(TEXTS, list(OPS), 3, seed=2)


def test_row_results_do_not_depend_on_other_rows():
    alone = augment_texts(TEXTS[:2], ["delete"], 1, seed=9)
    together = augment_texts(TEXTS, ["delete"], 1, seed=9)
    assert together[:2] == alone


def test_delete_removes_words_but_keeps_order_and_some_text():
    for original, new in zip(TEXTS, augment_texts(TEXTS, ["delete"], 1, seed=3), strict=True):
        old_words, new_words = original.split(), new.split()
        assert 1 <= len(new_words) < len(old_words)
        it = iter(old_words)
        assert all(w in it for w in new_words), "remaining words keep their order"


def test_swap_keeps_the_same_words():
    for original, new in zip(TEXTS, augment_texts(TEXTS, ["swap"], 1, seed=3), strict=True):
        assert sorted(new.split()) == sorted(original.split())
        assert new != original


def test_synonym_uses_the_dictionary_and_keeps_case_and_punctuation():
    new = augment_texts(["Good."], ["synonym"], 1, seed=0)[0]
    assert new[:-1].lower() in SYNONYMS["good"] and new[0].isupper() and new.endswith(".")
    new = augment_texts(["the film was bad"], ["synonym"], 1, seed=4)[0]
    changed = [(a, b) for a, b in zip(["the", "film", "was", "bad"], new.split(), strict=True) if a != b]
    assert changed and all(b in SYNONYMS[a] for a, b in changed)


def test_synonym_falls_back_to_character_noise():
    text = "Zyx qwv plmb trnk."
    new = augment_texts([text], ["synonym"], 1, seed=0)[0]
    assert new != text and len(new.split()) == len(text.split())


def test_char_noise_keeps_word_count_and_changes_few_characters():
    text = TEXTS[0]
    new = augment_texts([text], ["char_noise"], 1, seed=2)[0]
    assert len(new.split()) == len(text.split())
    differing = sum(a != b for a, b in zip(text.split(), new.split(), strict=True))
    assert 1 <= differing <= 2


def test_builtin_synonym_dictionary_is_substantial():
    assert len(SYNONYMS) >= 150
    assert all(alts and word not in alts for word, alts in SYNONYMS.items())


def test_ops_cycle_so_each_is_used():
    # With one copy per op, every text gets each op once: the swap copy keeps the word multiset.
    new = augment_texts([TEXTS[0]], ["delete", "swap"], 2, seed=0)
    assert len(new[0].split()) < len(TEXTS[0].split())
    assert sorted(new[1].split()) == sorted(TEXTS[0].split())


def test_nothing_to_do():
    assert augment_texts(TEXTS, ["swap"], 0, seed=0) == []
    assert augment_texts(TEXTS, [], 3, seed=0) == []
    assert augment_texts(["", "   "], ["delete"], 1, seed=0) == ["", "   "]
    assert augment_texts(["one"], ["swap", "delete"], 2, seed=0)[0] != "one"


def test_unknown_op_is_rejected():
    with pytest.raises(DataError, match="backtranslate"):
        augment_texts(TEXTS, ["backtranslate"], 1, seed=0)


def test_augment_frame_keeps_labels_and_pairs():
    frame = pd.DataFrame({"text": TEXTS[:3], "text_pair": ["p0", "p1", "p2"], "label": [0, 1, 0]}, index=[10, 11, 12])
    out = augment_frame(frame, ["swap", "delete"], 2, seed=1)
    assert len(out) == 9 and list(out.index) == list(range(9))
    pd.testing.assert_frame_equal(out.iloc[:3], frame.reset_index(drop=True))
    assert out["label"].tolist()[3:] == [0, 0, 1, 1, 0, 0]
    assert out["text_pair"].tolist()[3:] == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert out["text"].tolist()[3:] == augment_texts(TEXTS[:3], ["swap", "delete"], 2, seed=1)
    assert augment_frame(frame, ["swap"], 0, seed=1).equals(frame.reset_index(drop=True))


def test_preview_shows_what_training_gets():
    pairs = preview(TEXTS, ["synonym", "char_noise"], seed=4, n=3)
    assert [orig for orig, _ in pairs] == TEXTS[:3]
    assert [new for _, new in pairs] == augment_texts(TEXTS, ["synonym", "char_noise"], 1, seed=4)[:3]
    assert preview(TEXTS, [], seed=0, n=2) == [(TEXTS[0], TEXTS[0]), (TEXTS[1], TEXTS[1])]
