/**
 * The shared run path of both parts: lay q/k/v/mask out as the 4-D feeds the graph expects
 * (zero-copy where the layouts already agree), fetch or create the session for the call's graph
 * key, run it and wrap the result as the call's output tensor.
 */
import { float32ArrayToHalfBits, halfBitsToFloat32Array } from '../../src/dtype.js';
import { BackendFaultError } from '../../src/errors.js';
import { outerOffsets } from '../../src/cpu/layout.js';
import type { AttentionParams, RunContext } from '../../src/dispatch/types.js';
import { Tensor } from '../../src/tensor.js';
import { buildAttentionModel, graphKey, type AttentionGraphSpec, type AttentionOp, type GraphFloat } from './graph.js';
import type { OrtModuleLike, OrtSessionLike, OrtSessionOptions, OrtTensorLike } from './ort-types.js';
import { loadOnnxSchema } from './runtime.js';
import { SessionCache, type SessionLease } from './session-cache.js';
import { mathReferenceRows } from '../math/cpu.js';

/** One process-wide cache for both parts (the key carries the execution provider). */
export const sessionCache = new SessionCache(16);

/** Creates a session from model bytes; replaceable by tests to inject failures. */
export type SessionFactory = (ort: OrtModuleLike, model: Uint8Array, options: OrtSessionOptions, key: string) => Promise<OrtSessionLike>;

const defaultFactory: SessionFactory = (ort, model, options) => ort.InferenceSession.create(model, options);
let sessionFactory: SessionFactory = defaultFactory;

/** @internal Test hook: replaces session creation (undefined restores the default). */
export function setSessionFactoryForTesting(f: SessionFactory | undefined): void {
  sessionFactory = f ?? defaultFactory;
}

/** How a part runs attention on its engine. */
export interface EngineConfig {
  readonly ort: OrtModuleLike;
  /** Execution provider name: `cpu` (onnxruntime-node), `wasm`, `webgpu`. */
  readonly ep: string;
  readonly label: string;
  /** The one-node graph's op (the part's kernel variant chose it). */
  readonly op: AttentionOp;
  /** MultiHeadAttention's `unidirectional` is trusted only for S == L: otherwise causal becomes a mask. */
  readonly causalAttrOnlySquare: boolean;
  /** Feed bool masks as additive float (0 / -inf): MultiHeadAttention takes only float biases. */
  readonly boolMaskAsFloat: boolean;
  /** Zero rows that see no key in JavaScript (engines not verified to return zeros there). */
  readonly zeroFullyMaskedRows: boolean;
  /** Feed float16 as float16 (else widen to float32 and round the result back). */
  readonly nativeFp16?: boolean;
}

/**
 * The element type the graph computes in. bfloat16 always runs as float32 (no ORT kernel takes it);
 * float16 runs natively only where the part asks for it: the CPU EP's fp16 `Attention` keeps
 * intermediates in fp16 and was measured up to 7.6e-3 off the float64 reference (parity case
 * q[2,6,17,8], scale 1.02), beyond our fp16 contract of float32 accumulation.
 */
export function graphDtype(p: AttentionParams, nativeFp16 = false): GraphFloat {
  return p.dtype === 'float16' && nativeFp16 ? 'float16' : 'float32';
}

/** `[batch, heads, rows, cols]` of an input: leading batch dims flattened, missing head dim = 1. */
function dims4(t: Tensor): [number, number, number, number] {
  const s = t.shape;
  const r = s.length;
  let b = 1;
  for (let i = 0; i < r - 3; i++) b *= s[i];
  return [b, r >= 3 ? s[r - 3] : 1, s[r - 2], s[r - 1]];
}

/**
 * `a`, or a copy of it when its memory is a SharedArrayBuffer or a resizable ArrayBuffer:
 * onnxruntime-node reads a feed's bytes through N-API's ArrayBuffer accessor, which rejects shared
 * memory ("Invalid argument" from session.run, on every call), and a resizable buffer could shrink
 * while the session reads it. One O(N) copy next to ORT's O(S·L) scores.
 */
