// FLASH_ATTENTION on tensor cores through subgroup matrices (Dawn's
// chromium_experimental_subgroup_matrix, f16 x f16 -> f32, 16x16x16), four subgroups per
// workgroup. Each subgroup (32 lanes, lid / 32) owns 32 query rows of one flat head (two 16-row
// tiles; lane r owns row r for the softmax); the workgroup owns 128 rows and walks the keys in
// blocks of 16.
//
//   Q        staged through workgroup memory in four rounds of 32 rows (bounds-checked, so any S),
//            then held in 2 x DK left matrices for the whole loop;
//   per key block:
//     S = Q K^T   K^T tiles as col_major right matrices, from storage (KVS = 0: L a multiple of 16)
//                 or from the block staged in workgroup memory (KVS = 1: any L);
//     softmax     S goes to the subgroup's workgroup region; each lane computes its row's max,
//                 exp2 and sum in f32 and writes P (f16) for the left matrices;
//     O += P V    V tiles as row_major right matrices; O lives in 2 x DK result matrices.
// The row max is lazy: P is taken against a reference max that moves only when a score exceeds it
// by more than TH (log2 units), so P <= 2^TH (fits f16) and O, living in registers, is rescaled
// (a round trip through workgroup memory) only in the rare blocks where some row's reference moves.
// Dropout zeroes P after the un-dropped normaliser is summed; 1/(1-p) joins the final 1/sum.
// Matrix offsets are uniform per subgroup, not per workgroup (the prelude switches
// chromium.subgroup_matrix_uniformity off). The lane/subgroup mapping
// lid -> (lid / 32, lid % 32) is the linear one NVIDIA uses; the routing requires 32-wide subgroups.
// The shape is the fastest of the H200 tile sweeps (docs/performance-webgpu.md); the sweep's
// switches live in the bench-only scripts/probes/flash-sgmat-mw-lab.wgsl.
//
// Template parameters: DM (head dim, E = Ev, a multiple of 16), DK = DM / 16, KVS (K/V staged),
// SREG (1: each lane reads its 16 scores once into registers, the faster choice above D = 64),
// PACK (pack_f16 | pack_bf16), LOWER (1: a sliding window's lower edge, j >= i + ldiag, is applied;
// calls without one compile without it).
//#include "sgmat-prelude.wgsl"
//#include "common.wgsl"
//#include "pack.wgsl"

// The output in the call's 16-bit dtype, two values per u32 ({{PACK}}: f16 or bf16), written by
// the kernel: no f32 scratch and no pack pass (a call is this pass and its submit).
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

const NW: u32 = 4u;
const R: u32 = 32u;
const WGS: u32 = NW * 32u;
const BRW: u32 = NW * R;
const BC: u32 = 16u;
const DM: u32 = {{DM}}u;
const TH: f32 = 8.0;
// Row strides padded by 8 halves: 16-byte aligned rows, and fewer bank conflicts.
const PST: u32 = BC + 8u;
const KST: u32 = DM + 8u;

var<workgroup> s_sc: array<f32, NW * R * BC>;
var<workgroup> p_sc: array<f16, NW * R * PST>;
// Q rounds pass through it first; then (KVS = 1) the K block at 0 and the V block at BC * KST.
var<workgroup> kv_sm: array<f16, 2u * BC * KST>;
var<workgroup> row_alpha: array<f32, NW * R>;
var<workgroup> row_inv: array<f32, NW * R>;
// Rescale flags, one per block parity: block n sets flags[n & 1] and clears flags[(n + 1) & 1],
// which every invocation finished reading in block n - 1. Four words, not two: every workgroup
// variable here is a multiple of 16 bytes, so however the driver lays them out, the matrix
// arrays start 16-byte aligned. (On NVIDIA an 8-byte variable ahead of the f16 arrays made every
// result wrong: tile loads assume 16-byte alignment.)
var<workgroup> flags: array<u32, 4>;

// Copies rows [row0, row0 + nrows) of a [rows, DM] f16 matrix at `base` of q, k or v into kv_sm at
// `dst` (row stride KST); rows at or past `limit` read as zero (ragged S and L).
fn stage_q(base: u32, row0: u32, nrows: u32, limit: u32, dst: u32, lid: u32) {
  for (var t = lid; t < nrows * DM; t += WGS) {
    let rr = t / DM;
    kv_sm[dst + rr * KST + t % DM] = select(f16(0.0), q[base + row0 * DM + t], row0 + rr < limit);
  }
}
fn stage_k(base: u32, row0: u32, nrows: u32, limit: u32, dst: u32, lid: u32) {
  for (var t = lid; t < nrows * DM; t += WGS) {
    let rr = t / DM;
    kv_sm[dst + rr * KST + t % DM] = select(f16(0.0), k[base + row0 * DM + t], row0 + rr < limit);
  }
}
fn stage_v(base: u32, row0: u32, nrows: u32, limit: u32, dst: u32, lid: u32) {
  for (var t = lid; t < nrows * DM; t += WGS) {
    let rr = t / DM;
    kv_sm[dst + rr * KST + t % DM] = select(f16(0.0), v[base + row0 * DM + t], row0 + rr < limit);
  }
}

