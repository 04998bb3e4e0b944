"""The Data page turns an uploaded (or bundled) file into a saved dataset; Home's sample goes to Train."""

from __future__ import annotations

from core.datasets import DatasetStore
from tests.app.conftest import button, no_exception, open_app, widget
from tests.conftest import toy_sentiment_rows


def test_upload_map_columns_check_and_save(workspace):
    rows = toy_sentiment_rows(120)
    content = ("id,review,sentiment\n" + "\n".join(f"{i},{t},{y}" for i, (t, y) in enumerate(rows)) + "\n").encode()
    at = open_app("views/data.py")
    at.file_uploader[0].set_value(("my reviews.csv", content, "text/csv"))
    at.run()
    no_exception(at)
    # Columns are preselected by name: the text is 'review', the label 'sentiment' (not the id counter).
    assert widget(at.selectbox, "Text column").value == "review"
    assert widget(at.selectbox, "Label column").value == "sentiment"
    assert any("2 classes" in s.value for s in at.success)
    assert any("96 training, 12 validation and 12 test rows" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 2  # class balance and token lengths
    widget(at.number_input, "Validation share").set_value(0.2)
    widget(at.text_input, "Dataset name").set_value("../../reviews")
    at.run()
    button(at, "Save dataset").click()
    at.run()
    no_exception(at)
    store = DatasetStore()
    [dataset] = store.list()
    assert dataset.name == "reviews" and dataset.dir.parent == store.root
    s = dataset.settings
    assert (s.task, s.text_column, s.label_column, s.val_fraction) == ("classification", "review", "sentiment", 0.2)
    assert dataset.path.read_bytes() == content and dataset.rows == 120
    assert button(at, "Train with this dataset")


def test_bundled_sample_and_a_problem_blocks_saving(workspace):
    at = open_app("views/data.py")
    at.radio[0].set_value("Use a bundled sample")
    at.run()
    widget(at.selectbox, "Bundled sample").set_value("sentiment.csv")
    at.run()
    no_exception(at)
    # Choosing the text column as label makes ~400 classes of one row each: a problem, so no saving.
    widget(at.selectbox, "Label column").set_value("text")
    at.run()
    assert at.error and button(at, "Save dataset").disabled
    widget(at.selectbox, "Label column").set_value("label")
    at.run()
    button(at, "Save dataset").click()
    at.run()
    assert DatasetStore().names() == ["sentiment"]


def test_try_the_sample_opens_train_with_it_chosen(workspace):
    at = open_app()
    button(at, "Try the sample").click()
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Train"]
    assert widget(at.selectbox, "Dataset").value == "sentiment-sample"
    assert DatasetStore().get("sentiment-sample").settings.label_column == "label"
    # A second click reuses the saved sample instead of piling up copies.
    at2 = open_app()
    button(at2, "Try the sample").click()
    at2.run()
    assert DatasetStore().names() == ["sentiment-sample"]


def test_classes_found_are_listed_for_naming(workspace):
    """A headerless 0/1 file: the Data page lists the classes with their row counts, ready to be named."""
    rows = toy_sentiment_rows(60)
    content = ("\n".join(f"{t},{int(y == 'positive')}" for t, y in rows) + "\n").encode()
    at = open_app("views/data.py")
    at.file_uploader[0].set_value(("numbers.csv", content, "text/csv"))
    at.run()
    no_exception(at)
    [editor] = at.data_editor
    table = editor.value
    assert list(table["value in the file"]) == ["0", "1"] and list(table["name"]) == ["0", "1"]
    assert sum(table["rows"]) == 60
    button(at, "Save dataset").click()
    at.run()
    [dataset] = DatasetStore().list()
    assert dataset.settings.class_names == {}  # nothing renamed: the values stay the names
