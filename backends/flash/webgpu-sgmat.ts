/// <reference types="@webgpu/types" />
/**
 * The tensor-core kernel variants of FLASH_ATTENTION (webgpu), through Dawn's
 * chromium-experimental-subgroup-matrix (16×16×16 f16 tiles), in priority order:
 * - `sgmat_st`: shaders/flash-sgmat-st.wgsl, scores transposed (Sᵀ = K·Qᵀ) so each lane owns a
 *   query row; one 32-lane subgroup per workgroup, 16-key blocks, one softmax pass per block, the
 *   16-bit output written by the kernel (no f32 scratch, no pack pass); any S and L; E = Ev a
 *   multiple of 16 up to 128 (the fastest correct kernel there on the H200);
 * - `sgmat_mw`: shaders/flash-sgmat-mw.wgsl, four 32-lane subgroups per workgroup sharing staged Q
 *   (and K/V when L is ragged), 16-key blocks, the 16-bit output written by the kernel; any S and
 *   L, E = Ev a multiple of 16 up to 256 (where sgmat_st does not fit);
 * - `sgmat_1sg`: shaders/flash-sgmat.wgsl, one subgroup of any fixed width that is a multiple of
 *   16, whole tiles only (S % subgroup = 0, L % 64 = 0): where the others do not fit.
 * All are tested in CI through the subgroup-matrix emulation (lavapipe) and Tint's validation of
 * the real shaders (Dawn's null backend), and on an H200 (docs/performance-webgpu.md). A kernel
 * whose pipeline a driver or Dawn rejects is remembered, and is then a reason.
 */
import { BackendFaultError } from '../../src/errors.js';
import { named } from '../../src/dispatch/constraints.js';
import type { Availability, AttentionParams, Constraint, KernelVariant, RunContext } from '../../src/dispatch/types.js';
import type { Tensor } from '../../src/tensor.js';
import { bandDiagonals, bindQkv, dispatchRows, headDimBucket, paramsUniform, runAttention, type Pass } from '../../src/webgpu/attention.js';
import { gpuContext, type WebGpuContext } from '../../src/webgpu/device.js';
import { getPipeline, type ProgramInfo } from '../../src/webgpu/programs.js';

/** Pipelines a driver or Dawn rejected, by program key: later calls get the reason instead. */
const compileFailures = new Map<string, string>();

/** Compile failures of the tensor-core kernels so far (`capabilities()` shows them). */
export function sgmatCompileFailures(): Record<string, string> {
  return Object.fromEntries(compileFailures);
}

function hasConfig(ctx: WebGpuContext, result: 'f16' | 'f32'): boolean {
  return ctx.subgroupMatrixConfigs.some((c) => c.componentType === 'f16' && c.resultComponentType === result && c.M === 16 && c.N === 16 && c.K === 16);
}

function adapterName(ctx: WebGpuContext): string {
  return ctx.adapterInfo.description || ctx.adapterInfo.device || ctx.adapterInfo.vendor || 'this adapter';
}

/** The kernels need an f16×f16→f32 16×16×16 configuration (or, where `allowEmulated`, the emulation). */
function matrixAvailability(name: string, allowEmulated: boolean): Availability {
  const ctx = gpuContext();
  if (!ctx) return { available: false, reason: `${name} needs a WebGPU adapter` };
  if (ctx.sgmatEmulated && !allowEmulated) return { available: false, reason: `${name} does not run on emulated subgroup matrices (SDPA_WEBGPU_SGMAT_EMULATE tests sgmat_st and sgmat_mw)` };
  if (!hasConfig(ctx, 'f32') && !ctx.sgmatEmulated) {
    const why = ctx.features.has('chromium-experimental-subgroup-matrix') ? 'no f16×f16→f32 16×16×16 configuration' : 'no chromium-experimental-subgroup-matrix feature';
    return { available: false, reason: `${name} needs tensor cores through subgroup matrices (an f16×f16→f32 16×16×16 configuration); ${adapterName(ctx)} has ${why}` };
  }
  return { available: true };
}

/** E = Ev, a multiple of 16 up to `max` (subgroup-matrix tiles are 16 wide). */
function checkMatrixHeadDim(name: string, max: number, why = '') {
  return named('checkMatrixHeadDim', (p: AttentionParams) =>
    p.e === p.ev && p.e % 16 === 0 && p.e <= max ? undefined : `${name} needs E = Ev, a multiple of 16 up to ${max}${why}, got E=${p.e}, Ev=${p.ev}`,
  );
}

