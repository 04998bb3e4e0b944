"""The pages under hostile input (issue 19): outside strings shown as text, unknown ?run= opens nothing,
dataset deletion asks first, Resume only from a complete checkpoint, damaged metrics lines skipped."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.app.conftest import button, no_exception, open_app
from tests.conftest import tiny_run_config
from ui.safe import md

LINK = "[Session expired, sign in again](https://evil.example/login)"
IMAGE = "![x](https://evil.example/pixel.png)"
HOSTILE = f"{LINK}{IMAGE}"
# Markdown a renderer would turn into a link or an image: an unescaped "](" or "![", raw tags, bare URLs.
LIVE = re.compile(r"(?<!\\)\]\(|(?<!\\)!\[|<a\s|<img\s|(?<!\\)https?:|(?<!\\)www\.")


def rendered_text(at) -> list[str]:
    """Every string the page hands to a markdown renderer: bodies, alerts, captions, titles and labels."""
    out = []
    for kind in ("markdown", "caption", "warning", "info", "error", "success", "title", "header", "subheader"):
        out += [e.value for e in getattr(at, kind)]
    out += [m.label for m in at.metric] + [str(m.value) for m in at.metric]
    out += [b.label for b in at.button] + [e.label for e in at.expander]
    return out


def assert_nothing_live(at) -> None:
    live = [t for t in rendered_text(at) if LIVE.search(t)]
    assert not live, live


@pytest.fixture
def hostile_ws(trained_workspace, tmp_path, monkeypatch):
    """A copy of the trained workspace (the original is shared by other tests)."""
    ws = tmp_path / "ws"
    shutil.copytree(trained_workspace, ws)
    monkeypatch.setenv("WORKBENCH_HOME", str(ws))
    return ws


@pytest.mark.parametrize("page", ["views/evaluate.py", "views/playground.py", "views/runs.py", "views/train.py"])
def test_an_unknown_run_in_the_url_is_named_as_text_and_nothing_is_opened(hostile_ws, page):
    at = open_app(page, run=HOSTILE)
    no_exception(at)
    warnings = [w.value for w in at.warning]
    assert any(md(HOSTILE) in w for w in warnings), warnings
    assert_nothing_live(at)
    labels = [b.label for b in at.button]
    # No run is opened in its place: no Delete next to the newest run, no model loaded, nothing to evaluate.
    assert "Delete this run" not in labels and "Evaluate" not in labels and "Predict" not in labels, labels


def test_the_runs_page_opens_the_run_once_one_is_chosen(hostile_ws):
    at = open_app("views/runs.py", run="no-such-run")
    at.selectbox(key="runs_pick").set_value("run-full")
    at.run()
    no_exception(at)
    assert at.query_params["run"] == ["run-full"] or at.query_params["run"] == "run-full"
    assert "Delete this run" in [b.label for b in at.button]


def test_hostile_upload_name_columns_and_rows_are_text_on_the_data_page(workspace, tmp_path):
    name = f"{LINK}.csv"
    header = f"text,{IMAGE}"
    rows = "\n".join(f"{LINK} row {i},{'<img src=https://evil.example/p.png>' if i % 2 else LINK}" for i in range(40))
    at = open_app("views/data.py")
    at.file_uploader[0].set_value((name, f"{header}\n{rows}\n".encode(), "text/csv"))
    at.run()
    no_exception(at)
    assert any(md(name) in m.value for m in at.markdown)  # the name is shown, as text
    assert_nothing_live(at)


def test_saved_datasets_show_the_cleaned_original_name_and_delete_asks_first(workspace, toy_csv):
    from core.datasets import DatasetSettings, DatasetStore

    store = DatasetStore()
    store.save("reviews", toy_csv, f"../../{LINK}\n.csv", DatasetSettings())
    at = open_app("views/data.py")
    no_exception(at)
    assert_nothing_live(at)
    button(at, "Delete").click()
    at.run()
    assert store.find("reviews") is not None  # one click deletes nothing
    assert any("Delete dataset" in w.value for w in at.warning)
    button(at, "Cancel").click()
    at.run()
    assert store.find("reviews") is not None and not at.warning
    button(at, "Delete").click()
    at.run()
    button(at, "Yes, delete it").click()
    at.run()
    no_exception(at)
    assert store.find("reviews") is None


def test_resume_is_offered_only_from_a_checkpoint_with_weights(workspace, toy_csv, tiny_bert_dir):
    from core.runs import RunStore

    run = RunStore().create(tiny_run_config(toy_csv, tiny_bert_dir), run_id="half")
    run.set_status("interrupted", message="The server stopped.")
    ckpt = run.checkpoints_dir / "step-000004"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.pt").write_bytes(b"state without weights")
    at = open_app("views/runs.py", run="half")
    no_exception(at)
    resume = [b for b in at.button if b.label == "Resume from the last checkpoint"]
    assert resume and resume[0].disabled
    (ckpt / "model.safetensors").write_bytes(b"weights")
    at.run()
    assert not [b for b in at.button if b.label == "Resume from the last checkpoint"][0].disabled


def test_metrics_lines_that_are_not_objects_leave_compare_and_the_live_panel_working(hostile_ws):
    metrics = hostile_ws / "runs" / "run-full" / "metrics.jsonl"
    with metrics.open("a") as fh:
        fh.write('null\n12345\n[1,2]\n"text"\n')
    at = open_app("views/compare.py")
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart")
    at = open_app("views/train.py", run="run-full")
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart")


def test_compare_settings_show_no_server_paths(hostile_ws):
    import json

    config = hostile_ws / "runs" / "run-lora" / "config.json"
    raw = json.loads(config.read_text())
    raw["data"]["train_path"] = str(hostile_ws / "datasets" / "other" / "train.csv")  # a setting that differs
    config.write_text(json.dumps(raw))
    at = open_app("views/compare.py")
    no_exception(at)
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "workspace/datasets/other/train.csv" in shown and str(hostile_ws) not in shown
