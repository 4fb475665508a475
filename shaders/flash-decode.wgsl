// Flash-decoding, pass 1 of 2: few queries (S ≤ 16) against a long key/value sequence. The keys
// of each (batch, kv head) are split into `chunks` chunks of `chunk_len`; a workgroup of 128
// invocations takes one chunk for up to 4 query rows of that kv head — the GQA group's heads (and
// queries) share every K/V load — and writes an unnormalised partial output with its running max
// and sum; flash-decode-merge.wgsl combines the chunks.
// - 128/GW groups of GW invocations (GW = 8 or 16); a group takes U keys per step (keys
//   g + NG·u of the step), each invocation 16-byte words w = lane + GW·v of the K and V rows: a
//   subgroup of 32 reads 32/GW consecutive rows whole. The next step's K/V words are loaded while
//   this step's are used (one step of prefetch), so each invocation keeps 2·U·(NKV + NVV) loads'
//   worth of bytes in flight across the barriers.
// - The partial dots are summed over the group with subgroupShuffleXor where SUBGROUPS (each
//   subgroup takes its invocation slots from a workgroup counter, so no lane numbering is
//   assumed), else through workgroup memory: every invocation stores its 4·U partials, lane t of a
//   group sums dot t (key t / 4, row t % 4) once and stores its score, and every lane reads its
//   group's 4·U scores back (two barriers a step, each sum computed once, not GW times).
// - Online softmax in f32 per group, exactly as the reference orders it (raw dot, times scale, plus
//   the mask, row max subtracted before exp); the groups' states are merged in workgroup memory
//   at the end of the chunk.
// Template parameters: ENABLES, WORD/ELEM/HALF/VPW (q, k, v storage: vec4 words of VPW elements),
// MASK_WORD/MASK_ELEM/MASK_PER_WORD, SUBGROUPS, GW (lanes per group: 8 | 16), GW16 (GW = 16),
// U (keys per group and step: 1 | 2 | 4), DPL (dots each lane sums: ceil(4·U / GW)), DMAX/DVMAX
// (head-dim buckets ≥ 64), NKV = DMAX / (GW·VPW), NVV = DVMAX / (GW·VPW) (16-byte words per
// invocation and row), SM4, SC4 (NG·U).
{{ENABLES}}
//#include "common.wgsl"
//#include "vec-io.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q4: array<vec4<{{WORD}}>>;
@group(0) @binding(2) var<storage, read> k4: array<vec4<{{WORD}}>>;
@group(0) @binding(3) var<storage, read> v4: array<vec4<{{WORD}}>>;
@group(0) @binding(4) var<storage, read> mask: array<{{MASK_WORD}}>;
@group(0) @binding(5) var<storage, read> mask_base: array<u32>;
@group(0) @binding(6) var<storage, read_write> part4: array<vec4<f32>>; // [row][chunk][Ev]
@group(0) @binding(7) var<storage, read_write> ml: array<vec2<f32>>;    // [row][chunk]: max, sum

// acc + a·b as a chain of fused multiply-adds: dot() may round each product (SwiftShader does),
// which large logits (|q·k| ~ 10⁴) turn into errors past the f32 tolerance.
fn dot4_acc(a: vec4<f32>, b: vec4<f32>, acc: f32) -> f32 {
  return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, acc))));
}

fn ld_mask(i: u32) -> f32 { return decode_{{MASK_ELEM}}(mask[i / {{MASK_PER_WORD}}u], i); }

// The score of a summed dot: scaled, then the mask added; NEG_BIG where not visible.
fn score(d: f32, vis: bool, mrow: u32, j: u32) -> f32 {
  var s = select(NEG_BIG, d * params.scale, vis);
  if (params.mask_kind != 0u && vis) { s = apply_mask(s, ld_mask(mrow + j * params.mask_col)); }
  return s;
}

const VPW: u32 = {{VPW}}u;
const GW: u32 = {{GW}}u;
const NG: u32 = 128u / GW;
const U: u32 = {{U}}u;
const STEP: u32 = U * NG; // keys per workgroup step

