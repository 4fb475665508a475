/**
 * EFFICIENT_ATTENTION on the CPU, in TypeScript: tiled attention with an online softmax
 * (Milakov & Gimelshein; Rabe & Staats). Per flat head it walks query blocks of BR rows over key
 * blocks of BC keys, keeping for each row a running max, a running sum and an Ev-wide accumulator.
 * Memory is O(BR·BC + BR·Ev) scratch plus the output: never S×L. Any mask kind, causal variants,
 * GQA, Ev ≠ E and dropout with the shared RNG; structured biases (sliding window, ALiBi, softcap,
 * block-diagonal/varlen) are applied by rule: every rule is an interval of visible keys per query
 * row, so a row only ever touches the keys it can see.
 *
 * The kernel ({@link efficientKernel}) is a self-contained function over plain data
 * ({@link EfficientJob}): the split-KV workers (src/workers/) run this very function on key ranges.
 */
import { FULL_STRUCTURED_CAPS } from '../../src/dispatch/caps.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { headView, maskView, numericStorage, outputTensor } from '../../src/cpu/layout.js';
import { makeYielder } from '../../src/cpu/cooperate.js';
import { Tensor } from '../../src/tensor.js';
import { mix32 } from '../../src/rng.js';

/** Query rows per block: their accumulators stay in cache while a key block streams past. */
const BR = 32;
/** Keys per block: one block of k and v rows is reused by all BR query rows. */
const BC = 64;

/** Scratch bytes one call allocates (independent of S and L, plus the row→block map under varlen). */
export function efficientScratchBytes(p: AttentionParams): number {
  return (BR * BC + BR * p.ev + 6 * BR + p.e) * 8 + (p.blockDiagonal ? p.s * 4 : 0);
}

/**
 * Everything the kernel reads, as plain data (typed arrays and numbers): structured-cloneable, so
 * the same job crosses to worker threads. Storage is float32 (halves widened once, O(N)).
 */
export interface EfficientJob {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** Element offset of row 0 of each flat query head / flat kv head. */
  qBases: Float64Array;
  kBases: Float64Array;
  vBases: Float64Array;
  qrs: number;
  qcs: number;
  krs: number;
  kcs: number;
  vrs: number;
  vcs: number;
  mask: Float32Array | Uint8Array | null;
  maskBool: boolean;
  mBases: Float64Array | null;
  mrs: number;
  mcs: number;
  s: number;
  l: number;
  e: number;
  ev: number;
  hq: number;
  hkv: number;
  group: number;
  scale: number;
  /** Global causal: j <= i + causalOff; null when not causal. */
  causalOff: number | null;
  /** 0 = off. */
  softcap: number;
  windowOn: boolean;
  windowLeft: number;
  windowRight: number;
  windowLowerRight: boolean;
  alibi: Float32Array | null;
  alibiPerBatch: boolean;
  alibiLowerRight: boolean;
  /** Block of each query row (-1: none); null without a block-diagonal bias. */
  rowBlock: Int32Array | null;
  bdQStart: Int32Array | null;
  bdQLen: Int32Array | null;
  bdKvStart: Int32Array | null;
  bdKvLen: Int32Array | null;
  bdCausal: boolean;
  bdLowerRight: boolean;
  dropoutP: number;
  seed: number;
  /** Keys considered: [jMin, jMax) (split-KV gives each worker one range; indices stay global). */
  jMin: number;
  jMax: number;
}

/** The job for `p` over keys [jMin, jMax). */
export function makeEfficientJob(p: AttentionParams, jMin = 0, jMax = p.l): EfficientJob {
  const qv = headView(p.q), kv = headView(p.k), vv = headView(p.v), mv = maskView(p);
  const bd = p.blockDiagonal;
  let rowBlock: Int32Array | null = null;
  if (bd) {
    rowBlock = new Int32Array(p.s).fill(-1);
    for (let b = 0; b < bd.qStart.length; b++) rowBlock.fill(b, bd.qStart[b], bd.qStart[b] + bd.qLen[b]);
  }
  return {
    q: numericStorage(p.q) as Float32Array,
    k: numericStorage(p.k) as Float32Array,
    v: numericStorage(p.v) as Float32Array,
    qBases: qv.bases,
    kBases: kv.bases,
    vBases: vv.bases,
    qrs: qv.rowStride,
    qcs: qv.colStride,
    krs: kv.rowStride,
    kcs: kv.colStride,
    vrs: vv.rowStride,
    vcs: vv.colStride,
    mask: p.mask ? numericStorage(p.mask.tensor) : null,
    maskBool: p.mask?.kind === 'bool',
    mBases: mv ? mv.bases : null,
    mrs: mv ? mv.rowStride : 0,
    mcs: mv ? mv.colStride : 0,
    s: p.s,
    l: p.l,
    e: p.e,
    ev: p.ev,
    hq: p.hq,
    hkv: p.hkv,
    group: p.gqaGroup,
    scale: p.scale,
    causalOff: p.causal ? p.causal.diagonalOffset : null,
    softcap: p.softcap ?? 0,
    windowOn: p.window !== undefined,
    windowLeft: p.window?.left ?? Infinity,
    windowRight: p.window?.right ?? Infinity,
    windowLowerRight: p.window?.alignment === 'lower-right',
    alibi: p.alibi ? p.alibi.slopes : null,
    alibiPerBatch: p.alibi?.perBatch ?? false,
    alibiLowerRight: p.alibi?.alignment === 'lower-right',
    rowBlock,
    bdQStart: bd ? bd.qStart : null,
    bdQLen: bd ? bd.qLen : null,
    bdKvStart: bd ? bd.kvStart : null,
    bdKvLen: bd ? bd.kvLen : null,
    bdCausal: bd?.causal ?? false,
    bdLowerRight: bd?.alignment === 'lower-right',
    dropoutP: p.dropoutP,
    seed: p.seed >>> 0,
    jMin,
    jMax,
  };
}

