// AVX512-BF16 decode kernel for bf16 inputs (kernel_decode_impl.h): the AVX-512 decode kernel with
// Q·K on vdpbf16ps. Each instruction multiplies 16 pairs of bf16 head dims into 16 fp32 sums, on K
// rows as they are in memory: half the instructions of widening K to fp32 and FMA-ing it, and no
// widening at all. P·V stays on fp32 FMAs with V widened as it is loaded (the probabilities stay
// fp32), so the result differs from decode_avx512 only by the order of the Q·K sums. For CPUs with
// AVX512-BF16 (AMD Zen 4/5, Intel Cooper Lake, Sapphire Rapids).
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_decode_avx512bf16 {

#include "ops_avx512.h"  // Ops::exp
#include "decode_ops_avx512.h"

struct DOpsBf16 : DOps {
  static constexpr bool kBf16Dot = true;
  using VI = __m512i;
  // W (16) pairs of bf16 values: 2·W head dims of a row.
  static inline VI ld_pairs(const uint32_t* p) { return _mm512_loadu_si512(p); }
  static inline V dot_bf16(V acc, VI a, VI b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
};
#define DOps DOpsBf16
#include "kernel_decode_impl.h"
#undef DOps

}  // namespace isa_decode_avx512bf16

// e in whole zmm of pairs (32 head dims: the K row loads may not run past a row); ev as decode_avx512.
const Kernel kernel_decode_avx512_bf16 = {
    {"decode_avx512_bf16", "avx512", kDtBf16, kNeedAvx512 | kFeatAvx512Bf16, 32, 16, kMaxHeadDim, 0, 16,
     "AVX512-BF16 decode for bf16 (at most 16 queries per head): decode_avx512 with Q·K on vdpbf16ps, "
     "K read as bf16 pairs without widening; P·V in fp32."},
    isa_decode_avx512bf16::decode_plan, isa_decode_avx512bf16::decode_workspace_bytes, isa_decode_avx512bf16::decode_run,
    isa_decode_avx512bf16::decode_shared_bytes};

}  // namespace detail
}  // namespace sdpa
