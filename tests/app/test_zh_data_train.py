"""The Data and Train pages in Chinese (issue 16): labels, messages and options read in Chinese, no English prose
is left in what the pages themselves write, and the option values the code and session state use stay English."""

from __future__ import annotations

import re

from core.datasets import DatasetSettings, DatasetStore
from tests.app.conftest import button, no_exception, open_app, widget

# Words a Chinese practitioner writes in English too, and identifiers the pages quote (option values, file and
# column names are removed before the check; see english_prose).
KEPT_IN_ENGLISH = {
    "token", "dropout", "alpha", "rank", "auto", "adamw", "adam", "sgd", "adafactor", "linear", "cosine",
    "polynomial", "constant", "cpu", "cuda", "mps", "instruction", "input", "messages", "role", "content",
    "from", "value", "conversations", "delete", "swap", "synonym", "tensorboard", "logdir", "workspace", "runs",
    "huggingface", "com", "torch",
}  # fmt: skip
# Identifiers: backquoted code, names with _ . / - or digits, capitalised names (MiniLM, LoRA, ShareGPT, CSV...).
IDENTIFIER = re.compile(r"`[^`]*`|\S*[_./\\\d-]\S*|\b[A-Z][A-Za-z]*\b")


def english_prose(text: str) -> list[str]:
    """English words left in ``text`` once identifiers and the terms kept in English are taken out."""
    words = re.findall(r"[A-Za-z]{3,}", IDENTIFIER.sub(" ", text))
    return [w for w in words if w.lower() not in KEPT_IN_ENGLISH]


# Parts of these pages that other modules draw (ui/label_review.py, ui/probes.py): their own tests cover them.
OTHERS_HEADINGS = {"Find label errors"}
OTHERS_EXPANDERS = ("Probe sentences",)


def _others(at) -> set[int]:
    """The elements other modules draw: the label review section (to the end of the page) and the probes."""
    found: set[int] = set()
    after_heading = False

    def visit(node, inside: bool) -> None:
        nonlocal after_heading
        if getattr(node, "type", "") == "subheader" and node.value in OTHERS_HEADINGS:
            after_heading = True
        label = getattr(node, "label", "") if getattr(node, "type", "") == "expandable" else ""
        inside = inside or after_heading or (isinstance(label, str) and label.startswith(OTHERS_EXPANDERS))
        if inside:
            found.add(id(node))
        for child in getattr(node, "children", {}).values():
            visit(child, inside)

    visit(at.main, False)
    return found


def visible_texts(at) -> list[str]:
    """What the page writes: titles, headings, messages, captions, widget labels and help, options, buttons."""
    others = _others(at)

    def mine(kind: str) -> list:
        return [e for e in at.main.get(kind) if id(e) not in others]

    kinds = ("title", "subheader", "info", "warning", "error", "success", "caption")
    texts = [e.value for kind in kinds for e in mine(kind)]
    for kind in ("selectbox", "radio", "multiselect", "number_input", "text_input", "toggle", "checkbox", "slider"):
        for w in mine(kind):
            texts += [w.label, w.help or ""]
    texts += [o for w in mine("radio") for o in w.options]  # selectboxes list data: columns, files, datasets
    texts += [b.label for b in mine("button")] + [e.label for e in mine("expandable")]
    return texts


def assert_no_english(at, *, allowed: tuple[str, ...] = ()) -> None:
    left = {text: english_prose(text) for text in visible_texts(at) if text not in allowed}
    left = {text: words for text, words in left.items() if words}
    assert not left, left


def test_the_data_page_in_chinese_from_sample_to_saved_dataset(workspace):
    at = open_app("views/data.py", lang="zh")
    no_exception(at)
    assert [t.value for t in at.title] == ["数据"]
    source = widget(at.radio, "数据从哪里来？")
    assert source.options == ["上传文件", "使用自带样例", "公开数据集（按名称）"]
    source.set_value("Use a bundled sample")  # the value stays English: session state and links keep it
    at.run()
    no_exception(at)
    # In Chinese the Chinese sample comes first; its Chinese headers are guessed.
    assert widget(at.selectbox, "自带样例").value == "sentiment_zh.csv"
    assert widget(at.selectbox, "任务").value == "classification"
    assert widget(at.selectbox, "任务").options[0].startswith("文本分类：")
    assert widget(at.selectbox, "文本列").value == "文本" and widget(at.selectbox, "标签列").value == "标签"
    assert widget(at.selectbox, "第二个文本列（可选）").options[0] == "（无）"
    assert [s.value for s in at.subheader][:4] == ["列", "划分", "数据检查", "保存"]
    assert any(i.value == "划分结果：训练集 320 行，验证集 40 行，测试集 40 行。" for i in at.info)
    assert widget(at.number_input, "验证集比例").value == 0.1
    assert any(m.value.startswith("**sentiment_zh.csv**：400 行，2 列") for m in at.markdown)
    assert_no_english(at)

    widget(at.multiselect, "增强方式").set_value(["swap"])
    widget(at.text_input, "数据集名称").set_value("reviews-zh")
    at.run()
    no_exception(at)
    assert ["原文", "增强后"] in [list(frame.value.columns) for frame in at.dataframe]  # the augmentation preview
    button(at, "保存数据集").click()
    at.run()
    no_exception(at)
    assert any(s.value == "已保存为数据集 **reviews-zh**。" for s in at.success)
    assert button(at, "用这个数据集训练")
    assert "已保存的数据集（1）" in [e.label for e in at.expander]
    assert_no_english(at)
    settings = DatasetStore().get("reviews-zh").settings
    assert (settings.text_column, settings.label_column, settings.augment_ops) == ("文本", "标签", ["swap"])


