"""The Tune page: a form becomes a search that runs in the background, its table and chart come from disk,
and one click starts the best trial's settings as a full run."""

from __future__ import annotations

from core.datasets import DatasetSettings, DatasetStore
from core.runs import RunStore
from core.search import SearchStore
from tests.app.conftest import button, fragment_timers, no_exception, open_app, wait_until_done, widget
from tests.conftest import wait_for
from tests.unit import test_live_feed
from tests.unit.test_search import trials_in_threads  # noqa: F401 - autouse: trials as threads
from tests.unit.test_strategies import one_thread  # noqa: F401 - autouse: tiny models, one thread

owner = test_live_feed.owner  # a fixture: a live process that owns a search


def test_empty_workspace_says_what_to_do(workspace):
    at = open_app("views/tune.py")
    no_exception(at)
    assert any("No dataset yet" in i.value for i in at.info)


def test_search_from_the_form_then_start_the_best(workspace, toy_csv, tiny_bert_dir):
    settings = DatasetSettings(task="classification", text_column="text", label_column="label")
    DatasetStore().save("toy", toy_csv, toy_csv.name, settings, rows=240)
    at = open_app("views/tune.py")
    no_exception(at)
    widget(at.text_input, "Model").set_value(str(tiny_bert_dir))
    at.multiselect(key="tune_lr").set_value([1e-4, 3e-3])
    widget(at.selectbox, "Judge trials by").set_value("val_loss")
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    button(at, "Start the search").click()
    at.run()
    no_exception(at)

    [record] = SearchStore().list()
    assert at.query_params["search"] == record["id"]
    wait_for(lambda: SearchStore().get(record["id"])["state"] not in ("queued", "running"), "the search to end")
    record = SearchStore().get(record["id"])
    assert record["state"] == "finished", record["message"]
    at.run()
    no_exception(at)
    table = at.dataframe[0].value
    assert list(table["trial"]) == [1, 2]
    assert table.loc[table["best"], "trial"].item() == record["best_trial"]
    assert at.get("plotly_chart")
    assert any("Best: trial" in s.value for s in at.success)

    button(at, "Start the best config as a full run").click()
    at.run()
    no_exception(at)
    best = [r for r in RunStore().list() if r.config().name == f"search-{record['id']}-best"]
    assert len(best) == 1
    assert wait_until_done(best[0]) == "finished"
    best_lr = record["trials"][record["best_trial"] - 1]["params"]["learning_rate"]
    assert best[0].config().train.learning_rate == best_lr


def test_with_the_live_route_a_running_search_has_no_timer_and_watches_its_record(
    workspace, toy_csv, owner, monkeypatch
):
    """Served by serve.py: the status fragment reruns when the search's record changes (the browser asks), not
    every 2 s (each time it sent the same table and chart)."""
    import ui.live_ticker
    from ui import live_api

    timers = fragment_timers(monkeypatch)
    watched: list[dict] = []
    monkeypatch.setattr(ui.live_ticker, "_component", lambda **kwargs: watched.append(kwargs))
    monkeypatch.setitem(live_api._state, "mounted", True)
    store, record = test_live_feed.search_record(workspace, toy_csv, owner)
    at = open_app("views/tune.py", search=record["id"])
    no_exception(at)
    assert "search_status" in timers and timers["search_status"] is None
    [mounted] = [w for w in watched if w["data"]["part"] == "watch"]
    route = live_api.record_answer("searches", str(workspace / "searches"), record["id"])[1]
    assert mounted["data"]["watch"] == {"signature": route["signature"]}
    url = live_api.record_url("searches", record["id"])
    assert mounted["data"]["url"] == url and mounted["on_changed_change"] is not None
    assert list(at.dataframe[0].value["trial"]) == [1, 2]  # the table is still the page's

    monkeypatch.setitem(live_api._state, "mounted", False)  # streamlit run app.py: the timer as before
    at.run()
    assert timers["search_status"] == 2.0
