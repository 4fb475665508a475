// The flash-attention algorithm, written once over a small vector-ops type `Ops` and compiled in
// each ISA translation unit (kernel_scalar.cc, kernel_avx2.cc, kernel_avx512.cc, kernel_amx.cc)
// inside that TU's own namespace, so differently-compiled copies never get merged by the linker.
//
// Layout choice: scores are kept transposed, St[key][query]. QKᵀ then broadcasts one key element
// against a vector of queries (Qt is packed once per job, so K needs no transpose and fp32 K is read
// straight from the caller's memory), and the softmax max/sum over keys are vertical vector ops
// with no horizontal reductions. PV broadcasts St[j][i] against rows of V.
//
// Requires before inclusion: namespace opened, `struct Ops` with
//   W, V, load, store, set1, zero, fmadd, mul, add, sub, max, exp, causal_mask,
//   cvt_in(const uint16_t*, float*, n, bool bf16), cvt_out(const float*, uint16_t*, n, bool bf16, V scale)
// and constants QK_MR/QK_NV/PV_MR/PV_NV (register tile: rows × vectors).
// (No include guard on purpose: each kernel TU includes this exactly once, in its own namespace.)

// SDPA_PROF phase timers: see internal.h.

static inline int64_t ceil_to(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Scratch layout (floats), all offsets multiples of 16 floats so every region is 64-byte aligned.
struct Layout {
  int64_t nqp, evp, qt, st, ob, m, l, alpha, kc, vc, hrow, total;
};
static inline Layout make_layout(const Plan& p) {
  const AttentionArgs& a = p.a;
  Layout L{};
  L.nqp = ceil_to(p.bq, Ops::W);
  L.evp = ceil_to(a.ev, Ops::W);
  int64_t off = 0;
  auto take = [&](int64_t n) { int64_t o = off; off += ceil_to(n, 16); return o; };
  L.qt = take(a.e * L.nqp);          // Qt[d][i]
  // St[j][i] of one query strip: scores, then probabilities. Also the one-row staging buffer for
  // Q rows and output conversion, hence at least e + ev floats.
  L.st = take(max64(p.bk * (int64_t)QK_NV * Ops::W, a.e + a.ev));
  L.ob = take(p.bq * L.evp);         // O accumulator [i][ev]
  L.m = take(L.nqp); L.l = take(L.nqp); L.alpha = take(L.nqp);
  // fp16/bf16 K (and V, or fp32 V whose rows do not fill whole vectors) are converted per block.
  L.kc = take(a.dtype == DType::F32 ? 0 : p.bk * a.e);
  bool v_direct = a.dtype == DType::F32 && a.ev % Ops::W == 0;
  L.vc = take(v_direct ? 0 : p.bk * L.evp);
  L.hrow = take(p.bq);               // dropout: per-row hash prefix (stored as uint32 bits)
  L.total = off;
  return L;
}

static size_t workspace_bytes_impl(const Plan& p) { return (size_t)make_layout(p).total * 4; }

// Reads n elements of row `src` (any dtype) as fp32.
static inline void load_row(DType dt, const void* base, int64_t off, float* dst, int64_t n) {
  if (dt == DType::F32) std::memcpy(dst, (const float*)base + off, (size_t)n * 4);
  else Ops::cvt_in((const uint16_t*)base + off, dst, n, dt == DType::BF16);
}

// ---- register-tiled microkernels -------------------------------------------------------------

// St[j0+r][i0 + v*W ..] = scale * sum_d K[j0+r][d] * Qt[d][i0 + v*W ..] (St rows sts floats apart).
// KS > 0: K rows are KS floats apart (ks == KS), a compile-time stride, so with Ops::pin every load
// of the inner loop is a constant offset from one pointer (see qk_strip).
template <int MR, int NV, int KS>
static inline void qk_tile(const float* kp, int64_t ks, const float* qt, int64_t nqp, int64_t e,
                           float* st, int64_t sts, typename Ops::V scale, float* colmax) {
  using V = typename Ops::V;
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = Ops::zero();
  if (KS > 0) {
    for (int64_t d = 0; d < e; ++d, ++kp, qt += nqp) {
      const float* kd = kp;
      const float* qd = qt;
      Ops::pin(kd);
      Ops::pin(qd);
      V qv[NV];
      for (int v = 0; v < NV; ++v) qv[v] = Ops::load(qd + v * Ops::W);
      for (int r = 0; r < MR; ++r) {
        V kb = Ops::set1(kd[r * KS]);
        for (int v = 0; v < NV; ++v) acc[r][v] = Ops::fmadd(kb, qv[v], acc[r][v]);
      }
    }
  } else {
    const float* krow[MR];
    for (int r = 0; r < MR; ++r) krow[r] = kp + r * ks;
    for (int64_t d = 0; d < e; ++d) {
      V qv[NV];
      for (int v = 0; v < NV; ++v) qv[v] = Ops::load(qt + d * nqp + v * Ops::W);
      for (int r = 0; r < MR; ++r) {
        V kb = Ops::set1(krow[r][d]);
        for (int v = 0; v < NV; ++v) acc[r][v] = Ops::fmadd(kb, qv[v], acc[r][v]);
      }
    }
  }
  for (int v = 0; v < NV; ++v) {
    V mx = Ops::load(colmax + v * Ops::W);
    for (int r = 0; r < MR; ++r) {
      V s = Ops::mul(acc[r][v], scale);
      Ops::store(st + r * sts + v * Ops::W, s);
      mx = Ops::max(mx, s);
    }
    Ops::store(colmax + v * Ops::W, mx);
  }
}

// O[i0+r][e0 + v*W ..] = alpha[i0+r] * O[..] + sum_j Pt[j][i0+r] * V[j][e0 + v*W ..]
template <int MR, int NV>
static inline void pv_tile(const float* pt, int64_t nqp, const float* vp, int64_t vs, int64_t nk,
                           float* ob, int64_t evp, const float* alpha) {
  using V = typename Ops::V;
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    V a = Ops::set1(alpha[r]);
    for (int v = 0; v < NV; ++v) acc[r][v] = Ops::mul(Ops::load(ob + r * evp + v * Ops::W), a);
  }
  // One pointer per operand, bumped per key, every load a constant offset from it (Ops::pin).
  for (int64_t j = 0; j < nk; ++j, pt += nqp, vp += vs) {
    const float* pj = pt;
    const float* vj = vp;
    Ops::pin(pj);
    Ops::pin(vj);
    V vv[NV];
    for (int v = 0; v < NV; ++v) vv[v] = Ops::load(vj + v * Ops::W);
    for (int r = 0; r < MR; ++r) {
      V pb = Ops::set1(pj[r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = Ops::fmadd(pb, vv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) Ops::store(ob + r * evp + v * Ops::W, acc[r][v]);
}

// Runtime (rows, vectors) → template instance. Tails use smaller tiles of the same code.
template <int MR, int KS>
static inline void qk_rows(int nv, const float* kp, int64_t ks, const float* qt, int64_t nqp, int64_t e,
                           float* st, int64_t sts, typename Ops::V scale, float* colmax) {
  switch (nv) {
    case 1: qk_tile<MR, 1, KS>(kp, ks, qt, nqp, e, st, sts, scale, colmax); break;
    case 2: if (QK_NV >= 2) qk_tile<MR, (QK_NV >= 2 ? 2 : 1), KS>(kp, ks, qt, nqp, e, st, sts, scale, colmax); break;
    case 3: if (QK_NV >= 3) qk_tile<MR, (QK_NV >= 3 ? 3 : 1), KS>(kp, ks, qt, nqp, e, st, sts, scale, colmax); break;
    default: qk_tile<MR, (QK_NV >= 4 ? 4 : QK_NV), KS>(kp, ks, qt, nqp, e, st, sts, scale, colmax); break;
  }
}
template <int KS>
static inline void qk_dispatch(int mr, int nv, const float* kp, int64_t ks, const float* qt, int64_t nqp,
                               int64_t e, float* st, int64_t sts, typename Ops::V scale, float* colmax) {
  switch (mr) {
#define SDPA_QK_CASE(R) case R: if (QK_MR >= R) qk_rows<(QK_MR >= R ? R : 1), KS>(nv, kp, ks, qt, nqp, e, st, sts, scale, colmax); break;
    SDPA_QK_CASE(1) SDPA_QK_CASE(2) SDPA_QK_CASE(3) SDPA_QK_CASE(4) SDPA_QK_CASE(5) SDPA_QK_CASE(6)
#undef SDPA_QK_CASE
  }
}
template <int MR>
static inline void pv_rows(int nv, const float* pt, int64_t nqp, const float* vp, int64_t vs, int64_t nk,
                           float* ob, int64_t evp, const float* alpha) {
  switch (nv) {
    case 1: pv_tile<MR, 1>(pt, nqp, vp, vs, nk, ob, evp, alpha); break;
    case 2: if (PV_NV >= 2) pv_tile<MR, (PV_NV >= 2 ? 2 : 1)>(pt, nqp, vp, vs, nk, ob, evp, alpha); break;
    case 3: if (PV_NV >= 3) pv_tile<MR, (PV_NV >= 3 ? 3 : 1)>(pt, nqp, vp, vs, nk, ob, evp, alpha); break;
    default: pv_tile<MR, (PV_NV >= 4 ? 4 : PV_NV)>(pt, nqp, vp, vs, nk, ob, evp, alpha); break;
  }
}
static inline void pv_dispatch(int mr, int nv, const float* pt, int64_t nqp, const float* vp, int64_t vs,
                               int64_t nk, float* ob, int64_t evp, const float* alpha) {
  switch (mr) {
#define SDPA_PV_CASE(R) case R: if (PV_MR >= R) pv_rows<(PV_MR >= R ? R : 1)>(nv, pt, nqp, vp, vs, nk, ob, evp, alpha); break;
    SDPA_PV_CASE(1) SDPA_PV_CASE(2) SDPA_PV_CASE(3) SDPA_PV_CASE(4) SDPA_PV_CASE(5) SDPA_PV_CASE(6)
#undef SDPA_PV_CASE
  }
}

// One strip's matrix phases. SDPA_PHASE_FN is `static inline` unless the ISA's TU defines it
// first: the WebAssembly build makes them functions of their own (kernel_wasm.cc says why).
#ifndef SDPA_PHASE_FN
#define SDPA_PHASE_FN static inline
#endif

// St[j][0 .. nv·W) for the nk keys of a block (QK_MR keys per tile) and the strip's column max.
template <int KS>
static inline void qk_keys(int nv, int64_t nk, const float* kp, int64_t ks, const float* qt, int64_t nqp, int64_t e,
                           float* st, int64_t sw, typename Ops::V scale, float* colmax) {
  for (int64_t j = 0; j < nk; j += QK_MR) {
    const int mr = (int)min64(QK_MR, nk - j);
    qk_dispatch<KS>(mr, nv, kp + j * ks, ks, qt, nqp, e, st + j * sw, sw, scale, colmax);
  }
}
SDPA_PHASE_FN void qk_strip(int nv, int64_t nk, const float* kp, int64_t ks, const float* qt, int64_t nqp, int64_t e,
                            float* st, int64_t sw, typename Ops::V scale, float* colmax) {
  for (int v = 0; v < nv; ++v) Ops::store(colmax + v * Ops::W, Ops::set1(-__builtin_inff()));
  // Ops::kConstKStride (the WebAssembly build): the usual K row strides as compile-time constants,
  // so the K loads of a tile are constant offsets from one pinned pointer (an x86 address each,
  // where a runtime stride costs an address computation per row and key; native code has
  // base + index·scale addressing for that and keeps the one runtime-stride copy).
  if (Ops::kConstKStride && ks == 64) return qk_keys<64>(nv, nk, kp, ks, qt, nqp, e, st, sw, scale, colmax);
  if (Ops::kConstKStride && ks == 128) return qk_keys<128>(nv, nk, kp, ks, qt, nqp, e, st, sw, scale, colmax);
  qk_keys<0>(nv, nk, kp, ks, qt, nqp, e, st, sw, scale, colmax);
}

// O[0 .. nq) = alpha·O + P V over the block's nk keys (P = St, sw floats a key apart).
SDPA_PHASE_FN void pv_strip(int64_t nq, int64_t nk, const float* st, int64_t sw, const float* vp, int64_t vs,
                            float* ob, int64_t evp, const float* alpha) {
  const int64_t nve = evp / Ops::W;
  for (int64_t i = 0; i < nq; i += PV_MR) {
    const int mr = (int)min64(PV_MR, nq - i);
    for (int64_t ev = 0; ev < nve; ev += PV_NV) {
      const int nvv = (int)min64(PV_NV, nve - ev);
      pv_dispatch(mr, nvv, st + i, sw, vp + ev * Ops::W, vs, nk, ob + i * evp + ev * Ops::W, evp, alpha + i);
    }
  }
}

// ---- pieces shared with the AMX kernel ----------------------------------------------------------

static inline float load_mask(const AttentionArgs& a, int64_t idx) {
  switch (a.mask_dtype) {
    case MaskDType::U8: return ((const uint8_t*)a.mask)[idx] ? 0.0f : -__builtin_inff();
    case MaskDType::F32: return ((const float*)a.mask)[idx];
    case MaskDType::F16: return f16_to_f32(((const uint16_t*)a.mask)[idx]);
    default: return bf16_to_f32(((const uint16_t*)a.mask)[idx]);
  }
}

// Applies the mask and the causal limit to St (keys j0.., queries q0..), recomputing the column
// max. Only called for blocks that need it: causal blocks off the fully-visible region, or masks.
// nv: vectors of queries to process (St rows are nqp floats apart; nv·W <= nqp).
static void apply_mask(const Plan& p, int64_t bh, int64_t q0, int64_t nq, int64_t j0, int64_t nk,
                       float* st, int64_t nqp, int64_t nv, float* colmax, bool need_causal) {
  using V = typename Ops::V;
  const AttentionArgs& a = p.a;
  if (a.mask_kind != MaskKind::None) {
    const int64_t mb = a.mask_base[bh];
    const bool is_bool = a.mask_kind == MaskKind::Bool;
    for (int64_t j = 0; j < nk; ++j) {
      float* row = st + j * nqp;
      int64_t idx = mb + (j0 + j) * a.mask_stride_l + q0 * a.mask_stride_s;
      for (int64_t i = 0; i < nq; ++i, idx += a.mask_stride_s) {
        float mv = load_mask(a, idx);
        // bool: 0 → -inf, 1 → unchanged; float: added (an -inf entry masks too).
        row[i] = is_bool ? (mv == 0.0f ? row[i] : mv) : row[i] + mv;
      }
    }
  }
  const float ninf = -__builtin_inff();
  V mx[256];  // nv <= nqp / W <= 256 (bq <= 256)
  for (int64_t v = 0; v < nv; ++v) mx[v] = Ops::set1(ninf);
  V iota = Ops::iota();
  for (int64_t j = 0; j < nk; ++j) {
    float* row = st + j * nqp;
    // query i (absolute q0+i) sees key j0+j iff j0+j <= q0+i+off ⇔ i >= j0+j-q0-off
    V thr = Ops::set1((float)(j0 + j - q0 - a.diagonal_offset));
    for (int64_t v = 0; v < nv; ++v) {
      V s = Ops::load(row + v * Ops::W);
      if (need_causal) {
        V idx = Ops::add(iota, Ops::set1((float)(v * Ops::W)));
        s = Ops::causal_mask(s, idx, thr);
        Ops::store(row + v * Ops::W, s);
      }
      mx[v] = Ops::max(mx[v], s);
    }
  }
  for (int64_t v = 0; v < nv; ++v) Ops::store(colmax + v * Ops::W, mx[v]);
}

// Online softmax over one key block in St: updates m, l, writes alpha (the O rescale) and turns
// St into (dropped, rescaled) probabilities. The normaliser l sums the un-dropped probabilities.
SDPA_PHASE_FN void softmax_block(const Plan& p, int64_t bh, int64_t q0, int64_t nq, int64_t j0, int64_t nk,
                          float* st, int64_t nqp, int64_t nv, const float* colmax, float* m, float* l, float* alpha,
                          const uint32_t* hrow) {
  using V = typename Ops::V;
  for (int64_t v = 0; v < nv; ++v) {
    V mold = Ops::load(m + v * Ops::W);
    V mnew = Ops::max(mold, Ops::load(colmax + v * Ops::W));
    // A column with every key masked so far has max -inf: subtract 0 instead so exp gives 0, not NaN.
    V muse = Ops::ninf_to_zero(mnew);
    V al = Ops::exp(Ops::sub(mold, muse));
    V sum = Ops::zero();
    float* col = st + v * Ops::W;
    int64_t j = 0;
    for (; j + 1 < nk; j += 2) {  // two chains so exp latency overlaps
      V p0 = Ops::exp(Ops::sub(Ops::load(col + j * nqp), muse));
      V p1 = Ops::exp(Ops::sub(Ops::load(col + (j + 1) * nqp), muse));
      Ops::store(col + j * nqp, p0);
      Ops::store(col + (j + 1) * nqp, p1);
      sum = Ops::add(sum, Ops::add(p0, p1));
    }
    for (; j < nk; ++j) {
      V p0 = Ops::exp(Ops::sub(Ops::load(col + j * nqp), muse));
      Ops::store(col + j * nqp, p0);
      sum = Ops::add(sum, p0);
    }
    Ops::store(l + v * Ops::W, Ops::fmadd(Ops::load(l + v * Ops::W), al, sum));
    Ops::store(m + v * Ops::W, mnew);
    Ops::store(alpha + v * Ops::W, al);
  }
  const AttentionArgs& a = p.a;
  if (a.dropout_p > 0.0) apply_dropout(st, nqp, nk, nq, j0, hrow, a.dropout_p);
  (void)bh; (void)q0;
}

// Job setup shared by both kernels: Qt is not used by AMX, the rest is.
struct JobCtx {
  int64_t q0, nq, kvi, kv_end;
  bool need_causal_any;
};
static inline JobCtx job_ctx(const Plan& p, int64_t bh, int64_t qblk) {
  const AttentionArgs& a = p.a;
  JobCtx c;
  c.q0 = qblk * p.bq;
  c.nq = min64(p.bq, a.s - c.q0);
  const int64_t b = bh / a.hq, h = bh % a.hq;
  c.kvi = b * a.hkv + h / p.group;
  // Causal: keys beyond the last row's limit are never visible; those blocks are skipped entirely.
  c.kv_end = a.causal ? max64(0, min64(a.l, c.q0 + c.nq + a.diagonal_offset)) : a.l;
  c.need_causal_any = a.causal;
  return c;
}

static inline void init_dropout_rows(const Plan& p, int64_t bh, int64_t q0, int64_t nq, uint32_t* hrow) {
  if (p.a.dropout_p <= 0.0) return;
  const uint32_t hb = mix32(mix32(p.a.seed) ^ (uint32_t)bh);
  for (int64_t i = 0; i < nq; ++i) hrow[i] = mix32(hb ^ (uint32_t)(q0 + i));
}

// out[bh, q0+i, :] = O[i] / l[i]; rows with no visible key (l == 0) get zeros.
static void write_output(const Plan& p, int64_t bh, int64_t q0, int64_t nq, const float* ob, int64_t ldo,
                         const float* l, float* tmp) {
  const AttentionArgs& a = p.a;
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    const float* src = ob + i * ldo;
    const int64_t off = (bh * a.s + q0 + i) * a.ev;
    if (a.dtype == DType::F32) {
      float* dst = (float*)a.out + off;
      for (int64_t e = 0; e < a.ev; ++e) dst[e] = src[e] * inv;
    } else {
      Ops::cvt_out(src, (uint16_t*)a.out + off, a.ev, a.dtype == DType::BF16, inv, tmp);
    }
  }
}

// ---- the vector (non-AMX) kernel --------------------------------------------------------------

static void run_block(const Plan& p, int64_t bh, int64_t qblk, void* wsv) {
  using V = typename Ops::V;
  const AttentionArgs& a = p.a;
  const Layout L = make_layout(p);
  float* ws = (float*)wsv;
  float *qt = ws + L.qt, *st = ws + L.st, *ob = ws + L.ob, *m = ws + L.m, *l = ws + L.l, *alpha = ws + L.alpha;
  uint32_t* hrow = (uint32_t*)(ws + L.hrow);
  const JobCtx c = job_ctx(p, bh, qblk);
  SDPA_PROF_START();
  const int64_t nqp = L.nqp, evp = L.evp, e = a.e;

  // Qt[d][i]: queries of this job, transposed, padded columns zero (they then score 0, harmless).
  std::memset(qt, 0, sizeof(float) * (size_t)(e * nqp));
  {
    float* row = st;  // St is free now: use it as a one-row staging buffer
    for (int64_t i = 0; i < c.nq; ++i) {
      load_row(a.dtype, a.q, a.q_base[bh] + (c.q0 + i) * a.q_row_stride, row, e);
      for (int64_t d = 0; d < e; ++d) qt[d * nqp + i] = row[d];
    }
  }
  std::memset(ob, 0, sizeof(float) * (size_t)(p.bq * evp));
  for (int64_t i = 0; i < nqp; ++i) { m[i] = -__builtin_inff(); l[i] = 0.0f; }
  init_dropout_rows(p, bh, c.q0, c.nq, hrow);

  const V vscale = Ops::set1(a.scale);
  const int64_t sw = (int64_t)QK_NV * Ops::W;  // St strip row stride (floats)
  alignas(64) float colmax[QK_NV * Ops::W];
  for (int64_t j0 = 0; j0 < c.kv_end; j0 += p.bk) {
    const int64_t nk = min64(p.bk, c.kv_end - j0);
    // K rows: fp32 straight from the caller; fp16/bf16 converted once per block.
    const float* kp; int64_t ks;
    if (a.dtype == DType::F32) {
      kp = (const float*)a.k + a.kv_base_k[c.kvi] + j0 * a.k_row_stride; ks = a.k_row_stride;
    } else {
      float* kc = ws + L.kc;
      for (int64_t j = 0; j < nk; ++j) load_row(a.dtype, a.k, a.kv_base_k[c.kvi] + (j0 + j) * a.k_row_stride, kc + j * e, e);
      kp = kc; ks = e;
    }
    const float* vp; int64_t vs;
    if (a.dtype == DType::F32 && a.ev % Ops::W == 0) {  // rows already whole vectors of fp32
      vp = (const float*)a.v + a.kv_base_v[c.kvi] + j0 * a.v_row_stride; vs = a.v_row_stride;
    } else {
      float* vc = ws + L.vc;
      for (int64_t j = 0; j < nk; ++j) {
        load_row(a.dtype, a.v, a.kv_base_v[c.kvi] + (j0 + j) * a.v_row_stride, vc + j * evp, a.ev);
        for (int64_t x = a.ev; x < evp; ++x) vc[j * evp + x] = 0.0f;  // pad: 0 * p stays 0
      }
      vp = vc; vs = evp;
    }

    SDPA_PROF(0);
    // One strip of QK_NV·W queries at a time: its scores (nk × sw floats, 32 KiB at 128 keys × 64
    // queries) are written by QK, turned into probabilities and read by PV while still in L1; the
    // whole nk × bq tile would live in L2 and be streamed three times.
    const int64_t nvq_used = ceil_to(c.nq, Ops::W) / Ops::W;
    for (int64_t iv = 0; iv < nvq_used; iv += QK_NV) {
      const int nv = (int)min64(QK_NV, nvq_used - iv);
      const int64_t qs = iv * Ops::W, nqs = min64((int64_t)nv * Ops::W, c.nq - qs);
      // Causal: keys from j0 on are all beyond the strip's last query → nothing to add.
      if (a.causal && j0 > c.q0 + qs + nqs - 1 + a.diagonal_offset) continue;
      qk_strip(nv, nk, kp, ks, qt + qs, nqp, e, st, sw, vscale, colmax);
      SDPA_PROF(1);
      // The causal limit bites iff the block's last key is beyond the strip's first query's limit.
      const bool need_causal = a.causal && (j0 + nk - 1 > c.q0 + qs + a.diagonal_offset);
      if (need_causal || a.mask_kind != MaskKind::None)
        apply_mask(p, bh, c.q0 + qs, nqs, j0, nk, st, sw, nv, colmax, need_causal);
      SDPA_PROF(2);
      softmax_block(p, bh, c.q0 + qs, nqs, j0, nk, st, sw, nv, colmax, m + qs, l + qs, alpha + qs, hrow + qs);
      SDPA_PROF(3);
      // O = alpha·O + P V, V rows streamed straight from the caller (fp32) or the converted block.
      pv_strip(nqs, nk, st, sw, vp, vs, ob + qs * evp, evp, alpha + qs);
      SDPA_PROF(5);
    }
  }
  SDPA_PROF(4);
  write_output(p, bh, c.q0, c.nq, ob, evp, l, st);
}

static void run_impl(const Plan& p, int64_t job, void* ws) {
  int64_t bh, qblk;
  prefill_job(p, job, &bh, &qblk);
  run_block(p, bh, qblk, ws);
}
