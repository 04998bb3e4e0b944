"""The order in which the sidebar's lines reach the browser when a run ends: no moment shows the finished run's
button under "No training running.".

A browser may paint between any two messages, and on a busy server several of a pass's messages leave in one go.
Streamlit merges a message into an earlier one still queued for the same place (ForwardMsgQueue.enqueue), so the
pass's "empty this place" for the first line and the new caption written there become one message, sent where the
first "empty" stood: ahead of the "empty" for the old bar and button. The real browser test caught that once in a
loaded CI run (tests/e2e/test_sidebar_browser.py). AppTest never flushes its queue during a run, so the messages of
one pass are the worst case: here they are applied one by one to the sidebar as the browser holds it, and every
intermediate state is checked.
"""

from __future__ import annotations

import subprocess
import sys

from streamlit.testing.v1.local_script_runner import LocalScriptRunner

from core.config import RunConfig
from core.runs import RunStatus, RunStore, process_started
from tests.app.conftest import no_exception, open_app

NONE, OPEN = "No training running.", "Open the live view"
SIDEBAR = 1  # a delta path's first number: 0 the main area, 1 the sidebar


def _text(msg) -> str:
    element = msg.delta.new_element
    kind = element.WhichOneof("type")
    if kind == "markdown":
        return element.markdown.body
    if kind == "button":
        return element.button.label
    if kind == "progress":
        return element.progress.text
    return ""


def _apply(shown: dict[tuple, tuple[str, str]], msg) -> None:
    """One message applied as the browser applies it: an element replaces whatever stood at its place (children
    included); a block keeps the children of a block it replaces (worst case: they stay until overwritten)."""
    path = tuple(msg.metadata.delta_path)
    kind = msg.delta.WhichOneof("type")
    if kind not in ("new_element", "add_block"):
        return
    keep_children = kind == "add_block" and shown.get(path, ("", ""))[0] == "block"
    for place in list(shown):
        if place[: len(path)] == path and (place == path or not keep_children):
            del shown[place]
    shown[path] = ("block", "") if kind == "add_block" else ("element", _text(msg))


def _sidebar(shown: dict[tuple, tuple[str, str]]) -> str:
    return "\n".join(text for path, (_, text) in sorted(shown.items()) if path[0] == SIDEBAR and text)


def test_a_run_ending_never_shows_its_button_under_the_new_line(workspace, monkeypatch):
    passes = []
    real_run = LocalScriptRunner.run

    def recording(self, *args, **kwargs):
        tree = real_run(self, *args, **kwargs)
        passes.append(list(self.forward_msgs()))  # composed as the server would compose one unflushed pass
        return tree

    monkeypatch.setattr(LocalScriptRunner, "run", recording)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        run = RunStore().create(RunConfig(name="ending"), run_id="ending")
        run.set_status(
            RunStatus.RUNNING, step=70, total_steps=120, pid=owner.pid, pid_started=process_started(owner.pid)
        )
        at = open_app()
        no_exception(at)
        shown: dict[tuple, tuple[str, str]] = {}
        for msg in passes[-1]:
            if msg.HasField("delta"):
                assert not msg.HasField("ref_hash")
                _apply(shown, msg)
        assert OPEN in _sidebar(shown) and NONE not in _sidebar(shown)

        run.set_status(RunStatus.FINISHED, step=120, total_steps=120)
        at.run()
        no_exception(at)
        seen = []
        for msg in passes[-1]:
            if msg.HasField("delta"):
                _apply(shown, msg)
                seen.append(_sidebar(shown))
    finally:
        owner.kill()
        owner.wait()
    assert NONE in seen[-1] and OPEN not in seen[-1]
    both = [text for text in seen if NONE in text and OPEN in text]
    assert not both, f"{len(both)} of {len(seen)} states showed the finished run's button under the new line: {both[0]}"
