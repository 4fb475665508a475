// BENCH-ONLY lab copy of shaders/flash-sgmat-st.wgsl (scripts/bench-webgpu-tc.mjs registers it as
// flash-sgmat-st-lab.wgsl; nothing here ships): the transposed-scores kernel with the switches the
// H200 candidates vary. The shipped shader is frozen at NW = 1, BC = 32, QREG = 1, no PIPE, no S16.
// FLASH_ATTENTION on tensor cores through subgroup matrices, scores transposed (S^T = K Q^T).
// Each subgroup (32 lanes, lid / 32) owns 32 query rows of one flat head and needs nothing from
// the other subgroups of its workgroup (NW of them, 1 by default: its barriers are then one-warp
// barriers and independent warps overlap). Lane l owns query row i0 + l for the softmax.
//
//   Q^T     staged through workgroup memory (bounds-checked, any S), held in 2 x DK right matrices
//           (QREG = 1) or kept staged and loaded per product (QREG = 0: fewer registers);
//   per block of BC keys, streamed 16 keys at a time:
//     S^T = K Q^T   K tiles as row_major left matrices straight from storage (a partial last tile,
//                   L % 16 != 0, from a zero-filled copy: KTAIL), stored row = key, column = query,
//                   so each lane reads its own column: consecutive lanes, consecutive words;
//     softmax       one pass per block against the lane's reference max m: t = s * scale * log2(e) - m
//                   in one fma, p = exp2(t), written as P^T (f16, row = key); the mask (causal,
//                   tail, lower-right) only on blocks that cross it; when some t > TH the lane redoes
//                   its row against the new max (rare after the first block) and O is rescaled;
//     O += P V      P^T loaded col_major as the left matrix, V tiles row_major from storage.
// Tiles wholly past the last visible key (L, or the causal diagonal of the workgroup's last row)
// are skipped, so causal calls skip the key blocks and tiles past the diagonal. The output is
// written by the kernel itself, packed two 16-bit values per u32 ({{PACK}}: f16 or bf16), 16
// columns at a time through workgroup memory: no f32 scratch, no pack pass.
// PIPE = 1 issues the next block's S^T products before this block's softmax (held in registers):
// their latency overlaps the scalar work of the same warp.
// S16 = 1 keeps S^T in f16 result matrices (the f16 x f16 -> f16 configuration): half the
// workgroup traffic of the scores, at f16 accumulation of the dot products.
//
// Template parameters: DM (head dim, E = Ev, a multiple of 16), DK = DM / 16, NW, BC (32 or 64),
// NC = BC / 16, QREG, KTAIL, PIPE, S16, ST (f32 | f16, the S^T element), OSC (the f32 region O
// passes through: s_sc, or o_sc when S16), PACK (pack_f16 | pack_bf16).
//#include "sgmat-prelude.wgsl"
//#include "common.wgsl"
//#include "pack.wgsl"

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

const NW: u32 = {{NW}}u;
const WGS: u32 = NW * 32u;
const BC: u32 = {{BC}}u;
const DM: u32 = {{DM}}u;
// Lazy-max threshold (log2 units): P <= 2^TH fits f16 and O is rescaled only when a max moves more.
const TH: f32 = 8.0;
// Row strides: S^T and P^T rows are 32 queries plus padding that keeps rows 16-byte aligned;
// staged Q and tail rows are DM plus 8 halves; O passes through 16 columns of 32 (+4) floats.
const SST: u32 = 32u + {{SPAD}}u;
const PST: u32 = 40u;
const KST: u32 = DM + 8u;
const OST: u32 = 36u;
// Per-subgroup regions; P's also stages Q^T, 16 rows per round, before the loop.
const SREG: u32 = BC * SST;
const PREG: u32 = max(BC * PST, 16u * KST);

var<workgroup> s_sc: array<{{ST}}, NW * SREG>;
var<workgroup> p_sc: array<f16, NW * PREG>;
//#if !QREG
var<workgroup> q_sm: array<f16, NW * 32u * KST>;
//#end
//#if KTAIL
// The partial last key tile of K (rows 0..15) and V (rows 16..31), zero past L.
var<workgroup> kv_tail: array<f16, 32u * KST>;
//#end
//#if S16
var<workgroup> o_sc: array<f32, NW * 16u * OST>;
//#end
// Rescale flags, one per block parity (block b sets flags[b & 1], clears flags[(b + 1) & 1]).
// Every workgroup variable is a multiple of 16 bytes, so the matrix arrays stay 16-byte aligned.
var<workgroup> flags: array<u32, 4>;

alias SResM = subgroup_matrix_result<{{ST}}, 16, 16>;

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

