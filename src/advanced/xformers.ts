/**
 * An xFormers-style API: `memoryEfficientAttention(q, k, v, { attnBias, p, scale })` in the
 * `[B, M, H, K]` layout, with xFormers' bias classes. Each bias class is a rule, resolved to a
 * {@link StructuredBias} for the call's M×N, so EFFICIENT applies it without an M×N buffer.
 * Alignments follow xFormers: `LowerTriangularMask` is top-left (query i sees keys j <= i);
 * the `FromBottomRight` variants shift the diagonal by N - M; `LocalAttentionFromBottomRightMask`
 * lets query i see keys j with `i - left <= j + M - N <= i + right`.
 */
import { StructuredBias, type BiasBlocks } from '../bias.js';
import { SdpaRangeError, SdpaTypeError, describeValue } from '../errors.js';
import { ownOptions, type SdpaOptions } from '../params.js';
import { Tensor } from '../tensor.js';
import type { DispatchReport } from '../dispatch/select.js';
import { bhsdToBshd, bshdToBhsd, expectTensor } from './layout.js';
import { explainAdvanced, runAttention } from './run.js';

/** Any xFormers-style bias class of this module. */
export type XformersBias = LowerTriangularMask | LowerTriangularFromBottomRightMask | BlockDiagonalMask | LocalAttentionFromBottomRightMask;

/** Causal, top-left aligned (xFormers `LowerTriangularMask`). */
export class LowerTriangularMask {
  /** The structured bias for M queries over N keys. */
  resolve(m: number, n: number): StructuredBias {
    return new StructuredBias(m, n, { alignment: 'upper-left', causal: true });
  }
}

/** Causal, bottom-right aligned: the last query sees every key (xFormers `LowerTriangularFromBottomRightMask`). */
export class LowerTriangularFromBottomRightMask {
  /** The structured bias for M queries over N keys. */
  resolve(m: number, n: number): StructuredBias {
    return new StructuredBias(m, n, { alignment: 'lower-right', causal: true });
  }
}

/** Local (sliding-window) attention, bottom-right aligned (xFormers `LocalAttentionFromBottomRightMask`). */
export class LocalAttentionFromBottomRightMask {
  constructor(
    readonly windowLeft: number,
    readonly windowRight: number,
  ) {
    for (const [name, x] of [['windowLeft', windowLeft], ['windowRight', windowRight]] as const) {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new SdpaRangeError('LocalAttentionFromBottomRightMask', { argument: name, expected: 'a non-negative integer', received: describeValue(x) });
    }
  }
  /** The structured bias for M queries over N keys. */
  resolve(m: number, n: number): StructuredBias {
    return new StructuredBias(m, n, { alignment: 'lower-right', window: [this.windowLeft, this.windowRight] });
  }
}

function checkSeqlens(name: string, x: unknown): number[] {
  if (!Array.isArray(x) || x.length === 0) throw new SdpaTypeError('BlockDiagonalMask.fromSeqlens', { argument: name, expected: 'a non-empty array of sequence lengths', received: describeValue(x) });
  x.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) throw new SdpaRangeError('BlockDiagonalMask.fromSeqlens', { argument: `${name}[${i}]`, expected: 'a non-negative integer', received: describeValue(d) });
  });
  return x as number[];
}

/**
 * Sequences packed along the token dim of batch 1: query sequence b attends only to key sequence b
 * (xFormers `BlockDiagonalMask`). `makeCausal()` / `makeCausalFromBottomRight()` add causality
 * inside each block, top-left or bottom-right aligned.
 */
export class BlockDiagonalMask {
  protected constructor(
    readonly qSeqlens: readonly number[],
    readonly kvSeqlens: readonly number[],
    /** Causal inside blocks, and its alignment; undefined = not causal. */
    readonly causal: 'upper-left' | 'lower-right' | undefined,
  ) {}

  /** Blocks from per-sequence lengths (kv lengths default to the query lengths). */
  static fromSeqlens(qSeqlens: readonly number[], kvSeqlens?: readonly number[]): BlockDiagonalMask {
    const q = checkSeqlens('qSeqlens', qSeqlens);
    const kv = kvSeqlens === undefined ? q : checkSeqlens('kvSeqlens', kvSeqlens);
    if (kv.length !== q.length) throw new SdpaTypeError('BlockDiagonalMask.fromSeqlens', { argument: 'kvSeqlens', expected: `${q.length} lengths (like qSeqlens)`, received: `${kv.length}` });
    return new this([...q], [...kv], undefined);
  }

  /** The same blocks, causal inside each, top-left aligned (xFormers `BlockDiagonalCausalMask`). */
  makeCausal(): BlockDiagonalCausalMask {
    return new BlockDiagonalCausalMask(this.qSeqlens, this.kvSeqlens, 'upper-left');
  }

  /** The same blocks, causal inside each, bottom-right aligned (`BlockDiagonalCausalFromBottomRightMask`). */
  makeCausalFromBottomRight(): BlockDiagonalMask {
    return new BlockDiagonalMask(this.qSeqlens, this.kvSeqlens, 'lower-right');
  }

