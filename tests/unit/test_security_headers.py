"""The app refuses to be framed by other sites (issue 19): serve.py wraps app.py in st.App with a middleware
that sets X-Frame-Options and CSP frame-ancestors on every HTTP response; start.sh runs serve.py; the browser
test checks the headers on a live server (tests/e2e/test_hostile_browser.py)."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from ui.headers import HEADERS, SecurityHeaders

ROOT = Path(__file__).resolve().parents[2]


def _call(middleware, scope, start_headers):
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(app)(scope, receive, send))
    return sent


def test_every_http_response_gets_the_headers_once():
    sent = _call(SecurityHeaders, {"type": "http"}, [(b"x-frame-options", b"SAMEORIGIN"), (b"etag", b"1")])
    headers = dict(sent[0]["headers"])
    assert headers[b"x-frame-options"] == b"DENY"  # a weaker one from inside is replaced, not duplicated
    assert headers[b"content-security-policy"] == b"frame-ancestors 'none'"
    assert [k for k, _ in sent[0]["headers"]].count(b"x-frame-options") == 1 and headers[b"etag"] == b"1"
    assert sent[1] == {"type": "http.response.body", "body": b"ok"}  # the body passes untouched


def test_websockets_pass_through_unchanged():
    sent = _call(SecurityHeaders, {"type": "websocket"}, [(b"a", b"b")])
    assert sent[0]["headers"] == [(b"a", b"b")]


def test_serve_py_is_an_st_app_with_the_middleware_and_start_sh_runs_it():
    tree = ast.parse((ROOT / "serve.py").read_text())
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
    app = assigned["app"]  # streamlit run finds an ASGI app by this name
    assert ast.unparse(app.func) == "st.App" and "Middleware(SecurityHeaders)" in ast.unparse(app)
    assert "app.py" in ast.unparse(app.args[0])
    assert "streamlit run serve.py" in (ROOT / "start.sh").read_text()
    doc = (ROOT / "docs" / "SECURITY.md").read_text()
    for name, value in HEADERS.items():
        assert name in doc and value in doc
