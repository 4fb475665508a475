// The AVX-512 (F/BW/VL/DQ) vector ops of the kernel_impl.h algorithms: 16-wide fp32. Shared by
// kernel_avx512.cc and kernel_amx.cc (which also uses them for its softmax and masking).
// Requires <immintrin.h> and internal.h before inclusion, inside the including TU's own ISA
// namespace, like kernel_impl.h (no include guard on purpose: each TU includes it exactly once).
struct Ops {
  static constexpr int W = 16;
  using V = __m512;
  static inline V load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static inline V set1(float x) { return _mm512_set1_ps(x); }
  // Address pinning (kernel_impl.h's pin): only the WebAssembly build needs it.
  template <class T> static inline void pin(T*&) {}
  static constexpr bool kConstKStride = false;
  static inline V zero() { return _mm512_setzero_ps(); }
  static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
  static inline V iota() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  // idx < thr → -inf (key not visible to that query)
  static inline V causal_mask(V s, V idx, V thr) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(idx, thr, _CMP_LT_OQ), s, _mm512_set1_ps(-__builtin_inff()));
  }
  static inline V ninf_to_zero(V x) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-__builtin_inff()), _CMP_EQ_OQ), x, zero());
  }
  // exp(x) for x <= ~88 as 2^y, y = x·log2 e: vreduceps (round down) gives f = y − floor(y) in
  // [0, 1) in one op, a degree-6 fit of 2^f on [0, 1) (relative error 1.0e-7 in fp32), and
  // vscalefps multiplies by 2^floor(y) itself: 10 ops, where Cody-Waite with a separate round, two
  // reduction steps and clamps took 14. Rounding y costs relative accuracy only far from the row
  // max (|y|·2^-24: 3.9e-6 at x = -87, on values below 1e-37); on [-2, 0] it measured 1.7e-7
  // against the Cody-Waite version's 2.2e-7.
  static inline V exp(V x) {
    // Results below 2^-126 are returned as exact 0 instead of denormals: a denormal result costs a
    // microcode assist (~100+ cycles per instruction) and masked (-inf) scores hit it on every
    // diagonal block. Relative to the row max (exp(0) = 1) they are negligible anyway.
    // NaN stays NaN (PyTorch: a NaN score makes its row NaN): the compare is unordered (NaN lanes
    // count as normal) and vreduceps / vscalefps propagate it; +inf gives +inf.
    const V y = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    const __mmask16 normal = _mm512_cmp_ps_mask(y, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
    const V f = _mm512_reduce_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    V p = _mm512_fmadd_ps(_mm512_set1_ps(0.00021702254889532924f), f, _mm512_set1_ps(0.0012439688434824347f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.009678840637207031f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.055483341217041016f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24022983014583588f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931470036506653f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(normal, p, y);
  }
  static inline void cvt_in(const uint16_t* src, float* dst, int64_t n, bool bf16) {
    int64_t i = 0;
    if (bf16) {
      for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(src + i)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
      }
      for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
    } else {
      for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(src + i))));
      for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
    }
  }
  // dst = round_nearest_even(src * scale), as fp16 or bf16.
  static inline void cvt_out(const float* src, uint16_t* dst, int64_t n, bool bf16, float scale, float*) {
    int64_t i = 0;
    const V s = set1(scale);
    if (bf16) {
      for (; i + 16 <= n; i += 16) {
        __m512i x = _mm512_castps_si512(_mm512_mul_ps(_mm512_loadu_ps(src + i), s));
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
        // NaN keeps a quiet NaN pattern instead of rounding into inf
        __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(x), _mm512_castsi512_ps(x), _CMP_UNORD_Q);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40)));
        _mm256_storeu_si256((__m256i*)(dst + i), _mm512_cvtepi32_epi16(r));
      }
      for (; i < n; ++i) dst[i] = f32_to_bf16(src[i] * scale);
    } else {
      for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i*)(dst + i), _mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(src + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      for (; i < n; ++i) dst[i] = f32_to_f16(src[i] * scale);
    }
  }
};
