/**
 * Attention modules on Float32Array weights: {@link MultiHeadAttention} (projections, GQA, rotary
 * embeddings, KV cache) and {@link FlashAttention} (the attend step with a `flash` switch that pins
 * dispatch to FLASH_ATTENTION and explains when it cannot). Both call `sdpa()`, so dispatch,
 * structured biases and reasons are the library's.
 */
import { StructuredBias, causalLowerRight, isAttentionBias, type AttentionBias } from '../bias.js';
import { withBackends } from '../dispatch/scope.js';
import { SDPBackend } from '../dispatch/types.js';
import { SdpaRangeError, SdpaTypeError, describeValue } from '../errors.js';
import { ownOptions, type SdpaOptions } from '../params.js';
import { sdpa } from '../sdpa.js';
import { Tensor, tensor } from '../tensor.js';
import { bhsdToBshd, bshdToBhsd } from './layout.js';

/**
 * The options object of a module call, strictly: undefined → {}, anything but a plain object → an
 * error, an unknown key (a typo such as `casual`) → an error naming it; own properties only, in an
 * object without a prototype (a property added to `Object.prototype` is never read as an option).
 */
function strictOptions<T extends object>(fn: string, argument: string, opts: unknown, keys: readonly (keyof T & string)[]): Partial<T> {
  if (opts === undefined) return ownOptions({});
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new SdpaTypeError(fn, { argument, expected: 'an options object or undefined', received: describeValue(opts) });
  for (const key of Object.keys(opts)) {
    if (!(keys as readonly string[]).includes(key)) throw new SdpaTypeError(fn, { argument: `${argument}.${key}`, expected: `one of the options ${keys.join(', ')}`, received: `an unknown option ${JSON.stringify(key)}` });
  }
  return ownOptions(opts as Partial<T>);
}

const optBool = (fn: string, name: string, x: unknown): boolean | undefined => {
  if (x !== undefined && typeof x !== 'boolean') throw new SdpaTypeError(fn, { argument: name, expected: 'a boolean', received: describeValue(x) });
  return x;
};

const optSignal = (fn: string, name: string, x: unknown): AbortSignal | undefined => {
  if (x !== undefined && !(typeof AbortSignal !== 'undefined' && x instanceof AbortSignal)) throw new SdpaTypeError(fn, { argument: name, expected: 'an AbortSignal (from an AbortController)', received: describeValue(x) });
  return x;
};

const optSeed = (fn: string, name: string, x: unknown): number | undefined => {
  if (x === undefined) return undefined;
  if (typeof x !== 'number') throw new SdpaTypeError(fn, { argument: name, expected: 'an integer in [0, 2^32 - 1]', received: describeValue(x) });
  if (!Number.isInteger(x) || x < 0 || x > 2 ** 32 - 1) throw new SdpaRangeError(fn, { argument: name, expected: 'an integer in [0, 2^32 - 1]', received: describeValue(x) });
  return x;
};

const posInt = (fn: string, name: string, x: unknown): number => {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new SdpaRangeError(fn, { argument: name, expected: 'a positive integer', received: describeValue(x) });
  return x;
};

/** Seeded uniform values in [-bound, bound) (mulberry32): reproducible weights without a framework. */
function seededUniform(seed: number, n: number, bound: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * bound;
  }
  return out;
}

/** y[r, o] = Σ_i x[r, i]·w[o, i] + b[o]: PyTorch's Linear convention, w is `[out, in]` row-major. */
function linear(x: Float32Array, rows: number, inF: number, w: Float32Array, outF: number, b?: Float32Array): Float32Array {
  const y = new Float32Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      const xo = r * inF, wo = o * inF;
      for (let i = 0; i < inF; i++) s += x[xo + i] * w[wo + i];
      y[r * outF + o] = s;
    }
  }
  return y;
}

/**
 * Rotary position embedding in place on `[B, S, H, D]` rows (GPT-NeoX "rotate half" form): the
 * pair (x[d], x[d + D/2]) of position `pos0 + s` turns by `pos · base^(-2d/D)`.
 */
