/**
 * Typed declaration and lazy loader of the native flash-attention addon (`csrc/`, built by
 * node-gyp into `build/Release/sdpa_native.node`). Loading never throws: a missing or broken addon
 * becomes an error string saying how to rebuild, which the CPU part reports as its unavailability.
 */
import type { FloatDType } from '../../src/dtype.js';

/** dtype codes of the C++ ABI (`sdpa::DType`). */
export const NATIVE_DTYPE: Readonly<Record<FloatDType, 0 | 1 | 2>> = { float32: 0, float16: 1, bfloat16: 2 };

/** Mask kinds of the C++ ABI (`sdpa::MaskKind`): 0 none, 1 bool, 2 additive float. */
export type NativeMaskKind = 0 | 1 | 2;
/** Mask element types of the C++ ABI (`sdpa::MaskDType`): 0 u8 (bool), 1 f32, 2 f16, 3 bf16. */
export type NativeMaskDType = 0 | 1 | 2 | 3;

/** Element offsets: one per flat head (Float64Array: offsets may pass 2^31). */
export type OffsetTable = Float64Array | Int32Array | Uint32Array | BigInt64Array | readonly number[];

/**
 * Arguments of `flashAttention`, mirroring `sdpa::AttentionArgs`. q/k/v/out are Float32Array for
 * float32 and Uint16Array (raw bits) for float16/bfloat16; `out` is written as contiguous
 * `[bh, s, ev]`. Every offset and length is checked against the arrays before any work starts.
 */
export interface NativeAttentionArgs {
  dtype: 0 | 1 | 2 | FloatDType;
  q: Float32Array | Uint16Array;
  k: Float32Array | Uint16Array;
  v: Float32Array | Uint16Array;
  out: Float32Array | Uint16Array;
  /** batch · hq (flat query heads). */
  bh: number;
  hq: number;
  hkv: number;
  s: number;
  l: number;
  e: number;
  ev: number;
  /** Offset of row 0 of each flat query head; length bh. */
  qBase: OffsetTable;
  /** Offset of row 0 of each flat kv head (b·hkv + g); length (bh/hq)·hkv. */
  kvBaseK: OffsetTable;
  kvBaseV: OffsetTable;
  qRowStride: number;
  kRowStride: number;
  vRowStride: number;
  maskKind?: NativeMaskKind;
  maskDType?: NativeMaskDType;
  mask?: Uint8Array | Float32Array | Uint16Array;
  /** Offset of element (0, 0) of each flat query head's mask; length bh (repeats broadcast). */
  maskBase?: OffsetTable;
  /** Element strides of the mask along queries and keys; 0 broadcasts. */
  maskStrideS?: number;
  maskStrideL?: number;
  /** When true, key j is visible to query i iff j <= i + diagonalOffset. */
  causal?: boolean;
  diagonalOffset?: number;
  /** Defaults to 1/sqrt(e). */
  scale?: number;
  /**
   * Dropout probability in [0, 1), passed to the kernel as a double: an element is dropped when
   * `(mix(...) >>> 8) < dropoutP·2^24`, exactly the rule of src/rng.ts (a float32 p would move that
   * threshold across an integer for some p, e.g. 0.7).
   */
  dropoutP?: number;
  /** uint32 seed of the shared dropout RNG (docs/design.md §2). */
  seed?: number;
  /** 0 (default): SDPA_NUM_THREADS or all cores. */
  numThreads?: number;
  /**
   * The kernel to run, a `name` from `kernels()`. The addon refuses (RangeError, before any work) a
   * kernel whose CPU features are missing or whose shape rules the call breaks, and an unknown
   * name (the message lists the valid ones). Omitted: the addon's own best kernel for the call.
   */
  kernel?: string;
  /**
   * A cancel word: setting element 0 to nonzero (`Atomics.store`) while the call runs stops it
   * between jobs (jobs already started finish); the promise then rejects with
   * `flash_attention: cancelled after N of M jobs` and `out` is partly written. An AbortSignal
   * maps onto it (backends/flash/cpu.ts).
   */
  cancel?: Int32Array;
  /**
   * With `flashAttentionRun(args, true)`: the thread pool's workers join the call when no other
   * call holds the pool (else every job runs on the calling thread, as without it).
   */
  inlinePool?: boolean;
}

/**
 * One row of the addon's kernel table (`kernels()`, priority order): what a kernel computes and
 * what it needs, so the TypeScript dispatcher can choose and explain; the addon enforces the same.
 */
export interface NativeKernelInfo {
  /** e.g. `avx2_fp32`, `amx_bf16`, `scalar_fp32`. */
  readonly name: string;
  /** The instruction set it is compiled for: `scalar`, `avx2`, `avx512`, `amx`. */
  readonly isa: string;
  /** Input dtypes it runs. */
  readonly dtypes: readonly FloatDType[];
  /** CPU features it needs, as /proc/cpuinfo spells them (`avx2`, `avx512_bf16`, `amx_tile`, ...; `amx_os_permission` is the OS grant of AMX tile data). */
  readonly requires: readonly string[];
  /** The subset of `requires` this CPU (or OS) lacks; empty when the kernel can run here. */
  readonly missing: readonly string[];
  /** The head dim e must be a multiple of this (1: any). */
  readonly eMultiple: number;
  /** The value head dim ev must be a multiple of this (1: any). */
  readonly evMultiple: number;
  /** Largest e and ev. */
  readonly maxHeadDim: number;
  /** A measured speed rule, not a correctness one: the kernel is chosen from this many keys on (0: no rule). */
  readonly minKeys: number;
  /** At most this many queries per head, when limited. */
  readonly maxQueries?: number;
  /** One sentence on what it does. */
  readonly summary: string;
}

