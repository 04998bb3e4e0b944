"""Simple text augmentation for training data: word deletion, word swap, synonyms and typo noise.

Chinese texts (no spaces between words) get the character-level versions of the same operations in core.augment_zh.

Each new example gets its own random generator seeded from (seed, row, copy), so a row's augmentations
do not change when other rows are added or removed, and the same seed always gives the same texts.
"""

from __future__ import annotations

import random
import re
from functools import cache

import pandas as pd

from core.errors import DataError

OPS = ("delete", "swap", "synonym", "char_noise")

# Common English words (weighted towards reviews, stories and everyday talk) and close substitutes.
_SYNONYM_TABLE = """
good: great fine nice decent | bad: poor awful terrible lousy | great: excellent superb terrific wonderful
excellent: outstanding superb first-rate | terrible: awful dreadful horrible | awful: terrible dreadful appalling
nice: pleasant lovely agreeable | happy: glad cheerful joyful content | sad: unhappy gloomy sorrowful downcast
big: large huge sizeable | small: little tiny modest | large: big huge vast | little: small tiny slight
fast: quick rapid swift | quick: fast rapid swift | slow: sluggish unhurried leisurely | old: aged elderly ancient
new: fresh recent novel | young: youthful junior | beautiful: lovely gorgeous pretty stunning
pretty: lovely attractive charming | ugly: unattractive hideous unsightly | boring: dull tedious tiresome
dull: boring tedious dreary | interesting: engaging fascinating intriguing | funny: amusing hilarious comic
smart: clever bright intelligent | clever: smart bright ingenious | stupid: foolish silly dumb
silly: foolish daft absurd | easy: simple effortless straightforward | hard: difficult tough demanding
difficult: hard tough tricky | simple: easy plain basic | strange: odd unusual peculiar | odd: strange unusual
weird: strange odd bizarre | important: significant major key | angry: annoyed furious irritated
scared: afraid frightened fearful | afraid: scared frightened fearful | tired: weary exhausted sleepy
quiet: silent calm hushed | loud: noisy booming | calm: peaceful tranquil serene | rich: wealthy affluent
poor: weak inferior | strong: powerful sturdy robust | weak: feeble frail flimsy | brave: bold daring fearless
kind: gentle caring friendly | friendly: kind warm welcoming | cold: chilly cool icy | hot: warm heated scorching
warm: cosy mild pleasant | wet: damp soaked moist | dry: arid parched | dark: dim gloomy murky | bright: vivid shining
clean: spotless tidy | dirty: filthy grimy messy | empty: vacant bare | full: packed filled crowded
movie: film picture | film: movie picture | story: tale plot narrative | plot: storyline story
actor: performer player | scene: sequence moment | ending: finale conclusion | start: beginning opening
book: novel volume | song: tune track | music: score soundtrack | show: programme series
house: home dwelling | home: house residence | car: vehicle automobile | road: street lane path
street: road avenue | city: town metropolis | town: village city | child: kid youngster | kid: child youngster
man: fellow gentleman | woman: lady | friend: companion pal mate | boss: manager chief | job: work position
work: labour effort | money: cash funds | problem: issue difficulty trouble | issue: problem matter
idea: notion thought concept | answer: reply response | question: query | mistake: error slip blunder
error: mistake fault | help: assist aid support | begin: start commence | end: finish conclude
finish: complete end | look: glance peek | see: notice spot observe | watch: view observe | say: state mention
tell: inform notify | ask: inquire request | get: obtain receive acquire | buy: purchase acquire
make: create build produce | use: employ utilise | like: enjoy appreciate | love: adore cherish
hate: detest loathe dislike | want: wish desire | need: require | think: believe reckon suppose
know: understand realise | try: attempt | choose: pick select | keep: retain hold | reveal: show expose
walk: stroll wander stride | run: sprint dash jog | jump: leap hop spring | laugh: chuckle giggle
cry: weep sob | shout: yell call | eat: consume devour | fix: repair mend | break: smash shatter
very: really extremely truly | really: truly genuinely very | quite: fairly rather pretty
often: frequently regularly | sometimes: occasionally | always: constantly invariably | never: not once
maybe: perhaps possibly | almost: nearly practically | quickly: rapidly swiftly | slowly: gradually leisurely
completely: totally entirely utterly | totally: completely entirely | mostly: largely mainly
enjoyable: pleasant entertaining delightful | amazing: astonishing incredible remarkable
wonderful: marvellous delightful fantastic | fantastic: wonderful brilliant superb | brilliant: superb excellent
horrible: awful dreadful nasty | perfect: flawless ideal | fine: okay alright decent | okay: fine alright acceptable
predictable: formulaic foreseeable | clumsy: awkward heavy-handed | moving: touching poignant stirring
"""
SYNONYMS: dict[str, list[str]] = {
    word.strip(): alternatives.split()
    for entry in _SYNONYM_TABLE.replace("\n", "|").split("|")
    if ":" in entry
    for word, alternatives in [entry.split(":", 1)]
}

# Neighbouring keys on a QWERTY keyboard: real typos mostly hit a key next to the intended one.
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    ch: "".join(
        r[j] for r2, r in enumerate(_KEY_ROWS) if abs(r2 - row) <= 1 for j in range(max(0, i - 1), min(len(r), i + 2))
    ).replace(ch, "")
    for row, keys in enumerate(_KEY_ROWS)
    for i, ch in enumerate(keys)
}
_WORD = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


