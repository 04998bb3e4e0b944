"""Strings from outside the program are shown as text, never as markup: the one place that escapes them.

Data values, labels, file and column names, URL parameters, model output and typed text reach the page in
two renderers that read markup: Streamlit's markdown (``st.markdown``, ``st.warning`` and the other alerts,
``st.caption``, ``st.write`` of a string, metric values and widget labels) and plotly's label syntax (category
labels, hover text, titles and trace names accept ``<a href>``, ``<b>``, ``<br>``...). A phishing link or a
tracking image in a file name or a class label would become live in either. ``tests/app/test_safe_rendering.py``
scans views/ and ui/ for markdown calls fed anything but literals, numbers and these helpers.
"""

from __future__ import annotations

import html
import re
from typing import Any

from core.datasets import CONTROL_CHARS

# Any ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped one is a literal.
# Escaped here: every character that can open markup: links and images ([ ] !), HTML and autolinks (< >),
# bare URL and e-mail autolinks (the : of https:// and the @; a colon before a space is plain), emphasis and code (* ` ~, and _ except inside a word such as max_length, where it cannot open emphasis), tables (|),
# headings (#), Streamlit's extensions (:red[...], :material/icon:, emoji shortcodes, $math$, {}), the
# backslash itself, and the dot of "www." (GFM links www.example.com without a scheme). Quotes, commas,
# brackets and dots elsewhere stay as they are, so a message reads the same in the page source and in tests.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*{}\[\]<>!|~$#@&]|(?<=[wW]{3})\.|:(?=\S)|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_AUTOLINK = re.compile(r"(?i)[a-z][a-z0-9+.-]*:(?=//)|(?<![a-z0-9])www(?=\.)|@")
_JOINER = "\u2060"
# Every ASCII punctuation character, for HTML text (html_text).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Line breaks and other control characters (and the bidi overrides that can make a name read backwards).
_CONTROLS = CONTROL_CHARS


def md(value: Any, *, max_chars: int | None = None) -> str:
    """``value`` as markdown that renders as exactly its text, on one line (for labels and inline use)."""
    text = _CONTROLS.sub(" ", str(value))
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _break_autolinks(text))


def _break_autolinks(text: str) -> str:
    # Streamlit's GFM finds bare URLs (https://..., www.x, a@b.c) in the text *after* escapes are decoded, so no
    # escape stops them (measured in Chromium: "https\://evil.example" became a link). An invisible word joiner
    # (U+2060) after the scheme's colon, after "www" and after "@" breaks the pattern and shows the same text.
    return _AUTOLINK.sub(lambda m: m.group(0) + _JOINER, text)


def md_block(value: Any) -> str:
    """Multi-line text (model output, a typed paragraph) as markdown: every line literal, line breaks kept."""
    lines = str(value).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # A trailing double space is markdown's hard line break, so the text keeps its lines without paragraphs.
    return "  \n".join(md(line) for line in lines)


def md_code(value: Any, *, max_chars: int = 200) -> str:
    """An identifier shown as inline code: a backtick in it cannot end the span, nor anything become a link."""
    text = _CONTROLS.sub(" ", str(value))[:max_chars].replace("`", "'")
    return f"`{text}`"


def plot_text(value: Any) -> str:
    """A string for a plotly label, title, trace name or hover text: its tags and entities shown, not read."""
    return html.escape(_CONTROLS.sub(" ", str(value)), quote=False)


def plot_texts(values) -> list[str]:
    return [plot_text(v) for v in values]


def hide_paths(text: str) -> str:
    """A message with the server's folders cut out: paths inside the workspace or the app become relative.

    Error messages name files ("No file at /srv/wb/workspace/datasets/x.csv"); a visitor needs the name, not
    the server's layout.
    """
    import sys
    from pathlib import Path

    from core.runs import default_workspace

    out = str(text)
    app = Path(__file__).resolve().parent.parent
    for folder, shown in (
        (default_workspace().resolve(), "workspace"),
        (default_workspace(), "workspace"),
        (app, "app"),
        (Path(sys.prefix), "python"),
    ):
        out = out.replace(str(folder), shown)
    return out


def html_text(value: Any) -> str:
    """Text for inside an HTML element that markdown also reads (``unsafe_allow_html``): every markup
    character as a numeric entity, which neither HTML nor markdown treats as syntax."""
    return _PUNCTUATION.sub(lambda m: f"&#{ord(m.group(1))};", _break_autolinks(_CONTROLS.sub(" ", str(value))))
