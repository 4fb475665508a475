/**
 * flash-attn 2 style functions in the `[batch, seq, heads, dim]` layout. Semantics mirror
 * flash-attn 2's docstrings: `causal` is aligned to the bottom-right corner of the score matrix;
 * `windowSize: [left, right]` lets query i see keys in `[i + L - S - left, i + L - S + right]`
 * (-1 = unbounded); ALiBi adds `-slope · |i + L - S - j|`; `softcap` applies `softcap · tanh(s / softcap)`
 * to the scaled scores; a row that sees no key outputs zeros. Inputs are viewed as `[B, H, S, D]`
 * through strides (no copies) and dispatched like `sdpa()`, so every backend that applies these rules
 * without a mask buffer can serve them and the others say why not.
 */
import { StructuredBias, type BiasBlocks } from '../bias.js';
import { SdpaAbortError, SdpaRangeError, SdpaTypeError, describeValue } from '../errors.js';
import { ownOptions, type SdpaOptions } from '../params.js';
import { Tensor } from '../tensor.js';
import type { DispatchReport } from '../dispatch/select.js';
import { bhsdToBshd, bhsdToPacked, bshdToBhsd, expectTensor, mergeDimsView, narrowView, packedToBhsd, permuteView, selectView } from './layout.js';
import { advancedParams, explainAdvanced, runAttention, runAttentionWithLse, type AttentionWithLse } from './run.js';

/** Options shared by the flash-attn style functions (flash-attn's keyword arguments, camelCased). */
export interface FlashAttnOptions {
  /** Dropout probability (0 at inference). */
  dropoutP?: number;
  /** Multiplier of q·k; default 1/sqrt(headdim). */
  softmaxScale?: number;
  /** Causal mask aligned to the bottom-right corner (flash-attn 2.1+). */
  causal?: boolean;
  /** Sliding window `[left, right]`; -1 = unbounded on that side; default `[-1, -1]`. */
  windowSize?: readonly [number, number];
  /** Soft-cap of the scaled scores; 0 = off. */
  softcap?: number;
  /** ALiBi slopes, `[nheads]` or `[batch, nheads]` flattened, float32. */
  alibiSlopes?: Float32Array;
  /** Accepted for parity with flash-attn: every path here is deterministic already. */
  deterministic?: boolean;
  /** Also return the per-row log-sum-exp `[batch, nheads, seqlen_q]` (flash-attn's softmax_lse). */
  returnLse?: boolean;
  /** Dropout seed (docs/design.md §2). */
  seed?: number;
  /** Cancels the call (see `sdpa`'s `signal`); a KV-cache call then leaves the cache as it was. */
  signal?: AbortSignal;
}

const FLASH_KEYS = ['dropoutP', 'softmaxScale', 'causal', 'windowSize', 'softcap', 'alibiSlopes', 'deterministic', 'returnLse', 'seed', 'signal'] as const;

/** Checks the option object's keys and the fields sdpa's own validation does not cover. */
export function checkFlashOptions(fn: string, opts: unknown, extra: readonly string[] = []): FlashAttnOptions {
  if (opts === undefined) return ownOptions({});
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new SdpaTypeError(fn, { argument: 'opts', expected: 'an options object or undefined', received: describeValue(opts) });
  const allowed: readonly string[] = [...FLASH_KEYS, ...extra];
  for (const key of Object.keys(opts)) {
    if (!allowed.includes(key)) throw new SdpaTypeError(fn, { argument: `opts.${key}`, expected: `one of the options ${allowed.join(', ')}`, received: `an unknown option ${JSON.stringify(key)}` });
  }
  // Own properties only: an option set on Object.prototype is not an option of this call.
  const o = ownOptions(opts) as FlashAttnOptions;
  for (const key of ['causal', 'deterministic', 'returnLse'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new SdpaTypeError(fn, { argument: `opts.${key}`, expected: 'a boolean', received: describeValue(o[key]) });
  }
  if (o.windowSize !== undefined) {
    const w = o.windowSize;
    if (!Array.isArray(w) || w.length !== 2) throw new SdpaTypeError(fn, { argument: 'opts.windowSize', expected: 'a pair [left, right] of integers >= -1', received: describeValue(w) });
    w.forEach((x, i) => {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < -1) throw new SdpaRangeError(fn, { argument: `opts.windowSize[${i}]`, expected: 'an integer >= -1 (-1 = unbounded)', received: describeValue(x) });
    });
  }
  if (o.softcap !== undefined && (typeof o.softcap !== 'number' || !Number.isFinite(o.softcap) || o.softcap < 0)) {
    throw new SdpaRangeError(fn, { argument: 'opts.softcap', expected: 'a finite number >= 0 (0 = off)', received: describeValue(o.softcap) });
  }
  if (o.signal !== undefined && !(typeof AbortSignal !== 'undefined' && o.signal instanceof AbortSignal)) {
    throw new SdpaTypeError(fn, { argument: 'opts.signal', expected: 'an AbortSignal (from an AbortController)', received: describeValue(o.signal) });
  }
  if (o.alibiSlopes !== undefined && !(o.alibiSlopes instanceof Float32Array)) {
    throw new SdpaTypeError(fn, { argument: 'opts.alibiSlopes', expected: 'a Float32Array of [nheads] or [batch, nheads] slopes', received: describeValue(o.alibiSlopes) });
  }
  return o;
}

