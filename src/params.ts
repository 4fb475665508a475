/**
 * Validation and normalisation of one `sdpa` call. Everything about the inputs is checked here,
 * before any backend runs, and turned into {@link AttentionParams}: the one fact sheet that
 * constraints read and kernels run on.
 */
import { z } from 'zod';
import { CausalBias, StructuredBias, isAttentionBias, type AttentionBias } from './bias.js';
import { FLOAT_DTYPES, type FloatDType } from './dtype.js';
import { SdpaRangeError, SdpaTypeError, describeValue } from './errors.js';
import { Tensor, shapeSize, type Device } from './tensor.js';
// Foreign tensors (onnxruntime's, registered by its backend) are accepted as q/k/v/mask.
import { adaptForeignTensor, type OrtTensorLike } from './tensor-adapters.js';
import type { AlibiInfo, AttentionParams, BlockDiagonalInfo, CausalInfo, MaskInfo, WindowInfo } from './dispatch/types.js';

/** Options of {@link sdpa} and {@link explainDispatch} (PyTorch's keyword arguments, camelCased). */
export interface SdpaOptions {
  /**
   * Bool (1 = may attend) or additive float mask broadcastable to `[..., Hq, S, L]` (a library or
   * an onnxruntime tensor), or a causal bias object.
   */
  attnMask?: Tensor | OrtTensorLike | AttentionBias;
  /** Probability of dropping an attention weight, 0 <= p < 1. */
  dropoutP?: number;
  /** Upper-left causal mask (query i sees keys j <= i), ANDed with `attnMask`. */
  isCausal?: boolean;
  /** Multiplier of q·k; default 1/sqrt(E). */
  scale?: number;
  /** Grouped-query attention: Hq a multiple of Hkv. */
  enableGqa?: boolean;
  /** Dropout seed, an unsigned 32-bit integer; default 0. */
  seed?: number;
  /** Where CPU-resident inputs are computed; default `cpu` (or the inputs' device when they live on a GPU). */
  device?: Device;
  /**
   * Cancels the call: queued work never starts, running CPU work stops between blocks (native
   * thread-pool jobs, TypeScript row blocks), GPU work is not submitted; the promise rejects with
   * `SdpaAbortError` (name `AbortError`) and nothing the caller can see is written.
   */
  signal?: AbortSignal;
  /**
   * Checks the result: `rows` sampled query rows (first and last included; default 16) are
   * recomputed with the float64 reference and compared within the kernel's own tolerance; a
   * disagreement throws `SdpaVerifyError`. The cost is in `lastDispatch().verify`.
   */
  verify?: boolean | VerifyOptions;
  /** Plain calls return the output tensor; `returnWeights: true` ({@link SdpaWeightsOptions}) returns `{ out, weights }`. */
  returnWeights?: false;
}

/** Options of `verify`. */
export interface VerifyOptions {
  /** Query rows (over the flat batch·Hq·S rows) to recompute; default 16, first and last always among them. */
  rows?: number;
}

/**
 * Options of a call that returns the attention weights beside the output (`nn.MultiheadAttention`'s
 * `need_weights=True`): only backends that materialize the S×L probabilities can (MATH on cpu);
 * the others say so in their reasons.
 */
export type SdpaWeightsOptions = Omit<SdpaOptions, 'returnWeights'> & { returnWeights: true };

/** What `sdpa` runs besides the params: the caller's signal and the verify row count. */
export interface CallOptions {
  readonly signal: AbortSignal | undefined;
  /** Rows to verify (undefined: no check). */
  readonly verifyRows: number | undefined;
}

/** Rows `verify: true` recomputes. */
export const DEFAULT_VERIFY_ROWS = 16;

/** Option names and what each expects, for messages. */
const OPTION_EXPECTED: Record<keyof SdpaOptions, string> = {
  attnMask: 'a Tensor (bool or float) or an attention bias (causalUpperLeft()/causalLowerRight(), StructuredBias)',
  dropoutP: 'a number in [0, 1)',
  isCausal: 'a boolean',
  scale: 'a finite number',
  enableGqa: 'a boolean',
  seed: 'an integer in [0, 2^32 - 1]',
  device: "'cpu' or 'webgpu'",
  signal: 'an AbortSignal (from an AbortController)',
  verify: 'true, false or { rows: n } with n a positive integer',
  returnWeights: 'a boolean',
};

