/**
 * MATH on the CPU: the reference. It follows the textbook formula step by step in float64 —
 * scores = scale·q·kᵀ (+ mask), softmax, dropout, ·v — and materializes the whole
 * `[batch·Hq, S, L]` score matrix like PyTorch's math path, which is why it has a memory budget.
 */
import { FULL_STRUCTURED_CAPS } from '../../src/dispatch/caps.js';
import { checkMemoryBudget, formatBytes } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { headView, kvHeadOf, maskView, numericStorage, outputTensor, type HeadView } from '../../src/cpu/layout.js';
import { makeYielder } from '../../src/cpu/cooperate.js';
import { dropoutHeadHash, dropoutRowHash, dropoutThreshold, mix32 } from '../../src/rng.js';
import { Tensor } from '../../src/tensor.js';

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
  /** Block of each query row under a block-diagonal bias (-1: none). */
  rowBlock: Int32Array | undefined;
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
    rowBlock: p.blockDiagonal ? blockOfRows(p) : undefined,
  };
}

function blockOfRows(p: AttentionParams): Int32Array {
  const bd = p.blockDiagonal!;
  const rb = new Int32Array(p.s).fill(-1);
  for (let b = 0; b < bd.qStart.length; b++) for (let i = bd.qStart[b]; i < bd.qStart[b] + bd.qLen[b]; i++) rb[i] = b;
  return rb;
}

/**
 * The structured-bias term of score (i, j) for flat head bh, as a materialized value: -Infinity
 * when a rule hides the key, else the ALiBi bias (0 without ALiBi). Written as the definitions
 * read — block membership, then block-local causal/window predicates and distance — not as the
 * interval arithmetic the efficient kernel uses, so the two are independent.
 */
function structuredTerm(p: AttentionParams, rowBlock: Int32Array | undefined, bh: number, i: number, j: number): number {
  let li = i, lj = j, S = p.s, L = p.l, blk = -1;
  const bd = p.blockDiagonal;
  if (bd && rowBlock) {
    blk = rowBlock[i];
    if (blk < 0 || j < bd.kvStart[blk] || j >= bd.kvStart[blk] + bd.kvLen[blk]) return -Infinity;
    li = i - bd.qStart[blk];
    lj = j - bd.kvStart[blk];
    S = bd.qLen[blk];
    L = bd.kvLen[blk];
  }
  const offset = (a: 'upper-left' | 'lower-right'): number => (a === 'upper-left' ? 0 : L - S);
  if (bd?.causal && lj > li + offset(bd.alignment)) return -Infinity;
  const w = p.window;
  if (w && (lj < li + offset(w.alignment) - w.left || lj > li + offset(w.alignment) + w.right)) return -Infinity;
  const al = p.alibi;
  if (!al) return 0;
  const h = bh % p.hq;
  const row = bd ? blk : Math.floor(bh / p.hq);
  const slope = al.perBatch ? al.slopes[row * p.hq + h] : al.slopes[h];
  return -slope * Math.abs(li + offset(al.alignment) - lj);
}

