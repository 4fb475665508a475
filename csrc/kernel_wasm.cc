// WebAssembly SIMD128 build of the flash kernel: the algorithm of kernel_impl.h over a 4-wide
// v128 `Ops`, plus a freestanding entry (no libc, no C++ library, no WASI) that JavaScript drives:
// an arena allocator over linear memory, a call record written by JS (WasmCall below), the same
// prefill blocking as the native kernels (plan_prefill.h) and a job loop that threads share
// through an atomic counter in (shared) linear memory and that stops at a cancel word.
//
// Built by scripts/build-wasm.mjs with clang-16 --target=wasm32 -msimd128 -mbulk-memory -nostdlib
// -O3 (plus -mrelaxed-simd -DSDPA_WASM_RELAXED for the FMA build, -matomics and a shared memory for
// the threaded builds); the JS side is backends/flash/wasm/.
#include <wasm_simd128.h>

#include "internal.h"
#include "plan_prefill.h"

// ---- the library functions the compiler may call ----------------------------------------------
// -mbulk-memory makes __builtin_mem* single memory.copy / memory.fill instructions, so these never
// recurse into themselves.
extern "C" {
void* memcpy(void* dst, const void* src, size_t n) { return __builtin_memcpy(dst, src, n); }
void* memmove(void* dst, const void* src, size_t n) { return __builtin_memmove(dst, src, n); }
void* memset(void* dst, int c, size_t n) { return __builtin_memset(dst, c, n); }
}

