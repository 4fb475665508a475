// BENCH-ONLY lab copy of shaders/flash-sgmat-st.wgsl (scripts/bench-webgpu-tc.mjs registers it as
// flash-sgmat-sti-lab.wgsl; nothing here ships): the same kernel with every per-lane workgroup
// access of the block loop written in main() from local_invocation_index, constants and simple
// for-loop counters (the softmax passes and the block max inlined, not helper functions), so that
// Tint's robustness transform with integer range analysis (on in this Dawn without the toggle
// enable_integer_range_analysis_in_robustness: the SPIR-V is the same with it) proves them in
// bounds and leaves out their clamps: a helper's parameters have no range, so every access inside
// one is clamped. Measured on the H200 (2026-12-04, docs/performance-webgpu.md): the clamps go
// (12 -> 9 UMin in the SPIR-V), the speed does not change (48.4 against 48.0 TF/s at D = 64). The edge and interior blocks share one pass (lo = 0, lim = BC in
// interior blocks: one compare and select per score more than sgmat_st's interior pass).
// Template parameters as flash-sgmat-st.wgsl: DM, DK, KTAIL, PACK, LOWER.
//#include "sgmat-prelude.wgsl"
//#include "common.wgsl"
//#include "pack.wgsl"

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

const BC: u32 = 16u;
const DM: u32 = {{DM}}u;
// Lazy-max threshold (log2 units): P <= 2^TH fits f16 and O is rescaled only when a max moves more.
const TH: f32 = 8.0;
// Row strides: S^T and P^T rows are 32 queries plus padding that keeps rows 16-byte aligned;
// staged Q and tail rows are DM plus 8 halves; O passes through 16 columns of 32 (+4) floats.
const SST: u32 = 36u;
const PST: u32 = 40u;
const KST: u32 = DM + 8u;
const OST: u32 = 36u;
// P's region also stages Q^T, 16 rows per round, before the loop.
const PREG: u32 = max(BC * PST, 16u * KST);

var<workgroup> s_sc: array<f32, BC * SST>;
var<workgroup> p_sc: array<f16, PREG>;
//#if KTAIL
// The partial last key tile of K (rows 0..15) and V (rows 16..31), zero past L.
var<workgroup> kv_tail: array<f16, 32u * KST>;
//#end
// Rescale flags, one per block parity (block b sets flags[b & 1], clears flags[(b + 1) & 1]).
// Every workgroup variable is a multiple of 16 bytes, so the matrix arrays stay 16-byte aligned.
var<workgroup> flags: array<u32, 4>;

// The K tile of keys [jt, jt + 16), head-dim columns [16 kk, 16 kk + 16), as a left matrix.
fn k_tile(kvb: u32, jt: u32, kk: u32) -> LeftM {
//#if KTAIL
  if (jt + 16u > params.l) { return subgroupMatrixLoad<LeftM, row_major>(&kv_tail, kk * 16u, KST); }
//#end
  return subgroupMatrixLoad<LeftM, row_major>(&k, kvb + jt * DM + kk * 16u, DM);
}
// The V tile of keys [jt, jt + 16), columns [16 dt, 16 dt + 16), as a right matrix.
fn v_tile(kvb: u32, jt: u32, dt: u32) -> RightM {
//#if KTAIL
  if (jt + 16u > params.l) { return subgroupMatrixLoad<RightM, row_major>(&kv_tail, 16u * KST + dt * 16u, KST); }
//#end
  return subgroupMatrixLoad<RightM, row_major>(&v, kvb + jt * DM + dt * 16u, DM);
}

@compute @workgroup_size(32)
// local_invocation_index first: Tint's range analysis reads the entry point's parameters in order
// and stops at the first that is not an integer builtin.
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let bh = wid.y + wid.z * nwg.y;
  // Uniform per workgroup: every invocation returns together, before any barrier.
  if (bh >= params.bh_count) { return; }
  let S = params.s;
  let L = params.l;
  let ln = lid;
  let i0 = wid.x * 32u;   // the workgroup's first row
  let i = i0 + ln;        // the lane's row
  let qb = bh * S * DM;
  let kvb = kv_head(bh) * L * DM;
  let scl = params.scale * 1.4426950408889634;
  let causal = params.causal != 0u;
  let dropping = params.drop_thr != 0u;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  if (lid < 4u) { flags[lid] = 0u; }

  // ---- Q^T: rows staged (zero past S), loaded col_major as right matrices ----
