/**
 * EFFICIENT_ATTENTION on the CPU, in TypeScript: tiled attention with an online softmax
 * (Milakov & Gimelshein; Rabe & Staats). Per flat head it walks query blocks of BR rows over key
 * blocks of BC keys, keeping for each row a running max, a running sum and an Ev-wide accumulator.
 * Memory is O(BR·BC + BR·Ev) scratch plus the output: never S×L. Any mask kind, causal variants,
 * GQA, Ev ≠ E and dropout with the shared RNG.
 */
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { headView, kvHeadOf, maskView, numericStorage, outputTensor } from '../../src/cpu/layout.js';
import { makeYielder } from '../../src/cpu/cooperate.js';
import { dropoutHeadHash, dropoutRowHash, dropoutThreshold, mix32 } from '../../src/rng.js';

/** Query rows per block: their accumulators stay in cache while a key block streams past. */
const BR = 32;
/** Keys per block: one block of k and v rows is reused by all BR query rows. */
const BC = 64;

/** Scratch bytes one call allocates (independent of S and L). */
export function efficientScratchBytes(p: AttentionParams): number {
  return (BR * BC + BR * p.ev + 2 * BR + p.e) * 8;
}

async function run(p: AttentionParams, ctx: RunContext) {
  const { s: S, l: L, e: E, ev: Ev } = p;
  const q = numericStorage(p.q) as Float32Array;
  const k = numericStorage(p.k) as Float32Array;
  const v = numericStorage(p.v) as Float32Array;
  const mask = p.mask ? numericStorage(p.mask.tensor) : undefined;
  const boolMask = p.mask?.kind === 'bool';
  const qv = headView(p.q), kv = headView(p.k), vv = headView(p.v), mv = maskView(p);
  const off = p.causal?.diagonalOffset;
  // Strides in locals: V8 keeps them in registers inside the hot loops.
  const qrs = qv.rowStride, qcs = qv.colStride, krs = kv.rowStride, kcs = kv.colStride, vrs = vv.rowStride, vcs = vv.colStride;
  const scale = p.scale;
  const bhCount = p.batch * p.hq;
  const out = new Float64Array(bhCount * S * Ev);
  const sc = new Float64Array(BR * BC); // scores, then probabilities, of one tile
  const acc = new Float64Array(BR * Ev);
  const rowMax = new Float64Array(BR);
  const rowSum = new Float64Array(BR);
  const qrow = new Float64Array(E); // the current query row, pre-scaled
  ctx.recordAllocation(efficientScratchBytes(p) + out.byteLength);
  const thr = dropoutThreshold(p.dropoutP);
  const keepScale = p.dropoutP > 0 ? 1 / (1 - p.dropoutP) : 1;
  const yieldNow = makeYielder(ctx.signal);

  for (let bh = 0; bh < bhCount; bh++) {
    const kvh = kvHeadOf(p, bh);
    const qb = qv.bases[bh], kb = kv.bases[kvh], vb = vv.bases[kvh];
    const hh = p.dropoutP > 0 ? dropoutHeadHash(p.seed, bh) : 0;
    for (let i0 = 0; i0 < S; i0 += BR) {
      const rows = Math.min(BR, S - i0);
      rowMax.fill(-Infinity);
      rowSum.fill(0);
      acc.fill(0);
      // Causal: keys past the last row's diagonal are invisible to the whole block.
      const jEnd = off === undefined ? L : Math.min(L, i0 + rows - 1 + off + 1);
      for (let j0 = 0; j0 < jEnd; j0 += BC) {
        const cols = Math.min(BC, jEnd - j0);
        for (let r = 0; r < rows; r++) {
          const i = i0 + r;
          const qi = qb + i * qrs;
          for (let d = 0; d < E; d++) qrow[d] = q[qi + d * qcs] * scale;
          const mrow = mv ? mv.bases[bh] + i * mv.rowStride : 0;
          let tileMax = -Infinity;
          for (let c = 0; c < cols; c++) {
            const j = j0 + c;
            let s: number;
            if (off !== undefined && j > i + off) s = -Infinity;
            else {
              const kj = kb + j * krs;
              let dot = 0;
              if (kcs === 1) for (let d = 0; d < E; d++) dot += qrow[d] * k[kj + d];
              else for (let d = 0; d < E; d++) dot += qrow[d] * k[kj + d * kcs];
              s = dot;
              if (mask && mv) {
                const m = mask[mrow + j * mv.colStride];
                if (boolMask) {
                  if (m === 0) s = -Infinity;
                } else s += m;
              }
            }
            sc[r * BC + c] = s;
            if (s > tileMax) tileMax = s;
          }
          // Online softmax: rescale what was accumulated when the running max grows.
          const newMax = tileMax > rowMax[r] ? tileMax : rowMax[r];
          if (newMax === -Infinity) continue; // nothing visible yet in this row
          const alpha = rowMax[r] === -Infinity ? 0 : Math.exp(rowMax[r] - newMax);
          rowMax[r] = newMax;
          let sum = rowSum[r] * alpha;
          const a = r * Ev;
          if (alpha !== 1) for (let d = 0; d < Ev; d++) acc[a + d] *= alpha;
          const rh = p.dropoutP > 0 ? dropoutRowHash(hh, i) : 0;
          for (let c = 0; c < cols; c++) {
            const pr = Math.exp(sc[r * BC + c] - newMax);
            if (pr === 0) continue;
            sum += pr; // the normaliser counts dropped weights too (dropout follows softmax)
            let w = pr;
            if (p.dropoutP > 0) {
              if (mix32(rh ^ (j0 + c)) >>> 8 < thr) continue;
              w *= keepScale;
            }
            const vj = vb + (j0 + c) * vrs;
            if (vcs === 1) for (let d = 0; d < Ev; d++) acc[a + d] += w * v[vj + d];
            else for (let d = 0; d < Ev; d++) acc[a + d] += w * v[vj + d * vcs];
          }
          rowSum[r] = sum;
        }
      }
      for (let r = 0; r < rows; r++) {
        const o = (bh * S + i0 + r) * Ev;
        if (rowSum[r] === 0) continue; // fully masked row: zeros
        const inv = 1 / rowSum[r];
        for (let d = 0; d < Ev; d++) out[o + d] = acc[r * Ev + d] * inv;
      }
      await yieldNow();
    }
  }
  return outputTensor(p, out);
}

/** The EFFICIENT_ATTENTION backend's CPU part. */
export const efficientCpu: BackendPart = {
  device: 'cpu',
  label: 'efficient (cpu)',
  caps: {
    dtypes: ['float32', 'float16', 'bfloat16'],
    maxHeadDim: Number.MAX_SAFE_INTEGER,
    headDimMultiple: 1,
    maskKinds: ['none', 'bool', 'float'],
    causalVariants: ['upper-left', 'lower-right', 'both'],
    maskWithCausal: true,
    dropout: true,
    gqa: true,
    customScale: true,
    valueDimDiffers: true,
    notes: `TypeScript, tiled online softmax (${BR}×${BC} tiles), O(S) memory, float64 accumulation`,
  },
  availability: () => ({ available: true }),
  constraints: [],
  run,
  tolerance: {
    float32: { atol: 2e-6, rtol: 2e-6 },
    float16: { atol: 1e-3, rtol: 1e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
};
