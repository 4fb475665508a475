// Vector loads of q/k/v words as f32 lanes (pulled in with //#include "vec-io.wgsl"): a vec4 of
// storage words holds 4 f32 values (VPW = 4) or 8 halves (VPW = 8, two per u32, element 0 low).
// `lo4` gives elements 0..3 and `hi4` (halves only) 4..7, so kernels read 16 bytes per load and
// need no shader-f16: unpack2x16float and the bf16 bit shift are core WGSL.
// Template parameters: WORD (f32 | u32), ELEM (f32 | f16 | bf16), HALF (0 | 1).
//#if HALF
fn unpack_f16x2(w: u32) -> vec2<f32> { return unpack2x16float(w); }
fn unpack_bf16x2(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }
fn lo4(w: vec4<u32>) -> vec4<f32> { return vec4<f32>(unpack_{{ELEM}}x2(w.x), unpack_{{ELEM}}x2(w.y)); }
fn hi4(w: vec4<u32>) -> vec4<f32> { return vec4<f32>(unpack_{{ELEM}}x2(w.z), unpack_{{ELEM}}x2(w.w)); }
//#end
//#if !HALF
fn lo4(w: vec4<f32>) -> vec4<f32> { return w; }
//#end