namespace sdpa {
namespace detail {
namespace isa_wasm {

struct Ops {
  static constexpr int W = 4;
  using V = v128_t;
  static inline V load(const float* p) { return wasm_v128_load(p); }
  static inline void store(float* p, V v) { wasm_v128_store(p, v); }
  static inline V set1(float x) { return wasm_f32x4_splat(x); }
  static inline V zero() { return wasm_f32x4_const_splat(0.0f); }
  // An empty asm that hides a pointer's value from the optimiser: loop strength reduction then
  // cannot rewrite the loads off it as induction variables of their own, so `p + c` stays a load
  // with a constant offset immediate (V8 folds that into the x86 address; a rewritten address is a
  // separate i32.add, one more instruction per load in the inner loops, which are issue-bound).
  template <class T> static inline void pin(T*& p) { __asm__("" : "+r"(p)); }
  // K row strides of 64 and 128 floats get QK loops of their own (kernel_impl.h's qk_strip).
  static constexpr bool kConstKStride = true;
#ifdef SDPA_WASM_RELAXED
  // Relaxed SIMD: one fused (or, where the engine chooses, unfused) multiply-add instruction.
  static inline V fmadd(V a, V b, V c) { return (V)__builtin_wasm_relaxed_madd_f32x4((__f32x4)a, (__f32x4)b, (__f32x4)c); }
#else
  static inline V fmadd(V a, V b, V c) { return wasm_f32x4_add(wasm_f32x4_mul(a, b), c); }
#endif
  static inline V mul(V a, V b) { return wasm_f32x4_mul(a, b); }
  static inline V add(V a, V b) { return wasm_f32x4_add(a, b); }
  static inline V sub(V a, V b) { return wasm_f32x4_sub(a, b); }
  // The native kernels' max is x86's maxps (a > b ? a : b, b on NaN); pmax(b, a) is exactly that,
  // and engines lower it to the one instruction (f32x4.max would add NaN and ±0 fix-ups).
  static inline V max(V a, V b) { return wasm_f32x4_pmax(b, a); }
  static inline V min(V a, V b) { return wasm_f32x4_pmin(b, a); }
  static inline V iota() { return wasm_f32x4_make(0.0f, 1.0f, 2.0f, 3.0f); }
  static inline V causal_mask(V s, V idx, V thr) {
    return wasm_v128_bitselect(wasm_f32x4_splat(-__builtin_inff()), s, wasm_f32x4_lt(idx, thr));
  }
  static inline V ninf_to_zero(V x) { return wasm_v128_andnot(x, wasm_f32x4_eq(x, wasm_f32x4_splat(-__builtin_inff()))); }
  // exp(x) = 2^(x·log2 e) as the AVX2 prefill kernel's exp2v: round(y) and the 2^n bits from one
  // magic add (no f32x4.nearest, and no i32x4.trunc_sat_f32x4, which V8 lowers to a NaN/overflow
  // fix-up sequence on x64), 2^f a degree-5 polynomial on [-0.5, 0.5] (relative error 1.9e-7).
  // y ≤ -127 (x below -87.7, -inf included) gives exactly 0: the 2^n factor is then the float 0;
  // NaN stays NaN (constants first in max/min, which return the second operand on NaN).
  static inline V exp(V x0) {
    V y = mul(x0, wasm_f32x4_splat(1.44269504088896341f));
    y = min(wasm_f32x4_splat(127.0f), max(wasm_f32x4_splat(-127.0f), y));
    // t's low mantissa bits hold round(y) + 127 (1.5·2^23 pins the exponent).
    const V magic = wasm_f32x4_splat(12582912.0f + 127.0f);
    const V t = add(y, magic);
    const V f = sub(y, sub(t, magic));  // y - round(y), in [-0.5, 0.5]
    V p = wasm_f32x4_splat(0.00132647f);
    p = fmadd(p, f, wasm_f32x4_splat(0.00967151f));
    p = fmadd(p, f, wasm_f32x4_splat(0.05550734f));
    p = fmadd(p, f, wasm_f32x4_splat(0.24022242f));
    p = fmadd(p, f, wasm_f32x4_splat(0.693147f));
    p = fmadd(p, f, wasm_f32x4_splat(1.0f));
    return mul(p, wasm_i32x4_shl(t, 23));  // (round(y) + 127) << 23 = 2^round(y), 0 for -127
  }
  // fp16 → fp32 exactly (normals, subnormals, ±0, inf, NaN payloads): the exponent/mantissa bits
  // moved up 13 places are the value times 2^-112, so one multiply by 2^112 rebiases (subnormals
  // included: wasm floats keep denormals); inf/NaN get the all-ones exponent instead.
  static inline V f16x4_to_f32(V h) {
    V sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
    V em = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13);
    V scaled = wasm_f32x4_mul(em, wasm_f32x4_splat(5.192296858534828e33f));  // 2^112
    V special = wasm_v128_or(em, wasm_i32x4_splat(0x70000000));             // 0x0f8... | 0x70... = 0x7f8...
    V is_special = wasm_i32x4_ge(em, wasm_i32x4_splat(0x0f800000));
    return wasm_v128_or(sign, wasm_v128_bitselect(special, scaled, is_special));
  }
  static inline void cvt_in(const uint16_t* src, float* dst, int64_t n, bool bf16) {
    int64_t i = 0;
    if (bf16) {
      for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_i32x4_shl(wasm_u32x4_load16x4(src + i), 16));
      for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
    } else {
      for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, f16x4_to_f32(wasm_u32x4_load16x4(src + i)));
      for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
    }
  }
  // Output rows only (S·Ev elements per head): the scalar round-to-nearest-even conversions.
  static inline void cvt_out(const float* src, uint16_t* dst, int64_t n, bool bf16, float scale, float*) {
    if (bf16) for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i] * scale);
    else for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i] * scale);
  }
};
// 16 v128 registers on x86 engines (V8 keeps xmm15 as its scratch): MR·NV accumulators + NV loaded
// vectors + a broadcast (+ the product, without FMA). Measured with scripts/probes/wasm-tiles.mjs
// (D = 64, S = 1024, one thread, round-robin best of 5): QK 4×2 with PV 4×2 was the fastest in both
// engines — headless Chromium 156 relaxed SIMD 40.6 GFLOP/s (the former PV 2×3 with the former exp 31.2;
// QK 3×3 / PV 3×3 36–39), Node 20 SIMD128 18.5 (PV 2×3 16.7, 3×3 15.9–18.2); the native 4×3 tiles
// spill and ran at half the rate. The -D overrides exist for that probe (it builds with
// scripts/build-wasm.mjs --define); the shipped modules are built without them.
#ifndef SDPA_WASM_QK_MR
#define SDPA_WASM_QK_MR 4
#define SDPA_WASM_QK_NV 2
#define SDPA_WASM_PV_MR 4
#define SDPA_WASM_PV_NV 2
#endif
constexpr int QK_MR = SDPA_WASM_QK_MR, QK_NV = SDPA_WASM_QK_NV, PV_MR = SDPA_WASM_PV_MR, PV_NV = SDPA_WASM_PV_NV;