def test_the_data_page_keeps_file_names_as_text_in_chinese(workspace, tmp_path):
    """A hostile file name reaches the Chinese summary line escaped, exactly as the English one escapes it."""
    from ui.safe import md

    name = "*bold* <img src=x> [link](javascript:alert(1)).csv"
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "\n".join(f"row {i},{i % 2}" for i in range(40)) + "\n", encoding="utf-8")
    store = DatasetStore()
    store.save("saved", path, name, DatasetSettings(task="classification", text_column="text", label_column="label"))
    at = open_app("views/data.py", lang="zh")
    no_exception(at)
    lines = [m.value for m in at.markdown if "来自" in m.value]
    assert lines == [f"**saved**：文本分类，? 行，来自 {md(name)}"], lines


def _toy_dataset(toy_csv) -> str:
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    return DatasetStore().save("toy", toy_csv, toy_csv.name, settings, rows=240).name


def test_the_train_page_form_in_chinese(workspace, toy_csv, tiny_bert_dir):
    name = _toy_dataset(toy_csv)
    at = open_app("views/train.py", lang="zh", dataset=name)
    no_exception(at)
    assert [t.value for t in at.title] == ["训练"]
    assert widget(at.selectbox, "数据集").value == name
    assert any(c.value.startswith("任务 **文本分类**；240 行；列：文本 = `text`，标签 = `label`") for c in at.caption)
    model = widget(at.radio, "模型")
    assert model.options[1] == "其他模型（Hugging Face ID 或本地文件夹）"
    model.set_value("Another model (Hugging Face id or local folder)")
    at.run()
    widget(at.text_input, "Hugging Face ID 或本地文件夹").set_value(str(tiny_bert_dir))
    at.run()
    no_exception(at)
    assert [s.value for s in at.subheader] == ["模型", "微调方法", "训练设置", "设备"]
    assert widget(at.radio, "方法").options[0].startswith("全参数微调：")
    for label in ("学习率", "轮数", "批大小", "最大长度", "预热步数", "早停耐心值", "梯度裁剪"):
        widget(at.number_input, label)
    assert widget(at.selectbox, "精度").value == "auto" and widget(at.selectbox, "学习率调度").options
    assert {"高级设置", "模型高级设置", "知识蒸馏（可选）：向一个训练好的模型学习"} <= {e.label for e in at.expander}
    assert any(c.value.startswith("检测到：") for c in at.caption)
    assert button(at, "估算时间和内存") and button(at, "开始训练")
    assert_no_english(at)


def test_a_finished_run_on_the_train_page_in_chinese(trained):
    at = open_app("views/train.py", lang="zh", run="run-full")
    no_exception(at)
    assert [t.value for t in at.title] == ["训练"]
    new_run = at.toggle(key="show_form")
    assert new_run.label == "设置新的训练"
    new_run.set_value(True)
    at.run()
    no_exception(at)
    # The form under the run: this workspace holds runs but no saved dataset, and says so in Chinese.
    assert any(i.value.startswith("还没有数据集。") for i in at.info)
    assert "前往数据页" in [link.label for link in at.main.get("page_link")]


def test_the_train_page_in_chinese_without_a_dataset_and_with_a_missing_run(workspace):
    at = open_app("views/train.py", lang="zh", run="<b>gone</b>")
    no_exception(at)
    assert [w.value for w in at.warning] == [
        "没有名为“\\<b\\>gone\\</b\\>”的训练任务（可能已删除）。请在下方开始一次新的训练。"
    ]
    assert [i.value for i in at.info] == ["还没有数据集。请先在数据页保存一个（或者在首页点击 **试试样例**）。"]
    assert_no_english(at, allowed=(at.warning[0].value,))


def test_the_english_pages_are_unchanged(workspace, toy_csv):
    """The same pages in English still say what they said before the translation layer (tests find them so)."""
    _toy_dataset(toy_csv)
    at = open_app("views/train.py")
    assert widget(at.radio, "Model").options[1] == "Another model (Hugging Face id or local folder)"
    assert [s.value for s in at.subheader][:3] == ["Model", "Method", "Settings"]
    assert widget(at.number_input, "Learning rate").help == "Peak learning rate (after warmup)."
    data = open_app("views/data.py")
    assert widget(data.radio, "Where is your data?").options[1] == "Use a bundled sample"
    assert english_prose("Max length (tokens)") == ["length", "tokens"]  # the check itself finds English


def test_every_training_field_has_a_label_and_help_in_both_languages():
    """A field added to TrainConfig gets its label and help here, or this fails (the page would fall back to
    English); the English help is the field's docstring, the one the CLI's --help prints."""
    import dataclasses

    from core import i18n
    from core.config import TrainConfig, field_docs
    from ui.forms import FIELD_TEXT

    docs = field_docs(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        label, help_key = FIELD_TEXT[field.name]
        assert i18n.t(label, "en") == field.name.replace("_", " ").capitalize()  # what tests and users knew
        assert i18n.t(help_key, "en") == " ".join(docs[field.name].split()), field.name
        assert not english_prose(i18n.t(label, "zh")), i18n.t(label, "zh")
        assert i18n.t(help_key, "zh") != i18n.t(help_key, "en")
