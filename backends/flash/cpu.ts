/**
 * FLASH_ATTENTION on the CPU: the native C++ kernels (`csrc/`) — query blocks × key blocks with an
 * online softmax, no S×L buffer, AMX tiles for bfloat16/float16, AVX-512 / AVX2 / scalar fp32 —
 * each a kernel variant judged by the dispatcher from the addon's kernel table (ISA, shape rules). The addon reads q/k/v/mask in place through per-head
 * base offsets and strides; the kernel runs on the addon's thread pool, off the event loop.
 * After them, the same C++ compiled to WebAssembly SIMD (relaxed-SIMD FMA where the engine has
 * it): what serves in browsers and in Node when the addon is missing (backends/flash/wasm/).
 */
import { BackendFaultError } from '../../src/errors.js';
import { FULL_SEMANTICS_CAPS } from '../../src/dispatch/caps.js';
import { named, checkScaleFitsFloat32 } from '../../src/dispatch/constraints.js';
import type { AttentionParams, Availability, BackendPart, Constraint, KernelVariant, RunContext } from '../../src/dispatch/types.js';
import { headView, maskView } from '../../src/cpu/layout.js';
import { keyBand } from '../../src/params.js';
import { Tensor } from '../../src/tensor.js';
import { loadNative, NATIVE_DTYPE, type NativeAttentionArgs, type NativeKernelInfo, type NativeLoadResult, type NativeMaskDType } from './native.js';
import type { WasmJob } from './wasm/abi.js';
import { WASM_KERNELS, wasmKernel } from './wasm/kernel.js';
import { initWasm, wasmFeatures, wasmUnavailable } from './wasm/runtime.js';

/** Largest head dim (E and Ev) the CPU flash part accepts; per-thread scratch grows linearly with it. */
export const FLASH_CPU_MAX_HEAD_DIM = 1024;

/** A tensor whose last dim is contiguous (the kernel reads rows as vectors); copies only when it is not. */
function rowContiguous(t: Tensor): Tensor {
  if (t.strides[t.strides.length - 1] === 1 || t.shape[t.shape.length - 1] === 1) return t;
  return new Tensor({ shape: t.shape, dtype: t.dtype, data: t.contiguousData() });
}

const MASK_DTYPE: Readonly<Record<string, NativeMaskDType>> = { bool: 0, float32: 1, float16: 2, bfloat16: 3 };

/** The addon arguments for `p`, writing into `out` (contiguous `[...batch, Hq, S, Ev]`). */
export function buildNativeArgs(p: AttentionParams, out: Float32Array | Uint16Array, numThreads = 0, rows?: RowChunk): NativeAttentionArgs {
  return { ...buildKernelArgs(p, numThreads, rows), out };
}

/**
 * The kernel arguments for `p` without the output (the native addon's and the wasm kernel's); with
 * `rows`, for the query rows [i0, i1) only (a windowed call in row chunks: {@link windowChunks}),
 * whose output is then `[bh, i1 - i0, Ev]`.
 */
