// AMX-BF16 kernel for bf16 inputs: both products on tiles, softmax and masking with AVX-512.
//
// Layout (as in kernel_impl.h, scores transposed so the softmax is vertical):
//   St  = K · Qᵀ : A tiles are 16 key rows straight from the caller's K (no copy), B tiles are Qᵀ
//                 in VNNI pairs, packed once per job.
//   Oᵀ += Vᵀ · Pᵀ: A tiles are Vᵀ (V block transposed into bf16 pairs, once per key block),
//                 B tiles are Pᵀ in VNNI pairs, written straight from the fp32 probabilities.
// Each product runs 2×2 output tiles (tmm0-3) from 2 A (tmm4-5) and 2 B (tmm6-7) tiles.
// Oᵀ is rescaled by the online-softmax factor in AVX-512 after each block's tile products.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_amx {

// The AVX-512 ops are the same as kernel_avx512.cc's; this TU is compiled with a superset of its
// flags, and its own namespace keeps the two copies apart.
struct Ops {
  static constexpr int W = 16;
  using V = __m512;
  static inline V load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static inline V set1(float x) { return _mm512_set1_ps(x); }
  static inline V zero() { return _mm512_setzero_ps(); }
  static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
  static inline V iota() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static inline V causal_mask(V s, V idx, V thr) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(idx, thr, _CMP_LT_OQ), s, _mm512_set1_ps(-__builtin_inff()));
  }
  static inline V ninf_to_zero(V x) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-__builtin_inff()), _CMP_EQ_OQ), x, zero());
  }
  static inline V exp(V x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-104.0f));
    V n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    V p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
  }
  static inline void cvt_in(const uint16_t* src, float* dst, int64_t n, bool bf16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16 ? bf16_to_f32(src[i]) : f16_to_f32(src[i]);
  }
  static inline void cvt_out(const float* src, uint16_t* dst, int64_t n, bool bf16, float scale, float*) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16 ? f32_to_bf16(src[i] * scale) : f32_to_f16(src[i] * scale);
  }
};
constexpr int QK_MR = 6, QK_NV = 4, PV_MR = 6, PV_NV = 4;

#include "kernel_impl.h"

constexpr int64_t KB = 32;  // keys per tile pair (2 × 16 rows), also the bf16 K-depth of one tile

struct AmxLayout {  // byte offsets, 64-byte aligned
  int64_t nqp, evp, bkp;
  size_t qb, st, pb, vt, ot, kp, tmp, m, l, alpha, colmax, hrow, total;
};
static AmxLayout amx_layout(const Plan& p) {
  const AttentionArgs& a = p.a;
  AmxLayout L{};
  L.nqp = ceil_to(p.bq, 32);
  L.evp = ceil_to(a.ev, 32);
  L.bkp = ceil_to(p.bk, KB);
  size_t off = 0;
  auto take = [&](size_t n) { size_t o = off; off += (n + 63) / 64 * 64; return o; };
  L.qb = take((size_t)(a.e / 2 * L.nqp) * 4);
  L.st = take((size_t)(L.bkp * L.nqp) * 4);
  L.pb = take((size_t)(L.bkp / 2 * L.nqp) * 4);
  L.vt = take((size_t)(L.evp * L.bkp / 2) * 4);
  L.ot = take((size_t)(L.evp * L.nqp) * 4);
  L.kp = take((size_t)(KB * a.e) * 2);
  L.tmp = take(2 * 32 * 32 * 4);
  L.m = take((size_t)L.nqp * 4); L.l = take((size_t)L.nqp * 4); L.alpha = take((size_t)L.nqp * 4);
  L.colmax = take((size_t)L.nqp * 4);
  L.hrow = take((size_t)p.bq * 4);
  L.total = off;
  return L;
}

static bool amx_supports(const Plan& p) {
  // K rows feed A tiles directly in 32-element chunks; Oᵀ tiles cover 16 value dims each.
  return p.a.dtype == DType::BF16 && p.a.e % 32 == 0 && p.a.ev % 16 == 0 && p.a.e <= 4096;
}
static size_t amx_ws(const Plan& p) { return amx_layout(p).total; }

