// Shared between flash_attention.cc (validation, dispatch, threads) and the per-ISA kernel
// translation units. Keep this header free of std:: templates: an inline function compiled in an
// AVX-512 TU could otherwise be the copy the linker keeps for the scalar TU too.
#pragma once
#ifndef SDPA_FREESTANDING
#include <cstddef>
#include <cstdint>
#include <cstring>
#endif
#include "flash_attention.h"

#ifdef SDPA_PROFILE
// Phase timers (make -C csrc prof): at global scope because kernel_impl.h is included inside
// per-ISA namespaces; the counters are defined by bench_flash.
#include <x86intrin.h>
extern thread_local unsigned long long prof_t[8], prof_last;
#define SDPA_PROF(i) do { unsigned long long t_ = __rdtsc(); prof_t[i] += t_ - prof_last; prof_last = t_; } while (0)
#define SDPA_PROF_START() do { prof_last = __rdtsc(); } while (0)
#else
#define SDPA_PROF(i) do {} while (0)
#define SDPA_PROF_START() do {} while (0)
#endif

namespace sdpa {
namespace detail {

// Tuning a C++ test or benchmark may force (the addon always passes the defaults): blockings, and
// whether a kernel's speed rules (KernelInfo::min_keys) bind an explicitly named kernel.
struct Tuning {
  int64_t bq = 0, bk = 0;     // 0: the kernel's own choice
  bool speed_rules = true;    // false: run a named kernel below its min_keys too (tests every shape)
};

struct Kernel;

// KernelInfo::dtypes bits and Feature sets of the ISA levels.
constexpr uint32_t kDtF32 = 1u << (int)DType::F32, kDtF16 = 1u << (int)DType::F16, kDtBf16 = 1u << (int)DType::BF16;
constexpr uint32_t kDtAll = kDtF32 | kDtF16 | kDtBf16;
constexpr uint32_t kNeedAvx2 = kFeatAvx2 | kFeatFma | kFeatF16c;
constexpr uint32_t kNeedAvx512 = kNeedAvx2 | kFeatAvx512f | kFeatAvx512bw | kFeatAvx512vl | kFeatAvx512dq;
constexpr uint32_t kNeedAmx = kNeedAvx512 | kFeatAvx512Bf16 | kFeatAmxTile | kFeatAmxBf16 | kFeatAmxPermission;
constexpr int64_t kMaxHeadDim = 65536;

// The validated call plus the blocking chosen for it.
struct Plan {
  AttentionArgs a;
  const Kernel* k;
  int64_t group;   // hq / hkv
  int64_t bq;      // query rows per job (prefill)
  int64_t bk;      // keys per inner block
  int64_t nqb;     // query blocks per head (prefill)
  int64_t njobs;   // jobs the threads share (job ids 0..njobs-1, taken in order)
  int nthreads;    // threads the call uses (<= njobs)
  uint64_t call_id;  // distinct per flash_attention call: per-thread packed K/V caches key on it
  // Split-KV decode: each kv head's keys are cut into nsplit chunks of `chunk` keys whose partial
  // results meet in `shared` (Kernel::shared_bytes, zeroed, 64-byte aligned, laid out by the
  // kernel). The prefill kernels leave nsplit 1 and shared null.
  int64_t nsplit, chunk;
  void* shared;
};

// A kernel: one translation unit compiled with its own -m flags, and its row of the kernel table.
struct Kernel {
  KernelInfo info;
  // Blocking and job count for a validated call (the prefill kernels share plan_prefill).
  void (*plan)(Plan&, const Tuning&);
  // Scratch bytes per thread (64-byte aligned region handed to run()).
  size_t (*workspace_bytes)(const Plan&);
  // Runs job `job` of the plan (prefill: one query block of one flat head).
  void (*run)(const Plan&, int64_t job, void* ws);
  // Bytes of per-call shared memory the plan needs besides the per-thread scratch (split-KV partials).
  size_t (*shared_bytes)(const Plan&);
};

// Query blocks × flat heads, threads ≈ jobs: the prefill kernels' blocking (flash_attention.cc).
void plan_prefill(Plan&, const Tuning&);
static inline size_t no_shared_bytes(const Plan&) { return 0; }

// Prefill job order: head-major, later query blocks first. Head-major: consecutive jobs share a
// kv head, so the AMX kernels reuse the K/V they packed for it (per thread). Later blocks first:
// under a causal mask they see the most keys, so long jobs start early and short ones fill the tail.
static inline void prefill_job(const Plan& p, int64_t job, int64_t* bh, int64_t* qblk) {
  *bh = job / p.nqb;
  *qblk = p.nqb - 1 - job % p.nqb;
}

extern const Kernel kernel_scalar;
extern const Kernel kernel_avx2;
extern const Kernel kernel_avx512;
extern const Kernel kernel_amx_bf16;
extern const Kernel kernel_amx_fp16;
extern const Kernel kernel_avx512_bf16;
// Decode (S <= 16, split-KV): kernel_decode_impl.h in kernel_decode_{avx512,avx2,scalar}.cc.
extern const Kernel kernel_decode_avx512;
extern const Kernel kernel_decode_avx512_bf16;
extern const Kernel kernel_decode_avx2;
extern const Kernel kernel_decode_scalar;

// Runs args on the kernel args.kernel names (or the best one for them), with forced tuning.
void flash_attention_tuned(const AttentionArgs& args, const Tuning& t);
// The kernel flash_attention_tuned would run (validates args; throws when a named one cannot run).
const Kernel& resolve_kernel(const AttentionArgs& args, const Tuning& t);

// Portable bit conversions (scalar tails and the scalar kernel). static so every TU keeps its own.
static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
  if (exp == 0) {
    if (man == 0) { bits = sign; }
    else {  // subnormal: normalise
      int e = -1;
      do { man <<= 1; ++e; } while (!(man & 0x400u));
      bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;
  } else {
    bits = sign | (exp + 112) << 23 | man << 13;
  }
  float f; std::memcpy(&f, &bits, 4); return f;
}

// Round to nearest even, like torch's .half(); overflow → inf, NaN stays NaN.
static inline uint16_t f32_to_f16(float f) {
  uint32_t x; std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to >= 65520 → inf
  if (ax < 0x38800000u) {  // result is subnormal or zero in fp16
    if (ax < 0x33000000u) return (uint16_t)sign;  // < 2^-25 rounds to 0
    uint32_t e = ax >> 23, man = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14..24 + 1
    uint32_t r = man >> (shift - 1 + 1);
    uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ax - 0x38000000u;  // rebias exponent (127-15 = 112 → 112<<23)
  uint32_t out = r >> 13, rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (out & 1))) ++out;
  return (uint16_t)(sign | out);
}

static inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16; float f; std::memcpy(&f, &bits, 4); return f;
}