export function applyRotary(x: Float32Array, b: number, s: number, h: number, d: number, pos0: number, base = 10000): void {
  if (d % 2 !== 0) throw new SdpaRangeError('applyRotary', { argument: 'headDim', expected: 'an even head dim (rotary pairs)', received: `${d}` });
  const half = d / 2;
  for (let bi = 0; bi < b; bi++) {
    for (let si = 0; si < s; si++) {
      const pos = pos0 + si;
      for (let hi = 0; hi < h; hi++) {
        const o = ((bi * s + si) * h + hi) * d;
        for (let k = 0; k < half; k++) {
          const ang = pos * Math.pow(base, (-2 * k) / d);
          const c = Math.cos(ang), sn = Math.sin(ang);
          const x1 = x[o + k], x2 = x[o + k + half];
          x[o + k] = x1 * c - x2 * sn;
          x[o + k + half] = x1 * sn + x2 * c;
        }
      }
    }
  }
}

/**
 * A growing key/value cache for {@link MultiHeadAttention}: `[B, L, Hkv, D]` float32 per side,
 * appended by each forward. One cache per layer.
 */
export class KvCache {
  private k: Float32Array = new Float32Array(0);
  private v: Float32Array = new Float32Array(0);
  /** Cached tokens per sequence. */
  length = 0;
  private shape: [number, number, number] | undefined; // B, Hkv, D

  /** Appends `[B, S, Hkv, D]` rows; returns the whole cache as `[B, L, Hkv, D]` tensors. */
  append(k: Float32Array, v: Float32Array, b: number, s: number, hkv: number, d: number): { k: Tensor; v: Tensor } {
    const staged = this.stage(k, v, b, s, hkv, d);
    staged.commit();
    return { k: staged.k, v: staged.v };
  }

  /**
   * The cache with `[B, S, Hkv, D]` rows appended, without changing it until `commit()`: a forward
   * that fails or is aborted leaves the cache as it was.
   */
  stage(k: Float32Array, v: Float32Array, b: number, s: number, hkv: number, d: number): { k: Tensor; v: Tensor; commit(): void } {
    const fn = 'KvCache.append';
    for (const [name, x] of [['b', b], ['s', s], ['hkv', hkv], ['d', d]] as const) posInt(fn, name, x);
    // Exactly B·S·Hkv·D values: a shorter array would be padded with zeros (silently wrong keys), a longer one truncated.
    for (const [name, a] of [['k', k], ['v', v]] as const) {
      if (!(a instanceof Float32Array)) throw new SdpaTypeError(fn, { argument: name, expected: `a Float32Array of b·s·hkv·d = ${b * s * hkv * d} values ([B, S, Hkv, D] rows)`, received: describeValue(a) });
      if (a.length !== b * s * hkv * d) throw new SdpaRangeError(fn, { argument: name, expected: `length b·s·hkv·d = ${b}·${s}·${hkv}·${d} = ${b * s * hkv * d}`, received: `length ${a.length}` });
    }
    if (this.shape && (this.shape[0] !== b || this.shape[1] !== hkv || this.shape[2] !== d)) {
      throw new SdpaTypeError('KvCache.append', { argument: 'k', expected: `[${this.shape[0]}, S, ${this.shape[1]}, ${this.shape[2]}] like the cached rows`, received: `[${b}, ${s}, ${hkv}, ${d}]` });
    }
    const row = hkv * d, l = this.length + s, was = this.length;
    const grow = (old: Float32Array, add: Float32Array): Float32Array => {
      const n = new Float32Array(b * l * row);
      for (let bi = 0; bi < b; bi++) {
        n.set(old.subarray(bi * was * row, (bi + 1) * was * row), bi * l * row);
        n.set(add.subarray(bi * s * row, (bi + 1) * s * row), (bi * l + was) * row);
      }
      return n;
    };
    const nk = grow(this.k, k), nv = grow(this.v, v);
    return {
      k: tensor(nk, [b, l, hkv, d]),
      v: tensor(nv, [b, l, hkv, d]),
      commit: () => {
        // Staged against the cache as it was: a commit after another append would drop rows.
        if (this.length !== was) throw new Error('KvCache: the cache changed between stage() and commit()');
        this.shape = [b, hkv, d];
        this.k = nk;
        this.v = nv;
        this.length = l;
      },
    };
  }