/** The sdpa options for `[B, H, S, D]` views with S queries over L keys (and varlen blocks). */
export function flashSdpaOptions(o: FlashAttnOptions, s: number, l: number, hq: number, hkv: number, blocks?: BiasBlocks): SdpaOptions {
  const out: SdpaOptions = {};
  if (o.dropoutP !== undefined) out.dropoutP = o.dropoutP;
  if (o.softmaxScale !== undefined) out.scale = o.softmaxScale;
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.signal !== undefined) out.signal = o.signal;
  if (hq !== hkv) out.enableGqa = true; // flash-attn serves MQA/GQA whenever Hkv divides Hq
  let w = o.windowSize && (o.windowSize[0] >= 0 || o.windowSize[1] >= 0) ? o.windowSize : undefined;
  let causal = o.causal ?? false;
  // Windows that are only causal stay a causal fact, so backends that know just causal serve them:
  // [-1, 0] is exactly causal, and under causal a window without a left bound adds nothing
  // (the right side can never pass the causal diagonal, as right >= 0).
  if (w && w[0] < 0 && (w[1] === 0 || causal)) {
    causal = true;
    w = undefined;
  }
  const softcap = o.softcap ? o.softcap : undefined;
  if (causal || w || o.alibiSlopes || softcap || blocks) {
    out.attnMask = new StructuredBias(s, l, {
      alignment: 'lower-right',
      causal,
      ...(w ? { window: w } : {}),
      ...(o.alibiSlopes ? { alibiSlopes: o.alibiSlopes } : {}),
      ...(softcap ? { softcap } : {}),
      ...(blocks ? { blocks } : {}),
    });
  }
  return out;
}

/** Runs `[B, H, S, D]` views; the output (and lse) in `[B, H, S, ·]`. */
async function attendBhsd(fn: string, q: Tensor, k: Tensor, v: Tensor, o: FlashAttnOptions, blocks?: BiasBlocks): Promise<{ out: Tensor; lse?: Tensor }> {
  const sdpaOpts = flashSdpaOptions(o, q.shape[2], k.shape[2], q.shape[1], k.shape[1], blocks);
  if (o.returnLse) return runAttentionWithLse(fn, q, k, v, sdpaOpts);
  return { out: await runAttention(q, k, v, sdpaOpts) };
}

function wrapResult(r: { out: Tensor; lse?: Tensor }, returnLse: boolean | undefined, mapOut: (t: Tensor) => Tensor, mapLse: (t: Tensor) => Tensor = (t) => t): Tensor | AttentionWithLse {
  const out = mapOut(r.out);
  return returnLse && r.lse ? { out, lse: mapLse(r.lse) } : out;
}

/**
 * flash-attn's `flash_attn_func`: q `[B, S, H, D]`, k/v `[B, L, Hkv, D]` (Hkv divides H) → `[B, S, H, Dv]`.
 * @example const out = await flashAttnFunc(q, k, v, { causal: true, windowSize: [256, 0] });
 */
