"""The language switch (issue 16): English and 简体中文, from the browser's locale, the URL or the sidebar."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import DatasetStore
from tests.app.conftest import APP, PAGES, button, no_exception, open_app, widget

HOME_ZH_LINKS = ["1. 数据", "2. 训练", "3. 评估", "4. 试用", "5. 对比"]


def test_home_and_sidebar_in_chinese_from_the_url(workspace):
    at = open_app(lang="zh")
    no_exception(at)
    assert [t.value for t in at.title] == ["微调工作台"]
    assert [link.label for link in at.get("page_link")][:5] == HOME_ZH_LINKS
    assert [s.value for s in at.subheader][:3] == ["第一次用？先试试样例", "正在运行", "这台电脑"]
    assert button(at, "试试样例")
    assert any(c.value == "当前没有训练任务。" for c in at.sidebar.caption)
    assert widget(at.sidebar.selectbox, "语言 / Language").value == "zh"
    assert any("个 CPU 核心" in m.value for m in at.markdown)  # the hardware line


def test_charts_speak_the_language_they_are_given():
    import pandas as pd

    from ui import charts

    train = pd.DataFrame({"step": [1, 2], "epoch": [0.5, 1.0], "loss": [0.9, 0.7], "lr": [1e-4, 5e-5]})
    evals = pd.DataFrame({"step": [2], "epoch": [1.0], "val_loss": [0.8]})
    fig = charts.loss_curves(train, evals, x="epoch", lang="zh")
    assert fig.layout.title.text == "损失（越低越好）" and fig.layout.xaxis.title.text.startswith("轮次")
    assert [trace.name for trace in fig.data] == ["训练损失", "验证损失"]
    matrix = charts.confusion_matrix([[3, 1], [0, 4]], ["正面", "负面"], lang="zh")
    assert matrix.data[0].hovertemplate == "真实 %{y}，预测 %{x}：%{z} 行<extra></extra>"
    assert (
        charts.per_class_scores({"正面": {"precision": 1.0, "recall": 0.5, "f1": 0.67}}, lang="zh").data[0].name
        == "精确率"
    )
    assert charts.confusion_matrix([[1]], ["a"], lang="en").data[0].hovertemplate.startswith("true %{y}, predicted")


def test_the_browser_locale_chooses_chinese_and_the_url_keeps_it(workspace):
    at = AppTest.from_file(APP, default_timeout=180)
    at.context["locale"] = "zh-CN"
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["微调工作台"]
    assert at.query_params["lang"] == "zh"  # a link copied now opens in Chinese
    english = AppTest.from_file(APP, default_timeout=180)
    english.context["locale"] = "en-GB"
    english.run()
    assert [t.value for t in english.title] == ["Fine-Tuning Workbench"] and english.query_params["lang"] == "en"


def test_the_switch_changes_the_language_and_it_stays_on_other_pages(workspace):
    at = open_app()
    assert [t.value for t in at.title] == ["Fine-Tuning Workbench"]
    widget(at.sidebar.selectbox, "Language / 语言").set_value("zh")
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["微调工作台"] and at.query_params["lang"] == "zh"
    # Going to another page drops the URL's parameters; the session remembers the choice and puts it back.
    at.switch_page("views/runs.py")
    at.query_params.clear()
    at.run()
    no_exception(at)
    assert any(c.value == "当前没有训练任务。" for c in at.sidebar.caption)
    assert at.query_params["lang"] == "zh"
    widget(at.sidebar.selectbox, "语言 / Language").set_value("en")
    at.run()
    assert any(c.value == "No training running." for c in at.sidebar.caption) and at.query_params["lang"] == "en"


@pytest.mark.parametrize("page", [*PAGES, "views/tune.py"])
def test_every_page_renders_in_chinese(workspace, page):
    at = open_app(page, lang="zh")
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert any(c.value == "当前没有训练任务。" for c in at.sidebar.caption)
    assert widget(at.sidebar.selectbox, "语言 / Language").value == "zh"


def test_the_chinese_sample_from_home_opens_train_with_the_chinese_note(workspace):
    at = open_app(lang="zh")
    button(at, "试试样例").click()
    at.run()
    no_exception(at)
    dataset = DatasetStore().get("sentiment-sample-zh")
    assert (dataset.settings.text_column, dataset.settings.label_column, dataset.rows) == ("文本", "标签", 400)
    notes = [i.value for i in at.info if "bert-base-chinese" in i.value.replace("\\", "")]
    assert notes and notes[0].startswith("**适合中文的模型**："), [i.value for i in at.info]


def test_data_check_findings_follow_the_language(workspace):
    def findings(lang: str) -> list[str]:
        at = open_app("views/data.py", lang=lang)
        at.radio[0].set_value("Use a bundled sample")
        at.run()
        at.selectbox(key="data_sample").set_value("sentiment_zh.csv")
        at.run()
        no_exception(at)
        text, label = ("文本列", "标签列") if lang == "zh" else ("Text column", "Label column")  # the page's labels
        assert widget(at.selectbox, text).value == "文本"
        assert widget(at.selectbox, label).value == "标签"
        return [m.value for m in [*at.success, *at.warning, *at.info]]

    chinese = findings("zh")
    assert any(v.startswith("**行数**：共 400 行。") for v in chinese), chinese
    assert any(v.startswith("**字数**：") for v in chinese) and any(
        v.startswith("**适合中文的模型**：") for v in chinese
    )
    english = findings("en")
    assert any(v.startswith("**Rows.** 400 rows.") for v in english), english
    assert any(v.startswith("**Model for Chinese.**") for v in english)


def test_an_unknown_or_hostile_lang_parameter_falls_back_to_english(workspace):
    at = open_app(lang="<b>xx</b>")
    no_exception(at)
    assert [t.value for t in at.title] == ["Fine-Tuning Workbench"] and at.query_params["lang"] == "en"


def test_english_data_gets_no_chinese_note_on_train(workspace):
    at = open_app()
    button(at, "Try the sample").click()
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Train"]
    assert not [i.value for i in at.info if "bert-base-chinese" in i.value.replace("\\", "")]


def test_the_tune_page_in_chinese(workspace, toy_csv):
    from core.datasets import DatasetSettings

    DatasetStore().save("toy", toy_csv, toy_csv.name, DatasetSettings(task="classification"), rows=240)
    at = open_app("views/tune.py", lang="zh")
    no_exception(at)
    assert [t.value for t in at.title] == ["调参"] and [h.value for h in at.header] == ["新建搜索"]
    assert widget(at.radio, "方法").options == ["全参数微调", "LoRA"]
    assert widget(at.selectbox, "交叉验证").options == ["不用，直接用验证集", "3 折", "5 折"]
    assert button(at, "开始搜索")


def test_text_from_the_data_in_a_finding_is_escaped(workspace):
    from core.data import ColumnChoice, check_data
    from ui.i18n import finding_markdown

    frame = pd.DataFrame({"text": [f"text {i}" for i in range(13)], "label": ["**x**"] * 2 + [":red[y]"] * 11})
    [balance] = [
        f
        for f in check_data(frame, ColumnChoice("text", None, "label"), "classification").findings
        if f.title == "Class balance"
    ]
    line = finding_markdown(balance)
    assert line.startswith("**Class balance.** ") and "\\*\\*x\\*\\*" in line and "\\:red\\[y\\]" in line


def test_the_chinese_headline_sample_from_home(workspace):
    at = open_app(lang="zh")
    button(at, "试试标题样例").click()
    at.run()
    no_exception(at)
    s = DatasetStore().get("headlines-sample-zh").settings
    assert (s.task, s.text_column, s.text_pair_column) == ("generation", "正文", "标题")
