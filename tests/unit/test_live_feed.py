"""The live numbers the browser asks for (core/live_feed.py) and the route that answers (ui/live_api.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.curves import CurveFeed
from core.live_feed import live_snapshot
from tests.played_run import PlayedRun
from ui import live_api


@pytest.fixture
def played(workspace, toy_csv):
    return PlayedRun(workspace, toy_csv, total=40)


def snap(played, since=0, points=True):
    return live_snapshot(played.run, CurveFeed(played.run.metrics_path, min_interval=0), since, points)


def test_a_snapshot_has_the_numbers_and_only_the_points_not_yet_seen(played):
    played.log(5)
    first = snap(played)
    assert (first["state"], first["active"], first["step"], first["total"]) == ("running", True, 5, 40)
    assert first["samples_per_s"] == 120.0 and first["eta_s"] == pytest.approx(35 * 0.13)
    assert [p[0] for p in first["train"]] == [1, 2, 3, 4, 5] and first["next"] == 5
    assert first["train"][1][3] == pytest.approx(5e-5 * (1 - 2 / 40))  # step, epoch, loss, lr
    played.log(3)
    later = snap(played, since=first["next"])
    assert later["since"] == 5 and [p[0] for p in later["train"]] == [6, 7, 8] and later["next"] == 8
    # A count beyond the points there are (the run was made again under its name): all of them again.
    assert [p[0] for p in snap(played, since=99)["train"]] == list(range(1, 9))
    assert "train" not in snap(played, points=False)


def test_a_loss_that_is_not_a_number_is_sent_as_a_gap_in_valid_json(played):
    played.log(2)
    played.append({"step": 3, "epoch": 0.075, "loss": "nan", "lr": 1e-5})
    played.append({"step": 4, "epoch": 0.1, "loss": float("inf"), "lr": 1e-5})
    body = snap(played)
    text = json.dumps(body, allow_nan=False)  # what the route sends; NaN would not parse in the browser
    assert [p[2] for p in json.loads(text)["train"]][2:] == [None, None]


def eval_line(played, val_loss: float) -> None:
    played.append({"step": played.step, "epoch": played.step / played.total, "val_loss": val_loss})


def test_the_signature_changes_with_what_the_python_page_draws_and_not_with_each_step_or_score(played):
    played.log(1)
    start = snap(played)["signature"]
    played.log(4)
    assert snap(played)["signature"] == start  # a new step moves only what the browser draws
    played.evaluate()
    evaluated = snap(played)
    # A score is the browser's to show: no rerun for it (8 to 10 a run would cost what the timed refresh did).
    assert evaluated["signature"] == start and evaluated["evaluations"] == 1
    assert evaluated["latest"] == {"step": 5, "epoch": 0.125, "val_loss": 0.5, "val_accuracy": 0.75}
    played.run.set_status(message="Saving the model")
    messaged = snap(played)["signature"]
    assert messaged != start
    played.finish()
    ended = snap(played)
    assert ended["signature"] != messaged and not ended["active"] and ended["state"] == "finished"


def test_the_first_point_a_finding_and_new_probe_answers_change_the_signature(workspace, toy_csv):
    from core.diagnose import diagnose

    played = PlayedRun(workspace, toy_csv, total=400)
    empty = snap(played)["signature"]  # "preparing": no point yet
    played.log(10)
    eval_line(played, 0.40)
    first = snap(played)["signature"]
    assert first != empty
    for val_loss in (0.45, 0.55):  # the validation loss rises while the training loss falls
        played.log(10)
        eval_line(played, val_loss)
    overfits = snap(played)["signature"]
    found = diagnose(played.run.metrics(), played.run.config_dict(), state="running")
    assert [f.kind for f in found] == ["overfitting"] and overfits != first
    played.append({"event": "probes", "step": played.step, "probes": [{"text": "good", "label": "positive"}]})
    assert snap(played)["signature"] != overfits  # the probes' table is drawn by the page's Python


def test_the_route_answers_json_and_refuses_bad_requests_in_words(played, workspace):
    played.log(3)
    root = str(workspace / "runs")
    code, body = live_api.answer(root, played.run.id, {"since": "1"})
    assert code == 200 and [p[0] for p in body["train"]] == [2, 3]
    for run_id in ("missing", "../runs", "a/b", ""):
        assert live_api.answer(root, run_id, {}) == (404, {"error": "no such run"})
    assert live_api.answer(root, played.run.id, {"since": "two"}) == (400, {"error": "since must be a whole number"})
    code, body = live_api.answer(root, played.run.id, {"points": "0"})
    assert code == 200 and "train" not in body and body["step"] == 3


def test_the_runs_version_changes_when_a_run_is_made_or_deleted(played, workspace, toy_csv):
    import shutil

    root = str(workspace / "runs")
    first = live_api.answer(root, played.run.id, {"points": "0"})[1]["runs"]
    played.log(2)
    assert live_api.runs_version(root) == first  # a run's own files do not count
    other = PlayedRun(workspace, toy_csv, run_id="other")  # a run the CLI started: the sidebar must show it
    made = live_api.runs_version(root)
    assert made != first
    shutil.rmtree(other.run.dir)
    assert live_api.runs_version(root) not in (made, "")


def test_the_route_forgets_a_deleted_run_and_keeps_a_bounded_number_of_feeds(played, workspace, toy_csv):
    import shutil

    root = str(workspace / "runs")
    assert live_api.answer(root, played.run.id, {})[0] == 200
    shutil.rmtree(played.run.dir)
    assert live_api.answer(root, played.run.id, {}) == (404, {"error": "no such run"})
    for i in range(live_api._MAX_FEEDS + 4):
        other = PlayedRun(workspace, toy_csv, run_id=f"other{i}")
        assert live_api.answer(root, other.run.id, {})[0] == 200
    assert len(live_api._feeds) <= live_api._MAX_FEEDS and len(live_api._runs) <= live_api._MAX_FEEDS
    # The pages' reruns and the route read one feed per run.
    assert live_api.shared_feed(str(other.run.metrics_path)) is live_api.shared_feed(str(other.run.metrics_path))


def test_the_route_is_available_only_where_it_is_mounted_at_the_pages_path(monkeypatch):
    from streamlit import config

    monkeypatch.setitem(live_api._state, "mounted", False)
    assert not live_api.available()
    live_api.routes()
    assert live_api.available()
    monkeypatch.setattr(config, "get_option", lambda name: "/workbench" if name == "server.baseUrlPath" else None)
    assert not live_api.available()  # user routes do not follow a base URL path: keep the timed fragments
    assert live_api.url("a b/c") == "/api/workbench/runs/a%20b%2Fc/live"


def test_serve_mounts_the_live_route():
    source = (Path(__file__).resolve().parents[2] / "serve.py").read_text()
    assert "routes=live_api.routes()" in source


@pytest.fixture
def owner():
    """A live process that owns a search (one owned by the reader's own process counts only while its job runs)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def search_record(workspace, toy_csv, owner: int):
    from core.runs import process_started
    from core.search import SearchConfig, SearchSpace, SearchStore
    from tests.conftest import tiny_run_config

    store = SearchStore(workspace / "searches")
    cfg = SearchConfig(base=tiny_run_config(toy_csv, "tiny"), space=SearchSpace(learning_rate=[1e-4, 1e-3]))
    record = store.create(cfg)
    record.update(state="running", pid=owner, pid_started=process_started(owner))
    store.save(record)
    return store, record


def test_the_record_routes_answer_the_state_and_a_signature_that_changes_with_the_record(workspace, toy_csv, owner):
    store, record = search_record(workspace, toy_csv, owner)
    root = str(workspace / "searches")
    code, first = live_api.record_answer("searches", root, record["id"])
    assert code == 200 and first["active"] and first["state"] == "running"
    assert live_api.record_answer("searches", root, record["id"]) == (200, first)  # nothing changed
    record["trials"][0]["state"] = "running"  # a trial starts: the page's table changes
    store.save(record)
    second = live_api.record_answer("searches", root, record["id"])[1]
    assert second["signature"] != first["signature"] and second["active"]
    record["state"] = "finished"
    store.save(record)
    assert live_api.record_answer("searches", root, record["id"])[1]["active"] is False
    for bad in ("missing", "../searches", "a/b", "", "..", ".hidden"):
        assert live_api.record_answer("searches", root, bad) == (404, {"error": "no such job"})
    assert live_api.record_url("searches", "a b") == "/api/workbench/searches/a%20b/live"


def test_a_learning_curve_is_watched_by_its_record_too(workspace, toy_csv):
    from core.learning_curve import CurveStore
    from tests.conftest import tiny_run_config

    store = CurveStore(workspace / "curves")
    record = store.create(tiny_run_config(toy_csv, "tiny"))
    root = str(workspace / "curves")
    code, first = live_api.record_answer("curves", root, record["id"])
    assert code == 200 and first["active"] and first["state"] == "queued"
    record["points"][0]["state"] = "finished"
    store.save(record)
    assert live_api.record_answer("curves", root, record["id"])[1]["signature"] != first["signature"]
    assert live_api.record_answer("curves", root, "nope") == (404, {"error": "no such job"})
    paths = [r.path for r in live_api.routes()]
    assert paths == [
        live_api.ROUTE,
        "/api/workbench/searches/{record_id}/live",
        "/api/workbench/curves/{record_id}/live",
    ]
