// Standalone correctness test (no node): every kernel of the table this CPU can run, by name,
// against a double-precision reference on random shapes with masks, causal offsets, GQA, Ev != E,
// dropout, fully-masked rows, odd head dims and non-contiguous strides; plus the table's refusals.
// Build and run: make -C csrc test [CASES=n]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../flash_attention.h"
#include "../internal.h"

using namespace sdpa;

struct Case {
  DType dt; int64_t b, hq, hkv, s, l, e, ev;
  MaskKind mk; MaskDType md; bool mask_bcast_s, mask_bcast_h;
  bool causal; int64_t off; float scale; double p; uint32_t seed;
  int64_t pad;  // extra elements per row (non-contiguous rows)
  int threads;
  float kramp;  // K row j scaled by 1 + kramp·j: the row max keeps growing along the keys
  int64_t kjump;  // > 0: K rows from kjump on scaled by 8 (the running max jumps by ~10 octaves there)
};

static float round_to(DType dt, float x) {
  if (dt == DType::F16) return detail::f16_to_f32(detail::f32_to_f16(x));
  if (dt == DType::BF16) return detail::bf16_to_f32(detail::f32_to_bf16(x));
  return x;
}

struct Buf {  // stores values in dtype, keeps the fp32 view for the reference
  DType dt; std::vector<float> f; std::vector<uint16_t> h;
  void init(DType d, size_t n) { dt = d; f.assign(n, 0.f); if (d != DType::F32) h.assign(n, 0); }
  void set(size_t i, float x) {
    x = round_to(dt, x); f[i] = x;
    if (dt == DType::F16) h[i] = detail::f32_to_f16(x);
    else if (dt == DType::BF16) h[i] = detail::f32_to_bf16(x);
  }
  const void* ptr() const { return dt == DType::F32 ? (const void*)f.data() : (const void*)h.data(); }
};

static uint32_t mixr(uint32_t x) { return detail::mix32(x); }

static double worst_by[3][32];  // [dtype][kernel index]: max err/tolerance
static int runs_by[32];           // case-runs per kernel

// Speed rules off: a kernel that is only slower below its min_keys still runs (and is tested) there.
static detail::Tuning tuning() { detail::Tuning t; t.speed_rules = false; return t; }

