/**
 * MATH on the CPU: the reference. It follows the textbook formula step by step in float64 —
 * scores = scale·q·kᵀ (+ mask), softmax, dropout, ·v — and materializes the whole
 * `[batch·Hq, S, L]` score matrix like PyTorch's math path, which is why it has a memory budget.
 */
import { checkMemoryBudget, formatBytes } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { headView, kvHeadOf, maskView, numericStorage, outputTensor, type HeadView } from '../../src/cpu/layout.js';
import { makeYielder } from '../../src/cpu/cooperate.js';
import { dropoutHeadHash, dropoutRowHash, dropoutThreshold, mix32 } from '../../src/rng.js';

/** Bytes of the score matrix MATH would materialize for `p` (float64). */
export function mathScoreBytes(p: AttentionParams): number {
  return p.batch * p.hq * p.s * p.l * 8;
}

/** Largest score matrix a single Float64Array can hold here. */
const TYPED_ARRAY_LIMIT_BYTES = (2 ** 32 - 1) * 8;

/**
 * The memory budget for MATH's score matrix: `SDPA_MATH_MAX_BYTES` when set, else a quarter of
 * the machine's memory (1 GiB where the total is unknown, e.g. in a browser).
 */
export function mathMemoryBudget(): number {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined>; getBuiltinModule?: (id: string) => unknown } }).process;
  const env = proc?.env?.SDPA_MATH_MAX_BYTES;
  if (env !== undefined && Number.isFinite(Number(env)) && Number(env) > 0) return Math.min(Number(env), TYPED_ARRAY_LIMIT_BYTES);
  const os = proc?.getBuiltinModule?.('node:os') as { totalmem(): number } | undefined;
  return Math.min(os ? os.totalmem() / 4 : 2 ** 30, TYPED_ARRAY_LIMIT_BYTES);
}

interface Prepared {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  mask: Float32Array | Uint8Array | undefined;
  qv: HeadView;
  kv: HeadView;
  vv: HeadView;
  mv: HeadView | undefined;
}

function prepare(p: AttentionParams): Prepared {
  return {
    q: numericStorage(p.q) as Float32Array,
    k: numericStorage(p.k) as Float32Array,
    v: numericStorage(p.v) as Float32Array,
    mask: p.mask ? numericStorage(p.mask.tensor) : undefined,
    qv: headView(p.q),
    kv: headView(p.k),
    vv: headView(p.v),
    mv: maskView(p),
  };
}