  /** Empties the cache. */
  clear(): void {
    this.k = new Float32Array(0);
    this.v = new Float32Array(0);
    this.length = 0;
    this.shape = undefined;
  }
}

/** User-supplied weights, PyTorch Linear layout (`[out, in]` row-major). Either wq/wk/wv or packed wqkv. */
export interface MhaWeights {
  wq?: Float32Array;
  wk?: Float32Array;
  wv?: Float32Array;
  /** Packed `[(H + 2·Hkv)·D, dModel]`: q rows, then k rows, then v rows. */
  wqkv?: Float32Array;
  wo: Float32Array;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  bqkv?: Float32Array;
  bo?: Float32Array;
}

/** Options of {@link MultiHeadAttention}. */
export interface MultiHeadAttentionOptions {
  dModel: number;
  numHeads: number;
  /** Key/value heads (GQA/MQA); default numHeads. */
  numKvHeads?: number;
  /** Projection biases; default true. */
  bias?: boolean;
  /** Attention dropout while `training`. */
  dropout?: number;
  /** Rotary embeddings on q and k (true, or `{ base }`). */
  rope?: boolean | { base?: number };
  /** Seed of the initial weights (and dropout); default 0. */
  seed?: number;
  /** Project q/k/v with one packed matrix (as PyTorch's in_proj_weight). */
  packedQkv?: boolean;
  /** Weights to use instead of the seeded init. */
  weights?: MhaWeights;
}

/** Options of {@link MultiHeadAttention.forward}. */
export interface MhaForwardOptions {
  /** Causal; with a non-empty cache the diagonal is bottom-right aligned (new tokens see the past). */
  isCausal?: boolean;
  /** A bool / additive float mask broadcastable to `[B, H, S, L]`, or an attention bias. */
  attnMask?: Tensor | AttentionBias;
  /** Appends this step's k/v and attends over the whole cache. */
  kvCache?: KvCache;
  /** Cancels the forward (see `sdpa`'s `signal`); the KV cache is then left as it was. */
  signal?: AbortSignal;
}

/**
 * Multi-head attention with optional GQA, rotary embeddings and a KV cache, on Float32Array weights.
 * @example
 * const mha = new MultiHeadAttention({ dModel: 64, numHeads: 8, numKvHeads: 2, rope: true });
 * const y = await mha.forward(x, { isCausal: true }); // x: [B, S, 64]
 */
export class MultiHeadAttention {
  readonly dModel: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly dropout: number;
  readonly ropeBase: number | undefined;
  /** Dropout applies only while training (PyTorch's module.training). */
  training = true;
  readonly weights: Required<Pick<MhaWeights, 'wo'>> & MhaWeights;
  private readonly seed: number;

