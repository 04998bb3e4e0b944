"""Session-state keys are defined once (ui/keys.py): no page or helper spells one as a string literal."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app.py", *sorted((ROOT / "views").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]


def _is_session_state(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "session_state"


def _literal(node: ast.AST) -> bool:
    return isinstance(node, (ast.Constant, ast.JoinedStr)) and not (
        isinstance(node, ast.Constant) and not isinstance(node.value, str)
    )


def literal_keys(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript) and _is_session_state(node.value) and _literal(node.slice):
            found.append(f"{path.name}:{node.lineno} st.session_state[{ast.unparse(node.slice)}]")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_session_state(node.func.value)
            and node.args
            and _literal(node.args[0])
        ):
            found.append(f"{path.name}:{node.lineno} st.session_state.{node.func.attr}({ast.unparse(node.args[0])})")
        elif (
            isinstance(node, ast.Compare)
            and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)
            and _is_session_state(node.comparators[0])
            and _literal(node.left)
        ):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_session_state_keys_come_from_ui_keys():
    assert len(SOURCES) > 10
    offenders = [hit for path in SOURCES if path.name != "keys.py" for hit in literal_keys(path)]
    assert offenders == []


def test_the_scan_finds_a_literal_key(tmp_path):
    sample = tmp_path / "page.py"
    sample.write_text('import streamlit as st\nst.session_state["flash"] = 1\nx = st.session_state.get(f"x_{1}")\n'
                      'if "flash" in st.session_state:\n    pass\n')  # fmt: skip
    assert len(literal_keys(sample)) == 3
