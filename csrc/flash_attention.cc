// Validation, CPU feature detection, kernel dispatch and the persistent thread pool.
// Kernels live in per-ISA translation units (kernel_*.cc) built with their own -m flags; this file
// is compiled for the baseline ISA, so it is safe to run on any x86-64 before dispatch decides.
#include "flash_attention.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define SDPA_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "internal.h"
#include "plan_prefill.h"

namespace sdpa {
using namespace detail;

// ---------------------------------------------------------------------------------------------
// CPU features

namespace {
#ifdef SDPA_X86
inline uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}
#endif

// Linux keeps AMX tile data off until a process asks (the signal frame grows by 8 KiB); asking is
// process-wide and idempotent, so it is done once, before any thread can run a tile instruction.
bool request_amx_permission() {
#if defined(SDPA_X86) && defined(__linux__) && defined(SYS_arch_prctl)
  const long ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
  if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return false;
  unsigned long bitmask = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bitmask) != 0) return false;
  return (bitmask >> XFEATURE_XTILEDATA) & 1;
#else
  return false;
#endif
}

#ifdef SDPA_X86
// Size in bytes of the level-`level` data (or unified) cache from a deterministic cache-parameters
// leaf (4 on Intel, 0x8000001D on AMD: same layout), or 0.
int64_t cache_bytes(unsigned leaf, int level) {
  for (unsigned sub = 0; sub < 16; ++sub) {
    unsigned a, b, c, d;
    __cpuid_count(leaf, sub, a, b, c, d);
    const unsigned type = a & 0x1f;
    if (type == 0) break;
    if ((int)((a >> 5) & 7) != level || (type != 1 && type != 3)) continue;
    const int64_t ways = ((b >> 22) & 0x3ff) + 1, parts = ((b >> 12) & 0x3ff) + 1, line = (b & 0xfff) + 1, sets = (int64_t)c + 1;
    return ways * parts * line * sets;
  }
  return 0;
}
#endif