/** One flat query head: fills its S×L slice of `scores`, then writes its `[S, Ev]` rows of `out`. */
function mathHead(p: AttentionParams, x: Prepared, bh: number, scores: Float64Array, out: Float64Array): void {
  const { s: S, l: L, e: E, ev: Ev } = p;
  const kvh = kvHeadOf(p, bh);
  const qb = x.qv.bases[bh], kb = x.kv.bases[kvh], vb = x.vv.bases[kvh];
  const sBase = bh * S * L;
  const boolMask = p.mask?.kind === 'bool';
  const off = p.causal?.diagonalOffset;
  const qrs = x.qv.rowStride, qcs = x.qv.colStride, krs = x.kv.rowStride, kcs = x.kv.colStride, vrs = x.vv.rowStride, vcs = x.vv.colStride;
  const { q, k, v } = x;
  // 1. scores = scale · q kᵀ, then causal and mask.
  for (let i = 0; i < S; i++) {
    const qi = qb + i * qrs;
    const mrow = x.mv ? x.mv.bases[bh] + i * x.mv.rowStride : 0;
    for (let j = 0; j < L; j++) {
      const kj = kb + j * krs;
      let dot = 0;
      for (let d = 0; d < E; d++) dot += q[qi + d * qcs] * k[kj + d * kcs];
      let sc = dot * p.scale;
      if (off !== undefined && j > i + off) sc = -Infinity;
      if (x.mask && x.mv) {
        const mval = x.mask[mrow + j * x.mv.colStride];
        if (boolMask) {
          if (mval === 0) sc = -Infinity;
        } else sc += mval;
      }
      scores[sBase + i * L + j] = sc;
    }
  }
  // 2. softmax per row; a row with no visible key stays all zeros (PyTorch's safe softmax).
  for (let i = 0; i < S; i++) {
    const r = sBase + i * L;
    let max = -Infinity;
    for (let j = 0; j < L; j++) if (scores[r + j] > max) max = scores[r + j];
    if (max === -Infinity) {
      scores.fill(0, r, r + L);
      continue;
    }
    let sum = 0;
    for (let j = 0; j < L; j++) {
      const e = Math.exp(scores[r + j] - max);
      scores[r + j] = e;
      sum += e;
    }
    for (let j = 0; j < L; j++) scores[r + j] /= sum;
  }
  // 3. dropout on the probabilities (kept ones scaled by 1/(1-p)).
  if (p.dropoutP > 0) {
    const hh = dropoutHeadHash(p.seed, bh);
    const thr = dropoutThreshold(p.dropoutP);
    const keepScale = 1 / (1 - p.dropoutP);
    for (let i = 0; i < S; i++) {
      const rh = dropoutRowHash(hh, i);
      const r = sBase + i * L;
      for (let j = 0; j < L; j++) scores[r + j] = mix32(rh ^ j) >>> 8 < thr ? 0 : scores[r + j] * keepScale;
    }
  }
  // 4. out = P · v.
  for (let i = 0; i < S; i++) {
    const r = sBase + i * L;
    const o = (bh * S + i) * Ev;
    for (let j = 0; j < L; j++) {
      const pij = scores[r + j];
      if (pij === 0) continue;
      const vj = vb + j * vrs;
      for (let d = 0; d < Ev; d++) out[o + d] += pij * v[vj + d * vcs];
    }
  }
}

/**
 * The float64 reference result (contiguous `[...batch, Hq, S, Ev]`), synchronously. Parity tests
 * compare every backend against this.
 */
export function mathReference(p: AttentionParams): Float64Array {
  const x = prepare(p);
  const bhCount = p.batch * p.hq;
  const scores = new Float64Array(bhCount * p.s * p.l);
  const out = new Float64Array(bhCount * p.s * p.ev);
  for (let bh = 0; bh < bhCount; bh++) mathHead(p, x, bh, scores, out);
  return out;
}

async function run(p: AttentionParams, ctx: RunContext) {
  const x = prepare(p);
  const bhCount = p.batch * p.hq;
  const scores = new Float64Array(bhCount * p.s * p.l);
  const out = new Float64Array(bhCount * p.s * p.ev);
  ctx.recordAllocation(scores.byteLength + out.byteLength);
  const yieldNow = makeYielder(ctx.signal);
  for (let bh = 0; bh < bhCount; bh++) {
    mathHead(p, x, bh, scores, out);
    await yieldNow();
  }
  return outputTensor(p, out);
}

/** The MATH backend's CPU part. */
export const mathCpu: BackendPart = {
  device: 'cpu',
  label: 'math (cpu)',
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
    notes: 'float64 reference; materializes the [batch·Hq, S, L] score matrix (memory budget: SDPA_MATH_MAX_BYTES, default ¼ of RAM)',
  },
  availability: () => ({ available: true }),
  constraints: [
    checkMemoryBudget(
      'math (cpu)',
      'the batch·Hq·S·L float64 score matrix',
      mathScoreBytes,
      mathMemoryBudget,
      'use EFFICIENT_ATTENTION or FLASH_ATTENTION (O(S) memory), or raise SDPA_MATH_MAX_BYTES',
    ),
  ],
  run,
  // float64 throughout: only the final rounding to the output dtype differs from the reference.
  tolerance: {
    float32: { atol: 1e-6, rtol: 1e-6 },
    float16: { atol: 1e-3, rtol: 1e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => ({ scoreBudget: formatBytes(mathMemoryBudget()) }),
};
