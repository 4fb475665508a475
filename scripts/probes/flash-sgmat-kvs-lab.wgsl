// BENCH-ONLY lab shader (scripts/bench-webgpu-tc.mjs registers it as flash-sgmat-kvs-lab.wgsl;
// nothing here ships): shaders/flash-sgmat-st.wgsl with K and V staged through workgroup memory.
// NW subgroups of 32 lanes per workgroup, each as in sgmat_st (32 query rows, transposed scores,
// 16-key blocks, Q^T in registers, its own S^T / P^T region and softmax). What they share is the
// K and V tiles: each block's 16 keys of K and V are loaded once per workgroup with coalesced
// 128-bit loads (k and v bound as array<vec4<u32>>: one bounds clamp per 8 halves instead of the
// per-matrix clamps of tile loads from storage), one block ahead into registers, and written into
// the other half of a double buffer before the block's second barrier; the products then load
// their K and V matrices from workgroup memory. So the barriers per block stay those of sgmat_st
// (A: S^T visible; B: P^T and the next block's K/V visible) and no barrier is added for the
// staging; with NW > 1 they are workgroup barriers across NW warps.
//
//   global:  K/V of block b + 1 -> registers (issued at the top of block b, NPL vec4 a lane each)
//   block b: S^T = K_b Q^T (K_b from kv_sm[b & 1]); store S^T; A; softmax -> P^T;
//            registers -> kv_sm[(b + 1) & 1]; B; O += P V_b (V_b from kv_sm[b & 1]).
// The zero fill past L (a partial last tile) is done by the staging itself: no KTAIL copy.
// kv_sm[(b + 1) & 1] was last read by block b - 1's P V, which precedes block b's A in every warp.
//
// Measured on the H200 (2026-12-04, docs/performance-webgpu.md): slower than sgmat_st in every
// configuration (NW = 4: 35.1 against 47.7 TF/s at S = 4096 D = 64, 45.6 against 55.7 at D = 128).
// Template parameters: DM (head dim, E = Ev, a multiple of 16), DK = DM / 16, NW (subgroups per
// workgroup), NPL (vec4 of K, and of V, a lane stages per block: ceil(2 DM / (32 NW))), SCM, PACK
// (pack_f16 | pack_bf16), LOWER (a sliding window's lower edge).
enable f16;
enable chromium_experimental_subgroup_matrix;
// Matrix operations are guarded per subgroup (a causal subgroup past its diagonal skips them).
diagnostic(off, chromium.subgroup_matrix_uniformity);
//#include "common.wgsl"
//#include "pack.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f16>;
// The library binds whole f16 buffers at offset 0; rows are DM halves (a multiple of 16), so every
// 8-half group of a head starts on 16 bytes.
@group(0) @binding(2) var<storage, read> k: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

alias LeftM = subgroup_matrix_left<f16, 16, 16>;
alias RightM = subgroup_matrix_right<f16, 16, 16>;
alias ResM = subgroup_matrix_result<f32, 16, 16>;

const NW: u32 = {{NW}}u;
const WGS: u32 = NW * 32u;
const BC: u32 = 16u;
const DM: u32 = {{DM}}u;
const D8: u32 = DM / 8u;
const TH: f32 = 8.0;
// SCM = 0: S^T and P^T stored as in sgmat_st (row = key: a lane reads its column, one word per
// key). SCM = 1: stored row = query (S^T col_major, P row_major), so a lane's 16 scores and 16
// probabilities are contiguous (vector accesses where the driver merges them; rows of 20 floats and
// 24 halves keep 16-byte accesses of 8 lanes on distinct banks).
const SCM: bool = {{SCM}}u != 0u;
const SST: u32 = select(36u, 20u, SCM);
const PST: u32 = select(40u, 24u, SCM);
// Steps between a lane's consecutive keys (SCS, PCS) and between lanes (SLN, PLN).
const SCS: u32 = select(SST, 1u, SCM);
const SLN: u32 = select(1u, SST, SCM);
const PCS: u32 = select(PST, 1u, SCM);
const PLN: u32 = select(1u, PST, SCM);
const KST: u32 = DM + 8u;
const OST: u32 = 36u;
// 32 rows of SST when stored by query; BC rows otherwise; O passes through 16 x OST floats of it.
const SREG: u32 = max(select(BC * SST, 32u * SST, SCM), 16u * OST);
const PREG: u32 = max(select(BC * PST, 32u * PST, SCM), 16u * KST);
// One half of the K/V double buffer: K rows 0..15, V rows 16..31.
const KVH: u32 = 32u * KST;

