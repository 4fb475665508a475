// BENCH-ONLY lab shader (scripts/bench-webgpu-tc.mjs registers it as flash-sgmat-kvc-lab.wgsl;
// nothing here ships): sgmat_st (one subgroup of 32 query rows, transposed scores, 16-key blocks,
// Q^T in registers) with K and V staged through workgroup memory at constant offsets.
// Why: under Dawn's robustness every subgroupMatrixLoad whose offset is not a constant is wrapped
// by Tint in a bounds test and a zero-initialised copy (always so for storage buffers: the H200's
// driver lacks cooperativeMatrixRobustBufferAccess, so vulkan_use_cooperative_matrix_robust_access
// is forced off), and sgmat_st's K and V tiles all come from storage; disable_robustness ran it
// 46-56% faster (2026-12-04). Here K and V arrive by 128-bit loads (k, v bound as array<vec4<u32>>) and every
// matrix load is from a fixed workgroup array at a constant offset: nothing is predicated, and
// the staging stores index from local_invocation_index and constants (range-analysed, unclamped).
// One K buffer and one V buffer, no double buffering, no barrier added:
//   PF = 0, top of block b: loads of V_b and K_{b+1} into registers (2 DK vec4 a lane);
//   PF = 1: the same loads issued a block earlier, right after block b - 1's stores (their
//           latency spans block b - 1's P V and block b's products and softmax);
//   S^T = K_b Q^T (k_sm); store S^T; A; softmax -> P^T;
//   V_b -> v_sm (block b - 1's P V read it before A), K_{b+1} -> k_sm (block b's products read
//   K_b before A); B; O += P V_b (v_sm).
// Measured on the H200 (2026-12-04, docs/performance-webgpu.md): disable_robustness gains it only
// 4-11% (the predication was sgmat_st's robustness cost) but the staging costs as much: 46.6-47.0
// against 48.0-48.4 TF/s at S = 4096 D = 64, 51.8 against 48.9 at S = 16384; at D = 128 it spills.
// PF = 1 ran 32.9.
// Template parameters: DM (head dim, a multiple of 16), DK = DM / 16, PF, PACK, LOWER.
enable f16;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
//#include "common.wgsl"
//#include "pack.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f16>;
// Whole f16 buffers bound at offset 0; rows of DM halves (a multiple of 16): every 8-half group
// of a head starts on 16 bytes.
@group(0) @binding(2) var<storage, read> k: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<u32>>;

alias LeftM = subgroup_matrix_left<f16, 16, 16>;
alias RightM = subgroup_matrix_right<f16, 16, 16>;
alias ResM = subgroup_matrix_result<f32, 16, 16>;
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
const D8: u32 = DM / 8u;
const OST: u32 = 36u;
// P's region also stages Q^T, 16 rows per round, before the loop.
const PREG: u32 = max(BC * PST, 16u * KST);

var<workgroup> s_sc: array<f32, BC * SST>;
var<workgroup> p_sc: array<f16, PREG>;
// The block's K tile (16 keys x DM, rows of KST halves) and V tile, zero past L.
var<workgroup> k_sm: array<f16, 16u * KST>;
var<workgroup> v_sm: array<f16, 16u * KST>;
// Rescale flags, one per block parity (block b sets flags[b & 1], clears flags[(b + 1) & 1]).
// Every workgroup variable is a multiple of 16 bytes, so the matrix arrays stay 16-byte aligned.
var<workgroup> flags: array<u32, 4>;

// local_invocation_index first: Tint's range analysis reads the entry point's parameters in order
// and stops at the first that is not an integer builtin.
@compute @workgroup_size(32)
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
  let kvb8 = kv_head(bh) * L * D8;
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

  // ---- K of the first block into k_sm ----
  if (b_first < nblocks) {
    let j0 = b_first * BC;
//#for n in 0..DK
    {
      let g = lid + {{n}}u * 32u;
      let row = g / D8;
      let col = g % D8;
      let w = select(vec4<u32>(), k[kvb8 + min(j0 + row, L - 1u) * D8 + col], j0 + row < L);
      let o = row * KST + col * 8u;
      let h0 = bitcast<vec2<f16>>(w.x); let h1 = bitcast<vec2<f16>>(w.y); let h2 = bitcast<vec2<f16>>(w.z); let h3 = bitcast<vec2<f16>>(w.w);
      k_sm[o] = h0.x; k_sm[o + 1u] = h0.y; k_sm[o + 2u] = h1.x; k_sm[o + 3u] = h1.y;
      k_sm[o + 4u] = h2.x; k_sm[o + 5u] = h2.y; k_sm[o + 6u] = h3.x; k_sm[o + 7u] = h3.y;
    }
//#end
  }
