// AVX512-BF16 kernel for bf16 inputs on CPUs that have the bf16 dot-product instruction but no AMX
// (AMD Zen 4 and Zen 5, Intel Cooper Lake; Sapphire Rapids without the OS's AMX permission).
// VDPBF16PS multiplies 16 pairs of bf16 values and adds both products to 16 fp32 accumulators: 64
// flops per instruction where the fp32 kernel's FMA does 32, on inputs read as they are.
//
// The algorithm and its layout are kernel_impl.h's (scores transposed, St[key][query], online
// softmax per query strip, masks, dropout, causal block skipping and the output conversion are its
// shared pieces); only the two products and their operands differ:
//   St  = K · Qᵀ : each K row is read straight from the caller's bf16 memory as e/2 pairs, one pair
//                 broadcast per step; Qᵀ is packed once per job as Qp[e/2][queries] pairs.
//   O  += P · V  : the fp32 probabilities of the strip are rounded to bf16 key pairs (Pp[keys/2]
//                 [queries], as the AMX kernel does and as PyTorch's bf16 CPU kernel does), and V is
//                 packed once per block into key pairs, Vp[keys/2][value dims].
// Accumulation stays fp32 throughout. VDPBF16PS treats bf16 denormal inputs as zero and flushes
// denormal results (the instruction's fixed behaviour); scores and probabilities that small do not
// change an fp32 sum of terms up to 1.
#include <immintrin.h>
#include "internal.h"