  constructor(options: MultiHeadAttentionOptions) {
    const fn = 'MultiHeadAttention';
    if (options === null || typeof options !== 'object') throw new SdpaTypeError(fn, { argument: 'opts', expected: 'an options object', received: describeValue(options) });
    const opts = strictOptions<MultiHeadAttentionOptions>(fn, 'opts', options, ['dModel', 'numHeads', 'numKvHeads', 'bias', 'dropout', 'rope', 'seed', 'packedQkv', 'weights']);
    optBool(fn, 'opts.bias', opts.bias);
    optBool(fn, 'opts.packedQkv', opts.packedQkv);
    optSeed(fn, 'opts.seed', opts.seed);
    let rope: boolean | { base?: number } | undefined = opts.rope;
    if (rope !== undefined && typeof rope !== 'boolean') {
      const r = strictOptions<{ base: number }>(fn, 'opts.rope', rope, ['base']);
      // A base that is not a finite number > 1 makes every rotation angle NaN or constant: all-NaN or no rotation, silently.
      if (r.base !== undefined && (typeof r.base !== 'number' || !Number.isFinite(r.base) || r.base <= 1)) {
        throw new (typeof r.base === 'number' ? SdpaRangeError : SdpaTypeError)(fn, { argument: 'opts.rope.base', expected: 'a finite number > 1 (10000 by default)', received: describeValue(r.base) });
      }
      rope = r;
    }
    this.dModel = posInt(fn, 'opts.dModel', opts.dModel);
    this.numHeads = posInt(fn, 'opts.numHeads', opts.numHeads);
    this.numKvHeads = posInt(fn, 'opts.numKvHeads', opts.numKvHeads ?? opts.numHeads);
    if (this.dModel % this.numHeads !== 0) throw new SdpaRangeError(fn, { argument: 'opts.numHeads', expected: `a divisor of dModel ${this.dModel}`, received: `${this.numHeads}` });
    if (this.numHeads % this.numKvHeads !== 0) throw new SdpaRangeError(fn, { argument: 'opts.numKvHeads', expected: `a divisor of numHeads ${this.numHeads}`, received: `${this.numKvHeads}` });
    this.headDim = this.dModel / this.numHeads;
    this.dropout = opts.dropout ?? 0;
    if (typeof this.dropout !== 'number' || !(this.dropout >= 0 && this.dropout < 1)) throw new SdpaRangeError(fn, { argument: 'opts.dropout', expected: 'a number in [0, 1)', received: describeValue(opts.dropout) });
    this.ropeBase = rope ? (typeof rope === 'object' ? rope.base ?? 10000 : 10000) : undefined;
    if (this.ropeBase !== undefined && this.headDim % 2 !== 0) throw new SdpaRangeError(fn, { argument: 'opts.rope', expected: 'an even head dim for rotary pairs', received: `head dim ${this.headDim}` });
    this.seed = opts.seed ?? 0;
    const D = this.headDim, dm = this.dModel, qOut = this.numHeads * D, kvOut = this.numKvHeads * D;
    const bound = 1 / Math.sqrt(dm);
    const useBias = opts.bias ?? true;
    const w = opts.weights === undefined ? undefined : strictOptions<MhaWeights>(fn, 'opts.weights', opts.weights, ['wq', 'wk', 'wv', 'wqkv', 'wo', 'bq', 'bk', 'bv', 'bqkv', 'bo']) as MhaWeights;
    const expectLen = (name: keyof MhaWeights, a: Float32Array | undefined, n: number): void => {
      if (!(a instanceof Float32Array) || a.length !== n) throw new SdpaTypeError(fn, { argument: `opts.weights.${name}`, expected: `a Float32Array of ${n}`, received: describeValue(a) });
    };
    if (w) {
      if (opts.packedQkv || w.wqkv) expectLen('wqkv', w.wqkv, (qOut + 2 * kvOut) * dm);
      else {
        expectLen('wq', w.wq, qOut * dm);
        expectLen('wk', w.wk, kvOut * dm);
        expectLen('wv', w.wv, kvOut * dm);
      }
      expectLen('wo', w.wo, dm * qOut);
      // Biases: absent, or exactly one value per output feature (a short one would read undefined → NaN).
      for (const [name, n] of [['bq', qOut], ['bk', kvOut], ['bv', kvOut], ['bqkv', qOut + 2 * kvOut], ['bo', dm]] as const) if (w[name] !== undefined) expectLen(name, w[name], n);
      this.weights = w;
    } else {
      const s = this.seed;
      const bias = (n: number, k: number) => (useBias ? seededUniform(s + k, n, bound) : undefined);
      this.weights = opts.packedQkv
        ? { wqkv: seededUniform(s + 1, (qOut + 2 * kvOut) * dm, bound), bqkv: bias(qOut + 2 * kvOut, 11), wo: seededUniform(s + 4, dm * qOut, 1 / Math.sqrt(qOut)), bo: bias(dm, 14) }
        : {
            wq: seededUniform(s + 1, qOut * dm, bound),
            wk: seededUniform(s + 2, kvOut * dm, bound),
            wv: seededUniform(s + 3, kvOut * dm, bound),
            wo: seededUniform(s + 4, dm * qOut, 1 / Math.sqrt(qOut)),
            bq: bias(qOut, 11),
            bk: bias(kvOut, 12),
            bv: bias(kvOut, 13),
            bo: bias(dm, 14),
          };
    }
  }

