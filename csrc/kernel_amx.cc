// AMX-BF16 kernels for bf16 inputs and (split into bf16 hi/lo) fp16 inputs: both products on tiles,
// softmax and masking with AVX-512.
//
// Layout (as in kernel_impl.h, scores transposed so the softmax is vertical):
//   St  = K · Qᵀ : A tiles are 16 key rows straight from the caller's K (bf16; fp16 K is split into
//                 hi/lo rows once per kv head), B tiles are Qᵀ in VNNI pairs, packed once per job.
//   Oᵀ += Vᵀ · Pᵀ: A tiles are Vᵀ (V transposed into bf16 pairs, once per kv head and thread),
//                 B tiles are Pᵀ in VNNI pairs, written straight from the fp32 probabilities.
// Each product runs 2×2 output tiles (tmm0-3) from 2 A (tmm4-5) and 2 B (tmm6-7) tiles; for head
// dim 64 (bf16) K · Qᵀ instead holds the strip's 4 Qᵀ tiles and streams K (see the strip loop).
// Work goes one 32-query strip at a time so scores and Pᵀ stay in L1. The running max is lazy:
// once a strip has one, later blocks exponentiate against it unchanged (lazy_softmax_pack), so
// alpha = 1 and Vᵀ · Pᵀ accumulates straight into Oᵀ on tiles (load, products, store). Only a
// strip's first block, or one whose probabilities outgrow the stale max, takes the exact pass
// (column max, then Oᵀ rescaled by alpha in AVX-512).
//
// Tried and dropped (target machine, 1 thread, D = 64, S = 2048): software-pipelining the tile
// products of the neighbouring strips into the softmax loop (no gain: the AMX and AVX-512 phases
// did not overlap measurably), 64-key blocks (10% slower).
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_amx {

#include "ops_avx512.h"
constexpr int QK_MR = 6, QK_NV = 4, PV_MR = 6, PV_NV = 4;

#include "kernel_impl.h"

constexpr int64_t KB = 32;  // keys per tile pair (2 × 16 rows), also the bf16 K-depth of one tile

struct AmxLayout {  // byte offsets, 64-byte aligned
  int64_t nqp, evp, bkp;
  size_t qb, st, pb, vt, ot, kp, tmp, m, l, alpha, colmax, hrow;
  size_t qbl, pbl, vtl, kh, kl;  // fp16 only: the bf16 lo halves, and K split per block
  bool cache; int64_t nslot;      // per-head packing (see amx_layout)
  size_t total;
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
  L.st = take((size_t)(L.bkp * 32) * 4);      // one 32-query strip of scores
  L.pb = take((size_t)(L.bkp / 2 * 32) * 4);  // and its Pᵀ pairs
  // Packed Vᵀ (and fp16 K hi/lo, Vᵀ lo) of a whole kv head when that stays under 16 MiB per thread:
  // consecutive jobs of a thread share the head (head-major job order) and skip the repacking.
  // Otherwise one block's worth, repacked per block as before.
  const bool f16 = a.dtype == DType::F16;
  const int64_t nblk = (a.l + p.bk - 1) / p.bk;
  const size_t per_blk = (size_t)(L.evp * L.bkp / 2) * 4 * (f16 ? 2 : 1) + (f16 ? (size_t)(L.bkp * a.e) * 2 * 2 : 0);
  L.cache = nblk >= 1 && per_blk * (size_t)nblk <= ((size_t)16 << 20);
  L.nslot = L.cache ? nblk : 1;
  L.vt = take((size_t)(L.evp * L.bkp / 2) * 4 * L.nslot);
  L.ot = take((size_t)(L.evp * L.nqp) * 4);
  L.kp = take((size_t)(KB * a.e) * 2);
  L.tmp = take(2 * 32 * 32 * 4);
  L.m = take((size_t)L.nqp * 4); L.l = take((size_t)L.nqp * 4); L.alpha = take((size_t)L.nqp * 4);
  L.colmax = take((size_t)L.nqp * 4);
  L.hrow = take((size_t)p.bq * 4);
  L.qbl = take(f16 ? (size_t)(a.e / 2 * L.nqp) * 4 : 0);
  L.pbl = take(f16 ? (size_t)(L.bkp / 2 * 32) * 4 : 0);
  L.vtl = take(f16 ? (size_t)(L.evp * L.bkp / 2) * 4 * L.nslot : 0);
  L.kh = take(f16 ? (size_t)(L.bkp * a.e) * 2 * L.nslot : 0);
  L.kl = take(f16 ? (size_t)(L.bkp * a.e) * 2 * L.nslot : 0);
  L.total = off;
  return L;
}

// The AMX bf16 kernel's blocking: the prefill one, with 256-key blocks for head dims up to 128.
// Each block costs a fixed set of Oᵀ tile loads / stores and Qᵀ tile loads per strip plus the
// exact-max pass of a strip's first block, so longer blocks amortise them; measured +4–12%
// (1 thread, D = 64/128, S = 512..4096; causal neutral to +10%), where 64-key blocks were 10%
// slower. The fp16 split kernel measured neutral to -5% with 256 and keeps 128.
static void amx_bf16_plan(Plan& p, const Tuning& t) {
  plan_prefill(p, t);
  if (t.bk <= 0 && p.a.e + p.a.ev <= 256) p.bk = 256;
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

// fp16 on bf16 tiles: x = hi + lo with hi = x truncated to bf16 and lo = x − hi. An fp16 value has 11
// significant bits, so lo has at most 3 and is exact in bf16: the split loses nothing. A product
// x·y ≈ hi·hi + hi·lo + lo·hi drops only lo·lo (< 2^-16 relative), far below fp16's 2^-11; each
// tile product becomes three over the same accumulators. P (fp32) splits the same way, its lo
// truncated to bf16 (again < 2^-16 relative).
//
// Two fp32 vectors → VNNI pair dwords (a in the low word, b in the high word) of their bf16 hi
// and lo halves. Truncation makes the pairing one blend: no rounding, no word permute.
static inline void split_pair(__m512 a, __m512 b, __m512i& hi, __m512i& lo) {
  const __m512i mhi = _mm512_set1_epi32((int)0xffff0000u);
  const __m512i ia = _mm512_castps_si512(a), ib = _mm512_castps_si512(b);
  const __m512 la = _mm512_sub_ps(a, _mm512_castsi512_ps(_mm512_and_si512(ia, mhi)));
  const __m512 lb = _mm512_sub_ps(b, _mm512_castsi512_ps(_mm512_and_si512(ib, mhi)));
  hi = _mm512_mask_blend_epi16(0xaaaaaaaau, _mm512_srli_epi32(ia, 16), ib);
  lo = _mm512_mask_blend_epi16(0xaaaaaaaau, _mm512_srli_epi32(_mm512_castps_si512(la), 16), _mm512_castps_si512(lb));
}
// 16 fp32 → bf16 hi and lo words (truncated split).
static inline void split_words(__m512 x, __m256i& hi, __m256i& lo) {
  const __m512i ix = _mm512_castps_si512(x);
  const __m512i h = _mm512_and_si512(ix, _mm512_set1_epi32((int)0xffff0000u));
  const __m512 l = _mm512_sub_ps(x, _mm512_castsi512_ps(h));
  hi = _mm512_cvtepi32_epi16(_mm512_srli_epi32(ix, 16));
  lo = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(l), 16));
}

