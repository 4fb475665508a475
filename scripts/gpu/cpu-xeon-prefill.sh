#!/usr/bin/env bash
# CPU prefill on the GPU host's Intel Xeon (AVX-512 + AMX; 16 cores, no network), in one run of
# about 4-6 minutes (docs/performance-cpu.md, issue 16). From a bundle made by gpu-bundle.sh (after
# `npm run build`, `node scripts/build-native.mjs` and `make -C csrc all fma_peak` in the checkout),
# on the host:
#   bash .gpu/run.sh bash scripts/gpu/cpu-xeon-prefill.sh
# Steps, most important first, each under its own time limit:
#   0. the machine (CPU model, flags, load);
#   1. the C++ binaries: built here with the host's g++ when it has one (the kernels pick their ISA
#      at run time, so the bundle's binaries built elsewhere run too and are the fallback);
#   2. test_flash (every ISA path this CPU has, amx_bf16 / amx_fp16_split included, against a
#      double reference) — a failure here makes every number below meaningless;
#   3. fma_peak: fp32 FMA peak, ymm and zmm, 1 / 2 / 16 threads;
#   4. bench_flash, 2 threads (CPUs 0-1), D = 64, S = 2048: the routed kernel per dtype, and
#      avx512_fp32 / avx2_fp32 pinned; then 1 thread, per-thread CPU clock, the same;
#   5. the rdtsc phase split (make -C csrc prof) of amx_bf16 and avx512_fp32, 1 thread;
#   6. node scripts/bench-cpu.mjs, 2 threads, side by side with onnxruntime-node (fp32 MHA /
#      opset-23 Attention is_causal), D = 64, S = 1024 / 2048 — the ratios of the issue's targets
#      (bf16 ≥ 5× ORT fp32 MHA at S = 2048); then the same with --isa avx2 (the AVX2 kernel
#      against ORT's AVX-512 MLAS: a lower bound of what an AVX2-only CPU sees);
#   7. blocking sweeps, 1 thread, CPU clock, 2 interleaved rounds (bench_flash --bq / --bk, the
#      C++ Tuning override; no kernel code differs): amx_bf16, avx512_fp32, avx2_fp32.
# Output: the log in $OUT (default /tmp/cpu-xeon-out).
# Environment: XEON_THREADS (default 2), XEON_SIZES (bench-cpu sizes, default 1024,2048),
#   XEON_STEPS (default 01234567; e.g. 26 for the test and bench-cpu only).
set -uo pipefail
OUT=${OUT:-/tmp/cpu-xeon-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/cpu-xeon-prefill.log") 2>&1
start=$SECONDS
step() { echo; echo "== [$((SECONDS - start)) s] $*"; }
T=${XEON_THREADS:-2}
SIZES=${XEON_SIZES:-1024,2048}
STEPS=${XEON_STEPS:-01234567}
want() { [[ "$STEPS" == *"$1"* ]]; }
# The T threads on T CPUs of distinct physical cores (an SMT sibling would halve the FMA peak), so
# both engines get the same cores and the others stay idle.
cpus=$(for c in /sys/devices/system/cpu/cpu[0-9]*; do
         [ -r "$c/topology/core_id" ] && echo "$(cat "$c/topology/physical_package_id" 2>/dev/null || echo 0):$(cat "$c/topology/core_id") ${c##*cpu}"
       done | sort -t' ' -k2 -n | awk '!seen[$1]++ {print $2}' | head -n "$T" | paste -sd, -)
[ -n "$cpus" ] || cpus=$(seq -s, 0 $((T - 1)))
pin() { if command -v taskset >/dev/null; then taskset -c "$cpus" "$@"; else "$@"; fi; }
bin=build/csrc

if want 0; then
  step "0. machine"
  echo "pinned CPUs for $T threads: $cpus"
  grep -m1 'model name' /proc/cpuinfo; nproc; uptime
  grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(amx|avx512)' | sort | tr '\n' ' '; echo
  lscpu 2>/dev/null | grep -E 'Model name|Thread|Core|Socket|MHz|L1d|L2|L3|NUMA node0' || true
  node --version 2>/dev/null || echo "no node"
fi

if want 1; then
  step "1. C++ binaries"
  if command -v g++ >/dev/null; then
    g++ --version | head -1
    timeout 240 make -s -C csrc all fma_peak 2>&1 | grep -E 'error|Error' ; make -s -C csrc prof 2>&1 | grep -E 'error|Error'
  else
    echo "no g++ on this host: using the bundle's $bin"
  fi
  ls -la $bin/ 2>&1 | grep -E 'test_flash|bench_flash|fma_peak'; ls build/csrc-prof/bench_flash 2>&1
fi

if want 2; then
  step "2. test_flash 150 (every ISA path of this CPU vs a double reference)"
  timeout 150 $bin/test_flash 150 2>&1 | tail -8
fi

if want 3; then
  step "3. fma_peak (fp32, register-only FMA chains)"
  for isa in avx2 avx512; do timeout 20 $bin/fma_peak --isa $isa --threads 1,$T --ms 400; done
  timeout 20 $bin/fma_peak --isa avx512 --threads "$(nproc)" --ms 400
fi

if want 4; then
  step "4a. bench_flash, $T threads (CPUs $cpus), D=64 S=2048, routed kernel"
  pin timeout 60 $bin/bench_flash --threads "$T" --d 64 --s 2048 --min-ms 200
  for k in avx512_fp32 avx2_fp32; do
    step "4b. bench_flash, $T threads, --kernel $k"
    pin timeout 60 $bin/bench_flash --threads "$T" --d 64 --s 2048 --min-ms 200 --kernel $k
  done
  step "4c. bench_flash, 1 thread, CPU clock, routed kernel (D=64 S=2048), then D=128"
  pin timeout 60 $bin/bench_flash --threads 1 --clock cpu --d 64 --s 2048 --min-ms 200
  pin timeout 60 $bin/bench_flash --threads 1 --clock cpu --d 128 --s 2048 --min-ms 200 --dtype bf16
  for k in avx512_fp32 avx2_fp32; do
    pin timeout 40 $bin/bench_flash --threads 1 --clock cpu --d 64 --s 2048 --min-ms 200 --kernel $k --dtype f32
  done
fi

if want 5; then
  step "5. phase split (rdtsc, 1 thread, D=64 S=2048): amx_bf16, avx512_fp32"
  if [ -x build/csrc-prof/bench_flash ]; then
    for c in 0 1; do pin timeout 30 build/csrc-prof/bench_flash --threads 1 --d 64 --s 2048 --dtype bf16 --causal $c --min-ms 200; done
    pin timeout 30 build/csrc-prof/bench_flash --threads 1 --d 64 --s 2048 --dtype f32 --causal 0 --min-ms 200 --kernel avx512_fp32
  else
    echo "no build/csrc-prof/bench_flash (no g++ here and none in the bundle)"
  fi
fi

if want 6; then
  step "6a. bench-cpu.mjs, $T threads, vs onnxruntime-node (routed kernels)"
  if [ -f dist/src/index.js ] && [ -d node_modules/onnxruntime-node ]; then
    pin timeout 150 node scripts/bench-cpu.mjs --threads "$T" --d 64 --sizes "$SIZES" --runs 7 --markdown 2>&1 | grep -v '^Warning: maxDynamic'
    step "6b. bench-cpu.mjs --isa avx2, $T threads, S=2048"
    pin timeout 90 node scripts/bench-cpu.mjs --isa avx2 --threads "$T" --d 64 --sizes 2048 --runs 5 --markdown 2>&1 | grep -v '^Warning: maxDynamic'
  else
    echo "dist/ or node_modules/onnxruntime-node missing from the bundle: skipped"
  fi
fi
if want 7; then
  step "7. blocking sweeps (1 thread, CPU clock, D=64 S=2048, 2 interleaved rounds)"
  sweep() {  # kernel dtype causal "bq:bk ..."
    local k=$1 dt=$2 c=$3; shift 3
    for r in 1 2; do
      for qk in "$@"; do
        printf '%-12s %-4s causal=%s bq=%-4s bk=%-4s round %s: ' "$k" "$dt" "$c" "${qk%:*}" "${qk#*:}" "$r"
        pin timeout 20 $bin/bench_flash --threads 1 --clock cpu --d 64 --s 2048 --min-ms 150 --kernel "$k" --dtype "$dt" \
          --causal "$c" --bq "${qk%:*}" --bk "${qk#*:}" | tail -1 | awk '{print $6, $7}'
      done
    done
  }
  sweep amx_bf16 bf16 0 0:0 256:128 256:512 128:256 512:256 512:512
  sweep amx_bf16 bf16 1 0:0 256:128 128:256 512:256
  sweep avx512_fp32 f32 0 0:0 64:128 256:128 128:64 128:256
  sweep avx2_fp32 f32 0 0:0 240:128 120:64 120:256
  sweep avx2_fp32 f32 1 0:0 240:64 120:128
fi
step "done"; uptime
