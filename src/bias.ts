/**
 * Structured attention biases: masks described by a rule instead of a buffer, so backends that
 * know the rule never materialise S×L (PyTorch's `torch.nn.attention.bias.CausalBias`).
 */
import { SdpaRangeError, SdpaTypeError, describeValue } from './errors.js';

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

/** Any structured bias accepted as `attnMask`. */
export type AttentionBias = CausalBias;

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
  return x instanceof CausalBias;
}