CpuFeatures detect_once() {
  CpuFeatures f{};
#ifdef SDPA_X86
  unsigned a, b, c, d;
  const unsigned max_ext = __get_cpuid_max(0x80000000, nullptr);
  if (max_ext >= 0x80000004) {
    unsigned* w = (unsigned*)f.brand;
    for (unsigned leaf = 0; leaf < 3; ++leaf) __cpuid(0x80000002 + leaf, w[4 * leaf], w[4 * leaf + 1], w[4 * leaf + 2], w[4 * leaf + 3]);
    f.brand[48] = 0;
    // The brand string is space-padded on some CPUs: trim both ends.
    char* s = f.brand;
    while (*s == ' ') ++s;
    std::memmove(f.brand, s, std::strlen(s) + 1);
    for (size_t n = std::strlen(f.brand); n > 0 && f.brand[n - 1] == ' '; --n) f.brand[n - 1] = 0;
  }
  unsigned vendor[3] = {0, 0, 0};
  const unsigned max_leaf = __get_cpuid_max(0, nullptr);
  __cpuid(0, a, vendor[0], vendor[2], vendor[1]);
  const bool amd = std::memcmp(vendor, "AuthenticAMD", 12) == 0;
  bool topoext = false;
  if (max_ext >= 0x80000001) { __cpuid(0x80000001, a, b, c, d); topoext = (c >> 22) & 1; }
  if (amd && topoext && max_ext >= 0x8000001d) { f.l1d_bytes = cache_bytes(0x8000001d, 1); f.l2_bytes = cache_bytes(0x8000001d, 2); }
  else if (max_leaf >= 4) { f.l1d_bytes = cache_bytes(4, 1); f.l2_bytes = cache_bytes(4, 2); }
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, has_fma = (c >> 12) & 1, has_f16c = (c >> 29) & 1, has_avx = (c >> 28) & 1;
  if (!osxsave || !has_avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;
  if (!os_avx) return f;
  f.fma = has_fma;
  f.f16c = has_f16c;
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = (b >> 5) & 1;
  f.avx512f = os_avx512 && ((b >> 16) & 1);
  f.avx512dq = os_avx512 && ((b >> 17) & 1);
  f.avx512bw = os_avx512 && ((b >> 30) & 1);
  f.avx512vl = os_avx512 && ((b >> 31) & 1);
  f.avx512_fp16 = os_avx512 && ((d >> 23) & 1);
  f.amx_bf16 = os_amx && ((d >> 22) & 1);
  f.amx_tile = os_amx && ((d >> 24) & 1);
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avx512_bf16 = os_avx512 && ((a1 >> 5) & 1);
  if (f.amx_tile) f.amx_permitted = request_amx_permission();
#endif
  return f;
}

// The kernel table in priority order: the first one that can run a call is the best one. The
// vector decode kernels lead (they only take S <= 16 and are memory-bound there, where the prefill
// kernels re-read each kv head's K/V per query head); the scalar decode kernel comes after every
// vector prefill kernel, which is faster than it whenever the CPU has one.
const Kernel* const kTable[] = {&kernel_decode_avx512_bf16, &kernel_decode_avx512, &kernel_decode_avx2, &kernel_amx_bf16, &kernel_amx_fp16,
                                &kernel_avx512_bf16, &kernel_avx512, &kernel_avx2, &kernel_decode_scalar, &kernel_scalar};
constexpr int kTableSize = (int)(sizeof(kTable) / sizeof(kTable[0]));

const char* const kFeatureNames[kFeatureCount] = {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                                                  "avx512_bf16", "amx_tile", "amx_bf16", "amx_os_permission"};

std::string feature_list(uint32_t bits) {
  std::string s;
  for (int i = 0; i < kFeatureCount; ++i)
    if (bits & (1u << i)) s += (s.empty() ? "" : ", ") + std::string(kFeatureNames[i]);
  return s;
}

const char* dtype_name(DType d) { return d == DType::F32 ? "float32" : d == DType::F16 ? "float16" : "bfloat16"; }

// Why kernel k cannot run args, or "" when it can. Sentences name the rule, the call's value and,
// where it helps, what to do.
std::string kernel_refusal(const Kernel& k, const AttentionArgs& a, const Tuning& t) {
  const KernelInfo& in = k.info;
  const std::string n = in.name;
  if (!(in.dtypes & (1u << (int)a.dtype))) {
    std::string ds;
    for (DType d : {DType::F32, DType::F16, DType::BF16})
      if (in.dtypes & (1u << (int)d)) ds += (ds.empty() ? "" : ", ") + std::string(dtype_name(d));
    return n + " runs " + ds + " inputs, got " + dtype_name(a.dtype);
  }
  const uint32_t missing = in.requires & ~cpu_feature_bits();
  if (missing) return n + " needs the CPU features " + feature_list(in.requires) + "; this CPU lacks " + feature_list(missing);
  if (a.e % in.e_multiple) return n + " needs the head dim e to be a multiple of " + std::to_string(in.e_multiple) + ", got e = " + std::to_string(a.e);
  if (a.ev % in.ev_multiple) return n + " needs the value head dim ev to be a multiple of " + std::to_string(in.ev_multiple) + ", got ev = " + std::to_string(a.ev);
  if (a.e > in.max_head_dim || a.ev > in.max_head_dim)
    return n + " runs head dims up to " + std::to_string(in.max_head_dim) + ", got e = " + std::to_string(a.e) + ", ev = " + std::to_string(a.ev);
  if (in.max_queries > 0 && a.s > in.max_queries)
    return n + " runs at most " + std::to_string(in.max_queries) + " queries per head, got s = " + std::to_string(a.s);
  if (t.speed_rules && in.min_keys > 0 && a.l < in.min_keys)
    return n + " runs from " + std::to_string(in.min_keys) + " keys on (below that another kernel measured faster), got l = " + std::to_string(a.l);
  return "";
}

// ---------------------------------------------------------------------------------------------
// Persistent thread pool: workers sleep on a condition variable between calls, so a call costs a
// wake-up, not thread creation. One parallel region at a time (concurrent JS calls queue here).
// The calling thread works too, and the region closes as soon as it returns from fn: a worker that
// wakes only after that (descheduled on a loaded machine, when the jobs were already all taken)
// does not enter, so the call never waits for a late wake-up, only for workers still inside fn.
// fn lives on the caller's stack, so no worker may start it once run() can return (open_ guards it).

class Pool {
 public:
  void run(int nthreads, const std::function<void(int)>& fn) {
    std::lock_guard<std::mutex> region(run_mu_);
    run_locked(nthreads, fn);
  }
  // run() when no other region holds the pool; false (nothing run) when one does.
  bool try_run(int nthreads, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> region(run_mu_, std::try_to_lock);
    if (!region.owns_lock()) return false;
    run_locked(nthreads, fn);
    return true;
  }
  int size_hint() const { return (int)workers_.size() + 1; }

 private:
  void run_locked(int nthreads, const std::function<void(int)>& fn) {
    while ((int)workers_.size() < nthreads - 1) {
      const int tid = (int)workers_.size() + 1;
      workers_.emplace_back([this, tid] { worker(tid); });
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      active_ = nthreads;
      running_ = 0;
      open_ = true;
      error_ = nullptr;
      ++gen_;
    }
    cv_.notify_all();
    std::exception_ptr mine;
    try { fn(0); } catch (...) { mine = std::current_exception(); }
    std::unique_lock<std::mutex> lk(mu_);
    open_ = false;
    done_cv_.wait(lk, [&] { return running_ == 0; });
    fn_ = nullptr;
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }
  void worker(int tid) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* fn;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return gen_ != seen; });
        seen = gen_;
        if (tid >= active_ || !open_) continue;  // not needed, or the region already closed
        ++running_;
        fn = fn_;
      }
      std::exception_ptr err;
      try { (*fn)(tid); } catch (...) { err = std::current_exception(); }
      std::lock_guard<std::mutex> lk(mu_);
      if (err && !error_) error_ = err;
      if (--running_ == 0 && !open_) done_cv_.notify_one();
    }
  }
  std::mutex run_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* fn_ = nullptr;
  int active_ = 0, running_ = 0;
  bool open_ = false;
  uint64_t gen_ = 0;
  std::exception_ptr error_;
};

