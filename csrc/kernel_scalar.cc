// Portable scalar kernel: the same algorithm with a 1-wide "vector", compiled without ISA flags.
// It is the reference every faster path is tested against, and the fallback on any CPU.
#include <cmath>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_scalar {

struct Ops {
  static constexpr int W = 1;
  using V = float;
  static inline V load(const float* p) { return *p; }
  static inline void store(float* p, V v) { *p = v; }
  static inline V set1(float x) { return x; }
  static inline V zero() { return 0.0f; }
  static inline V fmadd(V a, V b, V c) { return a * b + c; }
  static inline V mul(V a, V b) { return a * b; }
  static inline V add(V a, V b) { return a + b; }
  static inline V sub(V a, V b) { return a - b; }
  static inline V max(V a, V b) { return a > b ? a : b; }
  static inline V iota() { return 0.0f; }
  static inline V causal_mask(V s, V idx, V thr) { return idx < thr ? -__builtin_inff() : s; }
  static inline V ninf_to_zero(V x) { return x == -__builtin_inff() ? 0.0f : x; }
  static inline V exp(V x) { return std::exp(x); }
  static inline void cvt_in(const uint16_t* src, float* dst, int64_t n, bool bf16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16 ? bf16_to_f32(src[i]) : f16_to_f32(src[i]);
  }
  static inline void cvt_out(const float* src, uint16_t* dst, int64_t n, bool bf16, float scale, float*) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16 ? f32_to_bf16(src[i] * scale) : f32_to_f16(src[i] * scale);
  }
};
constexpr int QK_MR = 4, QK_NV = 4, PV_MR = 4, PV_NV = 4;

#include "kernel_impl.h"

}  // namespace isa_scalar

const Kernel kernel_scalar = {
    {"scalar_fp32", "scalar", kDtAll, 0, 1, 1, kMaxHeadDim, 0, 0,
     "Portable fp32 flash attention (the same algorithm with 1-wide vectors): the reference the "
     "faster paths are tested against, and the fallback on any CPU."},
    plan_prefill, isa_scalar::workspace_bytes_impl, isa_scalar::run_impl, no_shared_bytes};

}  // namespace detail
}  // namespace sdpa
