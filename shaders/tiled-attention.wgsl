// Tiled attention with an online softmax (Milakov & Gimelshein; Rabe & Staats; the loop structure
// of FlashAttention): one workgroup takes BR query rows of one flat head, one thread per row, and
// streams key/value blocks of BC keys through workgroup memory. Memory is O(S), never S x L.
// EFFICIENT_ATTENTION uses it with f32 tiles and any mask; FLASH_ATTENTION's portable path uses it
// with f16 tiles (half the workgroup memory per key, so twice the keys per block) and no mask.
// Template parameters: ENABLES (e.g. `enable f16;`), WORD/ELEM/PER_WORD (q, k, v storage),
// MASK_WORD/MASK_ELEM/MASK_PER_WORD, TILE_T (f32 | f16), BR, BC, DMAX, DVMAX (head-dim buckets).
{{ENABLES}}
//#include "attn-inputs.wgsl"

@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> k_tile: array<{{TILE_T}}, {{BC}} * {{DMAX}}>;
var<workgroup> v_tile: array<{{TILE_T}}, {{BC}} * {{DVMAX}}>;

@compute @workgroup_size({{BR}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // bh and the block's key range derive from workgroup_id and uniforms only, so every barrier
  // below sits in workgroup-uniform control flow.
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= params.bh_count) { return; }
  let S = params.s;
  let L = params.l;
  let E = params.e;
  let EV = params.ev;
  let i0 = wid.x * {{BR}}u;
  let i = i0 + lid;
  let row_ok = i < S;
  let kvh = kv_head(bh);
  let kbase = kvh * L * E;
  let vbase = kvh * L * EV;

  var qrow: array<f32, {{DMAX}}>;
  var acc: array<f32, {{DVMAX}}>;
  for (var d = 0u; d < {{DVMAX}}u; d++) { acc[d] = 0.0; }
  if (row_ok) {
    let qb = (bh * S + i) * E;
    for (var d = 0u; d < E; d++) { qrow[d] = ld_q(qb + d) * params.scale; }
  }
  var m = NEG_BIG;
  var sum = 0.0;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  let mrow = select(0u, mask_base[bh] + i * params.mask_row, params.mask_kind != 0u);

  // Causal: keys past the block's last diagonal are invisible to all its rows.
  var j_end = L;
  if (params.causal != 0u) {
    let last = i32(min(i0 + {{BR}}u, S)) + params.diag;
    j_end = u32(clamp(last, 0, i32(L)));
  }

  // A window's lower edge: blocks below the first row's edge are invisible to all its rows.
  for (var j0 = band_begin(i0, {{BC}}u); j0 < j_end; j0 += {{BC}}u) {
    let cols = min({{BC}}u, j_end - j0);
    for (var t = lid; t < cols * E; t += {{BR}}u) {
      let c = t / E;
      k_tile[c * {{DMAX}}u + t % E] = {{TILE_T}}(ld_k(kbase + (j0 + c) * E + t % E));
    }
    for (var t = lid; t < cols * EV; t += {{BR}}u) {
      let c = t / EV;
      v_tile[c * {{DVMAX}}u + t % EV] = {{TILE_T}}(ld_v(vbase + (j0 + c) * EV + t % EV));
    }
    workgroupBarrier();
    if (row_ok) {
      var sc: array<f32, {{BC}}>;
      var tmax = NEG_BIG;
      for (var c = 0u; c < cols; c++) {
        let j = j0 + c;
        var s = NEG_BIG;
        if (band_ok(i, j)) {
          var dot = 0.0;
          for (var d = 0u; d < E; d++) { dot += qrow[d] * f32(k_tile[c * {{DMAX}}u + d]); }
          s = dot;
          if (params.mask_kind != 0u) { s = apply_mask(s, ld_mask(mrow + j * params.mask_col)); }
        }
        sc[c] = s;
        tmax = max(tmax, s);
      }
      let new_m = max(m, tmax);
      if (new_m > MASKED) {
        // Online softmax: rescale what was accumulated when the running max grows.
        let alpha = select(exp(m - new_m), 0.0, m <= MASKED);
        sum *= alpha;
        for (var d = 0u; d < EV; d++) { acc[d] *= alpha; }
        for (var c = 0u; c < cols; c++) {
          let p = select(exp(sc[c] - new_m), 0.0, sc[c] <= MASKED);
          sum += p; // the normaliser counts dropped weights too: dropout follows softmax
          var w = p;
          if (params.drop_thr != 0u) {
            w = select(w * params.keep_scale, 0.0, (mix32(row_hash ^ (j0 + c)) >> 8u) < params.drop_thr);
          }
          for (var d = 0u; d < EV; d++) { acc[d] += w * f32(v_tile[c * {{DVMAX}}u + d]); }
        }
        m = new_m;
      }
    }
    workgroupBarrier();
  }
  if (row_ok) {
    let ob = (bh * S + i) * EV;
    let inv = select(1.0 / sum, 0.0, sum == 0.0); // a row with no visible key outputs zeros
    for (var d = 0u; d < EV; d++) { out[ob + d] = acc[d] * inv; }
  }
}