export function flashAttnFunc(q: Tensor, k: Tensor, v: Tensor, opts: FlashAttnOptions & { returnLse: true }): Promise<AttentionWithLse>;
export function flashAttnFunc(q: Tensor, k: Tensor, v: Tensor, opts?: FlashAttnOptions): Promise<Tensor>;
export async function flashAttnFunc(q: Tensor, k: Tensor, v: Tensor, opts?: FlashAttnOptions): Promise<Tensor | AttentionWithLse> {
  const fn = 'flashAttnFunc';
  const o = checkFlashOptions(fn, opts);
  const form = '[batch, seqlen, nheads, headdim]';
  const r = await attendBhsd(fn, bshdToBhsd(expectTensor(fn, 'q', q, 4, form)), bshdToBhsd(expectTensor(fn, 'k', k, 4, form)), bshdToBhsd(expectTensor(fn, 'v', v, 4, form)), o);
  return wrapResult(r, o.returnLse, bhsdToBshd);
}

/** What {@link flashAttnFunc} would dispatch to, and why the others can't (runs nothing). */
export function explainFlashAttn(q: Tensor, k: Tensor, v: Tensor, opts?: FlashAttnOptions): DispatchReport {
  const fn = 'explainFlashAttn';
  const o = checkFlashOptions(fn, opts);
  const form = '[batch, seqlen, nheads, headdim]';
  const qv = bshdToBhsd(expectTensor(fn, 'q', q, 4, form)), kv = bshdToBhsd(expectTensor(fn, 'k', k, 4, form)), vv = bshdToBhsd(expectTensor(fn, 'v', v, 4, form));
  return explainAdvanced(fn, qv, kv, vv, flashSdpaOptions(o, qv.shape[2], kv.shape[2], qv.shape[1], kv.shape[1]), o.returnLse ?? false);
}

/**
 * flash-attn's `flash_attn_qkvpacked_func`: qkv `[B, S, 3, H, D]` → `[B, S, H, D]` (q, k, v are views).
 * @example const out = await flashAttnQkvpackedFunc(qkv, { causal: true });
 */
export function flashAttnQkvpackedFunc(qkv: Tensor, opts: FlashAttnOptions & { returnLse: true }): Promise<AttentionWithLse>;
export function flashAttnQkvpackedFunc(qkv: Tensor, opts?: FlashAttnOptions): Promise<Tensor>;
export async function flashAttnQkvpackedFunc(qkv: Tensor, opts?: FlashAttnOptions): Promise<Tensor | AttentionWithLse> {
  const fn = 'flashAttnQkvpackedFunc';
  const o = checkFlashOptions(fn, opts);
  const t = expectTensor(fn, 'qkv', qkv, 5, '[batch, seqlen, 3, nheads, headdim]');
  if (t.shape[2] !== 3) throw new SdpaTypeError(fn, { argument: 'qkv.shape[2]', expected: '3 (q, k, v)', received: `${t.shape[2]}` });
  const part = (i: number): Tensor => bshdToBhsd(selectView(t, 2, i));
  const r = await attendBhsd(fn, part(0), part(1), part(2), o);
  return wrapResult(r, o.returnLse, bhsdToBshd);
}

/**
 * flash-attn's `flash_attn_kvpacked_func`: q `[B, S, H, D]`, kv `[B, L, 2, Hkv, D]` → `[B, S, H, D]`.
 * @example const out = await flashAttnKvpackedFunc(q, kv, { causal: true });
 */
export function flashAttnKvpackedFunc(q: Tensor, kv: Tensor, opts: FlashAttnOptions & { returnLse: true }): Promise<AttentionWithLse>;
export function flashAttnKvpackedFunc(q: Tensor, kv: Tensor, opts?: FlashAttnOptions): Promise<Tensor>;
export async function flashAttnKvpackedFunc(q: Tensor, kv: Tensor, opts?: FlashAttnOptions): Promise<Tensor | AttentionWithLse> {
  const fn = 'flashAttnKvpackedFunc';
  const o = checkFlashOptions(fn, opts);
  const qt = expectTensor(fn, 'q', q, 4, '[batch, seqlen, nheads, headdim]');
  const t = expectTensor(fn, 'kv', kv, 5, '[batch, seqlen_k, 2, nheads_k, headdim]');
  if (t.shape[2] !== 2) throw new SdpaTypeError(fn, { argument: 'kv.shape[2]', expected: '2 (k, v)', received: `${t.shape[2]}` });
  const r = await attendBhsd(fn, bshdToBhsd(qt), bshdToBhsd(selectView(t, 2, 0)), bshdToBhsd(selectView(t, 2, 1)), o);
  return wrapResult(r, o.returnLse, bhsdToBshd);
}

