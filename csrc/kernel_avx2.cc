// AVX2 + FMA (+F16C) kernel: 8-wide fp32, register tiles sized for 16 ymm registers.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_avx2 {

#include "ops_avx2.h"
constexpr int QK_MR = 4, QK_NV = 3, PV_MR = 4, PV_NV = 3;

#include "kernel_impl.h"

// ---- AVX2 prefill ----------------------------------------------------------------------------
// Its own blocking of the algorithm in kernel_impl.h, sized for 16 ymm registers:
//  - Work goes one strip of SW = 24 queries (3 ymm) at a time. Both products are "4 rows × 3 ymm"
//    register tiles (12 accumulators + 3 loaded vectors + 1 broadcast = 16 registers) over the
//    strip's queries: St[j][i] = Σ_d K[j][d]·Qs[d][i] broadcasts K, Oᵀ[e][i] += Σ_j V[j][e]·P[j][i]
//    broadcasts V. Both read the strip's packed panels (Qs, P, Oᵀ: 24 floats a row, 32-byte aligned,
//    so no load splits a cache line) and K/V rows straight from the caller (fp32) or from the
//    block's fp32 panels (fp16/bf16: converted once per key block and reused by every strip).
//  - Q is packed pre-scaled by scale. Scores stay in natural units (s - m is rounded there: in log2
//    units large logits lost 2x the accuracy, conformance large_logits_stability); the softmax is
//    2^((s - m)·log2 e) with a degree-5 polynomial exp2 (2^n by an exponent shift).
//  - Lazy running max: once a strip has a finite max m, the next blocks exponentiate inside the QK
//    tile's epilogue against m unchanged (exp work interleaved with the FMA stream of the next
//    tile, no separate pass over the scores, no Oᵀ rescale). A block whose scores exceed m by more
//    than kLazyT octaves (p up to 2^8: no overflow) is redone on the exact path: raw scores, the new
//    max, Oᵀ rescaled by alpha. The first block of a strip, masks and dropout take the exact path.
//  - Causal: per strip, key tiles past the last query's limit are never computed; a tile crossing
//    the diagonal is masked in registers (query index < key index - q0 - offset → -inf).
constexpr int SW = 24, SNV = 3, TMR = 4;
// Tile loops fully unrolled: an accumulator array indexed in a rolled loop lives in memory (GCC then
// stores all 12 accumulators every iteration of the FMA loop).
#define SDPA_UNROLL _Pragma("GCC unroll 16")
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLazyT = 5.5f;  // natural-log units: p up to e^5.5 ≈ 2^8

// 2^x for x ≤ 127 (larger x is clamped; the lazy path never keeps such values); x ≤ -127, -inf
// included, gives exactly 0 (the 2^n factor is then the float 0); NaN stays NaN.
static inline __m256 exp2v(__m256 x) {
  // Constants first in max/min: they return the second operand when one is NaN.
  x = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), x));
  // t's low mantissa bits hold round(x) + 127 (1.5·2^23 pins the exponent): round and int in one add.
  const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
  const __m256 t = _mm256_add_ps(x, magic);
  const __m256 n = _mm256_sub_ps(t, magic);            // round(x) - 0 (exact)
  const __m256 f = _mm256_sub_ps(x, n);                // [-0.5, 0.5]
  // 2^f, relative error 1.9e-7 in fp32 (least-squares minimax fit on [-0.5, 0.5]).
  __m256 p = _mm256_set1_ps(0.00132647f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.00967151f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.05550734f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.24022242f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.693147f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  // (round(x) + 127) << 23 is 2^round(x) as a float, and 0.0f for round(x) = -127.
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
  return _mm256_mul_ps(p, scale);
}