export function buildKernelArgs(p: AttentionParams, numThreads = 0, rows?: RowChunk): Omit<NativeAttentionArgs, 'out'> {
  const q = rowContiguous(p.q), k = rowContiguous(p.k), v = rowContiguous(p.v);
  const qv = headView(q), kv = headView(k), vv = headView(v);
  const args: Omit<NativeAttentionArgs, 'out'> = {
    dtype: NATIVE_DTYPE[p.dtype],
    q: q.data as Float32Array | Uint16Array,
    k: k.data as Float32Array | Uint16Array,
    v: v.data as Float32Array | Uint16Array,
    bh: p.batch * p.hq,
    hq: p.hq,
    hkv: p.hkv,
    s: p.s,
    l: p.l,
    e: p.e,
    ev: p.ev,
    qBase: qv.bases,
    kvBaseK: kv.bases,
    kvBaseV: vv.bases,
    qRowStride: qv.rowStride,
    kRowStride: kv.rowStride,
    vRowStride: vv.rowStride,
    causal: p.causal !== undefined,
    diagonalOffset: p.causal?.diagonalOffset ?? 0,
    scale: p.scale,
    dropoutP: p.dropoutP, // a double end to end (the kernel's threshold is dropoutP·2^24, exact)
    seed: p.seed >>> 0,
    numThreads,
  };
  const mv = maskView(p);
  if (p.mask && mv) {
    args.maskKind = p.mask.kind === 'bool' ? 1 : 2;
    args.maskDType = MASK_DTYPE[p.mask.tensor.dtype];
    args.mask = p.mask.tensor.data as Uint8Array | Float32Array | Uint16Array;
    args.maskBase = mv.bases;
    args.maskStrideS = mv.rowStride;
    args.maskStrideL = mv.colStride;
  }
  const [i0, i1] = rows ?? [0, p.s];
  if (i0 !== 0 || i1 !== p.s) {
    // A chunk of query rows: q (and a mask's rows) read from row i0 on.
    args.s = i1 - i0;
    args.qBase = shiftBases(qv.bases, i0 * qv.rowStride);
    if (mv && args.maskBase) args.maskBase = shiftBases(mv.bases, i0 * mv.rowStride);
  }
  const w = windowSlice(p, i0, i1);
  if (w) {
    // The kernels see only the keys [lo, lo + len): the K/V (and mask) base offsets move to lo.
    args.l = w.len;
    args.kvBaseK = shiftBases(kv.bases, w.lo * kv.rowStride);
    args.kvBaseV = shiftBases(vv.bases, w.lo * vv.rowStride);
    if (args.maskBase) args.maskBase = shiftBases(args.maskBase as Float64Array, w.lo * (mv?.colStride ?? 0));
    args.causal = w.causalOffset !== undefined;
    args.diagonalOffset = w.causalOffset ?? 0;
    if (w.lowerOffset !== undefined) {
      // Rows whose window starts inside the slice: a bool mask [S, len] shared by every head.
      const lower = w.lowerOffset, len = w.len, n = i1 - i0;
      const m = new Uint8Array(n * len);
      for (let i = 0; i < n; i++) m.fill(1, i * len + Math.max(0, Math.min(len, i + lower)), (i + 1) * len);
      args.maskKind = 1;
      args.maskDType = 0;
      args.mask = m;
      args.maskBase = new Float64Array(p.batch * p.hq);
      args.maskStrideS = len;
      args.maskStrideL = 1;
    }
  }
  return args;
}

/** Offset tables moved by `by` elements (a chunk of rows, a slice of keys). */
const shiftBases = (t: Float64Array, by: number): Float64Array => t.map((x) => x + by);

/**
 * How FLASH (cpu) runs a sliding window (`StructuredBias` with `window`): the kernels know causal
 * diagonals and masks, not windows, so the keys no row can see are cut off (K/V read from `lo`,
 * `len` keys: a decode step reads only its window of the cache), the upper edge becomes the causal
 * diagonal (it has the same form, key j' <= i' + causalOffset) and a lower edge that still cuts into
 * the slice for some rows (prefill, or S > 1) becomes a bool mask of rows·len bytes. A long windowed
 * prefill runs in chunks of query rows ({@link windowChunks}), each with its own slice: the kernels
 * then skip the keys left of a chunk's windows, and each mask stays small.
 */
export interface WindowSlice {
  /** First key the kernel reads, and how many. */
  readonly lo: number;
  readonly len: number;
  /** The kernel's causal diagonal in the slice, undefined when every row sees up to the slice's end. */
  readonly causalOffset: number | undefined;
  /** Row i' sees keys j' >= i' + lowerOffset of the slice; undefined when every row sees from its start. */
  readonly lowerOffset: number | undefined;
}

/** Query rows [i0, i1) of one kernel call. */
export type RowChunk = readonly [number, number];

/** Lower-edge mask bytes (rows·len) above which a windowed call is split into row chunks. */
export const WINDOW_CHUNK_MASK_BYTES = 2 ** 20;

