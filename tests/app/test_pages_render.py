"""Every page renders on an empty workspace without an exception or an error message."""

from __future__ import annotations

import pytest

from tests.app.conftest import PAGES, button, no_exception, open_app


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_workspace(workspace, page):
    at = open_app(page)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    expected = "Fine-Tuning Workbench" if page.endswith("home.py") else page[6:-3].capitalize()
    assert [t.value for t in at.title] == [expected]


def test_home_lists_the_steps_and_the_hardware(workspace):
    at = open_app()
    no_exception(at)
    assert at.title[0].value == "Fine-Tuning Workbench"
    labels = [link.label for link in at.get("page_link")]
    assert labels[:5] == ["1. Data", "2. Train", "3. Evaluate", "4. Playground", "5. Compare"]
    assert any("CPU cores" in m.value for m in at.markdown)
    assert button(at, "Try the sample")


def test_first_visit_straight_to_a_page_still_goes_through_the_router(workspace):
    """A fresh server whose first request is /runs (a bookmark, a reload after a restart) gets app.py's
    navigation and sidebar, not Streamlit's old pages/-folder mode."""
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("views/runs.py")  # before any run: the page is found by file name, as a URL would be
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Runs"]
    assert any(c.value == "No training running." for c in at.sidebar.caption)  # written by app.py only