/** The JS type each option takes; a value of that type that still fails is out of range. */
const OPTION_JS_TYPE: Record<keyof SdpaOptions, string> = {
  attnMask: 'a Tensor or bias (never a typeof result: any failure is a type error)',
  dropoutP: 'number',
  isCausal: 'boolean',
  scale: 'number',
  enableGqa: 'boolean',
  seed: 'number',
  device: 'string',
  signal: 'an AbortSignal (never a typeof result: any failure is a type error)',
  verify: 'object',
  returnWeights: 'boolean',
};

const optionsSchema = z.strictObject({
  attnMask: z.custom<Tensor | AttentionBias>((x) => x instanceof Tensor || isAttentionBias(x)).optional(),
  dropoutP: z.number().min(0).lt(1).optional(),
  isCausal: z.boolean().optional(),
  scale: z.number().refine(Number.isFinite).optional(),
  enableGqa: z.boolean().optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  device: z.enum(['cpu', 'webgpu']).optional(),
  signal: z.custom<AbortSignal>((x) => typeof AbortSignal !== 'undefined' && x instanceof AbortSignal).optional(),
  verify: z.union([z.boolean(), z.strictObject({ rows: z.number().int().min(1).optional() })]).optional(),
  returnWeights: z.boolean().optional(),
});

const tensorSchema = z.custom<Tensor>((x) => x instanceof Tensor);

/** Snake-case spellings users bring from PyTorch, mapped to ours for a helpful message. */
const PYTORCH_NAMES: Record<string, string> = {
  attn_mask: 'attnMask',
  dropout_p: 'dropoutP',
  is_causal: 'isCausal',
  enable_gqa: 'enableGqa',
};

/** Turns zod's first issue into one of our input errors with argument/expected/received. */
function optionsError(fn: string, issues: readonly z.core.$ZodIssue[], input: Record<string, unknown>): Error {
  const issue = issues[0];
  // Unknown keys at the top level are unknown options; inside an option (verify: { … }) they are its error.
  if (issue.code === 'unrecognized_keys' && issue.path.length === 0) {
    const key = issue.keys[0];
    const hint = PYTORCH_NAMES[key] ? ` (PyTorch's ${key} is ${PYTORCH_NAMES[key]} here)` : '';
    return new SdpaTypeError(fn, {
      argument: `opts.${key}`,
      expected: `one of the options ${Object.keys(OPTION_EXPECTED).join(', ')}${hint}`,
      received: `an unknown option ${JSON.stringify(key)}`,
    });
  }
  const key = String(issue.path[0]) as keyof SdpaOptions;
  const value = input[key];
  const details = { argument: `opts.${key}`, expected: OPTION_EXPECTED[key] ?? issue.message, received: describeValue(value) };
  // The right JS type with a wrong value (NaN, 1.5 for an integer, 'cuda') is a range error.
  return typeof value === OPTION_JS_TYPE[key] ? new SdpaRangeError(fn, details) : new SdpaTypeError(fn, details);
}

/**
 * The own enumerable properties of an options object, copied into an object without a prototype:
 * reading an option that was not given then finds nothing, even when `Object.prototype` has been
 * given a property of that name (`Object.prototype.isCausal = true` must not make calls causal).
 */
export function ownOptions<T extends object>(opts: T): T {
  const out = Object.create(null) as T;
  for (const key of Object.keys(opts)) (out as Record<string, unknown>)[key] = (opts as Record<string, unknown>)[key];
  return out;
}

/**
 * The plain options (numbers, booleans, the device) and the values optionsSchema accepts for each,
 * checked without zod: a decode step's `{ enableGqa: true }` is validated on every generated token,
 * and zod's parse was ~30% of buildCall's time there (more after a call that evicted the caches).
 * Any other key, or a value that fails here, goes through zod, whose errors are the messages.
 */