// Runs case c on every kernel of `kernels` whose rules admit it; returns the failures.
static int run_case(const Case& c, std::mt19937& rng, const std::vector<std::string>& kernels, double& worst,
                    const detail::Tuning& tune = tuning()) {
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  const int64_t bh = c.b * c.hq;
  const int64_t qrs = c.e + c.pad, krs = c.e + c.pad, vrs = c.ev + c.pad;
  // Heads laid out in a shuffled order with gaps to exercise arbitrary base offsets.
  Buf q, k, v;
  q.init(c.dt, (size_t)(bh * c.s * qrs + 7));
  k.init(c.dt, (size_t)(c.b * c.hkv * c.l * krs + 7));
  v.init(c.dt, (size_t)(c.b * c.hkv * c.l * vrs + 7));
  for (size_t i = 0; i < q.f.size(); ++i) q.set(i, U(rng));
  for (size_t i = 0; i < k.f.size(); ++i) k.set(i, U(rng));
  for (size_t i = 0; i < v.f.size(); ++i) v.set(i, U(rng));
  std::vector<int64_t> qb(bh), kb(c.b * c.hkv), vb(c.b * c.hkv);
  for (int64_t i = 0; i < bh; ++i) qb[i] = ((i * 5 + 3) % bh) * c.s * qrs + 1;
  for (int64_t i = 0; i < c.b * c.hkv; ++i) { kb[i] = (c.b * c.hkv - 1 - i) * c.l * krs + 2; vb[i] = i * c.l * vrs + 3; }
  if (c.kjump > 0)
    for (int64_t i = 0; i < c.b * c.hkv; ++i)
      for (int64_t j = c.kjump; j < c.l; ++j)
        for (int64_t x = 0; x < c.e; ++x) k.set(kb[i] + j * krs + x, k.f[kb[i] + j * krs + x] * 8.0f);
  if (c.kramp > 0)
    for (int64_t i = 0; i < c.b * c.hkv; ++i)
      for (int64_t j = 0; j < c.l; ++j)
        for (int64_t x = 0; x < c.e; ++x) k.set(kb[i] + j * krs + x, k.f[kb[i] + j * krs + x] * (1.0f + c.kramp * j));
  // Mask: [hq or 1, s or 1, l] per batch, with broadcasting by zero strides / repeated bases.
  std::vector<uint8_t> mu8; Buf mf;
  std::vector<int64_t> mbase(bh, 0);
  int64_t mss = c.mask_bcast_s ? 0 : c.l, msl = 1;
  const int64_t mrows = c.mask_bcast_s ? 1 : c.s, mheads = c.mask_bcast_h ? 1 : bh;
  const size_t mn = (size_t)(mheads * mrows * c.l);
  if (c.mk == MaskKind::Bool) {
    mu8.resize(mn);
    for (auto& x : mu8) x = (rng() % 4) != 0;  // ~25% masked
    if (c.s > 2 && !c.mask_bcast_s) for (int64_t j = 0; j < c.l; ++j) mu8[1 * c.l + j] = 0;  // a fully masked row
  } else if (c.mk == MaskKind::Float) {
    DType fd = c.md == MaskDType::F32 ? DType::F32 : c.md == MaskDType::F16 ? DType::F16 : DType::BF16;
    mf.init(fd, mn);
    for (size_t i = 0; i < mn; ++i) mf.set(i, (rng() % 8) == 0 ? -INFINITY : U(rng) * 2.f);
  }
  for (int64_t i = 0; i < bh; ++i) mbase[i] = c.mask_bcast_h ? 0 : i * mrows * c.l;
  auto mask_at = [&](int64_t h, int64_t i, int64_t j) -> double {
    size_t idx = (size_t)(mbase[h] + i * mss + j * msl);
    if (c.mk == MaskKind::Bool) return mu8[idx] ? 0.0 : -INFINITY;
    if (c.mk == MaskKind::Float) return mf.f[idx];
    return 0.0;
  };

  // Reference in double.
  std::vector<double> ref((size_t)(bh * c.s * c.ev));
  std::vector<double> sc(c.l), pr(c.l);
  const double thr = c.p * 16777216.0;  // the JS rule: p is a double
  for (int64_t h = 0; h < bh; ++h) {
    const int64_t bb = h / c.hq, g = (h % c.hq) / (c.hq / c.hkv), kvi = bb * c.hkv + g;
    for (int64_t i = 0; i < c.s; ++i) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < c.l; ++j) {
        double d = 0;
        for (int64_t x = 0; x < c.e; ++x) d += (double)q.f[qb[h] + i * qrs + x] * k.f[kb[kvi] + j * krs + x];
        double sv = d * c.scale + mask_at(h, i, j);
        if (c.causal && j > i + c.off) sv = -INFINITY;
        sc[j] = sv; mx = std::max(mx, sv);
      }
      double* o = &ref[(size_t)((h * c.s + i) * c.ev)];
      if (mx == -INFINITY) continue;  // zeros
      double den = 0;
      for (int64_t j = 0; j < c.l; ++j) { pr[j] = std::exp(sc[j] - mx); den += pr[j]; }
      uint32_t hr = mixr(mixr(mixr(c.seed) ^ (uint32_t)h) ^ (uint32_t)i);
      for (int64_t j = 0; j < c.l; ++j) {
        double pj = pr[j];
        if (c.p > 0) pj = ((double)(mixr(hr ^ (uint32_t)j) >> 8) < thr) ? 0.0 : pj / (1.0 - c.p);
        if (pj == 0) continue;
        for (int64_t x = 0; x < c.ev; ++x) o[x] += pj * v.f[vb[kvi] + j * vrs + x];
      }
      for (int64_t x = 0; x < c.ev; ++x) o[x] /= den;
    }
  }

  double atol, rtol;
  if (c.dt == DType::F32) { atol = 2e-5; rtol = 2e-4; }
  else if (c.dt == DType::F16) { atol = 1e-3; rtol = 2e-3; }   // fp16 output rounding (2^-11) + slack
  else { atol = 1e-2; rtol = 1.6e-2; }                          // bf16: output and P rounding

  int fails = 0;
  for (size_t ii = 0; ii < kernels.size(); ++ii) {
    const char* kname = kernels[ii].c_str();
    AttentionArgs a{};
    a.kernel = kname;
    a.dtype = c.dt; a.q = q.ptr(); a.k = k.ptr(); a.v = v.ptr();
    std::vector<float> of((size_t)(bh * c.s * c.ev), NAN);
    std::vector<uint16_t> oh((size_t)(bh * c.s * c.ev), 0x7e00);
    a.out = c.dt == DType::F32 ? (void*)of.data() : (void*)oh.data();
    a.bh = bh; a.hq = c.hq; a.hkv = c.hkv; a.s = c.s; a.l = c.l; a.e = c.e; a.ev = c.ev;
    a.q_base = qb.data(); a.kv_base_k = kb.data(); a.kv_base_v = vb.data();
    a.q_row_stride = qrs; a.k_row_stride = krs; a.v_row_stride = vrs;
    a.mask_kind = c.mk; a.mask_dtype = c.md;
    a.mask = c.mk == MaskKind::Bool ? (const void*)mu8.data() : c.mk == MaskKind::Float ? mf.ptr() : nullptr;
    a.mask_base = mbase.data(); a.mask_stride_s = mss; a.mask_stride_l = msl;
    a.causal = c.causal; a.diagonal_offset = c.off; a.scale = c.scale;
    a.dropout_p = c.p; a.seed = c.seed; a.num_threads = c.threads;
    try {
      detail::resolve_kernel(a, tune);
    } catch (const std::invalid_argument&) {
      continue;  // this kernel's dtype or shape rules exclude the case
    }
    detail::flash_attention_tuned(a, tune);
    ++runs_by[ii];
    double maxerr = 0; int64_t bad = -1;
    for (size_t i = 0; i < ref.size(); ++i) {
      double got = c.dt == DType::F32 ? of[i] : c.dt == DType::F16 ? detail::f16_to_f32(oh[i]) : detail::bf16_to_f32(oh[i]);
      double err = std::fabs(got - ref[i]);
      double lim = atol + rtol * std::fabs(ref[i]);
      if (!(err <= lim)) { if (bad < 0) bad = (int64_t)i; }
      if (err / lim > maxerr || got != got) maxerr = got != got ? INFINITY : err / lim;
    }
    worst = std::max(worst, maxerr);
    worst_by[(int)c.dt][ii] = std::max(worst_by[(int)c.dt][ii], maxerr);
    if (bad >= 0) {
      ++fails;
      double got = c.dt == DType::F32 ? of[bad] : c.dt == DType::F16 ? detail::f16_to_f32(oh[bad]) : detail::bf16_to_f32(oh[bad]);
      std::printf("FAIL kernel=%s dt=%d b=%lld hq=%lld hkv=%lld s=%lld l=%lld e=%lld ev=%lld mask=%d/%d causal=%d off=%lld p=%.2f thr=%d: idx %lld got %.6g want %.6g (err/lim %.3g)\n",
                  kname, (int)c.dt, (long long)c.b, (long long)c.hq, (long long)c.hkv, (long long)c.s,
                  (long long)c.l, (long long)c.e, (long long)c.ev, (int)c.mk, (int)c.md, (int)c.causal, (long long)c.off,
                  c.p, c.threads, (long long)bad, got, ref[bad], maxerr);
    }
  }
  return fails;
}