/**
 * Attention of flat heads [bhFrom, bhTo), query rows [iFrom, iTo), over the job's keys, written to
 * `out` (`[bh, S, Ev]`, global indices) and `lse` (`[bh, S]`; -Infinity where a row sees no key).
 *
 * Self-contained on purpose (no imports, no module-level names): split-KV workers receive its
 * source text and run it unchanged, so every path computes the same arithmetic.
 */
export function efficientKernel(job: EfficientJob, bhFrom: number, bhTo: number, iFrom: number, iTo: number, out: Float64Array, lse: Float64Array): void {
  const TR = 32; // query rows per block (BR above)
  const TC = 64; // keys per block (BC above)
  const mix = mix32;
  const { q, k, v, mask, s: S, l: L, e: E, ev: Ev, hq, hkv, group, scale, softcap, causalOff, rowBlock, alibi } = job;
  const { qrs, qcs, krs, kcs, vrs, vcs, mrs, mcs, maskBool, dropoutP, jMin, jMax } = job;
  const sc = new Float64Array(TR * TC);
  const acc = new Float64Array(TR * Ev);
  const rowMax = new Float64Array(TR);
  const rowSum = new Float64Array(TR);
  const rLo = new Float64Array(TR);
  const rHi = new Float64Array(TR);
  const rCenter = new Float64Array(TR);
  const rSlope = new Float64Array(TR);
  const qrow = new Float64Array(E);
  const thr = dropoutP * 16777216;
  const keepScale = dropoutP > 0 ? 1 / (1 - dropoutP) : 1;
  const seedHash = mix(job.seed >>> 0);

  for (let bh = bhFrom; bh < bhTo; bh++) {
    // Exact integer quotients: with Math.floor(bh / hq) V8 optimised the division for the exact
    // quotients of head 0 and deoptimised ("lost precision") at head 1, mid-call; the slice then ran
    // 5–10× slower in baseline code and held the event loop for 46–56 ms (S = 2048).
    const h = bh % hq;
    const b = (bh - h) / hq;
    const kvh = b * hkv + (h - (h % group)) / group;
    const qb = job.qBases[bh], kb = job.kBases[kvh], vb = job.vBases[kvh];
    const mb = job.mBases ? job.mBases[bh] : 0;
    const hh = dropoutP > 0 ? mix(seedHash ^ bh) : 0;
    for (let i0 = iFrom; i0 < iTo; i0 += TR) {
      const rows = Math.min(TR, iTo - i0);
      rowMax.fill(-Infinity);
      rowSum.fill(0);
      acc.fill(0);
      // Visible keys of each row form one interval [lo, hi]: intersect block, causal and window rules.
      let blockLo = Infinity, blockHi = -Infinity;
      for (let r = 0; r < rows; r++) {
        const i = i0 + r;
        let lo = jMin, hi = jMax - 1;
        let qs = 0, ks = 0, fs = S, fl = L, blk = -1;
        if (rowBlock) {
          blk = rowBlock[i];
          if (blk < 0) hi = lo - 1;
          else {
            qs = job.bdQStart![blk];
            ks = job.bdKvStart![blk];
            fs = job.bdQLen![blk];
            fl = job.bdKvLen![blk];
            if (ks > lo) lo = ks;
            if (ks + fl - 1 < hi) hi = ks + fl - 1;
          }
        }
        if (causalOff !== null && i + causalOff < hi) hi = i + causalOff;
        const li = i - qs;
        if (rowBlock && job.bdCausal) {
          const c = ks + li + (job.bdLowerRight ? fl - fs : 0);
          if (c < hi) hi = c;
        }
        if (job.windowOn) {
          const c = ks + li + (job.windowLowerRight ? fl - fs : 0);
          if (c - job.windowLeft > lo) lo = c - job.windowLeft;
          if (c + job.windowRight < hi) hi = c + job.windowRight;
        }
        rLo[r] = lo;
        rHi[r] = hi;
        if (alibi) {
          rCenter[r] = ks + li + (job.alibiLowerRight ? fl - fs : 0);
          rSlope[r] = alibi[job.alibiPerBatch ? (rowBlock ? (blk < 0 ? 0 : blk) : b) * hq + h : h];
        }
        if (lo <= hi) {
          if (lo < blockLo) blockLo = lo;
          if (hi > blockHi) blockHi = hi;
        }
      }
      for (let j0 = blockLo; j0 <= blockHi; j0 += TC) {
        const cols = Math.min(TC, blockHi + 1 - j0);
        for (let r = 0; r < rows; r++) {
          const lo = rLo[r], hi = rHi[r];
          if (hi < j0 || lo >= j0 + cols) continue; // this tile is outside the row's interval
          const i = i0 + r;
          const qi = qb + i * qrs;
          for (let d = 0; d < E; d++) qrow[d] = q[qi + d * qcs] * scale;
          const mrow = mb + i * mrs;
          let tileMax = -Infinity;
          for (let c = 0; c < cols; c++) {
            const j = j0 + c;
            let s: number;
            if (j < lo || j > hi) s = -Infinity;
            else {
              const kj = kb + j * krs;
              let dot = 0;
              if (kcs === 1) for (let d = 0; d < E; d++) dot += qrow[d] * k[kj + d];
              else for (let d = 0; d < E; d++) dot += qrow[d] * k[kj + d * kcs];
              s = dot;
              if (softcap > 0) s = softcap * Math.tanh(s / softcap);
              if (alibi) s -= rSlope[r] * Math.abs(rCenter[r] - j);
              if (mask) {
                const m = mask[mrow + j * mcs];
                if (maskBool) {
                  if (m === 0) s = -Infinity;
                } else s += m;
              }
            }
            sc[r * TC + c] = s;
            // NaN wins, like Math.max: a NaN score makes the whole row NaN, as in PyTorch and MATH.
            if (s > tileMax || s !== s) tileMax = s;
            if (tileMax !== tileMax) break;
          }
          // Online softmax: rescale what was accumulated when the running max grows.
          const newMax = tileMax !== tileMax || rowMax[r] !== rowMax[r] ? NaN : tileMax > rowMax[r] ? tileMax : rowMax[r];
          if (newMax === -Infinity) continue; // nothing visible yet in this row
          const alpha = rowMax[r] === -Infinity ? 0 : Math.exp(rowMax[r] - newMax);
          rowMax[r] = newMax;
          let sum = rowSum[r] * alpha;
          const a = r * Ev;
          if (alpha !== 1) for (let d = 0; d < Ev; d++) acc[a + d] *= alpha;
          const rh = dropoutP > 0 ? mix(hh ^ i) : 0;
          for (let c = 0; c < cols; c++) {
            const pr = Math.exp(sc[r * TC + c] - newMax);
            if (pr === 0) continue;
            sum += pr; // the normaliser counts dropped weights too (dropout follows softmax)
            let w = pr;
            if (dropoutP > 0) {
              if (mix(rh ^ (j0 + c)) >>> 8 < thr) continue;
              w *= keepScale;
            }
            const vj = vb + (j0 + c) * vrs;
            if (vcs === 1) for (let d = 0; d < Ev; d++) acc[a + d] += w * v[vj + d];
            else for (let d = 0; d < Ev; d++) acc[a + d] += w * v[vj + d * vcs];
          }
          rowSum[r] = sum;
        }
      }
      finishRows(rows, bh * S + i0, Ev, rowMax, rowSum, acc, out, lse);
    }
  }
}

