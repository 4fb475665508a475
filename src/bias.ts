/**
 * Structured attention biases: masks described by a rule instead of a buffer, so backends that
 * know the rule never materialise S×L (PyTorch's `torch.nn.attention.bias.CausalBias`).
 */
import { SdpaRangeError, SdpaTypeError, describeValue } from './errors.js';
import { Tensor } from './tensor.js';
import type { Alignment } from './dispatch/types.js';

/** Causal alignment of a {@link CausalBias}. */
export type CausalBiasVariant = 'upper-left' | 'lower-right';

/**
 * A causal mask for queries of length `seqLenQ` over keys of length `seqLenKv`.
 * Upper-left: query i sees keys j <= i. Lower-right: query i sees keys j <= i + seqLenKv - seqLenQ
 * (the last query sees every key: the decode-with-KV-cache alignment).
 */
export class CausalBias {
  /** Discriminator shared by every attention bias. */
  readonly kind = 'causal' as const;
  constructor(
    readonly variant: CausalBiasVariant,
    readonly seqLenQ: number,
    readonly seqLenKv: number,
  ) {}

  /** `j <= i + diagonalOffset` is visible. */
  get diagonalOffset(): number {
    return this.variant === 'upper-left' ? 0 : this.seqLenKv - this.seqLenQ;
  }

  /** The dense bool mask (1 = may attend), `[seqLenQ, seqLenKv]` row-major. For tests and the math path. */
  materialize(): Uint8Array {
    const m = new Uint8Array(this.seqLenQ * this.seqLenKv);
    const off = this.diagonalOffset;
    for (let i = 0; i < this.seqLenQ; i++) {
      for (let j = 0; j < this.seqLenKv && j <= i + off; j++) m[i * this.seqLenKv + j] = 1;
    }
    return m;
  }

  toString(): string {
    return `causal ${this.variant} (${this.seqLenQ}×${this.seqLenKv})`;
  }
}

/** Varlen blocks of a {@link StructuredBias}: block b pairs query rows and key columns. */
export interface BiasBlocks {
  readonly qStart: Int32Array;
  readonly qLen: Int32Array;
  readonly kvStart: Int32Array;
  readonly kvLen: Int32Array;
}

/** What a {@link StructuredBias} is made of; every part optional. */
export interface StructuredBiasInit {
  /** Where causal, window and ALiBi diagonals sit (per block when `blocks` is given); default lower-right. */
  readonly alignment?: Alignment;
  /** Key j visible only when j <= i + offset. */
  readonly causal?: boolean;
  /** Sliding window `[left, right]` around the diagonal; Infinity (or -1) = unbounded. */
  readonly window?: readonly [number, number];
  /** ALiBi slopes: one per query head, or per (batch or block, head). */
  readonly alibiSlopes?: Float32Array;
  /** Logit soft-cap (> 0). */
  readonly softcap?: number;
  /** Block-diagonal (varlen) structure. */
  readonly blocks?: BiasBlocks;
  /** A dense mask applied on top (bool or additive float, broadcastable to the scores). */
  readonly mask?: Tensor;
}

const FN = 'StructuredBias';

const INIT_KEYS = ['alignment', 'causal', 'window', 'alibiSlopes', 'softcap', 'blocks', 'mask'] as const;

/** The init object's own properties (a typo is an error; nothing is read through Object.prototype). */
function ownInit(init: unknown): StructuredBiasInit {
  if (init === null || typeof init !== 'object' || Array.isArray(init)) throw new SdpaTypeError(FN, { argument: 'init', expected: 'an options object or undefined', received: describeValue(init) });
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(init)) {
    if (!(INIT_KEYS as readonly string[]).includes(key)) throw new SdpaTypeError(FN, { argument: `init.${key}`, expected: `one of ${INIT_KEYS.join(', ')}`, received: `an unknown option ${JSON.stringify(key)}` });
    out[key] = (init as Record<string, unknown>)[key];
  }
  return out as StructuredBiasInit;
}

function checkIntArray(name: string, x: unknown): Int32Array {
  if (!(x instanceof Int32Array)) throw new SdpaTypeError(FN, { argument: name, expected: 'an Int32Array', received: describeValue(x) });
  return x;
}

/**
 * A structured attention bias: causal variants, sliding windows, ALiBi, soft-capping and
 * block-diagonal (varlen) structure, described by rules so backends that know the rules never
 * build an S×L buffer. Pass it as `attnMask`; `buildParams` turns it into {@link AttentionParams}
 * facts that constraints check per backend (caps flags) and MATH materializes.
 *
 * @example sdpa(q, k, v, { attnMask: new StructuredBias(S, L, { causal: true, window: [128, 0] }) })
 */
