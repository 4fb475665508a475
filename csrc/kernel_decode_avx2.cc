// AVX2 + FMA + F16C decode kernel (kernel_decode_impl.h): 8-wide fp32 in 16 ymm registers, fp16
// widened by vcvtph2ps and bf16 by a 16-bit shift as they are loaded.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_decode_avx2 {

#include "decode_ops_avx2.h"

#include "kernel_decode_impl.h"

}  // namespace isa_decode_avx2

const Kernel kernel_decode_avx2 = {
    {"decode_avx2", "avx2", kDtAll, kNeedAvx2, 8, 8, kMaxHeadDim, 0, 16,
     "AVX2 decode (at most 16 queries per head): the query heads of a GQA group share each K/V row, "
     "keys split across threads with a log-sum-exp merge, fp16/bf16 widened in registers."},
    isa_decode_avx2::decode_plan, isa_decode_avx2::decode_workspace_bytes, isa_decode_avx2::decode_run,
    isa_decode_avx2::decode_shared_bytes};

}  // namespace detail
}  // namespace sdpa