/** The slice a window leaves to the kernels for query rows [i0, i1) ({@link WindowSlice}), or undefined without a window. */
export function windowSlice(p: AttentionParams, i0 = 0, i1 = p.s): WindowSlice | undefined {
  if (!p.window) return undefined;
  const L = p.l;
  const n = i1 - i0;
  // Row i sees keys j with i + w <= j <= i + u (w may be -Infinity, u Infinity), and 0 <= j < L.
  const { lower: w, upper: u } = keyBand(p);
  // Dropout's pattern is keyed by the key's index: with dropout the slice keeps key 0 as its first
  // (only the keys past every row's end are cut), so each key keeps its index and its draw.
  const lo = p.dropoutP > 0 ? 0 : Math.max(0, i0 + w);
  const hi = Math.min(L - 1, i1 - 1 + u);
  if (hi < lo) {
    // No row sees any key: one key, behind a diagonal no row reaches (the kernels then write zeros).
    return { lo: 0, len: 1, causalOffset: -n - 1, lowerOffset: undefined };
  }
  const len = hi - lo + 1;
  // Local row i' = i - i0, key j' = j - lo. The first row has the lowest upper bound: the diagonal
  // matters iff it ends before the slice does; the last row the highest lower bound: the edge
  // matters iff it starts after the slice does.
  const up = i0 + u - lo, down = i0 + w - lo;
  return { lo, len, causalOffset: up < len - 1 ? up : undefined, lowerOffset: n - 1 + down > 0 ? down : undefined };
}

/**
 * The row chunks a call runs in: one, [0, S), unless a window's lower edge would need a mask of
 * more than WINDOW_CHUNK_MASK_BYTES; then chunks of rows sized so each chunk's mask fits. Not with
 * dropout, whose draws are keyed by the query row (a chunk renumbers its rows).
 */
export function windowChunks(p: AttentionParams): RowChunk[] {
  const whole = windowSlice(p);
  if (!whole || whole.lowerOffset === undefined || p.dropoutP > 0 || p.s * whole.len <= WINDOW_CHUNK_MASK_BYTES) return [[0, p.s]];
  // A chunk of r rows reads at most r + width - 1 keys (width: the keys one row sees, at most L), so
  // its mask is about r·(r + width) bytes: r from that quadratic, in multiples of 64 rows.
  const width = Math.min(p.l, p.window!.left + p.window!.right + 1);
  const fit = (Math.sqrt(width * width + 4 * WINDOW_CHUNK_MASK_BYTES) - width) / 2;
  const rows = Math.max(64, Math.min(p.s, Math.floor(fit / 64) * 64));
  const chunks: RowChunk[] = [];
  for (let i0 = 0; i0 < p.s; i0 += rows) chunks.push([i0, Math.min(p.s, i0 + rows)]);
  return chunks;
}

/** A window FLASH (cpu) can run: its lower edge needs no mask, or one that needs no combining with the call's own mask. */
const checkWindow: Constraint = named('checkWindow', (p: AttentionParams) => {
  const w = windowSlice(p);
  if (!w || w.lowerOffset === undefined) return undefined;
  if (p.mask) return `flash (cpu) runs a sliding window whose lower edge cuts into the kept keys (S=${p.s} > 1 rows start at different keys) as a mask of its own, and cannot combine it with the call's attention mask; EFFICIENT_ATTENTION applies both`;
  const bytes = p.s * w.len;
  if (p.dropoutP > 0 && bytes > WINDOW_MASK_MAX_BYTES) {
    return `flash (cpu) runs a sliding window with dropout in one piece (dropout's draws are keyed by row and key), its lower edge as an S×L bool mask of ${p.s}×${w.len} = ${(bytes / 2 ** 20).toFixed(0)} MiB here, above its ${WINDOW_MASK_MAX_BYTES / 2 ** 20} MiB limit; EFFICIENT_ATTENTION applies windows by rule`;
  }
  return undefined;
});

/** Largest lower-edge mask a windowed call with dropout (one chunk) may build; above it FLASH (cpu) declines. */
export const WINDOW_MASK_MAX_BYTES = 64 * 2 ** 20;

/**
 * Runs a call in its row chunks ({@link windowChunks}) through `runRows`, which runs one kernel
 * call over the given rows (all of them when undefined) and returns its output `[bh, rows, Ev]`;
 * the chunks one after another (each uses every thread), placed row by row into `[..., S, Ev]`.
 * The native and the wasm kernels share it.
 */
