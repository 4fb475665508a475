/**
 * MATH on the CPU: the reference. It follows the textbook formula step by step in float64 —
 * scores = scale·q·kᵀ (+ mask), softmax, dropout, ·v — and materializes the whole
 * `[batch·Hq, S, L]` score matrix like PyTorch's math path, which is why it has a memory budget.
 */
import { FULL_STRUCTURED_CAPS } from '../../src/dispatch/caps.js';
import { checkMemoryBudget, formatBytes, named } from '../../src/dispatch/constraints.js';
import type { AttentionParams, AttentionWithWeights, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { headView, kvHeadOf, maskView, numericStorage, outputTensor, type HeadView } from '../../src/cpu/layout.js';
import { makeYielder } from '../../src/cpu/cooperate.js';
import { dropoutHeadHash, dropoutRowHash, dropoutThreshold, mix32 } from '../../src/rng.js';
import { Tensor } from '../../src/tensor.js';
import { float32ArrayToHalfBits } from '../../src/dtype.js';

/** Bytes of the score matrix MATH would materialize for `p` (float64). */
export function mathScoreBytes(p: AttentionParams): number {
  return p.batch * p.hq * p.s * p.l * 8;
}

/**
 * The float32 copies `prepare` makes of half-precision inputs (numericStorage widens each whole
 * storage array): a 256 MiB float16 k/v pair is 1 GiB of copies, which the budget must see.
 */
export function mathCopyBytes(p: AttentionParams): number {
  const ts = [p.q, p.k, p.v, p.mask?.tensor];
  return ts.reduce((n, t) => n + (t?.data && (t.dtype === 'float16' || t.dtype === 'bfloat16') ? t.data.length * 4 : 0), 0);
}

/** The float64 output and log-sum-exp a call allocates beside the scores. */
function mathOutputBytes(p: AttentionParams): number {
  return p.batch * p.hq * p.s * (p.ev + 1) * 8;
}

/**
 * What a MATH (cpu) call holds at once: the float64 score matrix, its float64 output, the float32
 * copies of half inputs, plus the returned weights when asked. This is what the budget and
 * `lastDispatch().allocatedBytes` count.
 */
export function mathCallBytes(p: AttentionParams): number {
  return mathScoreBytes(p) + mathOutputBytes(p) + mathCopyBytes(p) + (p.needWeights ? mathWeightsBytes(p) : 0);
}

/**
 * A process-wide reservation against the budget: each running MATH call holds its bytes; a call
 * that would push the total past the budget waits (first come, first served) until enough is
 * released. Six concurrent calls under an 80 MiB budget each once used 411 MiB together; now the
 * total stays within the budget (a call alone always runs: its own size was checked at dispatch).
 */
const reservation = { reserved: 0, peak: 0, waiters: [] as { bytes: number; go: () => void }[] };

function pump(): void {
  const budget = mathMemoryBudget();
  while (reservation.waiters.length) {
    const w = reservation.waiters[0];
    if (reservation.reserved > 0 && reservation.reserved + w.bytes > budget) break;
    reservation.waiters.shift();
    // Taken here, not after the waiter resumes: the loop must see it before letting the next one in.
    take(w.bytes);
    w.go();
  }
}

function take(bytes: number): void {
  reservation.reserved += bytes;
  reservation.peak = Math.max(reservation.peak, reservation.reserved);
}

async function reserve(bytes: number, signal: AbortSignal | undefined): Promise<() => void> {
  if (!reservation.waiters.length && (reservation.reserved === 0 || reservation.reserved + bytes <= mathMemoryBudget())) take(bytes);
  else {
    await new Promise<void>((resolve, reject) => {
      const w = { bytes, go: () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      } };
      const onAbort = (): void => {
        const i = reservation.waiters.indexOf(w);
        if (i >= 0) reservation.waiters.splice(i, 1);
        reject(signal!.reason);
        pump();
      };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      reservation.waiters.push(w);
    });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    reservation.reserved -= bytes;
    pump();
  };
}