// The table's own rules: unknown names and kernels this CPU lacks are refused with a reason, never
// replaced; the scalar kernel runs anywhere; names are unique.
static int test_kernel_table() {
  int fails = 0;
  const uint32_t have = cpu_feature_bits();
  bool scalar = false;
  for (int i = 0; i < kernel_count(); ++i) {
    const KernelInfo& k = kernel_info(i);
    if (std::string(k.name) == "scalar_fp32") scalar = k.requires == 0;
    for (int j = 0; j < i; ++j)
      if (std::string(kernel_info(j).name) == k.name) { std::printf("FAIL: kernel name %s twice\n", k.name); ++fails; }
  }
  if (!scalar) { std::printf("FAIL: no scalar_fp32 kernel without requirements\n"); ++fails; }
  float q[4] = {0}, k[4] = {0}, v[4] = {0}, o[4];
  int64_t zero = 0;
  AttentionArgs a{};
  a.dtype = DType::F32; a.q = q; a.k = k; a.v = v; a.out = o;
  a.bh = 1; a.hq = 1; a.hkv = 1; a.s = 1; a.l = 1; a.e = 4; a.ev = 4;
  a.q_base = &zero; a.kv_base_k = &zero; a.kv_base_v = &zero;
  a.q_row_stride = 4; a.k_row_stride = 4; a.v_row_stride = 4; a.scale = 0.5f;
  auto expect_refusal = [&](const char* name, const char* want) {
    a.kernel = name;
    try {
      flash_attention(a);
      std::printf("FAIL: kernel %s ran, want a refusal containing '%s'\n", name, want); ++fails;
    } catch (const std::invalid_argument& e) {
      if (!std::strstr(e.what(), want)) { std::printf("FAIL: kernel %s refused with '%s', want '%s'\n", name, e.what(), want); ++fails; }
    }
  };
  expect_refusal("no_such_kernel", "kernel must be one of");
  uint16_t qh[4] = {0}, kh[4] = {0}, vh[4] = {0}, oh[4];
  for (int i = 0; i < kernel_count(); ++i) {
    const KernelInfo& ki = kernel_info(i);
    a.dtype = DType::F32; a.q = q; a.k = k; a.v = v; a.out = o;
    if (!(ki.dtypes & 1)) expect_refusal(ki.name, "inputs, got float32");
    // In a dtype it runs, e = 4: the features, then the head-dim rule refuse it, or it runs.
    a.dtype = (ki.dtypes & 1) ? DType::F32 : (ki.dtypes & 2) ? DType::F16 : DType::BF16;
    if (a.dtype != DType::F32) { a.q = qh; a.k = kh; a.v = vh; a.out = oh; }
    if (ki.requires & ~have) expect_refusal(ki.name, "this CPU lacks");
    else if (ki.e_multiple > 4) expect_refusal(ki.name, "multiple of");
    else { a.kernel = ki.name; flash_attention(a); }
  }
  return fails;
}

