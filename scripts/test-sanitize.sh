#!/usr/bin/env bash
# Builds the native kernels with AddressSanitizer + UndefinedBehaviorSanitizer and runs
#  1. the standalone C++ tests (every kernel this CPU has against a double-precision reference), and
#  2. the conformance, parity and property tests on FLASH_ATTENTION (cpu) through a sanitized addon
#     loaded into Node (the sanitizer runtimes are preloaded; Node itself is not instrumented).
# Any sanitizer report fails the run (halt_on_error, no recovery from UB).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/sanitize
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
mkdir -p "$OUT"

echo "== C++ tests under ASan+UBSan"
make -s -C csrc OUT="../$OUT/csrc" BASE="-std=c++17 -fno-math-errno -fPIC -pthread $SAN" "../$OUT/csrc/test_flash"
ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$OUT/csrc/test_flash" "${SANITIZE_CASES:-150}"

echo "== sanitized addon"
NAPI_INC=$(node -p "require('node-addon-api').include" | tr -d '"')
NODE_INC=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node
# No vptr check in the addon: it inlines shared_ptr<v8::BackingStore> code whose objects Node (not
# instrumented) created, and UBSan then reports their vtables as invalid (a false positive that
# stopped every run at the first call).
# The defines are binding.gyp's: without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS a worker terminated
# while inside the addon aborts the process (the property test of terminated workers failed here).
COMMON="-std=c++17 -fno-math-errno -fPIC -pthread $SAN -fno-sanitize=vptr -DNAPI_CPP_EXCEPTIONS -DNAPI_VERSION=8 -DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS -I$NAPI_INC -I$NODE_INC"
A2="-mavx2 -mfma -mf16c"
A5="$A2 -mavx512f -mavx512bw -mavx512vl -mavx512dq"
A5BF="$A5 -mavx512bf16"
AMX="$A5BF -mamx-tile -mamx-bf16"
g++ $COMMON -c csrc/binding.cc -o $OUT/binding.o
g++ $COMMON -c csrc/flash_attention.cc -o $OUT/flash_attention.o
g++ $COMMON -c csrc/kernel_scalar.cc -o $OUT/kernel_scalar.o
g++ $COMMON $A2 -c csrc/kernel_avx2.cc -o $OUT/kernel_avx2.o
g++ $COMMON $A5 -c csrc/kernel_avx512.cc -o $OUT/kernel_avx512.o
g++ $COMMON $A5BF -c csrc/kernel_avx512bf16.cc -o $OUT/kernel_avx512bf16.o
g++ $COMMON $A5BF -c csrc/kernel_decode_avx512bf16.cc -o $OUT/kernel_decode_avx512bf16.o
g++ $COMMON $AMX -c csrc/kernel_amx.cc -o $OUT/kernel_amx.o
g++ $COMMON -c csrc/kernel_decode_scalar.cc -o $OUT/kernel_decode_scalar.o
g++ $COMMON $A2 -c csrc/kernel_decode_avx2.cc -o $OUT/kernel_decode_avx2.o
g++ $COMMON $A5 -c csrc/kernel_decode_avx512.cc -o $OUT/kernel_decode_avx512.o
g++ -shared $SAN -pthread -o $OUT/sdpa_native.node $OUT/*.o

echo "== FLASH_ATTENTION (cpu) tests through the sanitized addon"
PRE="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
# One run, no SDPA_CPU_ISA pin: conformance, parity and property tests iterate every kernel variant
# of FLASH (cpu) by name (each ISA this CPU has), and under a pin the other variants' "at least one
# case eligible" checks fail by design.
LD_PRELOAD="$PRE" ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  SDPA_NATIVE_PATH="$PWD/$OUT/sdpa_native.node" SDPA_ONLY_PARTS="FLASH_ATTENTION:cpu" FUZZ_RUNS=200 \
  npx vitest run test/conformance.test.ts test/parity.test.ts test/property.test.ts
echo "sanitizers: clean"
