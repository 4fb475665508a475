// AVX-512 (F/BW/VL/DQ) kernel: 16-wide fp32 with 6×4 register tiles; fp16/bf16 inputs are widened
// to fp32 while packing a block (exact), so fp16 keeps full fp16 accuracy.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_avx512 {

#include "ops_avx512.h"
constexpr int QK_MR = 6, QK_NV = 4, PV_MR = 6, PV_NV = 4;

#include "kernel_impl.h"

}  // namespace isa_avx512

const Kernel kernel_avx512 = {
    {"avx512_fp32", "avx512", kDtAll, kNeedAvx512, 1, 1, kMaxHeadDim, 0, 0,
     "AVX-512 fp32 flash attention with 6x4 zmm register tiles; fp16 and bf16 inputs are widened to "
     "fp32 per block (exact)."},
    plan_prefill, isa_avx512::workspace_bytes_impl, isa_avx512::run_impl, no_shared_bytes};

}  // namespace detail
}  // namespace sdpa
