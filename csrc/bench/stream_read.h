// Streaming-read bandwidth probe (bench_decode, stream_read): `threads` threads each read their
// slice of one buffer once per pass (16-byte loads summed into 4 chains, enough to saturate DRAM
// from one core), best pass of `passes`; bytes read / wall time of the slowest thread. The buffer
// is well past the last-level cache so every pass comes from DRAM, as a decode call's K/V do.
#pragma once
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <emmintrin.h>

// A page-aligned buffer; `huge`: ask for transparent huge pages (madvise), else forbid them, so the
// probe (and the decode benchmark) can show what the 4 KiB-page TLB misses cost.
inline void* bench_alloc(size_t bytes, bool huge) {
  void* p = nullptr;
  const size_t align = 2u << 20;
  bytes = (bytes + align - 1) / align * align;
  if (posix_memalign(&p, align, bytes) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
  std::memset(p, 1, bytes);  // fault every page in now (not inside a timed pass)
  return p;
}

inline double stream_read_gbs(const uint8_t* buf, size_t bytes, int threads, int passes) {
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    std::vector<std::thread> th;
    std::vector<double> secs(threads);
    std::atomic<int> ready{0};
    const size_t slice = bytes / threads / 64 * 64;
    for (int t = 0; t < threads; ++t) {
      th.emplace_back([&, t] {
        const __m128i* p = (const __m128i*)(buf + t * slice);
        const size_t n = slice / 16;
        ready.fetch_add(1);
        while (ready.load() < threads) {}  // start together
        const auto t0 = std::chrono::steady_clock::now();
        __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i + 4 <= n; i += 4) {
          a0 = _mm_add_epi64(a0, _mm_load_si128(p + i));
          a1 = _mm_add_epi64(a1, _mm_load_si128(p + i + 1));
          a2 = _mm_add_epi64(a2, _mm_load_si128(p + i + 2));
          a3 = _mm_add_epi64(a3, _mm_load_si128(p + i + 3));
        }
        const __m128i s = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
        secs[t] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        sink.fetch_add((uint64_t)_mm_cvtsi128_si64(s));
      });
    }
    for (auto& x : th) x.join();
    const double s = *std::max_element(secs.begin(), secs.end());
    best = std::max(best, (double)slice * threads / s / 1e9);
  }
  return best;
}