/** Validates cumulative sequence lengths `[B + 1]` over `total` tokens and a max length bound. */
function checkCuSeqlens(fn: string, name: string, cu: unknown, total: number, maxName: string, max: unknown): Int32Array {
  if (!(cu instanceof Int32Array) || cu.length < 2) throw new SdpaTypeError(fn, { argument: name, expected: 'an Int32Array [batch + 1] of cumulative lengths starting at 0', received: describeValue(cu) });
  if (cu[0] !== 0) throw new SdpaRangeError(fn, { argument: `${name}[0]`, expected: '0', received: `${cu[0]}` });
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 0) throw new SdpaTypeError(fn, { argument: maxName, expected: 'a non-negative integer', received: describeValue(max) });
  for (let i = 1; i < cu.length; i++) {
    const len = cu[i] - cu[i - 1];
    if (len < 0) throw new SdpaRangeError(fn, { argument: `${name}[${i}]`, expected: `>= ${name}[${i - 1}] = ${cu[i - 1]} (non-decreasing)`, received: `${cu[i]}` });
    if (len > max) throw new SdpaRangeError(fn, { argument: maxName, expected: `>= every sequence length (sequence ${i - 1} has ${len})`, received: `${max}` });
  }
  if (cu[cu.length - 1] !== total) throw new SdpaRangeError(fn, { argument: `${name}[${cu.length - 1}]`, expected: `${total} (the total tokens of the packed tensor)`, received: `${cu[cu.length - 1]}` });
  return cu;
}

/**
 * flash-attn's `flash_attn_varlen_func`: sequences packed along tokens, q `[totalQ, H, D]`, k/v
 * `[totalK, Hkv, D]`, `cuSeqlensQ/K` `[B + 1]` int32. Each sequence attends only to its own keys
 * (a block-diagonal bias, applied by rule: no totalQ×totalK buffer on EFFICIENT); causal, window
 * and ALiBi are per sequence, bottom-right aligned. Returns `[totalQ, H, Dv]`; lse `[H, totalQ]`.
 * @example const out = await flashAttnVarlenFunc(q, k, v, cuQ, cuK, 128, 128, { causal: true });
 */
export function flashAttnVarlenFunc(q: Tensor, k: Tensor, v: Tensor, cuSeqlensQ: Int32Array, cuSeqlensK: Int32Array, maxSeqlenQ: number, maxSeqlenK: number, opts: FlashAttnOptions & { returnLse: true }): Promise<AttentionWithLse>;
export function flashAttnVarlenFunc(q: Tensor, k: Tensor, v: Tensor, cuSeqlensQ: Int32Array, cuSeqlensK: Int32Array, maxSeqlenQ: number, maxSeqlenK: number, opts?: FlashAttnOptions): Promise<Tensor>;
export async function flashAttnVarlenFunc(q: Tensor, k: Tensor, v: Tensor, cuSeqlensQ: Int32Array, cuSeqlensK: Int32Array, maxSeqlenQ: number, maxSeqlenK: number, opts?: FlashAttnOptions): Promise<Tensor | AttentionWithLse> {
  const fn = 'flashAttnVarlenFunc';
  const o = checkFlashOptions(fn, opts);
  const qt = expectTensor(fn, 'q', q, 3, '[total_q, nheads, headdim]');
  const kt = expectTensor(fn, 'k', k, 3, '[total_k, nheads_k, headdim]');
  const vt = expectTensor(fn, 'v', v, 3, '[total_k, nheads_k, headdim_v]');
  const cuQ = checkCuSeqlens(fn, 'cuSeqlensQ', cuSeqlensQ, qt.shape[0], 'maxSeqlenQ', maxSeqlenQ);
  const cuK = checkCuSeqlens(fn, 'cuSeqlensK', cuSeqlensK, kt.shape[0], 'maxSeqlenK', maxSeqlenK);
  if (cuK.length !== cuQ.length) throw new SdpaTypeError(fn, { argument: 'cuSeqlensK', expected: `length ${cuQ.length} (like cuSeqlensQ)`, received: `length ${cuK.length}` });
  const n = cuQ.length - 1;
  const blocks: BiasBlocks = {
    qStart: cuQ.slice(0, n),
    qLen: Int32Array.from({ length: n }, (_, i) => cuQ[i + 1] - cuQ[i]),
    kvStart: cuK.slice(0, n),
    kvLen: Int32Array.from({ length: n }, (_, i) => cuK[i + 1] - cuK[i]),
  };
  const r = await attendBhsd(fn, packedToBhsd(qt), packedToBhsd(kt), packedToBhsd(vt), o, blocks);
  return wrapResult(r, o.returnLse, bhsdToPacked, (l) => new Tensor({ shape: [l.shape[1], l.shape[2]], dtype: 'float32', data: l.data }));
}

