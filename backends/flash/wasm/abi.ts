/**
 * The JavaScript side of csrc/kernel_wasm.cc's entry: the exports of an instance, the call record
 * (`WasmCall`, byte offsets as in the C++ `static_assert`s), and the host steps every call makes —
 * copy the inputs into linear memory, write the record, let the module plan the jobs, run them,
 * read the output back, release the arena. Imported by the main thread (threaded runs, where the
 * memory is shared) and by the single worker (no SharedArrayBuffer). Free of Node and DOM APIs.
 */

/** The exports of one instance of a flash-wasm module. */
export interface FlashWasmExports {
  /** 64-byte aligned arena allocation (grows the memory); 0 when the memory cannot grow. */
  sdpa_alloc(bytes: number): number;
  /** The arena's top, to release back to. */
  sdpa_mark(): number;
  sdpa_release(mark: number): void;
  sdpa_plan_bytes(): number;
  /** Fills a plan from a call record; returns the job count. */
  sdpa_prepare(call: number, plan: number): number;
  sdpa_workspace_bytes(plan: number): number;
  /** Runs jobs taken from the counter at `next` until none is left, `cancel` is set or `maxJobs` ran; returns how many ran. */
  sdpa_run(plan: number, ws: number, next: number, cancel: number, maxJobs: number): number;
  /** The instance's shadow-stack pointer (each thread's instance gets its own stack). */
  readonly __stack_pointer: WebAssembly.Global;
  /** Present on the single-thread modules (they define their memory). */
  readonly memory?: WebAssembly.Memory;
}

/** Shadow stack bytes of a worker's instance (the kernel keeps a few KiB of arrays there). */
export const WASM_STACK_BYTES = 64 * 1024;
/** Largest element count of one array: the call record holds 32-bit offsets and strides. */
export const WASM_MAX_ELEMENTS = 2 ** 31 - 1;
/** Linear memory a wasm32 module can address, less the arena's bookkeeping margin. */
export const WASM_MAX_BYTES = 4 * 1024 ** 3 - 64 * 1024 ** 2;

/**
 * One call as the kernel sees it (the native addon's arguments without `out`): typed arrays of the
 * caller's storage, per-head element offsets, strides, codes of the C++ enums. Structured-cloneable.
 */
export interface WasmJob {
  readonly dtype: 0 | 1 | 2;
  readonly q: Float32Array | Uint16Array;
  readonly k: Float32Array | Uint16Array;
  readonly v: Float32Array | Uint16Array;
  readonly bh: number;
  readonly hq: number;
  readonly hkv: number;
  readonly s: number;
  readonly l: number;
  readonly e: number;
  readonly ev: number;
  readonly qBase: Float64Array;
  readonly kvBaseK: Float64Array;
  readonly kvBaseV: Float64Array;
  readonly qRowStride: number;
  readonly kRowStride: number;
  readonly vRowStride: number;
  readonly maskKind: 0 | 1 | 2;
  readonly maskDType: 0 | 1 | 2 | 3;
  readonly mask?: Uint8Array | Float32Array | Uint16Array;
  readonly maskBase?: Float64Array;
  readonly maskStrideS: number;
  readonly maskStrideL: number;
  readonly causal: boolean;
  readonly diagonalOffset: number;
  readonly scale: number;
  readonly dropoutP: number;
  readonly seed: number;
}

/** A call staged in linear memory: where its plan, control words, scratch and output are. */
export interface StagedCall {
  /** Arena top before the call (released after it). */
  readonly mark: number;
  readonly plan: number;
  /** Int32 job counter at `ctl`, cancel word at `ctl + 4`. */
  readonly ctl: number;
  /** One scratch region per thread. */
  readonly workspaces: readonly number[];
  readonly out: number;
  readonly outElements: number;
  readonly njobs: number;
  /** Threads the plan was blocked for (≤ jobs). */
  readonly threads: number;
}

/** Thrown when linear memory cannot hold a call (the caller turns it into a BackendFaultError). */
export class WasmMemoryError extends Error {
  override readonly name = 'WasmMemoryError';
}

/** Bytes of linear memory a job needs besides the per-thread scratch (inputs, offsets, output). */
export function jobBytes(j: Pick<WasmJob, 'q' | 'k' | 'v' | 'mask' | 'bh' | 'hq' | 'hkv' | 's' | 'ev' | 'dtype'>): number {
  const arrays = new Set<ArrayBufferView>([j.q, j.k, j.v, ...(j.mask ? [j.mask] : [])]);
  let n = 0;
  for (const a of arrays) n += a.byteLength + 64;
  const heads = j.bh + 2 * (j.bh / j.hq) * j.hkv + (j.mask ? j.bh : 0);
  return n + heads * 8 + j.bh * j.s * j.ev * (j.dtype === 0 ? 4 : 2) + 4096;
}

