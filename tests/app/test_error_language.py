"""An engine error shown by a page is in the reader's language (issue 16): ui.guard renders a WorkbenchError from its
key and parameters, so the same DataError reads in Chinese under ?lang=zh and in English otherwise."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page():
    import pandas as pd

    from core.data import ColumnChoice, validate_columns
    from ui.guard import guarded

    with guarded("checking the columns"):
        frame = pd.DataFrame({"文本": ["好", "差"], "标签": ["正面", "负面"]})
        validate_columns(frame, ColumnChoice(text="内容", label="标签"), "classification", path_name="评论.csv")


def test_a_page_shows_an_engine_error_in_the_readers_language():
    at = AppTest.from_function(_page, default_timeout=60)
    at.query_params["lang"] = "zh"
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["评论.csv中没有“内容”这一列（被选作文本列）。现有的列：文本, 标签。"]
    english = AppTest.from_function(_page, default_timeout=60)
    english.run()
    assert [e.value for e in english.error] == [
        "There is no column '内容' (chosen as the text) in 评论.csv. Available columns: 文本, 标签."
    ]
