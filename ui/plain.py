"""Outside strings (texts, labels, column names, model output) shown as plain text, never markup.

Kept in one small module so that it switches to the shared escaping helper (ui.safe) in one place when it lands.
"""

from __future__ import annotations

import html
import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:])")


def md(text: object) -> str:
    """``text`` escaped for st.markdown / st.caption / st.success...: every markdown and directive character
    (``:red[...]``, ``:material/...:``) backslash-escaped, so it shows exactly as typed."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def chart(text: object, limit: int = 60) -> str:
    """``text`` for a plotly label, legend or hover: plotly renders a subset of HTML, so escape it (and cut long
    texts, which would push the plot aside)."""
    text = str(text)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")