// 2^y for the fast softmax (y = scale·s·log2e − m·log2e, at most ~16 with the lazy max): vreduceps
// rounding down gives f = y − floor(y) in [0, 1) in one op, a polynomial fit of 2^f on [0, 1), and
// vscalefps multiplies by 2^floor(y) itself (no separate n = y − f); y < -126 gives exact 0 (no
// denormal assists), NaN stays NaN. Deg4 (fp16 path, which keeps fp16 accuracy): relative error
// 2.7e-6. Otherwise (bf16) degree 3: 7.5e-5, still 25× below the bf16 rounding of P that follows
// (2^-9), and the row sums l err by the same 7.5e-5 at most. 6 vector ops (7 with Deg4): this pass
// bounds the bf16 kernel. (Measured against the round-to-nearest version with the subtraction, on
// an AVX-512 CPU over y in [-130, 20]: same accuracy, same results for ±0, ±inf, NaN, -126, -127.)
template <bool Deg4>
static inline __m512 exp2_fast(__m512 y) {
  const __mmask16 normal = _mm512_cmp_ps_mask(y, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);  // NaN stays NaN
  const __m512 f = _mm512_reduce_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p;
  if (Deg4) {
    p = _mm512_fmadd_ps(_mm512_set1_ps(0.013534167781472206f), f, _mm512_set1_ps(0.05201146379113197f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2414427548646927f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6930038332939148f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0000026226043701f));
  } else {
    p = _mm512_fmadd_ps(_mm512_set1_ps(0.07802452147006989f), f, _mm512_set1_ps(0.2260671854019165f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6958335041999817f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999251961708069f));
  }
  return _mm512_maskz_scalef_ps(normal, p, y);
}

