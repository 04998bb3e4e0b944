"""The workbench as an ASGI app with security headers: `streamlit run serve.py` (start.sh does this).

`streamlit run app.py` serves the same pages, but Streamlit sends no header that forbids framing; run through
this file, every response says the app may not be shown inside another site's frame (clickjacking), which
Streamlit's own config cannot set. See docs/SECURITY.md.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from ui.headers import SecurityHeaders

app = st.App(str(Path(__file__).resolve().parent / "app.py"), middleware=[Middleware(SecurityHeaders)])
