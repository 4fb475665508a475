// Two f32 values as one u32 of 16-bit halves (element 0 low): the f16 and bf16 outputs
// (`//#include "pack.wgsl"`; pack-half.wgsl and the kernels that write their output themselves).
fn pack_f16(a: f32, b: f32) -> u32 { return pack2x16float(vec2<f32>(a, b)); }

// bf16 by round-to-nearest-even on the f32 bits; NaN stays a quiet NaN.
fn to_bf16(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return (u >> 16u) | 0x40u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}
fn pack_bf16(a: f32, b: f32) -> u32 { return to_bf16(a) | (to_bf16(b) << 16u); }