// Scratch (floats), every region 64-byte aligned.
struct PLayout {
  int64_t nstrip, qs, ot, pt, m, l, alpha, cmax, psum, kc, vc, hrow, tmp, total;
};
static inline PLayout playout(const Plan& p) {
  const AttentionArgs& a = p.a;
  PLayout L{};
  L.nstrip = (p.bq + SW - 1) / SW;
  int64_t off = 0;
  auto take = [&](int64_t n) { int64_t o = off; off += ceil_to(n, 16); return o; };
  L.qs = take(L.nstrip * a.e * SW);   // Qs[strip][d][i], pre-scaled, padded queries zero
  L.ot = take(L.nstrip * a.ev * SW);  // Oᵀ[strip][e][i]
  L.pt = take(p.bk * SW);             // St / P [j][i] of the current strip
  const int64_t nq = L.nstrip * SW;
  L.m = take(nq); L.l = take(nq); L.alpha = take(nq); L.cmax = take(nq); L.psum = take(nq);
  L.kc = take(a.dtype == DType::F32 ? 0 : p.bk * a.e);
  L.vc = take(p.bk * ceil_to(a.ev, TMR));  // V panel [e/4][j][4], every dtype
  L.hrow = take(p.bq);
  L.tmp = take(a.e + a.ev + TMR);
  L.total = off;
  return L;
}
static size_t workspace_bytes_avx2(const Plan& p) { return (size_t)playout(p).total * 4; }

// The tile's scores → registers of the epilogue. MODE 0 (exact): raw scores stored, column max
// updated. MODE 1 (lazy): p = 2^(s - m) stored, column max and probability sums updated.
template <int MR, int NV, int MODE>
static inline void qk_tile_avx2(const float* k, int64_t ks, const float* qs, int64_t e, float* pt, bool mask,
                                float thr0, float* cmax, const float* m, float* psum) {
  __m256 acc[MR][NV];
  SDPA_UNROLL for (int r = 0; r < MR; ++r)
    SDPA_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  const float* kr[MR];
  SDPA_UNROLL for (int r = 0; r < MR; ++r) kr[r] = k + r * ks;
  for (int64_t d = 0; d < e; ++d) {
    __m256 q[NV];
    SDPA_UNROLL for (int v = 0; v < NV; ++v) q[v] = _mm256_load_ps(qs + d * SW + v * 8);
    SDPA_UNROLL for (int r = 0; r < MR; ++r) {
      const __m256 b = _mm256_broadcast_ss(kr[r] + d);
      SDPA_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(b, q[v], acc[r][v]);
    }
  }
  SDPA_UNROLL for (int v = 0; v < NV; ++v) {
    __m256 mx = _mm256_load_ps(cmax + v * 8);
    __m256 sum = MODE == 1 ? _mm256_load_ps(psum + v * 8) : _mm256_setzero_ps();
    const __m256 mv = MODE == 1 ? _mm256_load_ps(m + v * 8) : _mm256_setzero_ps();
    const __m256 idx = _mm256_add_ps(_mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_ps((float)(v * 8)));
    SDPA_UNROLL for (int r = 0; r < MR; ++r) {
      __m256 s = acc[r][v];
      // Query i sees key j iff i >= j - q0 - offset (thr0 + r for this tile's row r).
      if (mask) s = _mm256_blendv_ps(s, _mm256_set1_ps(-__builtin_inff()), _mm256_cmp_ps(idx, _mm256_set1_ps(thr0 + (float)r), _CMP_LT_OQ));
      mx = _mm256_max_ps(mx, s);
      if (MODE == 1) {
        const __m256 pr = exp2v(_mm256_mul_ps(_mm256_sub_ps(s, mv), _mm256_set1_ps(kLog2e)));
        sum = _mm256_add_ps(sum, pr);
        _mm256_store_ps(pt + r * SW + v * 8, pr);
      } else {
        _mm256_store_ps(pt + r * SW + v * 8, s);
      }
    }
    _mm256_store_ps(cmax + v * 8, mx);
    if (MODE == 1) _mm256_store_ps(psum + v * 8, sum);
  }
}

