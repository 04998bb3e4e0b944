"""Every page in Chinese, with something on it (issue 16): no English prose left in what a reader sees.

Each page of ui/nav.py is opened with ``?lang=zh`` on a workspace that holds a saved Chinese dataset and two
finished tiny runs (a full fine-tune and a LoRA one, from tests/app/conftest.trained_workspace), and the pages that
answer something are driven once (Evaluate scores the test split, the Playground predicts a typed sentence), so
the text that only shows after a click is read too. What is read: titles, headers, captions, markdown, alerts,
buttons, links, widget labels, help texts, placeholders, radio options, metric labels, expanders, tabs and the
titles of the charts. What is not: code blocks, plain text (model output) and table cells (data).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.app.conftest import button, no_exception, open_app, widget
from ui import nav

ROOT = Path(__file__).resolve().parents[2]
ZH_SAMPLE = ROOT / "data" / "samples" / "sentiment_zh.csv"
DATASET = "评论样例"  # a Chinese dataset name is kept as it is
TYPED = "这家餐厅的味道很好，服务也很热情。"

# Terms a Chinese page keeps in Latin letters, as Chinese practitioners write them: names of models, methods,
# metrics, formats, hardware and tools. Each is removed before looking for prose (and breaks a run of words), so
# "用 LoRA 适配器" is fine while "Choose a run" is not. Keep it to names: an English phrase does not belong here.
ALLOWED_TERMS = (
    "Hugging Face", "JSON Lines", "LoRA", "token", "tokens", "BLEU", "ROUGE-L", "ROUGE", "F1", "MiniLM", "GPT-2",
    "BERT", "Qwen", "CSV", "TSV", "JSON", "Parquet", "Excel", "HTML", "zip", "CPU", "GPU", "CUDA", "MPS", "Apple",
    "bf16", "fp32", "Hub", "ID", "Top-k", "Top-p", "MSE", "MAE", "nats", "Language", "English", "transformers",
    "pipeline", "default",
)  # fmt: skip
# A name made for a machine: a file name, a dotted or underscored identifier, a URL parameter, a path or a model id
# with a slash (hfl/chinese-roberta-wwm-ext).
MACHINE_NAME = re.compile(r"\S*(?:\w[./_=?]\w|\d)\S*")
WORD = r"[A-Za-z][A-Za-z'’-]*"
# Three words or more in a row, with only spaces and light punctuation between them: English prose. A Chinese
# character, a digit or an allowed term between two words ends the run.
PROSE = re.compile(rf"{WORD}(?:[ ,;:()'\"!]+{WORD}){{2,}}")
# What markdown adds around the words: emphasis, escapes, icons, coloured badges.
MARKUP = re.compile(r"\\|\*\*|:material/[a-z_]+:|:[a-z]+-badge\[|`[^`]*`")


def english_prose(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The runs of three or more English words in ``text`` (empty: none, the text reads as Chinese).

    Allowed, and why:
    - ``allowed``: strings that came from outside (the user's data and names: class labels, run ids, typed text,
      dataset names). They are shown as they are in every language.
    - ALLOWED_TERMS: names Chinese practitioners write in Latin letters (LoRA, token, BLEU, ROUGE-L, F1, GPT-2,
      CSV, Hugging Face...). They never count as words, and they split a run, so "LoRA 适配器" passes.
    - Names made for machines (MACHINE_NAME): file names, ``snake_case`` and dotted identifiers, URL parameters,
      model ids with a slash, anything with a digit. ``inline code`` is dropped as well.
    - Fewer than three words in a row: a lone name (MiniLM, Adam) or a two-word label inside Chinese is not prose;
      three words in a row ("Choose a run", "Download the model") is what an untranslated sentence leaves.
    Markdown markup (``**``, escapes, ``:material/...:`` icons, ``:green-badge[`` badges) is removed first.
    """
    text = MARKUP.sub(" ", text)
    for name in sorted(allowed, key=len, reverse=True):
        text = text.replace(name, " § ")
    text = MACHINE_NAME.sub(" § ", text)
    for term in sorted(ALLOWED_TERMS, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z]){re.escape(term)}(?![A-Za-z])", " § ", text)
    return PROSE.findall(text)


def test_english_prose_finds_sentences_and_lets_names_through():
    assert english_prose("Choose a run") == ["Choose a run"]
    assert english_prose("没有训练记录。Start one on the Train page.") == ["Start one on the Train page"]
    assert english_prose("**Take it with you**") == ["Take it with you"]
    assert not english_prose("用 LoRA 适配器微调，评估 BLEU 和 ROUGE-L，保存为 CSV 或 JSON Lines。")
    assert not english_prose("在训练页填入 Hugging Face ID，例如：bert-base-chinese、hfl/chinese-roberta-wwm-ext。")
    assert not english_prose("`python -m core train` 和 save_pretrained 保存的 model.safetensors")
    assert not english_prose("分类模型，共 2 个标签（“positive”、“negative”）")
    assert english_prose("a wonderful film，很好", allowed=()) == ["a wonderful film"]
    assert not english_prose("a wonderful film，很好", allowed=("a wonderful film",))


