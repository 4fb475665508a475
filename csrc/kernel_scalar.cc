// Portable scalar kernel: the same algorithm with a 1-wide "vector", compiled without ISA flags.
// It is the reference every faster path is tested against, and the fallback on any CPU.
#include <cmath>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_scalar {

#include "ops_scalar.h"
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