// Oᵀ[e0+r][i] = alpha[i]·Oᵀ[e0+r][i] + Σ_j V[j][e0+r]·P[j][i] (ALPHA false: alpha = 1).
template <int MR, int NV, bool ALPHA>
static inline void pv_tile_avx2(const float* v0, int64_t vs, const float* pt, int64_t nk, float* ot, const float* alpha) {
  __m256 acc[MR][NV];
  SDPA_UNROLL for (int v = 0; v < NV; ++v) {
    const __m256 al = ALPHA ? _mm256_load_ps(alpha + v * 8) : _mm256_setzero_ps();
    SDPA_UNROLL for (int r = 0; r < MR; ++r) {
      const __m256 o = _mm256_load_ps(ot + r * SW + v * 8);
      acc[r][v] = ALPHA ? _mm256_mul_ps(o, al) : o;
    }
  }
  for (int64_t j = 0; j < nk; ++j) {
    __m256 pv[NV];
    SDPA_UNROLL for (int v = 0; v < NV; ++v) pv[v] = _mm256_load_ps(pt + j * SW + v * 8);
    const float* vr = v0 + j * vs;
    SDPA_UNROLL for (int r = 0; r < MR; ++r) {
      const __m256 b = _mm256_broadcast_ss(vr + r);
      SDPA_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(b, pv[v], acc[r][v]);
    }
  }
  SDPA_UNROLL for (int r = 0; r < MR; ++r)
    SDPA_UNROLL for (int v = 0; v < NV; ++v) _mm256_store_ps(ot + r * SW + v * 8, acc[r][v]);
}

// (rows, vectors) → instance tables; tails use the smaller tiles of the same code.
using QkFn = void (*)(const float*, int64_t, const float*, int64_t, float*, bool, float, float*, const float*, float*);
using PvFn = void (*)(const float*, int64_t, const float*, int64_t, float*, const float*);
template <int MODE>
static QkFn qk_fn(int mr, int nv) {
  static const QkFn t[TMR][SNV] = {
      {qk_tile_avx2<1, 1, MODE>, qk_tile_avx2<1, 2, MODE>, qk_tile_avx2<1, 3, MODE>},
      {qk_tile_avx2<2, 1, MODE>, qk_tile_avx2<2, 2, MODE>, qk_tile_avx2<2, 3, MODE>},
      {qk_tile_avx2<3, 1, MODE>, qk_tile_avx2<3, 2, MODE>, qk_tile_avx2<3, 3, MODE>},
      {qk_tile_avx2<4, 1, MODE>, qk_tile_avx2<4, 2, MODE>, qk_tile_avx2<4, 3, MODE>}};
  return t[mr - 1][nv - 1];
}
template <bool ALPHA>
static PvFn pv_fn(int mr, int nv) {
  static const PvFn t[TMR][SNV] = {
      {pv_tile_avx2<1, 1, ALPHA>, pv_tile_avx2<1, 2, ALPHA>, pv_tile_avx2<1, 3, ALPHA>},
      {pv_tile_avx2<2, 1, ALPHA>, pv_tile_avx2<2, 2, ALPHA>, pv_tile_avx2<2, 3, ALPHA>},
      {pv_tile_avx2<3, 1, ALPHA>, pv_tile_avx2<3, 2, ALPHA>, pv_tile_avx2<3, 3, ALPHA>},
      {pv_tile_avx2<4, 1, ALPHA>, pv_tile_avx2<4, 2, ALPHA>, pv_tile_avx2<4, 3, ALPHA>}};
  return t[mr - 1][nv - 1];
}

// The strip's QK over keys [j0, j0 + nk): tiles of TMR keys, causal ones masked in registers.
template <int MODE>
static inline void qk_strip(const float* kp, int64_t ks, const float* qs, int64_t e, float* pt, int nv, int64_t nk,
                            bool causal, int64_t jabs0, int64_t qabs0, int64_t off, float* cmax, const float* m,
                            float* psum) {
  for (int v = 0; v < nv; ++v) _mm256_store_ps(cmax + v * 8, _mm256_set1_ps(-__builtin_inff()));
  if (MODE == 1)
    for (int v = 0; v < nv; ++v) _mm256_store_ps(psum + v * 8, _mm256_setzero_ps());
  const QkFn full = qk_fn<MODE>(TMR, nv);
  for (int64_t j = 0; j < nk; j += TMR) {
    const int mr = (int)min64(TMR, nk - j);
    // The tile's last key beyond the strip's first query's limit: some entries are masked.
    const bool mask = causal && jabs0 + j + mr - 1 > qabs0 + off;
    const float thr0 = (float)(jabs0 + j - qabs0 - off);
    (mr == TMR ? full : qk_fn<MODE>(mr, nv))(kp + j * ks, ks, qs, e, pt + j * SW, mask, thr0, cmax, m, psum);
  }
}