def visible_texts(at) -> list[tuple[str, str]]:
    """(what, text) for everything a reader of the page sees as words (see the module's docstring)."""
    out: list[tuple[str, str]] = []
    for kind in ("title", "header", "subheader", "caption", "markdown", "info", "warning", "error", "success", "toast"):
        out += [(kind, str(e.value)) for e in getattr(at, kind)]
    labelled = [*at.button, *at.get("download_button"), *at.get("page_link"), *at.selectbox, *at.multiselect]
    labelled += [*at.radio, *at.text_input, *at.text_area, *at.number_input, *at.slider, *at.checkbox, *at.toggle]
    labelled += [*at.get("file_uploader"), *at.expander, *at.tabs, *at.metric, *at.segmented_control]
    for e in labelled:
        kind = type(e).__name__
        out += [(f"{kind} label", str(e.label))] if getattr(e, "label", None) else []
        for attr in ("help", "placeholder"):
            value = getattr(e.proto, attr, "") if hasattr(e, "proto") else ""
            out += [(f"{kind} {attr}", value)] if value else []
    for radio in [*at.radio, *at.segmented_control]:
        out += [("option", str(o)) for o in radio.options]
    out += [("chat input", c.placeholder) for c in at.chat_input]
    for chart in at.get("plotly_chart"):
        layout = json.loads(chart.proto.spec).get("layout", {})
        for part in (layout, layout.get("xaxis", {}), layout.get("yaxis", {})):
            title = part.get("title")
            text = title.get("text") if isinstance(title, dict) else title
            out += [("chart title", text)] if text else []
    return out


def leftovers(at, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{kind}: {text!r} -> {found}" for kind, text in visible_texts(at) if (found := english_prose(text, allowed))
    ]


@pytest.fixture(scope="module")
def zh_workspace(trained_workspace, tmp_path_factory) -> Path:
    """A copy of the two finished tiny runs, plus the bundled Chinese sentiment sample saved as a dataset."""
    from core.datasets import DatasetSettings, DatasetStore

    ws = tmp_path_factory.mktemp("zh-ws")
    shutil.copytree(trained_workspace / "runs", ws / "runs")
    settings = DatasetSettings(task="classification", text_column="文本", label_column="标签")
    DatasetStore(ws / "datasets").save(DATASET, ZH_SAMPLE, ZH_SAMPLE.name, settings, rows=400)
    return ws


@pytest.fixture
def zh(zh_workspace, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_HOME", str(zh_workspace))
    return zh_workspace


# What the pages show from outside: run ids and names, the runs' English class labels, the dataset, its columns.
OUTSIDE = ("run-full", "run-lora", "positive", "negative", DATASET, "文本", "标签", "toy.csv", TYPED)
QUERY = {nav.EVALUATE: {"run": "run-full"}, nav.PLAYGROUND: {"run": "run-lora"}, nav.RUNS: {"run": "run-lora"}}
QUERY[nav.TRAIN] = {"dataset": DATASET}


def drive(at, ref: nav.PageRef, evaluate: str = "开始评估"):
    """The click that shows what a page is for: Evaluate scores, the Playground predicts."""
    if ref == nav.EVALUATE:
        button(at, evaluate).click()
        at.run()
    elif ref == nav.PLAYGROUND:
        widget(at.text_area, "要分类的文本（每行一条）").set_value(TYPED)
        at.run()
        button(at, "预测").click()
        at.run()
    return at


@pytest.mark.parametrize("ref", nav.ALL, ids=[ref.title for ref in nav.ALL])
def test_every_page_in_chinese_has_no_english_prose(zh, ref):
    at = drive(open_app(ref.path, lang="zh", **QUERY.get(ref, {})), ref)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    found = leftovers(at, OUTSIDE)
    assert not found, f"English left on {ref.title} in Chinese:\n" + "\n".join(found)


def test_the_detector_finds_english_on_the_english_pages(zh):
    """The same reading of the same page in English finds prose: the Chinese pages pass because they are Chinese."""
    at = drive(open_app(nav.EVALUATE.path, lang="en", run="run-full"), nav.EVALUATE, "Evaluate")
    no_exception(at)
    found = leftovers(at, OUTSIDE)
    assert any("the model got them wrong" in f for f in found) and any("Show only mistakes" in f for f in found)


def test_the_results_pages_answer_in_chinese(zh):
    """A few exact texts, so the pages are not only free of English but say the right thing."""
    at = drive(open_app(nav.EVALUATE.path, lang="zh", run="run-full"), nav.EVALUATE)
    assert [t.value for t in at.title] == ["评估"]
    assert {"准确率", "F1", "行数"} <= {m.label for m in at.metric}
    assert "判错的样本" in [s.value for s in at.subheader]
    assert widget(at.selectbox, "数据划分").value == "test"  # the value stays the split's own name
    at = drive(open_app(nav.PLAYGROUND.path, lang="zh", run="run-lora"), nav.PLAYGROUND)
    assert at.caption[0].value.startswith("分类模型，共 2 个标签（“negative”、“positive”）：基于文件夹")
    answers = [m.value for m in at.markdown if TYPED in m.value]
    assert answers and re.match(r"^\*\*(positive|negative)\*\*（\d+\.\d%）：", answers[0]), answers
    at = open_app(nav.RUNS.path, lang="zh", run="run-lora")
    table = at.dataframe[0].value
    assert list(table.columns[:6]) == ["训练", "状态", "任务", "模型", "方法", "用时"]
    assert set(table["状态"]) == {"已完成"} and set(table["任务"]) == {"分类"}
    assert button(at, "合并适配器并导出") and button(at, "删除这次训练")