  /** x `[B, S, dModel]` → `[B, S, dModel]` (float32). */
  async forward(x: Tensor, options?: MhaForwardOptions): Promise<Tensor> {
    const fn = 'MultiHeadAttention.forward';
    const opts = strictOptions<MhaForwardOptions>(fn, 'opts', options, ['isCausal', 'attnMask', 'kvCache', 'signal']);
    optBool(fn, 'opts.isCausal', opts.isCausal);
    optSignal(fn, 'opts.signal', opts.signal);
    if (opts.kvCache !== undefined && !(opts.kvCache instanceof KvCache)) throw new SdpaTypeError(fn, { argument: 'opts.kvCache', expected: 'a KvCache', received: describeValue(opts.kvCache) });
    if (opts.attnMask !== undefined && !(opts.attnMask instanceof Tensor) && !isAttentionBias(opts.attnMask)) {
      throw new SdpaTypeError(fn, { argument: 'opts.attnMask', expected: 'a Tensor or an attention bias', received: describeValue(opts.attnMask) });
    }
    if (!(x instanceof Tensor) || x.shape.length !== 3 || x.shape[2] !== this.dModel || x.dtype === 'bool') {
      throw new SdpaTypeError(fn, { argument: 'x', expected: `a float Tensor [batch, seq, ${this.dModel}]`, received: x instanceof Tensor ? `${x}` : describeValue(x) });
    }
    const [B, S] = x.shape;
    const H = this.numHeads, Hkv = this.numKvHeads, D = this.headDim, dm = this.dModel;
    const X = await x.toFloat32();
    const w = this.weights;
    let Q: Float32Array, K: Float32Array, V: Float32Array;
    if (w.wqkv) {
      const all = linear(X, B * S, dm, w.wqkv, (H + 2 * Hkv) * D, w.bqkv);
      const width = (H + 2 * Hkv) * D;
      const take = (from: number, n: number): Float32Array => {
        const out = new Float32Array(B * S * n);
        for (let r = 0; r < B * S; r++) out.set(all.subarray(r * width + from, r * width + from + n), r * n);
        return out;
      };
      Q = take(0, H * D);
      K = take(H * D, Hkv * D);
      V = take((H + Hkv) * D, Hkv * D);
    } else {
      Q = linear(X, B * S, dm, w.wq!, H * D, w.bq);
      K = linear(X, B * S, dm, w.wk!, Hkv * D, w.bk);
      V = linear(X, B * S, dm, w.wv!, Hkv * D, w.bv);
    }
    const past = opts.kvCache?.length ?? 0;
    if (this.ropeBase !== undefined) {
      applyRotary(Q, B, S, H, D, past, this.ropeBase);
      applyRotary(K, B, S, Hkv, D, past, this.ropeBase);
    }
    let kT = tensor(K, [B, S, Hkv, D]), vT = tensor(V, [B, S, Hkv, D]);
    // The cache takes the new rows only once attention succeeded (an aborted forward leaves it as it was).
    const staged = opts.kvCache?.stage(K, V, B, S, Hkv, D);
    if (staged) ({ k: kT, v: vT } = staged);
    const L = kT.shape[1];
    const sdpaOpts: SdpaOptions = { seed: this.seed };
    if (H !== Hkv) sdpaOpts.enableGqa = true;
    if (this.training && this.dropout > 0) sdpaOpts.dropoutP = this.dropout;
    if (opts.attnMask !== undefined && !(opts.attnMask instanceof Tensor) && !isAttentionBias(opts.attnMask)) {
      throw new SdpaTypeError(fn, { argument: 'opts.attnMask', expected: 'a Tensor or an attention bias', received: describeValue(opts.attnMask) });
    }
    if (opts.isCausal && L !== S) {
      // New tokens follow the cached ones: bottom-right alignment, ANDed with any dense mask.
      if (opts.attnMask === undefined) sdpaOpts.attnMask = causalLowerRight(S, L);
      else if (opts.attnMask instanceof Tensor) sdpaOpts.attnMask = new StructuredBias(S, L, { causal: true, alignment: 'lower-right', mask: opts.attnMask });
      else throw new SdpaTypeError(fn, { argument: 'opts.attnMask', expected: 'a Tensor when isCausal is used with a KV cache (the bias object would need its own causal rule)', received: `${opts.attnMask}` });
    } else {
      if (opts.attnMask !== undefined) sdpaOpts.attnMask = opts.attnMask;
      if (opts.isCausal) sdpaOpts.isCausal = true;
    }
    if (opts.signal !== undefined) sdpaOpts.signal = opts.signal;
    const o = await sdpa(bshdToBhsd(tensor(Q, [B, S, H, D])), bshdToBhsd(kT), bshdToBhsd(vT), sdpaOpts);
    staged?.commit();
    const merged = bhsdToBshd(o).toFloat32Sync(); // [B, S, H·D] row-major
    return tensor(linear(merged, B * S, H * D, w.wo, dm, w.bo), [B, S, dm]);
  }
}

