"""transformers imported from two threads at once: the app's reruns and tabs are threads (core/hf.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUARDED = ("transformers", "peft")  # peft imports transformers on its own import


def _imports_guarded(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    else:
        return None
    return next((n for n in names if n.split(".")[0] in GUARDED), None)


def _calls_door(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == "load_transformers"
        for n in ast.walk(node)
    )


def _late_imports(body: list[ast.stmt], door_seen: bool) -> list[ast.AST]:
    """Imports of transformers or peft in ``body`` (a function's statements, in order, blocks included) that no
    earlier load_transformers() call precedes."""
    found = []
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # its own scope, checked on its own
        blocks = [getattr(stmt, f) for f in ("body", "orelse", "finalbody") if isinstance(getattr(stmt, f, None), list)]
        blocks += [h.body for h in getattr(stmt, "handlers", [])]
        if blocks:
            for block in blocks:
                found += _late_imports(block, door_seen)
        elif _imports_guarded(stmt) and not door_seen:
            found.append(stmt)
        door_seen = door_seen or _calls_door(stmt)
    return found


def test_every_import_of_transformers_or_peft_comes_after_the_door():
    """In core/, ui/ and views/: no module imports them at the top, and a function that imports them has called
    load_transformers() in an earlier statement of its own body."""
    offenders = []
    for path in sorted([*REPO.glob("core/*.py"), *REPO.glob("ui/*.py"), *REPO.glob("views/*.py"), REPO / "app.py"]):
        if path.name == "hf.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(REPO)
        for stmt in tree.body:
            if name := _imports_guarded(stmt):
                offenders.append(f"{where}:{stmt.lineno} imports {name} at the top of the module")
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in _late_imports(func.body, door_seen=False):
                offenders.append(f"{where}:{node.lineno} imports {_imports_guarded(node)} before load_transformers()")
    assert not offenders, "\n".join(offenders)


def test_the_scan_sees_an_import_before_the_door():
    """The scan above catches an import before the door, in a block too, and passes one after it."""
    bad = ast.parse("def f(x):\n    if x:\n        import peft\n    load_transformers()\n").body[0]
    good = ast.parse("def f(x):\n    load_transformers()\n    if x:\n        from peft import A\n").body[0]
    assert [n.lineno for n in _late_imports(bad.body, door_seen=False)] == [3]
    assert _late_imports(good.body, door_seen=False) == []


def test_two_threads_reading_a_model_at_once(tiny_bert_dir):
    """What a click during a page's first import did: a second thread asked for a model's outline while the first
    was still importing transformers, and got "module 'transformers' has no attribute 'AutoConfig'". A fresh
    process, so that transformers is not imported yet; the second thread starts at several points of the first's
    import."""
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        sys.path.insert(0, {str(REPO)!r})
        from core.inference import outline_model
        errors = []
        def outline(source):
            try:
                outline_model(source, "classification")
            except Exception as err:
                errors.append(repr(err))
        first = threading.Thread(target=outline, args=("default",))
        first.start()
        time.sleep(float(sys.argv[1]))
        second = threading.Thread(target=outline, args=({str(tiny_bert_dir)!r},))
        second.start()
        first.join(); second.join()
        print(errors or "ok")
        """
    )
    for delay in ("0", "0.5"):
        done = subprocess.run([sys.executable, "-c", script, delay], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == "ok", (delay, done.stdout[-2000:])