export class StructuredBias {
  /** Discriminator shared by every attention bias. */
  readonly kind = 'structured' as const;
  readonly alignment: Alignment;
  readonly causal: boolean;
  /** `[left, right]` with Infinity for unbounded sides, or undefined. */
  readonly window: readonly [number, number] | undefined;
  readonly alibiSlopes: Float32Array | undefined;
  readonly softcap: number | undefined;
  readonly blocks: BiasBlocks | undefined;
  readonly mask: Tensor | undefined;

  constructor(
    readonly seqLenQ: number,
    readonly seqLenKv: number,
    rawInit: StructuredBiasInit = {},
  ) {
    checkLen(FN, 'seqLenQ', seqLenQ);
    checkLen(FN, 'seqLenKv', seqLenKv);
    const init = ownInit(rawInit);
    if (init.alignment !== undefined && init.alignment !== 'upper-left' && init.alignment !== 'lower-right') {
      throw new SdpaTypeError(FN, { argument: 'init.alignment', expected: "'upper-left' or 'lower-right'", received: describeValue(init.alignment) });
    }
    this.alignment = init.alignment ?? 'lower-right';
    if (init.causal !== undefined && typeof init.causal !== 'boolean') throw new SdpaTypeError(FN, { argument: 'init.causal', expected: 'a boolean', received: describeValue(init.causal) });
    this.causal = init.causal ?? false;
    if (init.window !== undefined) {
      const w = init.window;
      if (!Array.isArray(w) || w.length !== 2) throw new SdpaTypeError(FN, { argument: 'init.window', expected: 'a pair [left, right]', received: describeValue(w) });
      const side = (x: unknown, n: string): number => {
        if (x === Infinity || x === -1) return Infinity; // -1 is flash-attn's spelling of "unbounded"
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
          throw new SdpaRangeError(FN, { argument: `init.window[${n}]`, expected: 'a non-negative integer, -1 or Infinity (unbounded)', received: describeValue(x) });
        }
        return x;
      };
      this.window = Object.freeze([side(w[0], '0'), side(w[1], '1')] as const);
    }
    if (init.alibiSlopes !== undefined) {
      if (!(init.alibiSlopes instanceof Float32Array) || init.alibiSlopes.length === 0) {
        throw new SdpaTypeError(FN, { argument: 'init.alibiSlopes', expected: 'a non-empty Float32Array (one slope per head, or per batch·head)', received: describeValue(init.alibiSlopes) });
      }
      const bad = init.alibiSlopes.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new SdpaRangeError(FN, { argument: `init.alibiSlopes[${bad}]`, expected: 'a finite number', received: `${init.alibiSlopes[bad]}` });
    }
    this.alibiSlopes = init.alibiSlopes;
    if (init.softcap !== undefined && init.softcap !== 0) {
      if (typeof init.softcap !== 'number' || !Number.isFinite(init.softcap) || init.softcap < 0) {
        throw new SdpaRangeError(FN, { argument: 'init.softcap', expected: 'a finite number > 0 (0 = off)', received: describeValue(init.softcap) });
      }
      this.softcap = init.softcap;
    }
    if (init.blocks !== undefined) this.blocks = checkBlocks(init.blocks, seqLenQ, seqLenKv);
    if (init.mask !== undefined && !(init.mask instanceof Tensor)) {
      throw new SdpaTypeError(FN, { argument: 'init.mask', expected: 'a Tensor (bool or float)', received: describeValue(init.mask) });
    }
    this.mask = init.mask;
  }

  /**
   * Visibility as a dense bool matrix `[seqLenQ, seqLenKv]` (1 = may attend): causal, window and
   * blocks only (ALiBi, softcap and `mask` are not visibility). For tests and debugging.
   */
  materialize(): Uint8Array {
    const S = this.seqLenQ, L = this.seqLenKv;
    const m = new Uint8Array(S * L);
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < L; j++) m[i * L + j] = structuredVisible(this, i, j) ? 1 : 0;
    }
    return m;
  }

  toString(): string {
    const parts: string[] = [this.alignment];
    if (this.causal) parts.push('causal');
    if (this.window) parts.push(`window [${this.window.join(', ')}]`);
    if (this.alibiSlopes) parts.push(`alibi ×${this.alibiSlopes.length}`);
    if (this.softcap) parts.push(`softcap ${this.softcap}`);
    if (this.blocks) parts.push(`${this.blocks.qLen.length} blocks`);
    if (this.mask) parts.push(`mask ${this.mask.dtype} [${this.mask.shape.join(', ')}]`);
    return `structured ${parts.join(', ')} (${this.seqLenQ}×${this.seqLenKv})`;
  }
}

