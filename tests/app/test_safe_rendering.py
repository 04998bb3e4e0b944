"""Outside strings never reach a markdown or plotly renderer unescaped (issue 19, item 1).

The scan reads every page script and page helper (AST, no import) and finds each call that renders its text
argument as markdown: ``st.markdown``, the alerts, ``st.caption``, ``st.write``, titles and headers, toasts,
metric labels, values and deltas, widget labels, expander labels. Each such argument must be built only from
string literals, numbers (a format spec such as ``:,`` or ``.1%``, or ``len(...)``), the helpers of ``ui.safe``,
and the few names in ALLOWED, each with its reason. Anything else (a file name, a label, a URL parameter, an
error message) is reported with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import plotly.io as pio
import pytest

from ui import charts, safe

ROOT = Path(__file__).resolve().parents[2]
SCANNED = sorted([*(ROOT / "views").glob("*.py"), *(ROOT / "ui").glob("*.py"), ROOT / "app.py"])

# Calls whose first argument (the body or the label) is rendered as markdown.
MARKDOWN_FIRST = {
    "markdown", "warning", "info", "error", "success", "caption", "write", "title", "header", "subheader",
    "toast", "expander", "button", "download_button", "page_link", "checkbox", "toggle", "radio", "selectbox",
    "multiselect", "text_input", "text_area", "number_input", "slider", "file_uploader", "popover", "tabs",
    "write_stream", "progress",
}  # fmt: skip
# st.metric renders its label, value and delta as markdown.
METRIC_ARGS = 3
KEYWORDS = {"label", "body", "text", "help"}
METRIC_KEYWORDS = {"value", "delta"}
# Their first positional argument is a number or a page, not text.
NO_POSITIONAL = {"progress", "page_link"}
NOT_STREAMLIT = {"log", "logger", "logging", "fh", "sys"}
# finding_markdown (ui.i18n) escapes a finding's data-borne parameters with md before filling the catalog text.
SAFE_HELPERS = {
    "md",
    "md_block",
    "md_code",
    "plot_text",
    "plot_texts",
    "html_text",
    "hide_paths_md",
    "finding_markdown",
}
# Builders of HTML for unsafe_allow_html, each passing every outside string through ui.safe.html_text.
HTML_BUILDERS = {"highlighted"}
# Calls returning text built from numbers and the program's own words only.
NUMERIC_CALLS = {"len", "duration", "metric", "count", "int", "float", "round", "hardware_line", "state_badge"}
# Names known to hold program text, with why; keep this list short.
ALLOWED = {
    "label": "pickers/forms: the caller's own literal label",
    "help_text": "forms: the config field's docstring",
    "title": "nav: a page title from ui/nav.py",
    "text": "home: the STEPS table's literal descriptions",
    "doing": "guard: what the page was doing, always a literal at the call site",
    "flash": "train page: a message the program built, its run id through md_code",
}


def _callee(func: ast.expr) -> str | None:
    """The render method a call reaches (``st.info``, ``c[0].metric``, ``LEVEL_SHOW.get(x, st.info)``)."""
    if isinstance(func, ast.Attribute):
        base = func.value
        if isinstance(base, ast.Name) and base.id in NOT_STREAMLIT:
            return None
        if func.attr in MARKDOWN_FIRST or func.attr == "metric":
            return func.attr
        return None
    # A renderer picked at run time: (st.error if failed else st.caption)(...), LEVEL_SHOW.get(level, st.info)(...)
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in MARKDOWN_FIRST
            and isinstance(node.value, ast.Name)
            and node.value.id == "st"
        ):
            return node.attr
    return None


def _safe(node: ast.expr | None, assigned: dict[str, list[ast.expr]] | None = None, seen=frozenset()) -> bool:
    """Whether ``node`` is built only from literals, numbers and ui.safe; a local name is judged by what is
    assigned to it in the same file (every assignment must be safe)."""
    assigned = assigned if assigned is not None else _ASSIGNED
    if node is None:
        return True
    if (
        isinstance(node, ast.Name)
        and node.id in assigned
        and node.id not in seen
        and all(_safe(v, assigned, seen | {node.id}) for v in assigned[node.id])
    ):
        return True
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_safe_formatted(v, assigned, seen) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return _safe_formatted(node, assigned, seen)
    if isinstance(node, ast.BinOp):
        return _safe(node.left, assigned, seen) and _safe(node.right, assigned, seen)
    if isinstance(node, ast.IfExp):
        return _safe(node.body, assigned, seen) and _safe(node.orelse, assigned, seen)
    if isinstance(node, ast.BoolOp):
        return all(_safe(v, assigned, seen) for v in node.values)
    if isinstance(node, ast.GeneratorExp | ast.ListComp):  # write_stream(md_block(p) for p in ...)
        return _safe(node.elt, assigned, seen)
    if isinstance(node, ast.Call):
        name = _name(node.func)
        if name in SAFE_HELPERS or name in NUMERIC_CALLS or name in HTML_BUILDERS:
            return True
        if name == "t":  # ui.i18n.t: the catalog's text is the program's own; what fills its fields must be safe
            return all(_safe(a, assigned, seen) for a in node.args) and all(
                _safe(k.value, assigned, seen) for k in node.keywords
            )
        if name == "join":  # ", ".join(md(x) for x in ...): safe when what is joined is
            return all(_safe(a, assigned, seen) for a in node.args)
        return False
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id.isupper():
        return True  # an entry of a module constant (HEADLINES[k]): the program's own text as well
    if isinstance(node, ast.Name):
        return node.id in ALLOWED or node.id.isupper()  # module constants are the program's own text
    if isinstance(node, ast.Attribute):
        return node.attr in ALLOWED or node.attr.isupper()
    return False


def _safe_formatted(node: ast.expr, assigned, seen) -> bool:
    if isinstance(node, ast.Constant):
        return True
    assert isinstance(node, ast.FormattedValue)
    spec = node.format_spec
    if spec is not None and any(
        isinstance(v, ast.Constant) and str(v.value)[-1:] in "d,%fegEG" for v in getattr(spec, "values", [])
    ):
        return True  # a number format: the value is a number, or formatting it raises
    return _safe(node.value, assigned, seen)


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


_ASSIGNED: dict[str, list[ast.expr]] = {}


def _assignments(tree: ast.AST) -> dict[str, list[ast.expr]]:
    out: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
                elif isinstance(target, ast.Tuple):  # a, b = ...: unknown parts
                    for elt in target.elts:
                        if isinstance(elt, ast.Name):
                            out.setdefault(elt.id, []).append(ast.Name("?"))
        elif isinstance(node, ast.AugAssign | ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.setdefault(node.target.id, []).append(node.value or ast.Constant(""))
        elif isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
            out.setdefault(node.target.id, []).append(ast.Name("?"))  # a loop variable: unknown
        elif isinstance(node, ast.arguments):
            for a in [*node.posonlyargs, *node.args, *node.kwonlyargs]:
                out.setdefault(a.arg, []).append(ast.Name("?"))  # a parameter: whatever the caller gives
    return out


def violations(source: str, filename: str) -> list[str]:
    global _ASSIGNED
    found = []
    tree = ast.parse(source)
    _ASSIGNED = _assignments(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = _callee(node.func)
        if callee is None:
            continue
        args = node.args[:METRIC_ARGS] if callee == "metric" else [] if callee in NO_POSITIONAL else node.args[:1]
        keywords = KEYWORDS | (METRIC_KEYWORDS if callee == "metric" else set())
        args += [k.value for k in node.keywords if k.arg in keywords]
        for arg in args:
            if not _safe(arg):
                found.append(f"{filename}:{node.lineno}: {callee}({ast.unparse(arg)[:80]})")
        for k in node.keywords:
            html_on = k.arg == "unsafe_allow_html" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            if html_on and not (node.args and _name(getattr(node.args[0], "func", None)) in HTML_BUILDERS):
                found.append(f"{filename}:{node.lineno}: unsafe_allow_html outside the allow-list")
    return found


def test_pages_pass_outside_strings_through_ui_safe():
    found = []
    for path in SCANNED:
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "Outside strings rendered as markdown without ui.safe:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "st.warning(f\"There is no run named '{run_id}'.\")",
        "st.markdown(f'**{original}**: {len(frame):,} rows')",
        "st.caption(note)",
        "c1.write(f'**{ds.name}**')",
        "col.metric('Label', names[0])",
        "(st.error if failed else st.caption)(status['message'])",
        "LEVEL_SHOW.get(level, st.info)(finding.detail)",
        "st.write(generate(bundle, text, settings))",
        "st.markdown(prompt, unsafe_allow_html=True)",
        "st.expander(f'From {ds.original_name}')",
    ],
)
def test_the_scan_catches_each_unsafe_shape(source):
    assert violations(source, "x.py"), source


@pytest.mark.parametrize(
    "source",
    [
        "st.warning(f\"There is no run named '{md(run_id)}'.\")",
        "st.markdown(f'**{md(original)}**: {len(frame):,} rows, {share:.1%}')",
        "st.caption(md(note))",
        "col.metric('Label', md(names[0]), f'{p:.1%}')",
        "st.markdown(md_block(text))",
        "st.info('No runs yet.')",
        "log.error('failed %s', path)",
    ],
)
def test_the_scan_accepts_escaped_and_numeric_text(source):
    assert not violations(source, "x.py"), source


HOSTILE = [
    "[Session expired, sign in again](https://evil.example/login)",
    "![x](https://evil.example/pixel.png)",
    "<a href='https://evil.example'>click</a>",
    "<img src=https://evil.example/p.png>",
    "https://evil.example/raw",
    "www.evil.example",
    ":red[alarm] :material/warning: $x^2$ **bold** `code` # heading",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_md_leaves_no_markup_character_unescaped(text):
    escaped = safe.md(text)
    # Every markup character is preceded by a backslash; removing the escapes gives the text back.
    assert escaped.replace("\\", "").replace("\u2060", "") == text.replace("\\", "")
    # Bare URLs are linked after escapes are decoded: an invisible word joiner breaks "https://", "www." and "@".
    assert "://" not in escaped and "www." not in escaped.lower()
    for ch in "[]!<>:*`#$_@":
        assert f"\\{ch}" in escaped or ch not in text
    assert "\n" not in safe.md("one\ntwo") and "\u202e" not in safe.md("a\u202eb")


def test_md_block_keeps_lines_and_escapes_each():
    out = safe.md_block("[a](http://x)\n![b](http://y)")
    assert out.split("  \n") == [safe.md("[a](http://x)"), safe.md("![b](http://y)")]


def test_md_code_cannot_be_closed_early():
    assert safe.md_code("x`](http://e)") == "`x'](http://e)`"


def _figure_strings(fig) -> str:
    return pio.to_json(fig)


@pytest.mark.parametrize(
    "build",
    [
        lambda label: charts.class_balance({label: 3, "b": 2}),
        lambda label: charts.confusion_matrix([[1, 0], [0, 1]], [label, "b"]),
        lambda label: charts.per_class_scores({label: {"precision": 1.0, "recall": 1.0, "f1": 1.0}}),
        lambda label: charts.probabilities([label, "b"], [0.7, 0.3]),
        lambda label: charts.compare_curves(
            {label: (pd.DataFrame({"step": [1], "loss": [1.0]}), pd.DataFrame({"step": [1], "val_loss": [1.0]}))}
        ),
    ],
)
def test_chart_labels_from_data_are_escaped(build):
    label = "<a href='https://evil.example'>x</a><img src=https://evil.example/p.png>"
    text = _figure_strings(build(label))
    assert "<a href" not in text and "<img" not in text
    assert "&lt;a href" in text