function unshared<T extends Float32Array | Uint16Array | Uint8Array>(a: T): T {
  const b = a.buffer as ArrayBufferLike & { resizable?: boolean };
  const shared = typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
  return shared || b.resizable === true ? (a.slice() as T) : a;
}

/** Data of q/k/v in the graph dtype, row-major: the tensor's own storage when already so. */
function feedData(t: Tensor, g: GraphFloat): Float32Array | Uint16Array {
  if (t.dtype !== 'float32' && g === 'float32') return t.toFloat32Sync(); // upcast: exact, O(N)
  if (t.dtype !== g) throw new Error(`feedData: ${t.dtype} input for a ${g} graph`);
  return unshared(t.contiguousData() as Float32Array | Uint16Array); // same dtype: shared when contiguous
}

interface MaskFeed {
  data: Float32Array | Uint16Array | Uint8Array;
  dims: [number, number, number, number];
  kind: 'bool' | 'float';
}

/**
 * The mask as a 4-D `[Bm, Hm, S, L]` feed (Bm ∈ {1, batch}, Hm ∈ {1, Hq}): ORT requires the last two
 * dims to be exactly S and L (measured: a broadcast S or L dim fails in attention_helper.h), while
 * leading dims may broadcast. Shared with the caller's tensor when it is already laid out so; else
 * gathered. A causal diagonal that the op's attribute cannot express is folded in here.
 */
function maskFeed(p: AttentionParams, g: GraphFloat, cfg: EngineConfig, causalInMask: boolean): MaskFeed | undefined {
  const off = causalInMask ? p.causal?.diagonalOffset : undefined;
  if (!p.mask && off === undefined) return undefined;
  const { s: S, l: L } = p;
  const nb = p.batchShape.length;
  const st = p.mask?.strides;
  const bBroadcast = !st || st.slice(0, nb).every((x) => x === 0);
  const hBroadcast = !st || st[nb] === 0;
  const Bm = bBroadcast ? 1 : p.batch;
  const Hm = hBroadcast ? 1 : p.hq;
  const asFloat = p.mask ? p.mask.kind === 'float' || cfg.boolMaskAsFloat : cfg.boolMaskAsFloat;
  const kind: 'bool' | 'float' = asFloat ? 'float' : 'bool';
  const n = Bm * Hm * S * L;

  // Zero-copy: same element type, and the tensor is dense with exactly Bm·Hm·S·L elements — then its
  // row-major layout is [Bm, Hm, S, L] (its non-broadcast dims, in order, with S and L innermost).
  if (p.mask && off === undefined) {
    const t = p.mask.tensor;
    const sameType = (p.mask.kind === 'bool' && kind === 'bool') || (p.mask.kind === 'float' && t.dtype === g);
    if (sameType && t.data && t.isContiguous && t.size === n && t.shape[t.shape.length - 1] === L && (t.shape.length < 2 || t.shape[t.shape.length - 2] === S)) {
      return { data: unshared(t.contiguousData() as Float32Array | Uint16Array | Uint8Array), dims: [Bm, Hm, S, L], kind };
    }
  }

  // Gather (and convert) into [Bm, Hm, S, L].
  const vals = new Float32Array(n); // float view of the result; bool: 1 visible / 0 hidden
  if (p.mask && st) {
    const t = p.mask.tensor;
    const src = t.dtype === 'float32' || t.dtype === 'bool' ? (t.data as Float32Array | Uint8Array) : halfBitsToFloat32Array(t.data as Uint16Array, t.dtype as 'float16' | 'bfloat16');
    const bases = outerOffsets([...p.batchShape, p.hq], st.slice(0, nb + 1), t.offset);
    const rs = st[nb + 1], cs = st[nb + 2];
    const isBool = p.mask.kind === 'bool';
    for (let b = 0; b < Bm; b++)
      for (let h = 0; h < Hm; h++) {
        const base = bases[b * p.hq + h];
        const o = (b * Hm + h) * S * L;
        for (let i = 0; i < S; i++)
          for (let j = 0; j < L; j++) {
            const m = src[base + i * rs + j * cs];
            vals[o + i * L + j] = isBool ? (asFloat ? (m ? 0 : -Infinity) : m) : m;
          }
      }
  } else if (!asFloat) vals.fill(1);
  if (off !== undefined) {
    const hidden = asFloat ? -Infinity : 0;
    for (let bh = 0; bh < Bm * Hm; bh++) for (let i = 0; i < S; i++) for (let j = Math.max(0, i + off + 1); j < L; j++) vals[bh * S * L + i * L + j] = hidden;
  }
  const data = !asFloat ? Uint8Array.from(vals) : g === 'float32' ? vals : float32ArrayToHalfBits(vals, 'float16');
  return { data, dims: [Bm, Hm, S, L], kind };
}

