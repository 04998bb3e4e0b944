"""The live numbers as JSON for the page's own JavaScript: ``GET /api/workbench/runs/{run_id}/live``.

serve.py (what start.sh runs) mounts the route. With it, the live panel and the sidebar ask for a run's numbers
from the browser every few seconds and draw them themselves (ui/live_ticker.py), instead of a Streamlit timer that
reruns the page's Python and redraws its elements each time. Without it (``streamlit run app.py``, or a server with
a base URL path, which user routes do not follow) the pages keep their timed fragments.

Read-only and small: a run's state, numbers and new curve points (core/live_feed.py). The route is as reachable as
the app itself (the server binds to this machine; see README "Sharing on a network"), and it shows nothing the
live page does not.
"""

from __future__ import annotations

# Imported by serve.py and app.py before any page: the engine's modules are imported where they are used.
import os
import re
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

ROUTE = "/api/workbench/runs/{run_id}/live"
# A background job's state and signature: a hyperparameter search, a learning curve (the Tune page).
RECORD_ROUTE = "/api/workbench/{kind}/{record_id}/live"
RECORD_KINDS = ("searches", "curves")
# How often the page's JavaScript asks while the run trains (and its tab is visible). A request costs the server a
# status read and the metrics' new lines, and the browser a few DOM updates: no rerun, no redraw of the page.
POLL_S = 4.0
_MAX_FEEDS = 16

# A feed reads its file at most every FEED_INTERVAL_S: half of both refresh intervals (the browser's POLL_S, and the
# timed panel's ui/live.REFRESH_S without the route), so each refresh sees the lines written since the last one.
FEED_INTERVAL_S = POLL_S / 2

_state: dict[str, bool] = {"mounted": False}
_lock = threading.Lock()
_feeds: OrderedDict[str, Any] = OrderedDict()  # metrics path -> CurveFeed
_runs: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (root, run id) -> Run (its settings checked once)


def routes() -> list:
    """The routes to mount on the app (serve.py). Mounting them is what turns the browser-side live view on."""
    from starlette.routing import Route

    _state["mounted"] = True
    records = [
        Route(RECORD_ROUTE.replace("{kind}", kind), _record_endpoint(kind), methods=["GET"]) for kind in RECORD_KINDS
    ]
    return [Route(ROUTE, _endpoint, methods=["GET"]), *records]


def available() -> bool:
    """Whether this server answers the route where the page will ask for it."""
    if not _state["mounted"]:
        return False
    from streamlit import config

    # st.App mounts user routes at their own path, outside server.baseUrlPath: behind a prefix the page's
    # request would miss them, so such a server keeps the timed fragments.
    return not str(config.get_option("server.baseUrlPath") or "").strip("/")


def url(run_id: str) -> str:
    return ROUTE.format(run_id=quote(run_id, safe=""))


def record_url(kind: str, record_id: str) -> str:
    return RECORD_ROUTE.format(kind=kind, record_id=quote(record_id, safe=""))


def shared_feed(metrics_path: str):
    """The run's CurveFeed, one per run for the whole server: the pages' reruns (ui/live.py) and the browsers'
    requests here read and tabulate its new lines once."""
    from core.curves import CurveFeed

    with _lock:
        feed = _feeds.get(metrics_path)
        if feed is None:
            feed = _feeds[metrics_path] = CurveFeed(metrics_path, min_interval=FEED_INTERVAL_S)
        _feeds.move_to_end(metrics_path)
        while len(_feeds) > _MAX_FEEDS:
            _feeds.popitem(last=False)
        return feed


def _run(root: str, run_id: str):
    """The run, read and checked on the first request (a bad or missing name raises a WorkbenchError)."""
    from core.runs import RunStore

    key = (root, run_id)
    with _lock:
        if key in _runs:
            _runs.move_to_end(key)
            return _runs[key]
    run = RunStore(root).get(run_id)
    with _lock:
        _runs[key] = run
        while len(_runs) > _MAX_FEEDS:
            _runs.popitem(last=False)
        return run


def answer(root: str, run_id: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one request; a bad request gets a short reason, never a traceback."""
    from core.errors import WorkbenchError
    from core.live_feed import live_snapshot

    try:
        since = int(query.get("since", "0") or 0)
    except ValueError:
        return 400, {"error": "since must be a whole number"}
    try:
        run = _run(root, run_id)
    except WorkbenchError:
        return 404, {"error": "no such run"}
    if not run.dir.exists():  # deleted since it was first asked for
        with _lock:
            _runs.pop((root, run_id), None)
        return 404, {"error": "no such run"}
    feed = shared_feed(str(run.metrics_path))
    body = live_snapshot(run, feed, since=since, points=query.get("points", "1") != "0")
    body["runs"] = runs_version(root)
    return 200, body


def runs_version(root: str) -> str:
    """Changes when a run folder is made or deleted (the folder's own time; a string: nanoseconds exceed the
    browser's exact integers). The sidebar watches it to show a run another process starts."""
    try:
        # With the count as well: a file system whose times are coarse still tells a new folder.
        return f"{os.stat(root).st_mtime_ns}-{len(os.listdir(root))}"
    except OSError:
        return ""


def _endpoint(request):
    # A plain function: Starlette runs it in a worker thread, so reading the files never blocks the event loop.
    from starlette.responses import JSONResponse

    from ui.state import workspace

    code, body = answer(str(workspace() / "runs"), request.path_params["run_id"], dict(request.query_params))
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})


_RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,80}$")


def _load_record(kind: str, root: str, record_id: str) -> dict[str, Any]:
    if kind == "searches":
        from core.search import SearchStore

        return SearchStore(root).get(record_id)
    from core.learning_curve import CurveStore

    return CurveStore(root).get(record_id)


def record_answer(kind: str, root: str, record_id: str) -> tuple[int, dict[str, Any]]:
    """A background job's state and the signature of its record (``kind``: "searches" or "curves"). The Tune page
    reruns its status when the record changes (a trial or a point starts or ends), not every few seconds while
    nothing does."""
    from core.errors import WorkbenchError
    from core.live_feed import record_signature
    from core.runs import ACTIVE

    if not _RECORD_ID.match(record_id or ""):
        return 404, {"error": "no such job"}
    try:
        record = _load_record(kind, root, record_id)
    except (WorkbenchError, OSError, ValueError, KeyError):
        return 404, {"error": "no such job"}
    state = record.get("state")
    return 200, {"state": str(state), "active": state in ACTIVE, "signature": record_signature(record)}


def _record_endpoint(kind: str):
    def endpoint(request):
        from starlette.responses import JSONResponse

        from ui.state import workspace

        code, body = record_answer(kind, str(workspace() / kind), request.path_params["record_id"])
        return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})

    return endpoint
