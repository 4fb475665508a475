// Converts bf16 to f16 on the GPU, two elements per u32 word, for FLASH's f16 kernels when a
// bfloat16 tensor already lives on the GPU (CPU inputs are converted while uploading).
// Template parameters: WG.

struct ConvParams { words: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> cp: ConvParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (w >= cp.words) { return; }
  let x = src[w];
  dst[w] = pack2x16float(vec2<f32>(bitcast<f32>(x << 16u), bitcast<f32>(x & 0xffff0000u)));
}