/** Options of {@link flashAttnWithKvcache}: the flash-attn options (no dropout) plus the cache's. */
export interface KvcacheOptions extends Omit<FlashAttnOptions, 'dropoutP'> {
  /** New keys `[B, Snew, Hkv, D]`, written into the cache at `cacheSeqlens[b]` before attending. */
  k?: Tensor;
  /** New values `[B, Snew, Hkv, Dv]`. */
  v?: Tensor;
  /** Tokens already in the cache per sequence (a number for all); default: the whole cache (non-paged, no new k/v). */
  cacheSeqlens?: number | Int32Array;
  /** Paged KV: per sequence, the cache pages (indices into the cache's first dim) in order. */
  blockTable?: readonly Int32Array[];
}

/**
 * The integer view of a typed array's bytes: copies through it are bit-exact (a float32 NaN read
 * into a JS number and written back may lose its payload), so an undone append restores the cache
 * bit for bit.
 */
function bitsOf(a: Float32Array | Uint16Array | Uint8Array): Uint32Array | Uint16Array | Uint8Array {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
}

/**
 * Copies `src` rows `[B, Snew, H, D]` into `cache` at token positions given by `slot(b, t)`
 * (element offsets). Returns a function that puts back what was there: a call that fails or is
 * aborted after the append leaves the cache bit-identical to what it found. Callers validate
 * everything first (dtypes, shapes, the attention call itself): this only writes.
 */
function appendRows(cache: Tensor, src: Tensor, slot: (b: number, t: number) => number): () => void {
  const [B, T, H, D] = src.shape;
  const dst = bitsOf(cache.data!), from = bitsOf(src.data!);
  const [sb, st, sh, sd] = src.strides;
  const ch = cache.strides[2], cd = cache.strides[3];
  const saved = new (dst.constructor as new (n: number) => typeof dst)(B * T * H * D);
  const each = (visit: (at: number, n: number, srcAt: number) => void): void => {
    let n = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const base = slot(b, t);
        for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) visit(base + h * ch + d * cd, n++, src.offset + b * sb + t * st + h * sh + d * sd);
      }
    }
  };
  each((at, n, srcAt) => {
    saved[n] = dst[at];
    dst[at] = from[srcAt];
  });
  return () => each((at, n) => void (dst[at] = saved[n]));
}

/**
 * flash-attn's `flash_attn_with_kvcache`: q `[B, Sq, H, D]` over a KV cache `[B, Lc, Hkv, D]`, or a
 * paged cache `[numPages, pageSize, Hkv, D]` with `blockTable`. New `k`/`v` are appended into the
 * cache in place at `cacheSeqlens` (the caller advances its lengths, as in flash-attn); then each
 * sequence attends to its first `cacheSeqlens[b] + Snew` keys, causal bottom-right aligned.
 * Contiguous caches are read as views; paged caches are gathered once (O(keys), never S×L).
 * @example const out = await flashAttnWithKvcache(q, kCache, vCache, { k: kNew, v: vNew, cacheSeqlens: lens, causal: true });
 */
