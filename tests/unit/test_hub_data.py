"""Public datasets by name: offline says so plainly; a save_to_disk folder loads (and stages like an upload)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.cli import main
from core.data import read_table
from core.errors import DataError
from core.hub_data import load_public, stage_public


@pytest.fixture
def saved_dataset(tmp_path):
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    ds = datasets.Dataset.from_dict(
        {"sentence": ["a great film", "dull and long", "lovely acting"], "label": [1, 0, 1]}, features=features
    )
    folder = tmp_path / "tiny-sst"
    ds.save_to_disk(str(folder))
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "tiny-dict"))
    return folder


def test_offline_hub_gives_a_plain_message(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_public("imdb", None, "train")
    assert "hub cannot be reached" in str(err.value) and "offline" in str(err.value)
    assert "save_to_disk" in err.value.hint


def test_offline_hub_without_the_setting_is_detected(monkeypatch):
    # Nothing says offline, but nothing answers either (this machine has no network): the same message.
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("core.inference.hub_reachable", lambda timeout=2.0: False)
    with pytest.raises(DataError, match="hub cannot be reached"):
        load_public("glue", "sst2", "train")


def test_saved_folder_loads_with_label_names(saved_dataset, tmp_path):
    frame = load_public(str(saved_dataset))
    assert frame.to_dict("records")[0] == {"sentence": "a great film", "label": "positive"}
    assert load_public(str(tmp_path / "tiny-dict"), split="test")["sentence"].tolist() == ["a great film"]
    with pytest.raises(DataError, match="no split 'validation'"):
        load_public(str(tmp_path / "tiny-dict"), split="validation")
    with pytest.raises(DataError, match="not a saved dataset"):
        load_public(str(tmp_path))
    staged = stage_public(str(saved_dataset), root=tmp_path / "ws")
    table = read_table(staged)  # the Data page's reader takes it like an upload
    assert table.format == "parquet" and table.frame["label"].tolist() == ["positive", "negative", "positive"]


def test_cli_fetch_dataset(saved_dataset, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.csv"
    assert main(["fetch-dataset", str(saved_dataset), "--output", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 3
    assert pd.read_csv(out).columns.tolist() == ["sentence", "label"]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert main(["fetch-dataset", "imdb", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "hub cannot be reached" in err and "Traceback" not in err