static int test_invalid() {
  int fails = 0;
  AttentionArgs a{};
  a.dtype = DType::F32; a.bh = 2; a.hq = 2; a.hkv = 3; a.s = 1; a.l = 1; a.e = 1; a.ev = 1;
  try { flash_attention(a); std::printf("FAIL: hq %% hkv != 0 did not throw\n"); ++fails; }
  catch (const std::invalid_argument&) {}
  a.hkv = 1; a.dropout_p = 1.0;
  try { flash_attention(a); std::printf("FAIL: dropout 1 did not throw\n"); ++fails; }
  catch (const std::invalid_argument&) {}
  a.dropout_p = 0; a.e = 0;
  try { flash_attention(a); std::printf("FAIL: e=0 did not throw\n"); ++fails; }
  catch (const std::invalid_argument&) {}
  return fails;
}

// A cancel word set before the call: no job starts and the call throws Cancelled; a word left at
// zero changes nothing.
static int test_cancel() {
  int fails = 0;
  const int64_t S = 64, E = 8;
  std::vector<float> q(S * E, 0.5f), k(S * E, 0.25f), v(S * E, 1.0f), o(S * E, -7.0f);
  int64_t zero = 0;
  int32_t word = 1;
  AttentionArgs a{};
  a.dtype = DType::F32; a.q = q.data(); a.k = k.data(); a.v = v.data(); a.out = o.data();
  a.bh = 1; a.hq = 1; a.hkv = 1; a.s = S; a.l = S; a.e = E; a.ev = E;
  a.q_base = &zero; a.kv_base_k = &zero; a.kv_base_v = &zero;
  a.q_row_stride = E; a.k_row_stride = E; a.v_row_stride = E; a.scale = 0.5f;
  a.kernel = "scalar_fp32"; a.cancel = &word;
  try {
    flash_attention(a);
    std::printf("FAIL: a call with its cancel word set ran\n"); ++fails;
  } catch (const Cancelled& e) {
    if (!std::strstr(e.what(), "cancelled after 0 of")) { std::printf("FAIL: cancel message '%s'\n", e.what()); ++fails; }
  }
  if (o[0] != -7.0f) { std::printf("FAIL: a cancelled call wrote out[0] = %g\n", o[0]); ++fails; }
  word = 0;
  flash_attention(a);
  if (std::fabs(o[0] - 1.0f) > 1e-6f) { std::printf("FAIL: with the cancel word clear out[0] = %g, want 1\n", o[0]); ++fails; }
  return fails;
}

