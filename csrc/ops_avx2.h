// The AVX2 + FMA (+F16C) vector ops of the kernel_impl.h algorithms: 8-wide fp32. Shared by
// kernel_avx2.cc (prefill) and kernel_decode_avx2.cc (whose DOps extends them).
// Requires <immintrin.h> and internal.h before inclusion, inside the including TU's own ISA
// namespace, like ops_avx512.h (no include guard on purpose: each TU includes it exactly once).
struct Ops {
  static constexpr int W = 8;
  using V = __m256;
  static inline V load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static inline V set1(float x) { return _mm256_set1_ps(x); }
  // Address pinning (kernel_impl.h's pin): only the WebAssembly build needs it.
  template <class T> static inline void pin(T*&) {}
  static constexpr bool kConstKStride = false;
  static inline V zero() { return _mm256_setzero_ps(); }
  static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
  static inline V iota() { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
  static inline V causal_mask(V s, V idx, V thr) {
    return _mm256_blendv_ps(s, _mm256_set1_ps(-__builtin_inff()), _mm256_cmp_ps(idx, thr, _CMP_LT_OQ));
  }
  static inline V ninf_to_zero(V x) {
    return _mm256_blendv_ps(x, zero(), _mm256_cmp_ps(x, _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ));
  }
  // exp via 2^n built in the exponent field; inputs below -87.3 (incl. -inf) give exactly 0.
  static inline V exp(V x0) {
    // NaN stays NaN: constants first in the clamps (min/max return the second operand on NaN) and
    // an unordered compare for the underflow mask below.
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
  static inline void cvt_in(const uint16_t* src, float* dst, int64_t n, bool bf16) {
    int64_t i = 0;
    if (bf16) {
      for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
      }
      for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
    } else {
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(src + i))));
      for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
    }
  }
  static inline void cvt_out(const float* src, uint16_t* dst, int64_t n, bool bf16, float scale, float*) {
    int64_t i = 0;
    if (!bf16) {
      const V s = set1(scale);
      for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i*)(dst + i), _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(src + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      for (; i < n; ++i) dst[i] = f32_to_f16(src[i] * scale);
    } else {
      for (; i < n; ++i) dst[i] = f32_to_bf16(src[i] * scale);
    }
  }
};