function alloc(ex: FlashWasmExports, bytes: number, what: string): number {
  const p = ex.sdpa_alloc(bytes);
  if (p === 0) throw new WasmMemoryError(`the wasm32 memory cannot grow to hold ${what} (${bytes} more bytes, ${ex.sdpa_mark()} in use)`);
  return p;
}

function copyIn(ex: FlashWasmExports, mem: WebAssembly.Memory, a: ArrayBufferView, what: string): number {
  const p = alloc(ex, a.byteLength, what);
  new Uint8Array(mem.buffer, p, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return p;
}

function copyBases(ex: FlashWasmExports, mem: WebAssembly.Memory, bases: Float64Array, what: string): number {
  const p = alloc(ex, bases.length * 8, what);
  const view = new BigInt64Array(mem.buffer, p, bases.length);
  for (let i = 0; i < bases.length; i++) view[i] = BigInt(bases[i]);
  return p;
}

/**
 * Copies a job into linear memory, writes its call record and plans it for `threads` threads.
 * On a memory error everything allocated is released before it throws.
 */
export function stageCall(ex: FlashWasmExports, mem: WebAssembly.Memory, j: WasmJob, threads: number): StagedCall {
  const mark = ex.sdpa_mark();
  try {
    // q, k and v are often one array (self-attention): copied once.
    const copies = new Map<ArrayBufferView, number>();
    const place = (a: ArrayBufferView, what: string): number => {
      let p = copies.get(a);
      if (p === undefined) copies.set(a, (p = copyIn(ex, mem, a, what)));
      return p;
    };
    const q = place(j.q, 'q'), k = place(j.k, 'k'), v = place(j.v, 'v');
    const mask = j.mask ? place(j.mask, 'the mask') : 0;
    const qBase = copyBases(ex, mem, j.qBase, 'offsets');
    const kvBaseK = copyBases(ex, mem, j.kvBaseK, 'offsets');
    const kvBaseV = copyBases(ex, mem, j.kvBaseV, 'offsets');
    const maskBase = j.maskBase ? copyBases(ex, mem, j.maskBase, 'offsets') : 0;
    const outElements = j.bh * j.s * j.ev;
    const out = alloc(ex, outElements * (j.dtype === 0 ? 4 : 2), 'the output');
    const call = alloc(ex, 128, 'the call record');
    const d = new DataView(mem.buffer, call, 128);
    d.setFloat64(0, j.dropoutP, true);
    const words: [number, number][] = [
      [8, j.dtype], [12, q], [16, k], [20, v], [24, out], [28, j.bh], [32, j.hq], [36, j.hkv], [40, j.s], [44, j.l], [48, j.e], [52, j.ev],
      [56, qBase], [60, kvBaseK], [64, kvBaseV], [68, j.qRowStride], [72, j.kRowStride], [76, j.vRowStride],
      [80, j.maskKind], [84, j.maskDType], [88, mask], [92, maskBase], [96, j.maskStrideS], [100, j.maskStrideL],
      [104, j.causal ? 1 : 0], [108, j.diagonalOffset], [116, j.seed >>> 0], [120, threads], [124, 0],
    ];
    for (const [off, val] of words) d.setUint32(off, val >>> 0, true);
    d.setFloat32(112, j.scale, true);
    const plan = alloc(ex, ex.sdpa_plan_bytes(), 'the plan');
    const njobs = ex.sdpa_prepare(call, plan);
    const used = Math.max(1, Math.min(threads, njobs));
    const wsBytes = ex.sdpa_workspace_bytes(plan);
    const workspaces = Array.from({ length: used }, () => alloc(ex, wsBytes, 'per-thread scratch'));
    const ctl = alloc(ex, 64, 'control words');
    new Int32Array(mem.buffer, ctl, 2).fill(0);
    return { mark, plan, ctl, workspaces, out, outElements, njobs, threads: used };
  } catch (e) {
    ex.sdpa_release(mark);
    throw e;
  }
}

/** A copy of the staged call's output (fresh, non-shared storage). */
export function readOutput(mem: WebAssembly.Memory, st: StagedCall, dtype: 0 | 1 | 2): Float32Array | Uint16Array {
  return dtype === 0 ? new Float32Array(mem.buffer, st.out, st.outElements).slice() : new Uint16Array(mem.buffer, st.out, st.outElements).slice();
}
