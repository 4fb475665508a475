// Native CPU flash attention for sdpa-dispatch. Pure C++17: no N-API here (binding.cc is the only
// file that knows about Node), so the kernel can be tested and benchmarked without node.
#pragma once
#ifdef SDPA_FREESTANDING
#include "freestanding.h"  // the wasm32 build: no C++ library (kernel_wasm.cc)
#else
#include <cstdint>
#include <stdexcept>
#endif

namespace sdpa {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2 };
enum class MaskKind : int32_t { None = 0, Bool = 1, Float = 2 };
enum class MaskDType : int32_t { U8 = 0, F32 = 1, F16 = 2, BF16 = 3 };  // bool masks are u8 0/1

struct AttentionArgs {
  DType dtype;                      // q, k, v and out share it
  const void* q; const void* k; const void* v; void* out;
  int64_t bh;                       // batch * hq (flattened query heads); out is contiguous [bh, s, ev]
  int64_t hq, hkv;                  // flat head i uses kv head (i % hq) / (hq / hkv) of batch i / hq
  int64_t s, l, e, ev;
  const int64_t* q_base;            // length bh: element offset of row 0 of each query head
  const int64_t* kv_base_k;         // length (bh/hq)*hkv, index b*hkv + g
  const int64_t* kv_base_v;         // same indexing
  int64_t q_row_stride, k_row_stride, v_row_stride;   // elements between consecutive rows
  MaskKind mask_kind; MaskDType mask_dtype; const void* mask;
  const int64_t* mask_base;         // length bh (may repeat offsets: broadcasting)
  int64_t mask_stride_s, mask_stride_l;   // may be 0 (broadcast)
  bool causal; int64_t diagonal_offset;   // key j visible to query i iff j <= i + diagonal_offset
  float scale;                      // multiply q·k by this
  // double, not float: the rule compares (x>>8) < p·2^24 with p as JS gives it (a double); a float
  // p moves that threshold across an integer for some p (0.7: 11744051.2 vs 11744051.0).
  double dropout_p; uint32_t seed;  // docs/design.md §2 dropout RNG (bh = flat query-head index)
  int32_t num_threads;              // 0 = SDPA_NUM_THREADS or all cores
  // A kernel of the table by name (kernel_info), or null for the best one that can run the call.
  // A named kernel whose CPU features are missing or whose shape rules the call breaks is refused
  // (std::invalid_argument): the caller chose it, so it is never silently replaced.
  const char* kernel;
  // Non-null: a cancel word the caller may set (to nonzero, from any thread) while the call runs.
  // It is read between jobs: jobs already started finish, no new one starts, and the call throws
  // sdpa::Cancelled. `out` is then partly written; the caller discards it.
  const int32_t* cancel;
  // true: every job runs on the calling thread, one after another, with the plan (blocking,
  // split-KV count) of num_threads threads, so the result is bit for bit the pooled one. For tiny
  // calls made on the JS thread: they never wait for the pool (another call may hold it) nor for a
  // worker's wake-up.
  bool caller_only;
  // With caller_only: the pool's workers join too when the pool is free (no other call holds it),
  // else every job still runs here. For mid-sized decode calls made on the JS thread: the hop to a
  // libuv thread and back cost more than the kernel's own time there, and the workers still help.
  bool try_pool;
};

#ifndef SDPA_FREESTANDING
// Thrown by flash_attention when the args' cancel word was set before every job ran.
struct Cancelled : std::runtime_error {
  using std::runtime_error::runtime_error;
};
#endif

// Computes out = softmax(scale·q·kᵀ (+mask, causal), fp32 accumulation) · v. Blocking; uses the
// persistent thread pool. Throws std::invalid_argument / std::runtime_error on bad args.
void flash_attention(const AttentionArgs& args);

#ifndef SDPA_FREESTANDING
// Whether the last flash_attention call made on this thread ran on more than one thread (its jobs
// shared with the pool's workers). For try_pool calls: false when another call held the pool.
bool last_call_pooled();
#endif

// CPU features the kernels require, as bits of KernelInfo::requires (names: feature_name).
enum Feature : uint32_t {
  kFeatAvx2 = 1u << 0, kFeatFma = 1u << 1, kFeatF16c = 1u << 2, kFeatAvx512f = 1u << 3,
  kFeatAvx512bw = 1u << 4, kFeatAvx512vl = 1u << 5, kFeatAvx512dq = 1u << 6, kFeatAvx512Bf16 = 1u << 7,
  kFeatAmxTile = 1u << 8, kFeatAmxBf16 = 1u << 9,
  kFeatAmxPermission = 1u << 10,  // the OS granted this process AMX tile data (Linux arch_prctl)
};
constexpr int kFeatureCount = 11;
// Lower-case names as Linux /proc/cpuinfo spells the flags ("avx512_bf16", "amx_tile"), and
// "amx_os_permission" for the OS grant.
const char* feature_name(int bit_index);

struct CpuFeatures {
  bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512_bf16, avx512_fp16, amx_tile, amx_bf16, amx_permitted;
  char brand[49];                 // cpuid brand string, e.g. "AMD EPYC 7B13 64-Core Processor"
  int64_t l1d_bytes, l2_bytes;    // per-core data caches (cpuid deterministic cache leaves; 0 if unknown)
};
// cpuid + xgetbv; also asks the kernel once for AMX tile-data permission (Linux requires it before
// the first tile instruction, otherwise the process gets SIGILL).
CpuFeatures detect_cpu_features();
// The Feature bits this CPU (and OS) provides.
uint32_t cpu_feature_bits();

// One row of the kernel table: what a kernel computes and what it needs, as data, so the caller
// (the TypeScript dispatcher) can choose and explain; flash_attention enforces the same rules.
struct KernelInfo {
  const char* name;        // e.g. "avx2_fp32", "amx_bf16", "decode_avx2"
  const char* isa;         // "scalar", "avx2", "avx512", "amx"
  uint32_t dtypes;         // bit (1 << DType) per input dtype it runs
  uint32_t requires;       // Feature bits
  int64_t e_multiple;      // head dim e must be a multiple of this (1: any)
  int64_t ev_multiple;     // value head dim ev likewise
  int64_t max_head_dim;    // largest e and ev
  int64_t min_keys;        // speed rule: chosen from this many keys on (0: none); measured, not needed for correctness
  int64_t max_queries;     // at most this many queries per head (0: any)
  const char* summary;     // one sentence
};
// The table, in priority order (the first kernel that can run a call is the best one).
int kernel_count();
const KernelInfo& kernel_info(int i);

// The kernel that would run this call (args.kernel, or the best one for it). Validates args like
// flash_attention does, and throws the same std::invalid_argument when the named kernel cannot run.
const char* kernel_name_for(const AttentionArgs& args);

// Threads a call with num_threads = 0 uses (SDPA_NUM_THREADS or hardware concurrency).
int default_num_threads();

// Bytes of per-thread scratch the kernel needs for these args (with shared_bytes_for, the only
// extra memory). Validates like kernel_name_for.
uint64_t workspace_bytes_per_thread(const AttentionArgs& args);
// Bytes the call allocates once besides the per-thread scratch (split-KV partial results).
uint64_t shared_bytes_for(const AttentionArgs& args);

}  // namespace sdpa
