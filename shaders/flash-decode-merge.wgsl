// Flash-decoding, pass 2 of 2: combines the chunk partials of flash-decode.wgsl into the output,
// written in the call's dtype: out = Σ_c e^(m_c − M) o_c / Σ_c e^(m_c − M) l_c, M = max_c m_c; a
// row that saw no key (every l_c = 0) outputs zeros. One workgroup of 256 invocations per output
// row, the chunks spread over all of them: M by a tree in workgroup memory, then NSL slices of
// chunks (c ≡ slice mod NSL) × NCOL lanes of 16-byte Ev words, each slice's sums added in
// workgroup memory. (A row's 128 chunks taken one after another by one workgroup of 64 were the
// bound of a B=1 call on the H200: as long as the decode pass.)
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

const MW: u32 = 256u;
const NCOL: u32 = 32u;
const NSL: u32 = MW / NCOL;

var<workgroup> red: array<f32, MW>;
var<workgroup> ro: array<vec4<f32>, MW>;
var<workgroup> rl: array<f32, NSL>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // row derives from workgroup_id alone: the return and the barriers below are uniform.
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.bh_count * params.s) { return; }
  let nc = params.chunks;
  let base = row * nc;
  var mx = NEG_BIG;
  for (var c = lid; c < nc; c += MW) { mx = max(mx, ml[base + c].x); }
  red[lid] = mx;
  workgroupBarrier();
  for (var w = MW / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
    workgroupBarrier();
  }
  mx = red[0];
  let sl = lid / NCOL;
  let col = lid % NCOL;
  let ev4 = params.ev / 4u;
  for (var t0 = 0u; t0 < ev4; t0 += NCOL) {
    let t = t0 + col;
    var o = vec4<f32>(0.0);
    var lw = 0.0;
    for (var c = sl; c < nc; c += NSL) {
      let x = ml[base + c];
      if (x.x > MASKED) {
        let w = exp(x.x - mx);
        lw += x.y * w;
        if (t < ev4) { o += part4[(base + c) * ev4 + t] * w; }
      }
    }
    ro[lid] = o;
    if (col == 0u) { rl[sl] = lw; }
    workgroupBarrier();
    if (sl == 0u && t < ev4) {
      var os = ro[col];
      var lt = rl[0];
      for (var s = 1u; s < NSL; s++) {
        os += ro[s * NCOL + col];
        lt += rl[s];
      }
      let inv = select(1.0 / lt, 0.0, lt == 0.0);
      let y = os * inv;
//#if OUT_HALF
      out2[row * ev4 + t] = vec2<u32>({{PACK}}(y.x, y.y), {{PACK}}(y.z, y.w));
//#end
//#if !OUT_HALF
      out4[row * ev4 + t] = y;
//#end
    }
    workgroupBarrier();
  }
}
