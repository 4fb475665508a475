// The one N-API file: validates JS arguments, copies the offset tables, and runs the kernel on a
// libuv thread-pool work item so attention never blocks the event loop. Every bad argument becomes a
// TypeError/RangeError; C++ exceptions from the kernel reject the promise. Nothing aborts.
//
// Lifetime of the arrays the kernel reads and writes (issue 20). A JS reference to the typed array
// is not enough: `structuredClone(buf, { transfer: [buf] })` or `postMessage` moves the memory to a
// new ArrayBuffer, which the GC may free while the kernel still reads it (a use after free). So
// each array's `v8::BackingStore` is held by `std::shared_ptr` for the whole run: V8 frees that
// memory only when the last shared_ptr goes, whoever owns it by then. We pick this over the other
// two options because it is the only one that is both safe and free: copying q/k/v would double
// the memory traffic of memory-bound decode calls, and N-API has no way to pin (forbid detaching)
// a buffer. N-API exposes no BackingStore, so the V8 API shipped with Node's headers (the same
// headers node-gyp builds against) is used for exactly this, through the napi_value → Local
// conversion Node itself uses (js_native_api_v8.h). Memory held alive is not the same as inputs
// unchanged: once detached the memory belongs to someone else who may write it, so at completion
// every array is checked to still be attached with the same data pointer and length; if not, the
// promise rejects (code SDPA_STORAGE_CHANGED, `argument` naming it) and the result is discarded.
// Buffers that can shrink under the kernel (resizable ArrayBuffers) are refused up front: shrinking
// decommits the pages, which holding the BackingStore does not prevent.
#include <napi.h>
#include <v8.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "flash_attention.h"

namespace {

using sdpa::AttentionArgs;
using sdpa::DType;
using sdpa::MaskDType;
using sdpa::MaskKind;

[[noreturn]] void type_error(Napi::Env env, const std::string& m) { throw Napi::TypeError::New(env, "flashAttention: " + m); }
[[noreturn]] void range_error(Napi::Env env, const std::string& m) { throw Napi::RangeError::New(env, "flashAttention: " + m); }

int64_t get_int(Napi::Env env, const Napi::Object& o, const char* key, bool required = true, int64_t dflt = 0) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (required) type_error(env, std::string("args.") + key + " is required (an integer)");
    return dflt;
  }
  double d;
  if (v.IsNumber()) d = v.As<Napi::Number>().DoubleValue();
  else if (v.IsBigInt()) { bool lossless; int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless); if (!lossless) range_error(env, std::string("args.") + key + " does not fit in int64"); return x; }
  else type_error(env, std::string("args.") + key + " must be an integer number");
  if (!(d == d) || d != (double)(int64_t)d || d > 9007199254740991.0 || d < -9007199254740991.0)
    range_error(env, std::string("args.") + key + " must be a safe integer, got " + std::to_string(d));
  return (int64_t)d;
}