export function flashAttnWithKvcache(q: Tensor, kCache: Tensor, vCache: Tensor, opts: KvcacheOptions & { returnLse: true }): Promise<AttentionWithLse>;
export function flashAttnWithKvcache(q: Tensor, kCache: Tensor, vCache: Tensor, opts?: KvcacheOptions): Promise<Tensor>;
export async function flashAttnWithKvcache(q: Tensor, kCache: Tensor, vCache: Tensor, opts?: KvcacheOptions): Promise<Tensor | AttentionWithLse> {
  const fn = 'flashAttnWithKvcache';
  const o = checkFlashOptions(fn, opts, ['k', 'v', 'cacheSeqlens', 'blockTable']) as KvcacheOptions;
  if ((o as FlashAttnOptions).dropoutP) throw new SdpaTypeError(fn, { argument: 'opts.dropoutP', expected: 'no dropout (flash_attn_with_kvcache has none)', received: `${(o as FlashAttnOptions).dropoutP}` });
  const qt = expectTensor(fn, 'q', q, 4, '[batch, seqlen_q, nheads, headdim]');
  const kc = expectTensor(fn, 'kCache', kCache, 4, '[batch, seqlen_cache, nheads_k, headdim] or [num_pages, page_size, nheads_k, headdim]');
  const vc = expectTensor(fn, 'vCache', vCache, 4, 'like kCache');
  const B = qt.shape[0], Sq = qt.shape[1];
  const paged = o.blockTable !== undefined;
  if (paged && (!Array.isArray(o.blockTable) || o.blockTable.length !== B || !o.blockTable.every((x) => x instanceof Int32Array))) {
    throw new SdpaTypeError(fn, { argument: 'opts.blockTable', expected: `an array of ${B} Int32Arrays (one page list per sequence)`, received: describeValue(o.blockTable) });
  }
  if (!paged && kc.shape[0] !== B) throw new SdpaTypeError(fn, { argument: 'kCache.shape[0]', expected: `${B} (the batch of q)`, received: `${kc.shape[0]}` });
  if (vc.shape[0] !== kc.shape[0] || vc.shape[1] !== kc.shape[1] || vc.shape[2] !== kc.shape[2]) {
    throw new SdpaTypeError(fn, { argument: 'vCache.shape', expected: `[${kc.shape.slice(0, 3).join(', ')}, headdim_v] like kCache`, received: `[${vc.shape.join(', ')}]` });
  }
  const pageSize = kc.shape[1];
  const capacity = (b: number): number => (paged ? o.blockTable![b].length * pageSize : kc.shape[1]);
  let snew = 0;
  if (o.k !== undefined || o.v !== undefined) {
    const kn = expectTensor(fn, 'opts.k', o.k, 4, '[batch, seqlen_new, nheads_k, headdim]');
    const vn = expectTensor(fn, 'opts.v', o.v, 4, '[batch, seqlen_new, nheads_k, headdim_v]');
    if (kn.shape[0] !== B || kn.shape[2] !== kc.shape[2] || kn.shape[3] !== kc.shape[3]) throw new SdpaTypeError(fn, { argument: 'opts.k.shape', expected: `[${B}, seqlen_new, ${kc.shape[2]}, ${kc.shape[3]}]`, received: `[${kn.shape.join(', ')}]` });
    if (vn.shape[0] !== B || vn.shape[1] !== kn.shape[1] || vn.shape[2] !== vc.shape[2] || vn.shape[3] !== vc.shape[3]) throw new SdpaTypeError(fn, { argument: 'opts.v.shape', expected: `[${B}, ${kn.shape[1]}, ${vc.shape[2]}, ${vc.shape[3]}]`, received: `[${vn.shape.join(', ')}]` });
    snew = kn.shape[1];
  }
  let lens: Int32Array;
  if (o.cacheSeqlens === undefined) {
    if (snew > 0 || paged) throw new SdpaTypeError(fn, { argument: 'opts.cacheSeqlens', expected: 'the cached lengths (required with new k/v or a paged cache)', received: 'undefined' });
    lens = new Int32Array(B).fill(kc.shape[1]);
  } else if (typeof o.cacheSeqlens === 'number') {
    if (!Number.isInteger(o.cacheSeqlens) || o.cacheSeqlens < 0) throw new SdpaRangeError(fn, { argument: 'opts.cacheSeqlens', expected: 'a non-negative integer', received: describeValue(o.cacheSeqlens) });
    lens = new Int32Array(B).fill(o.cacheSeqlens);
  } else if (o.cacheSeqlens instanceof Int32Array && o.cacheSeqlens.length === B) lens = o.cacheSeqlens;
  else throw new SdpaTypeError(fn, { argument: 'opts.cacheSeqlens', expected: `a number or an Int32Array of ${B}`, received: describeValue(o.cacheSeqlens) });
  for (let b = 0; b < B; b++) {
    if (lens[b] < 0 || lens[b] + snew > capacity(b)) {
      throw new SdpaRangeError(fn, { argument: `opts.cacheSeqlens[${b}]`, expected: `0 <= length and length + ${snew} new tokens <= the cache capacity ${capacity(b)}`, received: `${lens[b]}` });
    }
  }
  if (paged) {
    for (const [b, table] of o.blockTable!.entries()) {
      const bad = table.findIndex((x) => x < 0 || x >= kc.shape[0]);
      if (bad >= 0) throw new SdpaRangeError(fn, { argument: `opts.blockTable[${b}][${bad}]`, expected: `a page index in [0, ${kc.shape[0]})`, received: `${table[bad]}` });
    }
  }
  if (snew > 0) {
    // Every check before the first write: a float16 opts.v must not leave opts.k in the cache.
    if (o.k!.dtype !== kc.dtype) throw new SdpaTypeError(fn, { argument: 'opts.k.dtype', expected: `${kc.dtype} (the cache's dtype)`, received: o.k!.dtype });
    if (o.v!.dtype !== vc.dtype) throw new SdpaTypeError(fn, { argument: 'opts.v.dtype', expected: `${vc.dtype} (the cache's dtype)`, received: o.v!.dtype });
  }
  // Element offset of token `t` of sequence `b` in a cache (through the page table when paged).
  const slotOf = (cache: Tensor) => (b: number, t: number): number =>
    paged
      ? cache.offset + o.blockTable![b][Math.floor(t / pageSize)] * cache.strides[0] + (t % pageSize) * cache.strides[1]
      : cache.offset + b * cache.strides[0] + t * cache.strides[1];
  // The whole attention call is built and validated (q, options, the views over the caches) before
  // the append, so a call that throws for its input leaves both caches bit-identical.
  const plan = planKvcache(fn, o, qt, kc, vc, lens, snew, paged, slotOf);
  // An aborted call writes nothing: checked before the append, and the append is undone if the attention is aborted (or fails).
  if (o.signal?.aborted) throw new SdpaAbortError(fn, 'queued', o.signal.reason);
  const undo: (() => void)[] = [];
  try {
    if (snew > 0) {
      undo.push(appendRows(kc, o.k!, (b, t) => slotOf(kc)(b, lens[b] + t)));
      undo.push(appendRows(vc, o.v!, (b, t) => slotOf(vc)(b, lens[b] + t)));
    }
    return await plan.run();
  } catch (err) {
    for (const u of undo.reverse()) u();
    throw err;
  }
}