const PLAIN_OPTIONS: Partial<Record<keyof SdpaOptions, (x: unknown) => boolean>> = {
  dropoutP: (x) => typeof x === 'number' && x >= 0 && x < 1,
  isCausal: (x) => typeof x === 'boolean',
  scale: (x) => typeof x === 'number' && Number.isFinite(x),
  enableGqa: (x) => typeof x === 'boolean',
  seed: (x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 2 ** 32 - 1,
  device: (x) => x === 'cpu' || x === 'webgpu',
  returnWeights: (x) => typeof x === 'boolean',
};

/** `opts` (a prototype-free copy) when every key is a plain option with a valid value, else undefined. */
function plainOptions(opts: Record<string, unknown>): SdpaOptions | SdpaWeightsOptions | undefined {
  for (const key of Object.keys(opts)) {
    const value = opts[key];
    if (value === undefined) {
      delete opts[key]; // as zod's optional(): given as undefined means not given
      continue;
    }
    const ok = Object.hasOwn(PLAIN_OPTIONS, key) ? PLAIN_OPTIONS[key as keyof SdpaOptions] : undefined;
    if (!ok || !ok(value)) return undefined;
  }
  return opts as SdpaOptions | SdpaWeightsOptions;
}

/** Validates the options object (zod; plain options directly, with the same rules); returns it typed, with own properties only (see {@link ownOptions}). */
export function parseOptions(fn: string, rawOpts: unknown): SdpaOptions | SdpaWeightsOptions {
  if (rawOpts === undefined) return ownOptions({});
  if (rawOpts === null || typeof rawOpts !== 'object' || Array.isArray(rawOpts)) {
    throw new SdpaTypeError(fn, { argument: 'opts', expected: 'an options object or undefined', received: describeValue(rawOpts) });
  }
  // One read of each property (getters run once): both paths work on this copy.
  const own = ownOptions(rawOpts as Record<string, unknown>);
  return plainOptions(own) ?? parseOptionsWithSchema(fn, own);
}

/** @internal parseOptions through zod alone (every option, the error messages); a test holds the plain path to it. */
export function parseOptionsWithSchema(fn: string, rawOpts: object): SdpaOptions | SdpaWeightsOptions {
  const opts: { attnMask?: unknown; verify?: unknown } = ownOptions(rawOpts);
  if (typeof opts.verify === 'object' && opts.verify !== null && !Array.isArray(opts.verify)) opts.verify = ownOptions(opts.verify);
  const rawMask = opts.attnMask;
  const foreignMask = adaptForeignTensor(fn, 'opts.attnMask', rawMask);
  if (foreignMask) opts.attnMask = foreignMask;
  // zod reads each schema key with a plain property access: give it the prototype-free copy.
  const r = optionsSchema.safeParse(opts);
  if (!r.success) throw optionsError(fn, r.error.issues, opts as Record<string, unknown>);
  const parsed = ownOptions(r.data) as SdpaOptions | SdpaWeightsOptions;
  // Keys zod fills with undefined are dropped so `'x' in opts` means "given".
  for (const key of Object.keys(parsed) as (keyof typeof parsed)[]) if (parsed[key] === undefined) delete parsed[key];
  if (typeof parsed.verify === 'object') parsed.verify = ownOptions(parsed.verify);
  return parsed;
}

function checkTensorArg(fn: string, name: string, x: unknown): Tensor {
  const foreign = adaptForeignTensor(fn, name, x);
  if (foreign) return foreign;
  if (!tensorSchema.safeParse(x).success) {
    throw new SdpaTypeError(fn, { argument: name, expected: 'a Tensor created with tensor() or tensor.fromFloat32()', received: describeValue(x) });
  }
  const t = x as Tensor;
  // Disposed (a webgpu buffer back in the pool would read another tensor's data), detached or resized: refused here, before dispatch.
  t.assertUsable(fn, name);
  return t;
}

const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Broadcast strides of `mask` over the score layout `target` (= [...batch, Hq, S, L]), or an
 * error when the shapes cannot broadcast. Broadcast dims get stride 0: nothing is copied.
 */
function maskStrides(fn: string, mask: Tensor, target: readonly number[]): number[] {
  const r = mask.shape.length;
  const t = target.length;
  const bad = (): never => {
    throw new SdpaTypeError(fn, {
      argument: 'opts.attnMask',
      expected: `a shape broadcastable to the scores ${fmtShape(target)} ([..., Hq, S, L])`,
      received: `shape ${fmtShape(mask.shape)}`,
    });
  };
  if (r > t) bad();
  const strides = new Array<number>(t).fill(0);
  for (let i = 0; i < r; i++) {
    const md = mask.shape[r - 1 - i];
    const td = target[t - 1 - i];
    if (md === td) strides[t - 1 - i] = md === 1 ? 0 : mask.strides[r - 1 - i];
    else if (md === 1) strides[t - 1 - i] = 0;
    else bad();
  }
  return strides;
}

/**
 * Validates q, k, v and the options and returns the call's {@link AttentionParams}.
 * Throws {@link SdpaTypeError} / {@link SdpaRangeError} naming the argument at fault.
 */
export function buildParams(fn: string, q: unknown, k: unknown, v: unknown, rawOpts: unknown): AttentionParams {
  return buildCall(fn, q, k, v, rawOpts).params;
}

/** {@link buildParams} plus what the call runs with: its AbortSignal and how many rows to verify. */
export function buildCall(fn: string, q: unknown, k: unknown, v: unknown, rawOpts: unknown): { params: AttentionParams; call: CallOptions } {
  const opts = parseOptions(fn, rawOpts);
  const params = buildFacts(fn, q, k, v, opts);
  const verifyRows = opts.verify === undefined || opts.verify === false ? undefined : opts.verify === true ? DEFAULT_VERIFY_ROWS : (opts.verify.rows ?? DEFAULT_VERIFY_ROWS);
  if (verifyRows !== undefined) {
    // The reference recomputes rows from the values: GPU-resident tensors would need a read-back of every input.
    const resident = ([['q', params.q], ['k', params.k], ['v', params.v], ['opts.attnMask', params.mask?.tensor]] as const).find(([, t]) => t !== undefined && t.device !== 'cpu');
    if (resident) throw new SdpaTypeError(fn, { argument: 'opts.verify', expected: 'CPU-resident q, k, v and mask (the float64 reference reads their values)', received: `${resident[0]} on ${resident[1]!.device}` });
  }
  return { params, call: { signal: opts.signal, verifyRows } };
}

function buildFacts(fn: string, q: unknown, k: unknown, v: unknown, opts: SdpaOptions | SdpaWeightsOptions): AttentionParams {
  const qt = checkTensorArg(fn, 'q', q);
  const kt = checkTensorArg(fn, 'k', k);
  const vt = checkTensorArg(fn, 'v', v);

  for (const [name, t] of [['q', qt], ['k', kt], ['v', vt]] as const) {
    if (!(FLOAT_DTYPES as readonly string[]).includes(t.dtype)) {
      throw new SdpaTypeError(fn, { argument: `${name}.dtype`, expected: 'float32, float16 or bfloat16', received: t.dtype });
    }
    if (t.shape.length < 2) {
      throw new SdpaTypeError(fn, { argument: `${name}.shape`, expected: 'at least 2 dims ([..., Hq, S, E])', received: fmtShape(t.shape) });
    }
    t.shape.forEach((d, i) => {
      if (d < 1) throw new SdpaRangeError(fn, { argument: `${name}.shape[${i}]`, expected: 'a positive size (empty tensors have nothing to attend)', received: `${d} in ${fmtShape(t.shape)}` });
    });
  }
  for (const [name, t] of [['k', kt], ['v', vt]] as const) {
    if (t.dtype !== qt.dtype) throw new SdpaTypeError(fn, { argument: `${name}.dtype`, expected: `${qt.dtype} (the dtype of q)`, received: t.dtype });
    if (t.shape.length !== qt.shape.length) {
      throw new SdpaTypeError(fn, { argument: `${name}.shape`, expected: `rank ${qt.shape.length} like q ${fmtShape(qt.shape)}`, received: `rank ${t.shape.length} ${fmtShape(t.shape)}` });
    }
  }
  const rank = qt.shape.length;
  const batchShape = qt.shape.slice(0, Math.max(0, rank - 3));
  for (const [name, t] of [['k', kt], ['v', vt]] as const) {
    batchShape.forEach((d, i) => {
      if (t.shape[i] !== d) throw new SdpaTypeError(fn, { argument: `${name}.shape[${i}]`, expected: `${d} (batch dim of q ${fmtShape(qt.shape)})`, received: `${t.shape[i]} in ${fmtShape(t.shape)}` });
    });
  }
  const headDim = rank - 3;
  const hq = rank >= 3 ? qt.shape[headDim] : 1;
  const hkv = rank >= 3 ? kt.shape[headDim] : 1;
  const [s, e] = qt.shape.slice(-2);
  const [l, ek] = kt.shape.slice(-2);
  const [lv, ev] = vt.shape.slice(-2);
  if (ek !== e) throw new SdpaTypeError(fn, { argument: `k.shape[${rank - 1}]`, expected: `${e} (the head dim E of q)`, received: `${ek} in ${fmtShape(kt.shape)}` });
  if (lv !== l) throw new SdpaTypeError(fn, { argument: `v.shape[${rank - 2}]`, expected: `${l} (the key length L of k)`, received: `${lv} in ${fmtShape(vt.shape)}` });
  if (rank >= 3 && vt.shape[headDim] !== hkv) {
    throw new SdpaTypeError(fn, { argument: `v.shape[${headDim}]`, expected: `${hkv} (the heads of k)`, received: `${vt.shape[headDim]} in ${fmtShape(vt.shape)}` });
  }
  const enableGqa = opts.enableGqa ?? false;
  if (hq !== hkv) {
    if (!enableGqa) {
      throw new SdpaTypeError(fn, {
        argument: `k.shape[${headDim}]`,
        expected: `${hq} heads like q (or enableGqa: true with Hq a multiple of Hkv)`,
        received: `${hkv} in ${fmtShape(kt.shape)}`,
      });
    }
    if (hq % hkv !== 0) {
      throw new SdpaTypeError(fn, { argument: `k.shape[${headDim}]`, expected: `a divisor of the ${hq} query heads (grouped-query attention)`, received: `${hkv} in ${fmtShape(kt.shape)}` });
    }
  }

  // Device: device-resident inputs fix it; CPU inputs follow opts.device (default cpu).
  const resident = [qt, kt, vt].filter((t) => t.device !== 'cpu');
  let device: Device = opts.device ?? resident[0]?.device ?? 'cpu';
  for (const [name, t] of [['q', qt], ['k', kt], ['v', vt]] as const) {
    if (t.device !== 'cpu' && t.device !== device) {
      throw new SdpaTypeError(fn, { argument: 'opts.device', expected: `'${t.device}' (where ${name} lives) or omitted`, received: `'${device}'` });
    }
  }
  if (resident.length > 0) device = resident[0].device;

  const target = [...batchShape, hq, s, l];
  let mask: MaskInfo | undefined;
  let bias: { variant: 'upper-left' | 'lower-right'; diagonalOffset: number } | undefined;
  let structured: Pick<AttentionParams, 'window' | 'alibi' | 'softcap' | 'blockDiagonal'> = {};
  let m = opts.attnMask;
  if (m instanceof StructuredBias) {
    const sb = m;
    if (sb.seqLenQ !== s || sb.seqLenKv !== l) {
      throw new SdpaTypeError(fn, { argument: 'opts.attnMask', expected: `a structured bias for S=${s}, L=${l} (from q and k)`, received: `${sb}` });
    }
    structured = structuredFacts(fn, sb, batchShape, hq);
    // Without blocks a causal rule is the plain causal fact, so backends that know only causal serve it.
    if (sb.causal && !sb.blocks) bias = { variant: sb.alignment, diagonalOffset: sb.alignment === 'upper-left' ? 0 : l - s };
    m = sb.mask;
  }
  if (m instanceof Tensor) {
    checkTensorArg(fn, 'opts.attnMask', m);
    const okDtype = m.dtype === 'bool' || m.dtype === 'float32' || m.dtype === qt.dtype;
    if (!okDtype) {
      throw new SdpaTypeError(fn, { argument: 'opts.attnMask.dtype', expected: qt.dtype === 'float32' ? 'bool or float32' : `bool, float32 or ${qt.dtype} (the dtype of q)`, received: m.dtype });
    }
    if (m.device !== 'cpu' && m.device !== device) {
      throw new SdpaTypeError(fn, { argument: 'opts.attnMask', expected: `a tensor on cpu or ${device}`, received: `a tensor on ${m.device}` });
    }
    mask = { kind: m.dtype === 'bool' ? 'bool' : 'float', tensor: m, strides: maskStrides(fn, m, target) };
  } else if (m instanceof CausalBias) {
    if (m.seqLenQ !== s || m.seqLenKv !== l) {
      throw new SdpaTypeError(fn, { argument: 'opts.attnMask', expected: `a causal bias for S=${s}, L=${l} (from q and k)`, received: `${m.variant} bias for S=${m.seqLenQ}, L=${m.seqLenKv}` });
    }
    bias = { variant: m.variant, diagonalOffset: m.diagonalOffset };
  }

  let causal: CausalInfo | undefined;
  if (opts.isCausal && bias) {
    // Both alignments ANDed: the stricter diagonal wins; lower-right is looser whenever L >= S.
    causal = bias.variant === 'upper-left' || l >= s
      ? { variant: 'upper-left', diagonalOffset: 0 }
      : { variant: 'both', diagonalOffset: l - s };
  } else if (opts.isCausal) causal = { variant: 'upper-left', diagonalOffset: 0 };
  else if (bias) causal = { variant: bias.variant, diagonalOffset: bias.diagonalOffset };

  return Object.freeze({
    q: qt,
    k: kt,
    v: vt,
    batchShape: Object.freeze(batchShape),
    batch: shapeSize(batchShape),
    hq,
    hkv,
    s,
    l,
    e,
    ev,
    dtype: qt.dtype as FloatDType,
    maskKind: mask ? mask.kind : 'none',
    mask,
    causal,
    scale: opts.scale ?? 1 / Math.sqrt(e),
    scaleIsDefault: opts.scale === undefined,
    dropoutP: opts.dropoutP ?? 0,
    seed: opts.seed ?? 0,
    enableGqa,
    gqaGroup: hq / hkv,
    device,
    ...structured,
    ...(opts.returnWeights ? { needWeights: true } : {}),
  });
}

/** The AttentionParams facts of a structured bias, validated against the call's heads and batch. */
function structuredFacts(fn: string, sb: StructuredBias, batchShape: readonly number[], hq: number): Pick<AttentionParams, 'window' | 'alibi' | 'softcap' | 'blockDiagonal'> {
  const out: { window?: WindowInfo; alibi?: AlibiInfo; softcap?: number; blockDiagonal?: BlockDiagonalInfo } = {};
  if (sb.window) out.window = Object.freeze({ left: sb.window[0], right: sb.window[1], alignment: sb.alignment });
  if (sb.alibiSlopes) {
    // Per-batch slopes index the flat batch, or the block under a block-diagonal bias (varlen).
    const rows = sb.blocks ? sb.blocks.qLen.length : shapeSize(batchShape);
    const n = sb.alibiSlopes.length;
    if (n !== hq && n !== rows * hq) {
      throw new SdpaTypeError(fn, {
        argument: 'opts.attnMask.alibiSlopes',
        expected: `${hq} slopes (one per query head) or ${rows * hq} (${sb.blocks ? 'blocks' : 'batch'} ${rows} × heads ${hq})`,
        received: `${n} slopes`,
      });
    }
    out.alibi = Object.freeze({ slopes: sb.alibiSlopes, perBatch: n !== hq, alignment: sb.alignment });
  }
  if (sb.softcap !== undefined) out.softcap = sb.softcap;
  if (sb.blocks) out.blockDiagonal = Object.freeze({ ...sb.blocks, causal: sb.causal, alignment: sb.alignment });
  return out;
}

/** One line describing the inputs, for logs and the "nothing eligible" error. */
/**
 * The diagonals that bound the keys query row i sees, from causal and a sliding window together:
 * key j is visible when `i + lower <= j <= i + upper` (−Infinity / Infinity where unbounded); the
 * upper one is the nearer of causal and the window's right edge. Kernels on every device read
 * windows through it (FLASH (cpu) as a key slice, the WGSL kernels as two diagonals).
 */
export function keyBand(p: Pick<AttentionParams, 's' | 'l' | 'causal' | 'window'>): { lower: number; upper: number } {
  const w = p.window;
  const off = w?.alignment === 'lower-right' ? p.l - p.s : 0;
  return {
    lower: w ? off - w.left : -Infinity,
    upper: Math.min(p.causal ? p.causal.diagonalOffset : Infinity, w ? off + w.right : Infinity),
  };
}

export function describeParams(p: AttentionParams): string {
  const parts = [
    `q ${fmtShape(p.q.shape)}`,
    `k ${fmtShape(p.k.shape)}`,
    `v ${fmtShape(p.v.shape)}`,
    p.dtype,
    `mask ${p.mask ? `${p.mask.kind} ${fmtShape(p.mask.tensor.shape)}` : 'none'}`,
    `causal ${p.causal ? p.causal.variant : 'no'}`,
    `dropout ${p.dropoutP}`,
    `scale ${+p.scale.toPrecision(6)}${p.scaleIsDefault ? ' (default)' : ''}`,
  ];
  if (p.gqaGroup > 1) parts.push(`gqa ${p.hq}:${p.hkv}`);
  if (p.window) parts.push(`window [${p.window.left}, ${p.window.right}] ${p.window.alignment}`);
  if (p.alibi) parts.push(`alibi ${p.alibi.slopes.length} slopes`);
  if (p.softcap !== undefined) parts.push(`softcap ${p.softcap}`);
  if (p.blockDiagonal) parts.push(`block-diagonal ${p.blockDiagonal.qLen.length} blocks${p.blockDiagonal.causal ? ` causal ${p.blockDiagonal.alignment}` : ''}`);
  if (p.needWeights) parts.push('returnWeights');
  parts.push(`device ${p.device}`);
  return parts.join(', ');
}