namespace sdpa {
namespace detail {
namespace isa_avx512bf16 {

#include "ops_avx512.h"
// Register tiles (zmm): QK 6 keys × 4 query vectors (24 accumulators, 4 Qp vectors, 1 broadcast),
// PV 6 query rows × 4 value vectors (24 accumulators, 4 Vp vectors, 1 broadcast): 29 of 32.
constexpr int QK_MR = 6, QK_NV = 4, PV_MR = 6, PV_NV = 4;

#include "kernel_impl.h"

using V = __m512;

static inline uint32_t load_pair(const uint16_t* p) {
  uint32_t x;
  __builtin_memcpy(&x, p, 4);  // two adjacent bf16 values (rows may sit at any even byte offset)
  return x;
}
static inline V dp(V acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

// Scratch layout (bytes), 64-byte aligned regions.
struct BLayout {
  int64_t nqp, evp, bk2, sw;
  size_t qp, st, pp, vp, ob, m, l, alpha, hrow, krow, total;
};
static BLayout bf16_layout(const Plan& p) {
  const AttentionArgs& a = p.a;
  BLayout L{};
  L.nqp = ceil_to(p.bq, 16);
  L.evp = ceil_to(a.ev, 16);
  L.bk2 = (p.bk + 1) / 2;
  L.sw = (int64_t)QK_NV * 16;
  size_t off = 0;
  auto take = [&](size_t n) { size_t o = off; off += (n + 63) / 64 * 64; return o; };
  L.qp = take((size_t)(a.e / 2 * L.nqp) * 4);
  // St of one strip; also write_output's one-row staging (ev floats).
  L.st = take((size_t)max64(p.bk * L.sw, a.ev) * 4);
  L.pp = take((size_t)(L.bk2 * L.sw) * 4);
  L.vp = take((size_t)(L.bk2 * L.evp) * 4);
  L.ob = take((size_t)(p.bq * L.evp) * 4);
  L.m = take((size_t)L.nqp * 4);
  L.l = take((size_t)L.nqp * 4);
  L.alpha = take((size_t)L.nqp * 4);
  L.hrow = take((size_t)p.bq * 4);
  L.krow = take((size_t)p.bk * sizeof(void*));  // the block's K row pointers
  L.total = off;
  return L;
}
static size_t bf16_ws(const Plan& p) { return bf16_layout(p).total; }

// St[j0+r][v·16 ..] = scale · Σ_d K[j0+r][d] · Q[v·16 ..][d], and the strip's column max.
template <int MR, int NV>
static inline void qk_tile_bf16(const uint16_t* const* krow, const uint32_t* qp, int64_t nqp, int64_t e2,
                                float* st, int64_t sts, V scale, float* colmax) {
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t d = 0; d < e2; ++d) {
    __m512i qv[NV];
    for (int v = 0; v < NV; ++v) qv[v] = _mm512_loadu_si512(qp + d * nqp + v * 16);
    for (int r = 0; r < MR; ++r) {
      const __m512i kb = _mm512_set1_epi32((int)load_pair(krow[r] + 2 * d));
      for (int v = 0; v < NV; ++v) acc[r][v] = dp(acc[r][v], kb, qv[v]);
    }
  }
  for (int v = 0; v < NV; ++v) {
    V mx = _mm512_loadu_ps(colmax + v * 16);
    for (int r = 0; r < MR; ++r) {
      const V s = _mm512_mul_ps(acc[r][v], scale);
      _mm512_storeu_ps(st + r * sts + v * 16, s);
      mx = _mm512_max_ps(mx, s);
    }
    _mm512_storeu_ps(colmax + v * 16, mx);
  }
}

template <int MR>
static inline void qk_rows_bf16(int nv, const uint16_t* const* krow, const uint32_t* qp, int64_t nqp, int64_t e2,
                                float* st, int64_t sts, V scale, float* colmax) {
  switch (nv) {
    case 1: qk_tile_bf16<MR, 1>(krow, qp, nqp, e2, st, sts, scale, colmax); break;
    case 2: qk_tile_bf16<MR, 2>(krow, qp, nqp, e2, st, sts, scale, colmax); break;
    case 3: qk_tile_bf16<MR, 3>(krow, qp, nqp, e2, st, sts, scale, colmax); break;
    default: qk_tile_bf16<MR, 4>(krow, qp, nqp, e2, st, sts, scale, colmax); break;
  }
}

// The block's nk keys against the strip's nv query vectors (krow: one pointer per key).
static void qk_strip_bf16(int nv, int64_t nk, const uint16_t* const* krow, const uint32_t* qp, int64_t nqp, int64_t e2,
                          float* st, int64_t sw, V scale, float* colmax) {
  for (int v = 0; v < nv; ++v) _mm512_storeu_ps(colmax + v * 16, _mm512_set1_ps(-__builtin_inff()));
  for (int64_t j = 0; j < nk; j += QK_MR) {
    const int mr = (int)min64(QK_MR, nk - j);
    const uint16_t* const* kr = krow + j;
    float* s = st + j * sw;
    switch (mr) {
      case 1: qk_rows_bf16<1>(nv, kr, qp, nqp, e2, s, sw, scale, colmax); break;
      case 2: qk_rows_bf16<2>(nv, kr, qp, nqp, e2, s, sw, scale, colmax); break;
      case 3: qk_rows_bf16<3>(nv, kr, qp, nqp, e2, s, sw, scale, colmax); break;
      case 4: qk_rows_bf16<4>(nv, kr, qp, nqp, e2, s, sw, scale, colmax); break;
      case 5: qk_rows_bf16<5>(nv, kr, qp, nqp, e2, s, sw, scale, colmax); break;
      default: qk_rows_bf16<6>(nv, kr, qp, nqp, e2, s, sw, scale, colmax); break;
    }
  }
}

// O[i0+r][v·16 ..] = alpha[i0+r]·O + Σ_j2 Pp[j2][i0+r] · Vp[j2][v·16 ..] (both in key pairs).
template <int MR, int NV>
static inline void pv_tile_bf16(const uint32_t* pp, int64_t sw, const uint32_t* vp, int64_t evp, int64_t nk2,
                                float* ob, const float* alpha) {
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    const V al = _mm512_set1_ps(alpha[r]);
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_mul_ps(_mm512_loadu_ps(ob + r * evp + v * 16), al);
  }
  for (int64_t j = 0; j < nk2; ++j) {
    __m512i vv[NV];
    for (int v = 0; v < NV; ++v) vv[v] = _mm512_loadu_si512(vp + j * evp + v * 16);
    for (int r = 0; r < MR; ++r) {
      const __m512i pb = _mm512_set1_epi32((int)pp[j * sw + r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = dp(acc[r][v], pb, vv[v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(ob + r * evp + v * 16, acc[r][v]);
}

template <int MR>
static inline void pv_rows_bf16(int nv, const uint32_t* pp, int64_t sw, const uint32_t* vp, int64_t evp, int64_t nk2,
                                float* ob, const float* alpha) {
  switch (nv) {
    case 1: pv_tile_bf16<MR, 1>(pp, sw, vp, evp, nk2, ob, alpha); break;
    case 2: pv_tile_bf16<MR, 2>(pp, sw, vp, evp, nk2, ob, alpha); break;
    case 3: pv_tile_bf16<MR, 3>(pp, sw, vp, evp, nk2, ob, alpha); break;
    default: pv_tile_bf16<MR, 4>(pp, sw, vp, evp, nk2, ob, alpha); break;
  }
}

static void pv_strip_bf16(int64_t nq, int64_t nk2, const uint32_t* pp, int64_t sw, const uint32_t* vp, int64_t evp,
                          float* ob, const float* alpha) {
  const int64_t nve = evp / 16;
  for (int64_t i = 0; i < nq; i += PV_MR) {
    const int mr = (int)min64(PV_MR, nq - i);
    for (int64_t ev = 0; ev < nve; ev += PV_NV) {
      const int nv = (int)min64(PV_NV, nve - ev);
      const uint32_t* p = pp + i;
      const uint32_t* vpp = vp + ev * 16;
      float* o = ob + i * evp + ev * 16;
      switch (mr) {
        case 1: pv_rows_bf16<1>(nv, p, sw, vpp, evp, nk2, o, alpha + i); break;
        case 2: pv_rows_bf16<2>(nv, p, sw, vpp, evp, nk2, o, alpha + i); break;
        case 3: pv_rows_bf16<3>(nv, p, sw, vpp, evp, nk2, o, alpha + i); break;
        case 4: pv_rows_bf16<4>(nv, p, sw, vpp, evp, nk2, o, alpha + i); break;
        case 5: pv_rows_bf16<5>(nv, p, sw, vpp, evp, nk2, o, alpha + i); break;
        default: pv_rows_bf16<6>(nv, p, sw, vpp, evp, nk2, o, alpha + i); break;
      }
    }
  }
}

// Pp[j2][0 .. nv·16) = (P[2 j2], P[2 j2 + 1]) rounded to bf16 (nearest even), the odd block's last
// key paired with 0. vcvtne2ps2bf16 puts one row's 16 values after the other's; the word permute
// interleaves them into pairs.
static inline void pack_p(const float* st, int64_t sw, int64_t nk, int nv, uint32_t* pp) {
  const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t j = 0; j < nk; j += 2) {
    const float* a = st + j * sw;
    const bool has_b = j + 1 < nk;
    for (int v = 0; v < nv; ++v) {
      const V lo = _mm512_loadu_ps(a + v * 16);
      const V hi = has_b ? _mm512_loadu_ps(a + sw + v * 16) : _mm512_setzero_ps();
      const __m512i w = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // words 0..15 = lo, 16..31 = hi
      _mm512_storeu_si512(pp + (j / 2) * sw + v * 16, _mm512_permutexvar_epi16(inter, w));
    }
  }
}

// Vp[j2][x] = (V[j0 + 2 j2][x], V[j0 + 2 j2 + 1][x]) for x < ev, zero past ev and past the block.
static inline void pack_v(const AttentionArgs& a, int64_t kvi, int64_t j0, int64_t nk, int64_t evp, uint32_t* vp) {
  const uint16_t* base = (const uint16_t*)a.v + a.kv_base_v[kvi];
  for (int64_t j = 0; j < nk; j += 2) {
    const uint16_t* r0 = base + (j0 + j) * a.v_row_stride;
    const uint16_t* r1 = j + 1 < nk ? r0 + a.v_row_stride : nullptr;
    uint32_t* dst = vp + (j / 2) * evp;
    for (int64_t x = 0; x < evp; x += 16) {
      const int64_t n = min64(16, a.ev - x);
      const __mmask16 m = n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : (__mmask16)0;
      const __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0 + x));
      const __m512i hi = r1 ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r1 + x)), 16) : _mm512_setzero_si512();
      _mm512_storeu_si512(dst + x, _mm512_or_si512(lo, hi));
    }
  }
}

static void run_block_bf16(const Plan& p, int64_t bh, int64_t qblk, void* wsv) {
  const AttentionArgs& a = p.a;
  const BLayout L = bf16_layout(p);
  uint8_t* ws = (uint8_t*)wsv;
  uint32_t* qp = (uint32_t*)(ws + L.qp);
  float* st = (float*)(ws + L.st);
  uint32_t* pp = (uint32_t*)(ws + L.pp);
  uint32_t* vp = (uint32_t*)(ws + L.vp);
  float *ob = (float*)(ws + L.ob), *m = (float*)(ws + L.m), *l = (float*)(ws + L.l), *alpha = (float*)(ws + L.alpha);
  uint32_t* hrow = (uint32_t*)(ws + L.hrow);
  const JobCtx c = job_ctx(p, bh, qblk);
  const int64_t nqp = L.nqp, evp = L.evp, e2 = a.e / 2, sw = L.sw;

  // Qp[d][i]: pair d of query i (q0 + i), zero for padded queries (they score 0, harmless).
  std::memset(qp, 0, (size_t)(e2 * nqp) * 4);
  for (int64_t i = 0; i < c.nq; ++i) {
    const uint16_t* row = (const uint16_t*)a.q + a.q_base[bh] + (c.q0 + i) * a.q_row_stride;
    for (int64_t d = 0; d < e2; ++d) qp[d * nqp + i] = load_pair(row + 2 * d);
  }
  std::memset(ob, 0, (size_t)(p.bq * evp) * 4);
  for (int64_t i = 0; i < nqp; ++i) { m[i] = -__builtin_inff(); l[i] = 0.0f; }
  init_dropout_rows(p, bh, c.q0, c.nq, hrow);

  const V vscale = _mm512_set1_ps(a.scale);
  alignas(64) float colmax[QK_NV * 16];
  const uint16_t* kbase = (const uint16_t*)a.k + a.kv_base_k[c.kvi];
  const uint16_t** krow = (const uint16_t**)(ws + L.krow);
  for (int64_t j0 = 0; j0 < c.kv_end; j0 += p.bk) {
    const int64_t nk = min64(p.bk, c.kv_end - j0);
    for (int64_t j = 0; j < nk; ++j) krow[j] = kbase + (j0 + j) * a.k_row_stride;
    pack_v(a, c.kvi, j0, nk, evp, vp);
    const int64_t nvq_used = ceil_to(c.nq, 16) / 16;
    for (int64_t iv = 0; iv < nvq_used; iv += QK_NV) {
      const int nv = (int)min64(QK_NV, nvq_used - iv);
      const int64_t qs = iv * 16, nqs = min64((int64_t)nv * 16, c.nq - qs);
      // Causal: keys from j0 on are all beyond the strip's last query → nothing to add.
      if (a.causal && j0 > c.q0 + qs + nqs - 1 + a.diagonal_offset) continue;
      qk_strip_bf16(nv, nk, krow, qp + qs, nqp, e2, st, sw, vscale, colmax);
      const bool need_causal = a.causal && (j0 + nk - 1 > c.q0 + qs + a.diagonal_offset);
      if (need_causal || a.mask_kind != MaskKind::None) apply_mask(p, bh, c.q0 + qs, nqs, j0, nk, st, sw, nv, colmax, need_causal);
      softmax_block(p, bh, c.q0 + qs, nqs, j0, nk, st, sw, nv, colmax, m + qs, l + qs, alpha + qs, hrow + qs);
      pack_p(st, sw, nk, nv, pp);
      pv_strip_bf16(nqs, (nk + 1) / 2, pp, sw, vp, evp, ob + qs * evp, alpha + qs);
    }
  }
  write_output(p, bh, c.q0, c.nq, ob, evp, l, st);
}

static void run_bf16(const Plan& p, int64_t job, void* ws) {
  int64_t bh, qblk;
  prefill_job(p, job, &bh, &qblk);
  run_block_bf16(p, bh, qblk, ws);
}

}  // namespace isa_avx512bf16

// Head dim e in pairs (the products take two bf16 values at a time); ev is padded to 16.
const Kernel kernel_avx512_bf16 = {
    {"avx512_bf16", "avx512", kDtBf16, kNeedAvx512 | kFeatAvx512Bf16, 2, 1, kMaxHeadDim, 0, 0,
     "bf16 with AVX512-BF16 dot products (vdpbf16ps, 64 flops an instruction): K and Q read as bf16 pairs, "
     "probabilities rounded to bf16 for P·V, fp32 accumulation; for CPUs without AMX."},
    plan_prefill, isa_avx512bf16::bf16_ws, isa_avx512bf16::run_bf16, no_shared_bytes};

}  // namespace detail
}  // namespace sdpa