/** @internal The MATH (cpu) reservation: bytes held now, the most held at once since the last reset, calls waiting. */
export function mathReservation(resetPeak = false): { reserved: number; peak: number; waiting: number } {
  const r = { reserved: reservation.reserved, peak: reservation.peak, waiting: reservation.waiters.length };
  if (resetPeak) reservation.peak = reservation.reserved;
  return r;
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

/**
 * Query row `i` of flat head `bh`: its L scores go into `row` from `r` and become the row's weights
 * (softmax, then dropout: what `returnWeights` returns), its Ev outputs are added into `out` from
 * `o`. Returns the row's log-sum-exp (-Infinity when it sees no key). Rows are independent, so a
 * head, a whole call and `verify`'s sampled rows all run this same arithmetic.
 */
function mathRow(p: AttentionParams, x: Prepared, bh: number, i: number, row: Float64Array, r: number, out: Float64Array, o: number): number {
  const { l: L, e: E, ev: Ev } = p;
  const kvh = kvHeadOf(p, bh);
  const qb = x.qv.bases[bh], kb = x.kv.bases[kvh], vb = x.vv.bases[kvh];
  const boolMask = p.mask?.kind === 'bool';
  const off = p.causal?.diagonalOffset;
  const qcs = x.qv.colStride, krs = x.kv.rowStride, kcs = x.kv.colStride, vrs = x.vv.rowStride, vcs = x.vv.colStride;
  const { q, k, v } = x;
  const structured = p.window !== undefined || p.alibi !== undefined || p.blockDiagonal !== undefined;
  const cap = p.softcap;
  // 1. scores = scale · q kᵀ, soft-capped, plus ALiBi, then causal, window, blocks and mask.
  const qi = qb + i * x.qv.rowStride;
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
    row[r + j] = sc;
  }
  // 2. softmax; a row with no visible key stays all zeros (PyTorch's safe softmax).
  // Math.max propagates NaN: a NaN score makes the whole row NaN, as in PyTorch; only a row
  // whose every score is -inf (fully masked) becomes zeros.
  let max = -Infinity;
  for (let j = 0; j < L; j++) max = Math.max(max, row[r + j]);
  if (max === -Infinity) {
    row.fill(0, r, r + L);
    return -Infinity;
  }
  let sum = 0;
  for (let j = 0; j < L; j++) {
    const e = Math.exp(row[r + j] - max);
    row[r + j] = e;
    sum += e;
  }
  for (let j = 0; j < L; j++) row[r + j] /= sum;
  // 3. dropout on the probabilities (kept ones scaled by 1/(1-p)).
  if (p.dropoutP > 0) {
    const rh = dropoutRowHash(dropoutHeadHash(p.seed, bh), i);
    const thr = dropoutThreshold(p.dropoutP);
    const keepScale = 1 / (1 - p.dropoutP);
    for (let j = 0; j < L; j++) row[r + j] = mix32(rh ^ j) >>> 8 < thr ? 0 : row[r + j] * keepScale;
  }
  // 4. out = P · v. No skip of zero weights: like PyTorch's math path (a matmul), 0 · NaN in v is NaN.
  for (let j = 0; j < L; j++) {
    const pij = row[r + j];
    const vj = vb + j * vrs;
    for (let d = 0; d < Ev; d++) out[o + d] += pij * v[vj + d * vcs];
  }
  return max + Math.log(sum);
}

/** One flat query head: its S×L slice of `scores` (the weights afterwards) and its `[S, Ev]` rows of `out`. */
function mathHead(p: AttentionParams, x: Prepared, bh: number, scores: Float64Array, out: Float64Array, lse?: Float64Array, iFrom = 0, iTo = p.s): void {
  const { s: S, l: L, ev: Ev } = p;
  for (let i = iFrom; i < iTo; i++) {
    const m = mathRow(p, x, bh, i, scores, (bh * S + i) * L, out, (bh * S + i) * Ev);
    if (lse) lse[bh * S + i] = m;
  }
}

/**
 * The float64 reference of some query rows only: `rows` index the flat `[batch·Hq·S]` rows; the
 * result holds their Ev outputs one after another. O(rows·L·(E+Ev)) work and O(L) scratch (plus
 * the widening of half inputs): `verify` runs it beside any backend.
 */