// One pass over the lane's BC scores of a block (column `sl` of S^T, P^T column `pl`): P^T against
// the reference max `m`, keys at or past `lim` masked. Returns (sum of p, 1 when some t > TH).
fn softmax_pass(sl: u32, pl: u32, lim: u32, m: f32, scl: f32, j0: u32, row_hash: u32, dropping: bool) -> vec2<f32> {
  var bsum = 0.0;
  var hot = false;
  for (var c = 0u; c < BC; c++) {
    let t = select(NEG_BIG, fma(f32(s_sc[sl + c * SST]), scl, -m), c < lim);
    hot = hot | (t > TH);
    let p = exp2(t);
    bsum += p;
    var w = p;
    if (dropping) { w = select(p, 0.0, (mix32(row_hash ^ (j0 + c)) >> 8u) < params.drop_thr); }
    p_sc[pl + c * PST] = f16(w);
  }
  return vec2<f32>(bsum, select(0.0, 1.0, hot));
}

// The lane's largest scaled score of a block (keys at or past `lim` masked).
fn block_max(sl: u32, lim: u32, scl: f32) -> f32 {
  var mx = NEG_BIG;
  for (var c = 0u; c < BC; c++) { mx = max(mx, select(NEG_BIG, f32(s_sc[sl + c * SST]) * scl, c < lim)); }
  return mx;
}

@compute @workgroup_size(WGS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  // Uniform per workgroup: every invocation returns together, before any barrier.
  if (bh >= params.bh_count) { return; }
  let S = params.s;
  let L = params.l;
  let sg = lid / 32u;
  let ln = lid % 32u;
  let i0 = wid.x * WGS + sg * 32u;   // the subgroup's first row
  let i = i0 + ln;                    // the lane's row
  let qb = bh * S * DM;
  let kvb = kv_head(bh) * L * DM;
  let sbase = sg * SREG;
  let pbase = sg * PREG;
  let scl = params.scale * 1.4426950408889634;
  let causal = params.causal != 0u;
  let dropping = params.drop_thr != 0u;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  if (lid < 4u) { flags[lid] = 0u; }

  // ---- Q^T: rows staged (zero past S), loaded col_major as right matrices ----
//#if QREG
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
//#end
//#if !QREG
  let qsb = sg * 32u * KST;
  for (var t = ln; t < 32u * DM; t += 32u) {
    let gi = i0 + t / DM;
    q_sm[qsb + (t / DM) * KST + t % DM] = select(f16(0.0), q[qb + min(gi, S - 1u) * DM + t % DM], gi < S);
  }
//#end

  // Keys the lane's row sees (jvis), every row of the subgroup sees (jfull: blocks below it need no
  // mask) and some row of the workgroup sees (jend: tiles from it on are skipped).
  let jvis = select(L, u32(clamp(i32(i) + params.diag + 1, 0, i32(L))), causal);
  let jfull = select(L, u32(clamp(i32(i0) + params.diag + 1, 0, i32(L))), causal);
  let jend = select(L, u32(clamp(i32(wid.x * WGS + WGS - 1u) + params.diag + 1, 0, i32(L))), causal);
  let nblocks = (jend + BC - 1u) / BC;

//#if KTAIL
  // A partial last key tile (direct tile loads would cross the end of k and v) in workgroup memory.
  let tail0 = L - L % 16u;
  if (tail0 < jend) {
    for (var t = lid; t < 16u * DM; t += WGS) {
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
//#for ct in 0..NC
  var s_0_{{ct}} = SResM();
  var s_1_{{ct}} = SResM();
//#end
  var m = NEG_BIG;
  var sum = 0.0;

  // Iteration n computes S^T of block n (n < nblocks) and runs the softmax and O += P V of block
  // n - PIPE: with PIPE = 1 the products of block n are in flight during the softmax of block n - 1.
  for (var n = 0u; n < nblocks + {{PIPE}}u; n++) {
    if (n < nblocks) {
      let jc = n * BC;
//#for ct in 0..NC
      s_0_{{ct}} = SResM();
      s_1_{{ct}} = SResM();
      if (jc + {{ct}}u * 16u < jend) {
//#for kk in 0..DK
        {
          let kt = k_tile(kvb, jc + {{ct}}u * 16u, {{kk}}u);
//#if QREG
          s_0_{{ct}} = subgroupMatrixMultiplyAccumulate(kt, q_0_{{kk}}, s_0_{{ct}});
          s_1_{{ct}} = subgroupMatrixMultiplyAccumulate(kt, q_1_{{kk}}, s_1_{{ct}});
//#end
//#if !QREG
          s_0_{{ct}} = subgroupMatrixMultiplyAccumulate(kt, subgroupMatrixLoad<RightM, col_major>(&q_sm, qsb + {{kk}}u * 16u, KST), s_0_{{ct}});
          s_1_{{ct}} = subgroupMatrixMultiplyAccumulate(kt, subgroupMatrixLoad<RightM, col_major>(&q_sm, qsb + 16u * KST + {{kk}}u * 16u, KST), s_1_{{ct}});
//#end
        }
//#end
      }
//#if !PIPE
      subgroupMatrixStore<row_major>(&s_sc, sbase + {{ct}}u * 16u * SST, s_0_{{ct}}, SST);
      subgroupMatrixStore<row_major>(&s_sc, sbase + {{ct}}u * 16u * SST + 16u, s_1_{{ct}}, SST);
//#end
//#end
    }
//#if !PIPE
    workgroupBarrier();  // A: S^T of block n visible to the lanes
//#end

    if (n >= {{PIPE}}u) {
      let b = n - {{PIPE}}u;
      let j0 = b * BC;
      let par = b & 1u;
      // flags[1 - par] was last read by block b - 1's uniform load, before its barriers.
      if (lid == 0u) { flags[1u - par] = 0u; }

      // ---- softmax of block b: one pass, a second only where the reference max moves ----
      let lim = select(BC, min(u32(max(i32(jvis) - i32(j0), 0)), BC), j0 + BC > jfull);
      var r = vec2<f32>(0.0, 0.0);
      if (j0 + BC > jfull) {
        r = softmax_pass(sbase + ln, pbase + ln, lim, m, scl, j0, row_hash, dropping);
      } else {
        r = softmax_pass(sbase + ln, pbase + ln, BC, m, scl, j0, row_hash, dropping);
      }
      var alpha = 1.0;
      if (r.y != 0.0) {
        let mx = block_max(sbase + ln, lim, scl);
        // While m is NEG_BIG, O and sum are still zero: nothing to rescale.
        if (m > MASKED) {
          alpha = exp2(m - mx);
          flags[par] = 1u;
        }
        sum *= alpha;
        m = mx;
        r = softmax_pass(sbase + ln, pbase + ln, lim, m, scl, j0, row_hash, dropping);
      }
      sum += r.x;
      // B: P^T visible; the flag is the same for the whole workgroup.
      let rescale = workgroupUniformLoad(&flags[par]);
      if (rescale != 0u) {
        // O *= alpha per row: O^T through workgroup memory 16 columns at a time, so each lane
        // scales its own column (the S^T region of block b is free since B).
//#for dt in 0..DK
        subgroupMatrixStore<col_major>(&{{OSC}}, {{OBASE}}, o_0_{{dt}}, OST);
        subgroupMatrixStore<col_major>(&{{OSC}}, {{OBASE}} + 16u, o_1_{{dt}}, OST);
        workgroupBarrier();
        for (var c = 0u; c < 16u; c++) { {{OSC}}[{{OBASE}} + c * OST + ln] *= alpha; }
        workgroupBarrier();
        o_0_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&{{OSC}}, {{OBASE}}, OST);
        o_1_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&{{OSC}}, {{OBASE}} + 16u, OST);
        workgroupBarrier();
//#end
      }

      // ---- O += P V, 16 keys at a time ----
//#for ct in 0..NC
      if (j0 + {{ct}}u * 16u < jend) {
        let p0 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, pbase + {{ct}}u * 16u * PST, PST);
        let p1 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, pbase + {{ct}}u * 16u * PST + 16u, PST);
//#for dt in 0..DK
        {
          let vt = v_tile(kvb, j0 + {{ct}}u * 16u, {{dt}}u);
          o_0_{{dt}} = subgroupMatrixMultiplyAccumulate(p0, vt, o_0_{{dt}});
          o_1_{{dt}} = subgroupMatrixMultiplyAccumulate(p1, vt, o_1_{{dt}});
        }
//#end
      }
//#end
    }

