#!/usr/bin/env bash
# The CPU decode kernels on the GPU host's Xeon (AVX-512, AMX), where their AVX-512 path meets a
# server memory system (docs/performance-cpu.md, "Decode"). From a bundle made by gpu-bundle.sh:
#   bash .gpu/run.sh bash scripts/gpu/cpu-xeon.sh
# Needs the host's C++ compiler (g++) for the standalone C++ binaries; the Node half uses the
# bundled addon and, when the bundle carries it, onnxruntime-node. Steps, each time-limited:
#   1. the C++ correctness test (every kernel this CPU can run: decode_avx512, amx_*, avx512, avx2,
#      scalar) against a double-precision reference;
#   2. bench_decode: K/V GB/s at 1, 2 and all threads against stream_read of the same run;
#   3. scripts/bench-cpu-decode.mjs at 2 threads: FLASH (cpu) decode vs ORT GroupQueryAttention and
#      stream read (without onnxruntime-node in the bundle: flash vs stream read only).
# Output: the log in $OUT (default /tmp/cpu-xeon-out).
set -uo pipefail
OUT=${OUT:-/tmp/cpu-xeon-out}
mkdir -p "$OUT"
LOG="$OUT/cpu-xeon.log"
cd "$(dirname "$0")/../.."
exec > >(tee "$LOG") 2>&1
echo "== host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
grep -o -w -E 'avx512f|avx512_bf16|avx512_fp16|amx_tile|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
echo "== build (host g++: $(g++ --version | head -1))"
make -s -C csrc ../build/csrc/test_flash ../build/csrc/bench_decode ../build/csrc/stream_read 2>&1 | grep -E 'error' || true
echo "== 1. C++ correctness (every kernel this CPU can run)"
timeout 600 build/csrc/test_flash 150 | grep -vE '^kernel .*\(missing' | tail -8
echo "== 2. bench_decode (H=32 Hkv=8 D=128 S=1), 1 / 2 / $(nproc) threads"
timeout 900 build/csrc/bench_decode --threads "1,2,$(nproc)" --l 4096,8192,16384,32768 --min-ms 400
echo "== 2b. the same with huge pages (TLB effect)"
timeout 300 build/csrc/bench_decode --threads 2 --l 16384 --huge 1 --min-ms 400
echo "== 3. FLASH (cpu) decode vs onnxruntime-node, 2 threads"
if node -e "require('onnxruntime-node')" 2>/dev/null; then ORT=(); else echo "(onnxruntime-node not in this bundle: flash vs stream read only)"; ORT=(--no-ort); fi
timeout 900 node scripts/bench-cpu-decode.mjs --threads 2 --runs 20 "${ORT[@]}" 2>&1 | grep -v '^Warning'
echo "== done; log: $LOG"