// Float / bool mask on the raw scores of the strip, then the column max again.
static void apply_user_mask(const AttentionArgs& a, int64_t bh, int64_t q0, int64_t nq, int64_t j0, int64_t nk,
                            float* pt, int nv, float* cmax) {
  const int64_t mb = a.mask_base[bh];
  const bool is_bool = a.mask_kind == MaskKind::Bool;
  for (int64_t j = 0; j < nk; ++j) {
    float* row = pt + j * SW;
    int64_t idx = mb + (j0 + j) * a.mask_stride_l + q0 * a.mask_stride_s;
    for (int64_t i = 0; i < nq; ++i, idx += a.mask_stride_s) {
      const float mv = load_mask(a, idx);
      // bool: 0 → -inf, 1 → unchanged; float: added (an -inf entry masks too).
      row[i] = is_bool ? (mv == 0.0f ? row[i] : mv) : row[i] + mv;
    }
  }
  for (int v = 0; v < nv; ++v) {
    __m256 mx = _mm256_set1_ps(-__builtin_inff());
    for (int64_t j = 0; j < nk; ++j) mx = _mm256_max_ps(mx, _mm256_load_ps(pt + j * SW + v * 8));
    _mm256_store_ps(cmax + v * 8, mx);
  }
}

// Exact online-softmax step over the strip's raw scores: new max, alpha, P = 2^(s - m), l update;
// then dropout on P (the normaliser sums the un-dropped probabilities, as kernel_impl.h does).
static void softmax_exact(const AttentionArgs& a, int64_t j0, int64_t nk, int64_t nq, float* pt, int nv,
                          const float* cmax, float* m, float* l, float* alpha, const uint32_t* hrow) {
  for (int v = 0; v < nv; ++v) {
    const __m256 mold = _mm256_load_ps(m + v * 8);
    const __m256 mnew = _mm256_max_ps(mold, _mm256_load_ps(cmax + v * 8));
    const __m256 l2e = _mm256_set1_ps(kLog2e);
    // A column with every key masked so far has max -inf: subtract 0 instead so 2^x gives 0, not NaN.
    const __m256 muse = Ops::ninf_to_zero(mnew);
    const __m256 al = exp2v(_mm256_mul_ps(_mm256_sub_ps(mold, muse), l2e));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    float* col = pt + v * 8;
    int64_t j = 0;
    for (; j + 1 < nk; j += 2) {
      const __m256 p0 = exp2v(_mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(col + j * SW), muse), l2e));
      const __m256 p1 = exp2v(_mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(col + (j + 1) * SW), muse), l2e));
      _mm256_store_ps(col + j * SW, p0);
      _mm256_store_ps(col + (j + 1) * SW, p1);
      s0 = _mm256_add_ps(s0, p0); s1 = _mm256_add_ps(s1, p1);
    }
    if (j < nk) {
      const __m256 p0 = exp2v(_mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(col + j * SW), muse), l2e));
      _mm256_store_ps(col + j * SW, p0);
      s0 = _mm256_add_ps(s0, p0);
    }
    _mm256_store_ps(l + v * 8, _mm256_fmadd_ps(_mm256_load_ps(l + v * 8), al, _mm256_add_ps(s0, s1)));
    _mm256_store_ps(m + v * 8, mnew);
    _mm256_store_ps(alpha + v * 8, al);
  }
  if (a.dropout_p > 0.0) apply_dropout(pt, SW, nk, nq, j0, hrow, a.dropout_p);
}

// vp: the block's V panel, [e/4][nkb][4] (the tile's 4 broadcasts of a key come from 16 bytes).
template <bool ALPHA>
static inline void pv_strip(const float* vp, int64_t nkb, int64_t ev, const float* pt, int64_t nk, int nv, float* ot,
                            const float* alpha) {
  const PvFn full = pv_fn<ALPHA>(TMR, nv);
  for (int64_t e0 = 0; e0 < ev; e0 += TMR) {
    const int mr = (int)min64(TMR, ev - e0);
    (mr == TMR ? full : pv_fn<ALPHA>(mr, nv))(vp + e0 * nkb, TMR, pt, nk, ot + e0 * SW, alpha);
  }
}

