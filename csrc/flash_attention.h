// Native CPU flash attention for sdpa-dispatch. Pure C++17: no N-API here (binding.cc is the only
// file that knows about Node), so the kernel can be tested and benchmarked without node.
#pragma once
#include <cstdint>

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
  double dropout_p; uint32_t seed;  // DESIGN §2 dropout RNG (bh = flat query-head index)
  int32_t num_threads;              // 0 = SDPA_NUM_THREADS or all cores
};

// Computes out = softmax(scale·q·kᵀ (+mask, causal), fp32 accumulation) · v. Blocking; uses the
// persistent thread pool. Throws std::invalid_argument / std::runtime_error on bad args.
void flash_attention(const AttentionArgs& args);

struct CpuFeatures {
  bool avx2, fma, avx512f, avx512bw, avx512vl, avx512_bf16, avx512_fp16, amx_tile, amx_bf16, amx_permitted;
};
// cpuid + xgetbv; also asks the kernel once for AMX tile-data permission (Linux requires it before
// the first tile instruction, otherwise the process gets SIGILL).
CpuFeatures detect_cpu_features();

// The kernel that runs for a dtype on this machine (after SDPA_CPU_ISA), for capabilities().
// Shapes AMX cannot tile (head dims not multiples of 32/16) fall back to the AVX-512 kernel.
const char* selected_kernel_name(DType);

// The kernel that would run this call (shape rules included, e.g. fp16 on AMX from 1024 keys).
// Validates args like flash_attention does.
const char* kernel_name_for(const AttentionArgs& args);

// Threads a call with num_threads = 0 uses (SDPA_NUM_THREADS or hardware concurrency).
int default_num_threads();

// Bytes of per-thread scratch the selected kernel needs for these args (the only extra memory).
uint64_t workspace_bytes_per_thread(const AttentionArgs& args);

}  // namespace sdpa