/** Options of {@link FlashAttention}. */
export interface FlashAttentionOptions {
  /** Causal, bottom-right aligned (the last query sees every key), like {@link FlashAttention.getMask}. */
  causal?: boolean;
  /** Attention dropout while `training`. */
  dropout?: number;
  /** Only FLASH_ATTENTION may run; when it cannot, forward throws SdpaDispatchError with its reasons. */
  flash?: boolean;
  /** Multiplier of q·k; default 1/sqrt(D). */
  scale?: number;
  /** Dropout seed. */
  seed?: number;
}

/** Options of {@link FlashAttention.forward}. */
export interface FlashAttentionForwardOptions {
  /** Bool keep-mask: `[B, L]` key padding, or anything broadcastable to `[B, H, S, L]`. */
  mask?: Tensor;
  /** Additive float bias broadcastable to `[B, H, S, L]`, or a structured bias (without `causal`). */
  attnBias?: Tensor | AttentionBias;
  /** Cancels the call (see `sdpa`'s `signal`). */
  signal?: AbortSignal;
}

/**
 * The attend step of a transformer block on `[B, H, S, D]` tensors, with an explicit `flash`
 * switch: `flash: true` pins dispatch to FLASH_ATTENTION (withBackends) so a call it cannot serve
 * fails loudly with FLASH's reasons instead of silently running elsewhere.
 * @example
 * const attend = new FlashAttention({ causal: true, flash: true });
 * const out = await attend.forward(q, k, v);
 */
export class FlashAttention {
  readonly causal: boolean;
  readonly dropout: number;
  readonly flash: boolean;
  readonly scale: number | undefined;
  readonly seed: number;
  /** Dropout applies only while training. */
  training = true;

  constructor(options?: FlashAttentionOptions) {
    const fn = 'FlashAttention';
    // Strict: a typo such as { casual: true } throws instead of running non-causal.
    const opts = strictOptions<FlashAttentionOptions>(fn, 'opts', options, ['causal', 'dropout', 'flash', 'scale', 'seed']);
    optBool(fn, 'opts.causal', opts.causal);
    optBool(fn, 'opts.flash', opts.flash);
    optSeed(fn, 'opts.seed', opts.seed);
    if (opts.scale !== undefined && (typeof opts.scale !== 'number' || !Number.isFinite(opts.scale))) {
      throw new (typeof opts.scale === 'number' ? SdpaRangeError : SdpaTypeError)(fn, { argument: 'opts.scale', expected: 'a finite number', received: describeValue(opts.scale) });
    }
    this.causal = opts.causal ?? false;
    this.dropout = opts.dropout ?? 0;
    if (typeof this.dropout !== 'number' || !(this.dropout >= 0 && this.dropout < 1)) throw new SdpaRangeError(fn, { argument: 'opts.dropout', expected: 'a number in [0, 1)', received: describeValue(opts.dropout) });
    this.flash = opts.flash ?? false;
    this.scale = opts.scale;
    this.seed = opts.seed ?? 0;
  }

