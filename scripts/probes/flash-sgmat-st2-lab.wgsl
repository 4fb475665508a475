// BENCH-ONLY lab kernel (scripts/bench-webgpu-tc.mjs registers it as flash-sgmat-st2-lab.wgsl;
// nothing here ships): the transposed-scores kernel of shaders/flash-sgmat-st.wgsl with NS (2 or 4)
// subgroups sharing one tile of 32 query rows, so each holds 1/NS of the live accumulators.
//
// Why: at D = 128 one subgroup holding O (16 result matrices) and Q^T (16 right matrices) for 32
// rows takes 255 registers a lane and 8 warps per SM (H200 run 1). Here subgroup g of the NS
//   - computes S^T for its share of the block's key tiles (tiles g * NCH .. g * NCH + NCH - 1),
//   - runs the softmax of that share (lane l: query row i0 + l),
//   - and accumulates O for its share of the output columns (Ev tiles g * DH .. g * DH + DH - 1)
//     over all the block's keys (P^T of every share from workgroup memory),
// so the products are split, not repeated, and each lane holds DH = DK / NS pairs of O matrices.
// K tiles and V tiles are each read by one subgroup only. Both subgroups keep the same reference
// max per row (the rows are shared): when some lane's score tops its reference by more than TH
// (a workgroup-uniform flag), every lane takes its row's max over the whole block (every share is
// in workgroup memory), moves identically in every subgroup and redoes its share; the partial
// sums of the shares are added at the end.
//
// Barriers per block: A (S^T visible), B (a workgroupUniformLoad: P^T visible and the hot flag);
// only in blocks where some row's max moves, C (redone P^T visible, the rescale flag) and the O
// rescale's. All between the NS warps of the workgroup.
//
// Template parameters: NS (subgroups per 32 rows), DM (head dim, a multiple of 16 NS), DK = DM / 16,
// DH = DK / NS, BC (16 NS or 32 NS), NC = BC / 16, NCH = NC / NS, QREG (Q^T in right matrices, else
// loaded from workgroup memory per product), KTAIL (L % 16 != 0), PACK (pack_f16 | pack_bf16).
//#include "sgmat-prelude.wgsl"
//#include "common.wgsl"
//#include "pack.wgsl"

@group(0) @binding(4) var<storage, read_write> out: array<u32>;

const NS: u32 = {{NS}}u;
const WGS: u32 = NS * 32u;
const BC: u32 = {{BC}}u;
const NCH: u32 = {{NCH}}u;
const DM: u32 = {{DM}}u;
const DH: u32 = {{DH}}u;
const TH: f32 = 8.0;
const SST: u32 = 36u;
const PST: u32 = 40u;
const KST: u32 = DM + 8u;
const OST: u32 = 36u;
const PREG: u32 = max(BC * PST, 16u * KST);

var<workgroup> s_sc: array<f32, BC * SST>;
var<workgroup> p_sc: array<f16, PREG>;
// O^T of each subgroup passes through its own 16 columns x 32 rows here (rescale, output).
var<workgroup> o_sc: array<f32, NS * 16u * OST>;
//#if !QREG
var<workgroup> q_sm: array<f16, 32u * KST>;
//#end
//#if KTAIL
var<workgroup> kv_tail: array<f16, 32u * KST>;
//#end
var<workgroup> row_sum: array<f32, NS * 32u>;
// flags[par]: some score tops its reference (block parity par); flags[2 + par]: some O needs a rescale.
var<workgroup> flags: array<u32, 4>;

fn k_tile(kvb: u32, jt: u32, kk: u32) -> LeftM {
//#if KTAIL
  if (jt + 16u > params.l) { return subgroupMatrixLoad<LeftM, row_major>(&kv_tail, kk * 16u, KST); }
//#end
  return subgroupMatrixLoad<LeftM, row_major>(&k, kvb + jt * DM + kk * 16u, DM);
}
fn v_tile(kvb: u32, jt: u32, dt: u32) -> RightM {
//#if KTAIL
  if (jt + 16u > params.l) { return subgroupMatrixLoad<RightM, row_major>(&kv_tail, 16u * KST + dt * 16u, KST); }
//#end
  return subgroupMatrixLoad<RightM, row_major>(&v, kvb + jt * DM + dt * 16u, DM);
}