//#for n in 0..DK
  var vn_{{n}} = vec4<u32>();
  var kn_{{n}} = vec4<u32>();
//#end
//#if PF
  // V of the first block and K of the second, loaded a whole block before their stores.
  if (b_first < nblocks) {
    let j0 = b_first * BC;
    let jn = j0 + BC;
    let more = jn < jend;
//#for n in 0..DK
    {
      let g = lid + {{n}}u * 32u;
      let row = g / D8;
      let col = g % D8;
      vn_{{n}} = select(vec4<u32>(), v[kvb8 + min(j0 + row, L - 1u) * D8 + col], j0 + row < L);
      if (more) { kn_{{n}} = select(vec4<u32>(), k[kvb8 + min(jn + row, L - 1u) * D8 + col], jn + row < L); }
    }
//#end
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
    let jn = j0 + BC;
    let more = jn < jend;
//#if !PF
    // ---- loads of V_b and K_{b+1}, written to v_sm / k_sm between A and B ----
//#for n in 0..DK
    {
      let g = lid + {{n}}u * 32u;
      let row = g / D8;
      let col = g % D8;
      vn_{{n}} = select(vec4<u32>(), v[kvb8 + min(j0 + row, L - 1u) * D8 + col], j0 + row < L);
      if (more) { kn_{{n}} = select(vec4<u32>(), k[kvb8 + min(jn + row, L - 1u) * D8 + col], jn + row < L); }
    }
//#end
//#end
    // ---- S^T of the block to workgroup memory ----
    // The products are guarded although every block has a visible key (j0 < jend): without the
    // test NVIDIA's compiler builds a 5x larger loop holding 254 registers at D = 64 (8 warps per
    // SM) and the kernel ran 34.0 TF/s instead of 48.4 (H200, S = 4096; docs/performance-webgpu.md).
    s0 = ResM();
    s1 = ResM();
    if (j0 < jend) {
//#for kk in 0..DK
      {
        let kt = subgroupMatrixLoad<LeftM, row_major>(&k_sm, {{kk}}u * 16u, KST);
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
    // V_b and K_{b+1} into workgroup memory (their previous contents were last read before A).
//#for n in 0..DK
    {
      let g = lid + {{n}}u * 32u;
      let o = (g / D8) * KST + (g % D8) * 8u;
      let a0 = bitcast<vec2<f16>>(vn_{{n}}.x); let a1 = bitcast<vec2<f16>>(vn_{{n}}.y); let a2 = bitcast<vec2<f16>>(vn_{{n}}.z); let a3 = bitcast<vec2<f16>>(vn_{{n}}.w);
      v_sm[o] = a0.x; v_sm[o + 1u] = a0.y; v_sm[o + 2u] = a1.x; v_sm[o + 3u] = a1.y;
      v_sm[o + 4u] = a2.x; v_sm[o + 5u] = a2.y; v_sm[o + 6u] = a3.x; v_sm[o + 7u] = a3.y;
      if (more) {
        let c0 = bitcast<vec2<f16>>(kn_{{n}}.x); let c1 = bitcast<vec2<f16>>(kn_{{n}}.y); let c2 = bitcast<vec2<f16>>(kn_{{n}}.z); let c3 = bitcast<vec2<f16>>(kn_{{n}}.w);
        k_sm[o] = c0.x; k_sm[o + 1u] = c0.y; k_sm[o + 2u] = c1.x; k_sm[o + 3u] = c1.y;
        k_sm[o + 4u] = c2.x; k_sm[o + 5u] = c2.y; k_sm[o + 6u] = c3.x; k_sm[o + 7u] = c3.y;
      }
    }
//#end
//#if PF
    // V_{b+1} and K_{b+2}, in flight across this block's P V and the next block's products.
    {
      let jv = jn;
      let jk = jn + BC;
      let vmore = jv < jend;
      let kmore = jk < jend;
//#for n in 0..DK
      if (vmore) {
        let g = lid + {{n}}u * 32u;
        let row = g / D8;
        let col = g % D8;
        vn_{{n}} = select(vec4<u32>(), v[kvb8 + min(jv + row, L - 1u) * D8 + col], jv + row < L);
        if (kmore) { kn_{{n}} = select(vec4<u32>(), k[kvb8 + min(jk + row, L - 1u) * D8 + col], jk + row < L); }
      }
//#end
    }
//#end
    // B: P^T, V_b and K_{b+1} visible; the flag is the same for the whole workgroup.
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
        let vt = subgroupMatrixLoad<RightM, row_major>(&v_sm, {{dt}}u * 16u, KST);
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