/** Rows (flat batch·Hq·S) whose every key is hidden by the mask feed. */
function fullyMaskedRows(p: AttentionParams, m: MaskFeed): Uint8Array | undefined {
  const { s: S, l: L } = p;
  const [Bm, Hm] = m.dims;
  let any = false;
  const rows = new Uint8Array(p.batch * p.hq * S);
  const f = m.kind === 'float' ? (m.data instanceof Uint16Array ? halfBitsToFloat32Array(m.data, 'float16') : (m.data as Float32Array)) : undefined;
  for (let b = 0; b < p.batch; b++)
    for (let h = 0; h < p.hq; h++) {
      const mb = ((Bm === 1 ? 0 : b) * Hm + (Hm === 1 ? 0 : h)) * S * L;
      for (let i = 0; i < S; i++) {
        let visible = false;
        for (let j = 0; j < L && !visible; j++) visible = f ? f[mb + i * L + j] !== -Infinity : m.data[mb + i * L + j] !== 0;
        if (!visible) {
          rows[(b * p.hq + h) * S + i] = 1;
          any = true;
        }
      }
    }
  return any ? rows : undefined;
}

/**
 * Calls com.microsoft.GroupQueryAttention serves exactly (on a float32 graph): upper-left causal
 * with S = L, no mask, Ev = E, and a head dim that is a multiple of 8 (ORT 1.30 refuses others:
 * "head_size must be a multiple of 8").
 */
export function usesGqaOp(p: AttentionParams): boolean {
  return p.causal?.diagonalOffset === 0 && p.s === p.l && !p.mask && p.ev === p.e && p.e % 8 === 0 && p.dropoutP === 0;
}

