// Portable tiled attention in the style of a register-tiled GEMM (no subgroup matrices, no
// shader-f16): one workgroup of NT = 4·BR = 256 invocations takes BR = 64 query rows of one flat
// head and streams blocks of BC keys. Invocation (ty, tx) — (BR / RPI) × TX = 32 × 8 — owns the
// RPI = 2 rows RPI·ty, RPI·ty + 1 and, of each block, the keys 4·TX·c + 4·tx .. +3
// (c < KV4 = BC / (4·TX)) for Q·Kᵀ, and the value dims 4·TX·h + 4·tx .. +3 of its rows for P·V;
// every product reads 8- or 16-byte vectors of workgroup memory. The tile (src/webgpu/portable.ts
// prefillTile, from the H200 sweep of scripts/probe-webgpu-portable.mjs): BC = 32 (64 for f32 where
// 32 does not fit), constant loop bounds — at D=64 75 registers, 3 workgroups an SM. The sweep's
// other shapes (4 rows an invocation in 16-lane row groups, 32-row workgroups) lost and were taken
// out of this shader after it (commit 34ad69c has them).
// - K is staged transposed ([d][key]), V as is ([key][d]): f32 values, or halves kept packed (two
//   a u32; unpacked as they are read, vec-io.wgsl), Q is read from storage (16-byte words, cached: each row is read by the TX
//   invocations of its row group). P overwrites the K tile ([key][row], the row quad XOR-swizzled
//   by the key so the row-group stores land in different banks).
// - Online softmax in f32, exactly as the reference orders it: raw dot, times scale, plus the
//   mask, the row max subtracted before exp (nothing folded into Q: large logits stay exact).
// - The row max is reduced over the TX invocations of a row group with subgroupShuffleXor where
//   SUBGROUPS (each subgroup takes its invocation slots from a workgroup counter, so no lane
//   numbering is assumed), else through workgroup memory. The row sum stays per invocation until
//   the end.
// - Causal blocks past the diagonal, and blocks below a sliding window's lower edge, are skipped
//   whole; tail keys are zero-filled and masked.
// Template parameters: ENABLES, WORD/ELEM/HALF/VPW (q, k, v storage: vec4 words of VPW elements),
// OUT_HALF/PACK (the output: f32, or halves packed by PACK), MASK_WORD/MASK_ELEM/MASK_PER_WORD,
// SUBGROUPS, BR (64), NT (256), HTILE (K/V tiles as packed halves; else f32), RPI (2 rows per
// invocation), TX = 4·RPI, BC (32 | 64), KV4 = BC / (4·TX), DMAX, DVMAX (head-dim buckets ≥ 64),
// NV = DVMAX / (4·TX), KP2 (HTILE: vec2 words of the K / P tile), QKW (the Q·Kᵀ loop's bound: EW,
// or the constant DMAX / VPW when E = DMAX), PVC (the P·V loop's bound: cols, or the constant BC).
{{ENABLES}}
//#include "common.wgsl"
//#include "vec-io.wgsl"
//#include "pack.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q4: array<vec4<{{WORD}}>>;
@group(0) @binding(2) var<storage, read> k4: array<vec4<{{WORD}}>>;
@group(0) @binding(3) var<storage, read> v4: array<vec4<{{WORD}}>>;
@group(0) @binding(4) var<storage, read> mask: array<{{MASK_WORD}}>;
@group(0) @binding(5) var<storage, read> mask_base: array<u32>;
//#if OUT_HALF
@group(0) @binding(6) var<storage, read_write> out2: array<vec2<u32>>;
//#end
//#if !OUT_HALF
@group(0) @binding(6) var<storage, read_write> out4: array<vec4<f32>>;
//#end

fn ld_mask(i: u32) -> f32 { return decode_{{MASK_ELEM}}(mask[i / {{MASK_PER_WORD}}u], i); }

const BR: u32 = {{BR}}u;
const TX: u32 = {{TX}}u;
const RPI: u32 = {{RPI}}u;
const NT: u32 = {{NT}}u;
const BC: u32 = {{BC}}u;
const VPW: u32 = {{VPW}}u;

