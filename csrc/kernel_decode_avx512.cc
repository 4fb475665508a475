// AVX-512 (F/BW/VL/DQ) decode kernel (kernel_decode_impl.h): 16-wide fp32, fp16 widened by
// vcvtph2ps and bf16 by a 16-bit shift as they are loaded.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_decode_avx512 {

#include "ops_avx512.h"  // Ops::exp
#include "decode_ops_avx512.h"

#include "kernel_decode_impl.h"

}  // namespace isa_decode_avx512

const Kernel kernel_decode_avx512 = {
    {"decode_avx512", "avx512", kDtAll, kNeedAvx512, 16, 16, kMaxHeadDim, 0, 16,
     "AVX-512 decode (at most 16 queries per head): the query heads of a GQA group share each K/V "
     "row, keys split across threads with a log-sum-exp merge, fp16/bf16 widened in registers."},
    isa_decode_avx512::decode_plan, isa_decode_avx512::decode_workspace_bytes, isa_decode_avx512::decode_run,
    isa_decode_avx512::decode_shared_bytes};

}  // namespace detail
}  // namespace sdpa
