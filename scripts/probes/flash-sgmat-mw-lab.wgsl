// BENCH-ONLY lab copy of shaders/flash-sgmat-mw.wgsl with every tile shape, ablation, bisection and
// debug switch the 2026-12-01 H200 runs used (docs/performance-webgpu.md). Not shipped: built and
// dispatched by scripts/lib/mw-lab.mjs for scripts/bench-webgpu-tc.mjs. O passes through workgroup
// memory 16 columns at a time here (OCW = 16); the shipped kernel is the frozen 4x2x16d-t8 shape.
//
// FLASH_ATTENTION on tensor cores through subgroup matrices (Dawn's
// chromium_experimental_subgroup_matrix, f16 x f16 -> f32, 16x16x16), several subgroups per
// workgroup. Each subgroup (32 lanes, lid / 32) owns R = 16 * RT query rows of one flat head;
// the workgroup owns NW * R rows and walks the keys in blocks of BC.
//
//   Q        staged once through workgroup memory (bounds-checked, so any S), then held in
//            RT x DK left matrices for the whole loop;
//   per key block:
//     S = Q K^T   K^T tiles as col_major right matrices, from global memory (KVS = 0: needs whole
//                 key blocks) or from the block staged in workgroup memory (KVS = 1: any L);
//     softmax     S goes to the subgroup's workgroup region; LPR = 32 / R lanes per row compute the
//                 row max, exp2 and row sum in f32 and write P (f16) for the left matrices;
//     O += P V    V tiles as row_major right matrices; O lives in RT x DK result matrices.
// The row max is lazy: P is taken against a reference max that moves only when a score exceeds it
// by more than TH (log2 units), so P <= 2^TH (fits f16) and O, living in registers, is rescaled
// (a round trip through workgroup memory) only in the rare blocks where some row's reference moves.
// Dropout zeroes P after the un-dropped normaliser is summed; 1/(1-p) joins the final 1/sum.
// Matrix offsets are uniform per subgroup, not per workgroup: chromium.subgroup_matrix_uniformity
// is switched off (its default is a workgroup-uniformity check). The lane/subgroup mapping
// lid -> (lid / 32, lid % 32) is the linear one NVIDIA uses; the routing requires 32-wide subgroups.
//
// Template parameters: NW (subgroups per workgroup), RT (16-row tiles per subgroup), R = 16 * RT,
// LPR = 32 / R, BC (keys per block), NC = BC / 16, DM (head dim, E = Ev), DK = DM / 16,
// OCW (columns of O per round trip: min(DM, BC)), OCH = DM / OCW, OCT = OCW / 16, PPAD / KPAD
// (row padding of P and staged tiles, f16 elements), TH (f32), KVS, QR (Q staging rounds),
// QRR (rows per round), CAUSAL_SKIP, SHUF (LPR = 2), ABL (ablation bits for measurements:
// 1 skip the softmax arithmetic, 2 skip O += P V, 4 skip S = Q K^T, 8 skip the S stores, 16 skip
// the softmax loops, 32 skip barrier B; results are then wrong), and layout switches for bisecting
// differences between drivers (FLG bits: 1 Q read from storage every block instead of staged and
// held (whole 16-row tiles only: Dawn clamps a tile that crosses the end of q, so ragged S is wrong), 2 O kept in workgroup memory (o_sc) instead of result matrices, 8 natural exp instead of
// exp2, 16 an explicit barrier before P is loaded, 64 each lane writes its own output row (with
// 2), 128 no workgroupUniformLoad: a barrier, then with 2 a plain read of the flag, without 2 the
// O round trip done every block (no matrix code under a runtime branch), 256 S rows padded by 8,
// 512 storage-buffer matrix loads take the uniform params.e as stride instead of the constant DM,
// 1024 the softmax reads each score once into registers instead of once per pass, 2048 K/V tiles
// prefetched into registers (direct K/V only: K one block ahead, V before barrier A)).
//#if SHUF
enable subgroups;
//#end
//#include "sgmat-prelude.wgsl"
//#include "common.wgsl"

