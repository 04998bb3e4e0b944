"""The Data page loads a public dataset by name (offline: a plain message) or a save_to_disk folder."""

from __future__ import annotations

from tests.app.conftest import button, no_exception, open_app, widget


def test_public_dataset_offline_then_a_saved_folder(workspace, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "saved-reviews"
    rows = {"review": [f"a {w} film" for w in ("great", "dull", "lovely", "awful") * 10], "stars": [5, 1, 4, 2] * 10}
    datasets.Dataset.from_dict(rows).save_to_disk(str(folder))
    at = open_app("views/data.py")
    at.radio[0].set_value("A public dataset (by name)")
    at.run()
    widget(at.text_input, "Dataset name or folder").set_value("imdb")
    at.run()
    button(at, "Load the dataset").click()
    at.run()
    no_exception(at)
    assert any("hub cannot be reached" in e.value for e in at.error)
    widget(at.text_input, "Dataset name or folder").set_value(str(folder))
    at.run()
    button(at, "Load the dataset").click()
    at.run()
    no_exception(at)
    assert not at.error
    assert widget(at.selectbox, "Text column").value == "review"
    assert button(at, "Save dataset")
