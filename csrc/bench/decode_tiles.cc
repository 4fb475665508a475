// Register-tile probe of the AVX2 decode kernel (no node, no thread pool): times the QKᵀ and PV
// tiles of kernel_decode_impl.h for one GQA group of 4 query rows over K/V rows that stay in the
// caches, in ns per key, for the shipped ops (4-row × 3-key QK tile, 3-vector PV tiles: 12
// accumulators) and the same ops without them (4 × 2: 8 accumulators, the tiles shipped before),
// both compiled from the one header. Best of many passes (a shared machine only slows a pass).
// Usage: decode_tiles [--keys 512] [--d 128] [--passes 2000]   (make -C csrc decode_tiles)
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../internal.h"

namespace sdpa {
namespace detail {
namespace tiles_shipped {
#include "../decode_ops_avx2.h"
#include "../kernel_decode_impl.h"
}  // namespace tiles_shipped
namespace tiles_4x2 {
#include "../decode_ops_avx2.h"
// The same ops without the 4×3 tile: kernel_decode_impl.h then runs 4 rows × W/4 keys (hsum_w).
struct DOps2 : DOps {
  static constexpr bool kQk4x3 = false;
};
#define DOps DOps2
#include "../kernel_decode_impl.h"
#undef DOps
}  // namespace tiles_4x2
}  // namespace detail
}  // namespace sdpa

using namespace sdpa::detail;

template <typename QK, typename PV>
static void time_tiles(const char* name, int64_t keys, int64_t e, int passes, QK qk, PV pv) {
  const int64_t nb = 72;  // a multiple of both tiles' keys (3 and 2) and of W
  std::vector<float> K((size_t)(keys * e)), Q((size_t)(4 * e)), sc((size_t)(4 * nb)), ob((size_t)(4 * e));
  for (size_t i = 0; i < K.size(); ++i) K[i] = (float)(i % 7) * 0.1f;
  for (size_t i = 0; i < Q.size(); ++i) Q[i] = (float)(i % 5) * 0.1f;
  std::vector<const void*> kp((size_t)nb);
  double bq = 1e30, bp = 1e30;
  for (int it = 0; it < passes; ++it) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t j0 = 0; j0 + nb <= keys; j0 += nb) {
      for (int64_t j = 0; j < nb; ++j) kp[(size_t)j] = K.data() + (j0 + j) * e;
      qk(Q.data(), e, kp.data(), nb, sc.data());
    }
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t j0 = 0; j0 + nb <= keys; j0 += nb) {
      for (int64_t j = 0; j < nb; ++j) kp[(size_t)j] = K.data() + (j0 + j) * e;
      pv(sc.data(), nb, kp.data(), e, ob.data());
    }
    auto t2 = std::chrono::steady_clock::now();
    const double n = (double)(keys / nb * nb);
    bq = std::min(bq, std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
    bp = std::min(bp, std::chrono::duration<double, std::nano>(t2 - t1).count() / n);
  }
  // 4 rows × e multiply-adds per key in each product.
  std::printf("%-26s QK %6.1f ns/key (%5.1f GFLOP/s)   PV %6.1f ns/key (%5.1f GFLOP/s)   sum %6.1f   [%.4g]\n", name, bq,
              8.0 * (double)e / bq, bp, 8.0 * (double)e / bp, bq + bp, (double)(sc[1] + ob[3]));
}

int main(int argc, char** argv) {
  int64_t keys = 504, e = 128;
  int passes = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--keys") keys = std::atoll(argv[i + 1]);
    else if (k == "--d") e = std::atoll(argv[i + 1]);
    else if (k == "--passes") passes = std::atoi(argv[i + 1]);
  }
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || e % 8 != 0) {
    std::fprintf(stderr, "decode_tiles: needs AVX2 + FMA and --d a multiple of 8\n");
    return 2;
  }
  std::printf("decode tiles, 4 query rows, D = %lld, %lld keys (%lld KiB of K), best of %d passes\n", (long long)e, (long long)keys,
              (long long)(keys * e * 4 / 1024), passes);
  for (int round = 0; round < 3; ++round) {
    time_tiles(
        "shipped (4x3, 3-vector PV)", keys, e, passes,
        [](const float* q, int64_t ep, const void* const* kp, int64_t nb, float* sc) {
          tiles_shipped::qk_rows<4>(q, ep, tiles_shipped::Rows<0>{kp}, nb, ep, sc, nb, nullptr, 0);
        },
        [](const float* p, int64_t nb, const void* const* vp, int64_t ev, float* ob) {
          tiles_shipped::pv_rows<4, tiles_shipped::kPvDt>(p, nb, tiles_shipped::Rows<0>{vp}, nb, ev / 8, ob, ev, nullptr, 0);
        });
    time_tiles(
        "4x2 (8 accumulators)", keys, e, passes,
        [](const float* q, int64_t ep, const void* const* kp, int64_t nb, float* sc) {
          tiles_4x2::qk_rows<4>(q, ep, tiles_4x2::Rows<0>{kp}, nb, ep, sc, nb, nullptr, 0);
        },
        [](const float* p, int64_t nb, const void* const* vp, int64_t ev, float* ob) {
          tiles_4x2::pv_rows<4, tiles_4x2::kPvDt>(p, nb, tiles_4x2::Rows<0>{vp}, nb, ev / 8, ob, ev, nullptr, 0);
        });
  }
  return 0;
}
