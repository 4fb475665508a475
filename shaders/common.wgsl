// Shared prelude of the attention shaders (pulled in with //#include "common.wgsl").
// Runtime sizes all live in this uniform block, so one pipeline serves every S, L, batch and head count.
struct Params {
  bh_count: u32,    // batch * Hq flat query heads
  hq: u32,
  hkv: u32,
  group: u32,       // Hq / Hkv (GQA)
  s: u32,
  l: u32,
  e: u32,
  ev: u32,
  scale: f32,
  causal: u32,      // 1: key j visible to query i only when j <= i + diag (causal, a window's upper edge)
  diag: i32,
  drop_thr: u32,    // ceil(p * 2^24): dropped when (hash >> 8) < drop_thr; 0 = no dropout
  seed_hash: u32,   // mix(seed)
  keep_scale: f32,  // 1 / (1 - p)
  mask_row: u32,    // mask element strides over S and L (0 = broadcast)
  mask_col: u32,
  mask_kind: u32,   // 0 none, 1 bool, 2 additive float
  chunk_len: u32,   // flash-decode: keys per chunk (0 elsewhere)
  chunks: u32,      // flash-decode: chunks per row (0 elsewhere)
  lower: u32,       // 1: key j visible to query i only when j >= i + ldiag (a sliding window's lower edge)
  ldiag: i32,
  k_begin: u32,     // flash-decode: first key of chunk 0 (0 elsewhere)
  pad3: u32,
}

// Scores at or below this are "masked": a finite stand-in for -inf, which WGSL cannot spell as a
// constant and which fast-math compilers may not honour.
const NEG_BIG: f32 = -3.0e38;
const MASKED: f32 = -1.5e38;

// The dropout hash of docs/design.md §2, in u32 arithmetic (wrapping multiply, logical shifts).
fn mix32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// Decoders from a storage word to f32. Halves are packed two per u32, element 0 in the low half
// (little-endian), so f16 and bf16 inputs are read in place without a conversion pass.
fn decode_f32(w: f32, i: u32) -> f32 { return w; }
fn decode_f16(w: u32, i: u32) -> f32 { return unpack2x16float(w)[i & 1u]; }
fn decode_bf16(w: u32, i: u32) -> f32 { return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }
fn decode_bool(w: u32, i: u32) -> f32 { return f32((w >> ((i & 3u) * 8u)) & 0xffu); }

// The flat kv head serving flat query head bh (GQA: h / group within the same batch entry).
fn kv_head(bh: u32) -> u32 {
  return (bh / params.hq) * params.hkv + (bh % params.hq) / params.group;
}

// Key j lies inside query i's band: at or below the upper diagonal (causal) and at or above the
// lower one (a sliding window's lower edge).
fn band_ok(i: u32, j: u32) -> bool {
  return (params.causal == 0u || i32(j) <= i32(i) + params.diag) && (params.lower == 0u || i32(j) >= i32(i) + params.ldiag);
}

// The first key any of the rows i0.. can see, rounded down to a multiple of `bc` so the key blocks
// keep the grid they have without a lower edge: blocks wholly below the edge are skipped.
fn band_begin(i0: u32, bc: u32) -> u32 {
  if (params.lower == 0u) { return 0u; }
  return (u32(clamp(i32(i0) + params.ldiag, 0, i32(params.l))) / bc) * bc;
}

// Applies the dense mask (if any) to a scaled score; masked results become NEG_BIG.
fn apply_mask(s: f32, m: f32) -> f32 {
  if (params.mask_kind == 1u) { return select(s, NEG_BIG, m == 0.0); }
  if (params.mask_kind == 2u) { return max(s + max(m, NEG_BIG), NEG_BIG); }
  return s;
}
