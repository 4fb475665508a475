// MATH on WebGPU: the textbook formula in three passes over a materialized [bh, S, L] f32 score
// buffer, like PyTorch's math path — simple on purpose; it is the GPU-side reference.
// Template parameters: WORD/ELEM (q, k, v storage: f32 words, or u32 words of two f16/bf16),
// MASK_WORD/MASK_ELEM (mask storage: f32/f16/bf16/bool), WG (threads per workgroup).
//#include "attn-inputs.wgsl"

@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

// Workgroups are laid out 2-D (x up to 65535) so large problems fit the dispatch limits.
fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
}

// Pass 1: one thread per score: scale * q.k, then causal and mask.
@compute @workgroup_size({{WG}})
fn scores_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linear_id(wid, nwg, lid);
  let sl = params.s * params.l;
  if (idx >= params.bh_count * sl) { return; }
  let bh = idx / sl;
  let rem = idx % sl;
  let i = rem / params.l;
  let j = rem % params.l;
  var sc = NEG_BIG;
  if (band_ok(i, j)) {
    let qb = (bh * params.s + i) * params.e;
    let kb = (kv_head(bh) * params.l + j) * params.e;
    var dot = 0.0;
    for (var d = 0u; d < params.e; d++) { dot += ld_q(qb + d) * ld_k(kb + d); }
    sc = dot * params.scale;
    if (params.mask_kind != 0u) {
      sc = apply_mask(sc, ld_mask(mask_base[bh] + i * params.mask_row + j * params.mask_col));
    }
  }
  scores[idx] = sc;
}

// Pass 2: one thread per row: safe softmax (an all-masked row becomes zeros), then dropout.
@compute @workgroup_size({{WG}})
fn softmax_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = linear_id(wid, nwg, lid);
  if (row >= params.bh_count * params.s) { return; }
  let base = row * params.l;
  var mx = NEG_BIG;
  for (var j = 0u; j < params.l; j++) { mx = max(mx, scores[base + j]); }
  if (mx <= MASKED) {
    for (var j = 0u; j < params.l; j++) { scores[base + j] = 0.0; }
    return;
  }
  var sum = 0.0;
  for (var j = 0u; j < params.l; j++) {
    let s = scores[base + j];
    let e = select(exp(s - mx), 0.0, s <= MASKED);
    scores[base + j] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  let bh = row / params.s;
  let i = row % params.s;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  for (var j = 0u; j < params.l; j++) {
    var pr = scores[base + j] * inv;
    if (params.drop_thr != 0u) {
      pr = select(pr * params.keep_scale, 0.0, (mix32(row_hash ^ j) >> 8u) < params.drop_thr);
    }
    scores[base + j] = pr;
  }
}

// Pass 3: one thread per output element: out = P . v.
@compute @workgroup_size({{WG}})
fn pv_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linear_id(wid, nwg, lid);
  if (idx >= params.bh_count * params.s * params.ev) { return; }
  let row = idx / params.ev;
  let d = idx % params.ev;
  let bh = row / params.s;
  let vb = kv_head(bh) * params.l * params.ev + d;
  let base = row * params.l;
  var acc = 0.0;
  for (var j = 0u; j < params.l; j++) { acc += scores[base + j] * ld_v(vb + j * params.ev); }
  out[idx] = acc;
}