export async function runInRowChunks(p: AttentionParams, ctx: RunContext, runRows: (rows: RowChunk | undefined) => Promise<Float32Array | Uint16Array>): Promise<Tensor> {
  const shape = [...p.q.shape.slice(0, -1), p.ev];
  const chunks = windowChunks(p);
  if (chunks.length === 1) return new Tensor({ shape, dtype: p.dtype, data: await runRows(undefined) });
  const n = p.batch * p.hq * p.s * p.ev, bhCount = p.batch * p.hq;
  const out = p.dtype === 'float32' ? new Float32Array(n) : new Uint16Array(n);
  for (const c of chunks) {
    ctx.signal?.throwIfAborted();
    const part = await runRows(c);
    const m = (c[1] - c[0]) * p.ev;
    for (let bh = 0; bh < bhCount; bh++) (out as Float32Array).set((part as Float32Array).subarray(bh * m, (bh + 1) * m), (bh * p.s + c[0]) * p.ev);
  }
  return new Tensor({ shape, dtype: p.dtype, data: out });
}

/**
 * The native kernels this package's addon provides, in priority order, with the ISA each belongs
 * to (`SDPA_CPU_ISA` pins by ISA). The addon's own table (`kernels()`) holds their requirements
 * and shape rules; a test keeps this list and that table equal.
 */
export const NATIVE_KERNELS: readonly { readonly name: string; readonly isa: 'amx' | 'avx512' | 'avx2' | 'scalar' }[] = [
  // Decode (at most 16 queries per head, split-KV): ahead of the prefill kernels for the calls it takes.
  { name: 'decode_avx512_bf16', isa: 'avx512' },
  { name: 'decode_avx512', isa: 'avx512' },
  { name: 'decode_avx2', isa: 'avx2' },
  { name: 'amx_bf16', isa: 'amx' },
  { name: 'amx_fp16_split', isa: 'amx' },
  { name: 'avx512_bf16', isa: 'avx512' },
  { name: 'avx512_fp32', isa: 'avx512' },
  { name: 'avx2_fp32', isa: 'avx2' },
  { name: 'decode_scalar', isa: 'scalar' },
  { name: 'scalar_fp32', isa: 'scalar' },
];

const ISAS = ['scalar', 'avx2', 'avx512', 'amx', 'wasm'] as const;

/** The wasm kernel's job: the native arguments (offset tables as Float64Array), without `out`. */
function wasmJob(p: AttentionParams, rows?: RowChunk): WasmJob {
  const { maskBase, ...a } = buildKernelArgs(p, 0, rows);
  return {
    ...a,
    dtype: a.dtype as 0 | 1 | 2,
    qBase: a.qBase as Float64Array,
    kvBaseK: a.kvBaseK as Float64Array,
    kvBaseV: a.kvBaseV as Float64Array,
    maskKind: a.maskKind ?? 0,
    maskDType: a.maskDType ?? 0,
    ...(maskBase ? { maskBase: maskBase as Float64Array } : {}),
    maskStrideS: a.maskStrideS ?? 0,
    maskStrideL: a.maskStrideL ?? 0,
    causal: a.causal ?? false,
    diagonalOffset: a.diagonalOffset ?? 0,
    scale: a.scale ?? 1 / Math.sqrt(p.e),
    dropoutP: a.dropoutP ?? 0,
    seed: a.seed ?? 0,
  };
}

// The addon's kernel table and CPU brand, read once per loaded addon: both are fixed for the
// process, and nativeInfo runs for every rule of every native variant on every sdpa() call —
// building the table through N-API each time was ~2 ms of a call's JS time (CPU profile, S = 16).
const addonTables = new WeakMap<object, { kernels: readonly NativeKernelInfo[]; brand: string }>();

/** A native kernel's table entry and what it means here, or why there is none. */
type NativeInfo = { info: NativeKernelInfo; availability: Availability } | { error: string; availability: Availability };
/**
 * nativeInfo's answers per load result (loadNative's, kept for the process), by kernel name: every
 * dispatch asks ~5 times per kernel, and none of the answers changes while that result stands.
 */
const infoMemo = new WeakMap<object, Map<string, NativeInfo>>();

/** The addon's table entry of `name` with its availability, or why there is none. */
function nativeInfo(name: string): NativeInfo {
  const r = loadNative();
  let memo = infoMemo.get(r);
  if (!memo) infoMemo.set(r, (memo = new Map()));
  let found = memo.get(name);
  if (!found) memo.set(name, (found = readNativeInfo(r, name)));
  return found;
}

