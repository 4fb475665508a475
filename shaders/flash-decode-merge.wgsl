// Flash-decoding, pass 2 of 2: combines the chunk partials of flash-decode.wgsl into the output,
// written in the call's dtype. One workgroup of 64 invocations per output row, each taking
// 16-byte slices of Ev: out = Σ_c e^(m_c − M) o_c / Σ_c e^(m_c − M) l_c, M = max_c m_c; a row
// that saw no key (every l_c = 0) outputs zeros.
// Template parameters: OUT_HALF, PACK (pack_f16 | pack_bf16).
//#include "common.wgsl"
//#include "pack.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> part4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ml: array<vec2<f32>>;
//#if OUT_HALF
@group(0) @binding(3) var<storage, read_write> out2: array<vec2<u32>>;
//#end
//#if !OUT_HALF
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;
//#end

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.bh_count * params.s) { return; }
  let nc = params.chunks;
  let base = row * nc;
  var mx = NEG_BIG;
  for (var c = 0u; c < nc; c++) { mx = max(mx, ml[base + c].x); }
  var lt = 0.0;
  for (var c = 0u; c < nc; c++) {
    let x = ml[base + c];
    lt += select(x.y * exp(x.x - mx), 0.0, x.x <= MASKED);
  }
  let inv = select(1.0 / lt, 0.0, lt == 0.0);
  let ev4 = params.ev / 4u;
  for (var t = lid; t < ev4; t += 64u) {
    var o = vec4<f32>(0.0);
    for (var c = 0u; c < nc; c++) {
      let x = ml[base + c];
      if (x.x > MASKED) { o += part4[(base + c) * ev4 + t] * exp(x.x - mx); }
    }
    o *= inv;
//#if OUT_HALF
    out2[row * ev4 + t] = vec2<u32>({{PACK}}(o.x, o.y), {{PACK}}(o.z, o.w));
//#end
//#if !OUT_HALF
    out4[row * ev4 + t] = o;
//#end
  }
}
