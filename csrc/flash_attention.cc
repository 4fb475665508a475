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

CpuFeatures detect_once() {
  CpuFeatures f{};
#ifdef SDPA_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, has_fma = (c >> 12) & 1, has_f16c = (c >> 29) & 1, has_avx = (c >> 28) & 1;
  if (!osxsave || !has_avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;
  if (!os_avx) return f;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = ((b >> 5) & 1) && has_f16c;  // our AVX2 path also converts fp16 with F16C
  f.fma = has_fma;
  f.avx512f = os_avx512 && ((b >> 16) & 1);
  const bool dq = (b >> 17) & 1;
  f.avx512bw = os_avx512 && ((b >> 30) & 1);
  f.avx512vl = os_avx512 && ((b >> 31) & 1) && dq;  // the AVX-512 TU is built with DQ too
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

enum Level { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

Level hw_level(const CpuFeatures& f) {
  const bool avx512 = f.avx512f && f.avx512bw && f.avx512vl && f.fma;
  if (avx512 && f.avx512_bf16 && f.amx_tile && f.amx_bf16 && f.amx_permitted) return kAmx;
  if (avx512) return kAvx512;
  if (f.avx2 && f.fma) return kAvx2;
  return kScalar;
}

// SDPA_CPU_ISA may only lower the level: forcing a path the CPU lacks would crash with SIGILL.
Level active_level() {
  Level lv = hw_level(detect_cpu_features());
  if (const char* env = std::getenv("SDPA_CPU_ISA")) {
    std::string s(env);
    Level want = lv;
    if (s == "scalar") want = kScalar;
    else if (s == "avx2") want = kAvx2;
    else if (s == "avx512") want = kAvx512;
    else if (s == "amx") want = kAmx;
    else if (!s.empty()) throw std::invalid_argument("SDPA_CPU_ISA must be scalar, avx2, avx512 or amx, got '" + s + "'");
    lv = std::min(lv, want);
  }
  return lv;
}

const Kernel& choose_kernel(Level lv, DType dt, const Plan* plan) {
  if (lv >= kAmx) {
    if (dt == DType::BF16 && (!plan || kernel_amx_bf16.supports(*plan))) return kernel_amx_bf16;
    // fp16: bf16 hi/lo split on tiles (fp16-accurate); head dims that do not tile → AVX-512 fp32.
    if (dt == DType::F16 && (!plan || kernel_amx_fp16.supports(*plan))) return kernel_amx_fp16;
  }
  if (lv >= kAvx512) return kernel_avx512;
  if (lv >= kAvx2) return kernel_avx2;
  return kernel_scalar;
}

// ---------------------------------------------------------------------------------------------
// Persistent thread pool: workers sleep on a condition variable between calls, so a call costs a
// wake-up, not thread creation. One parallel region at a time (concurrent JS calls queue here).

class Pool {
 public:
  void run(int nthreads, const std::function<void(int)>& fn) {
    std::lock_guard<std::mutex> region(run_mu_);
    while ((int)workers_.size() < nthreads - 1) {
      const int tid = (int)workers_.size() + 1;
      workers_.emplace_back([this, tid] { worker(tid); });
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      active_ = nthreads;
      pending_ = nthreads - 1;
      error_ = nullptr;
      ++gen_;
    }
    cv_.notify_all();
    std::exception_ptr mine;
    try { fn(0); } catch (...) { mine = std::current_exception(); }
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    fn_ = nullptr;
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }
  int size_hint() const { return (int)workers_.size() + 1; }

 private:
  void worker(int tid) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* fn;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return gen_ != seen; });
        seen = gen_;
        if (tid >= active_) continue;
        fn = fn_;
      }
      std::exception_ptr err;
      try { (*fn)(tid); } catch (...) { err = std::current_exception(); }
      std::lock_guard<std::mutex> lk(mu_);
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
  std::mutex run_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* fn_ = nullptr;
  int active_ = 0, pending_ = 0;
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

Plan make_plan(const AttentionArgs& a, int nthreads, int w) {
  Plan p;
  p.a = a;
  p.group = a.hq / a.hkv;
  // 128 query rows: Qt and the score tile stay in L1/L2 and reuse each K/V block for 128 queries
  // (measured best of 32/64/128 for D=64, S=2048).
  // Smaller when there are too few (head × block) jobs to keep every thread busy.
  // bf16/fp16 (AMX) take 256 rows from S = 2048 on: their Vᵀ block is repacked once per job, so
  // more rows amortise it; shorter sequences keep 128 so there are enough jobs to balance.
  int64_t bq = env_int("SDPA_BQ", a.dtype != DType::F32 && a.s >= 2048 ? 256 : 128);
  bq = std::min<int64_t>(std::max<int64_t>(bq, 1), 512);  // apply_mask holds <= 256 vectors of queries
  while (bq > 16 && a.bh * ((a.s + bq - 1) / bq) < 2 * (int64_t)nthreads) bq /= 2;
  bq = std::min<int64_t>(bq, std::max<int64_t>(a.s, 1));
  (void)w;
  p.bq = bq;
  // Keys per block: the score tile bk×bq fp32 plus K/V blocks should sit in L2 (2 MiB/core here);
  // big head dims get fewer keys so converted K/V blocks stay small.
  int64_t bk = env_int("SDPA_BK", 0);
  if (bk <= 0) {
    const int64_t dims = a.e + a.ev;
    bk = dims <= 512 ? 128 : 64;
    // fp32 causal: 64-key blocks. The diagonal blocks (masked, half wasted) shrink, and the strip's
    // K / V / score blocks fit L1 better; measured +3–20% (1 thread, D = 64/128, S = 512..4096) on
    // the target machine, non-causal fp32 neutral and AMX bf16 3–7% slower, so only here.
    if (a.dtype == DType::F32 && a.causal) bk = 64;
  }
  p.bk = std::max<int64_t>(bk, 16);
  p.nqb = (a.s + p.bq - 1) / p.bq;
  // AMX bf16: 256-key blocks for head dims up to 128. Each block costs a fixed set of Oᵀ tile
  // loads / stores and Qᵀ tile loads per strip plus the exact-max pass of a strip's first block, so
  // longer blocks amortise them; measured +4–12% (1 thread, D = 64/128, S = 512..4096; causal
  // neutral to +10%), where 64-key blocks were 10% slower. The fp16 split kernel measured neutral
  // to -5% with 256 and keeps 128.
  if (env_int("SDPA_BK", 0) <= 0 && a.e + a.ev <= 256 && a.dtype == DType::BF16 &&
      &choose_kernel(active_level(), a.dtype, &p) == &kernel_amx_bf16)
    p.bk = 256;
  return p;
}

int resolve_threads(const AttentionArgs& a) {
  return a.num_threads > 0 ? a.num_threads : default_num_threads();
}

}  // namespace