/** Lane r of subgroup s is lid 32·s + r (NVIDIA's mapping): the row tiles assume exactly 32 lanes. */
function checkSubgroupWidth(name: string) {
  return named('checkSubgroupWidth', () => {
    const ctx = gpuContext();
    if (!ctx || ctx.sgmatEmulated) return undefined;
    const { subgroupMinSize: lo, subgroupMaxSize: hi } = ctx.adapterInfo;
    return lo === 32 && hi === 32 ? undefined : `${name} needs 32-wide subgroups, the adapter has ${lo}..${hi}`;
  });
}

/** Lanes and workgroup bytes within the adapter's limits, and no earlier compile failure. */
function fitReason(ctx: WebGpuContext, name: string, what: string, lanes: number, bytes: number, key: string): string | undefined {
  const lim = Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX);
  if (lanes > lim) return `${name} ${what} needs ${lanes} invocations per workgroup, over the adapter's limit ${lim}`;
  if (bytes > ctx.limits.maxComputeWorkgroupStorageSize) return `${name} ${what} needs ${bytes} bytes of workgroup memory, over maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}`;
  const failed = compileFailures.get(key);
  return failed ? `${name} (${key}) failed to compile on this adapter: ${failed}` : undefined;
}

/**
 * Runs `program` (compiling it first, so a rejected pipeline is remembered and faults over to the
 * next kernel). `writesCallDtype`: the program writes the call's 16-bit dtype itself.
 */
async function runTensorCore(label: string, name: string, p: AttentionParams, rctx: RunContext, program: ProgramInfo, key: string, rows: number, writesCallDtype = false): Promise<Tensor> {
  const ctx = gpuContext();
  if (ctx) {
    try {
      await getPipeline(ctx, program);
    } catch (err) {
      compileFailures.set(key, (err as Error).message);
      throw new BackendFaultError(`${name} failed to compile (${key}): ${(err as Error).message}`, { cause: err });
    }
  }
  return runAttention(
    label,
    p,
    rctx,
    async (cb, out, pre): Promise<Pass[]> => {
      const { q, k, v } = await bindQkv(cb, p, label, pre, true);
      return [{ program, buffers: [cb.uniform(paramsUniform(p)), q, k, v, out], dispatch: dispatchRows(cb.ctx, p, rows) }];
    },
    { writesCallDtype },
  );
}

// ---------------------------------------------------------------------------------------------
// sgmat_st: flash-sgmat-st.wgsl

/**
 * Build-time choices of the transposed-scores kernel family. The shipped shader
 * (shaders/flash-sgmat-st.wgsl) is frozen at {@link stConfig}; the benchmark
 * (scripts/bench-webgpu-tc.mjs) builds other values from its bench-only lab copy
 * (scripts/probes/flash-sgmat-st-lab.wgsl, scripts/lib/st-lab.mjs) and times each against it.
 */
export interface StConfig {
  /** Subgroups per workgroup (each independent of the others; 1: one-warp barriers). */
  readonly nw: 1 | 2 | 4;
  /** Keys per block. */
  readonly bc: 16 | 32 | 64;
  /** Qᵀ held in right matrices (true) or loaded from workgroup memory for every product. */
  readonly qreg: boolean;
  /** The next block's products issued before this block's softmax. */
  readonly pipe: boolean;
  /** Scores in f16 result matrices (the f16×f16→f16 configuration; f16 accumulation). */
  readonly s16: boolean;
}

/**
 * The shipped shape of flash-sgmat-st.wgsl: one subgroup, 16-key blocks, Qᵀ in registers. Chosen
 * by the H200 candidates (2026-12-02, session 2 run 1, kernel TF/s at S = 4096, D = 64 / 128):
 * 16-key blocks 48.4 / 55.2 (causal 41.9 / 49.1), 32-key blocks 40.1 / 40.3, 64-key blocks
 * 23.0 / 23.3 (the shape shipped before), sgmat_mw 35.0 / 48.0, the two-subgroup pair kernel
 * 40.3 / 44.9; the same 196 / 255 registers a lane for every block size.
 */
export function stConfig(_d?: number): StConfig {
  return { nw: 1, bc: 16, qreg: true, pipe: false, s16: false };
}

/**
 * Largest head dim routed to `sgmat_st`: at 128 O and Qᵀ of 32 rows already take the 255
 * registers a lane can have; above it sgmat_mw (E up to 256) runs.
 */
export const ST_MAX_HEAD_DIM = 128;

/** Short name of a configuration, e.g. `nw1-bc32-q` (reports, benchmark rows). */
export function stConfigName(c: StConfig): string {
  return `nw${c.nw}-bc${c.bc}${c.qreg ? '-q' : ''}${c.pipe ? '-pipe' : ''}${c.s16 ? '-s16' : ''}`;
}

