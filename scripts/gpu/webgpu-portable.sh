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

step "done"
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv,noheader 2>&1 | head -2
echo "total $((SECONDS - start)) s"
