"""Every page's file and title in one place, so links, switches and tests name pages by constant, not by path.

The page scripts live in views/, not pages/: Streamlit reserves a pages/ folder for its old multipage mode, which
would take over the first visit to a page's URL before app.py's st.navigation has run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageRef:
    path: str  # relative to the app's folder, as st.Page and st.switch_page take it
    title: str
    icon: str


HOME = PageRef("views/home.py", "Home", ":material/home:")
DATA = PageRef("views/data.py", "Data", ":material/table:")
TRAIN = PageRef("views/train.py", "Train", ":material/model_training:")
TUNE = PageRef("views/tune.py", "Tune", ":material/tune:")
EVALUATE = PageRef("views/evaluate.py", "Evaluate", ":material/fact_check:")
PLAYGROUND = PageRef("views/playground.py", "Playground", ":material/chat:")
COMPARE = PageRef("views/compare.py", "Compare", ":material/compare:")
RUNS = PageRef("views/runs.py", "Runs", ":material/history:")

ALL = (HOME, DATA, TRAIN, TUNE, EVALUATE, PLAYGROUND, COMPARE, RUNS)