@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const NW: u32 = {{NW}}u;
const R: u32 = {{R}}u;
const WGS: u32 = NW * 32u;
const BRW: u32 = NW * R;
const BC: u32 = {{BC}}u;
const DM: u32 = {{DM}}u;
const LPR: u32 = {{LPR}}u;
const CPL: u32 = BC / LPR;
const TH: f32 = {{TH}};
const PST: u32 = BC + {{PPAD}}u;
const KST: u32 = DM + {{KPAD}}u;
const OCW: u32 = {{OCW}}u;
const ABL: u32 = {{ABL}}u;
const FLG: u32 = {{FLG}}u;
// Diagnostics (DM = BC, one block): 1 writes S as the lanes read it, 2 P as the lanes wrote it,
// 3 P after a left-matrix load and store, 4 O after the first block, 5 Q as held; 0 the output.
const DBG: u32 = {{DBG}}u;

const SST: u32 = BC + select(0u, 8u, (FLG & 256u) != 0u);
var<workgroup> s_sc: array<f32, NW * R * SST>;
var<workgroup> p_sc: array<f16, NW * R * PST>;
// K block at 0, V block at BC * KST (KVS = 1); the Q block passes through it first.
var<workgroup> kv_sm: array<f16, 2u * BC * KST>;
//#if OWG
var<workgroup> o_sc: array<f32, NW * R * DM>;
//#end
var<workgroup> row_alpha: array<f32, NW * R>;
var<workgroup> row_inv: array<f32, NW * R>;
// Rescale flags, one per block parity: block n sets flags[n & 1] and clears flags[(n + 1) & 1],
// which every invocation finished reading in block n - 1. Four words, not two: every workgroup
// variable here is a multiple of 16 bytes, so however the driver lays them out, the matrix
// arrays (s_sc, p_sc, kv_sm, o_sc) start 16-byte aligned. (Suspected cause of the wrong results on
// NVIDIA before this change: an 8-byte variable placed ahead of the f16 arrays, which then start
// 8 bytes off the 16-byte boundary that tile loads assume. Not yet re-run on a GPU.)
var<workgroup> flags: array<u32, 4>;

// Copy rows [row0, row0 + nrows) of a [rows, DM] f16 matrix at `base` of q, k or v into kv_sm at
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
  let r = ln / LPR;
  let hh = ln % LPR;
  let row = sg * R + r;        // the lane's row within the workgroup
  let i = i0 + row;
  let sbase = sg * R * SST;    // the subgroup's S region
  let pbase = sg * R * PST;    // the subgroup's P region
  // Scores in log2 units (exp2, not exp), unless FLG 8.
  let scl = select(params.scale * 1.4426950408889634, params.scale, (FLG & 8u) != 0u);
  let obase = sg * R * DM;
  let causal = params.causal != 0u;
  let dropping = params.drop_thr != 0u;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  if (lid < 2u) { flags[lid] = 0u; }

  // ---- Q: staged through kv_sm in QR rounds of QRR rows, then held in left matrices ----
//#for rt in 0..RT
//#for kk in 0..DK
  var q_{{rt}}_{{kk}} = LeftM();
//#end
//#end
//#if QONE
  // One round: every subgroup's rows are in it (no runtime branch around the matrix loads).
  workgroupBarrier();
  stage_q(qb, i0, BRW, S, 0u, lid);
  workgroupBarrier();
//#for rt in 0..RT
//#for kk in 0..DK
  q_{{rt}}_{{kk}} = subgroupMatrixLoad<LeftM, row_major>(&kv_sm, (sg * R + {{rt}}u * 16u) * KST + {{kk}}u * 16u, KST);