/** Runs the call on the configured engine; engine failures become {@link BackendFaultError}. */
export async function runOrtAttention(p: AttentionParams, ctx: RunContext, cfg: EngineConfig): Promise<Tensor> {
  const g = graphDtype(p, cfg.nativeFp16);
  const offset = p.causal?.diagonalOffset;
  const causalAttr = offset === 0 && (!cfg.causalAttrOnlySquare || p.s === p.l);
  const causalInMask = offset !== undefined && !causalAttr;
  const mask = maskFeed(p, g, cfg, causalInMask);
  const op: AttentionOp = cfg.op;
  const spec: { -readonly [K in keyof AttentionGraphSpec]: AttentionGraphSpec[K] } = {
    op,
    dtype: g,
    causal: causalAttr,
    // float32 graphs take a custom scale as an input (one session for every scale); float16 graphs keep the attribute (a float16 scale input would round it).
    scale: p.scaleIsDefault ? undefined : g === 'float32' ? 'input' : p.scale,
    mask: mask ? mask.kind : 'none',
    heads: op === 'Attention' ? undefined : p.hq,
    kvHeads: op === 'GroupQueryAttention' ? p.hkv : undefined,
    headDim: op === 'Attention' ? undefined : p.e,
  };
  if (op === 'GroupQueryAttention') spec.causal = false; // implied by the op; keeps the key canonical
  const key = `${cfg.ep}|${graphKey(spec)}`;
  let lease: SessionLease;
  try {
    lease = await sessionCache.acquire(key, async () => {
      const onnx = await loadOnnxSchema();
      const model = buildAttentionModel(onnx, spec);
      return sessionFactory(cfg.ort, model, { executionProviders: [cfg.ep], graphOptimizationLevel: 'all', logSeverityLevel: 3 }, key);
    });
  } catch (err) {
    throw new BackendFaultError(`${cfg.label} could not create a session for ${key}: ${firstLine(err)}`, { cause: err });
  }
  const T = cfg.ort.Tensor;
  const typeName = g;
  const feeds: Record<string, OrtTensorLike> = {
    [spec.scale === 'input' ? 'q_in' : 'q']: new T(typeName, feedData(p.q, g), dims4(p.q)),
    k: new T(typeName, feedData(p.k, g), dims4(p.k)),
    v: new T(typeName, feedData(p.v, g), dims4(p.v)),
  };
  if (mask) feeds.mask = new T(mask.kind === 'bool' ? 'bool' : typeName, mask.data, mask.dims);
  if (spec.scale === 'input') feeds.scale = new T('float32', Float32Array.of(p.scale), []);
  if (op === 'GroupQueryAttention') {
    feeds.seqlens_k = new T('int32', new Int32Array(dims4(p.q)[0]).fill(p.l - 1), [dims4(p.q)[0]]);
    feeds.total_sequence_length = new T('int32', Int32Array.of(p.l), []);
  }
  ctx.recordAllocation(p.batch * p.hq * p.s * (p.l + p.ev) * 4);
  let y: OrtTensorLike;
  // A session run cannot be interrupted from here: an abort is honoured up to its start (RunContext.signal).
  if (ctx.signal?.aborted) {
    lease.done();
    ctx.signal.throwIfAborted();
  }
  try {
    y = (await lease.session.run(feeds)).y;
  } catch (err) {
    throw new BackendFaultError(`${cfg.label} failed while running ${key}: ${firstLine(err)}`, { cause: err });
  } finally {
    lease.done();
  }
  const shape = [...p.q.shape.slice(0, -1), p.ev];
  let data = toOutputData(y.data, g);
  if (cfg.zeroFullyMaskedRows && mask) {
    const rows = fullyMaskedRows(p, mask);
    if (rows) {
      for (let r = 0; r < rows.length; r++) if (rows[r]) data.fill(0, r * p.ev, (r + 1) * p.ev);
    }
  }
  if (g === 'float32') zeroAllMinusInfinityRows(p, data as Float32Array);
  if (p.dtype !== 'float32' && g === 'float32') data = float32ArrayToHalfBits(data as Float32Array, p.dtype);
  return new Tensor({ shape, dtype: p.dtype, data });
}

/**
 * onnxruntime's softmax turns a row whose every score is −∞ from the data (a −∞ in k, not a mask)
 * into NaN, where PyTorch 2.5+ and every other backend here give zeros (safe softmax). Only rows
 * that came back NaN are looked at: each is recomputed with the float64 reference (O(L·(E+Ev))
 * per row), and zeroed when the reference row is all zeros, i.e. no key had a finite score. A NaN
 * input still gives NaN (its reference row is NaN).
 */
function zeroAllMinusInfinityRows(p: AttentionParams, out: Float32Array): void {
  const ev = p.ev;
  const nanRows: number[] = [];
  for (let r = 0; r * ev < out.length; r++) {
    for (let j = r * ev; j < (r + 1) * ev; j++) {
      if (out[j] !== out[j]) {
        nanRows.push(r);
        break;
      }
    }
  }
  if (nanRows.length === 0 || p.dropoutP > 0) return;
  const ref = mathReferenceRows(p, nanRows);
  nanRows.forEach((r, i) => {
    for (let j = 0; j < ev; j++) if (ref[i * ev + j] !== 0) return;
    out.fill(0, r * ev, (r + 1) * ev);
  });
}

const F16 = (globalThis as { Float16Array?: abstract new (...a: never[]) => ArrayLike<number> }).Float16Array;

/** The session's output as our storage: shared for Float32Array / Uint16Array, re-encoded for Float16Array. */
function toOutputData(d: unknown, g: GraphFloat): Float32Array | Uint16Array {
  if (g === 'float32' && d instanceof Float32Array) return d;
  if (g === 'float16' && d instanceof Uint16Array) return d;
  if (g === 'float16' && F16 && d instanceof F16) return float32ArrayToHalfBits(d as ArrayLike<number>, 'float16');
  throw new BackendFaultError(`onnxruntime returned ${Object.prototype.toString.call(d)} for a ${g} output`);
}

function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0].slice(0, 400);
}
