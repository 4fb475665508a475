// Decode benchmark (no node): K/V bytes per second of flash_attention for one query per head
// (S=1 by default) over long KV caches, against the streaming-read bandwidth measured in the same
// run (stream_read.h) with the same thread count. H=32 query heads over Hkv=8 kv heads, D=128.
// The K/V are rotated over copies totalling >= 256 MiB so each call reads DRAM, not the L3 the
// previous call filled (an LLM's other layers evict a layer's cache between its tokens).
// Usage: bench_decode [--dtype f32|f16|bf16] [--l 4096,8192] [--s 1] [--threads 1,2] [--kernel name]
//                     [--hq 32] [--hkv 8] [--d 128] [--huge 0|1] [--min-ms 400] [--bk n] [--layout bhld|blhd]
//                     [--copies n]   (1 with a small L: K/V cache-resident, the kernel's compute rate)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../flash_attention.h"
#include "../internal.h"
#include "stream_read.h"

using namespace sdpa;

static std::vector<int64_t> list(const std::string& s) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < s.size()) { size_t j = s.find(',', i); if (j == std::string::npos) j = s.size(); out.push_back(std::atoll(s.substr(i, j - i).c_str())); i = j + 1; }
  return out;
}

int main(int argc, char** argv) {
  std::string only_dt, kernel, layout = "bhld";
  std::vector<int64_t> ls = {4096, 8192, 16384, 32768}, ths = {1, 2};
  int64_t S = 1, HQ = 32, HKV = 8, D = 128;
  bool huge = false; double min_ms = 400; int force_copies = 0;
  detail::Tuning tune;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--dtype") only_dt = v;
    else if (k == "--l") ls = list(v);
    else if (k == "--s") S = std::atoll(v.c_str());
    else if (k == "--threads") ths = list(v);
    else if (k == "--kernel") kernel = v;
    else if (k == "--hq") HQ = std::atoll(v.c_str());
    else if (k == "--hkv") HKV = std::atoll(v.c_str());
    else if (k == "--d") D = std::atoll(v.c_str());
    else if (k == "--huge") huge = std::atoi(v.c_str()) != 0;
    else if (k == "--min-ms") min_ms = std::atof(v.c_str());
    else if (k == "--bk") tune.bk = std::atoll(v.c_str());
    else if (k == "--layout") layout = v;
    else if (k == "--copies") force_copies = std::atoi(v.c_str());  // 1: K/V stay cache-resident when small (compute rate)
  }
  // The machine's limit, same run, same pages (4 KiB or huge), per thread count.
  std::vector<double> stream(ths.size());
  {
    const size_t sb = (size_t)512 << 20;
    uint8_t* buf = (uint8_t*)bench_alloc(sb, huge);
    for (size_t t = 0; t < ths.size(); ++t) stream[t] = stream_read_gbs(buf, sb, (int)ths[t], 5);
    std::free(buf);
  }
  std::printf("stream read (512 MiB, %s pages):", huge ? "huge" : "4 KiB");
  for (size_t t = 0; t < ths.size(); ++t) std::printf(" %lld thread(s) %.2f GB/s", (long long)ths[t], stream[t]);
  std::printf("\n%-5s %6s %3s %2s %-14s %7s %9s %9s %8s %8s %7s\n", "dtype", "L", "S", "T", "kernel", "copies", "best ms", "med ms", "GB/s", "stream", "ratio");
  const char* dtn[] = {"f32", "f16", "bf16"};
  const int64_t B = 1;
  for (int dti = 0; dti < 3; ++dti) {
    if (!only_dt.empty() && only_dt != dtn[dti]) continue;
    const DType dt = (DType)dti;
    const size_t esz = dt == DType::F32 ? 4 : 2;
    for (int64_t L : ls) {
      const size_t kv_elems = (size_t)(B * HKV * L * D), kv_bytes = kv_elems * esz;
      const int copies = force_copies > 0 ? force_copies : (int)std::max<size_t>(1, ((size_t)256 << 20) / (2 * kv_bytes) + ((((size_t)256 << 20) % (2 * kv_bytes)) ? 1 : 0));
      std::vector<void*> ks(copies), vs(copies);
      uint32_t x = 12345;
      auto fill = [&](void* p) {
        for (size_t i = 0; i < kv_elems; ++i) {
          x = x * 1664525u + 1013904223u;
          const float f = (float)(x >> 8) / 16777216.0f * 2.0f - 1.0f;
          if (dt == DType::F32) ((float*)p)[i] = f;
          else ((uint16_t*)p)[i] = dt == DType::F16 ? detail::f32_to_f16(f) : detail::f32_to_bf16(f);
        }
      };
      for (int c = 0; c < copies; ++c) { ks[c] = bench_alloc(kv_bytes, huge); vs[c] = bench_alloc(kv_bytes, huge); fill(ks[c]); fill(vs[c]); }
      std::vector<uint8_t> q((size_t)(B * HQ * S * D) * esz), o((size_t)(B * HQ * S * D) * esz);
      for (size_t i = 0; i < q.size() / esz; ++i) {
        const float f = std::sin((float)i);
        if (dt == DType::F32) ((float*)q.data())[i] = f;
        else ((uint16_t*)q.data())[i] = dt == DType::F16 ? detail::f32_to_f16(f) : detail::f32_to_bf16(f);
      }
      std::vector<int64_t> qb(B * HQ), kb(B * HKV);
      for (int64_t i = 0; i < B * HQ; ++i) qb[i] = i * S * D;
      // bhld: [B, Hkv, L, D] (rows of a head contiguous); blhd: [B, L, Hkv, D] (a KV cache written token by token).
      const bool blhd = layout == "blhd";
      for (int64_t i = 0; i < B * HKV; ++i) kb[i] = blhd ? i * D : i * L * D;
      for (size_t t = 0; t < ths.size(); ++t) {
        AttentionArgs a{};
        a.dtype = dt; a.q = q.data(); a.out = o.data();
        a.bh = B * HQ; a.hq = HQ; a.hkv = HKV; a.s = S; a.l = L; a.e = D; a.ev = D;
        a.q_base = qb.data(); a.kv_base_k = kb.data(); a.kv_base_v = kb.data();
        a.q_row_stride = D; a.k_row_stride = blhd ? HKV * D : D; a.v_row_stride = a.k_row_stride;
        a.mask_kind = MaskKind::None; a.scale = 1.0f / std::sqrt((float)D); a.num_threads = (int32_t)ths[t];
        a.kernel = kernel.empty() ? nullptr : kernel.c_str();
        std::vector<double> times;
        double total = 0;
        for (int rep = -copies; total < min_ms || (int)times.size() < 2 * copies; ++rep) {
          a.k = ks[(rep + copies) % copies]; a.v = vs[(rep + copies) % copies];
          const auto t0 = std::chrono::steady_clock::now();
          detail::flash_attention_tuned(a, tune);
          const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
          if (rep >= 0) { times.push_back(ms); total += ms; }  // the first round warms pool, scratch, pages
          if (times.size() > 5000) break;
        }
        std::sort(times.begin(), times.end());
        const double best = times.front(), med = times[times.size() / 2];
        const double gbs = 2.0 * kv_bytes / med / 1e6;
        std::printf("%-5s %6lld %3lld %2lld %-14s %7d %9.4f %9.4f %8.2f %8.2f %6.0f%%\n", dtn[dti], (long long)L, (long long)S, (long long)ths[t],
                    kernel_name_for(a), copies, best, med, gbs, stream[t], 100.0 * gbs / stream[t]);
        std::fflush(stdout);
      }
      for (int c = 0; c < copies; ++c) { std::free(ks[c]); std::free(vs[c]); }
    }
  }
  return 0;
}