double get_num(Napi::Env env, const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) type_error(env, std::string("args.") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool get_bool(Napi::Env env, const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) type_error(env, std::string("args.") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// An offset table: number[], Float64Array, Int32Array or BigInt64Array of integers.
std::vector<int64_t> get_offsets(Napi::Env env, const Napi::Object& o, const char* key, int64_t n) {
  Napi::Value v = o.Get(key);
  std::vector<int64_t> out;
  out.reserve((size_t)n);
  const std::string name = std::string("args.") + key;
  auto check_len = [&](size_t len) {
    if ((int64_t)len != n) range_error(env, name + " must have length " + std::to_string(n) + ", got " + std::to_string(len));
  };
  auto push_double = [&](double d) {
    if (!(d == d) || d != (double)(int64_t)d || d < 0 || d > 9007199254740991.0)
      range_error(env, name + " entries must be non-negative safe integers");
    out.push_back((int64_t)d);
  };
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    check_len(ta.ElementLength());
    switch (ta.TypedArrayType()) {
      case napi_float64_array: { auto a = v.As<Napi::Float64Array>(); for (size_t i = 0; i < a.ElementLength(); ++i) push_double(a[i]); break; }
      case napi_int32_array: { auto a = v.As<Napi::Int32Array>(); for (size_t i = 0; i < a.ElementLength(); ++i) push_double(a[i]); break; }
      case napi_uint32_array: { auto a = v.As<Napi::Uint32Array>(); for (size_t i = 0; i < a.ElementLength(); ++i) push_double(a[i]); break; }
      case napi_bigint64_array: {
        auto a = v.As<Napi::BigInt64Array>();
        for (size_t i = 0; i < a.ElementLength(); ++i) { if (a[i] < 0) range_error(env, name + " entries must be >= 0"); out.push_back(a[i]); }
        break;
      }
      default: type_error(env, name + " must be a Float64Array, Int32Array, Uint32Array, BigInt64Array or number[]");
    }
  } else if (v.IsArray()) {
    Napi::Array arr = v.As<Napi::Array>();
    check_len(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value x = arr.Get(i);
      if (!x.IsNumber()) type_error(env, name + " entries must be numbers");
      push_double(x.As<Napi::Number>().DoubleValue());
    }
  } else {
    type_error(env, name + " must be an array of element offsets");
  }
  return out;
}

struct View {
  void* data = nullptr;
  int64_t length = 0;  // elements
};

// One array the kernel touches, pinned for the run (see the comment at the top of the file).
struct Pinned {
  std::string name;                        // "q", "k", ... for the error at completion
  std::shared_ptr<v8::BackingStore> store;  // keeps the memory alive even if the buffer is detached
  Napi::Reference<Napi::Value> array;       // the typed array, to check it at completion
  void* data = nullptr;
  size_t length = 0;  // elements
};

// napi_value → v8::Local: the conversion Node's own N-API implementation uses (both are one
// pointer to a handle slot). Valid in this process because the addon is built against the
// headers of the Node that loads it.
v8::Local<v8::Value> to_v8(napi_value v) {
  v8::Local<v8::Value> local;
  static_assert(sizeof(local) == sizeof(v), "napi_value and v8::Local<v8::Value> differ in size");
  std::memcpy(static_cast<void*>(&local), &v, sizeof(v));
  return local;
}

// A typed array of the expected element type; returns its data pointer and element count and pins
// its backing store into `keep`. SharedArrayBuffer-backed arrays are accepted (they cannot be
// detached; concurrent writes by other threads are the caller's, as with any shared memory).
View get_array(Napi::Env env, const Napi::Object& o, const char* key, napi_typedarray_type want, const char* want_name,
               std::vector<Pinned>* keep) {
  Napi::Value v = o.Get(key);
  const std::string name = std::string("args.") + key;
  if (!v.IsTypedArray()) type_error(env, name + " must be a " + want_name);
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != want) type_error(env, name + " must be a " + want_name + " for this dtype");
  v8::Local<v8::ArrayBufferView> view = to_v8(v).As<v8::ArrayBufferView>();
  // Buffer() also moves a small on-heap typed array's bytes off the GC heap, so the pointer is stable.
  v8::Local<v8::ArrayBuffer> buffer = view->Buffer();
  std::shared_ptr<v8::BackingStore> store = buffer->GetBackingStore();
  if (store->IsResizableByUserJavaScript())
    type_error(env, name + " is over a resizable ArrayBuffer, which may shrink while the kernel reads it; copy it into a fixed-length array");
  View out;
  out.length = (int64_t)ta.ElementLength();
  const size_t elem = ta.ElementSize();
  if (out.length && (store->Data() == nullptr || view->ByteOffset() + (size_t)out.length * elem > store->ByteLength()))
    type_error(env, name + " has a detached buffer");
  out.data = out.length ? (uint8_t*)store->Data() + view->ByteOffset() : nullptr;
  Pinned p;
  p.name = key;
  p.store = std::move(store);
  p.array = Napi::Persistent(v);
  p.data = out.data;
  p.length = (size_t)out.length;
  keep->push_back(std::move(p));
  return out;
}

// The first pinned array that no longer is what the kernel ran on (detached, transferred, shrunk),
// or nullptr. Runs on the JS thread at completion.
const Pinned* changed_array(napi_env env, const std::vector<Pinned>& keep) {
  for (const Pinned& p : keep) {
    napi_value v;
    if (napi_get_reference_value(env, static_cast<napi_ref>(p.array), &v) != napi_ok || v == nullptr) return &p;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, v, nullptr, &length, &data, nullptr, nullptr) != napi_ok) return &p;
    if (length != p.length || (length != 0 && data != p.data)) return &p;
  }
  return nullptr;
}