function readNativeInfo(r: NativeLoadResult, name: string): NativeInfo {
  const missingEntry = (error: string): NativeInfo => ({ error, availability: { available: false, reason: error } });
  if (!r.ok) return missingEntry(`${name} needs the native addon: ${r.error}`);
  let t = addonTables.get(r.native);
  if (!t) {
    t = { kernels: r.native.kernels(), brand: r.native.cpuFeatures().brand.trim() || 'this CPU' };
    addonTables.set(r.native, t);
  }
  const info = t.kernels.find((k) => k.name === name);
  if (!info) return missingEntry(`${name} is not in this build of the native addon (${r.path}); rebuild it with \`npm rebuild sdpa-dispatch\``);
  const { missing } = info;
  const availability: Availability = missing.length === 0
    ? { available: true }
    : { available: false, reason: `${name} needs ${missing.join(', ')}; this CPU (${t.brand}) lacks ${missing.length > 1 ? 'them' : 'it'}` };
  return { info, availability };
}

function tableRule(name: string, rule: (k: NativeKernelInfo, p: AttentionParams) => string | undefined, check: string): Constraint {
  return named(check, (p: AttentionParams) => {
    const n = nativeInfo(name);
    return 'info' in n ? rule(n.info, p) : undefined;
  });
}

/** One native kernel as a variant of FLASH (cpu): its rules are the addon table's, judged here. */
function nativeKernel(name: string, isa: string): KernelVariant {
  return {
    name,
    summary: name.startsWith('decode_')
      ? `native ${isa} decode kernel, chosen for S <= 16 queries per head: a GQA group's query heads share each K/V row and the keys are split across threads (memory-bound; see capabilities())`
      : `native ${isa} kernel (see capabilities() for the addon's description)`,
    program: { kind: 'native', entry: 'flashAttention', isa },
    availability: () => nativeInfo(name).availability,
    constraints: [
      tableRule(name, (k, p) => (k.dtypes.includes(p.dtype) ? undefined : `${name} runs ${k.dtypes.join(', ')} inputs, got ${p.dtype}`), 'checkKernelDtype'),
      tableRule(
        name,
        (k, p) =>
          p.e % k.eMultiple === 0 && p.ev % k.evMultiple === 0 && p.e <= k.maxHeadDim && p.ev <= k.maxHeadDim
            ? undefined
            : `${name} needs head dims that tile (E a multiple of ${k.eMultiple}, Ev of ${k.evMultiple}, both <= ${k.maxHeadDim}), got E=${p.e}, Ev=${p.ev}`,
        'checkKernelHeadDims',
      ),
      tableRule(name, (k, p) => (k.maxQueries === undefined || p.s <= k.maxQueries ? undefined : `${name} is a decode kernel for at most ${k.maxQueries} queries per head, got S=${p.s}`), 'checkKernelQueries'),
      tableRule(
        name,
        (k, p) => (k.minKeys === 0 || p.l >= k.minKeys ? undefined : `${name} is used from ${k.minKeys} keys on (below that the next kernel measured faster), got L=${p.l}`),
        'checkKernelMinKeys',
      ),
    ],
    run: (p, ctx) => runNative(p, ctx, name),
    describe() {
      const n = nativeInfo(name);
      return 'info' in n ? { ...n.info } : { error: n.error };
    },
  };
}

/**
 * Multiply-adds (batch·Hq·S·L·(E+Ev)) up to which a native call runs on the JS thread instead of
 * the worker pool: 2^17 is the decode shape B=1, Hq=32, S=1, L=16, D=128, ~15 µs with AVX2/AVX-512
 * on one core and ~0.15 ms even for the scalar kernel at 1 GMAC/s, while the hop to libuv's thread,
 * the kernel pool's wake-up and the completion back on the loop cost ~0.1–0.3 ms
 * (scripts/probes/call-overhead.mjs, docs/performance-cpu.md). Larger calls stay off the loop.
 */
export const NATIVE_INLINE_MAX_MACS = 2 ** 17;

/**
 * K/V bytes up to which a decode call (S ≤ {@link NATIVE_INLINE_POOL_MAX_S}) runs on the JS thread
 * with the thread pool's workers joining it, instead of being queued to libuv's thread: 32 MiB is
 * fp32 L=4096 or fp16 L=8192 at H=32, Hkv=8, D=128, 0.4–2 ms of kernel on 2 cores at 17–40 GB/s.
 * There the hop to libuv's thread and the completion back on the loop, and the JS work that a
 * queued call's two busy kernel threads delay on a 2-core machine, cost about as much as the
 * kernel (sdpa() 1.57 ms against 0.92 ms for the addon's own call at fp32 L=4096: docs/performance-cpu.md).
 * The event loop is held for the kernel's time, a few ms at most.
 */