//#if !HTILE
// K block transposed ([d][key]); after the scores, P ([key][row quad ^ swizzle]).
var<workgroup> ks4: array<vec4<f32>, {{DMAX}} * {{BC}} / 4>;
// V block [key][d].
var<workgroup> vs4: array<vec4<f32>, {{BC}} * {{DVMAX}} / 4>;
//#end
//#if HTILE
// Halves stay halves in workgroup memory (half the bytes: 64-key blocks fit at D=128). K block
// transposed, [d][key quad] as two u32 of key pairs; after the scores, P as f32 bits, [key][row
// quad ^ swizzle][row pair] (KP2 = max(DMAX·BC/4, BC·32)).
var<workgroup> kp2: array<vec2<u32>, {{KP2}}>;
// V block [key][d quad], the storage words as they are.
var<workgroup> vh2: array<vec2<u32>, {{BC}} * {{DVMAX}} / 4>;
//#end
//#if SUBGROUPS
var<workgroup> slot_next: atomic<u32>;
//#end
//#if !SUBGROUPS
var<workgroup> red: array<f32, {{BR}} * {{TX}}>; // [row][tx]: row-group partial maxima and sums
//#end

// Where P of (key, row) lives in ks4: the row's quad, XOR-swizzled by the key's quad (0..7).
fn p_slot(key: u32, row: u32) -> u32 {
  return key * (BR / 4u) + ((row >> 2u) ^ ((key >> 2u) & 7u));
}