// Never destroyed: joining sleeping workers during static destruction (or addon unload) can hang.
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

// Per-thread scratch, reused across calls (grows to the largest request, 64-byte aligned).
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(ptr); }
  void* get(size_t n) {
    if (n > bytes) {
      std::free(ptr);
      ptr = std::aligned_alloc(64, (n + 63) / 64 * 64);
      if (!ptr) { bytes = 0; throw std::runtime_error("flash_attention: out of memory for per-thread scratch"); }
      bytes = n;
    }
    return ptr;
  }
};
thread_local Scratch tls_scratch;
thread_local bool tls_last_pooled = false;

void check(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument("flash_attention: " + msg);
}

void validate(const AttentionArgs& a) {
  check(a.dtype == DType::F32 || a.dtype == DType::F16 || a.dtype == DType::BF16, "dtype must be F32, F16 or BF16");
  check(a.bh >= 0 && a.s >= 0 && a.l >= 0, "bh, s and l must be >= 0");
  check(a.e >= 1 && a.ev >= 1, "head dims e and ev must be >= 1, got e=" + std::to_string(a.e) + " ev=" + std::to_string(a.ev));
  check(a.e <= 65536 && a.ev <= 65536, "head dims must be <= 65536");
  check(a.hq >= 1 && a.hkv >= 1 && a.hq % a.hkv == 0,
        "hq must be a positive multiple of hkv, got hq=" + std::to_string(a.hq) + " hkv=" + std::to_string(a.hkv));
  check(a.bh % a.hq == 0, "bh must be a multiple of hq");
  check(a.dropout_p >= 0.0 && a.dropout_p < 1.0, "dropout_p must be in [0, 1)");
  check(a.scale == a.scale, "scale must not be NaN");
  check(a.num_threads >= 0, "num_threads must be >= 0");
  if (a.bh == 0 || a.s == 0) return;
  check(a.out != nullptr, "out is null");
  check(a.q && a.q_base, "q / q_base is null");
  check(a.q_row_stride >= 0 && a.k_row_stride >= 0 && a.v_row_stride >= 0, "row strides must be >= 0");
  if (a.l > 0) check(a.k && a.v && a.kv_base_k && a.kv_base_v, "k / v / kv bases are null");
  switch (a.mask_kind) {
    case MaskKind::None: break;
    case MaskKind::Bool:
      check(a.mask_dtype == MaskDType::U8, "a bool mask must have mask_dtype U8");
      check(a.mask && a.mask_base, "mask / mask_base is null");
      break;
    case MaskKind::Float:
      check(a.mask_dtype == MaskDType::F32 || a.mask_dtype == MaskDType::F16 || a.mask_dtype == MaskDType::BF16,
            "a float mask must have mask_dtype F32, F16 or BF16");
      check(a.mask && a.mask_base, "mask / mask_base is null");
      break;
    default: check(false, "mask_kind must be None, Bool or Float");
  }
}

int env_int(const char* name, int dflt) {
  if (const char* s = std::getenv(name)) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end != s && v > 0 && v < 4096) return (int)v;
  }
  return dflt;
}

int resolve_threads(const AttentionArgs& a) {
  return a.num_threads > 0 ? a.num_threads : default_num_threads();
}

// The validated call, its kernel and that kernel's blocking.
Plan make_plan(const AttentionArgs& a, const Tuning& t) {
  const Kernel& k = resolve_kernel(a, t);
  Plan p{};
  p.a = a;
  p.k = &k;
  p.group = a.hq / a.hkv;
  p.nthreads = resolve_threads(a);
  p.nsplit = 1;
  k.plan(p, t);
  p.nthreads = (int)std::max<int64_t>(1, std::min<int64_t>(p.nthreads, p.njobs));
  return p;
}

}  // namespace