var<workgroup> s_sc: array<f32, NW * SREG>;
var<workgroup> p_sc: array<f16, NW * PREG>;
var<workgroup> kv_sm: array<f16, 2u * KVH>;
var<workgroup> flags: array<u32, 4>;

// Eight halves (one vec4<u32>) at kv_sm[o..o + 8).
fn put8(o: u32, w: vec4<u32>) {
  let a = bitcast<vec2<f16>>(w.x);
  let b = bitcast<vec2<f16>>(w.y);
  let c = bitcast<vec2<f16>>(w.z);
  let d = bitcast<vec2<f16>>(w.w);
  kv_sm[o] = a.x; kv_sm[o + 1u] = a.y; kv_sm[o + 2u] = b.x; kv_sm[o + 3u] = b.y;
  kv_sm[o + 4u] = c.x; kv_sm[o + 5u] = c.y; kv_sm[o + 6u] = d.x; kv_sm[o + 7u] = d.y;
}

// The vec4 index of staging slot g (0 .. 2 DM) of the block at key j0: row g / D8, 8-half group g % D8;
// rows at or past L read row L - 1 (and are zeroed by the caller).
fn kv_index(kvb8: u32, j0: u32, g: u32) -> u32 {
  return kvb8 + min(j0 + g / D8, params.l - 1u) * D8 + g % D8;
}
fn kv_smem(g: u32) -> u32 { return (g / D8) * KST + (g % D8) * 8u; }

fn softmax_pass(sl: u32, pl: u32, lo: u32, lim: u32, m: f32, scl: f32, j0: u32, row_hash: u32, dropping: bool) -> vec2<f32> {
  var bsum = 0.0;
  var hot = false;
  for (var c = 0u; c < BC; c++) {
//#if !LOWER
    let t = select(NEG_BIG, fma(s_sc[sl + c * SCS], scl, -m), c < lim);
//#end
//#if LOWER
    let t = select(NEG_BIG, fma(s_sc[sl + c * SCS], scl, -m), c >= lo && c < lim);
//#end
    hot = hot | (t > TH);
    let p = exp2(t);
    bsum += p;
    var w = p;
    if (dropping) { w = select(p, 0.0, (mix32(row_hash ^ (j0 + c)) >> 8u) < params.drop_thr); }
    p_sc[pl + c * PCS] = f16(w);
  }
  return vec2<f32>(bsum, select(0.0, 1.0, hot));
}

fn block_max(sl: u32, lo: u32, lim: u32, scl: f32) -> f32 {
  var mx = NEG_BIG;
  for (var c = 0u; c < BC; c++) { mx = max(mx, select(NEG_BIG, s_sc[sl + c * SCS] * scl, c >= lo && c < lim)); }
  return mx;
}

@compute @workgroup_size(WGS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= params.bh_count) { return; }
  let S = params.s;
  let L = params.l;
  let sg = lid / 32u;
  let ln = lid % 32u;
  let iw = wid.x * WGS;        // the workgroup's first row
  let i0 = iw + sg * 32u;      // the subgroup's first row
  let i = i0 + ln;             // the lane's row
  let sbase = sg * SREG;
  let pbase = sg * PREG;
  let qb = bh * S * DM;
  let kvb8 = kv_head(bh) * L * D8;
  let scl = params.scale * 1.4426950408889634;
  let causal = params.causal != 0u;
  let dropping = params.drop_thr != 0u;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  if (lid < 4u) { flags[lid] = 0u; }

  // ---- Q^T of the subgroup's rows: staged (zero past S) in its P region, loaded col_major ----
