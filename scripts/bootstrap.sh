#!/usr/bin/env bash
# Create (or refresh) the virtual environment when the requirements changed. Sourced by start.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="${1:-requirements.txt}"
PY="${PYTHON:-python3}"
stamp_of() { cat "$ROOT/requirements.txt" "$ROOT/$REQ" | sha256sum | cut -d' ' -f1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the virtual environment in .venv (first run only, about a minute)..."
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.stamp-$REQ" 2>/dev/null)" != "$(stamp_of)" ]; then
  echo "Installing $REQ ..."
  # torch is pinned to 2.13.0: a CPU build. GPU users install their CUDA build of torch 2.13.0 first (README).
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/$REQ"
  stamp_of > "$VENV/.stamp-$REQ"
fi
