// Shared input prelude of the scalar attention shaders (math.wgsl, tiled-attention.wgsl): common.wgsl,
// the uniform block, the q/k/v/mask bindings 0..5 and their element loaders. Bindings from 6 on (scores,
// output) are each shader's own. Template parameters: WORD/ELEM/PER_WORD (q, k, v storage),
// MASK_WORD/MASK_ELEM/MASK_PER_WORD (mask storage).
//#include "common.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<{{WORD}}>;
@group(0) @binding(2) var<storage, read> k: array<{{WORD}}>;
@group(0) @binding(3) var<storage, read> v: array<{{WORD}}>;
@group(0) @binding(4) var<storage, read> mask: array<{{MASK_WORD}}>;
@group(0) @binding(5) var<storage, read> mask_base: array<u32>;

fn ld_q(i: u32) -> f32 { return decode_{{ELEM}}(q[i / {{PER_WORD}}u], i); }
fn ld_k(i: u32) -> f32 { return decode_{{ELEM}}(k[i / {{PER_WORD}}u], i); }
fn ld_v(i: u32) -> f32 { return decode_{{ELEM}}(v[i / {{PER_WORD}}u], i); }
fn ld_mask(i: u32) -> f32 { return decode_{{MASK_ELEM}}(mask[i / {{MASK_PER_WORD}}u], i); }
