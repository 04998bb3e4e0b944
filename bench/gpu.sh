#!/usr/bin/env bash
# The engine against the fastest Trainer set-up on a CUDA GPU, on the same jobs as the CPU benchmarks:
#
#     bench/gpu.sh            # about 10 minutes on one recent GPU
#     bench/gpu.sh --quick    # a few minutes: smaller jobs, one round
#
# 1. Classification, short sentences (bench/train_classifier.py --data short): the engine's defaults against
#    transformers.Trainer with bf16, adamw_torch_fused, SDPA attention (transformers' default), dynamic padding and
#    length grouping, two rounds in turns. Samples/s, the whole process and the accuracy.
# 2. Classification, longer reviews (--data reviews), the same two.
# 3. Causal LM (bench/train_lm.py): the generation default against the Trainer (bf16, fused AdamW) on the same
#    packed 128-token blocks. Tokens/s and the validation loss.
# Every table is against the bf16 + fused Trainer; each configuration runs in its own process, one after
# another. On a machine without CUDA it says so and exits with 2 (the CPU figures come from the scripts alone).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench/gpu.sh: torch sees no CUDA device on this machine; nothing was run." >&2
    echo "Install torch's CUDA build for your driver first (see the README), then run this again." >&2
    exit 2
fi
"$PY" - <<'EOF'
import torch
p = torch.cuda.get_device_properties(0)
print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}; "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}; native bf16: {p.major >= 8}")
EOF
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,utilization.gpu --format=csv; fi

if ((quick)); then
    cls_short=(--train 2000 --val 400 --rounds 1)
    cls_long=(--train 1000 --val 200 --rounds 1)
    lm=(--docs 1500)
else
    cls_short=(--train 6920 --val 872 --rounds 2)
    cls_long=(--train 3000 --val 500 --rounds 2)
    lm=(--docs 6000)
fi

echo; echo "### 1. classification, short sentences"
"$PY" bench/train_classifier.py --device cuda --data short "${cls_short[@]}" \
    --only engine,trainer_bf16 --baseline trainer_bf16
echo; echo "### 2. classification, longer reviews"
"$PY" bench/train_classifier.py --device cuda --data reviews "${cls_long[@]}" \
    --only engine,trainer_bf16 --baseline trainer_bf16
echo; echo "### 3. causal LM, packed 128-token blocks"
"$PY" bench/train_lm.py --device cuda "${lm[@]}" --only engine,trainer_bf16 --baseline trainer_bf16
