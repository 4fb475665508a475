#!/usr/bin/env bash
# The tensor-core WebGPU flash kernels on an NVIDIA GPU host, in one run of about 6-7 minutes
# (docs/performance-webgpu.md). From a bundle made by gpu-bundle.sh, on the host:
#   bash .gpu/run.sh bash scripts/gpu/webgpu-tc.sh
# No Node.js or network needed beyond the bundle; PyTorch (python3), CMake and a C++ compiler from
# the host. Steps, most important first, each under its own time limit:
#   1. PyTorch FLASH / EFFICIENT / cuDNN at the same shapes (and a GPU warm-up);
#   2. scripts/vkstats built; every candidate's pipeline compiled through Dawn with
#      VK_LAYER_SDPA_capture: the SPIR-V, the driver's statistics of Dawn's own pipeline (registers,
#      spills), vkstats on the same SPIR-V (robustness on and off, resident warps per SM);
#   3. every correctness check on every candidate, then kernel time (GPU timestamps) at
#      S = 1024..16384, D = 64 and 128, causal and not: the routed and shipped kernels at every size
#      first, then every lab candidate at S = 4096, then at the other sizes (as the budget allows);
#      the whole awaited call against its kernel at S = 1024 and 4096 (no layer loaded);
#   4. the per-call breakdown (scripts/probe-webgpu-call.mjs);
#   5. S = 4096 with Dawn's disable_robustness and disable_workgroup_init (an ablation: robustness
#      stays on in the library).
#   6. a CPU profile of the per-call probe (where a call's time outside the kernel goes).
# Output: the log and webgpu-tc.tar.gz (JSON of every step, captured SPIR-V, statistics) in $OUT;
# the digest of all steps (with the table for docs/performance-webgpu.md) is printed last.
# A shorter run (a follow-up in the same session) narrows it through the environment:
#   TC_TORCH=FILE        reuse PyTorch figures of an earlier lease (its torch.json) instead of step 1
#   TC_CANDIDATES=a,b    candidates of steps 2, 3 and 5 (default: all of scripts/bench-webgpu-tc.mjs)
#   TC_SIZES=4096,1024   sizes of step 3 (default 4096,1024,2048,8192,16384)
#   TC_MAIN_S=255        step 3's budget in seconds
#   TC_STATS=0           skip step 2;  TC_ABLATE=a,b  step 5's candidates (TC_ABLATE=none skips it)
#   TC_PROBE=0           skip steps 4 and 6
#   TC_RANGE=a,b         step 7: those candidates' statistics, checks and timings (TC_RANGE_SIZES,
#                        default 4096) with further Dawn toggles (e.g. ones that keep robustness on), one pass
#                        per set of TC_RANGE_SETS (space-separated, a set's toggles joined with +;
#                        default enable_integer_range_analysis_in_robustness); TC_RANGE_S: budget
set -uo pipefail
OUT=${OUT:-/tmp/webgpu-tc-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/webgpu-tc.log") 2>&1
work=/tmp/webgpu-tc
rm -rf "$work" && mkdir -p "$work/capture" "$work/capture-norobust"
start=$SECONDS
step() { echo; echo "== [$((SECONDS - start)) s] $*"; }
export PYTHONUNBUFFERED=1 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
ablation='enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,disable_robustness,disable_workgroup_init'
layer=(VK_LAYER_PATH="$work/vkb" VK_INSTANCE_LAYERS=VK_LAYER_SDPA_capture VK_LOADER_LAYERS_ENABLE=VK_LAYER_SDPA_capture SDPA_VKCAPTURE_STATS=1)

step "machine"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1 | head -3
node --version; ldconfig -p | grep -c libvulkan || echo "no libvulkan in ldconfig"; echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"

cands=${TC_CANDIDATES:+--candidates $TC_CANDIDATES}
sizes=${TC_SIZES:+--sizes $TC_SIZES}
if [ -n "${TC_TORCH:-}" ]; then
  step "1. PyTorch: reusing $TC_TORCH (an earlier lease of this session)"
  cp "$TC_TORCH" "$work/torch.json"
else
  step "1. PyTorch at the same shapes"
  timeout 60 python3 scripts/bench-torch.py --dims 64,128 --sizes 1024,2048,4096,8192,16384 --json "$work/torch.json" | tail -62
fi

if [ "${TC_STATS:-1}" != 0 ]; then
step "2a. build scripts/vkstats"
(cmake -S scripts/vkstats -B "$work/vkb" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$work/vkb" -j8 2>&1 | grep -E 'error|warning|Built target') || echo "vkstats build FAILED"

step "2b. pipeline statistics (capture layer + vkstats)"
env "${layer[@]}" SDPA_VKCAPTURE_DIR="$work/capture" timeout 80 node scripts/bench-webgpu-tc.mjs --phases stats --tag stats $cands \
  --capture "$work/capture" --vkstats "$work/vkb/vkstats" --json "$work/stats.json" --budget-s 60 2>&1 | grep -v '^Warning: maxDynamic' | grep -v '^stat \|^module \|^cache '
fi

step "3. correctness and timing (no layer)"
timeout $(( ${TC_MAIN_S:-255} + 35 )) node scripts/bench-webgpu-tc.mjs --phases check,time --tag main $cands $sizes --torch "$work/torch.json" --json "$work/main.json" --budget-s ${TC_MAIN_S:-255} 2>&1 | grep -v '^Warning: maxDynamic'

if [ "${TC_PROBE:-1}" != 0 ]; then
step "4. per-call breakdown"
timeout 40 node scripts/probe-webgpu-call.mjs --shapes 1x1x64x64,8x12x1024x64,8x12x1024x128,8x12x4096x64 --reps 100 --json "$work/call-probe.json" 2>&1 | grep -v '^Warning: maxDynamic'

fi

if [ "${TC_ABLATE:-}" != none ]; then
step "5. ablation: disable_robustness, disable_workgroup_init (timing, S=4096)"
SDPA_WEBGPU_FLAGS=$ablation timeout 45 node scripts/bench-webgpu-tc.mjs --phases time --tag norobust --candidates ${TC_ABLATE:-sgmat_st,sgmat_mw,st2_bc32,st2_bc32_qsm} \
  --sizes 4096 --torch "$work/torch.json" --json "$work/norobust.json" --budget-s 30 2>&1 | grep -v '^Warning: maxDynamic'
fi

if [ "${TC_PROBE:-1}" != 0 ]; then
step "6. CPU profile of the per-call probe (self time by function)"
timeout 30 node --cpu-prof --cpu-prof-dir="$work/prof" scripts/probe-webgpu-call.mjs --shapes 8x12x1024x64 --reps 200 2>&1 | grep -v '^Warning: maxDynamic' | tail -3
node scripts/gpu/cpuprofile-top.mjs "$work/prof" 25
fi

if [ -n "${TC_RANGE:-}" ]; then
# One pass per toggle set (space-separated; toggles of a set joined with +), each added to the defaults.
n=0
for set in ${TC_RANGE_SETS:-enable_integer_range_analysis_in_robustness}; do
n=$((n + 1))
flags="enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,${set//+/,}"
step "7a.$n Dawn toggles $set added to the defaults: pipeline statistics"
mkdir -p "$work/capture-range$n"
SDPA_WEBGPU_FLAGS=$flags env "${layer[@]}" SDPA_VKCAPTURE_DIR="$work/capture-range$n" timeout 60 node scripts/bench-webgpu-tc.mjs --phases stats --tag range$n-stats --candidates $TC_RANGE \
  --capture "$work/capture-range$n" --json "$work/range$n-stats.json" --budget-s 45 2>&1 | grep -v '^Warning: maxDynamic' | grep -v '^stat \|^module \|^cache '
step "7b.$n Dawn toggles $set added to the defaults: checks and timing"
SDPA_WEBGPU_FLAGS=$flags timeout $(( ${TC_RANGE_S:-120} + 30 )) node scripts/bench-webgpu-tc.mjs --phases check,time --tag range$n --candidates $TC_RANGE --sizes ${TC_RANGE_SIZES:-4096} \
  --torch "$work/torch.json" --json "$work/range$n.json" --budget-s ${TC_RANGE_S:-120} 2>&1 | grep -v '^Warning: maxDynamic'
done
fi

step "pack"
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv,noheader 2>&1 | head -2
cp "$OUT/webgpu-tc.log" "$work/" 2>/dev/null
# The driver's cache blobs can be large; the ELF images and statistics are what matter.
tar czf "$OUT/webgpu-tc.tar.gz" -C "$work" --exclude=vkb . && ls -la "$OUT"
if [ "$(stat -c %s "$OUT/webgpu-tc.tar.gz")" -gt 15000000 ]; then tar czf "$OUT/webgpu-tc.tar.gz" -C "$work" --exclude=vkb --exclude='*.cache' . && echo "cache blobs left out (size)"; fi

step "digest"
node scripts/gpu/webgpu-tc-digest.mjs "$work"
echo "total $((SECONDS - start)) s"