  /** The structured bias for M queries over N keys (M, N = the sums of the lengths). */
  resolve(m: number, n: number): StructuredBias {
    const starts = (lens: readonly number[]): Int32Array => {
      const s = new Int32Array(lens.length);
      for (let i = 1; i < lens.length; i++) s[i] = s[i - 1] + lens[i - 1];
      return s;
    };
    const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
    if (sum(this.qSeqlens) !== m || sum(this.kvSeqlens) !== n) {
      throw new SdpaTypeError('memoryEfficientAttention', { argument: 'opts.attnBias', expected: `block lengths summing to M=${m} queries and N=${n} keys`, received: `${sum(this.qSeqlens)} and ${sum(this.kvSeqlens)}` });
    }
    const blocks: BiasBlocks = { qStart: starts(this.qSeqlens), qLen: Int32Array.from(this.qSeqlens), kvStart: starts(this.kvSeqlens), kvLen: Int32Array.from(this.kvSeqlens) };
    return new StructuredBias(m, n, { alignment: this.causal ?? 'upper-left', causal: this.causal !== undefined, blocks });
  }
}

/** Block-diagonal and causal inside each block, top-left aligned (xFormers `BlockDiagonalCausalMask`). */
export class BlockDiagonalCausalMask extends BlockDiagonalMask {
  /** @internal use {@link BlockDiagonalCausalMask.fromSeqlens} or {@link BlockDiagonalMask.makeCausal}. */
  constructor(q: readonly number[], kv: readonly number[], alignment: 'upper-left' | 'lower-right') {
    super(q, kv, alignment);
  }
  /** Causal blocks from per-sequence lengths. */
  static override fromSeqlens(qSeqlens: readonly number[], kvSeqlens?: readonly number[]): BlockDiagonalCausalMask {
    return BlockDiagonalMask.fromSeqlens(qSeqlens, kvSeqlens).makeCausal();
  }
}

/** Options of {@link memoryEfficientAttention} (xFormers' keyword arguments). */
export interface MemoryEfficientOptions {
  /** A bias class of this module, or an additive float / bool Tensor broadcastable to `[B, H, M, N]`. */
  attnBias?: XformersBias | Tensor;
  /** Dropout probability. */
  p?: number;
  /** Multiplier of q·k; default 1/sqrt(K). */
  scale?: number;
  /** Dropout seed. */
  seed?: number;
  /** Cancels the call (see `sdpa`'s `signal`). */
  signal?: AbortSignal;
}

function meOptions(fn: string, q: Tensor, k: Tensor, opts: unknown): SdpaOptions {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object') throw new SdpaTypeError(fn, { argument: 'opts', expected: 'an options object or undefined', received: describeValue(opts) });
  const o = ownOptions(opts) as MemoryEfficientOptions;
  for (const key of Object.keys(o)) {
    if (!['attnBias', 'p', 'scale', 'seed', 'signal'].includes(key)) throw new SdpaTypeError(fn, { argument: `opts.${key}`, expected: 'one of the options attnBias, p, scale, seed, signal', received: `an unknown option ${JSON.stringify(key)}` });
  }
  const out: SdpaOptions = {};
  if (o.signal !== undefined) out.signal = o.signal;
  if (o.p !== undefined) out.dropoutP = o.p;
  if (o.scale !== undefined) out.scale = o.scale;
  if (o.seed !== undefined) out.seed = o.seed;
  if (q.shape[2] !== k.shape[2]) out.enableGqa = true;
  const b = o.attnBias;
  if (b instanceof Tensor) out.attnMask = b;
  else if (b !== undefined) {
    if (!(b instanceof LowerTriangularMask || b instanceof LowerTriangularFromBottomRightMask || b instanceof BlockDiagonalMask || b instanceof LocalAttentionFromBottomRightMask)) {
      throw new SdpaTypeError(fn, { argument: 'opts.attnBias', expected: 'a Tensor or one of LowerTriangularMask, LowerTriangularFromBottomRightMask, BlockDiagonalMask, BlockDiagonalCausalMask, LocalAttentionFromBottomRightMask', received: describeValue(b) });
    }
    if (b instanceof BlockDiagonalMask && q.shape[0] !== 1) throw new SdpaTypeError(fn, { argument: 'q.shape[0]', expected: '1 (block-diagonal biases pack sequences along the tokens of one batch row)', received: `${q.shape[0]}` });
    out.attnMask = b.resolve(q.shape[1], k.shape[1]);
  }
  return out;
}

const FORM = '[batch, seqlen, heads, headdim] (xFormers BMHK)';

/**
 * xFormers' `memory_efficient_attention`: q `[B, M, H, K]`, k `[B, N, H, K]`, v `[B, N, H, Kv]` →
 * `[B, M, H, Kv]`, read in place through strided views.
 * @example const out = await memoryEfficientAttention(q, k, v, { attnBias: BlockDiagonalMask.fromSeqlens([3, 5]) });
 */
export async function memoryEfficientAttention(q: Tensor, k: Tensor, v: Tensor, opts?: MemoryEfficientOptions): Promise<Tensor> {
  const fn = 'memoryEfficientAttention';
  const qt = expectTensor(fn, 'q', q, 4, FORM), kt = expectTensor(fn, 'k', k, 4, FORM), vt = expectTensor(fn, 'v', v, 4, FORM);
  const out = await runAttention(bshdToBhsd(qt), bshdToBhsd(kt), bshdToBhsd(vt), meOptions(fn, qt, kt, opts));
  return bhsdToBshd(out);
}

/** What {@link memoryEfficientAttention} would dispatch to (runs nothing). */
export function explainMemoryEfficient(q: Tensor, k: Tensor, v: Tensor, opts?: MemoryEfficientOptions): DispatchReport {
  const fn = 'explainMemoryEfficient';
  const qt = expectTensor(fn, 'q', q, 4, FORM), kt = expectTensor(fn, 'k', k, 4, FORM), vt = expectTensor(fn, 'v', v, 4, FORM);
  return explainAdvanced(fn, bshdToBhsd(qt), bshdToBhsd(kt), bshdToBhsd(vt), meOptions(fn, qt, kt, opts), false);
}
