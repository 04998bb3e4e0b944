"""Bad input in the app: each shows one st.error naming the problem, never a traceback, and the page stays
usable (the next, good input works in the same session) with nothing half-saved in the workspace."""

from __future__ import annotations

import re

from core.config import RunConfig
from core.datasets import DatasetSettings, DatasetStore
from core.runs import RunStore
from tests.app.conftest import button, no_exception, open_app, widget
from tests.conftest import toy_sentiment_rows

GOOD = ("text,label\n" + "\n".join(f"{t},{y}" for t, y in toy_sentiment_rows(120)) + "\n").encode()
BAD_UPLOADS = [
    ("empty.csv", b"", "empty"),
    ("sheet.csv", b"PK\x03\x04" + b"\x00" * 300, "excel"),
    ("header.csv", b"text,label\n", "no data rows"),
    ("ragged.csv", b"text,label\ngood film,pos\nbad, awful film,neg\nfine film,pos\n", "line 3"),
    ("rows.jsonl", b'{"text": "a film", "label": "pos"}\n{"text": oops}\n', "line 2"),
]


def errors(at) -> str:
    return " ".join(e.value for e in at.error).lower()


def saved_datasets(workspace) -> list[str]:
    root = workspace / "datasets"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.exists() else []


def test_bad_uploads_show_an_error_and_the_data_page_stays_usable(workspace):
    at = open_app("views/data.py")
    for name, content, words in BAD_UPLOADS:
        at.file_uploader[0].set_value((name, content, "text/csv"))
        at.run()
        no_exception(at)
        assert words in errors(at), (name, errors(at))
        assert re.search(rf"(^|[\s'\"(]){re.escape(name)}\b", errors(at)), errors(at)  # the name the user knows
        assert "traceback" not in errors(at)
        assert not [b for b in at.button if b.label == "Save dataset" and not b.disabled]
        assert saved_datasets(workspace) == []
    # Same session, a good file: no error, and it saves.
    at.file_uploader[0].set_value(("reviews.csv", GOOD, "text/csv"))
    at.run()
    no_exception(at)
    assert not at.error, errors(at)
    button(at, "Save dataset").click()
    at.run()
    no_exception(at)
    assert DatasetStore().names() == ["reviews"]


def test_bad_model_sources_show_an_error_and_the_train_page_stays_usable(workspace, toy_csv, tiny_bert_dir,
                                                                         tmp_path, monkeypatch):  # fmt: skip
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    name = DatasetStore().save("toy", toy_csv, toy_csv.name, settings, rows=240).name
    not_a_model = tmp_path / "downloads"
    not_a_model.mkdir()
    (not_a_model / "notes.txt").write_text("hello", encoding="utf-8")
    at = open_app("views/train.py", dataset=name)
    widget(at.radio, "Model").set_value("Another model (Hugging Face id or local folder)")
    at.run()
    source = widget(at.text_input, "Hugging Face id or local folder")
    for value, words in (("no-such-org/no-such-model-xyz", "cannot be reached"),
                         (str(not_a_model), "not a model"),
                         (str(tmp_path / "missing"), "does not exist")):  # fmt: skip
        source.set_value(value)
        at.run()
        no_exception(at)
        assert words in errors(at), (value, errors(at))
        assert not [b for b in at.button if b.label == "Start training"]
        source = widget(at.text_input, "Hugging Face id or local folder")
    # A folder outside the server's allow-list is refused the same way.
    monkeypatch.setenv("WORKBENCH_MODEL_DIRS", str(tmp_path / "approved"))
    source.set_value(str(tiny_bert_dir))
    at.run()
    assert "not allowed on this server" in errors(at)
    monkeypatch.delenv("WORKBENCH_MODEL_DIRS")
    # The same session recovers with a real model folder.
    widget(at.text_input, "Hugging Face id or local folder").set_value(str(tiny_bert_dir) + "/")
    at.run()
    no_exception(at)
    assert not at.error, errors(at)
    assert button(at, "Start training")
    assert RunStore().list() == []  # nothing was started by the bad sources
    # Remote code stays off unless ticked, and ticking it says what it means.
    trust = widget(at.checkbox, "Allow code shipped with the model (trust_remote_code)")
    assert trust.value is False and not at.warning
    trust.check()
    at.run()
    assert any("will run on this server" in w.value for w in at.warning)


def test_hostile_run_in_the_url_is_refused_calmly(workspace):
    for page in ("views/runs.py", "views/evaluate.py", "views/playground.py", "views/train.py"):
        at = open_app(page, run="../../etc/passwd")
        no_exception(at)
        assert "traceback" not in errors(at)
        assert "passwd" not in " ".join(m.value for m in at.markdown)  # nothing from outside the workspace