export const NATIVE_INLINE_POOL_MAX_BYTES = 32 * 2 ** 20;
/** Query rows per head up to which {@link NATIVE_INLINE_POOL_MAX_BYTES} applies (decode calls). */
export const NATIVE_INLINE_POOL_MAX_S = 16;

/**
 * Where a native call runs: `caller` — on the calling thread alone ({@link NATIVE_INLINE_MAX_MACS});
 * `pool` — on the calling thread with the pool's workers when the pool is free (a decode call up
 * to {@link NATIVE_INLINE_POOL_MAX_BYTES} of K/V); `queued` — on libuv's thread, off the event loop.
 */
export function nativeRunMode(p: AttentionParams): 'caller' | 'pool' | 'queued' {
  if (p.batch * p.hq * p.s * p.l * (p.e + p.ev) <= NATIVE_INLINE_MAX_MACS) return 'caller';
  const kvBytes = p.batch * p.hkv * p.l * (p.e + p.ev) * (p.dtype === 'float32' ? 4 : 2);
  return p.s <= NATIVE_INLINE_POOL_MAX_S && kvBytes <= NATIVE_INLINE_POOL_MAX_BYTES ? 'pool' : 'queued';
}

/** Whether `p` runs on the calling thread ({@link nativeRunMode} `caller` or `pool`). */
export function nativeRunsInline(p: AttentionParams): boolean {
  return nativeRunMode(p) !== 'queued';
}

function runNative(p: AttentionParams, ctx: RunContext, kernel: string): Promise<Tensor> {
  return runInRowChunks(p, ctx, (rows) => runNativeRows(p, ctx, kernel, rows));
}