// The strip phases (QK, softmax, PV) as functions of their own, not inlined into sdpa_run: V8 runs
// a module's first calls in its baseline compiler (Liftoff) and swaps in optimised code per
// function, on that function's next call. Inlined into sdpa_run, which a call enters once, a
// call's whole kernel ran as baseline code (the first call at S=2048 took 723 ms, later ones
// 180-230); as functions called thousands of times per call, the optimised code takes over within
// the first call. Steady-state speed is the same either way (scripts/probes/wasm-tiles.mjs).
#define SDPA_PHASE_FN __attribute__((noinline)) static
#include "kernel_impl.h"

}  // namespace isa_wasm
}  // namespace detail
}  // namespace sdpa

using namespace sdpa;
using namespace sdpa::detail;

// ---- the entry JavaScript calls -------------------------------------------------------------

// The call record JavaScript writes (backends/flash/wasm/abi.ts holds the same byte offsets).
// Addresses are byte offsets into linear memory; the base tables are int64 element offsets.
struct WasmCall {
  double dropout_p;                       // 0
  int32_t dtype;                          // 8   0 f32, 1 f16, 2 bf16
  uint32_t q, k, v, out;                  // 12, 16, 20, 24
  int32_t bh, hq, hkv, s, l, e, ev;       // 28 .. 52
  uint32_t q_base, kv_base_k, kv_base_v;  // 56, 60, 64 (int64[bh], int64[bh/hq·hkv] ×2)
  int32_t q_row_stride, k_row_stride, v_row_stride;  // 68, 72, 76
  int32_t mask_kind, mask_dtype;          // 80, 84
  uint32_t mask, mask_base;               // 88, 92 (mask_base: int64[bh])
  int32_t mask_stride_s, mask_stride_l;   // 96, 100
  int32_t causal, diagonal_offset;        // 104, 108
  float scale;                            // 112
  uint32_t seed;                          // 116
  int32_t nthreads;                       // 120
  int32_t pad_;                           // 124
};
static_assert(sizeof(WasmCall) == 128, "WasmCall layout is shared with backends/flash/wasm/abi.ts");
static_assert(__builtin_offsetof(WasmCall, scale) == 112 && __builtin_offsetof(WasmCall, nthreads) == 120, "WasmCall layout");

extern unsigned char __heap_base;
static uint32_t g_arena_top;  // 0 until the first allocation (then __heap_base onwards)

