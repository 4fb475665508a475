// The prefill kernels' blocking (query rows per job, keys per block, job count), shared by the
// native dispatcher (flash_attention.cc: plan_prefill) and the wasm32 build (kernel_wasm.cc), so
// both split a call into the same jobs. Free of the C++ library: the wasm build has none.
#pragma once
#include "internal.h"

namespace sdpa {
namespace detail {

static inline int64_t plan_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t plan_max(int64_t a, int64_t b) { return a > b ? a : b; }

static inline void plan_prefill_blocking(Plan& p, const Tuning& t) {
  const AttentionArgs& a = p.a;
  // 128 query rows: Qt and the score tile stay in L1/L2 and reuse each K/V block for 128 queries
  // (measured best of 32/64/128 for D=64, S=2048).
  // Smaller when there are too few (head × block) jobs to keep every thread busy.
  // bf16/fp16 (AMX) take 256 rows from S = 2048 on: their Vᵀ block is repacked once per job, so
  // more rows amortise it; shorter sequences keep 128 so there are enough jobs to balance.
  int64_t bq = t.bq > 0 ? t.bq : a.dtype != DType::F32 && a.s >= 2048 ? 256 : 128;
  bq = plan_min(plan_max(bq, 1), 512);  // apply_mask holds <= 256 vectors of queries
  while (bq > 16 && a.bh * ((a.s + bq - 1) / bq) < 2 * (int64_t)p.nthreads) bq /= 2;
  bq = plan_min(bq, plan_max(a.s, 1));
  p.bq = bq;
  // Keys per block: the score tile bk×bq fp32 plus K/V blocks should sit in L2 (2 MiB/core here);
  // big head dims get fewer keys so converted K/V blocks stay small.
  int64_t bk = t.bk;
  if (bk <= 0) {
    const int64_t dims = a.e + a.ev;
    bk = dims <= 512 ? 128 : 64;
    // fp32 causal: 64-key blocks. The diagonal blocks (masked, half wasted) shrink, and the strip's
    // K / V / score blocks fit L1 better; measured +3–20% (1 thread, D = 64/128, S = 512..4096) on
    // the target machine, non-causal fp32 neutral and AMX bf16 3–7% slower, so only here.
    if (a.dtype == DType::F32 && a.causal) bk = 64;
  }
  p.bk = plan_max(bk, 16);
  p.nqb = (a.s + p.bq - 1) / p.bq;
  p.njobs = a.bh * p.nqb;
}

}  // namespace detail
}  // namespace sdpa
