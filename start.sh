#!/usr/bin/env bash
# Start the Fine-Tuning Workbench on http://127.0.0.1:8501 (creates .venv on first use).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh requirements.txt
export HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
# serve.py runs app.py with response headers that refuse framing (see docs/SECURITY.md).
exec .venv/bin/python -m streamlit run serve.py "$@"
