"""Chinese data (issue 16): legacy encodings, Chinese headers, lengths in characters, augmentation, the samples,
and the note pointing to Chinese models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.augment import OPS, augment_texts
from core.augment_zh import SYNONYMS
from core.cjk import CHINESE_MODELS, chinese_share, header_key
from core.data import ColumnChoice, check_data, guess_columns, model_finding, read_table, token_lengths
from core.i18n import finding_text

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
ROWS_ZH = [
    ("这部电影真的很好看，演员的表演非常自然。", "正面"),
    ("剧情拖沓，看到一半就睡着了。", "负面"),
    ("服务态度很差，等了一个小时才上菜。", "负面"),
    ("酒店干净整洁，早餐也很丰富，下次还住这里。", "正面"),
]


def write_csv(folder: Path, name: str, header: tuple[str, str], rows: list[tuple[str, str]], encoding: str) -> Path:
    text = ",".join(header) + "\n" + "".join(f"{a},{b}\n" for a, b in rows)
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("encoding", "named"), [("gbk", "GB18030/GBK"), ("gb2312", "GB18030/GBK"), ("gb18030", "GB18030/GBK")]
)
def test_simplified_chinese_legacy_encodings_read_the_right_characters(tmp_path, encoding, named):
    rows = ROWS_ZH * 3
    table = read_table(write_csv(tmp_path, f"{encoding}.csv", ("文本", "标签"), rows, encoding))
    assert list(table.frame.columns) == ["文本", "标签"]
    assert table.frame["文本"].tolist() == [r[0] for r in rows]
    assert table.frame["标签"].tolist() == [r[1] for r in rows]
    assert table.encoding == "gb18030"
    assert any(named in n and "Simplified Chinese" in n for n in table.notes), table.notes


def test_gb18030_characters_outside_gbk_survive(tmp_path):
    # An emoji and a rare character (𠀀, CJK extension B) have only four-byte GB18030 codes: GBK cannot hold them.
    rows = [("表情😀很好看，演员的表演非常自然。", "正面"), ("𠀀字很少见，看到一半就睡着了。", "负面")] * 3
    table = read_table(write_csv(tmp_path, "gb18030.csv", ("文本", "标签"), rows, "gb18030"))
    assert table.frame["文本"].tolist() == [r[0] for r in rows]


def test_big5_reads_traditional_chinese(tmp_path):
    rows = [("這部電影真的很好看，演員的表演非常自然。", "正面"), ("劇情拖沓，看到一半就睡著了。", "負面")] * 3
    table = read_table(write_csv(tmp_path, "big5.csv", ("文本", "標籤"), rows, "big5"))
    assert table.encoding == "big5"
    assert table.frame["文本"].tolist() == [r[0] for r in rows] and table.frame["標籤"].iloc[1] == "負面"
    assert any("Big5" in n and "Traditional Chinese" in n for n in table.notes), table.notes
    assert guess_columns(table.frame, "classification") == ColumnChoice("文本", None, "標籤")


def test_shift_jis_reads_japanese(tmp_path):
    rows = [("この映画は本当に面白かったです。", "肯定"), ("話が長くて途中で寝てしまった。", "否定")] * 3
    table = read_table(write_csv(tmp_path, "sjis.csv", ("テキスト", "ラベル"), rows, "shift_jis"))
    assert table.encoding == "cp932"
    assert table.frame["テキスト"].tolist() == [r[0] for r in rows]
    assert any("Shift-JIS" in n for n in table.notes), table.notes


def test_a_short_gbk_file_is_not_taken_for_korean(tmp_path):
    # Unisolated, charset-normalizer calls these bytes cp949 (Korean): the reader only considers the three codecs.
    table = read_table(write_csv(tmp_path, "short.csv", ("文本", "标签"), [("好看", "正面"), ("难看", "负面")], "gbk"))
    assert table.frame.to_dict("list") == {"文本": ["好看", "难看"], "标签": ["正面", "负面"]}


def test_latin1_whose_bytes_pair_into_valid_gbk_stays_latin1(tmp_path):
    # ï+v, é+â, â+t, û+t are all valid two-byte GBK codes: only the Han share of the letters tells them apart.
    rows = [("naïve théâtre", "1"), ("mauvais goût", "0")] * 5
    table = read_table(write_csv(tmp_path, "fr.csv", ("text", "label"), rows, "latin-1"))
    assert table.encoding == "latin-1" and table.frame["text"].iloc[0] == "naïve théâtre"


def test_utf8_chinese_is_read_without_a_note(tmp_path):
    table = read_table(write_csv(tmp_path, "u8.csv", ("文本", "标签"), ROWS_ZH, "utf-8"))
    assert table.encoding == "utf-8" and table.notes == []


# ---------------------------------------------------------------------------------------------- headers


def test_chinese_headers_are_guessed():
    assert header_key(" 标签 ") == "label" and header_key("Text") == "text" and header_key("備註") == "備註"
    frame = pd.DataFrame({"编号": [1, 2, 3], "评论": ["很好看的电影", "真难看", "还行吧"], "类别": ["好", "坏", "好"]})
    assert guess_columns(frame, "classification") == ColumnChoice("评论", None, "类别")
    qa = pd.DataFrame({"问题": ["天空是什么颜色？", "一年有几个月？"], "回答": ["蓝色。", "十二个月。"]})
    assert guess_columns(qa, "generation") == ColumnChoice("问题", "回答", None)
    scores = pd.DataFrame({"句子": ["一般般", "很好", "太差了"], "评分": [3.0, 4.5, 1.0]})
    assert guess_columns(scores, "regression") == ColumnChoice("句子", None, "评分")


def test_chinese_header_row_is_recognised_as_a_header(tmp_path):
    # The texts have no spaces, so the word-shape votes say nothing: the known header names decide.
    rows = [(f"第{i}条内容很长很长的评论", f"类{i % 2}") for i in range(10)]
    table = read_table(write_csv(tmp_path, "h.csv", ("内容", "情感"), rows, "utf-8"))
    assert table.has_header and list(table.frame.columns) == ["内容", "情感"]


def test_bundled_chinese_samples_guess_their_columns():
    sentiment = read_table(SAMPLES / "sentiment_zh.csv").frame
    assert guess_columns(sentiment, "classification") == ColumnChoice("文本", None, "标签")
    headlines = read_table(SAMPLES / "headlines_zh.csv").frame
    assert guess_columns(headlines, "generation") == ColumnChoice("正文", "标题", None)


# ---------------------------------------------------------------------------------------------- lengths


def test_token_estimate_counts_chinese_characters():
    # One token per Han character (MiniLM splits Chinese into characters), 1.3 per word for the rest.
    assert token_lengths(["这部电影很好看", "a good film", "我爱 Python 编程"]) == [7, 4, 4 + 1]
    assert token_lengths(["好看", "good one"], ["难看", "bad"]) == [4, 4]


def test_token_estimate_is_close_to_minilm_on_chinese(minilm_dir):
    from transformers import AutoTokenizer

    texts = [t for t, _ in ROWS_ZH]
    exact = token_lengths(texts, tokenizer=AutoTokenizer.from_pretrained(minilm_dir))
    estimate = token_lengths(texts)
    # The real count adds [CLS] and [SEP]; punctuation are single tokens in both.
    assert all(abs(e + 2 - x) <= 2 for e, x in zip(estimate, exact, strict=True)), (estimate, exact)


def test_data_check_gives_lengths_in_characters_for_chinese():
    frame = read_table(SAMPLES / "sentiment_zh.csv").frame
    report = check_data(frame, ColumnChoice("文本", None, "标签"), "classification")
    found = {f.title: f for f in report.findings}
    chars = sorted(frame["文本"].str.len())
    length = found["Length in characters"]
    assert length.params["typical"] == chars[len(chars) // 2] and length.params["longest"] == chars[-1]
    assert f"at most {chars[-1]}" in length.detail
    title, detail = finding_text(length, "zh")
    assert title == "字数" and f"最长 {chars[-1]} 字" in detail
    # The word-based estimate no longer calls a whole sentence one word.
    assert min(report.token_lengths) >= 10


def test_english_data_gets_no_chinese_findings():
    frame = read_table(SAMPLES / "sentiment.csv").frame
    report = check_data(frame, ColumnChoice("text", None, "label"), "classification")
    assert not [f for f in report.findings if f.key.startswith("check.chinese.")]
    assert chinese_share(frame["text"]) == 0


def test_mostly_chinese_data_points_to_chinese_models():
    frame = read_table(SAMPLES / "sentiment_zh.csv").frame
    report = check_data(frame, ColumnChoice("文本", None, "标签"), "classification")
    note = next(f for f in report.findings if f.key == "check.chinese.classifier")
    assert note.level == "warning" and report.usable
    assert all(model in note.detail for model in CHINESE_MODELS["classification"])
    assert "MiniLM" in note.detail and "85% test accuracy" in note.detail and "100% on the English" in note.detail
    # bert-base-uncased's vocabulary, which MiniLM uses, holds 244 Han characters: most of the sample's are [UNK].
    assert note.params["known"] == 244 and 0.6 < note.params["unknown"] < 0.9
    _, detail = finding_text(note, "zh")
    assert "bert-base-chinese" in detail and "内置模型" in detail
    generation = model_finding(SAMPLES / "headlines_zh.csv", "正文", "generation")
    assert generation is not None and "Qwen/" in generation.detail
    assert model_finding(SAMPLES / "sentiment.csv", "text", "classification") is None


def test_chinese_share_ignores_japanese_and_counts_mixed_text():
    assert chinese_share(["この映画は面白い", "話が長い"]) == 0
    assert chinese_share(["我用 Python 写代码和做数据", "hello world", "", "今天天气很好"]) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------- augmentation

TEXTS_ZH = [
    "这家酒店虽然位置很好，但是隔音太差，一晚上没睡好。",
    "总的来说，这部电影剧情很精彩，结局也让人满意。",
    "质量不错，物流也快。",
    "服务态度非常差",
]


@pytest.mark.parametrize("op", OPS)
def test_each_op_changes_chinese_text_deterministically(op):
    first = augment_texts(TEXTS_ZH, [op], 2, seed=5)
    assert first == augment_texts(TEXTS_ZH, [op], 2, seed=5)
    originals = [t for t in TEXTS_ZH for _ in range(2)]
    assert all(new != old for new, old in zip(first, originals, strict=True)), first
    # Character operations never insert the spaces the English path joins words with.
    assert all(" " not in new for new in first)


def test_chinese_swap_exchanges_whole_clauses_within_a_sentence():
    new = augment_texts(["质量不错，物流也快。会回购的。"], ["swap"], 1, seed=0)[0]
    assert new == "物流也快，质量不错。会回购的。"


def test_chinese_delete_drops_a_filler_word():
    new = augment_texts(["服务态度非常差"], ["delete"], 1, seed=1)[0]
    assert new == "服务态度差"


def test_chinese_synonym_uses_the_table():
    text = "这部电影剧情很精彩"
    new = augment_texts([text], ["synonym"], 1, seed=2)[0]
    changed = [word for word in ("电影", "剧情", "精彩") if word not in new]
    assert changed and all(any(alt in new for alt in SYNONYMS[word]) for word in changed), new


def test_chinese_char_noise_makes_an_input_method_typo():
    new = augment_texts(["他在家里做饭"], ["char_noise"], 1, seed=3)[0]
    assert len(new) == len("他在家里做饭") and sum(a != b for a, b in zip(new, "他在家里做饭", strict=True)) == 1


# ---------------------------------------------------------------------------------------------- samples


def test_chinese_samples_are_regenerated_identically(tmp_path):
    subprocess.run([sys.executable, str(SAMPLES / "make_samples_zh.py"), str(tmp_path)], check=True, timeout=300)
    for name in ("sentiment_zh.csv", "headlines_zh.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name


def test_chinese_samples_are_balanced_unique_and_chinese():
    sentiment = read_table(SAMPLES / "sentiment_zh.csv").frame
    assert len(sentiment) == 400 and not sentiment["文本"].duplicated().any()
    assert sentiment["标签"].value_counts().to_dict() == {"正面": 200, "负面": 200}
    assert chinese_share(sentiment["文本"]) == 1.0
    headlines = read_table(SAMPLES / "headlines_zh.csv").frame
    assert len(headlines) == 160 and not headlines["标题"].duplicated().any()
    assert (headlines["正文"].str.len() > 2 * headlines["标题"].str.len()).all()