// Partial dots (portable reduction: [group][dot][lane] floats) in the loop, then the groups'
// scaled outputs.
var<workgroup> sm4: array<vec4<f32>, {{SM4}}>;
//#if !SUBGROUPS
var<workgroup> sc4: array<vec4<f32>, {{SC4}}>; // [group · U + key]: the 4 rows' scores
//#end
var<workgroup> gm: array<f32, 16>;
var<workgroup> gl: array<f32, 16>;
//#if SUBGROUPS
var<workgroup> slot_next: atomic<u32>;
//#end

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32
//#if SUBGROUPS
  , @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32
//#end
) {
  // Everything that bounds a loop derives from workgroup_id and uniforms: barriers and subgroup
  // operations sit in uniform control flow.
//#if SUBGROUPS
  if (lid == 0u) { atomicStore(&slot_next, 0u); }
  workgroupBarrier();
  var first = 0u;
  if (sg_lane == 0u) { first = atomicAdd(&slot_next, sg_size); }
  let slot = subgroupBroadcastFirst(first) + sg_lane;
//#end
//#if !SUBGROUPS
  let slot = lid;
//#end
  let g = slot / GW;
  let ln = slot % GW;
  let S = params.s;
  let L = params.l;
  let EW = params.e / VPW;
  let EVW = params.ev / VPW;
  let chunk = wid.x;
  let kvf = wid.z; // flat kv head: batch · Hkv + kv head
  let b = kvf / params.hkv;
  let kvh = kvf % params.hkv;
  let kw0 = kvf * L * EW;
  let vw0 = kvf * L * EVW;
  // Chunks start at k_begin: keys below it are outside every row's sliding window.
  let c0 = params.k_begin + chunk * params.chunk_len;
  var c_end = min(c0 + params.chunk_len, L);
  // Causal: no row of this call sees keys past the last row's diagonal.
  if (params.causal != 0u) { c_end = u32(clamp(i32(S) - 1 + params.diag + 1, i32(c0), i32(c_end))); }

  let GS = params.group * S;
//#for r in 0..4
  let lr_{{r}} = wid.y * 4u + {{r}}u;
  let ok_{{r}} = lr_{{r}} < GS;
  let i_{{r}} = lr_{{r}} % S;
  let bh_{{r}} = b * params.hq + kvh * params.group + min(lr_{{r}}, GS - 1u) / S;
  let row_{{r}} = bh_{{r}} * S + i_{{r}};
  var m_{{r}} = NEG_BIG;
  var l_{{r}} = 0.0;
  let hash_{{r}} = mix32(mix32(params.seed_hash ^ bh_{{r}}) ^ i_{{r}});
//#if SUBGROUPS
  let mrow_{{r}} = select(0u, mask_base[bh_{{r}}] + i_{{r}} * params.mask_row, params.mask_kind != 0u);
//#end
//#for v in 0..NKV
  var qa_{{r}}_{{v}} = vec4<f32>(0.0);
//#if HALF
  var qb_{{r}}_{{v}} = vec4<f32>(0.0);
//#end
  if (ln + {{v}}u * GW < EW) {
    let qx = q4[row_{{r}} * EW + ln + {{v}}u * GW];
    qa_{{r}}_{{v}} = lo4(qx);
//#if HALF
    qb_{{r}}_{{v}} = hi4(qx);
//#end
  }
//#end
//#for v in 0..NVV
  var acc_{{r}}_{{v}} = vec4<f32>(0.0);
//#if HALF
  var acch_{{r}}_{{v}} = vec4<f32>(0.0);
//#end
//#end
//#end
//#if !SUBGROUPS
  // The dots this lane sums: t = ln + GW·k (key t / 4 of the step, row t % 4).
  let pbase = g * (4u * U * GW);
//#for k in 0..DPL
  let t_{{k}} = ln + {{k}}u * GW;
  let tok_{{k}} = t_{{k}} < 4u * U;
  let tu_{{k}} = t_{{k}} / 4u;
  let tr_{{k}} = t_{{k}} % 4u;
  let tlr_{{k}} = wid.y * 4u + tr_{{k}};
  let tvis_{{k}} = tok_{{k}} && tlr_{{k}} < GS;
  let ti_{{k}} = tlr_{{k}} % S;
  let tbh_{{k}} = b * params.hq + kvh * params.group + min(tlr_{{k}}, GS - 1u) / S;
  let tm_{{k}} = select(0u, mask_base[tbh_{{k}}] + ti_{{k}} * params.mask_row, params.mask_kind != 0u);
//#end
//#end

  // The first step's K/V words.
//#for u in 0..U
  let j0_{{u}} = c0 + {{u}}u * NG + g;
//#for v in 0..NKV
  var kn_{{u}}_{{v}} = vec4<{{WORD}}>();
  if (j0_{{u}} < c_end && ln + {{v}}u * GW < EW) { kn_{{u}}_{{v}} = k4[kw0 + j0_{{u}} * EW + ln + {{v}}u * GW]; }
//#end
//#for v in 0..NVV
  var vn_{{u}}_{{v}} = vec4<{{WORD}}>();
  if (j0_{{u}} < c_end && ln + {{v}}u * GW < EVW) { vn_{{u}}_{{v}} = v4[vw0 + j0_{{u}} * EVW + ln + {{v}}u * GW]; }
//#end
//#end

  for (var jb = c0; jb < c_end; jb += STEP) {
    // This step's words, and the next step's loads issued.
//#for u in 0..U
    let j_{{u}} = jb + {{u}}u * NG + g;
    let in_{{u}} = j_{{u}} < c_end;
    let jn_{{u}} = j_{{u}} + STEP;
//#for v in 0..NKV
    let kx_{{u}}_{{v}} = kn_{{u}}_{{v}};
    kn_{{u}}_{{v}} = vec4<{{WORD}}>();
    if (jn_{{u}} < c_end && ln + {{v}}u * GW < EW) { kn_{{u}}_{{v}} = k4[kw0 + jn_{{u}} * EW + ln + {{v}}u * GW]; }
//#end
//#for v in 0..NVV
    let vx_{{u}}_{{v}} = vn_{{u}}_{{v}};
    vn_{{u}}_{{v}} = vec4<{{WORD}}>();
    if (jn_{{u}} < c_end && ln + {{v}}u * GW < EVW) { vn_{{u}}_{{v}} = v4[vw0 + jn_{{u}} * EVW + ln + {{v}}u * GW]; }
//#end
//#end
    // This invocation's share of each dot.
//#for u in 0..U
//#for v in 0..NKV
    let ka_{{u}}_{{v}} = lo4(kx_{{u}}_{{v}});
//#if HALF
    let kb_{{u}}_{{v}} = hi4(kx_{{u}}_{{v}});
//#end
//#end
//#for r in 0..4
    var d_{{u}}_{{r}} = 0.0;
//#for v in 0..NKV
    d_{{u}}_{{r}} = dot4_acc(qa_{{r}}_{{v}}, ka_{{u}}_{{v}}, d_{{u}}_{{r}});
//#if HALF
    d_{{u}}_{{r}} = dot4_acc(qb_{{r}}_{{v}}, kb_{{u}}_{{v}}, d_{{u}}_{{r}});
//#end
//#end
//#end
//#end
    // Summed over the group of GW, then scored.
//#if SUBGROUPS
//#for u in 0..U
//#for r in 0..4
    d_{{u}}_{{r}} += subgroupShuffleXor(d_{{u}}_{{r}}, 1u);
    d_{{u}}_{{r}} += subgroupShuffleXor(d_{{u}}_{{r}}, 2u);
    d_{{u}}_{{r}} += subgroupShuffleXor(d_{{u}}_{{r}}, 4u);
//#if GW16
    d_{{u}}_{{r}} += subgroupShuffleXor(d_{{u}}_{{r}}, 8u);
//#end
    let s_{{u}}_{{r}} = score(d_{{u}}_{{r}}, in_{{u}} && ok_{{r}} && band_ok(i_{{r}}, j_{{u}}), mrow_{{r}}, j_{{u}});
//#end
//#end
//#end
//#if !SUBGROUPS
//#for u in 0..U
//#for r in 0..4
    { let a = pbase + ({{u}}u * 4u + {{r}}u) * GW + ln; sm4[a / 4u][a % 4u] = d_{{u}}_{{r}}; }
//#end
//#end
    workgroupBarrier();
//#for k in 0..DPL
    if (tok_{{k}}) {
      let a = (pbase + t_{{k}} * GW) / 4u;
      var sv = sm4[a] + sm4[a + 1u];
//#if GW16
      sv += sm4[a + 2u] + sm4[a + 3u];
//#end
      let jt = jb + tu_{{k}} * NG + g;
      sc4[g * U + tu_{{k}}][tr_{{k}}] = score((sv.x + sv.y) + (sv.z + sv.w), tvis_{{k}} && jt < c_end && band_ok(ti_{{k}}, jt), tm_{{k}}, jt);
    }
//#end
    workgroupBarrier();
//#for u in 0..U
    let sv_{{u}} = sc4[g * U + {{u}}u];
    let s_{{u}}_0 = sv_{{u}}.x;
    let s_{{u}}_1 = sv_{{u}}.y;
    let s_{{u}}_2 = sv_{{u}}.z;
    let s_{{u}}_3 = sv_{{u}}.w;
//#end
//#end
//#for u in 0..U
//#for v in 0..NVV
    let va_{{u}}_{{v}} = lo4(vx_{{u}}_{{v}});
//#if HALF
    let vb_{{u}}_{{v}} = hi4(vx_{{u}}_{{v}});
//#end
//#end
//#end
    // The online softmax of each row over the step's U keys.
//#for r in 0..4
    {
      var new_m = m_{{r}};
//#for u in 0..U
      new_m = max(new_m, s_{{u}}_{{r}});
//#end
      let alpha = select(exp(m_{{r}} - new_m), 0.0, m_{{r}} <= MASKED);
      var ps = 0.0;
//#for u in 0..U
      var p_{{u}} = select(exp(s_{{u}}_{{r}} - new_m), 0.0, s_{{u}}_{{r}} <= MASKED);
      ps += p_{{u}};
//#end
      l_{{r}} = l_{{r}} * alpha + ps; // the normaliser counts dropped weights too: dropout follows softmax
      if (params.drop_thr != 0u) {
//#for u in 0..U
        p_{{u}} = select(p_{{u}} * params.keep_scale, 0.0, (mix32(hash_{{r}} ^ j_{{u}}) >> 8u) < params.drop_thr);
//#end
      }
      m_{{r}} = new_m;
//#for v in 0..NVV
      var o_{{v}} = acc_{{r}}_{{v}} * alpha;
//#if HALF
      var oh_{{v}} = acch_{{r}}_{{v}} * alpha;
//#end
//#for u in 0..U
      o_{{v}} = fma(vec4<f32>(p_{{u}}), va_{{u}}_{{v}}, o_{{v}});
//#if HALF
      oh_{{v}} = fma(vec4<f32>(p_{{u}}), vb_{{u}}_{{v}}, oh_{{v}});
//#end
//#end
      acc_{{r}}_{{v}} = o_{{v}};
//#if HALF
      acch_{{r}}_{{v}} = oh_{{v}};
//#end
//#end
    }
//#end
  }

  // Merge the groups' states, row by row, and write this chunk's partial.
  workgroupBarrier();
//#for r in 0..4
  {
    if (ln == 0u) { gm[g] = m_{{r}}; }
    workgroupBarrier();
    var mx = NEG_BIG;
    for (var u = 0u; u < NG; u++) { mx = max(mx, gm[u]); }
    let f = select(exp(m_{{r}} - mx), 0.0, m_{{r}} <= MASKED);
    if (ln == 0u) { gl[g] = l_{{r}} * f; }
//#for v in 0..NVV
    sm4[g * ({{DVMAX}}u / 4u) + (ln + {{v}}u * GW) * (VPW / 4u)] = acc_{{r}}_{{v}} * f;
//#if HALF
    sm4[g * ({{DVMAX}}u / 4u) + (ln + {{v}}u * GW) * 2u + 1u] = acch_{{r}}_{{v}} * f;
//#end
//#end
    workgroupBarrier();
    if (ok_{{r}}) {
      let pr = row_{{r}} * params.chunks + chunk;
      let ev4 = params.ev / 4u;
      for (var t = lid; t < ev4; t += 128u) {
        var o = vec4<f32>(0.0);
        for (var u = 0u; u < NG; u++) { o += sm4[u * ({{DVMAX}}u / 4u) + t]; }
        part4[pr * ev4 + t] = o;
      }
      if (lid == 0u) {
        var lt = 0.0;
        for (var u = 0u; u < NG; u++) { lt += gl[u]; }
        ml[pr] = vec2<f32>(mx, lt);
      }
    }
    workgroupBarrier();
  }
//#end
}