export function mathReferenceRows(p: AttentionParams, rows: readonly number[]): Float64Array {
  const x = prepare(p);
  const row = new Float64Array(p.l);
  const out = new Float64Array(rows.length * p.ev);
  rows.forEach((flat, n) => {
    mathRow(p, x, Math.floor(flat / p.s), flat % p.s, row, 0, out, n * p.ev);
  });
  return out;
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

/**
 * The reference computed row by row under the process-wide memory reservation, yielding to the event
 * loop between query rows (a row is L·(E+Ev) multiply-adds, ~1 ms at L = 2048: a whole head held the
 * event loop for seconds at S = 2048). `withLse` also fills the per-row log-sum-exp.
 */
async function computeRows<T>(
  p: AttentionParams,
  ctx: RunContext,
  withLse: boolean,
  finish: (scores: Float64Array, out: Float64Array, lse: Float64Array | undefined) => T,
): Promise<T> {
  const release = await reserve(mathCallBytes(p), ctx.signal);
  try {
    const x = prepare(p);
    const bhCount = p.batch * p.hq;
    const scores = new Float64Array(bhCount * p.s * p.l);
    const out = new Float64Array(bhCount * p.s * p.ev);
    const lse = withLse ? new Float64Array(bhCount * p.s) : undefined;
    ctx.recordAllocation(mathCallBytes(p));
    const yieldNow = makeYielder(ctx.signal);
    // A turn of the event loop before the first row: the dispatch, the input widening and the
    // allocations above (3–15 ms) would otherwise run in one stretch with the first slice of rows.
    await yieldNow(true);
    for (let bh = 0; bh < bhCount; bh++) {
      for (let i = 0; i < p.s; i++) {
        mathHead(p, x, bh, scores, out, lse, i, i + 1);
        await yieldNow();
      }
    }
    return finish(scores, out, lse);
  } finally {
    release();
  }
}

function runWithLse(p: AttentionParams, ctx: RunContext): Promise<{ out: Tensor; lse: Tensor }> {
  return computeRows(p, ctx, true, (_scores, out, lse) => ({
    out: outputTensor(p, out),
    lse: new Tensor({ shape: p.q.shape.slice(0, -1), dtype: 'float32', data: Float32Array.from(lse!) }),
  }));
}

async function run(p: AttentionParams, ctx: RunContext): Promise<Tensor> {
  return (await runWithLse(p, ctx)).out;
}

/** Attention and its weights `[..., Hq, S, L]` in q's dtype: the score matrix MATH holds anyway, after softmax and dropout. */
function runWithWeights(p: AttentionParams, ctx: RunContext): Promise<AttentionWithWeights> {
  return computeRows(p, ctx, false, (scores, out) => {
    const shape = [...p.q.shape.slice(0, -1), p.l];
    const weights = p.dtype === 'float32' ? new Tensor({ shape, dtype: 'float32', data: Float32Array.from(scores) }) : new Tensor({ shape, dtype: p.dtype, data: float32ArrayToHalfBits(scores, p.dtype) });
    return { out: outputTensor(p, out), weights };
  });
}

/** Bytes of the weights tensor a `returnWeights` call returns (q's dtype). */
function mathWeightsBytes(p: AttentionParams): number {
  return p.batch * p.hq * p.s * p.l * (p.dtype === 'float32' ? 4 : 2);
}

/** The MATH backend's CPU part. */
export const mathCpu: BackendPart = {
  device: 'cpu',
  label: 'math (cpu)',
  caps: {
    ...FULL_STRUCTURED_CAPS,
    weights: true,
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
      runWithWeights,
    },
  ],
  constraints: [
    // The scores, and the float32 copies of half inputs when there are any (said only then).
    named('checkMemoryBudget', (p: AttentionParams) => {
      const copies = mathCopyBytes(p);
      const need = mathScoreBytes(p) + copies;
      const have = mathMemoryBudget();
      if (need <= have) return undefined;
      const what = copies ? `the batch·Hq·S·L float64 score matrix plus float32 copies of the half-precision inputs (${formatBytes(copies)})` : 'the batch·Hq·S·L float64 score matrix';
      return `math (cpu) materializes ${what}: ${formatBytes(need)} > budget ${formatBytes(have)}; use EFFICIENT_ATTENTION or FLASH_ATTENTION (O(S) memory), or raise SDPA_MATH_MAX_BYTES`;
    }),
    // returnWeights adds the weights tensor; said apart, and only when the rest alone would fit.
    checkMemoryBudget(
      'math (cpu)',
      'the float64 score matrix plus the returned batch·Hq·S·L weights (returnWeights)',
      (p) => (p.needWeights && mathScoreBytes(p) + mathCopyBytes(p) <= mathMemoryBudget() ? mathScoreBytes(p) + mathCopyBytes(p) + mathWeightsBytes(p) : 0),
      mathMemoryBudget,
      'ask for fewer queries or keys per call, or raise SDPA_MATH_MAX_BYTES',
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