/**
 * Writes the normalised rows of a block and their log-sum-exps. A function of its own: V8 compiles
 * efficientKernel on-stack (OSR) inside its first, long call, before this loop has ever run, and
 * the optimised code then lacked type feedback for it and deoptimised at the next head's first
 * block — one 5-row slice took 46–56 ms in baseline code there (S = 2048, the event-loop stall
 * of scripts/bench-wasm.mjs; `--trace-deopt`: "insufficient type feedback for compare").
 */
function finishRows(rows: number, row0: number, Ev: number, rowMax: Float64Array, rowSum: Float64Array, acc: Float64Array, out: Float64Array, lse: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    const row = row0 + r;
    if (rowSum[r] === 0) {
      lse[row] = -Infinity; // fully masked row: zeros, and log(0) so merges give it no weight
      continue;
    }
    lse[row] = rowMax[r] + Math.log(rowSum[r]);
    const o = row * Ev;
    const inv = 1 / rowSum[r];
    for (let d = 0; d < Ev; d++) out[o + d] = acc[r * Ev + d] * inv;
  }
}

/**
 * Query rows per kernel call, between which the event loop may get a turn: about this many
 * multiply-adds, so one call takes ~5–15 ms in V8 (0.1–0.3 GMAC/s) and, with the yielder's 25 ms
 * slices, no stretch passes 50 ms. A fixed BR·8 rows held the loop for 627 ms at S = L = 512.
 */