// Largest element index touched: base + (rows-1)*stride + (cols-1), overflow-checked.
bool fits(int64_t base, int64_t rows, int64_t stride, int64_t cols, int64_t length) {
  if (rows <= 0 || cols <= 0) return true;
  int64_t t, last;
  if (__builtin_mul_overflow(rows - 1, stride, &t) || __builtin_add_overflow(base, t, &last) ||
      __builtin_add_overflow(last, cols - 1, &last))
    return false;
  return base >= 0 && last < length;
}

struct Call {
  AttentionArgs a{};
  std::vector<int64_t> q_base, kb, vb, mask_base;
  std::string kernel;  // args.kernel; a.kernel points into it
  std::vector<Pinned> keep;
  size_t workspace_bytes = 0;  // per thread, from parse's validation run
};

DType parse_dtype(Napi::Env env, Napi::Value v) {
  if (v.IsNumber()) {
    int32_t d = v.As<Napi::Number>().Int32Value();
    if (d >= 0 && d <= 2) return (DType)d;
  } else if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s == "float32") return DType::F32;
    if (s == "float16") return DType::F16;
    if (s == "bfloat16") return DType::BF16;
  }
  type_error(env, "dtype must be 0|1|2 or 'float32'|'float16'|'bfloat16'");
}

void parse(Napi::Env env, const Napi::Value& arg, Call& c) {
  if (!arg.IsObject()) type_error(env, "expected one argument object");
  Napi::Object o = arg.As<Napi::Object>();
  AttentionArgs& a = c.a;
  a.dtype = parse_dtype(env, o.Get("dtype"));
  a.bh = get_int(env, o, "bh"); a.hq = get_int(env, o, "hq"); a.hkv = get_int(env, o, "hkv");
  a.s = get_int(env, o, "s"); a.l = get_int(env, o, "l"); a.e = get_int(env, o, "e"); a.ev = get_int(env, o, "ev");
  if (a.bh < 0 || a.s < 0 || a.l < 0 || a.e < 1 || a.ev < 1 || a.hq < 1 || a.hkv < 1)
    range_error(env, "need bh, s, l >= 0 and hq, hkv, e, ev >= 1");
  if (a.hq % a.hkv != 0 || a.bh % a.hq != 0) range_error(env, "need hq % hkv == 0 and bh % hq == 0");
  a.q_row_stride = get_int(env, o, "qRowStride"); a.k_row_stride = get_int(env, o, "kRowStride");
  a.v_row_stride = get_int(env, o, "vRowStride");
  if (a.q_row_stride < 0 || a.k_row_stride < 0 || a.v_row_stride < 0) range_error(env, "row strides must be >= 0");
  const int64_t nkv = a.bh / a.hq * a.hkv;
  c.q_base = get_offsets(env, o, "qBase", a.bh);
  c.kb = get_offsets(env, o, "kvBaseK", nkv);
  c.vb = get_offsets(env, o, "kvBaseV", nkv);
  const bool f32 = a.dtype == DType::F32;
  const napi_typedarray_type tt = f32 ? napi_float32_array : napi_uint16_array;
  const char* tn = f32 ? "Float32Array" : "Uint16Array (raw fp16/bf16 bits)";
  View q = get_array(env, o, "q", tt, tn, &c.keep), k = get_array(env, o, "k", tt, tn, &c.keep),
       v = get_array(env, o, "v", tt, tn, &c.keep), out = get_array(env, o, "out", tt, tn, &c.keep);
  for (int64_t i = 0; i < a.bh; ++i)
    if (!fits(c.q_base[i], a.s, a.q_row_stride, a.e, q.length))
      range_error(env, "q is too short for qBase[" + std::to_string(i) + "], s, qRowStride and e");
  for (int64_t i = 0; i < nkv; ++i) {
    if (!fits(c.kb[i], a.l, a.k_row_stride, a.e, k.length)) range_error(env, "k is too short for kvBaseK[" + std::to_string(i) + "], l, kRowStride and e");
    if (!fits(c.vb[i], a.l, a.v_row_stride, a.ev, v.length)) range_error(env, "v is too short for kvBaseV[" + std::to_string(i) + "], l, vRowStride and ev");
  }
  int64_t out_len;
  if (__builtin_mul_overflow(a.bh, a.s, &out_len) || __builtin_mul_overflow(out_len, a.ev, &out_len) || out_len > out.length)
    range_error(env, "out must hold bh*s*ev elements");
  a.q = q.data; a.k = k.data; a.v = v.data; a.out = out.data;
  a.q_base = c.q_base.data(); a.kv_base_k = c.kb.data(); a.kv_base_v = c.vb.data();

  const int64_t mk = get_int(env, o, "maskKind", false, 0);
  if (mk < 0 || mk > 2) range_error(env, "maskKind must be 0 (none), 1 (bool) or 2 (float)");
  a.mask_kind = (MaskKind)mk;
  if (a.mask_kind != MaskKind::None) {
    const int64_t md = get_int(env, o, "maskDType", false, a.mask_kind == MaskKind::Bool ? 0 : 1);
    if (md < 0 || md > 3) range_error(env, "maskDType must be 0 (u8), 1 (f32), 2 (f16) or 3 (bf16)");
    a.mask_dtype = (MaskDType)md;
    if ((a.mask_kind == MaskKind::Bool) != (a.mask_dtype == MaskDType::U8))
      type_error(env, "a bool mask must be u8 (maskDType 0) and a float mask f32/f16/bf16");
    const napi_typedarray_type mt = md == 0 ? napi_uint8_array : md == 1 ? napi_float32_array : napi_uint16_array;
    View m = get_array(env, o, "mask", mt, md == 0 ? "Uint8Array" : md == 1 ? "Float32Array" : "Uint16Array", &c.keep);
    c.mask_base = get_offsets(env, o, "maskBase", a.bh);
    a.mask_stride_s = get_int(env, o, "maskStrideS"); a.mask_stride_l = get_int(env, o, "maskStrideL");
    if (a.mask_stride_s < 0 || a.mask_stride_l < 0) range_error(env, "mask strides must be >= 0");
    for (int64_t i = 0; i < a.bh; ++i) {
      // element (s-1, l-1) is the farthest one: base + (s-1)*ss + (l-1)*sl
      int64_t t1, t2, last;
      if (a.s == 0 || a.l == 0) break;
      if (__builtin_mul_overflow(a.s - 1, a.mask_stride_s, &t1) || __builtin_mul_overflow(a.l - 1, a.mask_stride_l, &t2) ||
          __builtin_add_overflow(c.mask_base[i], t1, &last) || __builtin_add_overflow(last, t2, &last) || last >= m.length)
        range_error(env, "mask is too short for maskBase[" + std::to_string(i) + "] and the mask strides");
    }
    a.mask = m.data; a.mask_base = c.mask_base.data();
  }
  a.causal = get_bool(env, o, "causal");
  a.diagonal_offset = get_int(env, o, "diagonalOffset", false, 0);
  const double scale = get_num(env, o, "scale", 1.0 / std::sqrt((double)a.e));
  if (!(scale == scale) || std::isinf(scale)) range_error(env, "scale must be finite");
  a.scale = (float)scale;
  const double p = get_num(env, o, "dropoutP", 0.0);
  if (!(p >= 0.0 && p < 1.0)) range_error(env, "dropoutP must be in [0, 1)");
  a.dropout_p = p;  // kept as a double: the dropout threshold is p·2^24 exactly
  const int64_t seed = get_int(env, o, "seed", false, 0);
  if (seed < 0 || seed > 0xffffffffLL) range_error(env, "seed must be a uint32");
  a.seed = (uint32_t)seed;
  const int64_t nt = get_int(env, o, "numThreads", false, 0);
  if (nt < 0 || nt > 1024) range_error(env, "numThreads must be in [0, 1024]");
  a.num_threads = (int32_t)nt;
  const Napi::Value kv = o.Get("kernel");
  if (!kv.IsUndefined()) {
    if (!kv.IsString()) type_error(env, "args.kernel must be a kernel name (a string from kernels()) or undefined");
    c.kernel = kv.As<Napi::String>().Utf8Value();
    a.kernel = c.kernel.c_str();
  }
  // args.cancel: an Int32Array whose element 0 the caller sets (Atomics.store) to stop the call
  // between jobs (AbortSignal). Kept alive with the other arrays while the worker runs.
  if (!o.Get("cancel").IsUndefined()) {
    View cw = get_array(env, o, "cancel", napi_int32_array, "Int32Array (a cancel word)", &c.keep);
    if (cw.length < 1) range_error(env, "args.cancel must have at least one element");
    a.cancel = (const int32_t*)cw.data;
  }
  try {
    c.workspace_bytes = sdpa::workspace_bytes_per_thread(a);  // runs the kernel's own validation synchronously
  } catch (const std::exception& e) {
    range_error(env, e.what());
  }
}