struct alignas(64) TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// In-register transpose of a 16×16 matrix of dwords (row t in r[t]).
static inline void transpose16x16_epi32(__m512i* r) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Now within each 128-bit lane L of r[4g+k] sits rows 4g..4g+3, columns 4L+k' order; gather lanes.
  for (int k = 0; k < 4; ++k) {
    __m512i a0 = r[k], a1 = r[4 + k], a2 = r[8 + k], a3 = r[12 + k];
    // lanes: a_g = [g-rows lane0, lane1, lane2, lane3]
    __m512i b0 = _mm512_shuffle_i32x4(a0, a1, 0x44);  // a0.l0 a0.l1 a1.l0 a1.l1
    __m512i b1 = _mm512_shuffle_i32x4(a0, a1, 0xee);  // a0.l2 a0.l3 a1.l2 a1.l3
    __m512i b2 = _mm512_shuffle_i32x4(a2, a3, 0x44);
    __m512i b3 = _mm512_shuffle_i32x4(a2, a3, 0xee);
    t[k] = _mm512_shuffle_i32x4(b0, b2, 0x88);       // a0.l0 a1.l0 a2.l0 a3.l0
    t[4 + k] = _mm512_shuffle_i32x4(b0, b2, 0xdd);   // lane 1s
    t[8 + k] = _mm512_shuffle_i32x4(b1, b3, 0x88);   // lane 2s
    t[12 + k] = _mm512_shuffle_i32x4(b1, b3, 0xdd);  // lane 3s
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

static inline void colmax_block(const float* s0, int64_t rows, int64_t nqp, float* cm, bool neg_scale) {
  __m512 x0 = _mm512_loadu_ps(cm), x1 = _mm512_loadu_ps(cm + 16);
  for (int64_t r = 0; r < rows; ++r) {
    __m512 a0 = _mm512_loadu_ps(s0 + r * nqp), a1 = _mm512_loadu_ps(s0 + r * nqp + 16);
    if (neg_scale) { x0 = _mm512_min_ps(x0, a0); x1 = _mm512_min_ps(x1, a1); }
    else { x0 = _mm512_max_ps(x0, a0); x1 = _mm512_max_ps(x1, a1); }
  }
  _mm512_storeu_ps(cm, x0); _mm512_storeu_ps(cm + 16, x1);
}

// Oᵀ rows (32 value dims × 32 queries) = alpha · Oᵀ + T, T being a just-stored 32×32 tile block.
static inline void rescale_add(float* ot, int64_t nqp, const float* t, const float* alpha) {
  const __m512 al0 = _mm512_loadu_ps(alpha), al1 = _mm512_loadu_ps(alpha + 16);
  for (int64_t r = 0; r < 32; ++r) {
    float* o = ot + r * nqp;
    _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_loadu_ps(o), al0, _mm512_loadu_ps(t + r * 32)));
    _mm512_storeu_ps(o + 16, _mm512_fmadd_ps(_mm512_loadu_ps(o + 16), al1, _mm512_loadu_ps(t + r * 32 + 16)));
  }
}

// Fast-path online softmax for one key block: St holds raw q·k; colmax the raw extreme per query.
// Writes the un-normalised probabilities straight into Pᵀ VNNI pairs (bf16) and updates m, l, alpha.
static inline void fused_softmax_pack(const float* st, uint32_t* pb, int64_t nqp, int64_t nk, int64_t nkp,
                                      const float* colmax, float* m, float* l, float* alpha, float scale,
                                      __m512i interleave) {
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t v = 0; v < nqp / 16; ++v) {
    const __m512 mold = _mm512_loadu_ps(m + v * 16);
    const __m512 mnew = _mm512_max_ps(mold, _mm512_mul_ps(_mm512_loadu_ps(colmax + v * 16), vs));
    const __m512 muse = Ops::ninf_to_zero(mnew);
    const __m512 nm = _mm512_sub_ps(_mm512_setzero_ps(), muse);
    const __m512 al = Ops::exp(_mm512_sub_ps(mold, muse));
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    const float* col = st + v * 16;
    int64_t jj = 0;
    for (; 2 * jj + 1 < nk; ++jj) {
      __m512 pa = Ops::exp(_mm512_fmadd_ps(_mm512_loadu_ps(col + 2 * jj * nqp), vs, nm));
      __m512 pbv = Ops::exp(_mm512_fmadd_ps(_mm512_loadu_ps(col + (2 * jj + 1) * nqp), vs, nm));
      sum0 = _mm512_add_ps(sum0, pa); sum1 = _mm512_add_ps(sum1, pbv);
      __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(pbv, pa);
      _mm512_storeu_si512(pb + jj * nqp + v * 16, _mm512_permutexvar_epi16(interleave, ab));
    }
    for (; 2 * jj < nkp; ++jj) {  // odd last key, then zero pairs up to the tile boundary
      __m512 pa = 2 * jj < nk ? Ops::exp(_mm512_fmadd_ps(_mm512_loadu_ps(col + 2 * jj * nqp), vs, nm)) : _mm512_setzero_ps();
      sum0 = _mm512_add_ps(sum0, pa);
      __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(_mm512_setzero_ps(), pa);
      _mm512_storeu_si512(pb + jj * nqp + v * 16, _mm512_permutexvar_epi16(interleave, ab));
    }
    _mm512_storeu_ps(l + v * 16, _mm512_fmadd_ps(_mm512_loadu_ps(l + v * 16), al, _mm512_add_ps(sum0, sum1)));
    _mm512_storeu_ps(m + v * 16, mnew);
    _mm512_storeu_ps(alpha + v * 16, al);
  }
}