namespace detail {

// The blocking itself is in plan_prefill.h, shared with the wasm32 build (kernel_wasm.cc).
void plan_prefill(Plan& p, const Tuning& t) { plan_prefill_blocking(p, t); }

const Kernel& resolve_kernel(const AttentionArgs& args, const Tuning& t) {
  validate(args);
  if (args.kernel) {
    for (const Kernel* k : kTable) {
      if (std::strcmp(k->info.name, args.kernel) != 0) continue;
      const std::string why = kernel_refusal(*k, args, t);
      if (!why.empty()) throw std::invalid_argument("flash_attention: kernel " + why);
      return *k;
    }
    std::string names;
    for (const Kernel* k : kTable) names += (names.empty() ? "" : ", ") + std::string(k->info.name);
    throw std::invalid_argument("flash_attention: kernel must be one of " + names + ", got '" + args.kernel + "'");
  }
  for (const Kernel* k : kTable)
    if (kernel_refusal(*k, args, t).empty()) return *k;
  return kernel_scalar;  // unreachable: the scalar kernel runs every validated call
}

void flash_attention_tuned(const AttentionArgs& args, const Tuning& t) {
  Plan plan = make_plan(args, t);
  if (args.bh == 0 || args.s == 0) return;
  const Kernel* k = plan.k;
  const size_t ws = k->workspace_bytes(plan);
  // Per-call shared memory (split-KV partials), zeroed; 64-byte aligned through the uint64 vector's
  // over-allocation.
  const size_t sb = k->shared_bytes(plan);
  std::vector<uint64_t> shared(sb ? (sb + 63) / 8 + 8 : 0, 0);
  plan.shared = sb ? (void*)(((uintptr_t)shared.data() + 63) & ~(uintptr_t)63) : nullptr;
  static std::atomic<uint64_t> calls{0};
  plan.call_id = ++calls;
  std::atomic<int64_t> next{0};
  const int64_t njobs = plan.njobs;
  const int32_t* cancel = args.cancel;
  std::atomic<bool> cancelled{false};
  auto body = [&](int) {
    void* scratch = tls_scratch.get(ws);
    for (;;) {
      // The caller's word is written by another thread (JS Atomics.store): read it atomically.
      if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) != 0) {
        cancelled.store(true, std::memory_order_relaxed);
        break;
      }
      const int64_t job = next.fetch_add(1, std::memory_order_relaxed);
      if (job >= njobs) break;
      k->run(plan, job, scratch);
    }
  };
  tls_last_pooled = false;
  if (plan.nthreads <= 1) body(0);
  else if (args.caller_only) {
    // On the JS thread: never wait for the pool; with try_pool its workers join when it is free.
    tls_last_pooled = args.try_pool && pool().try_run(plan.nthreads, body);
    if (!tls_last_pooled) body(0);
  } else {
    pool().run(plan.nthreads, body);
    tls_last_pooled = true;
  }
  if (cancelled.load(std::memory_order_relaxed)) {
    const int64_t started = std::min(next.load(std::memory_order_relaxed), njobs);
    if (started < njobs)
      throw Cancelled("flash_attention: cancelled after " + std::to_string(started) + " of " + std::to_string(njobs) + " jobs");
  }
}

}  // namespace detail

CpuFeatures detect_cpu_features() {
  static const CpuFeatures f = detect_once();  // thread-safe once (C++11 magic statics)
  return f;
}

uint32_t cpu_feature_bits() {
  const CpuFeatures f = detect_cpu_features();
  const bool bits[kFeatureCount] = {f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512dq,
                                    f.avx512_bf16, f.amx_tile, f.amx_bf16, f.amx_permitted};
  uint32_t out = 0;
  for (int i = 0; i < kFeatureCount; ++i)
    if (bits[i]) out |= 1u << i;
  return out;
}

const char* feature_name(int i) { return i >= 0 && i < kFeatureCount ? kFeatureNames[i] : "unknown"; }

int kernel_count() { return kTableSize; }

const KernelInfo& kernel_info(int i) {
  if (i < 0 || i >= kTableSize) throw std::out_of_range("kernel_info: index out of range");
  return kTable[i]->info;
}

bool last_call_pooled() { return tls_last_pooled; }

int default_num_threads() {
  // Read once: glibc answers it by reading /sys/devices/system/cpu/online (~5–10 µs), and every
  // call asks it several times (plan, workspace size, numThreads()). SDPA_NUM_THREADS stays per call.
  static const unsigned hc = std::thread::hardware_concurrency();
  return env_int("SDPA_NUM_THREADS", hc ? (int)hc : 1);
}

const char* kernel_name_for(const AttentionArgs& args) { return resolve_kernel(args, Tuning{}).info.name; }

uint64_t workspace_bytes_per_thread(const AttentionArgs& args) {
  const Plan plan = make_plan(args, Tuning{});
  return plan.k->workspace_bytes(plan);
}

uint64_t shared_bytes_for(const AttentionArgs& args) {
  const Plan plan = make_plan(args, Tuning{});
  return plan.k->shared_bytes(plan);
}

void flash_attention(const AttentionArgs& args) { flash_attention_tuned(args, Tuning{}); }

}  // namespace sdpa
