#!/usr/bin/env bash
# The Node call against the C++ kernel on the GPU host's Xeon (issue 16: where amx_bf16's Node call
# loses to bench_flash), 2 threads on 2 distinct physical cores: scripts/probes/native-call-gap.mjs
# for bf16 (amx_bf16) and f32 (avx512_fp32) at S=2048 D=64, then the 4 MiB allocation microbench.
#   bash .gpu/run.sh bash scripts/gpu/cpu-xeon-callgap.sh
set -uo pipefail
cpus=$(for c in /sys/devices/system/cpu/cpu[0-9]*; do
         [ -r "$c/topology/core_id" ] && echo "$(cat "$c/topology/physical_package_id" 2>/dev/null || echo 0):$(cat "$c/topology/core_id") ${c##*cpu}"
       done | sort -t' ' -k2 -n | awk '!seen[$1]++ {print $2}' | head -n 2 | paste -sd, -)
echo "pinned CPUs: $cpus"; grep -m1 'model name' /proc/cpuinfo; uname -r; uptime
echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
taskset -c "$cpus" node scripts/probes/native-call-gap.mjs --dtypes bf16,f32 --rounds ${ROUNDS:-8} --calls 5 2>&1 | grep -v Warning
taskset -c "$cpus" node scripts/probes/native-call-gap.mjs --dtypes bf16 --rounds ${ROUNDS:-8} --calls 5 2>&1 | grep -v Warning