const MACS_PER_SLICE = 1.5e6;
function rowsPerSlice(p: AttentionParams): number {
  const perRow = Math.max(1, p.l * (p.e + p.ev));
  const rows = Math.max(1, Math.floor(MACS_PER_SLICE / perRow));
  return rows >= BR ? Math.min(BR * 8, rows - (rows % BR)) : rows;
}

/** Rows of the first kernel slice of a call (see runWithLse). */
export const FIRST_SLICE_ROWS = 1;
/** A slice shorter than this lets the next one take twice the rows. */
const GROW_BELOW_MS = 4;
/** A slice longer than this yields the event loop right after it (see runWithLse). */
const SLOW_SLICE_MS = 8;

/**
 * The rows of the next slice: twice `rows` while a slice took under GROW_BELOW_MS (the kernel is
 * warming up or the rows are cheap), never above `maxRows` (rowsPerSlice's bound) nor below 1.
 * @internal exported for the test of the warm-up slicing.
 */
export function nextSliceRows(rows: number, elapsedMs: number, maxRows: number): number {
  const next = elapsedMs < GROW_BELOW_MS ? rows * 2 : rows;
  return Math.max(1, Math.min(maxRows, next));
}

async function runWithLse(p: AttentionParams, ctx: RunContext): Promise<{ out: Tensor; lse: Tensor }> {
  const job = makeEfficientJob(p);
  const bhCount = p.batch * p.hq;
  const out = new Float64Array(bhCount * p.s * p.ev);
  const lse = new Float64Array(bhCount * p.s);
  ctx.recordAllocation(efficientScratchBytes(p) + out.byteLength + lse.byteLength);
  const yieldNow = makeYielder(ctx.signal);
  const maxRows = rowsPerSlice(p);
  // The first slices run before V8 has optimised efficientKernel (interpreted code is 5–10× slower),
  // so a full slice then held the loop for 66–100 ms: start at one row and grow while slices are short.
  let rows = Math.min(FIRST_SLICE_ROWS, maxRows);
  for (let bh = 0; bh < bhCount; bh++) {
    for (let i0 = 0; i0 < p.s; ) {
      const i1 = Math.min(p.s, i0 + rows);
      const t0 = performance.now();
      efficientKernel(job, bh, bh + 1, i0, i1, out, lse);
      const ms = performance.now() - t0;
      rows = nextSliceRows(rows, ms, maxRows);
      i0 = i1;
      // A slow slice (the first ones run before V8 has optimised the kernel: one row of 2048 keys took
      // 12–25 ms) gets its turn at once, rather than joining the next slices in one stretch.
      await yieldNow(ms > SLOW_SLICE_MS);
    }
  }
  return { out: outputTensor(p, out), lse: new Tensor({ shape: p.q.shape.slice(0, -1), dtype: 'float32', data: Float32Array.from(lse) }) };
}

async function run(p: AttentionParams, ctx: RunContext): Promise<Tensor> {
  return (await runWithLse(p, ctx)).out;
}

/** The EFFICIENT_ATTENTION backend's CPU part. */
export const efficientCpu: BackendPart = {
  device: 'cpu',
  label: 'efficient (cpu)',
  caps: {
    ...FULL_STRUCTURED_CAPS,
    notes: `TypeScript, tiled online softmax (${BR}×${BC} tiles), O(S) memory, float64 accumulation`,
  },
  availability: () => ({ available: true }),
  constraints: [],
  kernels: [
    {
      name: 'ts_online_softmax',
      summary: `TypeScript tiled online softmax (${BR}×${BC} tiles) with float64 accumulation, yielding between row blocks`,
      program: { kind: 'typescript', fn: 'efficientKernel' },
      run,
      runWithLse,
    },
  ],
  tolerance: {
    float32: { atol: 2e-6, rtol: 2e-6 },
    float16: { atol: 1e-3, rtol: 1e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
};