//#end
//#end
//#end
//#if QROUNDS
  for (var rd = 0u; rd < {{QR}}u; rd++) {
    workgroupBarrier();
    stage_q(qb, i0 + rd * {{QRR}}u, {{QRR}}u, S, 0u, lid);
    workgroupBarrier();
//#for rt in 0..RT
    {
      let wr = sg * R + {{rt}}u * 16u;
      if (wr >= rd * {{QRR}}u && wr < (rd + 1u) * {{QRR}}u) {
        let o = (wr - rd * {{QRR}}u) * KST;
//#for kk in 0..DK
        q_{{rt}}_{{kk}} = subgroupMatrixLoad<LeftM, row_major>(&kv_sm, o + {{kk}}u * 16u, KST);
//#end
      }
    }
//#end
  }
//#end

//#if DBG5
  workgroupBarrier();
//#for rt in 0..RT
//#for kk in 0..DK
  subgroupMatrixStore<row_major>(&kv_sm, (sg * R + {{rt}}u * 16u) * KST + {{kk}}u * 16u, q_{{rt}}_{{kk}}, KST);
//#end
//#end
  workgroupBarrier();
  if (i < S) { for (var c = 0u; c < DM; c++) { out[(bh * S + i) * DM + c] = f32(kv_sm[row * KST + c]); } }
  return;
//#end
//#for rt in 0..RT
//#for dt in 0..DK
  var o_{{rt}}_{{dt}} = ResM();
//#end
//#end
//#if OWG
  for (var t = ln; t < R * DM; t += 32u) { o_sc[obase + t] = 0.0; }
//#end
  var m = NEG_BIG;
  var sum = 0.0;
  // Keys j < jvis are visible to the lane's row: j < L and, causal, j <= i + diag (one compare per
  // score instead of band_ok's uniform reads and two).
  let jvis = select(L, u32(clamp(i32(i) + params.diag + 1, 0, i32(L))), causal);

  var j_end = L;
  if ({{CAUSAL_SKIP}}u == 1u && causal) {
    j_end = u32(clamp(i32(i0 + BRW) + params.diag, 0, i32(L)));
  }
  let nblocks = (j_end + BC - 1u) / BC;

//#if KVS
  workgroupBarrier();  // the last Q round's matrix loads are done with kv_sm
  if (nblocks > 0u) { stage_k(kvb, 0u, BC, L, 0u, lid); }
//#end
//#if PF
  // FLG 2048 (direct K/V only): K tiles are loaded one block ahead and V tiles before barrier A,
  // so their latency overlaps the barriers and the softmax instead of stalling the products.
//#for ct in 0..NC
//#for kk in 0..DK
  var kt_{{ct}}_{{kk}} = subgroupMatrixLoad<RightM, col_major>(&k, kvb + {{ct}}u * 16u * DM + {{kk}}u * 16u, DM);