// caller_only with try_pool (a mid-sized decode call made on the JS thread): with the pool free its
// workers join (last_call_pooled) and the output is bit for bit the queued call's; while another
// call holds the pool it runs every job on the calling thread, at once and with the same bits.
static int test_try_pool() {
  int fails = 0;
  const int64_t HQ = 8, HKV = 2, L = 3000, D = 64;
  std::mt19937 g(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(HQ * D), k(HKV * L * D), v(HKV * L * D), ref(HQ * D), got(HQ * D);
  for (auto* x : {&q, &k, &v}) for (float& f : *x) f = u(g);
  std::vector<int64_t> qb(HQ), kb(HKV);
  for (int64_t i = 0; i < HQ; ++i) qb[i] = i * D;
  for (int64_t i = 0; i < HKV; ++i) kb[i] = i * L * D;
  AttentionArgs a{};
  a.dtype = DType::F32; a.q = q.data(); a.k = k.data(); a.v = v.data(); a.out = ref.data();
  a.bh = HQ; a.hq = HQ; a.hkv = HKV; a.s = 1; a.l = L; a.e = D; a.ev = D;
  a.q_base = qb.data(); a.kv_base_k = kb.data(); a.kv_base_v = kb.data();
  a.q_row_stride = D; a.k_row_stride = D; a.v_row_stride = D; a.scale = 0.125f; a.num_threads = 2;
  flash_attention(a);  // queued-style: the pool
  a.out = got.data(); a.caller_only = true; a.try_pool = true;
  flash_attention(a);
  if (!last_call_pooled()) { std::printf("FAIL: try_pool with the pool free did not use it\n"); ++fails; }
  if (std::memcmp(ref.data(), got.data(), ref.size() * 4) != 0) { std::printf("FAIL: try_pool output differs from the pooled call\n"); ++fails; }
  // Another thread holds the pool with a long call (cancelled once the check is done).
  const int64_t S2 = 2048, E2 = 64;
  std::vector<float> q2(8 * S2 * E2, 0.01f), o2(8 * S2 * E2);
  std::vector<int64_t> b2(8);
  for (int64_t i = 0; i < 8; ++i) b2[i] = i * S2 * E2;
  int32_t stop = 0;
  std::atomic<bool> started{false};
  AttentionArgs big{};
  big.dtype = DType::F32; big.q = q2.data(); big.k = q2.data(); big.v = q2.data(); big.out = o2.data();
  big.bh = 8; big.hq = 8; big.hkv = 8; big.s = S2; big.l = S2; big.e = E2; big.ev = E2;
  big.q_base = b2.data(); big.kv_base_k = b2.data(); big.kv_base_v = b2.data();
  big.q_row_stride = E2; big.k_row_stride = E2; big.v_row_stride = E2; big.scale = 0.125f; big.num_threads = 2;
  big.kernel = "scalar_fp32";  // slow on purpose: seconds, so it surely holds the pool meanwhile
  big.cancel = &stop;
  std::thread holder([&] {
    started.store(true);
    try { flash_attention(big); } catch (const Cancelled&) {}
  });
  while (!started.load()) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::fill(got.begin(), got.end(), 0.0f);
  flash_attention(a);
  const bool pooled = last_call_pooled();
  __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
  holder.join();
  if (pooled) { std::printf("FAIL: try_pool used the pool while another call held it\n"); ++fails; }
  if (std::memcmp(ref.data(), got.data(), ref.size() * 4) != 0) { std::printf("FAIL: try_pool on the calling thread alone differs from the pooled call\n"); ++fails; }
  return fails;
}

// The dropout threshold is p·2^24 with p a double (as JS passes it). For each p, find seeds whose
// element (bh 0, query 0, key 0) hashes to floor(p·2^24) (dropped) and floor(p·2^24)+1 (kept), then
// check every ISA path drops exactly that. With p rounded to float, 0.7 would keep 11744051.
static int test_dropout_threshold(const std::vector<std::string>& kernels) {
  int fails = 0;
  for (double p : {0.1, 0.3, 0.7}) {
    const double t = p * 16777216.0;
    const uint32_t lo = (uint32_t)std::floor(t);
    for (uint32_t target : {lo, lo + 1}) {
      const bool want_drop = (double)target < t;
      uint32_t seed = 0; bool found = false;
      for (uint64_t sd = 0; sd < (1ull << 32); ++sd) {
        const uint32_t x = detail::mix32(detail::mix32(detail::mix32(detail::mix32((uint32_t)sd) ^ 0u) ^ 0u) ^ 0u) >> 8;
        if (x == target) { seed = (uint32_t)sd; found = true; break; }
      }
      if (!found) { std::printf("FAIL: no seed hashes to %u\n", target); ++fails; continue; }
      // One query, two keys with equal scores; V = [1, 0] / [0, 1]: out[0] = 0 iff key 0 dropped.
      for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
        const float qf[2] = {0.f, 0.f}, kf[4] = {0.f, 0.f, 0.f, 0.f}, vf[4] = {1.f, 0.f, 0.f, 1.f};
        uint16_t qh[2], kh[4], vh[4];
        for (int i = 0; i < 4; ++i) {
          kh[i] = dt == DType::F16 ? detail::f32_to_f16(kf[i]) : detail::f32_to_bf16(kf[i]);
          vh[i] = dt == DType::F16 ? detail::f32_to_f16(vf[i]) : detail::f32_to_bf16(vf[i]);
          if (i < 2) qh[i] = dt == DType::F16 ? detail::f32_to_f16(qf[i]) : detail::f32_to_bf16(qf[i]);
        }
        for (const auto& kname : kernels) {
          float of[2] = {NAN, NAN}; uint16_t oh[2] = {0x7e00, 0x7e00};
          int64_t zero = 0;
          AttentionArgs a{};
          a.dtype = dt;
          a.q = dt == DType::F32 ? (const void*)qf : qh; a.k = dt == DType::F32 ? (const void*)kf : kh;
          a.v = dt == DType::F32 ? (const void*)vf : vh; a.out = dt == DType::F32 ? (void*)of : (void*)oh;
          a.bh = 1; a.hq = 1; a.hkv = 1; a.s = 1; a.l = 2; a.e = 2; a.ev = 2;
          a.q_base = &zero; a.kv_base_k = &zero; a.kv_base_v = &zero;
          a.q_row_stride = 2; a.k_row_stride = 2; a.v_row_stride = 2;
          a.scale = 1.0f; a.dropout_p = p; a.seed = seed; a.num_threads = 1;
          a.kernel = kname.c_str();
          try {
            detail::resolve_kernel(a, tuning());
          } catch (const std::invalid_argument&) {
            continue;  // dtype or head dims this kernel does not take
          }
          detail::flash_attention_tuned(a, tuning());
          const float o0 = dt == DType::F32 ? of[0] : dt == DType::F16 ? detail::f16_to_f32(oh[0]) : detail::bf16_to_f32(oh[0]);
          if ((o0 == 0.0f) != want_drop) {
            std::printf("FAIL dropout threshold kernel=%s dt=%d p=%.17g x=%u: out[0]=%g, want %s\n", kname.c_str(), (int)dt, p,
                        target, o0, want_drop ? "dropped" : "kept");
            ++fails;
          }
        }
      }
    }
  }
  return fails;
}

