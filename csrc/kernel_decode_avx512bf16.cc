// AVX-512 decode kernel for bf16 with AVX512_BF16 (kernel_decode_impl.h): Q·K by vdpbf16ps on the
// raw bf16 bits (half the multiply-adds of widening K to fp32, and no widening), P·V as
// decode_avx512 (V widened by a shift, fp32 FMA). Zen 4 and Sapphire Rapids have the instruction.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_decode_avx512bf16 {

#define SDPA_DECODE_BF16DOT 1
#include "ops_avx512.h"  // Ops::exp
#include "decode_ops_avx512.h"

#include "kernel_decode_impl.h"

}  // namespace isa_decode_avx512bf16

const Kernel kernel_decode_avx512bf16 = {
    {"decode_avx512_bf16", "avx512", kDtBf16, kNeedAvx512 | kFeatAvx512Bf16, 32, 16, kMaxHeadDim, 0, 16,
     "AVX-512 bf16 decode (at most 16 queries per head): Q·K by vdpbf16ps on the raw bf16 bits, P·V "
     "in fp32; GQA group rows share each K/V row, keys split across threads with a log-sum-exp merge."},
    isa_decode_avx512bf16::decode_plan, isa_decode_avx512bf16::decode_workspace_bytes, isa_decode_avx512bf16::decode_run,
    isa_decode_avx512bf16::decode_shared_bytes};

}  // namespace detail
}  // namespace sdpa