/** One flat query head: fills its S×L slice of `scores`, then writes its `[S, Ev]` rows of `out`. */
function mathHead(p: AttentionParams, x: Prepared, bh: number, scores: Float64Array, out: Float64Array, lse?: Float64Array): void {
  const { s: S, l: L, e: E, ev: Ev } = p;
  const kvh = kvHeadOf(p, bh);
  const qb = x.qv.bases[bh], kb = x.kv.bases[kvh], vb = x.vv.bases[kvh];
  const sBase = bh * S * L;
  const boolMask = p.mask?.kind === 'bool';
  const off = p.causal?.diagonalOffset;
  const qrs = x.qv.rowStride, qcs = x.qv.colStride, krs = x.kv.rowStride, kcs = x.kv.colStride, vrs = x.vv.rowStride, vcs = x.vv.colStride;
  const { q, k, v } = x;
  const structured = p.window !== undefined || p.alibi !== undefined || p.blockDiagonal !== undefined;
  const cap = p.softcap;
  // 1. scores = scale · q kᵀ, soft-capped, plus ALiBi, then causal, window, blocks and mask.
  for (let i = 0; i < S; i++) {
    const qi = qb + i * qrs;
    const mrow = x.mv ? x.mv.bases[bh] + i * x.mv.rowStride : 0;
    for (let j = 0; j < L; j++) {
      const kj = kb + j * krs;
      let dot = 0;
      for (let d = 0; d < E; d++) dot += q[qi + d * qcs] * k[kj + d * kcs];
      let sc = dot * p.scale;
      if (cap !== undefined) sc = cap * Math.tanh(sc / cap);
      if (structured) sc += structuredTerm(p, x.rowBlock, bh, i, j);
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
    // Math.max propagates NaN: a NaN score makes the whole row NaN, as in PyTorch; only a row
    // whose every score is -inf (fully masked) becomes zeros.
    let max = -Infinity;
    for (let j = 0; j < L; j++) max = Math.max(max, scores[r + j]);
    if (max === -Infinity) {
      scores.fill(0, r, r + L);
      if (lse) lse[bh * S + i] = -Infinity;
      continue;
    }
    let sum = 0;
    for (let j = 0; j < L; j++) {
      const e = Math.exp(scores[r + j] - max);
      scores[r + j] = e;
      sum += e;
    }
    if (lse) lse[bh * S + i] = max + Math.log(sum);
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
      // No skip of zero weights: like PyTorch's math path (a matmul), 0 · NaN in v is NaN.
      const pij = scores[r + j];
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
  return mathReferenceWithLse(p).out;
}

/** {@link mathReference} plus the per-row log-sum-exp (`[batch·Hq·S]`, -Infinity for empty rows). */
export function mathReferenceWithLse(p: AttentionParams): { out: Float64Array; lse: Float64Array } {
  const x = prepare(p);
  const bhCount = p.batch * p.hq;
  const scores = new Float64Array(bhCount * p.s * p.l);
  const out = new Float64Array(bhCount * p.s * p.ev);
  const lse = new Float64Array(bhCount * p.s);
  for (let bh = 0; bh < bhCount; bh++) mathHead(p, x, bh, scores, out, lse);
  return { out, lse };
}

async function runWithLse(p: AttentionParams, ctx: RunContext): Promise<{ out: Tensor; lse: Tensor }> {
  const x = prepare(p);
  const bhCount = p.batch * p.hq;
  const scores = new Float64Array(bhCount * p.s * p.l);
  const out = new Float64Array(bhCount * p.s * p.ev);
  const lse = new Float64Array(bhCount * p.s);
  ctx.recordAllocation(scores.byteLength + out.byteLength + lse.byteLength);
  const yieldNow = makeYielder(ctx.signal);
  for (let bh = 0; bh < bhCount; bh++) {
    mathHead(p, x, bh, scores, out, lse);
    await yieldNow();
  }
  return { out: outputTensor(p, out), lse: new Tensor({ shape: p.q.shape.slice(0, -1), dtype: 'float32', data: Float32Array.from(lse) }) };
}

async function run(p: AttentionParams, ctx: RunContext): Promise<Tensor> {
  return (await runWithLse(p, ctx)).out;
}

/** The MATH backend's CPU part. */
export const mathCpu: BackendPart = {
  device: 'cpu',
  label: 'math (cpu)',
  caps: {
    ...FULL_STRUCTURED_CAPS,
    notes: 'float64 reference; materializes the [batch·Hq, S, L] score matrix (memory budget: SDPA_MATH_MAX_BYTES, default ¼ of RAM)',
  },
  availability: () => ({ available: true }),
  kernels: [
    {
      name: 'float64_reference',
      summary: 'the textbook formula in float64: scores, softmax, then P·V, one head at a time',
      program: { kind: 'typescript', fn: 'mathReferenceWithLse' },
      run,
      runWithLse,
    },
  ],
  constraints: [
    checkMemoryBudget(
      'math (cpu)',
      'the batch·Hq·S·L float64 score matrix',
      mathScoreBytes,
      mathMemoryBudget,
      'use EFFICIENT_ATTENTION or FLASH_ATTENTION (O(S) memory), or raise SDPA_MATH_MAX_BYTES',
    ),
  ],
  // float64 throughout: only the final rounding to the output dtype differs from the reference.
  tolerance: {
    float32: { atol: 1e-6, rtol: 1e-6 },
    float16: { atol: 1e-3, rtol: 1e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => ({ scoreBudget: formatBytes(mathMemoryBudget()) }),
};
