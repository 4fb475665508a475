#!/usr/bin/env bash
# Decode-kernel ablation (not shipped): rebuilds the C++ bench with the prefetch distance and level
# of csrc/kernel_decode_impl.h forced (-DSDPA_DECODE_PF=keys, -DSDPA_DECODE_PF_LEVEL=0 L1 / 1 L2)
# and runs bench_decode for each, so the shipped defaults rest on a measurement of this machine.
# Usage: scripts/ablate-decode.sh [bench_decode args...]   (default: --l 8192 --threads 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS=("$@"); [ ${#ARGS[@]} -eq 0 ] && ARGS=(--l 8192 --threads 2 --min-ms 300)
for cfg in "0 0" "8 0" "16 0" "32 0" "64 0" "32 1" "64 1" "128 1"; do
  set -- $cfg
  OUT=build/ablate-pf$1-l$2
  make -s -C csrc OUT="../$OUT" EXTRA="-DSDPA_DECODE_PF=$1 -DSDPA_DECODE_PF_LEVEL=$2" "../$OUT/bench_decode" >/dev/null 2>&1
  echo "== prefetch $1 keys ahead into L$(( $2 + 1 ))"
  flock /tmp/sdpa-bench.lock "$OUT/bench_decode" "${ARGS[@]}" | tail -n +3
done