def test_a_damaged_run_folder_does_not_hide_the_others(workspace):
    store = RunStore()
    good = store.create(RunConfig(name="good-run"), run_id="good-run")
    good.set_status("stopped", message="Stopped by the user.")
    bad = store.create(RunConfig(name="bad-run"), run_id="bad-run")
    (bad.dir / "results.json").write_text("{oops", encoding="utf-8")
    bad.metrics_path.write_bytes(b'{"step":1,"loss":0.5}\n\xff\xfe garbage\n{"step":2')
    for page, query in (("views/runs.py", {}), ("views/train.py", {"run": "bad-run"})):
        at = open_app(page, **query)
        no_exception(at)
        assert not at.error, (page, errors(at))
    at = open_app("views/runs.py")
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "good-run" in shown and "bad-run" in shown


def test_start_refuses_a_run_that_cannot_start_without_creating_a_folder(workspace, toy_csv, tiny_bert_dir, tmp_path):
    """The model outline is cached and the dataset was checked when saved; what changed on disk since then is
    caught by the pre-flight check on Start, before a run folder exists, and the page stays usable."""
    import shutil

    from tests.app.conftest import wait_until_done
    from ui.state import registry

    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    dataset = DatasetStore().save("toy", toy_csv, toy_csv.name, settings, rows=240)
    model = tmp_path / "my-model"
    shutil.copytree(tiny_bert_dir, model)
    at = open_app("views/train.py", dataset=dataset.name)
    widget(at.radio, "Model").set_value("Another model (Hugging Face id or local folder)")
    at.run()
    widget(at.text_input, "Hugging Face id or local folder").set_value(str(model))
    at.run()
    assert not at.error, errors(at)
    good_data = dataset.path.read_bytes()
    for damage, repair, words in (
        (lambda: shutil.rmtree(model), lambda: shutil.copytree(tiny_bert_dir, model), "does not exist"),
        (lambda: dataset.path.write_bytes(b"text,label\n"), lambda: dataset.path.write_bytes(good_data), "no data rows"),
    ):  # fmt: skip
        damage()
        button(at, "Start training").click()
        at.run()
        no_exception(at)
        assert words in errors(at), errors(at)
        assert RunStore().list() == [] and "run" not in at.query_params
        repair()
    button(at, "Start training").click()  # the same session, once the files are back
    at.run()
    no_exception(at)
    [run] = RunStore().list()
    assert at.query_params["run"] == run.id and not at.error
    registry().stop(run.id)
    assert wait_until_done(run) in ("stopped", "finished")


def test_remote_code_switched_off_by_the_server_owner(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ALLOW_REMOTE_CODE", "0")
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    name = DatasetStore().save("toy", toy_csv, toy_csv.name, settings, rows=240).name
    at = open_app("views/train.py", dataset=name)
    widget(at.radio, "Model").set_value("Another model (Hugging Face id or local folder)")
    at.run()
    widget(at.text_input, "Hugging Face id or local folder").set_value(str(tiny_bert_dir))
    at.run()
    no_exception(at)
    trust = widget(at.checkbox, "Allow code shipped with the model (trust_remote_code)")
    assert trust.disabled and trust.value is False
    assert any("server's owner turned off" in c.value for c in at.caption)
    assert button(at, "Start training") and not at.error  # models without code of their own still train
    monkeypatch.delenv("WORKBENCH_ALLOW_REMOTE_CODE")  # the default: the box can be ticked
    at.run()
    assert not widget(at.checkbox, "Allow code shipped with the model (trust_remote_code)").disabled


def test_a_run_with_a_damaged_config_is_shown_and_can_be_deleted(workspace):
    store = RunStore()
    store.create(RunConfig(name="good-run"), run_id="good-run").set_status("finished")
    bad = store.create(RunConfig(name="bad-run"), run_id="bad-run")
    bad.set_status("failed")
    bad.config_path.write_text('{"model": ', encoding="utf-8")  # cut short
    at = open_app("views/runs.py", run="bad-run")
    no_exception(at)
    table = at.dataframe[0].value
    assert dict(zip(table["run"], table["state"])) == {"good-run": "finished", "bad-run": "damaged"}
    assert "not valid json" in errors(at) and "delete it" in errors(at)
    assert not [b for b in at.button if b.label.startswith("Open in")]  # nothing else can read it
    button(at, "Delete this run").click()
    at.run()
    button(at, "Yes, delete it").click()
    at.run()
    no_exception(at)
    assert not bad.dir.exists() and [r.id for r in store.list()] == ["good-run"]
    assert list(at.dataframe[0].value["run"]) == ["good-run"]