// 2^(c2·s + nm) of one 16-query column of a strip's scores (St rows nqp floats apart), packed into
// Pᵀ VNNI pairs (pb[jj·nqp], and the lo halves into pbl for fp16) with zero pairs past the nk keys
// up to nkp; returns the column sums. The pass both softmax variants below make.
template <bool F16>
static inline __m512 exp_pack_column(const float* col, int64_t nqp, int64_t nk, int64_t nkp, __m512 c2, __m512 nm,
                                     uint32_t* pb, uint32_t* pbl, __m512i interleave) {
  // Keys 2jj and 2jj+1 → one row of pairs (bf16 rounded, or fp16's truncated hi / exact lo halves).
  auto store_pair = [&](int64_t jj, __m512 pa, __m512 pbv) {
    if (F16) {
      __m512i hi, lo; split_pair(pa, pbv, hi, lo);
      _mm512_storeu_si512(pb + jj * nqp, hi); _mm512_storeu_si512(pbl + jj * nqp, lo);
    } else {
      __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(pbv, pa);
      _mm512_storeu_si512(pb + jj * nqp, _mm512_permutexvar_epi16(interleave, ab));
    }
  };
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  int64_t jj = 0;
  for (; 2 * jj + 1 < nk; ++jj) {  // two chains so exp latency overlaps
    __m512 pa = exp2_fast<F16>(_mm512_fmadd_ps(_mm512_loadu_ps(col + 2 * jj * nqp), c2, nm));
    __m512 pbv = exp2_fast<F16>(_mm512_fmadd_ps(_mm512_loadu_ps(col + (2 * jj + 1) * nqp), c2, nm));
    sum0 = _mm512_add_ps(sum0, pa); sum1 = _mm512_add_ps(sum1, pbv);
    store_pair(jj, pa, pbv);
  }
  for (; 2 * jj < nkp; ++jj) {  // odd last key, then zero pairs up to the tile boundary
    __m512 pa = 2 * jj < nk ? exp2_fast<F16>(_mm512_fmadd_ps(_mm512_loadu_ps(col + 2 * jj * nqp), c2, nm)) : _mm512_setzero_ps();
    sum0 = _mm512_add_ps(sum0, pa);
    store_pair(jj, pa, _mm512_setzero_ps());
  }
  return _mm512_add_ps(sum0, sum1);
}

// Exact fast-path online softmax for one key block (a strip's first block, or after the lazy check
// failed): St holds raw q·k; colmax the raw extreme per query.
// Writes the un-normalised probabilities straight into Pᵀ VNNI pairs (bf16) and updates m, l, alpha.
template <bool F16>
static inline void fused_softmax_pack(const float* st, uint32_t* pb, uint32_t* pbl, int64_t nqp, int64_t nk, int64_t nkp,
                                      const float* colmax, float* m, float* l, float* alpha, float scale,
                                      __m512i interleave) {
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 c2 = _mm512_set1_ps(scale * 1.44269504088896341f);  // natural → base-2 exponent
  for (int64_t v = 0; v < nqp / 16; ++v) {
    const __m512 mold = _mm512_loadu_ps(m + v * 16);
    const __m512 mnew = _mm512_max_ps(mold, _mm512_mul_ps(_mm512_loadu_ps(colmax + v * 16), vs));
    const __m512 muse = Ops::ninf_to_zero(mnew);
    const __m512 nm = _mm512_mul_ps(muse, _mm512_set1_ps(-1.44269504088896341f));
    const __m512 al = Ops::exp(_mm512_sub_ps(mold, muse));
    const __m512 sum = exp_pack_column<F16>(st + v * 16, nqp, nk, nkp, c2, nm, pb + v * 16, pbl + v * 16, interleave);
    _mm512_storeu_ps(l + v * 16, _mm512_fmadd_ps(_mm512_loadu_ps(l + v * 16), al, sum));
    _mm512_storeu_ps(m + v * 16, mnew);
    _mm512_storeu_ps(alpha + v * 16, al);
  }
}

// Lazy-max variant of fused_softmax_pack for a strip whose running max m is finite: exponentiates
// against the stale m (no column-max pass, alpha = 1, so Oᵀ needs no rescale and PV can accumulate
// straight into it). Exact, because l sums the same stale-max probabilities that Oᵀ accumulates and
// the output is Oᵀ / l. Valid while no probability grows too large: the block's column sums are
// checked against 2^16 (every p >= 0, so each p <= its sum; the check also fails on NaN / inf).
// Returns false, with m, l, alpha untouched, when the caller must redo the strip on the exact path
// (the max grew by more than 16 octaves since m was set, or a score is NaN / +inf).
template <bool F16>
static inline bool lazy_softmax_pack(const float* st, uint32_t* pb, uint32_t* pbl, int64_t nqp, int64_t nk, int64_t nkp,
                                     const float* m, float* l, float* alpha, float scale, __m512i interleave) {
  const __m512 c2 = _mm512_set1_ps(scale * 1.44269504088896341f);
  const __m512 limit = _mm512_set1_ps(65536.0f);
  __m512 sums[2];
  for (int64_t v = 0; v < 2; ++v) {
    const __m512 nm = _mm512_mul_ps(_mm512_loadu_ps(m + v * 16), _mm512_set1_ps(-1.44269504088896341f));
    sums[v] = exp_pack_column<F16>(st + v * 16, nqp, nk, nkp, c2, nm, pb + v * 16, pbl + v * 16, interleave);
  }
  // Ordered <=: NaN sums fail too.
  if (_mm512_cmp_ps_mask(sums[0], limit, _CMP_LE_OQ) != 0xffff || _mm512_cmp_ps_mask(sums[1], limit, _CMP_LE_OQ) != 0xffff)
    return false;
  for (int64_t v = 0; v < 2; ++v) {
    _mm512_storeu_ps(l + v * 16, _mm512_add_ps(_mm512_loadu_ps(l + v * 16), sums[v]));
    _mm512_storeu_ps(alpha + v * 16, _mm512_set1_ps(1.0f));
  }
  return true;
}