def augment_texts(texts: list[str], ops: list[str], multiplier: int, seed: int) -> list[str]:
    """Return only the new examples: ``multiplier`` augmented copies of each text, in row order."""
    _check_ops(ops)
    if multiplier <= 0 or not ops:
        return []
    return [_augment(text, ops, i, k, seed) for i, text in enumerate(texts) for k in range(multiplier)]


def augment_frame(
    frame: pd.DataFrame, ops: list[str], multiplier: int, seed: int, *, text_column: str = "text"
) -> pd.DataFrame:
    """The frame followed by its augmented copies; labels and the second text are kept, index reset."""
    new_texts = augment_texts(_texts(frame[text_column]), ops, multiplier, seed)
    if not new_texts:
        return frame.reset_index(drop=True)
    copies = frame.iloc[[i for i in range(len(frame)) for _ in range(multiplier)]].copy()
    copies[text_column] = new_texts
    return pd.concat([frame, copies], ignore_index=True)


def preview(texts: list[str], ops: list[str], seed: int, n: int = 5) -> list[tuple[str, str]]:
    """(original, augmented) for the first ``n`` texts: exactly the first copy training would get."""
    _check_ops(ops)
    if not ops:
        return [(t, t) for t in texts[:n]]
    return [(text, _augment(text, ops, i, 0, seed)) for i, text in enumerate(texts[:n])]


def _check_ops(ops: list[str]) -> None:
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise DataError(f"Unknown augmentation {unknown}.", hint=f"Choose from {', '.join(OPS)}.")


def _texts(series: pd.Series) -> list[str]:
    return ["" if pd.isna(v) else str(v) for v in series]


def _augment(text: str, ops: list[str], row: int, copy: int, seed: int) -> str:
    # Cycling through ops gives each op an equal share; string seeds hash with SHA-512, stable across runs.
    op = ops[(row + copy) % len(ops)]
    rng = random.Random(f"{seed}/{row}/{copy}")
    if _is_chinese(text):  # no spaces between words: character-level operations (core.augment_zh)
        from core.augment_zh import augment_chinese

        return augment_chinese(text, op, rng)
    words = text.split()
    if not words:
        return text
    handlers = {"delete": _delete, "swap": _swap, "synonym": _synonym, "char_noise": _char_noise}
    return " ".join(handlers[op](words, rng))


def _is_chinese(text: str) -> bool:
    from core.cjk import cjk_letter_share

    return cjk_letter_share(text) >= 0.3


def _how_many(words: list[str], share: float) -> int:
    return max(1, round(len(words) * share))


def _delete(words: list[str], rng: random.Random) -> list[str]:
    if len(words) < 2:
        return _char_noise(words, rng)
    kept = [w for w in words if rng.random() >= 0.15]
    if len(kept) == len(words):
        drop = rng.randrange(len(words))
        kept = words[:drop] + words[drop + 1 :]
    return kept or [rng.choice(words)]


def _swap(words: list[str], rng: random.Random) -> list[str]:
    if len(words) < 2 or len(set(words)) < 2:
        return _char_noise(words, rng)
    out = list(words)
    for _ in range(_how_many(words, 0.1)):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    if out == words:  # swapped two equal words; force a visible change
        i = next(i for i in range(len(out) - 1) if out[i] != out[i + 1])
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _synonym(words: list[str], rng: random.Random) -> list[str]:
    cores = [_WORD.match(w).groups() for w in words]
    options = [(i, _synonyms_of(core.lower())) for i, (_, core, _) in enumerate(cores)]
    options = [(i, alts) for i, alts in options if alts]
    if not options:
        return _char_noise(words, rng)
    out = list(words)
    for i, alts in rng.sample(options, min(len(options), _how_many(words, 0.15))):
        before, core, after = cores[i]
        out[i] = before + _match_case(rng.choice(alts), core) + after
    return out


def _synonyms_of(word: str) -> list[str]:
    return SYNONYMS.get(word) or _wordnet_synonyms(word)


@cache
def _wordnet_synonyms(word: str) -> list[str]:
    """WordNet lemmas when nltk and its data are installed (never downloaded here); else nothing."""
    if not word.isalpha() or len(word) < 4:
        return []
    wordnet = _wordnet()
    if wordnet is None:
        return []
    names = {lemma.name().replace("_", " ") for syn in wordnet.synsets(word)[:3] for lemma in syn.lemmas()}
    return sorted(n for n in names if n.lower() != word and " " not in n)


@cache
def _wordnet():
    try:
        from nltk.corpus import wordnet

        wordnet.synsets("good")  # raises LookupError when the corpus data is absent
        return wordnet
    except Exception:  # nltk missing, data missing, or a broken install: all mean "no WordNet"
        return None


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _char_noise(words: list[str], rng: random.Random) -> list[str]:
    candidates = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 3] or list(range(len(words)))
    out = list(words)
    for i in rng.sample(candidates, min(len(candidates), _how_many(words, 0.12))):
        out[i] = _typo(out[i], rng)
    return out


def _typo(word: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(word) if c.isalpha()] or list(range(len(word)))
    i = rng.choice(letters)
    kind = rng.choice(("swap", "drop", "double", "neighbour")) if len(word) > 1 else "double"
    if kind == "swap" and i + 1 < len(word) and word[i + 1].isalpha() and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop" and len(word) > 2:
        return word[:i] + word[i + 1 :]
    if kind == "neighbour" and word[i].lower() in _NEIGHBOURS:
        new = rng.choice(_NEIGHBOURS[word[i].lower()])
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]
    return word[:i] + word[i] + word[i:]
