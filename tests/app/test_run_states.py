"""Truthful run states on the pages: a run whose process is gone shows as interrupted on Runs, Train, Home and
in the sidebar at once; a damaged status.json shows as damaged; Start names the job holding the device."""

from __future__ import annotations

import json
import subprocess
import sys

from core.config import RunConfig
from core.datasets import DatasetSettings, DatasetStore
from core.devicelock import DeviceLock
from core.runs import RunStore, atomic_write_text
from tests.app.conftest import button, no_exception, open_app


def _cut_off(run_id: str):
    """A run its (now dead) training process left 'running' at step 5."""
    run = RunStore().create(RunConfig(name=run_id), run_id=run_id)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = run.stored_status()
    status.update(state="running", pid=dead.pid, message="Training... step 5", step=5, total_steps=50)
    atomic_write_text(run.dir / "status.json", json.dumps(status))
    return run


def _markdown(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_a_run_whose_process_is_gone_shows_as_interrupted_on_every_page(workspace):
    run = _cut_off("cut-off-run")

    at = open_app("views/runs.py", run=run.id)
    no_exception(at)
    assert "-badge[interrupted]" in _markdown(at)
    assert any("Resume" in c.value for c in at.caption)
    assert [b for b in at.button if b.label == "Resume from the last checkpoint"]  # offered (no checkpoint yet)
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "interrupted" in shown and "running" not in shown
    # The sidebar says so, and not "Training".
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "Interrupted:" in sidebar and run.id in sidebar and "Training:" not in sidebar
    assert any(c.value == "No training running." for c in at.sidebar.caption)

    at = open_app("views/train.py", run=run.id)
    no_exception(at)
    assert "-badge[interrupted]" in _markdown(at) and not [b for b in at.button if b.label == "Stop"]

    at = open_app()  # Home
    no_exception(at)
    assert any(run.id in m.value and "interrupted" in m.value for m in at.markdown)
    assert not any(run.id in m.value and "Training" in m.value for m in at.markdown)

    # Delete works: nothing trains it any more.
    at = open_app("views/runs.py", run=run.id)
    for label in ("Delete this run", "Yes, delete it"):  # the confirmation, as test_results_pages checks it
        button(at, label).click()
        at.run()
    no_exception(at)
    assert not run.dir.exists()


def test_a_damaged_status_shows_as_damaged_and_is_left_as_it_is(workspace):
    run = RunStore().create(RunConfig(name="torn"), run_id="torn")
    run.set_status("finished", message="Training finished.")
    (run.dir / "status.json").write_bytes(b'{"state": "fini')
    for page in ("views/runs.py", "views/train.py"):
        at = open_app(page, run=run.id)
        no_exception(at)
        assert "-badge[damaged]" in _markdown(at), page
        assert any("status.json" in e.value for e in at.error), page
        assert not [b for b in at.button if b.label in ("Resume from the last checkpoint", "Stop")], page
    assert (run.dir / "status.json").read_bytes() == b'{"state": "fini'  # never rewritten to interrupted
    assert not any("Interrupted:" in m.value for m in at.sidebar.markdown)


def test_start_names_the_job_another_process_trains_on_the_device(workspace, toy_csv, tiny_bert_dir):
    from tests.app.test_train_page import _fill_form

    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    name = DatasetStore().save("toy", toy_csv, toy_csv.name, settings, rows=240).name
    at = open_app("views/train.py", dataset=name)
    _fill_form(at, tiny_bert_dir, max_length=32)
    no_exception(at)
    held = DeviceLock(workspace, "cpu")  # what `python -m core train` holds while it trains
    held.acquire(run_id="cli-run-1234", by="python -m core train")
    try:
        button(at, "Start training").click()
        at.run()
        no_exception(at)
    finally:
        held.release()
    message = " ".join(e.value for e in at.error)
    assert "busy" in message and "cli-run-1234" in message and "python -m core train" in message
    assert "--allow-parallel" in message
    assert RunStore().list() == []  # no run folder was made