extern "C" {

// Arena allocation: 64-byte aligned bump allocation from __heap_base, growing the memory as
// needed; 0 when it cannot grow. Only one thread allocates (the JS host, between calls).
__attribute__((export_name("sdpa_alloc"))) uint32_t sdpa_alloc(uint32_t bytes) {
  if (g_arena_top == 0) g_arena_top = (uint32_t)(uintptr_t)&__heap_base;
  const uint64_t start = ((uint64_t)g_arena_top + 63) & ~(uint64_t)63;
  const uint64_t end = start + (((uint64_t)bytes + 63) & ~(uint64_t)63);
  const uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * 65536;
  if (end > have) {
    const uint64_t pages = (end - have + 65535) / 65536;
    if (end > 0xFFFF0000ull || __builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) return 0;
  }
  g_arena_top = (uint32_t)end;
  return (uint32_t)start;
}
// The arena's current top, and a release back to an earlier top (everything allocated since is freed).
__attribute__((export_name("sdpa_mark"))) uint32_t sdpa_mark() {
  if (g_arena_top == 0) g_arena_top = (uint32_t)(uintptr_t)&__heap_base;
  return g_arena_top;
}
__attribute__((export_name("sdpa_release"))) void sdpa_release(uint32_t mark) { g_arena_top = mark; }

__attribute__((export_name("sdpa_plan_bytes"))) uint32_t sdpa_plan_bytes() { return sizeof(Plan); }

// Fills *plan for the call (validated by the JS side, as the native addon's caller validates) and
// returns its job count. nthreads steers the blocking exactly as in the native kernels.
__attribute__((export_name("sdpa_prepare"))) int32_t sdpa_prepare(const WasmCall* c, Plan* plan) {
  AttentionArgs a{};
  a.dtype = (DType)c->dtype;
  a.q = (const void*)(uintptr_t)c->q; a.k = (const void*)(uintptr_t)c->k; a.v = (const void*)(uintptr_t)c->v;
  a.out = (void*)(uintptr_t)c->out;
  a.bh = c->bh; a.hq = c->hq; a.hkv = c->hkv; a.s = c->s; a.l = c->l; a.e = c->e; a.ev = c->ev;
  a.q_base = (const int64_t*)(uintptr_t)c->q_base;
  a.kv_base_k = (const int64_t*)(uintptr_t)c->kv_base_k;
  a.kv_base_v = (const int64_t*)(uintptr_t)c->kv_base_v;
  a.q_row_stride = c->q_row_stride; a.k_row_stride = c->k_row_stride; a.v_row_stride = c->v_row_stride;
  a.mask_kind = (MaskKind)c->mask_kind; a.mask_dtype = (MaskDType)c->mask_dtype;
  a.mask = (const void*)(uintptr_t)c->mask; a.mask_base = (const int64_t*)(uintptr_t)c->mask_base;
  a.mask_stride_s = c->mask_stride_s; a.mask_stride_l = c->mask_stride_l;
  a.causal = c->causal != 0; a.diagonal_offset = c->diagonal_offset;
  a.scale = c->scale; a.dropout_p = c->dropout_p; a.seed = c->seed;
  a.num_threads = c->nthreads;
  Plan p{};
  p.a = a;
  p.k = nullptr;
  p.group = a.hq / a.hkv;
  p.nthreads = c->nthreads > 0 ? c->nthreads : 1;
  p.nsplit = 1;
  plan_prefill_blocking(p, Tuning{});
  p.nthreads = (int)plan_max(1, plan_min(p.nthreads, p.njobs));
  *plan = p;
  return (int32_t)p.njobs;
}

// Scratch bytes one thread needs for the plan (64-byte aligned region for sdpa_run).
__attribute__((export_name("sdpa_workspace_bytes"))) uint32_t sdpa_workspace_bytes(const Plan* plan) {
  return (uint32_t)isa_wasm::workspace_bytes_impl(*plan);
}

// Runs jobs of the plan until none is left, the cancel word is set, or max_jobs ran; jobs are
// taken from the shared counter *next (atomically: several threads share it). Returns the jobs
// this thread ran.
__attribute__((export_name("sdpa_run"))) int32_t sdpa_run(const Plan* plan, void* ws, int32_t* next, const int32_t* cancel, int32_t max_jobs) {
  int32_t done = 0;
  const int32_t njobs = (int32_t)plan->njobs;
  while (done < max_jobs) {
    if (__atomic_load_n(cancel, __ATOMIC_RELAXED) != 0) break;
    const int32_t job = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
    if (job >= njobs) break;
    isa_wasm::run_impl(*plan, job, ws);
    ++done;
  }
  return done;
}

}  // extern "C"
