// FLASH_ATTENTION on tensor cores through subgroup matrices (Dawn's
// chromium_experimental_subgroup_matrix, f16 x f16 -> f32, 16x16x16). One workgroup is one
// subgroup of SG lanes and owns SG query rows of one flat head (lane r owns row r for the softmax).
// Per key block of BC=64 keys:
//   S  = Q K^T        2x4 result tiles, straight from global memory (K^T read column-major);
//   softmax           each lane rescales its row online, writes P as f16 to workgroup memory;
//   O  = O*alpha + P V O lives in workgroup memory (f32), loaded as result tiles, accumulated, stored.
// All matrix offsets derive from workgroup_id and uniforms: subgroup-matrix operands must be
// workgroup-uniform. f16 storage, f32 accumulation; causal variants need no mask buffer.
// Template parameters: SG (subgroup size = rows per workgroup, a multiple of 16), DMAX (head-dim bucket),
// CAUSAL_SKIP (1: skip key blocks past the block's diagonal).
//#include "sgmat-prelude.wgsl"
//#include "common.wgsl"

@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const BR: u32 = {{SG}}u;
const BC: u32 = 64u;
const DM: u32 = {{DMAX}}u;

var<workgroup> s_tile: array<f32, BR * BC>;
var<workgroup> p_tile: array<f16, BR * BC>;
var<workgroup> o_tile: array<f32, BR * DM>;

@compute @workgroup_size({{SG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= params.bh_count) { return; }
  let S = params.s;
  let L = params.l;
  let E = params.e;
  let i0 = wid.x * BR;
  let qb = (bh * S + i0) * E;
  let kvh = kv_head(bh);
  let kb = kvh * L * E;
  let vb = kvh * L * E;
  let r = lid;
  let i = i0 + r;

  for (var t = lid; t < BR * DM; t += BR) { o_tile[t] = 0.0; }
  var m = NEG_BIG;
  var sum = 0.0;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);

  var j_end = L;
  if ({{CAUSAL_SKIP}}u == 1u && params.causal != 0u) {
    let last = i32(min(i0 + BR, S)) + params.diag;
    j_end = u32(clamp(last, 0, i32(L)));
  }
  workgroupBarrier();

  for (var j0 = band_begin(i0, BC); j0 < j_end; j0 += BC) {
    // S = Q K^T for the block: per 16-row tile, four 16-key tiles share each Q fragment.
    for (var rt = 0u; rt < BR / 16u; rt++) {
      var a0 = ResM();
      var a1 = ResM();
      var a2 = ResM();
      var a3 = ResM();
      let qo = qb + rt * 16u * E;
      let ko = kb + j0 * E;
      for (var kk = 0u; kk < E; kk += 16u) {
        let a = subgroupMatrixLoad<LeftM, row_major>(&q, qo + kk, E);
        a0 = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, col_major>(&k, ko + kk, E), a0);
        a1 = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, col_major>(&k, ko + 16u * E + kk, E), a1);
        a2 = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, col_major>(&k, ko + 32u * E + kk, E), a2);
        a3 = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM, col_major>(&k, ko + 48u * E + kk, E), a3);
      }
      let so = rt * 16u * BC;
      subgroupMatrixStore<row_major>(&s_tile, so, a0, BC);
      subgroupMatrixStore<row_major>(&s_tile, so + 16u, a1, BC);
      subgroupMatrixStore<row_major>(&s_tile, so + 32u, a2, BC);
      subgroupMatrixStore<row_major>(&s_tile, so + 48u, a3, BC);
    }
    workgroupBarrier();

    // Online softmax, one lane per row; keys past L (tile padding) and above the diagonal get P = 0.
    // Lane r starts at column r: rows lie a multiple of 32 banks apart, so walking columns in
    // step would put all lanes on one bank.
    var tmax = NEG_BIG;
    for (var cc = 0u; cc < BC; cc++) {
      let c = (cc + r) % BC;
      let j = j0 + c;
      if (j < j_end && band_ok(i, j)) { tmax = max(tmax, s_tile[r * BC + c] * params.scale); }
    }
    let new_m = max(m, tmax);
    var alpha = 1.0;
    if (new_m > MASKED) {
      alpha = select(exp(m - new_m), 0.0, m <= MASKED);
      sum *= alpha;
    }
    for (var cc = 0u; cc < BC; cc++) {
      let c = (cc + r) % BC;
      let j = j0 + c;
      var w = 0.0;
      if (new_m > MASKED && j < j_end && band_ok(i, j)) {
        let p = exp(s_tile[r * BC + c] * params.scale - new_m);
        sum += p;
        w = p;
        if (params.drop_thr != 0u) {
          w = select(p * params.keep_scale, 0.0, (mix32(row_hash ^ j) >> 8u) < params.drop_thr);
        }
      }
      p_tile[r * BC + c] = f16(w);
    }
    if (alpha != 1.0) {
      for (var dd = 0u; dd < E; dd++) { let d = (dd + r) % E; o_tile[r * DM + d] *= alpha; }
    }
    m = new_m;
    workgroupBarrier();

    // O += P V: V rows are read row-major straight from global memory.
    for (var rt = 0u; rt < BR / 16u; rt++) {
      let po = rt * 16u * BC;
      let p0 = subgroupMatrixLoad<LeftM, row_major>(&p_tile, po, BC);
      let p1 = subgroupMatrixLoad<LeftM, row_major>(&p_tile, po + 16u, BC);
      let p2 = subgroupMatrixLoad<LeftM, row_major>(&p_tile, po + 32u, BC);
      let p3 = subgroupMatrixLoad<LeftM, row_major>(&p_tile, po + 48u, BC);
      for (var dt = 0u; dt < E; dt += 16u) {
        let oo = rt * 16u * DM + dt;
        var o = subgroupMatrixLoad<ResM, row_major>(&o_tile, oo, DM);
        let vo = vb + j0 * E + dt;
        o = subgroupMatrixMultiplyAccumulate(p0, subgroupMatrixLoad<RightM, row_major>(&v, vo, E), o);
        o = subgroupMatrixMultiplyAccumulate(p1, subgroupMatrixLoad<RightM, row_major>(&v, vo + 16u * E, E), o);
        o = subgroupMatrixMultiplyAccumulate(p2, subgroupMatrixLoad<RightM, row_major>(&v, vo + 32u * E, E), o);
        o = subgroupMatrixMultiplyAccumulate(p3, subgroupMatrixLoad<RightM, row_major>(&v, vo + 48u * E, E), o);
        subgroupMatrixStore<row_major>(&o_tile, oo, o, DM);
      }
    }
    workgroupBarrier();
  }

  if (i < S) {
    let ob = (bh * S + i) * E;
    let inv = select(1.0 / sum, 0.0, sum == 0.0);
    for (var dd = 0u; dd < E; dd++) { let d = (dd + r) % E; out[ob + d] = o_tile[r * DM + d] * inv; }
  }
}
