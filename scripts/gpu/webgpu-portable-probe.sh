#!/usr/bin/env bash
# The portable prefill tile sweep (scripts/probe-webgpu-portable.mjs) on an NVIDIA GPU host, under
# the capture layer of scripts/vkstats so each tile's row carries the driver's register count
# (docs/performance-webgpu.md, issue 15). From a bundle made by gpu-bundle.sh, on the host:
#   bash .gpu/run.sh bash scripts/gpu/webgpu-portable-probe.sh [probe arguments...]
# Output in $OUT: probe-webgpu-portable[-$PROBE_TAG].log and .json.
set -uo pipefail
OUT=${OUT:-/tmp/webgpu-portable-out}
mkdir -p "$OUT"
tag=${PROBE_TAG:+-$PROBE_TAG}
exec > >(tee "$OUT/probe-webgpu-portable$tag.log") 2>&1
start=$SECONDS
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1 | head -3
work=/tmp/webgpu-portable-probe; rm -rf "$work"; mkdir -p "$work/capture"
(cmake -S scripts/vkstats -B "$work/vkb" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$work/vkb" -j8 2>&1 | grep -E 'error|Built target') || echo "vkstats build FAILED"
VK_LAYER_PATH="$work/vkb" VK_INSTANCE_LAYERS=VK_LAYER_SDPA_capture VK_LOADER_LAYERS_ENABLE=VK_LAYER_SDPA_capture SDPA_VKCAPTURE_STATS=1 SDPA_VKCAPTURE_DIR="$work/capture" \
  timeout "${PROBE_TIMEOUT:-400}" node scripts/probe-webgpu-portable.mjs --json "$OUT/probe-webgpu-portable$tag.json" "$@" 2>&1 | grep -v '^Warning: maxDynamic'
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv,noheader 2>&1 | head -2
echo "total $((SECONDS - start)) s"