// One queued call. Plain N-API async work rather than Napi::AsyncWorker: its completion runs
// node-addon-api code that throws a C++ exception when the environment is being torn down
// (`worker.terminate()` while a call runs: Node waits for the work item, then completes it with
// JavaScript disallowed), and a C++ exception escaping a libuv callback aborts the whole process.
// Here completion never throws: each N-API call's status is checked and a failure (the env is
// going away, nobody can observe the promise) just ends the call quietly.
struct Job {
  Call* call = nullptr;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  bool failed = false;
  std::string error;
  ~Job() { delete call; }
};

void execute_job(napi_env, void* data) {
  Job* job = static_cast<Job*>(data);
  try {
    sdpa::flash_attention(job->call->a);
  } catch (const std::exception& e) {
    job->failed = true;
    job->error = e.what();
  } catch (...) {
    job->failed = true;
    job->error = "flashAttention: unknown native error";
  }
}

// Rejects with an Error of `message`; `code` and `argument` set when given. Never throws.
void reject_with(napi_env env, napi_deferred deferred, const std::string& message, const char* code, const char* argument) {
  napi_value msg, err;
  if (napi_create_string_utf8(env, message.c_str(), message.size(), &msg) != napi_ok) return;
  if (napi_create_error(env, nullptr, msg, &err) != napi_ok) return;
  if (code) {
    napi_value c;
    if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c) == napi_ok) napi_set_named_property(env, err, "code", c);
  }
  if (argument) {
    napi_value a;
    if (napi_create_string_utf8(env, argument, NAPI_AUTO_LENGTH, &a) == napi_ok) napi_set_named_property(env, err, "argument", a);
  }
  napi_reject_deferred(env, deferred, err);
}