  /**
   * The causal keep-mask this module applies for i queries over j keys: bool `[i, j]`, 1 where key c
   * is visible to query r (c <= r + j - i, bottom-right aligned).
   */
  getMask(i: number, j: number): Tensor {
    return tensor(causalLowerRight(posInt('FlashAttention.getMask', 'i', i), posInt('FlashAttention.getMask', 'j', j)).materialize(), [i, j], 'bool');
  }

  /** q `[B, H, S, D]`, k/v `[B, Hkv, L, D]` → `[B, H, S, Dv]`. */
  async forward(q: Tensor, k: Tensor, v: Tensor, options?: FlashAttentionForwardOptions): Promise<Tensor> {
    const fn = 'FlashAttention.forward';
    // The shapes are read below: check the arguments are tensors first (null would be a raw TypeError).
    for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
      if (!(t instanceof Tensor)) throw new SdpaTypeError(fn, { argument: name, expected: 'a Tensor [B, H, S, D]', received: describeValue(t) });
      if (t.shape.length < 2) throw new SdpaTypeError(fn, { argument: `${name}.shape`, expected: 'at least 2 dims ([..., S, D])', received: `[${t.shape.join(', ')}]` });
    }
    const opts = strictOptions<FlashAttentionForwardOptions>(fn, 'opts', options, ['mask', 'attnBias', 'signal']);
    optSignal(fn, 'opts.signal', opts.signal);
    const S = q.shape[q.shape.length - 2], L = k.shape[k.shape.length - 2];
    let mask = opts.mask;
    if (mask !== undefined && (!(mask instanceof Tensor) || mask.dtype !== 'bool')) throw new SdpaTypeError(fn, { argument: 'opts.mask', expected: 'a bool Tensor (1 = may attend)', received: describeValue(mask) });
    if (mask && mask.shape.length === 2 && q.shape.length === 4 && mask.shape[0] === q.shape[0] && mask.shape[1] === L) {
      mask = new Tensor({ shape: [mask.shape[0], 1, 1, L], dtype: 'bool', data: mask.data, strides: [mask.strides[0], 0, 0, mask.strides[1]], offset: mask.offset }); // key padding → [B, 1, 1, L]
    }
    const bias = opts.attnBias;
    if (mask && bias) throw new SdpaTypeError(fn, { argument: 'opts.mask', expected: 'either mask or attnBias (fold the keep-mask into attnBias as -Infinity)', received: 'both' });
    const sdpaOpts: SdpaOptions = { seed: this.seed, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) };
    if (q.shape.length >= 3 && k.shape.length >= 3 && q.shape[q.shape.length - 3] !== k.shape[k.shape.length - 3]) sdpaOpts.enableGqa = true;
    if (this.scale !== undefined) sdpaOpts.scale = this.scale;
    if (this.training && this.dropout > 0) sdpaOpts.dropoutP = this.dropout;
    const dense = mask ?? (bias instanceof Tensor ? bias : undefined);
    if (bias !== undefined && !(bias instanceof Tensor)) {
      if (!isAttentionBias(bias)) throw new SdpaTypeError(fn, { argument: 'opts.attnBias', expected: 'a Tensor or an attention bias', received: describeValue(bias) });
      if (this.causal) throw new SdpaTypeError(fn, { argument: 'opts.attnBias', expected: 'a Tensor when the module is causal (put causal into the bias object instead)', received: `${bias}` });
      sdpaOpts.attnMask = bias;
    } else if (this.causal) {
      sdpaOpts.attnMask = dense ? new StructuredBias(S, L, { causal: true, alignment: 'lower-right', mask: dense }) : causalLowerRight(S, L);
    } else if (dense) sdpaOpts.attnMask = dense;
    if (!this.flash) return sdpa(q, k, v, sdpaOpts);
    return withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, k, v, sdpaOpts));
  }
}