/**
 * A call has a sliding window's lower edge (`j >= i + lower`): the tensor-core shaders then compile
 * with LOWER, so calls without one keep the exact program (and registers) they had.
 */
export function hasLowerEdge(p: AttentionParams): boolean {
  return bandDiagonals(p).lower !== undefined;
}

/** A partial last key tile (L % 16 ≠ 0) goes through a zero-filled copy: direct tile loads would cross the end of k and v. */
export function stNeedsTail(l: number): boolean {
  return l % 16 !== 0;
}

/** Workgroup bytes of the transposed-scores shaders for configuration `c` (mirrors their `var<workgroup>` declarations). */
export function stWorkgroupBytes(c: StConfig, d: number, tail: boolean): number {
  const kst = d + 8;
  const s = c.nw * c.bc * (32 + (c.s16 ? 8 : 4)) * (c.s16 ? 2 : 4);
  const p = c.nw * Math.max(c.bc * 40, 16 * kst) * 2;
  const q = c.qreg ? 0 : c.nw * 32 * kst * 2;
  const t = tail ? 32 * kst * 2 : 0;
  const o = c.s16 ? c.nw * 16 * 36 * 4 : 0;
  return s + p + q + t + o + 16;
}

/** The shipped program (shaders/flash-sgmat-st.wgsl) for head dim `d`, a partial last key tile, the output dtype, a window's lower edge. */
export function stProgram(d: number, tail: boolean, dtype: 'float16' | 'bfloat16', lower = false): ProgramInfo {
  return {
    shader: 'flash-sgmat-st.wgsl',
    entryPoint: 'main',
    defines: { DM: d, DK: d / 16, KTAIL: +tail, PACK: dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16', LOWER: +lower },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

/**
 * What a transposed-scores kernel variant is built from: the shipped one ({@link shippedSt}) or a
 * benchmark candidate of the lab shader (scripts/lib/st-lab.mjs).
 */
export interface StKernelSpec {
  /** The variant's name (reasons begin with it). */
  readonly name: string;
  /** Its configuration at head dim `d` (reports, workgroup bytes, the f16-result requirement). */
  readonly config: (d: number) => StConfig;
  /** Its program at head dim `d`, with or without the partial last key tile, for the output dtype (and a window's lower edge, with `lowerEdge`). */
  readonly program: (d: number, tail: boolean, dtype: 'float16' | 'bfloat16', lower: boolean) => ProgramInfo;
  /** Its program applies a sliding window's lower edge; without it a windowed call is a reason. */
  readonly lowerEdge?: boolean;
  /** Workgroup bytes at head dim `d` (defaults to {@link stWorkgroupBytes} of the configuration). */
  readonly workgroupBytes?: (d: number, tail: boolean) => number;
  /** Largest head dim it takes, and why (appended to the reason). */
  readonly maxHeadDim: number;
  readonly maxHeadDimWhy: string;
  /** Invocations per workgroup at head dim `d` (defaults to 32 per subgroup). */
  readonly lanes?: (d: number) => number;
  /** Query rows per workgroup at head dim `d` (defaults to 32 per subgroup). */
  readonly rows?: (d: number) => number;
  /** A further requirement of the program (e.g. a head dim that splits evenly), checked last. */
  readonly check?: Constraint;
  /** What the variant is, for reports (defaults to a generic line naming its configuration). */
  readonly summary?: string;
}

/** The shipped `sgmat_st`: flash-sgmat-st.wgsl at its frozen shape, up to {@link ST_MAX_HEAD_DIM}. */
export const shippedSt: StKernelSpec = {
  name: 'sgmat_st',
  config: stConfig,
  program: stProgram,
  lowerEdge: true,
  maxHeadDim: ST_MAX_HEAD_DIM,
  maxHeadDimWhy: ' (O and Qᵀ of 32 rows in registers: 255 a lane at 128 on the H200; sgmat_mw takes larger head dims)',
  summary: `tensor cores (subgroup matrices), scores transposed so a lane owns a query row, one subgroup per workgroup, 16-key blocks, Qᵀ in registers, one softmax pass per block, 16-bit output written by the kernel; any S and L, E = Ev a multiple of 16 up to ${ST_MAX_HEAD_DIM}`,
};

function stKey(spec: StKernelSpec, d: number, tail: boolean, lower = false): string {
  return `st-${spec.name}-${stConfigName(spec.config(d))}-d${d}${tail ? '-tail' : ''}${lower ? '-lower' : ''}`;
}

/**
 * A transposed-scores tensor-core kernel variant: the shipped one by default; benchmarks and tests
 * pass the spec of a lab candidate under its own name.
 */
export function sgmatStKernel(label: string, spec: StKernelSpec = shippedSt): KernelVariant {
  const { name } = spec;
  const bytesOf = (d: number, tail: boolean) => (spec.workgroupBytes ? spec.workgroupBytes(d, tail) : stWorkgroupBytes(spec.config(d), d, tail));
  const lanesOf = (d: number) => (spec.lanes ? spec.lanes(d) : spec.config(d).nw * 32);
  const rowsOf = (d: number) => (spec.rows ? spec.rows(d) : spec.config(d).nw * 32);
  const checkFits = named('checkTilesFit', (p: AttentionParams) => {
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const c = spec.config(p.e);
    if (c.s16 && !hasConfig(ctx, 'f16')) return `${name} keeps scores in f16 result matrices and needs an f16×f16→f16 16×16×16 configuration; ${adapterName(ctx)} has none`;
    const tail = stNeedsTail(p.l);
    return fitReason(ctx, name, `tiles ${stConfigName(c)} for head dim ${p.e}`, lanesOf(p.e), bytesOf(p.e, tail), stKey(spec, p.e, tail, hasLowerEdge(p)));
  });
  const dims = [64, 128].filter((d) => d <= spec.maxHeadDim);
  const checkLowerEdge = named('checkLowerEdge', (p: AttentionParams) =>
    spec.lowerEdge || !hasLowerEdge(p) ? undefined : `${name} applies causal diagonals but not a sliding window's lower edge (window [${p.window?.left}, ${p.window?.right}])`,
  );
  return {
    name,
    summary: spec.summary ?? `tensor cores (subgroup matrices), scores transposed (${dims.map((d) => `${stConfigName(spec.config(d))} at head dim ${d}`).join(', ')}), 16-bit output written by the kernel; any S and L, E = Ev a multiple of 16 up to ${spec.maxHeadDim}`,
    program: { kind: 'wgsl', shaders: [spec.program(64, false, 'float16', false).shader], note: dims.map((d) => `at head dim ${d}: ${stConfigName(spec.config(d))}`).join(', ') },
    availability: () => matrixAvailability(name, true),
    constraints: [checkSubgroupWidth(name), checkMatrixHeadDim(name, spec.maxHeadDim, spec.maxHeadDimWhy), checkLowerEdge, ...(spec.check ? [spec.check] : []), checkFits],
    run(p, rctx) {
      const tail = stNeedsTail(p.l);
      const lower = hasLowerEdge(p);
      return runTensorCore(label, name, p, rctx, spec.program(p.e, tail, p.dtype === 'bfloat16' ? 'bfloat16' : 'float16', lower), stKey(spec, p.e, tail, lower), rowsOf(p.e), true);
    },
    describe: () => ({
      config: Object.fromEntries(dims.map((d) => [`d${d}`, stConfigName(spec.config(d))])),
      workgroupBytes: Object.fromEntries(dims.map((d) => [`d${d}`, bytesOf(d, false)])),
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// sgmat_mw: flash-sgmat-mw.wgsl, frozen at 4 subgroups × 32 rows and 16-key blocks (the fastest
// shape of the 2026-12-01 H200 sweeps; the sweep's switches live in the bench-only
// scripts/probes/flash-sgmat-mw-lab.wgsl)

/** Rows per workgroup of flash-sgmat-mw.wgsl. */
const MW_ROWS = 128;
const MW_BC = 16;

/** Workgroup bytes of flash-sgmat-mw.wgsl: S (f32) and P (f16), the Q/K/V staging block, the row arrays, the flags. */
export function mwWorkgroupBytes(d: number): number {
  return MW_ROWS * MW_BC * 4 + MW_ROWS * (MW_BC + 8) * 2 + 2 * MW_BC * (d + 8) * 2 + 2 * MW_ROWS * 4 + 16;
}

/**
 * The program of flash-sgmat-mw.wgsl for head dim `d` and key count `l`: K/V staged when L is not
 * a multiple of 16 (Dawn clamps a tile load that crosses the end of a storage buffer as a whole
 * tile); above D = 64 each lane reads its scores once into registers (9% faster at D = 128 on the
 * H200, slower at D = 64).
 */
export function mwProgram(d: number, l: number, dtype: 'float16' | 'bfloat16' = 'float16', lower = false): ProgramInfo {
  return {
    shader: 'flash-sgmat-mw.wgsl',
    entryPoint: 'main',
    defines: { DM: d, DK: d / 16, KVS: l % MW_BC !== 0 ? 1 : 0, SREG: d > 64 ? 1 : 0, PACK: dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16', LOWER: +lower },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

function mwKey(d: number, l: number, dtype: string, lower = false): string {
  return `mw-d${d}${l % MW_BC !== 0 ? '-staged' : ''}-${dtype}${lower ? '-lower' : ''}`;
}

/** The multi-subgroup tensor-core kernel. */
export function sgmatMwKernel(label: string): KernelVariant {
  const name = 'sgmat_mw';
  const checkFits = named('checkTilesFit', (p: AttentionParams) => {
    const ctx = gpuContext();
    return ctx ? fitReason(ctx, name, `tiles for head dim ${p.e}`, MW_ROWS, mwWorkgroupBytes(p.e), mwKey(p.e, p.l, p.dtype, hasLowerEdge(p))) : undefined;
  });
  return {
    name,
    summary: 'tensor cores (subgroup matrices), four 32-lane subgroups per workgroup sharing staged Q, 16-key blocks, 16-bit output written by the kernel; any S and L, E = Ev a multiple of 16 up to 256',
    program: { kind: 'wgsl', shaders: ['flash-sgmat-mw.wgsl'], note: '4 subgroups × 32 rows, 16-key blocks' },
    availability: () => matrixAvailability(name, true),
    constraints: [checkSubgroupWidth(name), checkMatrixHeadDim(name, 256), checkFits],
    run(p, rctx) {
      const dtype = p.dtype === 'bfloat16' ? 'bfloat16' : 'float16';
      const lower = hasLowerEdge(p);
      return runTensorCore(label, name, p, rctx, mwProgram(p.e, p.l, dtype, lower), mwKey(p.e, p.l, p.dtype, lower), MW_ROWS, true);
    },
    describe: () => {
      const ctx = gpuContext();
      return { rows: MW_ROWS, keysPerBlock: MW_BC, subgroupMatrixConfigs: ctx?.subgroupMatrixConfigs ?? [], emulated: ctx?.sgmatEmulated ?? false };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// sgmat_1sg: flash-sgmat.wgsl

/** Keys per block of the one-subgroup tensor-core kernel (fixed in flash-sgmat.wgsl). */
const SGMAT_BC = 64;

/** Workgroup bytes of the one-subgroup kernel: f32 scores, f16 probabilities, f32 output tile. */
function oneSgWorkgroupBytes(sg: number, dmax: number): number {
  return sg * SGMAT_BC * 4 + sg * SGMAT_BC * 2 + sg * dmax * 4;
}

/** The one-subgroup tensor-core kernel (flash-sgmat.wgsl). */
export function sgmatOneSubgroupKernel(label: string): KernelVariant {
  const name = 'sgmat_1sg';
  const checkWholeTiles = named('checkWholeTiles', (p: AttentionParams) => {
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const { subgroupMinSize: lo, subgroupMaxSize: sg } = ctx.adapterInfo;
    if (lo !== sg || sg % 16 !== 0) return `${name} needs a fixed subgroup size that is a multiple of 16, the adapter has ${lo}..${sg}`;
    // Dawn clamps a subgroup-matrix load/store on a storage buffer as a whole tile: a tile that runs
    // past the end of q/k/v (ragged S or L in the last head) reads wrong rows.
    if (p.s % sg !== 0 || p.l % SGMAT_BC !== 0) return `${name} needs whole tiles, S % ${sg} = 0 and L % ${SGMAT_BC} = 0, got S=${p.s}, L=${p.l}`;
    const dmax = headDimBucket(p.e);
    return fitReason(ctx, name, `tiles for head dim ${p.e}`, sg, oneSgWorkgroupBytes(sg, dmax), `old-d${dmax}`);
  });
  return {
    name,
    summary: 'tensor cores (subgroup matrices), one subgroup per workgroup, whole tiles only (S a multiple of the subgroup size, L of 64)',
    program: { kind: 'wgsl', shaders: ['flash-sgmat.wgsl', 'pack-half.wgsl'] },
    availability: () => matrixAvailability(name, false),
    constraints: [checkMatrixHeadDim(name, 256), checkWholeTiles],
    run(p, rctx) {
      const ctx = gpuContext()!;
      const sg = ctx.adapterInfo.subgroupMaxSize;
      const dmax = headDimBucket(p.e);
      const program: ProgramInfo = { shader: 'flash-sgmat.wgsl', entryPoint: 'main', defines: { SG: sg, DMAX: dmax, CAUSAL_SKIP: 1 }, bindings: ['uniform', 'read', 'read', 'read', 'rw'] };
      return runTensorCore(label, name, p, rctx, program, `old-d${dmax}`, sg);
    },
  };
}