/** CPU features the addon detected (cpuid + xgetbv; AMX after the kernel granted tile data). */
export interface NativeCpuFeatures {
  avx2: boolean;
  fma: boolean;
  f16c: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
  avx512dq: boolean;
  avx512Bf16: boolean;
  avx512Fp16: boolean;
  amxTile: boolean;
  amxBf16: boolean;
  amxPermitted: boolean;
  /** The cpuid brand string, e.g. `AMD EPYC 7B13 64-Core Processor`. */
  brand: string;
  /** Per-core L1 data and L2 cache bytes from cpuid (0 when not reported). */
  l1dBytes: number;
  l2Bytes: number;
}

/** The addon's exports. */
export interface SdpaNative {
  /** Computes attention off the event loop; resolves when `args.out` is filled. Bad args throw TypeError/RangeError. */
  flashAttention(args: NativeAttentionArgs): Promise<void>;
  /**
   * One parse for the run and its scratch size. `here: true` runs every job on the calling thread
   * (blocking it; the plan, hence the result, is the pooled one) — with the pool's workers joining
   * when `args.inlinePool` is set and no other call holds the pool (`pooled` says whether they
   * did) — and returns when `args.out` is filled, throwing a kernel failure as an Error; for calls
   * whose hop to a worker thread costs about as much as the work. `here: false` queues the call
   * like `flashAttention` and returns its promise as `done`. Bad args throw TypeError/RangeError either way.
   */
  flashAttentionRun(args: NativeAttentionArgs, here: true): { readonly workspaceBytes: number; readonly pooled: boolean };
  flashAttentionRun(args: NativeAttentionArgs, here: false): { readonly workspaceBytes: number; readonly done: Promise<void> };
  /** Scratch bytes per thread the kernel (`args.kernel`, or the addon's choice) will use for these args (its only extra memory). */
  workspaceBytes(args: NativeAttentionArgs): number;
  cpuFeatures(): NativeCpuFeatures;
  /** The C++ kernel table in priority order, with each kernel's requirements and what this CPU lacks. */
  kernels(): readonly NativeKernelInfo[];
  /** Threads a call uses by default (SDPA_NUM_THREADS or all cores). */
  numThreads(): number;
}

/** Result of {@link loadNative}: the addon, or why it could not be loaded. */
export type NativeLoadResult = { readonly ok: true; readonly native: SdpaNative; readonly path: string } | { readonly ok: false; readonly error: string };

const REBUILD_HINT = 'rebuild it with `npm rebuild sdpa-dispatch` (or `npx node-gyp rebuild` in the package directory; needs a C++17 compiler and Python)';

let cached: NativeLoadResult | undefined;

/**
 * Loads the addon once: from `SDPA_NATIVE_PATH` when set (only there), else
 * `build/Release/sdpa_native.node` of the package (from the sources and from `dist/`). Outside
 * Node it reports that no addon can load.
 */
export function loadNative(): NativeLoadResult {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): NativeLoadResult {
  const proc = (globalThis as { process?: { versions?: { node?: string }; env?: Record<string, string | undefined>; getBuiltinModule?: (id: string) => unknown } }).process;
  if (!proc?.versions?.node || !proc.getBuiltinModule) return { ok: false, error: 'the native flash kernel needs Node.js (>= 20.19)' };
  const { createRequire } = proc.getBuiltinModule('node:module') as { createRequire(url: string): (id: string) => unknown };
  const { existsSync } = proc.getBuiltinModule('node:fs') as { existsSync(p: string): boolean };
  const { fileURLToPath } = proc.getBuiltinModule('node:url') as { fileURLToPath(u: URL): string };
  const require = createRequire(import.meta.url);
  // SDPA_NATIVE_PATH, when set, is the only place looked at: an explicit choice (a sanitizer build,
  // or a missing file to test the fallback) must not silently load another addon.
  const candidates: string[] = proc.env?.SDPA_NATIVE_PATH
    ? [proc.env.SDPA_NATIVE_PATH]
    : // backends/flash/native.ts → ../../build; dist/backends/flash/native.js → ../../../build
      ['../../build/Release/sdpa_native.node', '../../../build/Release/sdpa_native.node'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = candidates.find((c) => existsSync(c));
  if (!found) return { ok: false, error: `native addon not built (looked for ${candidates.join(', ')}); ${REBUILD_HINT}` };
  try {
    const native = require(found) as SdpaNative;
    // An addon built from older sources lacks the kernel table: rebuilding fixes it, so say so.
    if (typeof native.flashAttention !== 'function' || typeof native.flashAttentionRun !== 'function' || typeof native.kernels !== 'function') {
      return { ok: false, error: `${found} does not export flashAttention, flashAttentionRun and kernels; ${REBUILD_HINT}` };
    }
    return { ok: true, native, path: found };
  } catch (e) {
    return { ok: false, error: `native addon ${found} failed to load (${e instanceof Error ? e.message : String(e)}); ${REBUILD_HINT}` };
  }
}
