// FMA-throughput probe: the fp32 FLOP/s limit of this machine for one ISA's vector width, measured
// (not computed from a nominal clock), so benchmarks can print "% of FMA peak" from the same run.
// Each thread runs independent FMA chains on registers only (no memory traffic), enough of them to
// cover the FMA latency on two pipes. FLOPs counted as 2 per lane per FMA.
// Usage: fma_peak [--isa avx2|avx512] [--threads 1,2] [--ms 300] [--chains 12|8]
// Output: one line per thread count, "fma_peak isa=avx2 threads=1 gflops=123.4".
// --chains 8 (avx2): 8 accumulators instead of 12, the count a 4-row × 2-vector register tile has
// (the AVX2 decode kernel's QK and PV tiles): what an 8-deep FMA tile can reach at best on this
// core, when the FMA latency times the pipes exceeds 8 (docs/performance-cpu.md, session 8).
// Build: make -C csrc fma_peak (own -m flags per function through target attributes; the avx512
// loop only runs when the CPU has AVX-512F).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

// 12 independent accumulators (≥ 2 pipes × 4-5 cycles latency), `iters` × 12 FMAs of 8 (16)
// lanes. In asm so the compiler can neither keep the chains in memory nor fold them.
#define SDPA_FMA12(R, M, C) \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "0\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "1\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "2\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "3\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "4\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "5\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "6\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "7\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "8\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "9\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "10\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "11\n\t"

