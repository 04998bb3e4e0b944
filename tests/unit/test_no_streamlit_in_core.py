"""core/ is the engine: it must never import streamlit, directly or through anything it imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "import_module",
            "__import__",
        ):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_no_core_source_file_imports_streamlit():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 12  # the scan really looked at the engine
    offenders = {
        str(f.relative_to(ROOT)): sorted(n for n in _imported_names(f) if n.split(".")[0] == "streamlit") for f in files
    }
    assert {f: n for f, n in offenders.items() if n} == {}


def test_the_scan_would_catch_an_import(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import os\n\ndef f():\n    from streamlit.runtime import x\n    import streamlit as st\n")
    assert {"streamlit", "streamlit.runtime"} <= _imported_names(sample)


def test_importing_every_core_module_does_not_load_streamlit():
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import core\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, 'core.') if m.name != 'core.__main__')\n"
        "for n in names: importlib.import_module(n)\n"
        "print(json.dumps({'modules': names, 'streamlit': sorted(m for m in sys.modules if m.split('.')[0] == "
        "'streamlit')}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"core.training", "core.models", "core.jobs", "core.cli", "core.generation"} <= set(found["modules"])
    assert found["streamlit"] == []


def _core_imports(path: Path) -> set[str]:
    """The core modules ``path`` imports, at the top or inside a function (both make a cycle)."""
    return {name for name in _imported_names(path) if name.startswith("core.")} - {f"core.{path.stem}"}


def test_core_modules_import_each_other_without_cycles():
    """A cycle (evaluation and generation used to import each other) makes the import order matter."""
    graph = {f"core.{p.stem}": _core_imports(p) for p in CORE.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module) :] + [module]))
        if module in done or module not in graph:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert {"core.scoring"} <= graph["core.generation"] and "core.evaluation" not in graph["core.generation"]
