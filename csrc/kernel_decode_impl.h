// The decode variant of flash attention (few queries per head, long key ranges), written once over
// a small vector-ops type `DOps` and compiled in each decode translation unit
// (kernel_decode_avx512.cc, kernel_decode_avx2.cc, kernel_decode_scalar.cc) inside its own
// namespace, like kernel_impl.h.
//
// Why a separate algorithm: with S <= 16 queries a call is bound by reading K and V once (every
// K/V byte meets at most S·group query rows), so the prefill layout (Qt packed per query block,
// one job per query head) reads each kv head's K/V once per query head and leaves cores idle when
// there are few heads. Here
//   - a job is (kv head, key chunk): the group·S query rows of that kv head are processed together,
//     so each K/V row is read from memory once per group, not once per query head;
//   - the keys of a head are split into chunks (split-KV) when there are too few kv heads to keep
//     every thread busy; each chunk leaves (m, l, O) partials that the last chunk to finish merges
//     with a log-sum-exp rescale;
//   - fp16/bf16 K/V are widened in registers as they are loaded (no packing pass, no copy);
//   - QKᵀ is register-blocked over RT rows × KT keys (RT·KT = W accumulators), and the W partial
//     dot products are reduced in one transpose-add tree (DOps::hsum_w) into one vector of W
//     scores: no horizontal reduction per key;
//   - PV is blocked over PR rows × DT vectors of the value dim, so a V element is loaded and
//     converted once per row tile;
//   - K rows kPf keys ahead are prefetched into L2 a few rows per QK tile, and V rows kPf keys
//     ahead one row per key of the first PV tile: with only the hardware prefetchers one Zen 4
//     core read 6.6 GB/s of K/V from DRAM, with these 11-12 (docs/performance-cpu.md, "Decode").
//     With DOps::kVPrefetchInPv each stream is prefetched by the phase that reads it: issuing the
//     V rows' prefetches during QK as well put a whole block's K and V lines in one burst, and one
//     Zen 4 core then read fp32 K/V at 13.1-14.8 GB/s against 15.6-16.4 split (AVX-512; L = 8192,
//     32768; 2 threads +5-10%, fp16 +3-15%, bf16 within the noise). The AVX2 kernel keeps both in
//     QK: split, its fp16 decode lost 20% on the same machine (its QK is slower, so the burst was
//     already spread, and the 16-register PV tiles pay for the prefetch addresses; session 8 had
//     found no gain on Zen 3 either; docs/performance-cpu.md, session 9).
// Scores stay in natural units (q pre-scaled by `scale`, exp(s - m) with m the exact running max in
// fp32): folding log2(e) into q first doubles the rounding of s - m for large logits (the
// large_logits_stability conformance case).
//
// Requires before inclusion: namespace opened, `struct DOps` with W, V, load, store, set1, zero,
// fmadd, mul, max, exp, exp_scalar, hsum_w(const V*), store_rows<RT>(float*, stride, V), hmax(V),
// hsum(V), prefetch(const void*, level), the element loaders ld_f32 / ld_f16 / ld_bf16 (W
// elements widened to fp32), kQk4x3 (true: also load_reg and store_4x3, see qk_keys), kBf16Dot
// (true: also VI, ld_pairs and dot_bf16, and bf16 calls score with qk_rows_bf16) and
// kVPrefetchInPv (V rows prefetched during P·V instead of with K during QK).
// (No include guard on purpose: each decode TU includes this exactly once, in its own namespace.)