//#end
//#end
//#end
  workgroupBarrier();

  for (var n = 0u; n < nblocks; n++) {
    let j0 = n * BC;
    let kb = kvb + j0 * DM;
    let par = n & 1u;

    // ---- S = Q K^T for the subgroup's rows, stored to its S region ----
//#if QG
//#for rt in 0..RT
//#for kk in 0..DK
    q_{{rt}}_{{kk}} = subgroupMatrixLoad<LeftM, row_major>(&q, qb + (i0 + sg * R + {{rt}}u * 16u) * DM + {{kk}}u * 16u, {{GSTRIDE}});
//#end
//#end
//#end
//#for ct in 0..NC
//#for rt in 0..RT
    var s_{{rt}}_{{ct}} = ResM();
//#end
//#if DO_QK
//#for kk in 0..DK
//#for rt in 0..RT
//#if KVS
      s_{{rt}}_{{ct}} = subgroupMatrixMultiplyAccumulate(q_{{rt}}_{{kk}}, subgroupMatrixLoad<RightM, col_major>(&kv_sm, {{ct}}u * 16u * KST + {{kk}}u * 16u, KST), s_{{rt}}_{{ct}});
//#end
//#if PF
      s_{{rt}}_{{ct}} = subgroupMatrixMultiplyAccumulate(q_{{rt}}_{{kk}}, kt_{{ct}}_{{kk}}, s_{{rt}}_{{ct}});
//#end
//#if KDIRECT
      s_{{rt}}_{{ct}} = subgroupMatrixMultiplyAccumulate(q_{{rt}}_{{kk}}, subgroupMatrixLoad<RightM, col_major>(&k, kb + {{ct}}u * 16u * DM + {{kk}}u * 16u, {{GSTRIDE}}), s_{{rt}}_{{ct}});
//#end
//#end
//#end
//#end
//#if DO_SST
//#for rt in 0..RT
    subgroupMatrixStore<row_major>(&s_sc, sbase + {{rt}}u * 16u * SST + {{ct}}u * 16u, s_{{rt}}_{{ct}}, SST);
//#end
//#end
//#end
//#if PF
    // This block's V and the next block's K (the last block reloads its own: always in range).
    let kn = kvb + min(n + 1u, nblocks - 1u) * BC * DM;
//#for ct in 0..NC
//#for dt in 0..DK
    let vt_{{ct}}_{{dt}} = subgroupMatrixLoad<RightM, row_major>(&v, kb + {{ct}}u * 16u * DM + {{dt}}u * 16u, DM);
//#end
//#end
//#for ct in 0..NC
//#for kk in 0..DK
    kt_{{ct}}_{{kk}} = subgroupMatrixLoad<RightM, col_major>(&k, kn + {{ct}}u * 16u * DM + {{kk}}u * 16u, DM);
//#end
//#end
//#end
    workgroupBarrier();  // A: S visible to the lanes; K block and the other parity's flag free

    if (lid == 0u) { flags[1u - par] = 0u; }
    if (DBG == 1u && n == 0u && i < S) { for (var c = 0u; c < BC; c++) { out[(bh * S + i) * DM + c] = s_sc[sbase + r * SST + c]; } }
//#if KVS
    // This block's V and the next block's K into kv_sm: the previous V was last read by the
    // previous block's O += P V and this K by S = Q K^T, both before A. Barrier B publishes them.
    stage_v(kvb, j0, BC, L, BC * KST, lid);
    if (n + 1u < nblocks) { stage_k(kvb, j0 + BC, BC, L, 0u, lid); }
//#end

    // ---- softmax: this lane's columns of its row; the row max over its LPR lanes ----
    var tmax = NEG_BIG;
    // FLG 1024: the lane's scores are read once into registers (masked ones as NEG_BIG), not twice.
    var sv: array<f32, CPL>;
    for (var x = 0u; x < select(CPL, 0u, (ABL & 16u) != 0u); x++) {
      let c = LPR * ((x + r) % CPL) + hh;
      let j = j0 + c;
      if ((FLG & 1024u) != 0u) {
        sv[x] = select(NEG_BIG, s_sc[sbase + r * SST + c] * scl, j < jvis);
        tmax = max(tmax, sv[x]);
      } else if (j < jvis) { tmax = max(tmax, s_sc[sbase + r * SST + c] * scl); }
    }
//#if SHUF
    tmax = max(tmax, subgroupShuffleXor(tmax, 1u));
//#end
    var alpha = 1.0;
    if (tmax > m + TH) {
      // While m is NEG_BIG, O and sum are still zero: nothing to rescale.
      if (m > MASKED) {
        alpha = select(exp2(m - tmax), exp(m - tmax), (FLG & 8u) != 0u);
        flags[par] = 1u;
      }
      m = tmax;
      sum *= alpha;
    }
    if (hh == 0u) { row_alpha[row] = alpha; }
    let live = m > MASKED;
    for (var x = 0u; x < select(CPL, 0u, (ABL & 16u) != 0u); x++) {
      let c = LPR * ((x + r) % CPL) + hh;
      let j = j0 + c;
      var w = 0.0;
      var s1 = 0.0;
      if ((FLG & 1024u) != 0u) { s1 = sv[x]; } else { s1 = s_sc[sbase + r * SST + c] * scl; }
      if ((ABL & 1u) != 0u) {
        w = s1;
      } else if (live && j < jvis) {
        let p = select(exp2(s1 - m), exp(s1 - m), (FLG & 8u) != 0u);
        sum += p;
        w = select(p, 0.0, dropping && (mix32(row_hash ^ j) >> 8u) < params.drop_thr);
      }
      p_sc[pbase + r * PST + c] = f16(w);
    }
    // B: P (and the staged V) visible; then the flag, the same for the whole workgroup.
    if ((FLG & 16u) != 0u) { workgroupBarrier(); }
    var rescale = 0u;
    if ((FLG & 128u) != 0u) {
      workgroupBarrier();
      rescale = select(0u, 1u, (FLG & 2u) == 0u);
//#if OWG
      rescale = flags[par];
//#end
    } else if ((ABL & 32u) == 0u) {
      rescale = workgroupUniformLoad(&flags[par]);
    }
    if (DBG == 2u && n == 0u && i < S) { for (var c = 0u; c < BC; c++) { out[(bh * S + i) * DM + c] = f32(p_sc[pbase + r * PST + c]); } }
//#if DBG3
    if (n == 0u) {
//#for rt in 0..RT
//#for ct in 0..NC
      subgroupMatrixStore<row_major>(&kv_sm, pbase + {{rt}}u * 16u * PST + {{ct}}u * 16u, subgroupMatrixLoad<LeftM, row_major>(&p_sc, pbase + {{rt}}u * 16u * PST + {{ct}}u * 16u, PST), PST);
//#end
//#end
    }
    workgroupBarrier();
    if (n == 0u && i < S) { for (var c = 0u; c < BC; c++) { out[(bh * S + i) * DM + c] = f32(kv_sm[pbase + r * PST + c]); } }
//#end
//#if OWG
    if (rescale != 0u) {
      for (var t = ln; t < R * DM; t += 32u) { o_sc[obase + t] *= row_alpha[sg * R + t / DM]; }
    }
    workgroupBarrier();
//#end
//#if !OWG
//#if !RTALWAYS
    if (rescale != 0u) {
//#end
//#if RTALWAYS
    {
//#end
      // O *= alpha per row, through the subgroup's S region (free since A), OCW columns at a time.
//#for ch in 0..OCH
//#for rt in 0..RT
//#for dd in 0..OCT
      subgroupMatrixStore<row_major>(&s_sc, sbase + {{rt}}u * 16u * OCW + {{dd}}u * 16u, o_{{rt}}_{{ch}}, OCW);
//#end
//#end
      workgroupBarrier();
      for (var t = ln; t < R * OCW; t += 32u) { s_sc[sbase + t] *= row_alpha[sg * R + t / OCW]; }
      workgroupBarrier();
//#for rt in 0..RT
//#for dd in 0..OCT
      o_{{rt}}_{{ch}} = subgroupMatrixLoad<ResM, row_major>(&s_sc, sbase + {{rt}}u * 16u * OCW + {{dd}}u * 16u, OCW);
//#end
//#end
      workgroupBarrier();
//#end
    }
//#end

    // ---- O += P V ----
//#if DO_PV
//#if OWG
//#for rt in 0..RT
//#for dt in 0..DK
      o_{{rt}}_{{dt}} = subgroupMatrixLoad<ResM, row_major>(&o_sc, obase + {{rt}}u * 16u * DM + {{dt}}u * 16u, DM);
//#end
//#end
//#end
//#for rt in 0..RT
//#for ct in 0..NC
      let p_{{rt}}_{{ct}} = subgroupMatrixLoad<LeftM, row_major>(&p_sc, pbase + {{rt}}u * 16u * PST + {{ct}}u * 16u, PST);
//#end
//#end
//#for ct in 0..NC
//#for dt in 0..DK
//#for rt in 0..RT
//#if KVS
      o_{{rt}}_{{dt}} = subgroupMatrixMultiplyAccumulate(p_{{rt}}_{{ct}}, subgroupMatrixLoad<RightM, row_major>(&kv_sm, BC * KST + {{ct}}u * 16u * KST + {{dt}}u * 16u, KST), o_{{rt}}_{{dt}});
//#end
//#if PF
      o_{{rt}}_{{dt}} = subgroupMatrixMultiplyAccumulate(p_{{rt}}_{{ct}}, vt_{{ct}}_{{dt}}, o_{{rt}}_{{dt}});
//#end
//#if KDIRECT
      o_{{rt}}_{{dt}} = subgroupMatrixMultiplyAccumulate(p_{{rt}}_{{ct}}, subgroupMatrixLoad<RightM, row_major>(&v, kb + {{ct}}u * 16u * DM + {{dt}}u * 16u, {{GSTRIDE}}), o_{{rt}}_{{dt}});
//#end
//#end
//#end
//#end
//#if OWG
//#for rt in 0..RT
//#for dt in 0..DK
      subgroupMatrixStore<row_major>(&o_sc, obase + {{rt}}u * 16u * DM + {{dt}}u * 16u, o_{{rt}}_{{dt}}, DM);
//#end
//#end
//#end
//#end
//#if DBG4
    if (n == 0u) {
      workgroupBarrier();
//#for rt in 0..RT
//#for dt in 0..DK
      subgroupMatrixStore<row_major>(&s_sc, sbase + {{rt}}u * 16u * DM + {{dt}}u * 16u, o_{{rt}}_{{dt}}, DM);
//#end
//#end
      workgroupBarrier();
      if (i < S) { for (var c = 0u; c < DM; c++) { out[(bh * S + i) * DM + c] = s_sc[sbase + r * DM + c]; } }
      workgroupBarrier();
    }
//#end
  }

//#if SHUF
  sum += subgroupShuffleXor(sum, 1u);
//#end
  // Rows with no visible key (lower-right with L < S) have sum 0 and output 0, like every backend.
  if (DBG != 0u) { return; }
  if (hh == 0u) { row_inv[row] = select(params.keep_scale / sum, 0.0, sum == 0.0); }
  // ---- out = O / sum, OCW columns at a time through the S region; rows past S are not written ----
//#if OWG
  workgroupBarrier();
  if ((FLG & 64u) != 0u) {
    let inv = select(params.keep_scale / sum, 0.0, sum == 0.0);
    for (var d = hh; d < DM; d += LPR) {
      if (i < S) { out[(bh * S + i) * DM + d] = o_sc[obase + r * DM + d] * inv; }
    }
  } else {
    for (var t = ln; t < R * DM; t += 32u) {
      let rr = t / DM;
      let gi = i0 + sg * R + rr;
      if (gi < S) { out[(bh * S + gi) * DM + t % DM] = o_sc[obase + t] * row_inv[sg * R + rr]; }
    }
  }
//#end
//#if !OWG
//#for ch in 0..OCH
  workgroupBarrier();
//#for rt in 0..RT
//#for dd in 0..OCT
  subgroupMatrixStore<row_major>(&s_sc, sbase + {{rt}}u * 16u * OCW + {{dd}}u * 16u, o_{{rt}}_{{ch}}, OCW);
//#end
//#end
  workgroupBarrier();
  for (var t = ln; t < R * OCW; t += 32u) {
    let rr = t / OCW;
    let gi = i0 + sg * R + rr;
    if (gi < S) { out[(bh * S + gi) * DM + {{ch}}u * OCW + t % OCW] = s_sc[sbase + t] * row_inv[sg * R + rr]; }
  }
//#end
//#end
}