/**
 * The attention step of {@link flashAttnWithKvcache}, planned before the new tokens are in the
 * cache: the tensors it will read (views of the caches, or buffers gathered after the append) and
 * the sdpa options, validated now through the same path the call takes. `run()` gathers (paged or
 * non-mergeable caches) and attends.
 */
function planKvcache(fn: string, o: KvcacheOptions, qt: Tensor, kc: Tensor, vc: Tensor, lens: Int32Array, snew: number, paged: boolean, slotOf: (cache: Tensor) => (b: number, t: number) => number): { run(): Promise<Tensor | AttentionWithLse> } {
  const B = qt.shape[0], Sq = qt.shape[1];
  const total = Int32Array.from(lens, (x) => x + snew);
  const maxLen = Math.max(...total);
  if (maxLen === 0) throw new SdpaRangeError(fn, { argument: 'opts.cacheSeqlens', expected: 'at least one sequence with a key to attend', received: 'all lengths 0' });
  const fills: (() => void)[] = [];
  const releases: (() => void)[] = [];
  const release = (): void => void releases.splice(0).forEach((r) => r());
  let kSeq = kc, vSeq = vc; // [B, >= maxLen, Hkv, D]
  if (paged) {
    // Pages are scattered: each sequence's valid tokens are gathered once into [B, maxLen, Hkv, D] (after the append).
    const gather = (cache: Tensor): Tensor => {
      const [, , H, D] = cache.shape;
      const data = gatherBuffer(cache, B * maxLen * H * D, releases);
      fills.push(() => {
        const src = cache.data!;
        const slot = slotOf(cache);
        const [, sTok, sHead, sDim] = cache.strides;
        const pageSize = cache.shape[1];
        // A page's tokens are one contiguous run when each token's [H, D] is dense and tokens follow
        // each other: copied with one set() per page (memcpy speed). Element by element, a decode
        // step over 32k fp16 keys took 0.76 s, all of it blocking the event loop.
        const dense = sDim === 1 && sHead === D && sTok === H * D;
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < total[b]; ) {
            const from = slot(b, t), to = (b * maxLen + t) * H * D;
            if (dense) {
              const n = Math.min(pageSize - (t % pageSize), total[b] - t);
              data.set(src.subarray(from, from + n * H * D), to);
              t += n;
            } else {
              for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) data[to + h * D + d] = src[from + h * sHead + d * sDim];
              t += 1;
            }
          }
        }
      });
      return new Tensor({ shape: [B, maxLen, H, D], dtype: cache.dtype, data });
    };
    kSeq = gather(kc);
    vSeq = gather(vc);
  }
  const ev = vc.shape[3], hq = qt.shape[2];
  let q: Tensor, k: Tensor, v: Tensor, blocks: BiasBlocks | undefined;
  let mapOut: (t: Tensor) => Tensor = bhsdToBshd;
  let mapLse: ((t: Tensor) => Tensor) | undefined;
  if (total.every((x) => x === maxLen)) {
    // Equal lengths: plain views [B, H, L, D] of the cache's first maxLen tokens, no block structure.
    q = bshdToBhsd(qt);
    k = bshdToBhsd(narrowView(kSeq, 1, 0, maxLen));
    v = bshdToBhsd(narrowView(vSeq, 1, 0, maxLen));
  } else {
    // Ragged lengths: all sequences side by side in one row, each a block over its own keys.
    const flat = (t: Tensor, isCache: boolean): Tensor => {
      const m = mergeDimsView(t, 0);
      if (m) return m;
      const copy = new Tensor({ shape: t.shape, dtype: t.dtype, data: new (t.data!.constructor as new (n: number) => Float32Array | Uint16Array)(t.size) });
      const fill = (): void => void (copy.data as Float32Array | Uint16Array).set(t.contiguousData() as Float32Array | Uint16Array);
      // A cache is copied after the append (it must hold the new tokens); q now.
      if (isCache) fills.push(fill);
      else fill();
      return mergeDimsView(copy, 0)!;
    };
    const Lc = kSeq.shape[1];
    blocks = {
      qStart: Int32Array.from({ length: B }, (_, b) => b * Sq),
      qLen: new Int32Array(B).fill(Sq),
      kvStart: Int32Array.from({ length: B }, (_, b) => b * Lc),
      kvLen: total,
    };
    q = packedToBhsd(flat(qt, false));
    k = packedToBhsd(flat(kSeq, true));
    v = packedToBhsd(flat(vSeq, true));
    mapOut = (out) => {
      const p = bhsdToPacked(out); // [B·Sq, H, Dv] → [B, Sq, H, Dv]
      return new Tensor({ shape: [B, Sq, hq, ev], dtype: p.dtype, data: p.data, strides: [Sq * p.strides[0], p.strides[0], p.strides[1], p.strides[2]], offset: p.offset });
    };
    mapLse = (l) => new Tensor({ shape: [B, hq, Sq], dtype: 'float32', data: l.data, strides: [Sq, B * Sq, 1] });
  }
  // Validation of the attention call itself (q's dtype and head dim against the cache, the options): throws now, before any write.
  try {
    advancedParams(fn, q, k, v, flashSdpaOptions(o, q.shape[2], k.shape[2], q.shape[1], k.shape[1], blocks), o.returnLse ?? false);
  } catch (e) {
    release();
    throw e;
  }
  return {
    async run() {
      try {
        for (const f of fills) f();
        const r = await attendBhsd(fn, q, k, v, o, blocks);
        return wrapResult(r, o.returnLse, mapOut, mapLse);
      } finally {
        release();
      }
    },
  };
}

