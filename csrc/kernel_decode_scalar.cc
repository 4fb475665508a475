// Portable decode kernel (kernel_decode_impl.h with a 1-wide "vector"): the split-KV, GQA-grouped
// decode on any CPU, and the reference the vector decode paths are tested against.
#include <cmath>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_decode_scalar {

#include "ops_scalar.h"

// The decode kernel's ops: the shared scalar Ops plus the reductions and loads decode adds.
struct DOps : Ops {
  static constexpr bool kQk4x3 = false;  // kernel_decode_impl.h qk_keys: W / RT keys per QK tile
  static constexpr bool kBf16Dot = false;  // kernel_decode_impl.h: bf16 Q·K on vdpbf16ps (kernel_decode_avx512bf16.cc)
  static constexpr bool kVPrefetchInPv = false;  // kernel_decode_impl.h: which phase prefetches V (measured per ISA)
  static inline float exp_scalar(float x) { return std::exp(x); }
  static inline float hmax(V x) { return x; }
  static inline float hsum(V x) { return x; }
  static inline void prefetch(const void* p, int) { __builtin_prefetch(p); }
  template <int RT>
  static inline void store_rows(float* p, int64_t, V v) { *p = v; }
  static inline V ld_f32(const float* p) { return *p; }
  static inline V ld_f16(const uint16_t* p) { return f16_to_f32(*p); }
  static inline V ld_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
  static inline V hsum_w(const V* a) { return a[0]; }
};

#include "kernel_decode_impl.h"

}  // namespace isa_decode_scalar

const Kernel kernel_decode_scalar = {
    {"decode_scalar", "scalar", kDtAll, 0, 1, 1, kMaxHeadDim, 0, 16,
     "Portable decode (at most 16 queries per head): GQA-grouped, split-KV over threads with a "
     "log-sum-exp merge; the fallback decode on any CPU."},
    isa_decode_scalar::decode_plan, isa_decode_scalar::decode_workspace_bytes, isa_decode_scalar::decode_run,
    isa_decode_scalar::decode_shared_bytes};

}  // namespace detail
}  // namespace sdpa
