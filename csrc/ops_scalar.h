// The 1-wide "vector" ops of the kernel_impl.h algorithms (plain C++, no ISA flags). Shared by
// kernel_scalar.cc (prefill) and kernel_decode_scalar.cc (whose DOps extends them).
// Requires <cmath> and internal.h before inclusion, inside the including TU's own namespace
// (no include guard on purpose: each TU includes it exactly once).
struct Ops {
  static constexpr int W = 1;
  using V = float;
  static inline V load(const float* p) { return *p; }
  static inline void store(float* p, V v) { *p = v; }
  static inline V set1(float x) { return x; }
  // Address pinning (kernel_impl.h's pin): only the WebAssembly build needs it.
  template <class T> static inline void pin(T*&) {}
  static constexpr bool kConstKStride = false;
  static inline V zero() { return 0.0f; }
  static inline V fmadd(V a, V b, V c) { return a * b + c; }
  static inline V mul(V a, V b) { return a * b; }
  static inline V add(V a, V b) { return a + b; }
  static inline V sub(V a, V b) { return a - b; }
  static inline V max(V a, V b) { return a > b ? a : b; }
  static inline V iota() { return 0.0f; }
  static inline V causal_mask(V s, V idx, V thr) { return idx < thr ? -__builtin_inff() : s; }
  static inline V ninf_to_zero(V x) { return x == -__builtin_inff() ? 0.0f : x; }
  static inline V exp(V x) { return std::exp(x); }
  static inline void cvt_in(const uint16_t* src, float* dst, int64_t n, bool bf16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16 ? bf16_to_f32(src[i]) : f16_to_f32(src[i]);
  }
  static inline void cvt_out(const float* src, uint16_t* dst, int64_t n, bool bf16, float scale, float*) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16 ? f32_to_bf16(src[i] * scale) : f32_to_f16(src[i] * scale);
  }
};