// The lane's pass over its share of the block (keys c0 .. c0 + 16 NCH), against reference m.
fn softmax_pass(ln: u32, c0: u32, lim: u32, m: f32, scl: f32, j0: u32, row_hash: u32, dropping: bool) -> vec2<f32> {
  var bsum = 0.0;
  var hot = false;
  for (var x = 0u; x < NCH * 16u; x++) {
    let c = c0 + x;
    let t = select(NEG_BIG, fma(s_sc[ln + c * SST], scl, -m), c < lim);
    hot = hot | (t > TH);
    let p = exp2(t);
    bsum += p;
    var w = p;
    if (dropping) { w = select(p, 0.0, (mix32(row_hash ^ (j0 + c)) >> 8u) < params.drop_thr); }
    p_sc[ln + c * PST] = f16(w);
  }
  return vec2<f32>(bsum, select(0.0, 1.0, hot));
}

// The lane's largest scaled score over the whole block (every share).
fn block_max(ln: u32, lim: u32, scl: f32) -> f32 {
  var mx = NEG_BIG;
  for (var c = 0u; c < BC; c++) { mx = max(mx, select(NEG_BIG, s_sc[ln + c * SST] * scl, c < lim)); }
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
  let i0 = wid.x * 32u;
  let i = i0 + ln;
  let qb = bh * S * DM;
  let kvb = kv_head(bh) * L * DM;
  let scl = params.scale * 1.4426950408889634;
  let causal = params.causal != 0u;
  let dropping = params.drop_thr != 0u;
  let row_hash = mix32(mix32(params.seed_hash ^ bh) ^ i);
  let kh = sg * NCH;        // the subgroup's first key tile of a block
  let dh = sg * DH;         // the subgroup's first output column tile
  let ob0 = sg * 16u * OST; // the subgroup's O^T region
  if (lid < 4u) { flags[lid] = 0u; }

//#if QREG
//#for rt in 0..2
  workgroupBarrier();
  for (var t = lid; t < 16u * DM; t += WGS) {
    let gi = i0 + {{rt}}u * 16u + t / DM;
    p_sc[(t / DM) * KST + t % DM] = select(f16(0.0), q[qb + min(gi, S - 1u) * DM + t % DM], gi < S);
  }
  workgroupBarrier();
//#for kk in 0..DK
  let q_{{rt}}_{{kk}} = subgroupMatrixLoad<RightM, col_major>(&p_sc, {{kk}}u * 16u, KST);
//#end
//#end
//#end
//#if !QREG
  for (var t = lid; t < 32u * DM; t += WGS) {
    let gi = i0 + t / DM;
    q_sm[(t / DM) * KST + t % DM] = select(f16(0.0), q[qb + min(gi, S - 1u) * DM + t % DM], gi < S);
  }
//#end

  let jvis = select(L, u32(clamp(i32(i) + params.diag + 1, 0, i32(L))), causal);
  let jfull = select(L, u32(clamp(i32(i0) + params.diag + 1, 0, i32(L))), causal);
  let jend = select(L, u32(clamp(i32(i0 + 31u) + params.diag + 1, 0, i32(L))), causal);
  let nblocks = (jend + BC - 1u) / BC;

//#if KTAIL
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
//#for dt in 0..DH
  var o_{{rt}}_{{dt}} = ResM();
//#end
//#end
  var m = NEG_BIG;
  var sum = 0.0;

  for (var b = 0u; b < nblocks; b++) {
    let j0 = b * BC;
    let par = b & 1u;
    // ---- S^T of the subgroup's share of the block ----
//#for c in 0..NCH
    {
      let ct = kh + {{c}}u;
      let jt = j0 + ct * 16u;
      var s0 = ResM();
      var s1 = ResM();
      if (jt < jend) {
//#for kk in 0..DK
        {
          let kt = k_tile(kvb, jt, {{kk}}u);
//#if QREG
          s0 = subgroupMatrixMultiplyAccumulate(kt, q_0_{{kk}}, s0);
          s1 = subgroupMatrixMultiplyAccumulate(kt, q_1_{{kk}}, s1);
//#end
//#if !QREG
          s0 = subgroupMatrixMultiplyAccumulate(kt, subgroupMatrixLoad<RightM, col_major>(&q_sm, {{kk}}u * 16u, KST), s0);
          s1 = subgroupMatrixMultiplyAccumulate(kt, subgroupMatrixLoad<RightM, col_major>(&q_sm, 16u * KST + {{kk}}u * 16u, KST), s1);
//#end
        }
//#end
      }
      subgroupMatrixStore<row_major>(&s_sc, ct * 16u * SST, s0, SST);
      subgroupMatrixStore<row_major>(&s_sc, ct * 16u * SST + 16u, s1, SST);
    }
//#end
    workgroupBarrier();  // A: every share of S^T visible
    if (lid == 0u) { flags[1u - par] = 0u; flags[3u - par] = 0u; }

    // ---- softmax of the subgroup's share ----
    let lim = select(BC, min(u32(max(i32(jvis) - i32(j0), 0)), BC), j0 + BC > jfull);
    let c0 = kh * 16u;
    var r = vec2<f32>(0.0, 0.0);
    if (j0 + BC > jfull) {
      r = softmax_pass(ln, c0, lim, m, scl, j0, row_hash, dropping);
    } else {
      r = softmax_pass(ln, c0, BC, m, scl, j0, row_hash, dropping);
    }
    if (r.y != 0.0) { flags[par] = 1u; }
    // B: P^T of every share visible; the hot flag, the same for the whole workgroup.
    let hot = workgroupUniformLoad(&flags[par]);
    if (hot != 0u) {
      // Rows whose max over the whole block tops the reference by more than TH move it, the same
      // way in every subgroup, and redo their share.
      let mx = block_max(ln, lim, scl);
      var alpha = 1.0;
      if (mx > m + TH) {
        if (m > MASKED) {
          alpha = exp2(m - mx);
          flags[2u + par] = 1u;
        }
        sum *= alpha;
        m = mx;
        r = softmax_pass(ln, c0, lim, m, scl, j0, row_hash, dropping);
      }
      // C: the redone P^T visible; the rescale flag.
      let rescale = workgroupUniformLoad(&flags[2u + par]);
      if (rescale != 0u) {
//#for dt in 0..DH
        subgroupMatrixStore<col_major>(&o_sc, ob0, o_0_{{dt}}, OST);
        subgroupMatrixStore<col_major>(&o_sc, ob0 + 16u, o_1_{{dt}}, OST);
        workgroupBarrier();
        for (var c = 0u; c < 16u; c++) { o_sc[ob0 + c * OST + ln] *= alpha; }
        workgroupBarrier();
        o_0_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&o_sc, ob0, OST);
        o_1_{{dt}} = subgroupMatrixLoad<ResM, col_major>(&o_sc, ob0 + 16u, OST);
        workgroupBarrier();
//#end
      }
    }
    sum += r.x;

    // ---- O (the subgroup's columns) += P V over all the block's keys ----
//#for ct in 0..NC
    if (j0 + {{ct}}u * 16u < jend) {
      let p0 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, {{ct}}u * 16u * PST, PST);
      let p1 = subgroupMatrixLoad<LeftM, col_major>(&p_sc, {{ct}}u * 16u * PST + 16u, PST);
//#for dt in 0..DH
      {
        let vt = v_tile(kvb, j0 + {{ct}}u * 16u, dh + {{dt}}u);
        o_0_{{dt}} = subgroupMatrixMultiplyAccumulate(p0, vt, o_0_{{dt}});
        o_1_{{dt}} = subgroupMatrixMultiplyAccumulate(p1, vt, o_1_{{dt}});
      }
//#end
    }
//#end
  }

  // ---- out = O / (sum of every share), the subgroup's columns, packed to 16 bits ----
  workgroupBarrier();
  row_sum[lid] = sum;
  workgroupBarrier();
  var total = 0.0;
  for (var g = 0u; g < NS; g++) { total += row_sum[g * 32u + ln]; }
  let inv = select(params.keep_scale / total, 0.0, total == 0.0);
  let ob = (bh * S + i) * (DM / 2u) + dh * 8u;
//#for dt in 0..DH
  workgroupBarrier();
  subgroupMatrixStore<col_major>(&o_sc, ob0, o_0_{{dt}}, OST);
  subgroupMatrixStore<col_major>(&o_sc, ob0 + 16u, o_1_{{dt}}, OST);
  workgroupBarrier();
  if (i < S) {
    for (var c = 0u; c < 8u; c++) {
      out[ob + {{dt}}u * 8u + c] = {{PACK}}(o_sc[ob0 + 2u * c * OST + ln] * inv, o_sc[ob0 + (2u * c + 1u) * OST + ln] * inv);
    }
  }
//#end
}