/** One kernel call over the query rows `rows` (all of them when undefined); its output `[bh, rows, Ev]`. */
async function runNativeRows(p: AttentionParams, ctx: RunContext, kernel: string, rows: RowChunk | undefined): Promise<Float32Array | Uint16Array> {
  const loaded = loadNative();
  if (!loaded.ok) throw new BackendFaultError(`flash (cpu): ${loaded.error}`);
  ctx.signal?.throwIfAborted();
  const nRows = rows ? rows[1] - rows[0] : p.s;
  const n = p.batch * p.hq * nRows * p.ev;
  const out = p.dtype === 'float32' ? new Float32Array(n) : new Uint16Array(n);
  const args: NativeAttentionArgs = buildNativeArgs(p, out, 0, rows);
  args.kernel = kernel;
  const native = loaded.native;
  const fault = (e: unknown): BackendFaultError =>
    // Arguments were validated before dispatch, so a failure here is the engine's (e.g. out of memory).
    new BackendFaultError(`flash (cpu): native kernel ${kernel} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  const mode = rows ? 'queued' : nativeRunMode(p);
  if (mode !== 'queued') {
    // Small: run here (no signal can fire meanwhile, no input can change). A bad argument is a bug
    // of buildNativeArgs and throws as before; only the kernel's own failure becomes a fault.
    if (mode === 'pool') args.inlinePool = true;
    let ws: number;
    try {
      ws = native.flashAttentionRun(args, true).workspaceBytes;
    } catch (e) {
      // The addon throws only TypeError/RangeError for arguments, a plain Error for the kernel's failure.
      if (e instanceof TypeError || e instanceof RangeError) throw e;
      throw fault(e);
    }
    ctx.recordAllocation(out.byteLength + ws * native.numThreads());
    return out;
  }
  // The signal maps onto the addon's cancel word: the thread pool stops handing out jobs once it is set.
  const signal = ctx.signal;
  if (signal) args.cancel = new Int32Array(1);
  // Bad arguments throw here, synchronously, as they are (a bug of buildNativeArgs, not a fault).
  const run = native.flashAttentionRun(args, false);
  ctx.recordAllocation(out.byteLength + run.workspaceBytes * native.numThreads());
  const onAbort = signal ? (): void => void Atomics.store(args.cancel!, 0, 1) : undefined;
  if (signal) signal.addEventListener('abort', onAbort!, { once: true });
  try {
    await run.done;
  } catch (e) {
    // Cancelled between jobs: the output is partial and is dropped; dispatch reports the abort.
    if (signal?.aborted) throw e;
    throw fault(e);
  } finally {
    if (signal) signal.removeEventListener('abort', onAbort!);
  }
  return out;
}

/**
 * The kernel reads q/k/v/mask in place on other threads while the event loop runs on. The addon
 * keeps each buffer's memory alive until the call ends, so a detach cannot free it, and
 * SharedArrayBuffers are read in place; but a resizable ArrayBuffer that shrinks decommits its
 * pages under the kernel, so the addon refuses those and FLASH says so here instead of faulting.
 */
const checkFixedLengthBuffers: Constraint = named('checkFixedLengthBuffers', (p: AttentionParams) => {
  const named_ = [['q', p.q], ['k', p.k], ['v', p.v], ['attnMask', p.mask?.tensor]] as const;
  const bad = named_.find(([, t]) => t?.data !== undefined && (t.data.buffer as ArrayBuffer & { resizable?: boolean }).resizable === true);
  return bad ? `flash (cpu) reads its inputs in place off the event loop and needs fixed-length buffers; ${bad[0]} is over a resizable ArrayBuffer (it could shrink under the kernel); copy it (new Float32Array(x)) or use EFFICIENT_ATTENTION` : undefined;
});

/** FLASH_ATTENTION's CPU part (native addon kernels). */
export const flashCpu: BackendPart = {
  device: 'cpu',
  label: 'flash (cpu)',
  caps: {
    ...FULL_SEMANTICS_CAPS,
    window: true,
    maxHeadDim: FLASH_CPU_MAX_HEAD_DIM,
    notes: 'native C++ (AMX-BF16 tiles for bfloat16/float16, AVX-512/AVX2/scalar fp32), or the same C++ as WebAssembly SIMD on workers (browsers, Node without the addon); query × key blocks, online softmax, per-thread scratch only; a sliding window reads only the keys some row sees (its upper edge as the causal diagonal, a ragged lower edge as an S×L bool mask)',
  },
  // Available when the addon loads or a wasm kernel can run; each kernel then gives its own reason.
  availability() {
    const r = loadNative();
    if (r.ok) return { available: true };
    const why = WASM_KERNELS.map((k) => wasmUnavailable(k.name, k.simd));
    if (why.some((w) => w === undefined)) return { available: true };
    return { available: false, reason: `flash (cpu) is unavailable: ${r.error}; ${why.join('; ')}` };
  },
  async init() {
    loadNative();
    await initWasm();
  },
  constraints: [checkScaleFitsFloat32('flash (cpu)'), checkFixedLengthBuffers, checkWindow],
  kernels: [...NATIVE_KERNELS.map((k) => nativeKernel(k.name, k.isa)), ...WASM_KERNELS.map((k) => wasmKernel(k.name, k.simd, wasmJob, runInRowChunks))],
  envPin: {
    variable: 'SDPA_CPU_ISA',
    values: ISAS,
    kernelsFor: (v) =>
      v === 'wasm' ? WASM_KERNELS.map((k) => k.name) : (ISAS as readonly string[]).includes(v) ? NATIVE_KERNELS.filter((k) => k.isa === v).map((k) => k.name) : undefined,
  },
  tolerance: {
    // fp32 scores carry a rounding error of |logit|·2^-24: with the conformance case's logits of
    // ~2.6e3 that is ~1.6e-4 in the exponent, which any fp32 kernel (PyTorch's too) shows.
    float32: { atol: 2e-4, rtol: 1e-3 },
    float16: { atol: 1e-3, rtol: 2e-3 },
    bfloat16: { atol: 1e-2, rtol: 1.6e-2 },
  },
  describe() {
    const r = loadNative();
    const f = wasmFeatures();
    const wasm = f ? { simd128: f.simd128, relaxedSimd: f.relaxedSimd, threads: f.threads, ...(f.threadsReason ? { threadsReason: f.threadsReason } : {}), defaultThreads: f.defaultThreads } : { probed: false };
    if (!r.ok) return { addon: 'unavailable', addonReason: r.error, wasm };
    return { addon: r.path, threads: r.native.numThreads(), cpu: r.native.cpuFeatures(), wasm };
  },
};