static inline int64_t dmin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t dmax(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t dceil(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Keys prefetched ahead of the key being scored, and the cache level they are prefetched into
// (0: L1, 1: L2). Measured: scripts/ablate-decode.sh (docs/performance-cpu.md).
#ifndef SDPA_DECODE_PF
#define SDPA_DECODE_PF 64
#endif
#ifndef SDPA_DECODE_PF_LEVEL
#define SDPA_DECODE_PF_LEVEL 1
#endif
constexpr int64_t kPf = SDPA_DECODE_PF;

// Prefetches the K rows of keys j.. (global key index) during QK and the V row of key j during PV,
// up to the job's last key: issued a few rows at a time so the requests spread over the phase
// instead of one burst (a whole block's rows at once are ~32 KiB: they would evict the block being
// read from L1, and, the likely reason the burst lost, requests beyond what the core tracks are dropped).
struct Prefetcher {
  const char *kbase, *vbase;
  size_t kstride, vstride, kbytes, vbytes;
  int64_t end;
  inline void krows(int64_t j, int64_t n) const {
    if (kPf <= 0) return;
    const int64_t e = dmin(j + n, end);
    for (; j < e; ++j) {
      const char* kr = kbase + (size_t)j * kstride;
      for (size_t x = 0; x < kbytes; x += 64) DOps::prefetch(kr + x, SDPA_DECODE_PF_LEVEL);
      if (!DOps::kVPrefetchInPv) vrow(j);
    }
  }
  inline void vrow(int64_t j) const {
    if (kPf <= 0 || j >= end) return;
    const char* vr = vbase + (size_t)j * vstride;
    for (size_t x = 0; x < vbytes; x += 64) DOps::prefetch(vr + x, SDPA_DECODE_PF_LEVEL);
  }
};

// Query rows of one job: rows r = hl·S + i (hl: query head within the group, i: query).
struct DShape {
  int64_t rows, rt, rp;   // rows, QK row tile, rows padded to the tile
  int64_t ep, evp, nb;    // e and ev padded to W, keys per block
};
static inline DShape dshape(const Plan& p) {
  const AttentionArgs& a = p.a;
  DShape d;
  d.rows = p.group * a.s;
  // QK row tile: one tile for up to 8 rows (K converted once); above, 8 or 4 rows per tile so the
  // padding stays small.
  // (Ops with the 4×3 tile take 8 rows as two 4-row tiles, K read from L1 twice, instead of one
  // 8 × 1 tile whose 8 Q vectors are memory operands: Zen 3, group 8 (Hq 16 over Hkv 2), L = 1024,
  // one thread, cache-resident: f32 0.129–0.130 → 0.127–0.128 ms, f16 0.131 → 0.126.)
  const int64_t maxrt = DOps::kQk4x3 ? 4 : DOps::W < 8 ? DOps::W : 8;
  int64_t rt = 1;
  while (rt < d.rows && rt < maxrt) rt *= 2;
  if (d.rows > maxrt && d.rows % maxrt != 0 && d.rows % 4 == 0 && maxrt > 4) rt = 4;
  d.rt = rt;
  d.rp = dceil(d.rows, rt);
  d.ep = dceil(a.e, DOps::W);
  d.evp = dceil(a.ev, DOps::W);
  d.nb = p.bk;
  return d;
}

// Scratch per thread (floats, each region a multiple of 16 floats: 64-byte aligned).
struct DLayout { int64_t qs, sc, ob, m, l, hrow, total; };
static inline DLayout dlayout(const Plan& p) {
  const DShape s = dshape(p);
  DLayout L{};
  int64_t off = 0;
  auto take = [&](int64_t n) { int64_t o = off; off += dceil(n, 16); return o; };
  L.qs = take(s.rp * s.ep);     // scaled Q rows [rp][ep], padded rows zero
  L.sc = take(s.rp * s.nb);     // scores, then probabilities, of one key block [rp][nb]
  L.ob = take(s.rows * s.evp);  // O accumulator [rows][evp]
  L.m = take(s.rows); L.l = take(s.rows);
  L.hrow = take(s.rows);        // dropout: per-row hash prefix (uint32 bits)
  L.total = off;
  return L;
}

static size_t decode_workspace_bytes(const Plan& p) { return (size_t)dlayout(p).total * 4; }

// Shared per call when split: per kv head a 64-byte counter slot, then per chunk m[rows], l[rows],
// O[rows][evp] (floats).
static inline int64_t dsplit_floats(const Plan& p) {
  const DShape s = dshape(p);
  return dceil(2 * s.rows, 16) + s.rows * s.evp;
}
static size_t decode_shared_bytes(const Plan& p) {
  if (p.nsplit <= 1) return 0;
  const int64_t nkv = p.a.bh / p.a.hq * p.a.hkv;
  return (size_t)nkv * (size_t)(16 + p.nsplit * dsplit_floats(p)) * 4;
}

// Keys each row may see: [0, hi) under causal (j <= i + diagonal_offset), all keys otherwise.
static inline int64_t row_hi(const AttentionArgs& a, int64_t i) {
  return a.causal ? dmax(0, dmin(a.l, i + a.diagonal_offset + 1)) : a.l;
}

// Split-KV blocking: jobs = kv heads × chunks, chunks of at least kMinChunk keys, enough jobs for
// every thread (4 per thread, so uneven chunk costs balance), chunk a multiple of the key block.
static void decode_plan(Plan& p, const Tuning& t) {
  const AttentionArgs& a = p.a;
  constexpr int64_t kMinChunk = 512;
  // A block is whole vectors of keys; with the 4×3 QK tile also whole tiles of 3 (24 | bk), so the
  // padded tail of a block (nkp keys) never runs past its row of scores.
  constexpr int64_t unit = DOps::kQk4x3 ? 3 * DOps::W : DOps::W;
  p.bk = dmin(DOps::kQk4x3 ? 504 : 512, t.bk > 0 ? dceil(t.bk, unit) : DOps::kQk4x3 ? 72 : 64);
  p.bq = a.s;
  p.nqb = 1;
  const int64_t nkv = a.bh / a.hq * a.hkv;
  const int64_t span = dmax(1, row_hi(a, a.s - 1));  // keys any row sees (causal: the last query's)
  const int64_t want = dmax(1, (4 * (int64_t)p.nthreads + nkv - 1) / nkv);
  int64_t nsplit = dmin(want, dmax(1, span / kMinChunk));
  int64_t chunk = dceil((span + nsplit - 1) / nsplit, p.bk);
  nsplit = (span + chunk - 1) / chunk;
  p.nsplit = nsplit;
  p.chunk = chunk;
  p.njobs = nkv * nsplit;
}

// One key block's raw scores: sc[r][j] = Qs[r] · K[j] for rows r0..r0+RT, keys 0..nkp (a
// multiple of KT; rows past the block's last key repeat it and are masked by the caller).
// Keys per QK tile of rt rows: W / rt, so that hsum_w reduces the tile's W accumulators into one
// vector of scores; except a 4-row tile of ops with DOps::kQk4x3 (AVX2): 4 rows × 3 keys, 12
// accumulators. In the 4 × 2 tile GCC folded each Q vector into both of its FMAs as a memory
// operand: 10 loads per 8 FMAs. The 4×3 tile holds 3 K vectors and one Q vector per row in
// registers (16 ymm in all): 7 loads per 12 FMAs. Measured with csrc/bench/decode_tiles (4 query
// rows, D = 128, K in L2, one thread): Zen 3 14.1 → 12.7–13.2 ns per key, Xeon 14.8–20.0 →
// 12.3–15.2; the whole kernel 8–10% faster with K/V in the caches (docs/performance-cpu.md, session 8).
constexpr int64_t qk_keys(int64_t rt) { return rt == 4 && DOps::kQk4x3 ? 3 : DOps::W / rt; }

// The 4×3 tile (O = DOps; a template so ops without it need not declare load_reg / store_4x3).
template <typename O, typename Ld>
static inline void qk_rows_4x3(const float* qs, int64_t ep, const Ld& kr, int64_t nkp, int64_t e, float* sc, int64_t nb,
                               const Prefetcher* pf, int64_t j0) {
  using V = typename O::V;
  for (int64_t j = 0; j < nkp; j += 3) {
    V acc[12];
    for (int x = 0; x < 12; ++x) acc[x] = O::zero();
    for (int64_t d = 0; d < e; d += O::W) {
      const V k0 = kr.load(j, d), k1 = kr.load(j + 1, d), k2 = kr.load(j + 2, d);
      for (int r = 0; r < 4; ++r) {
        const V qv = O::load_reg(qs + r * ep + d);
        acc[3 * r] = O::fmadd(qv, k0, acc[3 * r]);
        acc[3 * r + 1] = O::fmadd(qv, k1, acc[3 * r + 1]);
        acc[3 * r + 2] = O::fmadd(qv, k2, acc[3 * r + 2]);
      }
    }
    if (pf) pf->krows(j0 + j + kPf, 3);
    O::store_4x3(sc + j, nb, acc);  // sc[r·nb + j + t] = the sum of acc[3r + t]
  }
}

template <int RT, typename Ld>
static inline void qk_rows(const float* qs, int64_t ep, const Ld& kr, int64_t nkp, int64_t e, float* sc, int64_t nb,
                           const Prefetcher* pf, int64_t j0) {
  using V = typename DOps::V;
  constexpr int KT = (int)qk_keys(RT);
  if constexpr (RT == 4 && DOps::kQk4x3) {
    qk_rows_4x3<DOps>(qs, ep, kr, nkp, e, sc, nb, pf, j0);
    return;
  }
  for (int64_t j = 0; j < nkp; j += KT) {
    V acc[RT * KT];
    for (int x = 0; x < RT * KT; ++x) acc[x] = DOps::zero();
    for (int64_t d = 0; d < e; d += DOps::W) {
      V kv[KT];
      for (int t = 0; t < KT; ++t) kv[t] = kr.load(j + t, d);
      for (int r = 0; r < RT; ++r) {
        const V qv = DOps::load(qs + r * ep + d);
        for (int t = 0; t < KT; ++t) acc[r * KT + t] = DOps::fmadd(qv, kv[t], acc[r * KT + t]);
      }
    }
    if (pf) pf->krows(j0 + j + kPf, KT);
    DOps::template store_rows<RT>(sc + j, nb, DOps::hsum_w(acc));  // lane r·KT + t = row r, key j + t
  }
}

// The same scores for bf16 K and Q on a bf16 dot-product instruction (O::kBf16Dot): each step
// multiplies W pairs of bf16 values (2·W head dims) into W fp32 sums, K rows read as they are (no
// widening) and Q held as unscaled bf16 pairs (qb[r][ep / 2]; scaling bf16 Q first would round it),
// the scale applied to the reduced scores. Needs e a multiple of 2·W (the kernel's e_multiple).
template <typename O, int RT>
static inline void qk_rows_bf16(const uint32_t* qb, int64_t ep2, const void* const* row, int64_t nkp, int64_t e2, float* sc,
                                int64_t nb, const Prefetcher* pf, int64_t j0, typename O::V scale) {
  using V = typename O::V;
  constexpr int KT = (int)qk_keys(RT);
  for (int64_t j = 0; j < nkp; j += KT) {
    V acc[RT * KT];
    for (int x = 0; x < RT * KT; ++x) acc[x] = O::zero();
    for (int64_t d = 0; d < e2; d += O::W) {
      typename O::VI kv[KT];
      for (int t = 0; t < KT; ++t) kv[t] = O::ld_pairs((const uint32_t*)row[j + t] + d);
      for (int r = 0; r < RT; ++r) {
        const typename O::VI qv = O::ld_pairs(qb + r * ep2 + d);
        for (int t = 0; t < KT; ++t) acc[r * KT + t] = O::dot_bf16(acc[r * KT + t], qv, kv[t]);
      }
    }
    if (pf) pf->krows(j0 + j + kPf, KT);
    O::template store_rows<RT>(sc + j, nb, O::mul(O::hsum_w(acc), scale));
  }
}

// O[r0+r][v·W..] += Σ_j P[r][j] · V[j][v·W..], for PR rows and DT vectors of the value dim; with
// pf, also V row j0 + j + kPf per key j (block j0).
template <int PR, int DT, typename Ld>
static inline void pv_tile(const float* pt, int64_t nb, const Ld& vr, int64_t nk, int64_t d0, float* ob, int64_t evp,
                           const Prefetcher* pf, int64_t j0) {
  using V = typename DOps::V;
  V acc[PR][DT];
  for (int r = 0; r < PR; ++r)
    for (int v = 0; v < DT; ++v) acc[r][v] = DOps::load(ob + r * evp + d0 + v * DOps::W);
  for (int64_t j = 0; j < nk; ++j) {
    if (pf) pf->vrow(j0 + j + kPf);
    V vv[DT];
    for (int v = 0; v < DT; ++v) vv[v] = vr.load(j, d0 + v * DOps::W);
    for (int r = 0; r < PR; ++r) {
      const V pb = DOps::set1(pt[r * nb + j]);
      for (int v = 0; v < DT; ++v) acc[r][v] = DOps::fmadd(pb, vv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < PR; ++r)
    for (int v = 0; v < DT; ++v) DOps::store(ob + r * evp + d0 + v * DOps::W, acc[r][v]);
}

// Value-dim vectors per PV tile: the accumulators PR·DT plus DT loads fit the register file.
constexpr int kPvDt1 = DOps::W == 16 ? 8 : DOps::W == 8 ? 8 : 4;
constexpr int kPvDt = DOps::W == 16 ? 4 : DOps::W == 8 ? 2 : 4;  // for PR = 2 and 4 rows

// The row tile's value vectors; pf (the first row tile's call) goes to its first PV tile only.
template <int PR, int DT, typename Ld>
static inline void pv_rows(const float* pt, int64_t nb, const Ld& vr, int64_t nk, int64_t nve, float* ob, int64_t evp,
                           const Prefetcher* pf, int64_t j0) {
  int64_t v = 0;
  if constexpr (PR == 4 && DOps::kQk4x3) {
    // 4 rows × 3 vectors (12 accumulators, 3 V vectors, one broadcast: 16 ymm), the rest in pairs
    // so no single-vector tile (4 accumulators) is left: 16 = 3+3+3+3+2+2. Measured as above:
    // within the noise of 4 × 2 on Zen 3 (10.7–12.3 ns per key either way), 12.9–14.5 → 11.9–14.1
    // on the Xeon.
    const int64_t n3 = nve % 3 == 1 && nve >= 4 ? nve / 3 - 1 : nve / 3;
    for (int64_t i = 0; i < n3; ++i, v += 3, pf = nullptr) pv_tile<4, 3>(pt, nb, vr, nk, v * DOps::W, ob, evp, pf, j0);
  }
  for (; v + DT <= nve; v += DT, pf = nullptr) pv_tile<PR, DT>(pt, nb, vr, nk, v * DOps::W, ob, evp, pf, j0);
  for (; v < nve; ++v, pf = nullptr) pv_tile<PR, 1>(pt, nb, vr, nk, v * DOps::W, ob, evp, pf, j0);
}

// K or V rows of one block, read through a per-block table of row pointers (so a row's address is
// computed once per block), widened to fp32 on load.
template <int DT_>
struct Rows {
  const void* const* row;
  inline typename DOps::V load(int64_t j, int64_t d) const {
    if (DT_ == 0) return DOps::ld_f32((const float*)row[j] + d);
    if (DT_ == 1) return DOps::ld_f16((const uint16_t*)row[j] + d);
    return DOps::ld_bf16((const uint16_t*)row[j] + d);
  }
};

static inline float dmask(const AttentionArgs& a, int64_t idx) {
  switch (a.mask_dtype) {
    case MaskDType::U8: return ((const uint8_t*)a.mask)[idx] ? 0.0f : -__builtin_inff();
    case MaskDType::F32: return ((const float*)a.mask)[idx];
    case MaskDType::F16: return f16_to_f32(((const uint16_t*)a.mask)[idx]);
    default: return bf16_to_f32(((const uint16_t*)a.mask)[idx]);
  }
}

// Runs one job: kv head kvi, keys [c0, c1).
template <int DT_>
static void decode_job(const Plan& p, int64_t kvi, int64_t split, int64_t c0, int64_t c1, void* wsv) {
  using V = typename DOps::V;
  const AttentionArgs& a = p.a;
  const DShape sh = dshape(p);
  const DLayout L = dlayout(p);
  float* ws = (float*)wsv;
  float *qs = ws + L.qs, *sc = ws + L.sc, *ob = ws + L.ob, *m = ws + L.m, *l = ws + L.l;
  uint32_t* hrow = (uint32_t*)(ws + L.hrow);
  const int64_t rows = sh.rows, nb = sh.nb, e = a.e, ev = a.ev, S = a.s;
  const int64_t b = kvi / a.hkv, g = kvi % a.hkv;
  const int64_t bh0 = b * a.hq + g * p.group;  // flat query head of row 0
  const size_t esz = a.dtype == DType::F32 ? 4 : 2;
  const float ninf = -__builtin_inff();

  // Q rows scaled (natural units), padded rows and dims zero; for the bf16 dot product the raw
  // bf16 pairs instead (the scale applies to the scores).
  constexpr bool bdot = DT_ == 2 && DOps::kBf16Dot;
  std::memset(qs, 0, sizeof(float) * (size_t)(sh.rp * sh.ep));
  uint32_t* qb = (uint32_t*)qs;
  const int64_t ep2 = sh.ep / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t bh = bh0 + r / S, i = r % S;
    const int64_t off = a.q_base[bh] + i * a.q_row_stride;
    if constexpr (bdot) {
      std::memcpy(qb + r * ep2, (const uint16_t*)a.q + off, (size_t)e * 2);
      continue;
    }
    float* dst = qs + r * sh.ep;
    if (a.dtype == DType::F32) std::memcpy(dst, (const float*)a.q + off, (size_t)e * 4);
    else for (int64_t d = 0; d < e; ++d) dst[d] = a.dtype == DType::F16 ? f16_to_f32(((const uint16_t*)a.q)[off + d]) : bf16_to_f32(((const uint16_t*)a.q)[off + d]);
    for (int64_t d = 0; d < e; ++d) dst[d] *= a.scale;
  }
  std::memset(ob, 0, sizeof(float) * (size_t)(rows * sh.evp));
  for (int64_t r = 0; r < rows; ++r) { m[r] = ninf; l[r] = 0.0f; }
  if (a.dropout_p > 0.0) {
    for (int64_t r = 0; r < rows; ++r) {
      const uint32_t hb = mix32(mix32(a.seed) ^ (uint32_t)(bh0 + r / S));
      hrow[r] = mix32(hb ^ (uint32_t)(r % S));
    }
  }
  // Keys visible to any row of this job, and the first key visible to every row (no per-row cut
  // below it).
  int64_t hi_all = 0, hi_min = a.l;
  for (int64_t i = 0; i < S; ++i) { hi_all = dmax(hi_all, row_hi(a, i)); hi_min = dmin(hi_min, row_hi(a, i)); }
  c1 = dmin(c1, hi_all);

  const char* kbase = (const char*)a.k + (size_t)a.kv_base_k[kvi] * esz;
  const char* vbase = (const char*)a.v + (size_t)a.kv_base_v[kvi] * esz;
  const size_t kstride = (size_t)a.k_row_stride * esz, vstride = (size_t)a.v_row_stride * esz;
  const size_t krow_bytes = (size_t)e * esz, vrow_bytes = (size_t)ev * esz;
  const void* kp[512];
  const void* vp[512];  // nb <= 512 (decode_plan)
  const Prefetcher pf{kbase, vbase, kstride, vstride, krow_bytes, vrow_bytes, c1};
  const bool has_mask = a.mask_kind != MaskKind::None;
  const int64_t nve = sh.evp / DOps::W;
  for (int64_t j0 = c0; j0 < c1; j0 += nb) {
    const int64_t nk = dmin(nb, c1 - j0);
    const int64_t kt = qk_keys(sh.rt);
    const int64_t nkp = dceil(nk, kt);
    for (int64_t j = 0; j < nkp; ++j) {
      const int64_t jj = j0 + dmin(j, nk - 1);
      kp[j] = kbase + (size_t)jj * kstride;
      vp[j] = vbase + (size_t)jj * vstride;
    }
    // Scores; the first row tile prefetches the rows kPf keys ahead (within the chunk: the next
    // job's first rows are left to the hardware prefetcher).
    const Rows<DT_> kr{kp};
    for (int64_t r0 = 0; r0 < sh.rp; r0 += sh.rt) {
      const Prefetcher* pfp = r0 == 0 ? &pf : nullptr;
      if constexpr (bdot) {
        const V vs = DOps::set1(a.scale);
        const uint32_t* q0 = qb + r0 * ep2;
        float* s0 = sc + r0 * nb;
        switch (sh.rt) {
          case 1: qk_rows_bf16<DOps, 1>(q0, ep2, kp, nkp, e / 2, s0, nb, pfp, j0, vs); break;
          case 2: qk_rows_bf16<DOps, 2>(q0, ep2, kp, nkp, e / 2, s0, nb, pfp, j0, vs); break;
          case 4: qk_rows_bf16<DOps, 4>(q0, ep2, kp, nkp, e / 2, s0, nb, pfp, j0, vs); break;
          default: qk_rows_bf16<DOps, 8>(q0, ep2, kp, nkp, e / 2, s0, nb, pfp, j0, vs); break;
        }
        continue;
      }
      switch (sh.rt) {
        case 1: qk_rows<1>(qs + r0 * sh.ep, sh.ep, kr, nkp, sh.ep, sc + r0 * nb, nb, pfp, j0); break;
        case 2: qk_rows<(DOps::W >= 2 ? 2 : 1)>(qs + r0 * sh.ep, sh.ep, kr, nkp, sh.ep, sc + r0 * nb, nb, pfp, j0); break;
        case 4: qk_rows<(DOps::W >= 4 ? 4 : 1)>(qs + r0 * sh.ep, sh.ep, kr, nkp, sh.ep, sc + r0 * nb, nb, pfp, j0); break;
        default: qk_rows<(DOps::W >= 8 ? 8 : 1)>(qs + r0 * sh.ep, sh.ep, kr, nkp, sh.ep, sc + r0 * nb, nb, pfp, j0); break;
      }
    }
    // Masks, causal limits, the block tail; then the online softmax per row.
    const int64_t nkv_ = dceil(nk, DOps::W);  // keys processed as whole vectors (tail = -inf)
    const bool cut = j0 + nk > hi_min;        // some row's causal limit falls inside this block
    for (int64_t r = 0; r < rows; ++r) {
      float* srow = sc + r * nb;
      const int64_t i = r % S;
      for (int64_t j = nk; j < nkv_; ++j) srow[j] = ninf;
      if (cut) {
        const int64_t hi = row_hi(a, i);
        for (int64_t j = dmax(0, hi - j0); j < nk; ++j) srow[j] = ninf;
      }
      if (has_mask) {
        const int64_t bh = bh0 + r / S;
        int64_t idx = a.mask_base[bh] + i * a.mask_stride_s + j0 * a.mask_stride_l;
        const bool is_bool = a.mask_kind == MaskKind::Bool;
        for (int64_t j = 0; j < nk; ++j, idx += a.mask_stride_l) {
          const float mv = dmask(a, idx);
          srow[j] = is_bool ? (mv == 0.0f ? srow[j] : mv) : srow[j] + mv;
        }
      }
      V mx = DOps::set1(ninf);
      for (int64_t j = 0; j < nkv_; j += DOps::W) mx = DOps::max(mx, DOps::load(srow + j));
      const float bmax = DOps::hmax(mx);
      const float mnew = bmax > m[r] ? bmax : m[r];
      if (mnew == ninf) {  // nothing visible to this row yet: its probabilities are all 0
        // ... unless a score is NaN (the max drops NaN lanes): PyTorch then makes the row NaN.
        for (int64_t j = 0; j < nk; ++j)
          if (srow[j] != srow[j]) l[r] = __builtin_nanf("");
        for (int64_t j = 0; j < nkv_; ++j) srow[j] = 0.0f;
        continue;
      }
      if (mnew > m[r]) {  // the running max rose: rescale what this row has so far (exactly)
        const float al = m[r] == ninf ? 0.0f : DOps::exp_scalar(m[r] - mnew);
        const V va = DOps::set1(al);
        float* orow = ob + r * sh.evp;
        for (int64_t x = 0; x < sh.evp; x += DOps::W) DOps::store(orow + x, DOps::mul(DOps::load(orow + x), va));
        l[r] *= al;
        m[r] = mnew;
      }
      const V vm = DOps::set1(m[r]);
      V sum = DOps::zero();
      for (int64_t j = 0; j < nkv_; j += DOps::W) {
        const V pj = DOps::exp(DOps::sub(DOps::load(srow + j), vm));
        DOps::store(srow + j, pj);
        sum = DOps::add(sum, pj);
      }
      l[r] += DOps::hsum(sum);
      if (a.dropout_p > 0.0) apply_dropout(srow, 1, nk, 1, j0, hrow + r, a.dropout_p);
    }
    // O += P V (V rows prefetched here with kVPrefetchInPv, else with K during QK).
    const Rows<DT_> vr{vp};
    const Prefetcher* pfv = DOps::kVPrefetchInPv ? &pf : nullptr;
    int64_t r = 0;
    if (DOps::W > 1) {
      for (; r + 4 <= rows; r += 4) pv_rows<4, kPvDt>(sc + r * nb, nb, vr, nk, nve, ob + r * sh.evp, sh.evp, r == 0 ? pfv : nullptr, j0);
      for (; r + 2 <= rows; r += 2) pv_rows<2, kPvDt>(sc + r * nb, nb, vr, nk, nve, ob + r * sh.evp, sh.evp, r == 0 ? pfv : nullptr, j0);
    }
    for (; r < rows; ++r) pv_rows<1, kPvDt1>(sc + r * nb, nb, vr, nk, nve, ob + r * sh.evp, sh.evp, r == 0 ? pfv : nullptr, j0);
  }

  // Output (not split) or this chunk's partials; the last chunk of a kv head merges.
  auto write_row = [&](int64_t r, const float* o, float inv) {
    const int64_t bh = bh0 + r / S, i = r % S;
    const int64_t off = (bh * S + i) * ev;
    if (a.dtype == DType::F32) {
      float* dst = (float*)a.out + off;
      for (int64_t x = 0; x < ev; ++x) dst[x] = o[x] * inv;
    } else {
      uint16_t* dst = (uint16_t*)a.out + off;
      const bool bf = a.dtype == DType::BF16;
      for (int64_t x = 0; x < ev; ++x) dst[x] = bf ? f32_to_bf16(o[x] * inv) : f32_to_f16(o[x] * inv);
    }
  };
  // 1/l, except: a row that saw no key gets zeros, and a row whose l is NaN (a NaN score, even in a
  // row whose visible scores were all NaN, so its max stayed -inf) gets NaN, as PyTorch gives.
  auto inv_of = [](float lsum) { return lsum > 0.0f ? 1.0f / lsum : lsum != lsum ? __builtin_nanf("") : 0.0f; };
  if (p.nsplit <= 1) {
    for (int64_t r = 0; r < rows; ++r) write_row(r, ob + r * sh.evp, inv_of(l[r]));
    return;
  }
  const int64_t sf = dsplit_floats(p);
  float* head = (float*)p.shared + kvi * (16 + p.nsplit * sf);
  float* part = head + 16 + split * sf;
  std::memcpy(part, m, (size_t)rows * 4);
  std::memcpy(part + rows, l, (size_t)rows * 4);
  std::memcpy(part + dceil(2 * rows, 16), ob, (size_t)(rows * sh.evp) * 4);
  // acq_rel: the last chunk sees every other chunk's partials.
  uint32_t* counter = (uint32_t*)head;
  if (__atomic_add_fetch(counter, 1u, __ATOMIC_ACQ_REL) != (uint32_t)p.nsplit) return;
  float* acc = ob;  // this thread's O scratch holds the merged rows
  for (int64_t r = 0; r < rows; ++r) {
    float mm = ninf;
    for (int64_t c = 0; c < p.nsplit; ++c) { const float mc = (head + 16 + c * sf)[r]; mm = mc > mm ? mc : mm; }
    float* o = acc + r * sh.evp;
    for (int64_t x = 0; x < sh.evp; ++x) o[x] = 0.0f;
    bool nan_row = false;  // a chunk whose max stayed -inf may still have met a NaN score (l = NaN)
    for (int64_t c = 0; c < p.nsplit; ++c) { const float lc = (head + 16 + c * sf)[rows + r]; nan_row |= lc != lc; }
    if (nan_row) { write_row(r, o, __builtin_nanf("")); continue; }
    if (mm == ninf) { write_row(r, o, 0.0f); continue; }
    float lsum = 0.0f;
    for (int64_t c = 0; c < p.nsplit; ++c) {
      const float* pc = head + 16 + c * sf;
      if (pc[r] == ninf) continue;  // that chunk saw nothing for this row
      const float w = DOps::exp_scalar(pc[r] - mm);
      lsum += w * pc[rows + r];
      const float* oc = pc + dceil(2 * rows, 16) + r * sh.evp;
      for (int64_t x = 0; x < sh.evp; ++x) o[x] += w * oc[x];
    }
    write_row(r, o, inv_of(lsum));
  }
}

static void decode_run(const Plan& p, int64_t job, void* ws) {
  const int64_t kvi = job / p.nsplit, split = job % p.nsplit;
  const int64_t c0 = split * p.chunk, c1 = dmin(p.a.l, c0 + p.chunk);
  switch (p.a.dtype) {
    case DType::F32: decode_job<0>(p, kvi, split, c0, c1, ws); break;
    case DType::F16: decode_job<1>(p, kvi, split, c0, c1, ws); break;
    default: decode_job<2>(p, kvi, split, c0, c1, ws); break;
  }
}
