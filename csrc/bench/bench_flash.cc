// Standalone benchmark (no node): GFLOP/s of flash_attention for B=1, H=8, D=64/128,
// S=L=512..4096, fp32/bf16/fp16, causal and not. FLOPs = 4·B·H·S·L·D, causal counts half.
// Usage: bench_flash [--dtype f32|f16|bf16] [--d 64] [--s 2048] [--causal 0|1] [--threads 2] [--min-ms 300]
//                    [--clock wall|cpu] [--kernel name]   (default: the best kernel for each call)
//                    [--bq n] [--bk n]   (force the blocking: detail::Tuning; 0 = the kernel's choice)
// --clock cpu (1 thread only: the calling thread runs every job) times each call by the thread's CPU
// time, so being preempted by other processes on a shared machine does not count; GFLOP/s is then per
// busy core-second (still slowed by neighbours sharing caches / the core).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <ctime>
#include <vector>

#include "../flash_attention.h"
#include "../internal.h"

using namespace sdpa;

#ifdef SDPA_PROFILE
// Phase cycle counters the kernels add to (kernel_impl.h SDPA_PROF); summed over threads is not
// possible with thread_local, so the profile build is meant for --threads 1.
thread_local unsigned long long prof_t[8], prof_last;
#endif

int main(int argc, char** argv) {
  std::string only_dt, kernel; int64_t only_d = 0, only_s = 0; int only_c = -1, threads = 2; double min_ms = 300; bool cpu_clock = false;
  detail::Tuning tune;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--dtype") only_dt = argv[i + 1];
    else if (k == "--d") only_d = std::atoll(argv[i + 1]);
    else if (k == "--s") only_s = std::atoll(argv[i + 1]);
    else if (k == "--causal") only_c = std::atoi(argv[i + 1]);
    else if (k == "--threads") threads = std::atoi(argv[i + 1]);
    else if (k == "--min-ms") min_ms = std::atof(argv[i + 1]);
    else if (k == "--clock") cpu_clock = std::string(argv[i + 1]) == "cpu";
    else if (k == "--kernel") kernel = argv[i + 1];
    else if (k == "--bq") tune.bq = std::atoll(argv[i + 1]);
    else if (k == "--bk") tune.bk = std::atoll(argv[i + 1]);
  }
  if (cpu_clock && threads != 1) { std::fprintf(stderr, "--clock cpu needs --threads 1\n"); return 2; }
  auto now_ms = [cpu_clock] {
    timespec ts;
    clock_gettime(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  };
  const int64_t B = 1, H = 8;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  std::printf("%-5s %4s %5s %6s %-12s %9s %8s %10s\n", "dtype", "D", "S=L", "causal", "kernel", "ms", "GFLOP/s", "ws/thread");
  const char* dtn[] = {"f32", "f16", "bf16"};
  for (int dti = 0; dti < 3; ++dti) {
    if (!only_dt.empty() && only_dt != dtn[dti]) continue;
    DType dt = (DType)dti;
    for (int64_t D : {64, 128}) {
      if (only_d && D != only_d) continue;
      for (int64_t S : {512, 1024, 2048, 4096}) {
        if (only_s && S != only_s) continue;
        const size_t n = (size_t)(B * H * S * D), esz = dt == DType::F32 ? 4 : 2;
        std::vector<uint8_t> q(n * esz), k(n * esz), v(n * esz), o(n * esz);
        for (size_t i = 0; i < n; ++i) {
          float x[3] = {U(rng), U(rng), U(rng)};
          uint8_t* dst[3] = {q.data(), k.data(), v.data()};
          for (int t = 0; t < 3; ++t) {
            if (dt == DType::F32) std::memcpy(dst[t] + i * 4, &x[t], 4);
            else { uint16_t h = dt == DType::F16 ? detail::f32_to_f16(x[t]) : detail::f32_to_bf16(x[t]); std::memcpy(dst[t] + i * 2, &h, 2); }
          }
        }
        std::vector<int64_t> base(B * H);
        for (int64_t i = 0; i < B * H; ++i) base[i] = i * S * D;
        for (int causal = 0; causal < 2; ++causal) {
          if (only_c >= 0 && causal != only_c) continue;
          AttentionArgs a{};
          a.dtype = dt; a.q = q.data(); a.k = k.data(); a.v = v.data(); a.out = o.data();
          a.bh = B * H; a.hq = H; a.hkv = H; a.s = S; a.l = S; a.e = D; a.ev = D;
          a.q_base = base.data(); a.kv_base_k = base.data(); a.kv_base_v = base.data();
          a.q_row_stride = D; a.k_row_stride = D; a.v_row_stride = D;
          a.mask_kind = MaskKind::None; a.causal = causal; a.diagonal_offset = 0;
          a.scale = 1.0f / std::sqrt((float)D); a.num_threads = threads;
          a.kernel = kernel.empty() ? nullptr : kernel.c_str();
          detail::flash_attention_tuned(a, tune);  // warm-up: pool threads, scratch, caches
          // Best of the timed calls: other processes share this machine, and the fastest call is the
          // one least disturbed by them (the mean mostly measures the neighbours).
          int reps = 0; double total = 0, ms = 1e300;
          do {
            const double t0 = now_ms();
            detail::flash_attention_tuned(a, tune);
            const double t = now_ms() - t0;
            ms = std::min(ms, t); total += t;
            ++reps;
          } while (total < min_ms && reps < 1000);
#ifdef SDPA_PROFILE
          {
            unsigned long long tot = 0;
            for (int i = 0; i < 8; ++i) tot += prof_t[i];
            std::printf("  phases %%:");
            for (int i = 0; i < 8; ++i) std::printf(" %d:%.1f", i, tot ? 100.0 * prof_t[i] / tot : 0.0);
            std::printf("  (cycles/flop*1000 %.2f)\n", tot / (4.0 * B * H * S * S * D * (causal ? 0.5 : 1.0) * (reps + 1)) * 1000);
            for (int i = 0; i < 8; ++i) prof_t[i] = 0;
          }
#endif
          double flops = 4.0 * B * H * S * S * D * (causal ? 0.5 : 1.0);
          std::printf("%-5s %4lld %5lld %6d %-12s %9.3f %8.1f %10llu\n", dtn[dti], (long long)D, (long long)S, causal,
                      kernel_name_for(a), ms, flops / ms / 1e6, (unsigned long long)workspace_bytes_per_thread(a));
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}
