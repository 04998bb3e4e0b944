"""The one way into transformers (and peft, which imports it) for code that may run in a thread.

Two threads that import transformers at the same moment hand the second one a half-made module: it reads
"module 'transformers' has no attribute 'AutoConfig'". A Streamlit server runs every rerun and every browser tab
in a thread of its own, so a click while a page is still importing transformers (a few seconds on a busy 2-core
machine) showed the reader "Something went wrong while reading the model". Once the first import has finished,
later imports and lazy attributes are safe; so every function that imports transformers or peft calls
``load_transformers()`` first, and tests/unit/test_hf_import.py checks that each one does.
"""

from __future__ import annotations

import threading
from types import ModuleType

_LOCK = threading.Lock()


def load_transformers() -> ModuleType:
    """transformers, fully imported (the second caller waits for the first instead of seeing half of it)."""
    with _LOCK:
        import transformers

        transformers.AutoConfig  # noqa: B018 - the first attribute loads the lazy import table; here, under the lock
    return transformers