void complete_job(napi_env env, napi_status status, void* data) {
  std::unique_ptr<Job> job(static_cast<Job*>(data));
  napi_delete_async_work(env, job->work);
  // A pending exception (env teardown) makes every call below fail: nothing to report to, so stop.
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  if (status == napi_cancelled) {
    reject_with(env, job->deferred, "flashAttention: the call was cancelled before it started", nullptr, nullptr);
    return;
  }
  if (const Pinned* p = changed_array(env, job->call->keep)) {
    reject_with(env, job->deferred,
                "flashAttention: args." + p->name + " changed storage while the kernel ran (its ArrayBuffer was detached, transferred or resized); the result is discarded",
                "SDPA_STORAGE_CHANGED", p->name.c_str());
    return;
  }
  if (job->failed) {
    reject_with(env, job->deferred, job->error, nullptr, nullptr);
    return;
  }
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) == napi_ok) napi_resolve_deferred(env, job->deferred, undefined);
}

// Queues a parsed call on libuv's pool; returns its promise (settled by complete_job).
napi_value queue_call(Napi::Env env, std::unique_ptr<Job> job) {
  napi_value promise, name;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &job->deferred, &promise), Napi::Value());
  NAPI_THROW_IF_FAILED(env, napi_create_string_utf8(env, "sdpa:flashAttention", NAPI_AUTO_LENGTH, &name), Napi::Value());
  NAPI_THROW_IF_FAILED(env, napi_create_async_work(env, nullptr, name, execute_job, complete_job, job.get(), &job->work), Napi::Value());
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    // The promise was created: settle it rather than leave it pending forever.
    reject_with(env, job->deferred, "flashAttention: could not queue the work", nullptr, nullptr);
    return promise;
  }
  job.release();  // owned by the work item now; complete_job frees it
  return promise;
}

Napi::Value FlashAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) type_error(env, "expected exactly one argument object");
  std::unique_ptr<Job> job(new Job());
  job->call = new Call();
  parse(env, info[0], *job->call);
  return Napi::Value(env, queue_call(env, std::move(job)));
}