static inline uint16_t f32_to_bf16(float f) {
  uint32_t x; std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

// Dropout keeps element x (= mix(...) >> 8, an integer < 2^24) iff x >= this. p·2^24 is exact in
// double (a power-of-two scale), so x < p·2^24 ⇔ x < ceil(p·2^24): the JS rule, in integers.
static inline uint32_t dropout_keep_from(double p) {
  const double t = p * 16777216.0;
  uint32_t c = (uint32_t)t;
  return (double)c < t ? c + 1 : c;
}

static inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return x;
}

// Dropout on a block of probabilities after softmax: row i of key j (element j * stride + i) is
// dropped iff (mix(hrow[i] ^ (j0 + j)) >> 8) / 2^24 < p, compared in integers (dropout_keep_from),
// and kept ones are scaled by 1 / (1 - p). Every kernel uses this so their masks agree bit for bit.
static inline void apply_dropout(float* pt, int64_t stride, int64_t nk, int64_t nq, int64_t j0, const uint32_t* hrow, double p) {
  const uint32_t keep_from = dropout_keep_from(p);
  const float keep_scale = (float)(1.0 / (1.0 - p));
  for (int64_t j = 0; j < nk; ++j) {
    float* row = pt + j * stride;
    const uint32_t key = (uint32_t)(j0 + j);
    for (int64_t i = 0; i < nq; ++i) {
      const uint32_t x = mix32(hrow[i] ^ key) >> 8;
      row[i] = x < keep_from ? 0.0f : row[i] * keep_scale;
    }
  }
}

}  // namespace detail
}  // namespace sdpa
