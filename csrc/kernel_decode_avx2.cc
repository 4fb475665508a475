// AVX2 + FMA + F16C decode kernel (kernel_decode_impl.h): 8-wide fp32 in 16 ymm registers, fp16
// widened by vcvtph2ps and bf16 by a 16-bit shift as they are loaded.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_decode_avx2 {

struct DOps {
  static constexpr int W = 8;
  using V = __m256;
  static inline V load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static inline V set1(float x) { return _mm256_set1_ps(x); }
  static inline V zero() { return _mm256_setzero_ps(); }
  static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
  // The AVX2 prefill kernel's exp (kernel_avx2.cc, Ops::exp), repeated here rather than shared so
  // the prefill file stays as it is: Cody-Waite reduction, degree-6 polynomial, 2^n built in the
  // exponent field; inputs below -87.3 (incl. -inf) give exactly 0, NaN stays NaN.
  static inline V exp(V x0) {
    V x = _mm256_max_ps(_mm256_set1_ps(-87.3f), _mm256_min_ps(_mm256_set1_ps(88.3f), x0));
    V n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    V p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    V res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_and_ps(res, _mm256_cmp_ps(x0, _mm256_set1_ps(-87.3f), _CMP_NLE_UQ));
  }
  static inline float exp_scalar(float x) { return _mm256_cvtss_f32(exp(_mm256_set1_ps(x))); }
  static inline float hmax(V x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static inline float hsum(V x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Inline asm, not _mm_prefetch: GCC 12 deleted the intrinsic's prefetches from the decode
  // block loop at -O1 and above (a prefetch has no visible effect, so its loop was dead code);
  // measured: no prefetch instruction in the object file, loads stalling on DRAM.
  static inline void prefetch(const void* p, int level) {
    if (level == 0) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char*)p));
    else __asm__ volatile("prefetcht1 %0" : : "m"(*(const char*)p));
  }
  // Row r of RT rows (st floats apart) gets lanes r·(8/RT) .. of v.
  template <int RT>
  static inline void store_rows(float* p, int64_t st, V v) {
    if (RT == 1) _mm256_storeu_ps(p, v);
    else if (RT == 2) { _mm_storeu_ps(p, _mm256_castps256_ps128(v)); _mm_storeu_ps(p + st, _mm256_extractf128_ps(v, 1)); }
    else {
      alignas(32) float s[8];
      _mm256_store_ps(s, v);
      for (int r = 0; r < RT; ++r)
        for (int t = 0; t < 8 / RT; ++t) p[r * st + t] = s[r * (8 / RT) + t];
    }
  }
  static inline V ld_f32(const float* p) { return _mm256_loadu_ps(p); }
  static inline V ld_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
  static inline V ld_bf16(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
  }
  // Lane t of the result = the sum of the 8 lanes of a[t] (transpose-add tree, 7 adds).
  static inline V hsum_w(const V* a) {
    V x[4], y[2];
    for (int i = 0; i < 4; ++i) x[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 2; ++i) {
      const __m256d u = _mm256_castps_pd(x[2 * i]), w = _mm256_castps_pd(x[2 * i + 1]);
      y[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(u, w)), _mm256_castpd_ps(_mm256_unpackhi_pd(u, w)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(y[0], y[1], 0x20), _mm256_permute2f128_ps(y[0], y[1], 0x31));
  }
};

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
