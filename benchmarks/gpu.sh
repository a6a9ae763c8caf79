#!/usr/bin/env bash
# GPU check for the MediaFM model (one H100/H200, < 8 min, installs nothing; needs torch with CUDA).
#   bash benchmarks/gpu.sh
# Prints: base at 512 shots, bf16 autocast: step time, shots/s, tokens/s, MFU, peak memory
# (eager Muon, eager AdamW, compiled, compiled 2x batch), then a short end-to-end `mediafm
# pretrain` of `base` on a synthetic store (bf16 + compile path, checkpoints, model card).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print('torch', torch.__version__, torch.cuda.get_device_name())"

echo "== 1. throughput (benchmarks/pretrain.py --gpu-only)"
timeout 300 "$PY" benchmarks/pretrain.py --gpu-only --gpu-batch "${GPU_BATCH:-32}"

echo "== 2. end-to-end: mediafm pretrain --preset base on 200 synthetic titles x 600 shots (dim 2688)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" - "$WORK/store" <<'PYEOF'
import sys, time
from mediafm_testing.synthetic import vector_store
t = time.perf_counter()
vector_store(sys.argv[1], 120_000, dim=2688, shots_per_title=600)
print(f"synthetic store: {time.perf_counter() - t:.1f} s")
PYEOF
t0=$(date +%s)
timeout 180 "$PY" -m mediafm.cli.main pretrain "$WORK/store" --out "$WORK/model" --preset base --batch-size 32 \
  --max-steps 60 --warmup-steps 10 --compile --checkpoint-every 1000 2>&1 | tr '\r' '\n' | tail -n 4 \
  || echo "end-to-end pretrain FAILED (see above)"
echo "end-to-end wall: $(( $(date +%s) - t0 )) s (includes cache build, compile, validation)"
tail -n 3 "$WORK/model/metrics.csv"
head -n 8 "$WORK/model/MODEL_CARD.md"