// flashAttentionRun(args, here): one parse for the run and the workspace size. here = true runs
// every job on this (the JS) thread with the pooled plan (AttentionArgs::caller_only) and returns
// { workspaceBytes }, throwing a kernel failure as an Error; the caller bounds the work it runs so
// (flash (cpu) does: tiny decode calls only). here = false queues it like flashAttention and
// returns { done: Promise<void>, workspaceBytes }.
Napi::Value FlashAttentionRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[1].IsBoolean()) type_error(env, "flashAttentionRun: expected (args, here: boolean)");
  std::unique_ptr<Job> job(new Job());
  job->call = new Call();
  parse(env, info[0], *job->call);
  Napi::Object r = Napi::Object::New(env);
  r.Set("workspaceBytes", (double)job->call->workspace_bytes);
  if (!info[1].As<Napi::Boolean>().Value()) {
    napi_value done = queue_call(env, std::move(job));
    r.Set("done", Napi::Value(env, done));
    return r;
  }
  job->call->a.caller_only = true;
  // args.inlinePool: the pool's workers join when the pool is free (AttentionArgs::try_pool).
  job->call->a.try_pool = get_bool(env, info[0].As<Napi::Object>(), "inlinePool");
  try {
    sdpa::flash_attention(job->call->a);
  } catch (const std::exception& e) {
    NAPI_THROW(Napi::Error::New(env, e.what()), Napi::Value());
  }
  r.Set("pooled", sdpa::last_call_pooled());
  return r;
}

Napi::Value WorkspaceBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Call c;
  if (info.Length() != 1) type_error(env, "workspaceBytes: expected one argument object");
  parse(env, info[0], c);
  return Napi::Number::New(env, (double)sdpa::workspace_bytes_per_thread(c.a));
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sdpa::CpuFeatures f = sdpa::detect_cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2); o.Set("fma", f.fma); o.Set("f16c", f.f16c); o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw); o.Set("avx512vl", f.avx512vl); o.Set("avx512dq", f.avx512dq);
  o.Set("avx512Bf16", f.avx512_bf16); o.Set("avx512Fp16", f.avx512_fp16);
  o.Set("amxTile", f.amx_tile); o.Set("amxBf16", f.amx_bf16); o.Set("amxPermitted", f.amx_permitted);
  o.Set("brand", f.brand);
  o.Set("l1dBytes", (double)f.l1d_bytes); o.Set("l2Bytes", (double)f.l2_bytes);
  return o;
}

// The C++ kernel table, in priority order, with what each kernel needs and what this CPU lacks.
Napi::Value Kernels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t have = sdpa::cpu_feature_bits();
  auto names = [&](uint32_t bits) {
    Napi::Array arr = Napi::Array::New(env);
    for (int i = 0; i < sdpa::kFeatureCount; ++i)
      if (bits & (1u << i)) arr.Set(arr.Length(), sdpa::feature_name(i));
    return arr;
  };
  Napi::Array out = Napi::Array::New(env);
  for (int i = 0; i < sdpa::kernel_count(); ++i) {
    const sdpa::KernelInfo& k = sdpa::kernel_info(i);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", k.name);
    o.Set("isa", k.isa);
    Napi::Array dts = Napi::Array::New(env);
    const char* dn[] = {"float32", "float16", "bfloat16"};
    for (int d = 0; d < 3; ++d)
      if (k.dtypes & (1u << d)) dts.Set(dts.Length(), dn[d]);
    o.Set("dtypes", dts);
    o.Set("requires", names(k.requires));
    o.Set("missing", names(k.requires & ~have));
    o.Set("eMultiple", (double)k.e_multiple);
    o.Set("evMultiple", (double)k.ev_multiple);
    o.Set("maxHeadDim", (double)k.max_head_dim);
    o.Set("minKeys", (double)k.min_keys);
    if (k.max_queries > 0) o.Set("maxQueries", (double)k.max_queries);
    o.Set("summary", k.summary);
    out.Set(i, o);
  }
  return out;
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sdpa::default_num_threads());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("flashAttention", Napi::Function::New(env, FlashAttention, "flashAttention"));
  exports.Set("flashAttentionRun", Napi::Function::New(env, FlashAttentionRun, "flashAttentionRun"));
  exports.Set("workspaceBytes", Napi::Function::New(env, WorkspaceBytes, "workspaceBytes"));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures, "cpuFeatures"));
  exports.Set("kernels", Napi::Function::New(env, Kernels, "kernels"));
  exports.Set("numThreads", Napi::Function::New(env, NumThreads, "numThreads"));
  return exports;
}

}  // namespace

NODE_API_MODULE(sdpa_native, Init)