@compute @workgroup_size(WGS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  // Uniform per workgroup: every invocation returns together, before any barrier.
  if (bh >= params.bh_count) { return; }
  let S = params.s;
  let L = params.l;
  let i0 = wid.x * BRW;
  let qb = bh * S * DM;
  let kvb = kv_head(bh) * L * DM;
  let sg = lid / 32u;
  let ln = lid % 32u;
  let row = sg * R + ln;       // the lane's row within the workgroup
  let i = i0 + row;
  let sbase = sg * R * BC;     // the subgroup's S region
  let pbase = sg * R * PST;    // the subgroup's P region
  // Scores in log2 units (exp2, not exp).
  let scl = params.scale * 1.4426950408889634;
  let causal = params.causal != 0u;
  let dropping = params.drop_thr != 0u;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  if (lid < 2u) { flags[lid] = 0u; }

  // ---- Q: staged through kv_sm one subgroup's 32 rows per round, then held in left matrices ----
//#for rt in 0..2
//#for kk in 0..DK
  var q_{{rt}}_{{kk}} = LeftM();
//#end
//#end
  for (var rd = 0u; rd < NW; rd++) {
    workgroupBarrier();
    stage_q(qb, i0 + rd * R, R, S, 0u, lid);
    workgroupBarrier();
    if (sg == rd) {
//#for rt in 0..2
//#for kk in 0..DK
      q_{{rt}}_{{kk}} = subgroupMatrixLoad<LeftM, row_major>(&kv_sm, {{rt}}u * 16u * KST + {{kk}}u * 16u, KST);
//#end
//#end
    }
  }

//#for rt in 0..2
//#for dt in 0..DK
  var o_{{rt}}_{{dt}} = ResM();
//#end
//#end
  var m = NEG_BIG;
  var sum = 0.0;
  // Keys j < jvis are visible to the lane's row: j < L and, causal, j <= i + diag (one compare per
  // score).
  let jvis = select(L, u32(clamp(i32(i) + params.diag + 1, 0, i32(L))), causal);
  // Causal: blocks past the workgroup's last row are skipped.
  let j_end = select(L, u32(clamp(i32(i0 + BRW) + params.diag, 0, i32(L))), causal);
  let nblocks = (j_end + BC - 1u) / BC;
  var n_first = 0u;
//#if LOWER
  // A sliding window's lower edge: keys below jlow are invisible to the lane's row, and blocks
  // below the workgroup's first row's edge are skipped.
  let jlow = u32(clamp(i32(i) + params.ldiag, 0, i32(L)));
  n_first = band_begin(i0, BC) / BC;
//#end

//#if KVS
  workgroupBarrier();  // the last Q round's matrix loads are done with kv_sm
  if (n_first < nblocks) { stage_k(kvb, n_first * BC, BC, L, 0u, lid); }
//#end
  workgroupBarrier();

  for (var n = n_first; n < nblocks; n++) {
    let j0 = n * BC;
    let kb = kvb + j0 * DM;
    let par = n & 1u;

    // ---- S = Q K^T for the subgroup's rows, stored to its S region ----
//#for rt in 0..2
    var s_{{rt}} = ResM();
//#end
//#for kk in 0..DK
//#for rt in 0..2
//#if KVS
    s_{{rt}} = subgroupMatrixMultiplyAccumulate(q_{{rt}}_{{kk}}, subgroupMatrixLoad<RightM, col_major>(&kv_sm, {{kk}}u * 16u, KST), s_{{rt}});
//#end
//#if !KVS
    s_{{rt}} = subgroupMatrixMultiplyAccumulate(q_{{rt}}_{{kk}}, subgroupMatrixLoad<RightM, col_major>(&k, kb + {{kk}}u * 16u, DM), s_{{rt}});
//#end
//#end
//#end
//#for rt in 0..2
    subgroupMatrixStore<row_major>(&s_sc, sbase + {{rt}}u * 16u * BC, s_{{rt}}, BC);
//#end
    workgroupBarrier();  // A: S visible to the lanes; K block and the other parity's flag free

    if (lid == 0u) { flags[1u - par] = 0u; }
//#if KVS
    // This block's V and the next block's K into kv_sm: the previous V was last read by the
    // previous block's O += P V and this K by S = Q K^T, both before A. Barrier B publishes them.
    stage_v(kvb, j0, BC, L, BC * KST, lid);
    if (n + 1u < nblocks) { stage_k(kvb, j0 + BC, BC, L, 0u, lid); }
//#end

    // ---- softmax: the lane's row; columns rotated by the row so lanes spread over banks ----
    var tmax = NEG_BIG;
//#if SREG
    // Each score read once into registers (masked ones as NEG_BIG).
    var sv: array<f32, BC>;
    for (var x = 0u; x < BC; x++) {
      let c = (x + ln) % BC;
//#if !LOWER
      sv[x] = select(NEG_BIG, s_sc[sbase + ln * BC + c] * scl, j0 + c < jvis);
//#end
//#if LOWER
      sv[x] = select(NEG_BIG, s_sc[sbase + ln * BC + c] * scl, j0 + c < jvis && j0 + c >= jlow);
//#end
      tmax = max(tmax, sv[x]);
    }
//#end
//#if !SREG
    for (var x = 0u; x < BC; x++) {
      let c = (x + ln) % BC;
//#if !LOWER
      if (j0 + c < jvis) { tmax = max(tmax, s_sc[sbase + ln * BC + c] * scl); }
//#end
//#if LOWER
      if (j0 + c < jvis && j0 + c >= jlow) { tmax = max(tmax, s_sc[sbase + ln * BC + c] * scl); }
//#end
    }
//#end
    var alpha = 1.0;
    if (tmax > m + TH) {
      // While m is NEG_BIG, O and sum are still zero: nothing to rescale.
      if (m > MASKED) {
        alpha = exp2(m - tmax);
        flags[par] = 1u;
      }
      m = tmax;
      sum *= alpha;
    }
    row_alpha[row] = alpha;
    let live = m > MASKED;
    for (var x = 0u; x < BC; x++) {
      let c = (x + ln) % BC;
      let j = j0 + c;
      var w = 0.0;
//#if SREG
      let s1 = sv[x];
//#end
//#if !SREG
      let s1 = s_sc[sbase + ln * BC + c] * scl;
//#end
//#if !LOWER
      let vis = j < jvis;
//#end
//#if LOWER
      let vis = j < jvis && j >= jlow;
//#end
      if (live && vis) {
        let p = exp2(s1 - m);
        sum += p;
        w = select(p, 0.0, dropping && (mix32(row_hash ^ j) >> 8u) < params.drop_thr);
      }
      p_sc[pbase + ln * PST + c] = f16(w);
    }
    // B: P (and the staged V) visible; then the flag, the same for the whole workgroup.
    let rescale = workgroupUniformLoad(&flags[par]);
    if (rescale != 0u) {
      // O *= alpha per row, through the subgroup's S region (free since A), 16 columns at a time.
//#for dt in 0..DK
//#for rt in 0..2
      subgroupMatrixStore<row_major>(&s_sc, sbase + {{rt}}u * 16u * 16u, o_{{rt}}_{{dt}}, 16u);
//#end
      workgroupBarrier();
      for (var t = ln; t < R * 16u; t += 32u) { s_sc[sbase + t] *= row_alpha[sg * R + t / 16u]; }
      workgroupBarrier();
//#for rt in 0..2
      o_{{rt}}_{{dt}} = subgroupMatrixLoad<ResM, row_major>(&s_sc, sbase + {{rt}}u * 16u * 16u, 16u);
//#end
      workgroupBarrier();
//#end
    }

    // ---- O += P V ----
//#for rt in 0..2
    let p_{{rt}} = subgroupMatrixLoad<LeftM, row_major>(&p_sc, pbase + {{rt}}u * 16u * PST, PST);
//#end
//#for dt in 0..DK
//#for rt in 0..2
//#if KVS
    o_{{rt}}_{{dt}} = subgroupMatrixMultiplyAccumulate(p_{{rt}}, subgroupMatrixLoad<RightM, row_major>(&kv_sm, BC * KST + {{dt}}u * 16u, KST), o_{{rt}}_{{dt}});
//#end
//#if !KVS
    o_{{rt}}_{{dt}} = subgroupMatrixMultiplyAccumulate(p_{{rt}}, subgroupMatrixLoad<RightM, row_major>(&v, kb + {{dt}}u * 16u, DM), o_{{rt}}_{{dt}});
//#end
//#end
//#end
  }

  // Rows with no visible key (lower-right with L < S) have sum 0 and output 0, like every backend.
  row_inv[row] = select(params.keep_scale / sum, 0.0, sum == 0.0);
  // ---- out = O / sum, 16 columns at a time through the S region, packed to 16 bits two columns
  // per word; rows past S are not written ----
//#for dt in 0..DK
  workgroupBarrier();
//#for rt in 0..2
  subgroupMatrixStore<row_major>(&s_sc, sbase + {{rt}}u * 16u * 16u, o_{{rt}}_{{dt}}, 16u);
//#end
  workgroupBarrier();
  for (var t = ln; t < R * 8u; t += 32u) {
    let rr = t / 8u;
    let c2 = 2u * (t % 8u);
    let gi = i0 + sg * R + rr;
    let w = row_inv[sg * R + rr];
    if (gi < S) { out[(bh * S + gi) * (DM / 2u) + {{dt}}u * 8u + t % 8u] = {{PACK}}(s_sc[sbase + rr * 16u + c2] * w, s_sc[sbase + rr * 16u + c2 + 1u] * w); }
  }
//#end
}