__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2(long iters, float seed) {
  float out[8];
  const float m = 0.999999f, c = 1e-7f;
  __asm__ volatile(
      "vbroadcastss %[seed], %%ymm0\n\t"
      "vmovaps %%ymm0, %%ymm1\n\t vmovaps %%ymm0, %%ymm2\n\t vmovaps %%ymm0, %%ymm3\n\t"
      "vmovaps %%ymm0, %%ymm4\n\t vmovaps %%ymm0, %%ymm5\n\t vmovaps %%ymm0, %%ymm6\n\t"
      "vmovaps %%ymm0, %%ymm7\n\t vmovaps %%ymm0, %%ymm8\n\t vmovaps %%ymm0, %%ymm9\n\t"
      "vmovaps %%ymm0, %%ymm10\n\t vmovaps %%ymm0, %%ymm11\n\t"
      "vbroadcastss %[m], %%ymm15\n\t vbroadcastss %[c], %%ymm14\n\t"
      "1:\n\t" SDPA_FMA12("ymm", 0, 0) "dec %[n]\n\t jnz 1b\n\t"
      "vaddps %%ymm1, %%ymm0, %%ymm0\n\t vaddps %%ymm11, %%ymm0, %%ymm0\n\t vmovups %%ymm0, %[out]"
      : [n] "+r"(iters), [out] "=m"(out)
      : [seed] "m"(seed), [m] "m"(m), [c] "m"(c)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm14", "xmm15", "cc");
  return out[0];
}

#define SDPA_FMA8(R) \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "0\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "1\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "2\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "3\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "4\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "5\n\t" \
  "vfmadd231ps %%" R "14, %%" R "15, %%" R "6\n\t" "vfmadd231ps %%" R "14, %%" R "15, %%" R "7\n\t"

// The same with 8 chains: `iters` × 8 FMAs.
__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2_8(long iters, float seed) {
  float out[8];
  const float m = 0.999999f, c = 1e-7f;
  __asm__ volatile(
      "vbroadcastss %[seed], %%ymm0\n\t"
      "vmovaps %%ymm0, %%ymm1\n\t vmovaps %%ymm0, %%ymm2\n\t vmovaps %%ymm0, %%ymm3\n\t"
      "vmovaps %%ymm0, %%ymm4\n\t vmovaps %%ymm0, %%ymm5\n\t vmovaps %%ymm0, %%ymm6\n\t vmovaps %%ymm0, %%ymm7\n\t"
      "vbroadcastss %[m], %%ymm15\n\t vbroadcastss %[c], %%ymm14\n\t"
      "1:\n\t" SDPA_FMA8("ymm") "dec %[n]\n\t jnz 1b\n\t"
      "vaddps %%ymm1, %%ymm0, %%ymm0\n\t vaddps %%ymm7, %%ymm0, %%ymm0\n\t vmovups %%ymm0, %[out]"
      : [n] "+r"(iters), [out] "=m"(out)
      : [seed] "m"(seed), [m] "m"(m), [c] "m"(c)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm14", "xmm15", "cc");
  return out[0];
}

__attribute__((target("avx512f"), noinline)) static float fma_loop_avx512(long iters, float seed) {
  float out[16];
  const float m = 0.999999f, c = 1e-7f;
  __asm__ volatile(
      "vbroadcastss %[seed], %%zmm0\n\t"
      "vmovaps %%zmm0, %%zmm1\n\t vmovaps %%zmm0, %%zmm2\n\t vmovaps %%zmm0, %%zmm3\n\t"
      "vmovaps %%zmm0, %%zmm4\n\t vmovaps %%zmm0, %%zmm5\n\t vmovaps %%zmm0, %%zmm6\n\t"
      "vmovaps %%zmm0, %%zmm7\n\t vmovaps %%zmm0, %%zmm8\n\t vmovaps %%zmm0, %%zmm9\n\t"
      "vmovaps %%zmm0, %%zmm10\n\t vmovaps %%zmm0, %%zmm11\n\t"
      "vbroadcastss %[m], %%zmm15\n\t vbroadcastss %[c], %%zmm14\n\t"
      "1:\n\t" SDPA_FMA12("zmm", 0, 0) "dec %[n]\n\t jnz 1b\n\t"
      "vaddps %%zmm1, %%zmm0, %%zmm0\n\t vaddps %%zmm11, %%zmm0, %%zmm0\n\t vmovups %%zmm0, %[out]"
      : [n] "+r"(iters), [out] "=m"(out)
      : [seed] "m"(seed), [m] "m"(m), [c] "m"(c)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm14", "xmm15", "cc");
  return out[0];
}

int main(int argc, char** argv) {
  std::string isa = "avx2", threads_s = "1,2";
  double ms = 300;
  int chains = 12;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--isa") isa = argv[i + 1];
    else if (k == "--chains") chains = std::atoi(argv[i + 1]);
    else if (k == "--threads") threads_s = argv[i + 1];
    else if (k == "--ms") ms = std::atof(argv[i + 1]);
  }
  __builtin_cpu_init();
  const int lanes = isa == "avx512" ? 16 : 8;
  if (isa == "avx512" ? !__builtin_cpu_supports("avx512f") : !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    std::fprintf(stderr, "fma_peak: this CPU lacks %s\n", isa.c_str());
    return 2;
  }
  if (chains != 12 && !(chains == 8 && isa == "avx2")) {
    std::fprintf(stderr, "fma_peak: --chains takes 12, or 8 with --isa avx2; got %d\n", chains);
    return 2;
  }
  auto loop = [&](long iters, float seed) { return isa == "avx512" ? fma_loop_avx512(iters, seed) : chains == 8 ? fma_loop_avx2_8(iters, seed) : fma_loop_avx2(iters, seed); };
  std::vector<int> tcounts;
  for (size_t p = 0; p < threads_s.size();) {
    size_t q = threads_s.find(',', p);
    if (q == std::string::npos) q = threads_s.size();
    tcounts.push_back(std::atoi(threads_s.substr(p, q - p).c_str()));
    p = q + 1;
  }
  // Calibrate a chunk of ~5 ms on one thread, then each thread repeats chunks; the best of 5 rounds
  // of `ms`/5 counts (neighbours on a shared machine only ever slow a round down).
  long chunk = 1 << 16;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    volatile float sink = loop(chunk, 1.0f); (void)sink;
    double el = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (el > 5) break;
    chunk *= 2;
  }
  for (int nt : tcounts) {
    if (nt < 1) continue;
    double best = 0;
    for (int round = 0; round < 5; ++round) {
      std::atomic<int> go{0};
      std::vector<double> rate(nt, 0);
      std::vector<std::thread> th;
      for (int t = 0; t < nt; ++t)
        th.emplace_back([&, t] {
          while (!go.load()) {}
          auto t0 = std::chrono::steady_clock::now();
          long done = 0; double el = 0;
          do {
            volatile float sink = loop(chunk, 1.0f + t); (void)sink;
            done += chunk;
            el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          } while (el * 1e3 < ms / 5);
          rate[t] = done * (double)chains * lanes * 2 / el / 1e9;
        });
      go.store(1);
      for (auto& x : th) x.join();
      double sum = 0;
      for (double r : rate) sum += r;
      best = std::max(best, sum);
    }
    if (chains == 12) std::printf("fma_peak isa=%s threads=%d gflops=%.1f\n", isa.c_str(), nt, best);
    else std::printf("fma_peak isa=%s chains=%d threads=%d gflops=%.1f\n", isa.c_str(), chains, nt, best);
  }
  return 0;
}
