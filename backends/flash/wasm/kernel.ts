/**
 * The WebAssembly kernels of FLASH_ATTENTION (cpu): `wasm_relaxed_simd` and `wasm_simd128`, the
 * C++ kernel of csrc/kernel_impl.h compiled to wasm32 (csrc/kernel_wasm.cc). They come after the
 * native kernels, so in Node they serve when the addon is missing; in a browser they are FLASH (cpu).
 */
import { BackendFaultError } from '../../../src/errors.js';
import { named } from '../../../src/dispatch/constraints.js';
import type { AttentionParams, KernelVariant, RunContext } from '../../../src/dispatch/types.js';
import { Tensor } from '../../../src/tensor.js';
import { jobBytes, WASM_MAX_BYTES, WASM_MAX_ELEMENTS, WasmMemoryError, type WasmJob } from './abi.js';
import { runWasm, wasmAvailability, wasmFeatures, type WasmSimd } from './runtime.js';

/** The wasm kernels' names, in priority order (relaxed SIMD first: one FMA per multiply-add). */
export const WASM_KERNELS: readonly { readonly name: string; readonly simd: WasmSimd }[] = [
  { name: 'wasm_relaxed_simd', simd: 'relaxed' },
  { name: 'wasm_simd128', simd: 'simd128' },
];

/** Builds the kernel's job from the same arguments the native addon takes (for query rows [i0, i1) when given). */
export type JobBuilder = (p: AttentionParams, rows?: readonly [number, number]) => WasmJob;
/**
 * Runs a call in row chunks (FLASH (cpu)'s runInRowChunks): `runRows` runs one kernel call over the
 * given query rows (all when undefined) and returns its `[bh, rows, Ev]` output.
 */
export type RowChunkRunner = (p: AttentionParams, ctx: RunContext, runRows: (rows: readonly [number, number] | undefined) => Promise<Float32Array | Uint16Array>) => Promise<Tensor>;

const GIB = 1024 ** 3;

/** Threads of a wasm call (SDPA_NUM_THREADS / cores, capped by the jobs), overridable for benchmarks. */
let threadOverride: number | undefined;
/** Sets the threads wasm calls use (undefined: the default); for benchmarks and tests. */
export function setWasmThreads(n: number | undefined): void {
  threadOverride = n;
}

/** How the last wasm call was split: threads, jobs, and per thread its jobs and kernel time. */
export interface WasmRunStats {
  readonly threads: number;
  readonly njobs: number;
  readonly perThread?: readonly { readonly jobs: number; readonly busyMs: number }[];
}
let lastStats: WasmRunStats | undefined;
/** The last wasm call's split over threads (benchmarks check that the threads really shared the work). */
export function lastWasmRun(): WasmRunStats | undefined {
  return lastStats;
}

/** Runs `p` on the wasm kernel of `simd` (in row chunks through `inChunks` when given); the output tensor in p's dtype. */
export function runFlashWasm(p: AttentionParams, ctx: RunContext, name: string, simd: WasmSimd, build: JobBuilder, inChunks?: RowChunkRunner): Promise<Tensor> {
  const runRowsOf = (rows: readonly [number, number] | undefined): Promise<Float32Array | Uint16Array> => runRows(ctx, name, simd, build(p, rows));
  if (inChunks) return inChunks(p, ctx, runRowsOf);
  return runRowsOf(undefined).then((data) => new Tensor({ shape: [...p.q.shape.slice(0, -1), p.ev], dtype: p.dtype, data }));
}

/** One run of a job on the wasm kernel; its output. */
async function runRows(ctx: RunContext, name: string, simd: WasmSimd, job: WasmJob): Promise<Float32Array | Uint16Array> {
  ctx.recordAllocation(jobBytes(job));
  let r;
  try {
    r = await runWasm(job, simd, threadOverride ?? wasmFeatures()?.defaultThreads ?? 1, ctx.signal);
  } catch (e) {
    if (ctx.signal?.aborted) throw e;
    const why = e instanceof WasmMemoryError ? e.message : `failed: ${e instanceof Error ? e.message : String(e)}`;
    throw new BackendFaultError(`flash (cpu): ${name} ${why}`, { cause: e });
  }
  lastStats = { threads: r.threads, njobs: r.njobs, ...(r.perThread ? { perThread: r.perThread } : {}) };
  if (r.jobs < r.njobs) {
    // Stopped between jobs by the signal: the partial output is dropped, dispatch reports the abort.
    ctx.signal?.throwIfAborted();
    throw new BackendFaultError(`flash (cpu): ${name} ran ${r.jobs} of ${r.njobs} jobs`);
  }
  return r.out;
}

/** One wasm kernel as a variant of FLASH (cpu). */
export function wasmKernel(name: string, simd: WasmSimd, build: JobBuilder, inChunks?: RowChunkRunner): KernelVariant {
  return {
    name,
    summary:
      simd === 'relaxed'
        ? 'the C++ flash kernel compiled to WebAssembly with relaxed-SIMD FMA, on workers sharing one memory where SharedArrayBuffer is usable'
        : 'the C++ flash kernel compiled to WebAssembly SIMD128, on workers sharing one memory where SharedArrayBuffer is usable',
    program: { kind: 'wasm', module: `flash-${simd}.wasm`, entry: 'sdpa_run', simd },
    availability: () => wasmAvailability(name, simd),
    constraints: [
      named('checkWasmMemory', (p: AttentionParams) => {
        const elems = Math.max(p.q.data?.length ?? 0, p.k.data?.length ?? 0, p.v.data?.length ?? 0, p.mask?.tensor.data?.length ?? 0, p.batch * p.hq * p.s * p.ev);
        if (elems > WASM_MAX_ELEMENTS) return `${name} addresses arrays of up to 2^31 - 1 elements (32-bit offsets), got ${elems}; use a native kernel or EFFICIENT_ATTENTION`;
        const bytes = (p.q.data?.byteLength ?? 0) + (p.k.data?.byteLength ?? 0) + (p.v.data?.byteLength ?? 0) + (p.mask?.tensor.data?.byteLength ?? 0) + p.batch * p.hq * p.s * p.ev * (p.dtype === 'float32' ? 4 : 2);
        return bytes > WASM_MAX_BYTES ? `${name} holds q, k, v, the mask and the output in one wasm32 memory (at most 4 GiB), this call needs ${(bytes / GIB).toFixed(2)} GiB; use a native kernel or EFFICIENT_ATTENTION` : undefined;
      }),
    ],
    run: (p, ctx) => runFlashWasm(p, ctx, name, simd, build, inChunks),
    describe() {
      const f = wasmFeatures();
      return f ? { module: `flash-${simd}${f.threads ? '-threads' : ''}.wasm`, ...f } : { probed: false };
    },
  };
}