static void run_amx(const Plan& p, int64_t bh, int64_t qblk, void* wsv) {
  const AttentionArgs& a = p.a;
  const AmxLayout L = amx_layout(p);
  char* ws = (char*)wsv;
  uint32_t* qb = (uint32_t*)(ws + L.qb);
  float* st = (float*)(ws + L.st);
  uint32_t* pb = (uint32_t*)(ws + L.pb);
  uint32_t* vt = (uint32_t*)(ws + L.vt);
  float* ot = (float*)(ws + L.ot);
  uint16_t* kp = (uint16_t*)(ws + L.kp);
  float* tmp = (float*)(ws + L.tmp);
  float *m = (float*)(ws + L.m), *l = (float*)(ws + L.l), *alpha = (float*)(ws + L.alpha), *colmax = (float*)(ws + L.colmax);
  uint32_t* hrow = (uint32_t*)(ws + L.hrow);
  const JobCtx c = job_ctx(p, bh, qblk);
  SDPA_PROF_START();
  const int64_t nqp = L.nqp, evp = L.evp, bkp = L.bkp, e = a.e, ev = a.ev;

  TileConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
  _tile_loadconfig(&cfg);

  // Qᵀ in VNNI pairs: qb[dd][i] = (Q[i][2dd], Q[i][2dd+1]); padded query columns are zero.
  std::memset(qb, 0, (size_t)(e / 2 * nqp) * 4);
  for (int64_t i = 0; i < c.nq; ++i) {
    const uint32_t* row = (const uint32_t*)((const uint16_t*)a.q + a.q_base[bh] + (c.q0 + i) * a.q_row_stride);
    for (int64_t dd = 0; dd < e / 2; ++dd) qb[dd * nqp + i] = row[dd];
  }
  std::memset(ot, 0, (size_t)(evp * nqp) * 4);
  for (int64_t i = 0; i < nqp; ++i) { m[i] = -__builtin_inff(); l[i] = 0.0f; }
  init_dropout_rows(p, bh, c.q0, c.nq, hrow);

  const uint16_t* kbase = (const uint16_t*)a.k + a.kv_base_k[c.kvi];
  const uint16_t* vbase = (const uint16_t*)a.v + a.kv_base_v[c.kvi];
  const __m512 vscale = _mm512_set1_ps(a.scale);
  const bool neg_scale = a.scale < 0.0f;
  const int64_t nvq = nqp / 16;
  const __m512i interleave = _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005,
                                               0x00160006, 0x00170007, 0x00180008, 0x00190009, 0x001a000a, 0x001b000b,
                                               0x001c000c, 0x001d000d, 0x001e000e, 0x001f000f);
  for (int64_t j0 = 0; j0 < c.kv_end; j0 += p.bk) {
    const int64_t nk = min64(p.bk, c.kv_end - j0);
    const int64_t nkp = ceil_to(nk, KB);
    // Fast path: no mask, no causal cut in this block, no dropout — scale, softmax and the bf16
    // packing of P happen in one pass; otherwise the general AVX-512 passes run.
    const bool need_causal = a.causal && (j0 + nk - 1 > c.q0 + a.diagonal_offset);
    const bool fast = !need_causal && a.mask_kind == MaskKind::None && a.dropout_p <= 0.0f;
    if (fast)
      for (int64_t v = 0; v < nvq; ++v)
        _mm512_storeu_ps(colmax + v * 16, _mm512_set1_ps(neg_scale ? __builtin_inff() : -__builtin_inff()));
    SDPA_PROF(0);
    // ---- St = K · Qᵀ (raw dot products) ----
    const float* pend = nullptr; int64_t pend_rows = 0, pend_ig = 0;
    for (int64_t jg = 0; jg < nkp; jg += KB) {
      const uint16_t* ka; int64_t kstride;
      if (j0 + jg + KB <= a.l) { ka = kbase + (j0 + jg) * a.k_row_stride; kstride = a.k_row_stride * 2; }
      else {  // the last keys of the tensor: copy into a zero-padded 32-row buffer (no reads past L)
        std::memset(kp, 0, (size_t)(KB * e) * 2);
        for (int64_t r = 0; r < KB && j0 + jg + r < a.l; ++r)
          std::memcpy(kp + r * e, kbase + (j0 + jg + r) * a.k_row_stride, (size_t)e * 2);
        ka = kp; kstride = e * 2;
      }
      for (int64_t ig = 0; ig < nqp; ig += 32) {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        for (int64_t d0 = 0; d0 < e; d0 += 32) {
          _tile_loadd(4, ka + d0, kstride);
          _tile_loadd(5, (const char*)(ka + d0) + 16 * kstride, kstride);
          _tile_loadd(6, qb + (d0 / 2) * nqp + ig, nqp * 4);
          _tile_loadd(7, qb + (d0 / 2) * nqp + ig + 16, nqp * 4);
          _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
        }
        float* s0 = st + jg * nqp + ig;
        _tile_stored(0, s0, nqp * 4); _tile_stored(1, s0 + 16, nqp * 4);
        _tile_stored(2, s0 + 16 * nqp, nqp * 4); _tile_stored(3, s0 + 16 * nqp + 16, nqp * 4);
        // The extreme of this 32×32 block is taken one block later: reading a tile store back at
        // once stalls until it commits, while the next block's tile products hide that wait.
        if (fast) {
          if (pend) colmax_block(pend, pend_rows, nqp, colmax + pend_ig, neg_scale);
          pend = s0; pend_rows = min64(KB, nk - jg); pend_ig = ig;
        }
      }
    }
    if (pend) { colmax_block(pend, pend_rows, nqp, colmax + pend_ig, neg_scale); pend = nullptr; }
    SDPA_PROF(1);
    // ---- Vᵀ in pairs: vt[e][jj] = (V[2jj][e], V[2jj+1][e]) ----
    // Rows 2jj and 2jj+1 are interleaved into 16 dwords per 16 value dims, then each 16×16 dword
    // block is transposed in registers (unpack 32/64, then 128-bit lane shuffles).
    for (int64_t jb = 0; jb < nkp / 2; jb += 16) {
      for (int64_t e0 = 0; e0 < evp; e0 += 16) {
        __m512i r[16];
        for (int t = 0; t < 16; ++t) {
          const int64_t ja = 2 * (jb + t), jbb = ja + 1;
          __m256i va = ja < nk && e0 < ev ? _mm256_loadu_si256((const __m256i*)(vbase + (j0 + ja) * a.v_row_stride + e0)) : _mm256_setzero_si256();
          __m256i vb = jbb < nk && e0 < ev ? _mm256_loadu_si256((const __m256i*)(vbase + (j0 + jbb) * a.v_row_stride + e0)) : _mm256_setzero_si256();
          r[t] = _mm512_permutexvar_epi16(interleave, _mm512_inserti64x4(_mm512_castsi256_si512(va), vb, 1));
        }
        transpose16x16_epi32(r);
        for (int t = 0; t < 16; ++t) _mm512_storeu_si512(vt + (e0 + t) * (bkp / 2) + jb, r[t]);
      }
    }
    SDPA_PROF(2);
    if (fast) {
      fused_softmax_pack(st, pb, nqp, nk, nkp, colmax, m, l, alpha, a.scale, interleave);
      SDPA_PROF(4);
    } else {
      // ---- general path: scale, mask, online softmax (with dropout), then pack ----
      for (int64_t v = 0; v < nvq; ++v) {
        __m512 mx = _mm512_set1_ps(-__builtin_inff());
        for (int64_t j = 0; j < nk; ++j) {
          __m512 s = _mm512_mul_ps(_mm512_loadu_ps(st + j * nqp + v * 16), vscale);
          _mm512_storeu_ps(st + j * nqp + v * 16, s);
          mx = _mm512_max_ps(mx, s);
        }
        _mm512_storeu_ps(colmax + v * 16, mx);
      }
      if (need_causal || a.mask_kind != MaskKind::None)
        apply_mask(p, bh, c.q0, c.nq, j0, nk, st, nqp, colmax, need_causal);
      SDPA_PROF(3);
      softmax_block(p, bh, c.q0, c.nq, j0, nk, st, nqp, colmax, m, l, alpha, hrow);
      SDPA_PROF(4);
      // Pᵀ in VNNI pairs (bf16), zero rows past the block's keys
      for (int64_t jj = 0; jj < nkp / 2; ++jj) {
        const int64_t ja = 2 * jj, jb = 2 * jj + 1;
        for (int64_t v = 0; v < nvq; ++v) {
          __m512 ra = ja < nk ? _mm512_loadu_ps(st + ja * nqp + v * 16) : _mm512_setzero_ps();
          __m512 rb = jb < nk ? _mm512_loadu_ps(st + jb * nqp + v * 16) : _mm512_setzero_ps();
          __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(rb, ra);  // low 16 words from ra, high from rb
          _mm512_storeu_si512(pb + jj * nqp + v * 16, _mm512_permutexvar_epi16(interleave, ab));
        }
      }
    }
    SDPA_PROF(5);
    // ---- Oᵀ = alpha · Oᵀ + Vᵀ · Pᵀ ----
    const float* pt = nullptr; float* pot = nullptr; int64_t pig = 0; bool flip = false;
    for (int64_t eg = 0; eg < evp; eg += 32) {
      for (int64_t ig = 0; ig < nqp; ig += 32) {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        for (int64_t jj0 = 0; jj0 < nkp / 2; jj0 += 16) {
          _tile_loadd(4, vt + eg * (bkp / 2) + jj0, bkp * 2);
          _tile_loadd(5, vt + (eg + 16) * (bkp / 2) + jj0, bkp * 2);
          _tile_loadd(6, pb + jj0 * nqp + ig, nqp * 4);
          _tile_loadd(7, pb + jj0 * nqp + ig + 16, nqp * 4);
          _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
        }
        float* tb = tmp + (flip ? 1024 : 0);  // double buffer: combine the previous block now
        flip = !flip;
        _tile_stored(0, tb, 128); _tile_stored(1, tb + 16, 128);
        _tile_stored(2, tb + 16 * 32, 128); _tile_stored(3, tb + 16 * 32 + 16, 128);
        if (pt) rescale_add(pot, nqp, pt, alpha + pig);
        pt = tb; pot = ot + eg * nqp + ig; pig = ig;
      }
    }
    if (pt) { rescale_add(pot, nqp, pt, alpha + pig); pt = nullptr; }
  }
  SDPA_PROF(6);
  _tile_release();
  // out[i][x] = Oᵀ[x][i] / l[i], rounded to bf16 (rows with no visible key → 0).
  for (int64_t i = 0; i < c.nq; ++i) {
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    uint16_t* dst = (uint16_t*)a.out + (bh * a.s + c.q0 + i) * ev;
    for (int64_t x = 0; x < ev; ++x) dst[x] = f32_to_bf16(ot[x * nqp + i] * inv);
  }
}

}  // namespace isa_amx

const Kernel kernel_amx_bf16 = {"amx_bf16", isa_amx::amx_supports, isa_amx::amx_ws, isa_amx::run_amx};

static bool no_fp16(const Plan&) { return false; }
// fp16 on AMX (3 bf16 products per split operand) is not built yet: fp16 runs the AVX-512 kernel.
const Kernel kernel_amx_fp16 = {"amx_fp16", no_fp16, isa_amx::amx_ws, isa_amx::run_amx};

}  // namespace detail
}  // namespace sdpa