CpuFeatures detect_cpu_features() {
  static const CpuFeatures f = detect_once();  // thread-safe once (C++11 magic statics)
  return f;
}

int default_num_threads() {
  unsigned hc = std::thread::hardware_concurrency();
  return env_int("SDPA_NUM_THREADS", hc ? (int)hc : 1);
}

const char* selected_kernel_name(DType dt) { return choose_kernel(active_level(), dt, nullptr).name; }

const char* kernel_name_for(const AttentionArgs& args) {
  validate(args);
  Plan plan = make_plan(args, resolve_threads(args), 16);
  return choose_kernel(active_level(), args.dtype, &plan).name;
}

uint64_t workspace_bytes_per_thread(const AttentionArgs& args) {
  validate(args);
  const int nt = resolve_threads(args);
  Plan plan = make_plan(args, nt, 16);
  const Kernel* k = &choose_kernel(active_level(), args.dtype, &plan);
  if (!k->supports(plan)) k = &choose_kernel(std::min(active_level(), kAvx512), args.dtype, &plan);
  return k->workspace_bytes(plan);
}

void flash_attention(const AttentionArgs& args) {
  validate(args);
  if (args.bh == 0 || args.s == 0) return;
  const Level lv = active_level();
  int nt = resolve_threads(args);
  Plan plan = make_plan(args, nt, 16);
  const Kernel* k = &choose_kernel(lv, args.dtype, &plan);
  const int64_t njobs = args.bh * plan.nqb;
  nt = (int)std::min<int64_t>(nt, njobs);
  const size_t ws = k->workspace_bytes(plan);
  std::atomic<int64_t> next{0};
  const int64_t nqb = plan.nqb;
  static std::atomic<uint64_t> calls{0};
  plan.call_id = ++calls;
  auto body = [&](int) {
    void* scratch = tls_scratch.get(ws);
    for (;;) {
      const int64_t job = next.fetch_add(1, std::memory_order_relaxed);
      if (job >= njobs) break;
      // Head-major, later query blocks first. Head-major: consecutive jobs share a kv head, so the
      // AMX kernels reuse the K/V they packed for it (per thread). Later blocks first: under a
      // causal mask they see the most keys, so long jobs start early and short ones fill the tail.
      const int64_t qblk = nqb - 1 - job % nqb;
      k->run(plan, job / nqb, qblk, scratch);
    }
  };
  if (nt <= 1) body(0);
  else pool().run(nt, body);
}

}  // namespace sdpa