// What this thread's packed-head buffers hold: valid for one call (call_id), one scratch region and
// one kv head, blocks [0, packed). thread_local rather than in the scratch so a fresh or regrown
// scratch can never look valid.
struct PackTag { uint64_t call_id; const void* ws; int64_t kvi, packed; };
static thread_local PackTag pack_tag = {0, nullptr, -1, 0};

template <bool F16>
static void run_amx(const Plan& p, int64_t job, void* wsv) {
  const AttentionArgs& a = p.a;
  int64_t bh, qblk;
  prefill_job(p, job, &bh, &qblk);
  const AmxLayout L = amx_layout(p);
  char* ws = (char*)wsv;
  uint32_t* qb = (uint32_t*)(ws + L.qb);
  float* st = (float*)(ws + L.st);
  uint32_t* pb = (uint32_t*)(ws + L.pb);
  uint32_t* vt0 = (uint32_t*)(ws + L.vt);
  float* ot = (float*)(ws + L.ot);
  uint16_t* kp = (uint16_t*)(ws + L.kp);
  float* tmp = (float*)(ws + L.tmp);
  float *m = (float*)(ws + L.m), *l = (float*)(ws + L.l), *alpha = (float*)(ws + L.alpha), *colmax = (float*)(ws + L.colmax);
  uint32_t* hrow = (uint32_t*)(ws + L.hrow);
  uint32_t *qbl = (uint32_t*)(ws + L.qbl), *pbl = (uint32_t*)(ws + L.pbl), *vtl0 = (uint32_t*)(ws + L.vtl);
  uint16_t *kh0 = (uint16_t*)(ws + L.kh), *kl0 = (uint16_t*)(ws + L.kl);
  const JobCtx c = job_ctx(p, bh, qblk);
  SDPA_PROF_START();
  const int64_t nqp = L.nqp, evp = L.evp, bkp = L.bkp, e = a.e, ev = a.ev;

  TileConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
  _tile_loadconfig(&cfg);

  // Qᵀ in VNNI pairs: qb[dd][i] = (Q[i][2dd], Q[i][2dd+1]); padded query columns are zero.
  std::memset(qb, 0, (size_t)(e / 2 * nqp) * 4);
  if (F16) std::memset(qbl, 0, (size_t)(e / 2 * nqp) * 4);
  for (int64_t i = 0; i < c.nq; ++i) {
    if (F16) {  // hi / lo bf16 pairs of the fp16 query (see split_pair), 16 elements at a time
      const uint16_t* row = (const uint16_t*)a.q + a.q_base[bh] + (c.q0 + i) * a.q_row_stride;
      alignas(32) uint32_t hw[8], lw[8];
      for (int64_t d0 = 0; d0 < e; d0 += 16) {
        __m256i hi, lo;
        split_words(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(row + d0))), hi, lo);
        _mm256_store_si256((__m256i*)hw, hi); _mm256_store_si256((__m256i*)lw, lo);
        for (int t = 0; t < 8; ++t) { qb[(d0 / 2 + t) * nqp + i] = hw[t]; qbl[(d0 / 2 + t) * nqp + i] = lw[t]; }
      }
    } else {
      // A bf16 pair is 4 bytes but a row may start at any 2-byte offset (odd strides, views):
      // memcpy does the unaligned 32-bit load without undefined behaviour (UBSan flagged the cast).
      const uint16_t* row = (const uint16_t*)a.q + a.q_base[bh] + (c.q0 + i) * a.q_row_stride;
      for (int64_t dd = 0; dd < e / 2; ++dd) std::memcpy(&qb[dd * nqp + i], row + 2 * dd, 4);
    }
  }
  std::memset(ot, 0, (size_t)(evp * nqp) * 4);
  for (int64_t i = 0; i < nqp; ++i) { m[i] = -__builtin_inff(); l[i] = 0.0f; }
  init_dropout_rows(p, bh, c.q0, c.nq, hrow);

  if (!L.cache || pack_tag.call_id != p.call_id || pack_tag.ws != wsv || pack_tag.kvi != c.kvi)
    pack_tag = PackTag{p.call_id, wsv, c.kvi, 0};
  const uint16_t* kbase = (const uint16_t*)a.k + a.kv_base_k[c.kvi];
  const uint16_t* vbase = (const uint16_t*)a.v + a.kv_base_v[c.kvi];
  const __m512 vscale = _mm512_set1_ps(a.scale);
  const bool neg_scale = a.scale < 0.0f;
  const __m512i interleave = _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005,
                                               0x00160006, 0x00170007, 0x00180008, 0x00190009, 0x001a000a, 0x001b000b,
                                               0x001c000c, 0x001d000d, 0x001e000e, 0x001f000f);
  const int64_t sst = 32;  // St / Pᵀ strip row stride (32 queries)
  for (int64_t j0 = 0; j0 < c.kv_end; j0 += p.bk) {
    const int64_t nk = min64(p.bk, c.kv_end - j0);
    const int64_t nkp = ceil_to(nk, KB);
    // Packed blocks always hold the block's keys up to L (not this job's causal end), so a later job
    // of the same head can reuse them; keys past this job's nk meet zero probabilities in PV.
    const int64_t blk = j0 / p.bk, slot = L.cache ? blk : 0;
    const bool pack = !L.cache || blk >= pack_tag.packed;
    const int64_t nkf = min64(p.bk, a.l - j0), nkfp = ceil_to(nkf, KB);
    uint32_t* vt = vt0 + slot * (evp * bkp / 2);
    uint32_t* vtl = vtl0 + (F16 ? slot * (evp * bkp / 2) : 0);
    uint16_t* kh = kh0 + (F16 ? slot * (bkp * e) : 0);
    uint16_t* kl = kl0 + (F16 ? slot * (bkp * e) : 0);
    // K rows feed A tiles straight from the caller; only a group running past the tensor's last key
    // is copied into a zero-padded 32-row buffer (no reads past L). At most the last group.
    const uint16_t* ktail = nullptr;
    if (F16 && pack) {
      // fp16 K block → bf16 hi / lo rows (zero rows past the block), once per block and head.
      for (int64_t r = 0; r < nkfp; ++r) {
        if (r < nkf) {
          const uint16_t* src = kbase + (j0 + r) * a.k_row_stride;
          for (int64_t d0 = 0; d0 < e; d0 += 16) {
            __m256i hi, lo;
            split_words(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(src + d0))), hi, lo);
            _mm256_storeu_si256((__m256i*)(kh + r * e + d0), hi);
            _mm256_storeu_si256((__m256i*)(kl + r * e + d0), lo);
          }
        } else {
          std::memset(kh + r * e, 0, (size_t)e * 2); std::memset(kl + r * e, 0, (size_t)e * 2);
        }
      }
    } else if (!F16 && j0 + nkp > a.l) {
      const int64_t jg = nkp - KB;
      std::memset(kp, 0, (size_t)(KB * e) * 2);
      for (int64_t r = 0; r < KB && j0 + jg + r < a.l; ++r)
        std::memcpy(kp + r * e, kbase + (j0 + jg + r) * a.k_row_stride, (size_t)e * 2);
      ktail = kp;
    }
    // ---- Vᵀ in pairs: vt[e][jj] = (V[2jj][e], V[2jj+1][e]), once per key block for all bq queries ----
    // Rows 2jj and 2jj+1 are interleaved into 16 dwords per 16 value dims, then each 16×16 dword
    // block is transposed in registers (unpack 32/64, then 128-bit lane shuffles).
    for (int64_t jb = 0; pack && jb < nkfp / 2; jb += 16) {
      for (int64_t e0 = 0; e0 < evp; e0 += 16) {
        __m512i r[16], rl[16];
        for (int t = 0; t < 16; ++t) {
          const int64_t ja = 2 * (jb + t), jbb = ja + 1;
          __m256i va = ja < nkf && e0 < ev ? _mm256_loadu_si256((const __m256i*)(vbase + (j0 + ja) * a.v_row_stride + e0)) : _mm256_setzero_si256();
          __m256i vb = jbb < nkf && e0 < ev ? _mm256_loadu_si256((const __m256i*)(vbase + (j0 + jbb) * a.v_row_stride + e0)) : _mm256_setzero_si256();
          if (F16) split_pair(_mm512_cvtph_ps(va), _mm512_cvtph_ps(vb), r[t], rl[t]);
          else r[t] = _mm512_permutexvar_epi16(interleave, _mm512_inserti64x4(_mm512_castsi256_si512(va), vb, 1));
        }
        transpose16x16_epi32(r);
        for (int t = 0; t < 16; ++t) _mm512_storeu_si512(vt + (e0 + t) * (bkp / 2) + jb, r[t]);
        if (F16) {
          transpose16x16_epi32(rl);
          for (int t = 0; t < 16; ++t) _mm512_storeu_si512(vtl + (e0 + t) * (bkp / 2) + jb, rl[t]);
        }
      }
    }
    if (pack && L.cache) pack_tag.packed = blk + 1;
    SDPA_PROF(2);
    // One strip of 32 queries at a time: its scores (nk × 32 fp32, 16 KiB) and Pᵀ (8 KiB) stay in
    // L1 from the tile stores through the softmax to the Pᵀ tile loads. A whole bk × bq score tile
    // lives in L2, and the softmax's column walk over it was the slowest pass.
    const float* pt = nullptr; float* pot = nullptr; const float* pal = nullptr; bool flip = false;
    for (int64_t ig = 0; ig < nqp && ig < c.nq; ig += 32) {
      const int64_t nqs = min64(32, c.nq - ig);
      // Causal: every key of this block is beyond the strip's last query → the strip is unchanged.
      if (a.causal && j0 > c.q0 + ig + nqs - 1 + a.diagonal_offset) continue;
      // Causal: keys past the strip's last query's limit are masked for every query of the strip, so
      // the strip's products and softmax stop there (on the diagonal block about half of the keys).
      const int64_t nks = a.causal ? min64(nk, c.q0 + ig + nqs - 1 + a.diagonal_offset - j0 + 1) : nk;
      const int64_t nkps = ceil_to(nks, KB);
      // ---- St = K · Qᵀ (raw dot products) for the strip ----
      if (!F16 && e == 64) {
        // Head dim 64: the strip's whole Qᵀ is 4 tiles, held across the block, so each 16 keys cost
        // 2 K tile loads for 4 products (the 2×2 layout below reloads Qᵀ for every 32 keys).
        _tile_loadd(4, qb + ig, nqp * 4); _tile_loadd(5, qb + ig + 16, nqp * 4);
        _tile_loadd(6, qb + 16 * nqp + ig, nqp * 4); _tile_loadd(7, qb + 16 * nqp + ig + 16, nqp * 4);
        for (int64_t jr = 0; jr < nkps; jr += 16) {
          const uint16_t* ka; int64_t kstride;
          if (ktail && jr >= nkp - KB) { ka = ktail + (jr - (nkp - KB)) * e; kstride = e * 2; }
          else { ka = kbase + (j0 + jr) * a.k_row_stride; kstride = a.k_row_stride * 2; }
          _tile_zero(0); _tile_zero(1);
          _tile_loadd(2, ka, kstride); _tile_loadd(3, ka + 32, kstride);
          _tile_dpbf16ps(0, 2, 4); _tile_dpbf16ps(1, 2, 5);
          _tile_dpbf16ps(0, 3, 6); _tile_dpbf16ps(1, 3, 7);
          _tile_stored(0, st + jr * sst, sst * 4); _tile_stored(1, st + jr * sst + 16, sst * 4);
        }
      }
      for (int64_t jg = 0; (F16 || e != 64) && jg < nkps; jg += KB) {
        const uint16_t* ka; int64_t kstride;
        if (F16) { ka = kh + jg * e; kstride = e * 2; }
        else if (ktail && jg == nkp - KB) { ka = ktail; kstride = e * 2; }
        else { ka = kbase + (j0 + jg) * a.k_row_stride; kstride = a.k_row_stride * 2; }
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        for (int64_t d0 = 0; d0 < e; d0 += 32) {
          _tile_loadd(4, ka + d0, kstride);
          _tile_loadd(5, (const char*)(ka + d0) + 16 * kstride, kstride);
          _tile_loadd(6, qb + (d0 / 2) * nqp + ig, nqp * 4);
          _tile_loadd(7, qb + (d0 / 2) * nqp + ig + 16, nqp * 4);
          _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
          if (F16) {  // + k_hi·q_lo, then + k_lo·q_hi
            _tile_loadd(6, qbl + (d0 / 2) * nqp + ig, nqp * 4);
            _tile_loadd(7, qbl + (d0 / 2) * nqp + ig + 16, nqp * 4);
            _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
            const uint16_t* kal = kl + jg * e;
            _tile_loadd(4, kal + d0, kstride);
            _tile_loadd(5, (const char*)(kal + d0) + 16 * kstride, kstride);
            _tile_loadd(6, qb + (d0 / 2) * nqp + ig, nqp * 4);
            _tile_loadd(7, qb + (d0 / 2) * nqp + ig + 16, nqp * 4);
            _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
          }
        }
        float* s0 = st + jg * sst;
        _tile_stored(0, s0, sst * 4); _tile_stored(1, s0 + 16, sst * 4);
        _tile_stored(2, s0 + 16 * sst, sst * 4); _tile_stored(3, s0 + 16 * sst + 16, sst * 4);
      }
      SDPA_PROF(1);
      const bool need_causal = a.causal && (j0 + nks - 1 > c.q0 + ig + a.diagonal_offset);
      // The diagonal block of a causal strip stays on the fast path too (scale > 0: the raw -inf
      // then scales to -inf, not +inf); only masks, dropout or a negative scale take the general one.
      const bool fast = (!need_causal || !neg_scale) && a.mask_kind == MaskKind::None && a.dropout_p <= 0.0;
      uint32_t* pbs = pb;  // Pᵀ strip: pbs[jj][32] VNNI pairs
      if (fast && need_causal) {
        // query ig+i (absolute c.q0+ig+i) sees key j0+j iff i >= j0 + j - (c.q0 + ig) - off
        const int64_t base = j0 - (c.q0 + ig) - a.diagonal_offset;
        const __m512 iota = Ops::iota(), iota16 = _mm512_add_ps(iota, _mm512_set1_ps(16.0f));
        const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
        for (int64_t j = max64(0, -base + 1); j < nks; ++j) {  // rows before that are fully visible
          const __m512 thr = _mm512_set1_ps((float)(base + j));
          float* row = st + j * sst;
          _mm512_mask_storeu_ps(row, _mm512_cmp_ps_mask(iota, thr, _CMP_LT_OQ), ninf);
          _mm512_mask_storeu_ps(row + 16, _mm512_cmp_ps_mask(iota16, thr, _CMP_LT_OQ), ninf);
        }
      }
      bool lazy = false;  // alpha == 1 for the whole strip: PV accumulates into Oᵀ on tiles
      if (fast) {
        // Lazy path first when the strip's running max is finite (every block after its first).
        const __m512 ninf = _mm512_set1_ps(-__builtin_inff()), pinf = _mm512_set1_ps(__builtin_inff());
        const __m512 m0 = _mm512_loadu_ps(m + ig), m1 = _mm512_loadu_ps(m + ig + 16);
        const bool finite = (_mm512_cmp_ps_mask(m0, ninf, _CMP_GT_OQ) & _mm512_cmp_ps_mask(m0, pinf, _CMP_LT_OQ) &
                             _mm512_cmp_ps_mask(m1, ninf, _CMP_GT_OQ) & _mm512_cmp_ps_mask(m1, pinf, _CMP_LT_OQ)) == 0xffff;
        lazy = finite && lazy_softmax_pack<F16>(st, pbs, pbl, sst, nks, nkps, m + ig, l + ig, alpha + ig, a.scale, interleave);
      }
      if (fast && !lazy) {
        // Exact path: extreme of the raw products (min when scale < 0), then scale, exp, row sums and
        // the bf16 packing of Pᵀ in one pass.
        _mm512_storeu_ps(colmax, _mm512_set1_ps(neg_scale ? __builtin_inff() : -__builtin_inff()));
        _mm512_storeu_ps(colmax + 16, _mm512_set1_ps(neg_scale ? __builtin_inff() : -__builtin_inff()));
        colmax_block(st, nks, sst, colmax, neg_scale);
        fused_softmax_pack<F16>(st, pbs, pbl, sst, nks, nkps, colmax, m + ig, l + ig, alpha + ig, a.scale, interleave);
      } else if (!fast) {
        // ---- general path: scale, mask, online softmax (with dropout), then pack ----
        for (int64_t v = 0; v < 2; ++v) {
          __m512 mx = _mm512_set1_ps(-__builtin_inff());
          for (int64_t j = 0; j < nks; ++j) {
            __m512 sv = _mm512_mul_ps(_mm512_loadu_ps(st + j * sst + v * 16), vscale);
            _mm512_storeu_ps(st + j * sst + v * 16, sv);
            mx = _mm512_max_ps(mx, sv);
          }
          _mm512_storeu_ps(colmax + v * 16, mx);
        }
        if (need_causal || a.mask_kind != MaskKind::None)
          apply_mask(p, bh, c.q0 + ig, nqs, j0, nks, st, sst, 2, colmax, need_causal);
        SDPA_PROF(3);
        softmax_block(p, bh, c.q0 + ig, nqs, j0, nks, st, sst, 2, colmax, m + ig, l + ig, alpha + ig, hrow + ig);
        // Pᵀ in VNNI pairs (bf16), zero rows past the block's keys
        for (int64_t jj = 0; jj < nkps / 2; ++jj) {
          const int64_t ja = 2 * jj, jb = 2 * jj + 1;
          for (int64_t v = 0; v < 2; ++v) {
            __m512 ra = ja < nks ? _mm512_loadu_ps(st + ja * sst + v * 16) : _mm512_setzero_ps();
            __m512 rb = jb < nks ? _mm512_loadu_ps(st + jb * sst + v * 16) : _mm512_setzero_ps();
            if (F16) {
              __m512i hi, lo; split_pair(ra, rb, hi, lo);
              _mm512_storeu_si512(pbs + jj * sst + v * 16, hi); _mm512_storeu_si512(pbl + jj * sst + v * 16, lo);
            } else {
              __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(rb, ra);  // low 16 words from ra, high from rb
              _mm512_storeu_si512(pbs + jj * sst + v * 16, _mm512_permutexvar_epi16(interleave, ab));
            }
          }
        }
      }
      SDPA_PROF(4);
      // ---- Oᵀ[:, strip] = alpha · Oᵀ + Vᵀ · Pᵀ ----
      for (int64_t eg = 0; eg < evp; eg += 32) {
        float* og = ot + eg * nqp + ig;
        if (lazy) {  // no rescale: Oᵀ itself is the accumulator (no store / vector add-back)
          _tile_loadd(0, og, nqp * 4); _tile_loadd(1, og + 16, nqp * 4);
          _tile_loadd(2, og + 16 * nqp, nqp * 4); _tile_loadd(3, og + 16 * nqp + 16, nqp * 4);
        } else {
          _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        }
        for (int64_t jj0 = 0; jj0 < nkps / 2; jj0 += 16) {
          _tile_loadd(4, vt + eg * (bkp / 2) + jj0, bkp * 2);
          _tile_loadd(5, vt + (eg + 16) * (bkp / 2) + jj0, bkp * 2);
          _tile_loadd(6, pbs + jj0 * sst, sst * 4);
          _tile_loadd(7, pbs + jj0 * sst + 16, sst * 4);
          _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
          if (F16) {  // + v_hi·p_lo, then + v_lo·p_hi
            _tile_loadd(6, pbl + jj0 * sst, sst * 4);
            _tile_loadd(7, pbl + jj0 * sst + 16, sst * 4);
            _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
            _tile_loadd(4, vtl + eg * (bkp / 2) + jj0, bkp * 2);
            _tile_loadd(5, vtl + (eg + 16) * (bkp / 2) + jj0, bkp * 2);
            _tile_loadd(6, pbs + jj0 * sst, sst * 4);
            _tile_loadd(7, pbs + jj0 * sst + 16, sst * 4);
            _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
          }
        }
        if (lazy) {
          _tile_stored(0, og, nqp * 4); _tile_stored(1, og + 16, nqp * 4);
          _tile_stored(2, og + 16 * nqp, nqp * 4); _tile_stored(3, og + 16 * nqp + 16, nqp * 4);
          continue;
        }
        float* tb = tmp + (flip ? 1024 : 0);  // double buffer: combine the previous block now
        flip = !flip;
        _tile_stored(0, tb, 128); _tile_stored(1, tb + 16, 128);
        _tile_stored(2, tb + 16 * 32, 128); _tile_stored(3, tb + 16 * 32 + 16, 128);
        if (pt) rescale_add(pot, nqp, pt, pal);
        pt = tb; pot = og; pal = alpha + ig;
      }
      SDPA_PROF(5);
    }
    if (pt) { rescale_add(pot, nqp, pt, pal); pt = nullptr; }
  }
  SDPA_PROF(6);
  _tile_release();
  // out[i][x] = Oᵀ[x][i] / l[i], rounded to bf16 / fp16 (rows with no visible key → 0).
  for (int64_t i = 0; i < c.nq; ++i) {
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    uint16_t* dst = (uint16_t*)a.out + (bh * a.s + c.q0 + i) * ev;
    for (int64_t x = 0; x < ev; ++x) dst[x] = F16 ? f32_to_f16(ot[x * nqp + i] * inv) : f32_to_bf16(ot[x * nqp + i] * inv);
  }
}

}  // namespace isa_amx