//#for rt in 0..2
  workgroupBarrier();
  for (var t = ln; t < 16u * DM; t += 32u) {
    let gi = i0 + {{rt}}u * 16u + t / DM;
    p_sc[(t / DM) * KST + t % DM] = select(f16(0.0), q[qb + min(gi, S - 1u) * DM + t % DM], gi < S);
  }
  workgroupBarrier();
//#for kk in 0..DK
  let q_{{rt}}_{{kk}} = subgroupMatrixLoad<RightM, col_major>(&p_sc, {{kk}}u * 16u, KST);
//#end
//#end

  // Keys the lane's row sees (jvis), every row of the workgroup sees (jfull: blocks below it need
  // no mask) and some row of the workgroup sees (jend: tiles from it on are skipped).
  let jvis = select(L, u32(clamp(i32(i) + params.diag + 1, 0, i32(L))), causal);
  let jfull = select(L, u32(clamp(i32(i0) + params.diag + 1, 0, i32(L))), causal);
  let jend = select(L, u32(clamp(i32(i0 + 31u) + params.diag + 1, 0, i32(L))), causal);
  let nblocks = (jend + BC - 1u) / BC;
  var b_first = 0u;
//#if LOWER
  // A sliding window's lower edge: keys below jlow are invisible to the lane's row, and blocks
  // below the workgroup's first row's edge are skipped.
  let jlow = u32(clamp(i32(i) + params.ldiag, 0, i32(L)));
  b_first = band_begin(i0, BC) / BC;
//#end

//#if KTAIL
  // A partial last key tile (direct tile loads would cross the end of k and v) in workgroup memory.
  let tail0 = L - L % 16u;
  if (tail0 < jend) {
    for (var t = lid; t < 16u * DM; t += 32u) {
      let j = tail0 + t / DM;
      let src = kvb + min(j, L - 1u) * DM + t % DM;
      kv_tail[(t / DM) * KST + t % DM] = select(f16(0.0), k[src], j < L);
      kv_tail[(16u + t / DM) * KST + t % DM] = select(f16(0.0), v[src], j < L);
    }
  }
//#end
  workgroupBarrier();

//#for rt in 0..2
//#for dt in 0..DK
  var o_{{rt}}_{{dt}} = ResM();