int main(int argc, char** argv) {
  int ncases = argc > 1 ? std::atoi(argv[1]) : 300;
  CpuFeatures f = detect_cpu_features();
  std::printf("cpu: %s; avx2=%d fma=%d f16c=%d avx512f=%d bw=%d vl=%d dq=%d bf16=%d fp16=%d amx_tile=%d amx_bf16=%d amx_permitted=%d; L1d %lld KiB, L2 %lld KiB\n",
              f.brand, f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512dq, f.avx512_bf16, f.avx512_fp16,
              f.amx_tile, f.amx_bf16, f.amx_permitted, (long long)(f.l1d_bytes >> 10), (long long)(f.l2_bytes >> 10));
  // Every kernel this CPU has (SDPA_TEST_KERNELS=a,b narrows the list, e.g. for one sanitizer run).
  std::vector<std::string> kernels;
  const char* only = std::getenv("SDPA_TEST_KERNELS");
  for (int i = 0; i < kernel_count(); ++i) {
    const KernelInfo& k = kernel_info(i);
    const bool have = !(k.requires & ~cpu_feature_bits());
    const bool wanted = !only || ("," + std::string(only) + ",").find("," + std::string(k.name) + ",") != std::string::npos;
    std::printf("kernel %-16s %-7s %s\n", k.name, k.isa, !have ? "(missing CPU features: not run)" : wanted ? "" : "(not in SDPA_TEST_KERNELS)");
    if (have && wanted) kernels.push_back(k.name);
  }

  std::mt19937 rng(12345);
  int fails = test_invalid() + test_kernel_table() + test_cancel() + test_try_pool() + test_dropout_threshold(kernels), total = 0;
  double worst = 0;
  const int64_t dims[] = {1, 3, 8, 16, 32, 33, 64, 80, 96, 128, 256, 1024};
  for (int t = 0; t < ncases; ++t) {
    Case c{};
    c.dt = (DType)(t % 3);
    c.hkv = 1 + rng() % 2; c.hq = c.hkv * (1 + rng() % 3); c.b = 1 + rng() % 2;
    c.s = 1 + rng() % 150; c.l = 1 + rng() % 300;
    // Every 4th case uses AMX-friendly head dims (multiples of 32) so the tile paths run too.
    if (t % 4 == 0) { c.e = 32 * (1 + rng() % 4); c.ev = 32 * (1 + rng() % 4); }
    else { c.e = dims[rng() % 12]; c.ev = (rng() % 3) ? c.e : dims[rng() % 12]; }
    if (c.e * c.l > 40000) c.l = std::max<int64_t>(1, 40000 / c.e);
    int mk = rng() % 4;
    c.mk = mk == 0 ? MaskKind::Bool : mk == 1 ? MaskKind::Float : MaskKind::None;
    c.md = c.mk == MaskKind::Bool ? MaskDType::U8 : (MaskDType)(1 + rng() % 3);
    c.mask_bcast_s = rng() % 3 == 0; c.mask_bcast_h = rng() % 2;
    c.causal = rng() % 2;
    int oc = rng() % 3;
    c.off = oc == 0 ? 0 : oc == 1 ? c.l - c.s : (int64_t)(rng() % 21) - 10;
    c.scale = (rng() % 5 == 0) ? -0.3f : (float)(1.0 / std::sqrt((double)c.e)) * (rng() % 2 ? 1.f : 2.5f);
    { const double ps[] = {0.1, 0.3, 0.7}; c.p = (rng() % 4 == 0) ? ps[rng() % 3] : 0.0; }
    c.seed = rng();
    c.pad = rng() % 3 == 0 ? 5 : 0;
    c.threads = 1 + rng() % 2;
    if (c.e >= 256 && c.s * c.l > 6000) { c.s = std::min<int64_t>(c.s, 40); }
    fails += run_case(c, rng, kernels, worst);
  }
  // Big AMX-tiled shapes too (the random cases are small): the fp16 split path must keep fp16
  // accuracy over long key ranges.
  for (DType dt : {DType::F16, DType::BF16, DType::F32})
    for (int64_t d : {64, 128}) {
      Case c{};
      c.dt = dt; c.b = 1; c.hq = 2; c.hkv = 2; c.s = 300; c.l = 700; c.e = d; c.ev = d;
      c.mk = MaskKind::None; c.md = MaskDType::U8; c.causal = d == 128; c.off = 0;
      c.scale = (float)(1.0 / std::sqrt((double)d)) * 2.0f; c.p = 0.0; c.seed = 1; c.pad = 0; c.threads = 2;
      fails += run_case(c, rng, kernels, worst);
    }
  // Many query blocks per head (SDPA_BQ=32), GQA and causal offsets: consecutive jobs of a thread
  // reuse the K/V the AMX kernels packed for the head, including after a job with a shorter causal
  // key range packed it.
  detail::Tuning bq32 = tuning();
  bq32.bq = 32;
  for (DType dt : {DType::F16, DType::BF16})
    for (int64_t off : {-40, 0, 37})
      for (int threads : {1, 2}) {
        Case c{};
        c.dt = dt; c.b = 2; c.hq = 4; c.hkv = 2; c.s = 260; c.l = 333; c.e = 64; c.ev = 96;
        c.mk = MaskKind::None; c.md = MaskDType::U8; c.causal = true; c.off = off;
        c.scale = 0.2f; c.p = off == 37 ? 0.1 : 0.0; c.seed = 7; c.pad = 3; c.threads = threads;
        fails += run_case(c, rng, kernels, worst, bq32);
      }
  // Scores that keep growing along the keys (by up to ~30 octaves per key block): the AMX kernels'
  // lazy running max must fall back to the exact rescale whenever a block's probabilities outgrow it.
  // (Not fp32: scores this large lose more to fp32 rounding of the dot products than fp32's tolerance.)
  for (DType dt : {DType::BF16, DType::F16})
    for (float ramp : {0.05f, 0.5f})
      for (bool causal : {false, true}) {
        Case c{};
        c.dt = dt; c.b = 1; c.hq = 2; c.hkv = 1; c.s = 200; c.l = 600; c.e = 64; c.ev = 64;
        c.mk = MaskKind::None; c.md = MaskDType::U8; c.causal = causal; c.off = c.l - c.s;
        c.scale = 0.125f; c.p = 0.0; c.seed = 3; c.pad = 0; c.threads = 2; c.kramp = ramp;
        fails += run_case(c, rng, kernels, worst);
      }
  // A running max that jumps inside and between key blocks, every dtype (fp32 too: the scores stay
  // moderate): the AVX2 kernel's lazy max (p = 2^(s - m) in the QK tile) must redo such a block
  // on the exact path. S covers whole and partial 24-query strips; causal skips and masks tiles.
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int64_t jump : {200, 300, 517})
      for (bool causal : {false, true}) {
        Case c{};
        c.dt = dt; c.b = 1; c.hq = 2; c.hkv = 1; c.s = 250; c.l = 640; c.e = 64; c.ev = 40;
        c.mk = MaskKind::None; c.md = MaskDType::U8; c.causal = causal; c.off = causal ? c.l - c.s : 0;
        c.scale = 0.125f; c.p = 0.0; c.seed = 5; c.pad = 0; c.threads = 2; c.kjump = jump;
        fails += run_case(c, rng, kernels, worst);
      }
  // Decode shapes (the decode kernels take S <= 16): S = 1..16, GQA groups 1..8, key counts that
  // are no multiple of any block (1, 63, 65, 517, 1500: several split-KV chunks and a partial last
  // block), head dims 16..128 (every W multiple), masks, causal offsets that cut inside a block or
  // hide every key from some rows, dropout, 1 and 2 threads; and forced key blocks (16, 48, 512).
  for (int t = 0; t < 90; ++t) {
    Case c{};
    c.dt = (DType)(t % 3);
    const int64_t groups[] = {1, 2, 3, 4, 8};
    c.hkv = 1 + rng() % 2; c.hq = c.hkv * groups[rng() % 5]; c.b = 1 + rng() % 2;
    c.s = 1 + rng() % 16;
    const int64_t ls[] = {1, 63, 65, 517, 1500};
    c.l = ls[rng() % 5];
    const int64_t ds[] = {16, 32, 64, 80, 128};
    c.e = ds[rng() % 5]; c.ev = rng() % 3 ? c.e : ds[rng() % 5];
    int mk = rng() % 4;
    c.mk = mk == 0 ? MaskKind::Bool : mk == 1 ? MaskKind::Float : MaskKind::None;
    c.md = c.mk == MaskKind::Bool ? MaskDType::U8 : (MaskDType)(1 + rng() % 3);
    c.mask_bcast_s = rng() % 3 == 0; c.mask_bcast_h = rng() % 2;
    c.causal = rng() % 2;
    int oc = rng() % 3;
    c.off = oc == 0 ? c.l - c.s : oc == 1 ? (int64_t)(rng() % (c.l + 1)) - c.s : -(int64_t)(rng() % 4);
    c.scale = (float)(1.0 / std::sqrt((double)c.e)) * (rng() % 2 ? 1.f : 3.f);
    c.p = rng() % 5 == 0 ? 0.3 : 0.0;
    c.seed = rng();
    c.pad = rng() % 3 == 0 ? 16 : 0;
    c.threads = 1 + rng() % 2;
    detail::Tuning tb = tuning();
    const int64_t bks[] = {0, 0, 16, 48, 512};
    tb.bk = bks[rng() % 5];
    fails += run_case(c, rng, kernels, worst, tb);
  }
  // Many tiny calls on more pool threads than there are jobs' worth of work: a worker that wakes
  // after the caller took every job must not enter the closed region (its fn is gone), and one
  // that entered must be waited for. Each call is still checked against the reference.
  for (int it = 0; it < 200; ++it) {
    Case c{};
    c.dt = DType::F32; c.b = 1; c.hq = 4; c.hkv = 2; c.s = 3 + it % 5; c.l = 7; c.e = 8; c.ev = 8;
    c.mk = MaskKind::None; c.md = MaskDType::U8; c.causal = it % 2; c.off = 0;
    c.scale = 0.35f; c.p = 0.0; c.seed = 9; c.pad = 0; c.threads = 2 + it % 3;
    fails += run_case(c, rng, kernels, worst);
  }
  const char* dn[] = {"f32", "f16", "bf16"};
  for (int d = 0; d < 3; ++d) {
    std::printf("worst err/tolerance %-4s:", dn[d]);
    for (size_t ii = 0; ii < kernels.size(); ++ii) std::printf(" %s %.3f", kernels[ii].c_str(), worst_by[d][ii]);
    std::printf("\n");
  }
  std::printf("case-runs per kernel:");
  for (size_t ii = 0; ii < kernels.size(); ++ii) { std::printf(" %s %d", kernels[ii].c_str(), runs_by[ii]); total += runs_by[ii]; }
  std::printf("\n");
  for (size_t ii = 0; ii < kernels.size(); ++ii)
    if (runs_by[ii] == 0) { std::printf("FAIL: kernel %s ran no case\n", kernels[ii].c_str()); ++fails; }
  std::printf("%d case-runs over %zu kernels, %d failed; worst err/tolerance %.3f\n", total, kernels.size(), fails, worst);
  return fails ? 1 : 0;
}
