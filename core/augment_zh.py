"""Augmentation for Chinese text, which has no spaces between words (``core.augment`` calls it per text).

Character-level operations, not a word segmenter. jieba, the usual segmenter, had its last release (0.42.1) in
January 2020 and builds a 5 MB dictionary in about a second in every new process; what each operation needs can be
had without it:

- delete drops filler words a sentence reads well without (degree adverbs, modal particles), else one character;
- swap exchanges two clauses between Chinese commas (a natural reordering), else two neighbouring characters
  (transposed characters are the classic Chinese typo readers read straight through);
- synonym replaces words from a hand-written table of near-synonyms, matched longest first (keys have two
  characters or more, so a replacement never lands inside another word by accident of one character);
- char_noise makes the typos of a pinyin input method: a character swapped for a same-sounding one (的/地/得,
  在/再, 做/作 …), else a doubled character.

Every operation changes the text when it can, and takes its randomness from the generator it is given.
"""

from __future__ import annotations

import random
import re

from core.cjk import HAN

# Words a sentence keeps its meaning without.
# Single characters only where they are rarely part of a longer word (not 太 of 太阳, 都 of 首都, 吧 of 酒吧).
_FILLERS = ("真的", "确实", "非常", "特别", "实在", "相当", "十分", "简直", "其实", "很", "啊", "呀", "哦")
_PUNCT = re.compile(r"([，；、,;。！？!?])")
_CLAUSE_BREAKS = set("，；、,;")

_SYNONYM_TABLE = """
好看: 精彩 耐看 | 难看: 不好看 丑 | 精彩: 出彩 好看 | 喜欢: 喜爱 中意 | 讨厌: 厌恶 反感 | 非常: 十分 特别 相当
特别: 非常 格外 | 十分: 非常 相当 | 满意: 称心 满足 | 失望: 扫兴 沮丧 | 便宜: 实惠 划算 | 漂亮: 好看 美丽
干净: 整洁 洁净 | 整洁: 干净 整齐 | 舒服: 舒适 惬意 | 舒适: 舒服 惬意 | 方便: 便利 便捷 | 电影: 影片
影片: 电影 片子 | 剧情: 情节 故事 | 情节: 剧情 | 质量: 品质 | 品质: 质量 | 价格: 价钱 售价 | 味道: 口味 滋味
口味: 味道 | 糟糕: 差劲 糟透了 | 无聊: 乏味 没意思 | 乏味: 无聊 枯燥 | 有趣: 有意思 好玩
朋友: 友人 伙伴 | 觉得: 感觉 认为 | 认为: 觉得 以为 | 以后: 今后 往后 | 马上: 立刻 立即 | 立刻: 马上 立即
一般: 普通 平平 | 不错: 挺好 还好 | 开心: 高兴 快乐 | 高兴: 开心 愉快 | 难过: 伤心 难受 | 生气: 恼火 气愤
谢谢: 感谢 多谢 | 购买: 购入 入手 | 迅速: 快速 飞快 | 缓慢: 迟缓 | 美丽: 漂亮 好看 | 优秀: 出色 杰出
出色: 优秀 出众 | 糟糕透了: 差劲透了 | 浪费: 白费 | 感人: 动人 打动人
"""
SYNONYMS: dict[str, list[str]] = {
    word.strip(): alternatives.split()
    for entry in _SYNONYM_TABLE.replace("\n", "|").split("|")
    if ":" in entry
    for word, alternatives in [entry.split(":", 1)]
    if len(word.strip()) >= 2
}
_SYNONYM_WORDS = re.compile("|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)))

# Characters a pinyin input method confuses (same or near sound), each with its usual mix-ups.
_HOMOPHONES = {
    "的": "地得", "地": "的得", "得": "的地", "在": "再", "再": "在", "做": "作", "作": "做", "已": "以", "以": "已",
    "那": "哪", "哪": "那", "他": "她它", "她": "他它", "它": "他她", "象": "像", "像": "象", "即": "既", "既": "即",
    "帐": "账", "账": "帐", "坐": "座", "座": "坐", "进": "近", "近": "进", "须": "需", "需": "须", "到": "道",
    "道": "到", "是": "事", "事": "是", "买": "卖", "卖": "买", "和": "合", "合": "和", "就": "旧", "见": "件",
    "件": "见", "位": "为", "为": "位", "住": "注", "注": "住",
}  # fmt: skip


def augment_chinese(text: str, op: str, rng: random.Random) -> str:
    """One altered copy of a Chinese ``text`` by ``op`` (delete, swap, synonym or char_noise)."""
    handlers = {"delete": _delete, "swap": _swap, "synonym": _synonym, "char_noise": _char_noise}
    return handlers[op](text, rng)


def _han_positions(text: str) -> list[int]:
    return [m.start() for m in HAN.finditer(text)]


def _delete(text: str, rng: random.Random) -> str:
    spots = [(m.start(), m.end()) for word in _FILLERS for m in re.finditer(re.escape(word), text)]
    # A filler that is the whole text, or the text's only Han characters, is not dropped: nothing would be left.
    spots = [(a, b) for a, b in spots if len(_han_positions(text[:a] + text[b:])) >= 2]
    if spots:
        a, b = rng.choice(sorted(spots))
        return text[:a] + text[b:]
    han = _han_positions(text)
    if len(han) < 4:
        return _char_noise(text, rng)
    i = rng.choice(han)
    return text[:i] + text[i + 1 :]


def _swap(text: str, rng: random.Random) -> str:
    # parts alternate text and punctuation; two clauses are neighbours when a comma (not a full stop) parts them.
    parts = _PUNCT.split(text)
    pairs = [
        i
        for i in range(0, len(parts) - 2, 2)
        if parts[i + 1] in _CLAUSE_BREAKS and parts[i].strip() and parts[i + 2].strip() and parts[i] != parts[i + 2]
    ]
    if pairs:
        i = rng.choice(pairs)
        parts[i], parts[i + 2] = parts[i + 2], parts[i]
        return "".join(parts)
    han = _han_positions(text)
    neighbours = [i for i in han if i + 1 < len(text) and HAN.match(text[i + 1]) and text[i] != text[i + 1]]
    if not neighbours:
        return _char_noise(text, rng)
    i = rng.choice(neighbours)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _synonym(text: str, rng: random.Random) -> str:
    found = list(_SYNONYM_WORDS.finditer(text))
    if not found:
        return _char_noise(text, rng)
    chosen = rng.sample(found, max(1, round(0.3 * len(found))))
    out, end = [], 0
    for m in sorted(chosen, key=lambda m: m.start()):
        out += [text[end : m.start()], rng.choice(SYNONYMS[m.group()])]
        end = m.end()
    return "".join(out) + text[end:]


def _char_noise(text: str, rng: random.Random) -> str:
    spots = [i for i, ch in enumerate(text) if ch in _HOMOPHONES]
    if spots:
        i = rng.choice(spots)
        return text[:i] + rng.choice(_HOMOPHONES[text[i]]) + text[i + 1 :]
    han = _han_positions(text)
    if not han:
        return text
    i = rng.choice(han)
    return text[:i] + text[i] + text[i:]  # a doubled character, as a held key gives
