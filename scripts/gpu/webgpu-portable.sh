#!/usr/bin/env bash
# The portable WebGPU kernels on an NVIDIA GPU host, in one run of about 4-6 minutes
# (docs/performance-webgpu.md). From a bundle made by gpu-bundle.sh, on the host:
#   bash .gpu/run.sh bash scripts/gpu/webgpu-portable.sh
# Steps: the machine; PyTorch FLASH / EFFICIENT / cuDNN / MATH at the same shapes (decode and
# prefill; also the GPU warm-up); scripts/bench-webgpu-portable.mjs (correctness of every pinned
# portable and decode variant, then prefill TF/s and decode K/V TB/s, kernel and whole call).
# Environment: PORTABLE_ARGS (extra arguments of the WebGPU bench), PORTABLE_TORCH=0 (skip PyTorch).
# Output in $OUT: webgpu-portable.log, torch-portable.json, webgpu-portable.json.
set -uo pipefail
OUT=${OUT:-/tmp/webgpu-portable-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/webgpu-portable.log") 2>&1
start=$SECONDS
step() { echo; echo "== [$((SECONDS - start)) s] $*"; }
export PYTHONUNBUFFERED=1 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

step "machine"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1 | head -3
node --version

if [ "${PORTABLE_TORCH:-1}" != 0 ]; then
  step "1. PyTorch at the same shapes"
  timeout 120 python3 scripts/bench-torch-portable.py --json "$OUT/torch-portable.json"
fi

step "2. WebGPU portable and decode kernels"
# shellcheck disable=SC2086
timeout 420 node scripts/bench-webgpu-portable.mjs --json "$OUT/webgpu-portable.json" ${PORTABLE_ARGS:-} 2>&1 | grep -v '^Warning: maxDynamic'

if [ "${PORTABLE_STATS:-0}" != 0 ]; then
  step "3. driver statistics of the pipelines (capture layer: registers, local memory)"
  work=/tmp/webgpu-portable-stats; rm -rf "$work"; mkdir -p "$work/capture"
  (cmake -S scripts/vkstats -B "$work/vkb" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$work/vkb" -j8 2>&1 | grep -E 'error|Built target') || echo "vkstats build FAILED"
  VK_LAYER_PATH="$work/vkb" VK_INSTANCE_LAYERS=VK_LAYER_SDPA_capture VK_LOADER_LAYERS_ENABLE=VK_LAYER_SDPA_capture SDPA_VKCAPTURE_STATS=1 SDPA_VKCAPTURE_DIR="$work/capture" \
    timeout 120 node scripts/bench-webgpu-portable.mjs --no-check --sizes 1024 --decode-batches 1 --decode-l 4096 2>&1 | grep -v '^Warning: maxDynamic' | grep -o '"name":"[a-z0-9_]*","kernel":"[a-z0-9_]*"[^}]*"D":[0-9]*,"dtype":"[a-z0-9]*"' | sed 's/,"B.*"D"/ D/'
  # Modules in compile order (the rows above, first call of each), with the driver's figures.
  for f in "$work"/capture/*.stats.txt; do echo "$(basename "$f") spv $(stat -c %s "${f%.stats.txt}.spv" 2>/dev/null) bytes: $(grep -E 'Register Count|Local Memory Size|Shared Memory Size' "$f" | tr '\n' ' ')"; done
fi

step "done"
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv,noheader 2>&1 | head -2
echo "total $((SECONDS - start)) s"
