// The AVX-512 vector ops of the decode kernels (kernel_decode_impl.h): 16-wide fp32, fp16 widened
// by vcvtph2ps and bf16 by a 16-bit shift as they are loaded (kernel_decode_avx512.cc). Include
// inside the TU's own namespace after <immintrin.h>, internal.h and ops_avx512.h (no include guard
// on purpose, like ops_avx512.h).
// Requires ops_avx512.h first (DOps::exp is its Ops::exp).

struct DOps : Ops {  // the shared AVX-512 Ops (load, fmadd, exp, ...) plus what decode adds
  static constexpr bool kQk4x3 = false;  // kernel_decode_impl.h qk_keys: W / RT keys per QK tile
  static constexpr bool kBf16Dot = false;  // kernel_decode_impl.h: bf16 Q·K on vdpbf16ps (kernel_decode_avx512bf16.cc)
  static constexpr bool kVPrefetchInPv = true;  // kernel_decode_impl.h: which phase prefetches V (measured per ISA)
  static inline float exp_scalar(float x) { return _mm512_cvtss_f32(Ops::exp(_mm512_set1_ps(x))); }
  static inline float hmax(V x) { return _mm512_reduce_max_ps(x); }
  static inline float hsum(V x) { return _mm512_reduce_add_ps(x); }
  // Inline asm, not _mm_prefetch: GCC 12 deleted the intrinsic's prefetches from the decode
  // block loop at -O1 and above (a prefetch has no visible effect, so its loop was dead code);
  // measured: no prefetch instruction in the object file, loads stalling on DRAM.
  static inline void prefetch(const void* p, int level) {
    if (level == 0) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char*)p));
    else __asm__ volatile("prefetcht1 %0" : : "m"(*(const char*)p));
  }
  // Row r of RT rows (st floats apart) gets lanes r·(16/RT) .. of v.
  template <int RT>
  static inline void store_rows(float* p, int64_t st, V v) {
    if (RT == 1) _mm512_storeu_ps(p, v);
    else if (RT == 2) { _mm256_storeu_ps(p, _mm512_castps512_ps256(v)); _mm256_storeu_ps(p + st, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))); }
    else if (RT == 4) {
      _mm_storeu_ps(p, _mm512_castps512_ps128(v)); _mm_storeu_ps(p + st, _mm512_extractf32x4_ps(v, 1));
      _mm_storeu_ps(p + 2 * st, _mm512_extractf32x4_ps(v, 2)); _mm_storeu_ps(p + 3 * st, _mm512_extractf32x4_ps(v, 3));
    } else {
      alignas(64) float s[16];
      _mm512_store_ps(s, v);
      for (int r = 0; r < RT; ++r)
        for (int t = 0; t < 16 / RT; ++t) p[r * st + t] = s[r * (16 / RT) + t];
    }
  }
  static inline V ld_f32(const float* p) { return _mm512_loadu_ps(p); }
  static inline V ld_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
  static inline V ld_bf16(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
  }
  // Lane t of the result = the sum of the 16 lanes of a[t]: a transpose-add tree (unpack 32/64-bit,
  // then 128-bit block shuffles), 15 adds for 16 dot products instead of 16 reductions.
  static inline V hsum_w(const V* a) {
    V x[8], y[4], z[2];
    for (int i = 0; i < 8; ++i) x[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; ++i) {
      const __m512d u = _mm512_castps_pd(x[2 * i]), w = _mm512_castps_pd(x[2 * i + 1]);
      y[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(u, w)), _mm512_castpd_ps(_mm512_unpackhi_pd(u, w)));
    }
    for (int i = 0; i < 2; ++i)
      z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(y[2 * i], y[2 * i + 1], 0x88), _mm512_shuffle_f32x4(y[2 * i], y[2 * i + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], 0x88), _mm512_shuffle_f32x4(z[0], z[1], 0xdd));
  }
};