//#for rt in 0..2
  workgroupBarrier();
  for (var t = ln; t < 16u * DM; t += 32u) {
    let gi = i0 + {{rt}}u * 16u + t / DM;
    p_sc[pbase + (t / DM) * KST + t % DM] = select(f16(0.0), q[qb + min(gi, S - 1u) * DM + t % DM], gi < S);
  }
  workgroupBarrier();
//#for kk in 0..DK
  let q_{{rt}}_{{kk}} = subgroupMatrixLoad<RightM, col_major>(&p_sc, pbase + {{kk}}u * 16u, KST);
//#end
//#end

  // Per lane (jvis), per subgroup (jfull: blocks below need no mask; jend_s: its tiles from it on
  // are skipped) and per workgroup (jend: the loop bound, uniform for the barriers).
  let jvis = select(L, u32(clamp(i32(i) + params.diag + 1, 0, i32(L))), causal);
  let jfull = select(L, u32(clamp(i32(i0) + params.diag + 1, 0, i32(L))), causal);
  let jend_s = select(L, u32(clamp(i32(i0 + 31u) + params.diag + 1, 0, i32(L))), causal);
  let jend = select(L, u32(clamp(i32(iw + WGS - 1u) + params.diag + 1, 0, i32(L))), causal);
  let nblocks = (jend + BC - 1u) / BC;
  var b_first = 0u;
//#if LOWER
  let jlow = u32(clamp(i32(i) + params.ldiag, 0, i32(L)));
  b_first = band_begin(iw, BC) / BC;
//#end

  // ---- the first block's K/V into kv_sm[b_first & 1] ----
  if (b_first < nblocks) {
    let j0 = b_first * BC;
    let h = (b_first & 1u) * KVH;
    for (var g = lid; g < 2u * DM; g += WGS) {
      let ok = j0 + g / D8 < L;
      put8(h + kv_smem(g), select(vec4<u32>(), k[kv_index(kvb8, j0, g)], ok));
      put8(h + 16u * KST + kv_smem(g), select(vec4<u32>(), v[kv_index(kvb8, j0, g)], ok));
    }
  }
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
    let h = par * KVH;
    // ---- the next block's K/V: loads issued now, written to the other buffer before B ----
    let jn = j0 + BC;
    let more = jn < jend;
//#for n in 0..NPL
    var pk_{{n}} = vec4<u32>();
    var pv_{{n}} = vec4<u32>();
    {
      // g < 2 DM is a constant test unless NPL * WGS exceeds the slots (small head dims).
      let g = lid + {{n}}u * WGS;
      if (more && g < 2u * DM) {
        let ok = jn + g / D8 < L;
        pk_{{n}} = select(vec4<u32>(), k[kv_index(kvb8, jn, g)], ok);
        pv_{{n}} = select(vec4<u32>(), v[kv_index(kvb8, jn, g)], ok);
      }
    }
//#end
    // ---- S^T of the block (the subgroup's own region); guarded as in sgmat_st ----
    s0 = ResM();
    s1 = ResM();
    if (j0 < jend_s) {
//#for kk in 0..DK
      {
        let kt = subgroupMatrixLoad<LeftM, row_major>(&kv_sm, h + {{kk}}u * 16u, KST);
        s0 = subgroupMatrixMultiplyAccumulate(kt, q_0_{{kk}}, s0);
        s1 = subgroupMatrixMultiplyAccumulate(kt, q_1_{{kk}}, s1);
      }
//#end
    }
//#if SCM
    subgroupMatrixStore<col_major>(&s_sc, sbase, s0, SST);
    subgroupMatrixStore<col_major>(&s_sc, sbase + 16u * SST, s1, SST);
//#end
//#if !SCM
    subgroupMatrixStore<row_major>(&s_sc, sbase, s0, SST);
    subgroupMatrixStore<row_major>(&s_sc, sbase + 16u, s1, SST);