// K rows feed A tiles directly in 32-element chunks; Oᵀ tiles cover 16 value dims each.
const Kernel kernel_amx_bf16 = {
    {"amx_bf16", "amx", kDtBf16, kNeedAmx, 32, 16, 4096, 0, 0,
     "bf16 on AMX tiles: K·Qᵀ and Vᵀ·Pᵀ as tile products with fp32 accumulation, softmax and masks in AVX-512."},
    isa_amx::amx_bf16_plan, isa_amx::amx_ws, isa_amx::run_amx<false>, no_shared_bytes};
// fp16 on bf16 tiles, exact to fp16 accuracy by the hi/lo split (3 tile products per product).
// min_keys: below ~1024 keys the three tile products do not pay for the per-job splitting: the
// AVX-512 fp32 kernel measured faster there (S=L=512: ~285 vs ~170 GFLOP/s, 2 threads).
const Kernel kernel_amx_fp16 = {
    {"amx_fp16_split", "amx", kDtF16, kNeedAmx, 32, 16, 4096, 1024, 0,
     "fp16 on AMX bf16 tiles, each value split into bf16 hi + lo halves (three tile products, fp16 accuracy kept)."},
    plan_prefill, isa_amx::amx_ws, isa_amx::run_amx<true>, no_shared_bytes};

}  // namespace detail
}  // namespace sdpa