static void run_avx2(const Plan& p, int64_t job, void* wsv) {
  int64_t bh, qblk;
  prefill_job(p, job, &bh, &qblk);
  const AttentionArgs& a = p.a;
  const PLayout L = playout(p);
  float* ws = (float*)wsv;
  float *qsb = ws + L.qs, *otb = ws + L.ot, *pt = ws + L.pt, *mb = ws + L.m, *lb = ws + L.l, *alb = ws + L.alpha;
  float *cmb = ws + L.cmax, *psb = ws + L.psum, *tmp = ws + L.tmp;
  uint32_t* hrow = (uint32_t*)(ws + L.hrow);
  const JobCtx c = job_ctx(p, bh, qblk);
  SDPA_PROF_START();
  const int64_t e = a.e, ev = a.ev;
  const int64_t nstrip = (c.nq + SW - 1) / SW;

  // Qs: this job's queries, strip by strip, transposed and scaled by scale.
  std::memset(qsb, 0, sizeof(float) * (size_t)(nstrip * e * SW));
  const float qscale = a.scale;
  for (int64_t i = 0; i < c.nq; ++i) {
    load_row(a.dtype, a.q, a.q_base[bh] + (c.q0 + i) * a.q_row_stride, tmp, e);
    float* dst = qsb + (i / SW) * e * SW + i % SW;
    for (int64_t d = 0; d < e; ++d) dst[d * SW] = tmp[d] * qscale;
  }
  std::memset(otb, 0, sizeof(float) * (size_t)(nstrip * ev * SW));
  for (int64_t i = 0; i < nstrip * SW; ++i) { mb[i] = -__builtin_inff(); lb[i] = 0.0f; }
  init_dropout_rows(p, bh, c.q0, c.nq, hrow);
  const bool lazy_ok = a.mask_kind == MaskKind::None && a.dropout_p <= 0.0;
  SDPA_PROF(0);

  for (int64_t j0 = 0; j0 < c.kv_end; j0 += p.bk) {
    const int64_t nk = min64(p.bk, c.kv_end - j0);
    const float* kp;
    int64_t ks;
    if (a.dtype == DType::F32) {  // K rows read in place (each tile reads 4 whole rows)
      kp = (const float*)a.k + a.kv_base_k[c.kvi] + j0 * a.k_row_stride; ks = a.k_row_stride;
    } else {  // fp16 / bf16: the block's K, converted once and read by every strip
      float* kc = ws + L.kc;
      for (int64_t j = 0; j < nk; ++j) load_row(a.dtype, a.k, a.kv_base_k[c.kvi] + (j0 + j) * a.k_row_stride, kc + j * e, e);
      kp = kc; ks = e;
    }
    // V panel [e/4][j][4], zero-padded to whole groups of 4, packed once per block for every strip:
    // read in place, a PV tile would use 16 bytes of each V row's cache line per pass and come
    // back for the rest 3 passes later, after the block's 32 KiB of V had left L1.
    float* vp = ws + L.vc;
    {
      const int64_t evq = ceil_to(ev, TMR);
      for (int64_t j = 0; j < nk; ++j) {
        const float* row;
        const int64_t roff = a.kv_base_v[c.kvi] + (j0 + j) * a.v_row_stride;
        if (a.dtype == DType::F32 && ev % TMR == 0) row = (const float*)a.v + roff;
        else {
          load_row(a.dtype, a.v, roff, tmp, ev);
          for (int64_t x = ev; x < evq; ++x) tmp[x] = 0.0f;
          row = tmp;
        }
        for (int64_t g = 0; g < evq; g += TMR) _mm_store_ps(vp + g * nk + j * TMR, _mm_loadu_ps(row + g));
      }
    }
    SDPA_PROF(0);
    for (int64_t st = 0; st < nstrip; ++st) {
      const int64_t qs0 = st * SW, nqs = min64(SW, c.nq - qs0);
      const int nv = (int)((nqs + 7) / 8);
      // Causal: keys past the strip's last query's limit are never visible.
      const int64_t nks = a.causal ? min64(nk, c.q0 + qs0 + nqs + a.diagonal_offset - j0) : nk;
      if (nks <= 0) continue;
      const float* qs = qsb + st * e * SW;
      float* ot = otb + st * ev * SW;
      float *m = mb + qs0, *l = lb + qs0, *al = alb + qs0, *cm = cmb + qs0, *ps = psb + qs0;
      bool lazy = lazy_ok;
      for (int v = 0; lazy && v < nv; ++v)  // a finite max in every column of the strip
        lazy = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_load_ps(m + v * 8), _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ)) == 0;
      if (lazy) {
        qk_strip<1>(kp, ks, qs, e, pt, nv, nks, a.causal, j0, c.q0 + qs0, a.diagonal_offset, cm, m, ps);
        for (int v = 0; lazy && v < nv; ++v)  // no score above m + kLazyT (NaN scores stay lazy: NaN out)
          lazy = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_load_ps(cm + v * 8), _mm256_add_ps(_mm256_load_ps(m + v * 8), _mm256_set1_ps(kLazyT)), _CMP_GT_OQ)) == 0;
        if (lazy)
          for (int v = 0; v < nv; ++v) _mm256_store_ps(l + v * 8, _mm256_add_ps(_mm256_load_ps(l + v * 8), _mm256_load_ps(ps + v * 8)));
      }
      SDPA_PROF(1);
      if (!lazy) {
        qk_strip<0>(kp, ks, qs, e, pt, nv, nks, a.causal, j0, c.q0 + qs0, a.diagonal_offset, cm, m, ps);
        SDPA_PROF(1);
        if (a.mask_kind != MaskKind::None) apply_user_mask(a, bh, c.q0 + qs0, nqs, j0, nks, pt, nv, cm);
        SDPA_PROF(2);
        softmax_exact(a, j0, nks, nqs, pt, nv, cm, m, l, al, hrow + qs0);
        SDPA_PROF(3);
        pv_strip<true>(vp, nk, ev, pt, nks, nv, ot, al);
      } else {
        pv_strip<false>(vp, nk, ev, pt, nks, nv, ot, al);
      }
      SDPA_PROF(5);
    }
  }
  // out = Oᵀ / l, rows with no visible key (l == 0) zeros.
  for (int64_t i = 0; i < c.nq; ++i) {
    const float inv = lb[i] > 0.0f ? 1.0f / lb[i] : 0.0f;
    const float* src = otb + (i / SW) * ev * SW + i % SW;
    const int64_t off = (bh * a.s + c.q0 + i) * ev;
    if (a.dtype == DType::F32) {
      float* dst = (float*)a.out + off;
      for (int64_t x = 0; x < ev; ++x) dst[x] = src[x * SW] * inv;
    } else {
      for (int64_t x = 0; x < ev; ++x) tmp[x] = src[x * SW];
      Ops::cvt_out(tmp, (uint16_t*)a.out + off, ev, a.dtype == DType::BF16, inv, nullptr);
    }
  }
  SDPA_PROF(4);
}