//#end
//#end
  var s0 = ResM();
  var s1 = ResM();
  var m = NEG_BIG;
  var sum = 0.0;

  for (var b = b_first; b < nblocks; b++) {
    let j0 = b * BC;
    let par = b & 1u;
    // ---- S^T of the block to workgroup memory ----
    // The products are guarded although every block has a visible key (j0 < jend): without the
    // test NVIDIA's compiler builds a 5x larger loop holding 254 registers at D = 64 (8 warps per
    // SM) and the kernel ran 34.0 TF/s instead of 48.4 (H200, S = 4096; docs/performance-webgpu.md).
    s0 = ResM();
    s1 = ResM();
    if (j0 < jend) {
//#for kk in 0..DK
      {
        let kt = k_tile(kvb, j0, {{kk}}u);
        s0 = subgroupMatrixMultiplyAccumulate(kt, q_0_{{kk}}, s0);
        s1 = subgroupMatrixMultiplyAccumulate(kt, q_1_{{kk}}, s1);
      }
//#end
    }
    subgroupMatrixStore<row_major>(&s_sc, 0u, s0, SST);
    subgroupMatrixStore<row_major>(&s_sc, 16u, s1, SST);
    workgroupBarrier();  // A: S^T of the block visible to the lanes
    // flags[1 - par] was last read by block b - 1's uniform load, before its barriers.
    if (lid == 0u) { flags[1u - par] = 0u; }

    // ---- softmax of the block: one pass, a second only where the reference max moves ----
    let lim = select(BC, min(u32(max(i32(jvis) - i32(j0), 0)), BC), j0 + BC > jfull);
    var lo = 0u;
    var edge = j0 + BC > jfull;
//#if LOWER
    lo = min(u32(max(i32(jlow) - i32(j0), 0)), BC);
    edge = true;
//#end
    // Interior blocks: no mask (lo = 0, lim = BC).
    let lo_b = select(0u, lo, edge);
    let lim_b = select(BC, lim, edge);
    var bsum = 0.0;
    var hot = false;
    for (var c = 0u; c < BC; c++) {
      let t = select(NEG_BIG, fma(s_sc[lid + c * SST], scl, -m), c >= lo_b && c < lim_b);
      hot = hot | (t > TH);
      let p = exp2(t);
      bsum += p;
      var w = p;
      if (dropping) { w = select(p, 0.0, (mix32(row_hash ^ (j0 + c)) >> 8u) < params.drop_thr); }
      p_sc[lid + c * PST] = f16(w);
    }
    var alpha = 1.0;
    if (hot) {
      var mx = NEG_BIG;
      for (var c = 0u; c < BC; c++) { mx = max(mx, select(NEG_BIG, s_sc[lid + c * SST] * scl, c >= lo_b && c < lim_b)); }
      // While m is NEG_BIG, O and sum are still zero: nothing to rescale.
      if (m > MASKED) {
        alpha = exp2(m - mx);
        flags[par] = 1u;
      }
      sum *= alpha;
      m = mx;
      bsum = 0.0;
      for (var c = 0u; c < BC; c++) {
        let t = select(NEG_BIG, fma(s_sc[lid + c * SST], scl, -m), c >= lo_b && c < lim_b);
        let p = exp2(t);
        bsum += p;
        var w = p;
        if (dropping) { w = select(p, 0.0, (mix32(row_hash ^ (j0 + c)) >> 8u) < params.drop_thr); }
        p_sc[lid + c * PST] = f16(w);
      }
    }
    sum += bsum;
    // B: P^T visible; the flag is the same for the whole workgroup.
    let rescale = workgroupUniformLoad(&flags[par]);
    if (rescale != 0u) {
      // O *= alpha per row: O^T through workgroup memory 16 columns at a time, so each lane
      // scales its own column (the S^T region is free since B).
//#for dt in 0..DK
      subgroupMatrixStore<col_major>(&s_sc, 0u, o_0_{{dt}}, OST);
      subgroupMatrixStore<col_major>(&s_sc, 16u, o_1_{{dt}}, OST);
      workgroupBarrier();
      for (var c = 0u; c < 16u; c++) { s_sc[c * OST + lid] *= alpha; }
      workgroupBarrier();
      o_0_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&s_sc, 0u, OST);
      o_1_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&s_sc, 16u, OST);
      workgroupBarrier();
//#end
    }

    // ---- O += P V (guarded like the products above) ----
    if (j0 < jend) {
      let p0 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, 0u, PST);
      let p1 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, 16u, PST);
//#for dt in 0..DK
      {
        let vt = v_tile(kvb, j0, {{dt}}u);
        o_0_{{dt}} = subgroupMatrixMultiplyAccumulate(p0, vt, o_0_{{dt}});
        o_1_{{dt}} = subgroupMatrixMultiplyAccumulate(p1, vt, o_1_{{dt}});
      }
//#end
    }
    // The next block's S^T stores follow B (every read of S^T is before it) and its softmax's P^T
    // writes follow its A (every read of P^T is before it): no barrier here.
  }

  // ---- out = O / sum, packed to 16 bits; rows past S are not written ----
  // Rows with no visible key (lower-right with L < S) have sum 0 and output 0, like every backend.
  let inv = select(params.keep_scale / sum, 0.0, sum == 0.0);
  let ob = (bh * S + i) * (DM / 2u);
//#for dt in 0..DK
  workgroupBarrier();
  subgroupMatrixStore<col_major>(&s_sc, 0u, o_0_{{dt}}, OST);
  subgroupMatrixStore<col_major>(&s_sc, 16u, o_1_{{dt}}, OST);
  workgroupBarrier();
  if (i < S) {
    for (var c = 0u; c < 8u; c++) {
      out[ob + {{dt}}u * 8u + c] = {{PACK}}(s_sc[2u * c * OST + lid] * inv, s_sc[(2u * c + 1u) * OST + lid] * inv);
    }
  }
//#end
}
