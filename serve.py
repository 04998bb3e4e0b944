"""The workbench as an ASGI app with security headers: `streamlit run serve.py` (start.sh does this).

`streamlit run app.py` serves the same pages, but Streamlit sends no header that forbids framing; run through
this file, every response says the app may not be shown inside another site's frame (clickjacking), which
Streamlit's own config cannot set. See docs/SECURITY.md. It also answers the live route (ui/live_api.py): the live
page's numbers and curves are then refreshed by the browser, without rerunning the page every few seconds.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from ui import live_api
from ui.headers import SecurityHeaders

app = st.App(
    str(Path(__file__).resolve().parent / "app.py"),
    middleware=[Middleware(SecurityHeaders)],
    # The live numbers as JSON, which the live page's JavaScript asks for instead of rerunning the page.
    routes=live_api.routes(),
)
