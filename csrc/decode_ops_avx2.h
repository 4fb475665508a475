// The AVX2 vector ops of the decode kernel (kernel_decode_impl.h): the prefill kernel's Ops
// (ops_avx2.h: 8-wide fp32, exp) plus reductions, prefetch, widening loads and the 4×3 QK tile.
// Included inside the kernel's namespace (kernel_decode_avx2.cc) and by the tile probe
// (bench/decode_tiles.cc), like decode_ops_avx512.h.
// (No include guard on purpose: each includer opens its own namespace.)
#include "ops_avx2.h"  // the prefill kernel's ops, exp included

// The decode kernel's ops: the shared AVX2 Ops plus reductions, prefetch and widening loads.
struct DOps : Ops {
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
  // The 4-row × 3-key QK tile (kernel_decode_impl.h, qk_keys): 12 accumulators fit the 16 ymm.
  static constexpr bool kQk4x3 = true;
  static constexpr bool kBf16Dot = false;  // kernel_decode_impl.h: bf16 Q·K on vdpbf16ps (kernel_decode_avx512bf16.cc)
  static constexpr bool kVPrefetchInPv = false;  // kernel_decode_impl.h: which phase prefetches V (measured per ISA)
  // A load the compiler keeps in a register: folded into each of the tile's three FMAs as a memory
  // operand (GCC's choice), Q would be loaded three times.
  static inline V load_reg(const float* p) {
    V v = _mm256_loadu_ps(p);
    __asm__("" : "+x"(v));
    return v;
  }
  // sc[r·st + t] = the lane sum of a[3r + t], r < 4, t < 3: three 4-vector hadd trees.
  static inline void store_4x3(float* sc, int64_t st, const V* a) {
    alignas(16) float t[12];
    for (int g = 0; g < 3; ++g) {
      const V x = _mm256_hadd_ps(a[4 * g], a[4 * g + 1]), y = _mm256_hadd_ps(a[4 * g + 2], a[4 * g + 3]);
      const V z = _mm256_hadd_ps(x, y);
      _mm_store_ps(t + 4 * g, _mm_add_ps(_mm256_castps256_ps128(z), _mm256_extractf128_ps(z, 1)));
    }
    for (int r = 0; r < 4; ++r)
      for (int k = 0; k < 3; ++k) sc[r * st + k] = t[3 * r + k];
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
