"""DatasetStore: saving uploads under the workspace safely, listing, loading and deleting them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data import prepare_data
from core.datasets import DatasetSettings, DatasetStore, safe_name, stage_upload
from core.errors import DataError

CSV = b"text,label\n" + b"".join(
    f"sentence number {i} is {'good' if i % 2 else 'bad'},{i % 2}\n".encode() for i in range(40)
)


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        ".",
        "~",
        "a/../../b",
        "..\\..\\windows\\system32",
        "",
        "   ",
        "CON",
        ".hidden",
    ],
)
def test_safe_name_never_escapes_or_hides(hostile):
    name = safe_name(hostile)
    assert name and "/" not in name and "\\" not in name
    assert not name.startswith(".") and name not in (".", "..")
    assert name.lower() != "con"


def test_safe_name_keeps_letters_of_every_script():
    assert safe_name("评论样例") == "评论样例"
    assert safe_name("レビュー 2024.csv") == "レビュー-2024.csv"
    assert safe_name("評論\u202e/../x") == "x"  # the last path part only
    assert safe_name("好评\u202e差评") == "好评-差评"  # a bidi control is not a letter


def test_save_hostile_names_stay_inside_the_store(workspace):
    store = DatasetStore()
    for hostile in ("../../outside", "/abs/path/evil", "..", "x/../../../y"):
        ds = store.save(hostile, CSV, "../../up.csv", DatasetSettings())
        assert ds.dir.parent == store.root
        assert ds.path.parent == ds.dir and ds.path.read_bytes() == CSV
    assert not (workspace.parent / "outside").exists()
    assert not (workspace / "up.csv").exists()


def test_same_name_never_overwrites(workspace):
    store = DatasetStore()
    first = store.save("reviews", CSV, "reviews.csv", DatasetSettings())
    second = store.save("reviews", CSV + b"extra row,1\n", "reviews.csv", DatasetSettings())
    assert (first.name, second.name) == ("reviews", "reviews-2")
    assert first.path.read_bytes() == CSV
    assert sorted(store.names()) == ["reviews", "reviews-2"]


def test_round_trip_and_data_config_feeds_prepare_data(workspace, tmp_path):
    store = DatasetStore()
    src = tmp_path / "my reviews (1).csv"
    src.write_bytes(CSV)
    settings = DatasetSettings(
        task="classification",
        text_column="text",
        label_column="label",
        val_fraction=0.2,
        test_fraction=0.1,
        split_seed=7,
    )
    saved = store.save(
        "My Reviews!",
        src,
        src.name,
        settings,
        validation=("val.csv", b"\n".join(CSV.split(b"\n")[:9]) + b"\n"),
        rows=40,
    )
    loaded = store.get(saved.name)
    assert loaded.settings == settings and loaded.rows == 40 and loaded.original_name == "my reviews (1).csv"
    assert loaded.file.endswith(".csv") and loaded.validation_file.startswith("validation-")
    cfg = loaded.data_config()
    assert Path(cfg.train_path).is_absolute() and Path(cfg.validation_path).exists()
    prepared = prepare_data(cfg, "classification")
    assert len(prepared.train) == 40 - 4  # 10% test of 40 rows; validation comes from its own file
    assert prepared.label_names == ["0", "1"]


def test_rejects_unknown_type_empty_and_too_large(workspace):
    store = DatasetStore()
    with pytest.raises(DataError, match="not a file type"):
        store.save("x", CSV, "data.exe", DatasetSettings())
    with pytest.raises(DataError, match="empty"):
        store.save("x", b"", "data.csv", DatasetSettings())
    with pytest.raises(DataError, match="MB limit"):
        store.save("x", b"a" * 3000, "data.csv", DatasetSettings(), max_mb=0.001)
    assert store.list() == []  # failed saves leave no half folder behind
    with pytest.raises(DataError):
        DatasetSettings(task="translation")


def test_get_delete_and_damaged_folders(workspace):
    store = DatasetStore()
    ds = store.save("keep", CSV, "a.csv", DatasetSettings())
    with pytest.raises(DataError, match="no saved dataset"):
        store.get("../keep")
    (store.root / "broken").mkdir()
    (store.root / "broken" / "dataset.json").write_text("{not json")
    (store.root / "evil").mkdir()
    (store.root / "evil" / "dataset.json").write_text('{"file": "../../etc/passwd", "settings": {}}')
    assert store.names() == ["keep"]
    store.delete(ds.name)
    assert store.find("keep") is None and not ds.dir.exists()


def test_stage_upload_is_idempotent(workspace):
    first = stage_upload("../x.tsv", b"a\tb\n1\t2\n")
    again = stage_upload("../x.tsv", b"a\tb\n1\t2\n")
    assert first == again and first.suffix == ".tsv" and first.read_bytes() == b"a\tb\n1\t2\n"
    assert workspace in first.parents
