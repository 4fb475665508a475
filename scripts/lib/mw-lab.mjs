// The bench-only lab copy of the multi-subgroup kernel (scripts/probes/flash-sgmat-mw-lab.wgsl):
// the tile shapes, ablations and bisection switches of the 2026-12-01 H200 runs, as a program
// builder. The shipped kernel is the frozen shaders/flash-sgmat-mw.wgsl; nothing here ships.
import { readFileSync } from 'node:fs';

/**
 * `NWxRTxBC` + `s` (staged K/V) or `d` (direct), optional `-tTH`, `-aABL`, `-fFLG`: e.g. `2x2x64d`,
 * `4x1x64s-t8-a1` (the shader's header lists the ABL and FLG bits). Undefined when malformed.
 */
export function parseLabTiles(text) {
  const m = /^(\d+)x(\d+)x(\d+)([sd])(?:-t(\d+))?(?:-a(\d+))?(?:-f(\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  const t = { nw: Number(m[1]), rt: Number(m[2]), bc: Number(m[3]), kvs: m[4] === 's', th: m[5] ? Number(m[5]) : 8, abl: m[6] ? Number(m[6]) : 0, flg: m[7] ? Number(m[7]) : 0 };
  if (![1, 2, 4, 8, 16].includes(t.nw) || ![1, 2].includes(t.rt) || ![16, 32, 64].includes(t.bc)) return undefined;
  return t;
}

/** Row padding (f16 elements) of P and the staged tiles; FLG 4 drops it. */
const pad = (t) => (t.flg & 4 ? 0 : 8);

/** Workgroup bytes: S (f32) and P (f16) per subgroup, the K/V/Q staging block, row arrays (and O with FLG 2). */
export function labWorkgroupBytes(t, d) {
  const rows = t.nw * 16 * t.rt;
  return rows * (t.bc + (t.flg & 256 ? 8 : 0)) * 4 + rows * (t.bc + pad(t)) * 2 + 2 * t.bc * (d + pad(t)) * 2 + 2 * rows * 4 + 16 + (t.flg & 2 ? rows * d * 4 : 0);
}

/** The defines of the lab shader for tiles `t`, head dim `d` and debug output `dbg` (0: the attention output). */
export function labDefines(t, d, dbg = 0) {
  const rows = t.nw * 16 * t.rt;
  const qrr = Math.min(rows, 2 * t.bc);
  return {
    NW: t.nw, RT: t.rt, R: 16 * t.rt, LPR: 32 / (16 * t.rt), SHUF: t.rt === 1 ? 1 : 0, BC: t.bc, NC: t.bc / 16, DM: d, DK: d / 16,
    // O passes through workgroup memory 16 columns at a time (the directives have no index arithmetic).
    OCW: 16, OCH: d / 16, OCT: 1, PPAD: pad(t), KPAD: pad(t), TH: t.th.toFixed(1), KVS: t.kvs ? 1 : 0,
    QR: Math.ceil(rows / qrr), QRR: qrr, CAUSAL_SKIP: 1, ABL: t.abl,
    FLG: t.flg, OWG: t.flg & 2 ? 1 : 0, QG: t.flg & 1 ? 1 : 0,
    PF: t.flg & 2048 && !t.kvs ? 1 : 0, KDIRECT: !t.kvs && !(t.flg & 2048) ? 1 : 0,
    QONE: !(t.flg & 1) && rows <= qrr ? 1 : 0, QROUNDS: !(t.flg & 1) && rows > qrr ? 1 : 0,
    RTALWAYS: t.flg & 128 && !(t.flg & 2) ? 1 : 0,
    GSTRIDE: t.flg & 512 ? 'params.e' : 'DM',
    DBG: dbg, DBG3: dbg === 3 ? 1 : 0, DBG4: dbg === 4 ? 1 : 0, DBG5: dbg === 5 ? 1 : 0,
    DO_QK: t.abl & 4 ? 0 : 1, DO_SST: t.abl & 8 ? 0 : 1, DO_PV: t.abl & 2 ? 0 : 1,
  };
}

/**
 * The lab shader's WGSL for `defines`, its includes resolved from shaders/ (`expand` is
 * programs.ts's directive and template expansion: (source, defines) => code).
 */
export function labWgsl(defines, expand) {
  const read = (u) => readFileSync(u, 'utf8');
  const src = read(new URL('../probes/flash-sgmat-mw-lab.wgsl', import.meta.url)).replace(/^\s*\/\/#include\s+"([\w.-]+)"\s*$/gm, (_, f) => read(new URL(`../../shaders/${f}`, import.meta.url)));
  return expand(src, defines);
}