/**
 * The buffer a paged cache is gathered into, kept with the cache between calls: a decode loop
 * gathers every step, and a fresh buffer each step (tens of MiB at long L) cost more in page
 * faults and garbage collection than the copy itself (L = 32768 fp16: 90 ms a step against ~10 ms
 * for the attention). A buffer in use by a running call is never handed out again until that call
 * ends (`releases`); concurrent calls on one cache get buffers of their own.
 */
const gatherBuffers = new WeakMap<Tensor, { data: Float32Array | Uint16Array; busy: boolean }>();
function gatherBuffer(cache: Tensor, n: number, releases: (() => void)[]): Float32Array | Uint16Array {
  const Ctor = cache.data!.constructor as new (n: number) => Float32Array | Uint16Array;
  let slot = gatherBuffers.get(cache);
  if (slot && (slot.busy || slot.data.constructor !== Ctor)) return new Ctor(n); // in use (or retyped): a one-off buffer
  if (!slot || slot.data.length < n) {
    // Grown with headroom so a decode loop (one more token a step) reallocates rarely.
    slot = { data: new Ctor(Math.ceil(n * 1.25)), busy: false };
    gatherBuffers.set(cache, slot);
  }
  const held = slot;
  held.busy = true;
  releases.push(() => void (held.busy = false));
  return held.data.subarray(0, n);
}