//#end
    workgroupBarrier();  // A
    if (lid == 0u) { flags[1u - par] = 0u; }

    let lim = select(BC, min(u32(max(i32(jvis) - i32(j0), 0)), BC), j0 + BC > jfull);
    var lo = 0u;
    var edge = j0 + BC > jfull;
//#if LOWER
    lo = min(u32(max(i32(jlow) - i32(j0), 0)), BC);
    edge = true;
//#end
    var r = vec2<f32>(0.0, 0.0);
    if (edge) {
      r = softmax_pass(sbase + ln * SLN, pbase + ln * PLN, lo, lim, m, scl, j0, row_hash, dropping);
    } else {
      r = softmax_pass(sbase + ln * SLN, pbase + ln * PLN, 0u, BC, m, scl, j0, row_hash, dropping);
    }
    var alpha = 1.0;
    if (r.y != 0.0) {
      let mx = block_max(sbase + ln * SLN, lo, lim, scl);
      if (m > MASKED) {
        alpha = exp2(m - mx);
        flags[par] = 1u;
      }
      sum *= alpha;
      m = mx;
      r = softmax_pass(sbase + ln * SLN, pbase + ln * PLN, lo, lim, m, scl, j0, row_hash, dropping);
    }
    sum += r.x;
    // The next block's K/V into the other buffer (its last readers, block b - 1's P V, precede A).
    if (more) {
      let hn = (1u - par) * KVH;
//#for n in 0..NPL
      {
        let g = lid + {{n}}u * WGS;
        if (g < 2u * DM) {
          put8(hn + kv_smem(g), pk_{{n}});
          put8(hn + 16u * KST + kv_smem(g), pv_{{n}});
        }
      }
//#end
    }
    // B: P^T and the next K/V visible; the flag is one for the workgroup (any subgroup's moving
    // max rescales all: alpha is 1 in the others' rows).
    let rescale = workgroupUniformLoad(&flags[par]);
    if (rescale != 0u) {
//#for dt in 0..DK
      subgroupMatrixStore<col_major>(&s_sc, sbase, o_0_{{dt}}, OST);
      subgroupMatrixStore<col_major>(&s_sc, sbase + 16u, o_1_{{dt}}, OST);
      workgroupBarrier();
      for (var c = 0u; c < 16u; c++) { s_sc[sbase + c * OST + ln] *= alpha; }
      workgroupBarrier();
      o_0_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&s_sc, sbase, OST);
      o_1_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&s_sc, sbase + 16u, OST);
      workgroupBarrier();
//#end
    }

    if (j0 < jend_s) {
//#if SCM
      let p0 = subgroupMatrixLoad<LeftM, row_major>(&p_sc, pbase, PST);
      let p1 = subgroupMatrixLoad<LeftM, row_major>(&p_sc, pbase + 16u * PST, PST);
//#end
//#if !SCM
      let p0 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, pbase, PST);
      let p1 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, pbase + 16u, PST);
//#end
//#for dt in 0..DK
      {
        let vt = subgroupMatrixLoad<RightM, row_major>(&kv_sm, h + 16u * KST + {{dt}}u * 16u, KST);
        o_0_{{dt}} = subgroupMatrixMultiplyAccumulate(p0, vt, o_0_{{dt}});
        o_1_{{dt}} = subgroupMatrixMultiplyAccumulate(p1, vt, o_1_{{dt}});
      }
//#end
    }
  }

  let inv = select(params.keep_scale / sum, 0.0, sum == 0.0);
  let ob = (bh * S + i) * (DM / 2u);
//#for dt in 0..DK
  workgroupBarrier();
  subgroupMatrixStore<col_major>(&s_sc, sbase, o_0_{{dt}}, OST);
  subgroupMatrixStore<col_major>(&s_sc, sbase + 16u, o_1_{{dt}}, OST);
  workgroupBarrier();
  if (i < S) {
    for (var c = 0u; c < 8u; c++) {
      out[ob + {{dt}}u * 8u + c] = {{PACK}}(s_sc[sbase + 2u * c * OST + ln] * inv, s_sc[sbase + (2u * c + 1u) * OST + ln] * inv);
    }
  }
//#end
}
