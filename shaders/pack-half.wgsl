// Packs f32 results into the call's 16-bit dtype, two elements per u32 word (element 0 low):
// kernels accumulate and write f32, and this pass makes the output tensor f16 or bf16.
// Template parameters: PACK (pack_f16 | pack_bf16), WG.

struct PackParams { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> pp: PackParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

//#include "pack.wgsl"

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  let i = w * 2u;
  if (i >= pp.n) { return; }
  let b = select(0.0, src[min(i + 1u, pp.n - 1u)], i + 1u < pp.n);
  dst[w] = {{PACK}}(src[i], b);
}