//#if PIPE
    if (n < nblocks) {
//#for ct in 0..NC
      subgroupMatrixStore<row_major>(&s_sc, sbase + {{ct}}u * 16u * SST, s_0_{{ct}}, SST);
      subgroupMatrixStore<row_major>(&s_sc, sbase + {{ct}}u * 16u * SST + 16u, s_1_{{ct}}, SST);
//#end
    }
    workgroupBarrier();  // A: S^T of block n visible; P^T of block n - 1 consumed
//#end
  }

  // ---- out = O / sum, packed to 16 bits; rows past S are not written ----
  // Rows with no visible key (lower-right with L < S) have sum 0 and output 0, like every backend.
  let inv = select(params.keep_scale / sum, 0.0, sum == 0.0);
  let ob = (bh * S + i) * (DM / 2u);
//#for dt in 0..DK
  workgroupBarrier();
  subgroupMatrixStore<col_major>(&{{OSC}}, {{OBASE}}, o_0_{{dt}}, OST);
  subgroupMatrixStore<col_major>(&{{OSC}}, {{OBASE}} + 16u, o_1_{{dt}}, OST);
  workgroupBarrier();
  if (i < S) {
    for (var c = 0u; c < 8u; c++) {
      out[ob + {{dt}}u * 8u + c] = {{PACK}}({{OSC}}[{{OBASE}} + 2u * c * OST + ln] * inv, {{OSC}}[{{OBASE}} + (2u * c + 1u) * OST + ln] * inv);
    }
  }
//#end
}