// The prefill blocking (plan_prefill) with query blocks of whole strips: 5 strips (120 queries)
// for fp32, whose K/V are read in place, and 10 for fp16/bf16, whose per-block K/V conversion is
// then shared by more strips; fewer when there are too few jobs for the threads.
static void plan_avx2(Plan& p, const Tuning& t) {
  plan_prefill(p, t);
  if (t.bq > 0) return;
  const AttentionArgs& a = p.a;
  int64_t strips = a.dtype == DType::F32 ? 5 : 10;
  while (strips > 1 && a.bh * ((a.s + strips * SW - 1) / (strips * SW)) < 2 * (int64_t)p.nthreads) strips = (strips + 1) / 2;
  p.bq = min64(strips * SW, ceil_to(max64(a.s, 1), 8));
  p.nqb = (a.s + p.bq - 1) / p.bq;
  p.njobs = a.bh * p.nqb;
}

}  // namespace isa_avx2

const Kernel kernel_avx2 = {
    {"avx2_fp32", "avx2", kDtAll, kNeedAvx2, 1, 1, kMaxHeadDim, 0, 0,
     "AVX2+FMA fp32 flash attention: 4x3 ymm register tiles over 24-query strips for both products, "
     "exp2 fused into the QK tiles under a lazy running max; fp16 (F16C) and bf16 K/V widened to fp32 "
     "once per key block."},
    isa_avx2::plan_avx2, isa_avx2::workspace_bytes_avx2, isa_avx2::run_avx2, no_shared_bytes};

}  // namespace detail
}  // namespace sdpa
