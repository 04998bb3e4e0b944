#!/usr/bin/env bash
# Run the whole test suite (creates .venv on first use; installs Debian's chromium for the browser test).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing chromium for the end-to-end browser test..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "Could not install chromium; the browser test will say so."
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .          # lint and format first: seconds, and the version is pinned in requirements-dev.txt
.venv/bin/ruff format --check .
# Two workers (pytest-xdist), one per core: much of a test's time is a subprocess starting or a browser waiting,
# and each worker runs torch with one thread (tests/conftest.py). WORKBENCH_TEST_WORKERS=0 runs in one process.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${WORKBENCH_TEST_WORKERS:-2}" "$@"