@compute @workgroup_size({{NT}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32
//#if SUBGROUPS
  , @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32
//#end
) {
  // bh and every loop bound below derive from workgroup_id and uniforms only, so the barriers and
  // subgroup operations sit in uniform control flow.
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= params.bh_count) { return; }
//#if SUBGROUPS
  // Each subgroup takes sg_size consecutive slots, so the TX invocations of a row group are lanes
  // of one subgroup whatever order the adapter numbers them in (subgroups of at least TX lanes).
  if (lid == 0u) { atomicStore(&slot_next, 0u); }
  workgroupBarrier();
  var first = 0u;
  if (sg_lane == 0u) { first = atomicAdd(&slot_next, sg_size); }
  let slot = subgroupBroadcastFirst(first) + sg_lane;
//#end
//#if !SUBGROUPS
  let slot = lid;
//#end
  let tx = slot % TX;
  let ty = slot / TX;
  let S = params.s;
  let L = params.l;
  let E = params.e;
  let EV = params.ev;
  let EW = E / VPW;
  let EVW = EV / VPW;
  let i0 = wid.x * BR;
  let kvh = kv_head(bh);
  let kw0 = kvh * L * EW;
  let vw0 = kvh * L * EVW;
  let row0 = RPI * ty; // this invocation's first row in the block

//#for r in 0..RPI
  let i_{{r}} = i0 + row0 + {{r}}u;
  let ok_{{r}} = i_{{r}} < S;
  let qw_{{r}} = (bh * S + min(i_{{r}}, S - 1u)) * EW;
  var m_{{r}} = NEG_BIG;
  var l_{{r}} = 0.0;
//#for h in 0..NV
  var acc_{{r}}_{{h}} = vec4<f32>(0.0);
//#end
//#end

  // Causal: keys past the block's last diagonal are invisible to all its rows.
  var j_end = L;
  if (params.causal != 0u) {
    j_end = u32(clamp(i32(min(i0 + BR, S)) + params.diag, 0, i32(L)));
  }

  // A window's lower edge: blocks below the first row's edge are invisible to all its rows.
  for (var j0 = band_begin(i0, BC); j0 < j_end; j0 += BC) {
    let cols = min(BC, j_end - j0);
//#if !HTILE
    // Stage K transposed: consecutive invocations take consecutive keys (conflict-free stores).
    for (var t = lid; t < BC * EW; t += NT) {
      let c = t % BC;
      let w = t / BC;
      var x = vec4<{{WORD}}>();
      if (c < cols) { x = k4[kw0 + (j0 + c) * EW + w]; }
      let d0 = w * VPW;
      let a = lo4(x);
//#for e in 0..4
      ks4[((d0 + {{e}}u) * BC + c) / 4u][c % 4u] = a[{{e}}];
//#end
//#if HALF
      let b = hi4(x);
//#for e in 0..4
      ks4[((d0 + 4u + {{e}}u) * BC + c) / 4u][c % 4u] = b[{{e}}];
//#end
//#end
    }
    for (var t = lid; t < BC * EVW; t += NT) {
      let c = t / EVW;
      let w = t % EVW;
      var x = vec4<{{WORD}}>();
      if (c < cols) { x = v4[vw0 + (j0 + c) * EVW + w]; }
      let at = c * ({{DVMAX}}u / 4u) + w * (VPW / 4u);
      vs4[at] = lo4(x);
//#if HALF
      vs4[at + 1u] = hi4(x);
//#end
    }
//#end
//#if HTILE
    // Stage K transposed by key pairs: invocation t takes keys 2·(t % BC/2) and +1 of word t / (BC/2)
    // and interleaves their halves (bits only: f16 and bf16 alike); consecutive invocations write
    // consecutive u32 (conflict-free).
    for (var t = lid; t < (BC / 2u) * EW; t += NT) {
      let cp = t % (BC / 2u);
      let w = t / (BC / 2u);
      var xa = vec4<u32>();
      var xb = vec4<u32>();
      if (2u * cp < cols) { xa = k4[kw0 + (j0 + 2u * cp) * EW + w]; }
      if (2u * cp + 1u < cols) { xb = k4[kw0 + (j0 + 2u * cp + 1u) * EW + w]; }
      let d0 = w * VPW;
//#for e in 0..4
      kp2[(d0 + 2u * {{e}}u) * (BC / 4u) + cp / 2u][cp % 2u] = (xa[{{e}}] & 0xffffu) | (xb[{{e}}] << 16u);
      kp2[(d0 + 2u * {{e}}u + 1u) * (BC / 4u) + cp / 2u][cp % 2u] = (xa[{{e}}] >> 16u) | (xb[{{e}}] & 0xffff0000u);
//#end
    }
    for (var t = lid; t < BC * EVW; t += NT) {
      let c = t / EVW;
      let w = t % EVW;
      var x = vec4<u32>();
      if (c < cols) { x = v4[vw0 + (j0 + c) * EVW + w]; }
      let at = c * ({{DVMAX}}u / 4u) + 2u * w;
      vh2[at] = x.xy;
      vh2[at + 1u] = x.zw;
    }
//#end
    workgroupBarrier();

    // S = Q·Kᵀ for RPI rows × 4·KV4 keys.
//#for r in 0..RPI
//#for c in 0..KV4
    var s_{{r}}_{{c}} = vec4<f32>(0.0);
//#end
//#end
//#if !HTILE
    for (var w = 0u; w < {{QKW}}; w++) {
//#for r in 0..RPI
      let qx_{{r}} = q4[qw_{{r}} + w];
      let qa_{{r}} = lo4(qx_{{r}});
//#end
      let d0 = w * VPW;
//#for e in 0..4
//#for c in 0..KV4
      let k_{{e}}_{{c}} = ks4[(d0 + {{e}}u) * (BC / 4u) + {{c}}u * TX + tx];
//#for r in 0..RPI
      s_{{r}}_{{c}} = fma(vec4<f32>(qa_{{r}}[{{e}}]), k_{{e}}_{{c}}, s_{{r}}_{{c}});
//#end
//#end
//#end
//#if HALF
//#for r in 0..RPI
      let qb_{{r}} = hi4(qx_{{r}});
//#end
//#for e in 0..4
//#for c in 0..KV4
      let kh_{{e}}_{{c}} = ks4[(d0 + 4u + {{e}}u) * (BC / 4u) + {{c}}u * TX + tx];
//#for r in 0..RPI
      s_{{r}}_{{c}} = fma(vec4<f32>(qb_{{r}}[{{e}}]), kh_{{e}}_{{c}}, s_{{r}}_{{c}});
//#end
//#end
//#end
//#end
    }
//#end
//#if HTILE
    for (var w = 0u; w < {{QKW}}; w++) {
//#for r in 0..RPI
      let qx_{{r}} = q4[qw_{{r}} + w];
      let qa_{{r}} = lo4(qx_{{r}});
      let qb_{{r}} = hi4(qx_{{r}});
//#end
      let d0 = w * VPW;
//#for e in 0..4
//#for c in 0..KV4
      let kx_{{e}}_{{c}} = kp2[(d0 + {{e}}u) * (BC / 4u) + {{c}}u * TX + tx];
      let k_{{e}}_{{c}} = vec4<f32>(unpack_{{ELEM}}x2(kx_{{e}}_{{c}}.x), unpack_{{ELEM}}x2(kx_{{e}}_{{c}}.y));
//#for r in 0..RPI
      s_{{r}}_{{c}} = fma(vec4<f32>(qa_{{r}}[{{e}}]), k_{{e}}_{{c}}, s_{{r}}_{{c}});
//#end
//#end
//#end
//#for e in 0..4
//#for c in 0..KV4
      let kxh_{{e}}_{{c}} = kp2[(d0 + 4u + {{e}}u) * (BC / 4u) + {{c}}u * TX + tx];
      let kh_{{e}}_{{c}} = vec4<f32>(unpack_{{ELEM}}x2(kxh_{{e}}_{{c}}.x), unpack_{{ELEM}}x2(kxh_{{e}}_{{c}}.y));
//#for r in 0..RPI
      s_{{r}}_{{c}} = fma(vec4<f32>(qb_{{r}}[{{e}}]), kh_{{e}}_{{c}}, s_{{r}}_{{c}});
//#end
//#end
//#end
    }
//#end

    // Scale, causal, mask; the block's row maxima.
//#for r in 0..RPI
    var bm_{{r}} = NEG_BIG;
//#for c in 0..KV4
    {
      let j = vec4<u32>(j0 + {{c}}u * 4u * TX + 4u * tx) + vec4<u32>(0u, 1u, 2u, 3u);
      var vis = (j < vec4<u32>(j0 + cols)) & vec4<bool>(ok_{{r}});
      if (params.causal != 0u) { vis = vis & (vec4<i32>(j) <= vec4<i32>(i32(i_{{r}}) + params.diag)); }
      if (params.lower != 0u) { vis = vis & (vec4<i32>(j) >= vec4<i32>(i32(i_{{r}}) + params.ldiag)); }
      var t = select(vec4<f32>(NEG_BIG), s_{{r}}_{{c}} * params.scale, vis);
      if (params.mask_kind != 0u) {
        for (var e = 0u; e < 4u; e++) {
          if (vis[e]) { t[e] = apply_mask(t[e], ld_mask(mask_base[bh] + i_{{r}} * params.mask_row + j[e] * params.mask_col)); }
        }
      }
      s_{{r}}_{{c}} = t;
      bm_{{r}} = max(bm_{{r}}, max(max(t.x, t.y), max(t.z, t.w)));
    }
//#end
//#end
//#if SUBGROUPS
//#for r in 0..RPI
    bm_{{r}} = max(bm_{{r}}, subgroupShuffleXor(bm_{{r}}, 1u));
    bm_{{r}} = max(bm_{{r}}, subgroupShuffleXor(bm_{{r}}, 2u));
    bm_{{r}} = max(bm_{{r}}, subgroupShuffleXor(bm_{{r}}, 4u));
//#end
    workgroupBarrier(); // everyone is done reading K before P overwrites it
//#end
//#if !SUBGROUPS
//#for r in 0..RPI
    red[(row0 + {{r}}u) * TX + tx] = bm_{{r}};
//#end
    workgroupBarrier(); // also: everyone is done reading K before P overwrites it
//#for r in 0..RPI
    for (var u = 0u; u < TX; u++) { bm_{{r}} = max(bm_{{r}}, red[(row0 + {{r}}u) * TX + u]); }
//#end
//#end

    // Online softmax: rescale what was accumulated when the running max grows; P (in s) to the
    // K tile.
//#for r in 0..RPI
    {
      let new_m = max(m_{{r}}, bm_{{r}});
      let alpha = select(exp(m_{{r}} - new_m), 0.0, m_{{r}} <= MASKED);
      l_{{r}} *= alpha;
//#for h in 0..NV
      acc_{{r}}_{{h}} *= alpha;
//#end
      m_{{r}} = new_m;
//#for c in 0..KV4
      {
        let t = s_{{r}}_{{c}};
        var p = select(exp(t - vec4<f32>(new_m)), vec4<f32>(0.0), t <= vec4<f32>(MASKED));
        l_{{r}} += p.x + p.y + p.z + p.w; // the normaliser counts dropped weights too: dropout follows softmax
        if (params.drop_thr != 0u) {
          let hash = mix32(mix32(params.seed_hash ^ bh) ^ i_{{r}});
          for (var e = 0u; e < 4u; e++) {
            let j = j0 + {{c}}u * 4u * TX + 4u * tx + e;
            p[e] = select(p[e] * params.keep_scale, 0.0, (mix32(hash ^ j) >> 8u) < params.drop_thr);
          }
        }
        s_{{r}}_{{c}} = p;
      }
//#end
    }
//#end
//#for c in 0..KV4
//#for e in 0..4
    {
      let key = {{c}}u * 4u * TX + 4u * tx + {{e}}u;
//#if HTILE
      // A row pair a store: [row quad][pair][row], row0 even.
      kp2[2u * p_slot(key, row0) + ((row0 >> 1u) & 1u)] = bitcast<vec2<u32>>(vec2<f32>(s_0_{{c}}[{{e}}], s_1_{{c}}[{{e}}]));
//#end
//#if !HTILE
      ks4[p_slot(key, row0)][row0 & 3u] = s_0_{{c}}[{{e}}];
      ks4[p_slot(key, row0)][(row0 & 3u) + 1u] = s_1_{{c}}[{{e}}];
//#end
    }
//#end
//#end
    workgroupBarrier();

    // O += P·V over the block's keys (the bound PVC is cols, or BC where the trip count is to be a
    // constant: keys past cols have P = 0 and zero-filled V).
    for (var c = 0u; c < {{PVC}}; c++) {
//#if !HTILE
      let pv = ks4[p_slot(c, row0)];
      let odd = (row0 & 2u) != 0u;
      let p_0 = select(pv.x, pv.z, odd);
      let p_1 = select(pv.y, pv.w, odd);
//#end
//#if HTILE
      let pw = kp2[2u * p_slot(c, row0) + ((row0 >> 1u) & 1u)];
      let p_0 = bitcast<f32>(pw.x);
      let p_1 = bitcast<f32>(pw.y);
//#end
//#for h in 0..NV
//#if !HTILE
      let v_{{h}} = vs4[c * ({{DVMAX}}u / 4u) + {{h}}u * TX + tx];
//#end
//#if HTILE
      let vw_{{h}} = vh2[c * ({{DVMAX}}u / 4u) + {{h}}u * TX + tx];
      let v_{{h}} = vec4<f32>(unpack_{{ELEM}}x2(vw_{{h}}.x), unpack_{{ELEM}}x2(vw_{{h}}.y));
//#end
//#for r in 0..RPI
      acc_{{r}}_{{h}} = fma(vec4<f32>(p_{{r}}), v_{{h}}, acc_{{r}}_{{h}});
//#end
//#end
    }
    workgroupBarrier();
  }

  // Row sums over the row group, then the output (a row with no visible key outputs zeros).
//#if SUBGROUPS
//#for r in 0..RPI
  l_{{r}} += subgroupShuffleXor(l_{{r}}, 1u);
  l_{{r}} += subgroupShuffleXor(l_{{r}}, 2u);
  l_{{r}} += subgroupShuffleXor(l_{{r}}, 4u);
//#end
//#end
//#if !SUBGROUPS
//#for r in 0..RPI
  red[(row0 + {{r}}u) * TX + tx] = l_{{r}};
//#end
  workgroupBarrier();
//#for r in 0..RPI
  l_{{r}} = 0.0;
  for (var u = 0u; u < TX; u++) { l_{{r}} += red[(row0 + {{r}}u) * TX + u]; }
//#end
//#end
//#for r in 0..RPI
  if (ok_{{r}}) {
    let inv = select(1.0 / l_{{r}}, 0.0, l_{{r}} == 0.0);
    let ob = (bh * S + i_{{r}}) * EV;
//#for h in 0..NV
    {
      let d = {{h}}u * 4u * TX + 4u * tx;
      if (d < EV) {
        let o = acc_{{r}}_{{h}} * inv;
//#if OUT_HALF
        out2[(ob + d) / 4u] = vec2<u32>({{PACK}}(o.x, o.y), {{PACK}}(o.z, o.w));
//#end
//#if !OUT_HALF
        out4[(ob + d) / 4u] = o;
//#end
      }
    }
//#end
  }
//#end
}