function checkBlocks(b: BiasBlocks, S: number, L: number): BiasBlocks {
  if (b === null || typeof b !== 'object') throw new SdpaTypeError(FN, { argument: 'init.blocks', expected: 'an object { qStart, qLen, kvStart, kvLen } of Int32Arrays', received: describeValue(b) });
  const qStart = checkIntArray('init.blocks.qStart', b.qStart);
  const qLen = checkIntArray('init.blocks.qLen', b.qLen);
  const kvStart = checkIntArray('init.blocks.kvStart', b.kvStart);
  const kvLen = checkIntArray('init.blocks.kvLen', b.kvLen);
  const n = qStart.length;
  for (const [name, a] of [['qLen', qLen], ['kvStart', kvStart], ['kvLen', kvLen]] as const) {
    if (a.length !== n) throw new SdpaTypeError(FN, { argument: `init.blocks.${name}`, expected: `length ${n} (like qStart)`, received: `length ${a.length}` });
  }
  let prevEnd = 0;
  for (let i = 0; i < n; i++) {
    // Sorted, disjoint query ranges: each query row belongs to at most one block.
    if (qStart[i] < prevEnd || qLen[i] < 0 || qStart[i] + qLen[i] > S) {
      throw new SdpaRangeError(FN, { argument: `init.blocks.qStart[${i}]`, expected: `sorted, disjoint query ranges inside [0, ${S})`, received: `[${qStart[i]}, ${qStart[i] + qLen[i]})` });
    }
    if (kvStart[i] < 0 || kvLen[i] < 0 || kvStart[i] + kvLen[i] > L) {
      throw new SdpaRangeError(FN, { argument: `init.blocks.kvStart[${i}]`, expected: `a key range inside [0, ${L})`, received: `[${kvStart[i]}, ${kvStart[i] + kvLen[i]})` });
    }
    prevEnd = qStart[i] + qLen[i];
  }
  return Object.freeze({ qStart, qLen, kvStart, kvLen });
}

/**
 * The visibility rule of a structured bias for query i and key j, written as direct predicates
 * (block membership, causal, window): the readable definition the kernels' interval form must match.
 */
export function structuredVisible(b: Pick<StructuredBias, 'seqLenQ' | 'seqLenKv' | 'alignment' | 'causal' | 'window' | 'blocks'>, i: number, j: number): boolean {
  let li = i, lj = j, S = b.seqLenQ, L = b.seqLenKv;
  if (b.blocks) {
    const { qStart, qLen, kvStart, kvLen } = b.blocks;
    let blk = -1;
    for (let x = 0; x < qStart.length; x++) if (i >= qStart[x] && i < qStart[x] + qLen[x]) blk = x;
    if (blk < 0 || j < kvStart[blk] || j >= kvStart[blk] + kvLen[blk]) return false;
    li = i - qStart[blk];
    lj = j - kvStart[blk];
    S = qLen[blk];
    L = kvLen[blk];
  }
  const off = b.alignment === 'upper-left' ? 0 : L - S;
  if (b.causal && lj > li + off) return false;
  if (b.window && (lj < li + off - b.window[0] || lj > li + off + b.window[1])) return false;
  return true;
}

/** Any structured bias accepted as `attnMask`. */
export type AttentionBias = CausalBias | StructuredBias;

function checkLen(fn: string, name: string, x: unknown): number {
  if (typeof x !== 'number' || !Number.isInteger(x)) throw new SdpaTypeError(fn, { argument: name, expected: 'a positive integer', received: describeValue(x) });
  if (x < 1) throw new SdpaRangeError(fn, { argument: name, expected: 'a positive integer', received: `${x}` });
  return x;
}

/**
 * Upper-left causal bias (same as `isCausal: true`): query i sees keys j <= i.
 * @example sdpa(q, k, v, { attnMask: causalUpperLeft(S, L) })
 */
export function causalUpperLeft(seqLenQ: number, seqLenKv: number): CausalBias {
  return new CausalBias('upper-left', checkLen('causalUpperLeft', 'seqLenQ', seqLenQ), checkLen('causalUpperLeft', 'seqLenKv', seqLenKv));
}

/**
 * Lower-right causal bias: query i sees keys j <= i + L - S, the alignment for decoding with a
 * KV cache (PyTorch's `causal_lower_right`).
 * @example sdpa(q, k, v, { attnMask: causalLowerRight(1, 40) }) // one new token over 40 cached keys
 */
export function causalLowerRight(seqLenQ: number, seqLenKv: number): CausalBias {
  return new CausalBias('lower-right', checkLen('causalLowerRight', 'seqLenQ', seqLenQ), checkLen('causalLowerRight', 'seqLenKv', seqLenKv));
}

/** True for the structured bias objects of this module. */
export function isAttentionBias(x: unknown): x is AttentionBias {
  return x instanceof CausalBias || x instanceof StructuredBias;
}
