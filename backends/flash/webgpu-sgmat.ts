/// <reference types="@webgpu/types" />
/**
 * The tensor-core kernel variants of FLASH_ATTENTION (webgpu), through Dawn's
 * chromium-experimental-subgroup-matrix (f16×f16→f32 16×16×16):
 * - `sgmat_mw`: shaders/flash-sgmat-mw.wgsl, several 32-lane subgroups per workgroup, any S and L
 *   (Q, and K/V when L is ragged, staged with bounds checks), E = Ev a multiple of 16 up to 256.
 *   Tested in CI through the subgroup-matrix emulation (lavapipe) and on an H200;
 * - `sgmat_1sg`: shaders/flash-sgmat.wgsl, one subgroup per workgroup, whole tiles only
 *   (S % subgroup = 0, L % 64 = 0): where the first does not fit (other subgroup widths).
 * A kernel whose pipeline a driver or Dawn rejects is remembered, and is then a reason.
 */
import { BackendFaultError } from '../../src/errors.js';
import { named } from '../../src/dispatch/constraints.js';
import type { Availability, AttentionParams, KernelVariant, RunContext } from '../../src/dispatch/types.js';
import { bindTensor, dispatchRows, headDimBucket, paramsUniform, runAttention, type Pass } from '../../src/webgpu/attention.js';
import { gpuContext, type WebGpuContext } from '../../src/webgpu/device.js';
import { getPipeline, type ProgramInfo } from '../../src/webgpu/programs.js';

/** Keys per block of the one-subgroup tensor-core kernel (fixed in flash-sgmat.wgsl). */
const SGMAT_BC = 64;

/**
 * Tile shape of flash-sgmat-mw.wgsl: `nw` subgroups of 32 lanes per workgroup, each owning
 * `rt` 16-row query tiles; `bc` keys per block; K/V staged in workgroup memory (`kvs`) or read
 * straight from storage; `th` the lazy-rescale threshold (log2 units); `abl` ablation bits (bench only).
 */
export interface SgmatTiles {
  readonly nw: number;
  readonly rt: number;
  readonly bc: number;
  readonly kvs: boolean;
  readonly th: number;
  readonly abl: number;
  /** Layout switches for bisecting driver differences (see the shader's header); 0 in production. */
  readonly flg: number;
}

/** `NWxRTxBC` + `s` (staged K/V) or `d` (direct), optional `-tTH`, `-aABL`, `-fFLG`: e.g. `2x2x64d`, `4x1x64s-t8-a1`. */
export function parseSgmatTiles(text: string): SgmatTiles | undefined {
  const m = /^(\d+)x(\d+)x(\d+)([sd])(?:-t(\d+))?(?:-a(\d+))?(?:-f(\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  const t = { nw: Number(m[1]), rt: Number(m[2]), bc: Number(m[3]), kvs: m[4] === 's', th: m[5] ? Number(m[5]) : 8, abl: m[6] ? Number(m[6]) : 0, flg: m[7] ? Number(m[7]) : 0 };
  if (![1, 2, 4, 8, 16].includes(t.nw) || ![1, 2].includes(t.rt) || ![16, 32, 64].includes(t.bc)) return undefined;
  return t;
}

/** The canonical text of a tile shape (cache keys, reports). */
export function sgmatTilesName(t: SgmatTiles): string {
  return `${t.nw}x${t.rt}x${t.bc}${t.kvs ? 's' : 'd'}-t${t.th}${t.abl ? `-a${t.abl}` : ''}${t.flg ? `-f${t.flg}` : ''}`;
}

/** Row padding (f16 elements) of P and the staged tiles; FLG 4 drops it. */
function pad(t: SgmatTiles): number {
  return t.flg & 4 ? 0 : 8;
}

/** Workgroup bytes of flash-sgmat-mw.wgsl: S (f32) and P (f16) per subgroup, the K/V/Q staging block, row arrays (and O with FLG 2). */
export function sgmatMwWorkgroupBytes(t: SgmatTiles, d: number): number {
  const rows = t.nw * 16 * t.rt;
  return rows * (t.bc + (t.flg & 256 ? 8 : 0)) * 4 + rows * (t.bc + pad(t)) * 2 + 2 * t.bc * (d + pad(t)) * 2 + 2 * rows * 4 + 16 + (t.flg & 2 ? rows * d * 4 : 0);
}

/**
 * The shipped tiles per head dim: the fastest of the H200 sweeps of 2026-12-01 (runs 6-9 in
 * docs/performance-webgpu.md; kernel time at S=4096, B=8, H=12): 4 subgroups × 32 rows, 16-key
 * blocks, K/V straight from storage; above D=64 the softmax reads each score once into
 * registers (FLG 1024), which at D=64 was slower. Not smaller workgroups for small grids: at
 * S=2048 2x2x16d was slower than 4x2x16d (run 10: 29.7 against 32.8 TF/s in the kernel).
 */
export function defaultSgmatTiles(d: number): SgmatTiles {
  return { nw: 4, rt: 2, bc: 16, kvs: false, th: 8, abl: 0, flg: d > 64 ? 1024 : 0 };
}

/** The program of flash-sgmat-mw.wgsl for tiles `t` and head dim `d`. */
export function mwProgram(t: SgmatTiles, d: number): ProgramInfo {
  const rows = t.nw * 16 * t.rt;
  const ocw = Math.min(d, t.bc);
  const qrr = Math.min(rows, 2 * t.bc);
  return {
    shader: 'flash-sgmat-mw.wgsl',
    entryPoint: 'main',
    defines: {
      NW: t.nw, RT: t.rt, R: 16 * t.rt, LPR: 32 / (16 * t.rt), SHUF: t.rt === 1 ? 1 : 0, BC: t.bc, NC: t.bc / 16, DM: d, DK: d / 16,
      OCW: ocw, OCH: d / ocw, OCT: ocw / 16, PPAD: pad(t), KPAD: pad(t), TH: t.th.toFixed(1), KVS: t.kvs ? 1 : 0,
      QR: Math.ceil(rows / qrr), QRR: qrr, CAUSAL_SKIP: 1, ABL: t.abl,
      FLG: t.flg, OWG: t.flg & 2 ? 1 : 0, QG: t.flg & 1 ? 1 : 0,
      // Prefetch applies to direct K/V only (staged blocks come through kv_sm).
      PF: t.flg & 2048 && !t.kvs ? 1 : 0, KDIRECT: !t.kvs && !(t.flg & 2048) ? 1 : 0,
      QONE: !(t.flg & 1) && rows <= qrr ? 1 : 0, QROUNDS: !(t.flg & 1) && rows > qrr ? 1 : 0,
      RTALWAYS: t.flg & 128 && !(t.flg & 2) ? 1 : 0,
      GSTRIDE: t.flg & 512 ? 'params.e' : 'DM',
      DBG: 0, DBG3: 0, DBG4: 0, DBG5: 0,
      DO_QK: t.abl & 4 ? 0 : 1, DO_SST: t.abl & 8 ? 0 : 1, DO_PV: t.abl & 2 ? 0 : 1,
    },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

/** Pipelines a driver or Dawn rejected, by program key: later calls get the reason instead. */
const compileFailures = new Map<string, string>();

/** Compile failures of the tensor-core kernels so far (`capabilities()` shows them). */
export function sgmatCompileFailures(): Record<string, string> {
  return Object.fromEntries(compileFailures);
}

function hasF16Matrix(ctx: WebGpuContext): boolean {
  return ctx.subgroupMatrixConfigs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16);
}

function adapterName(ctx: WebGpuContext): string {
  return ctx.adapterInfo.description || ctx.adapterInfo.device || ctx.adapterInfo.vendor || 'this adapter';
}

/** Both tensor-core kernels need an f16 16×16×16 configuration (or the emulation, for sgmat_mw). */
function matrixAvailability(name: string, allowEmulated: boolean): Availability {
  const ctx = gpuContext();
  if (!ctx) return { available: false, reason: `${name} needs a WebGPU adapter` };
  if (ctx.sgmatEmulated && !allowEmulated) return { available: false, reason: `${name} does not run on emulated subgroup matrices (SDPA_WEBGPU_SGMAT_EMULATE tests sgmat_mw)` };
  if (!hasF16Matrix(ctx) && !ctx.sgmatEmulated) {
    const why = ctx.features.has('chromium-experimental-subgroup-matrix') ? 'no f16×f16→f32 16×16×16 configuration' : 'no chromium-experimental-subgroup-matrix feature';
    return { available: false, reason: `${name} needs tensor cores through subgroup matrices (an f16×f16→f32 16×16×16 configuration); ${adapterName(ctx)} has ${why}` };
  }
  return { available: true };
}

/** E = Ev, a multiple of 16 up to `max` (subgroup-matrix tiles are 16 wide). */
function checkMatrixHeadDim(name: string, max: number) {
  return named('checkMatrixHeadDim', (p: AttentionParams) =>
    p.e === p.ev && p.e % 16 === 0 && p.e <= max ? undefined : `${name} needs E = Ev, a multiple of 16 up to ${max}, got E=${p.e}, Ev=${p.ev}`,
  );
}

/** The tiles a call of `sgmat_mw` uses: the shipped ones, K/V staged when L is ragged. */
function callTiles(tilesFor: (d: number) => SgmatTiles, p: Pick<AttentionParams, 'e' | 'l'>): SgmatTiles {
  const t = tilesFor(p.e);
  // Direct K/V loads need whole key blocks (Dawn clamps a tile crossing the buffer end); ragged L stages them.
  return !t.kvs && p.l % t.bc !== 0 ? { ...t, kvs: true } : t;
}

function mwKey(t: SgmatTiles, d: number): string {
  return `mw-${sgmatTilesName(t)}-d${d}`;
}

/** Runs `program` (compiling it first, so a rejected pipeline is remembered and faults over to the next kernel). */
async function runTensorCore(label: string, name: string, p: AttentionParams, rctx: RunContext, program: ProgramInfo, key: string, rows: number) {
  const ctx = gpuContext();
  if (ctx) {
    try {
      await getPipeline(ctx, program);
    } catch (err) {
      compileFailures.set(key, (err as Error).message);
      throw new BackendFaultError(`${name} failed to compile (${key}): ${(err as Error).message}`, { cause: err });
    }
  }
  return runAttention(label, p, rctx, async (cb, out, pre): Promise<Pass[]> => {
    const q = await bindTensor(cb, p.q, 'q', label, pre, true);
    const k = await bindTensor(cb, p.k, 'k', label, pre, true);
    const v = await bindTensor(cb, p.v, 'v', label, pre, true);
    return [{ program, buffers: [cb.uniform(paramsUniform(p)), q, k, v, out], dispatch: dispatchRows(cb.ctx, p, rows) }];
  });
}

/**
 * The multi-subgroup tensor-core kernel with tiles per head dim from `tilesFor` (the shipped
 * variant uses {@link defaultSgmatTiles}; benchmarks and tests make others under their own names).
 */
export function sgmatMwKernel(label: string, tilesFor: (d: number) => SgmatTiles = defaultSgmatTiles, name = 'sgmat_mw'): KernelVariant {
  const checkSubgroupWidth = named('checkSubgroupWidth', () => {
    const ctx = gpuContext();
    if (!ctx || ctx.sgmatEmulated) return undefined;
    const { subgroupMinSize: lo, subgroupMaxSize: hi } = ctx.adapterInfo;
    return lo === 32 && hi === 32 ? undefined : `${name} needs 32-wide subgroups, the adapter has ${lo}..${hi}`;
  });
  const checkTilesFit = named('checkTilesFit', (p: AttentionParams) => {
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const t = callTiles(tilesFor, p);
    const lanes = t.nw * 32;
    const lim = Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX);
    if (lanes > lim) return `${name} tiles ${sgmatTilesName(t)} need ${lanes} invocations per workgroup, over the adapter's limit ${lim}`;
    const bytes = sgmatMwWorkgroupBytes(t, p.e);
    if (bytes > ctx.limits.maxComputeWorkgroupStorageSize) return `${name} tiles ${sgmatTilesName(t)} for head dim ${p.e} need ${bytes} bytes of workgroup memory, over maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}`;
    const failed = compileFailures.get(mwKey(t, p.e));
    return failed ? `${name} (${mwKey(t, p.e)}) failed to compile on this adapter: ${failed}` : undefined;
  });
  return {
    name,
    summary: 'tensor cores (subgroup matrices), several 32-lane subgroups per workgroup sharing staged Q and K/V, any S and L, E = Ev a multiple of 16 up to 256',
    program: { kind: 'wgsl', shaders: ['flash-sgmat-mw.wgsl'], note: `tiles at head dim 64: ${sgmatTilesName(tilesFor(64))}` },
    availability: () => matrixAvailability(name, true),
    constraints: [checkSubgroupWidth, checkMatrixHeadDim(name, 256), checkTilesFit],
    run(p, rctx) {
      const t = callTiles(tilesFor, p);
      return runTensorCore(label, name, p, rctx, mwProgram(t, p.e), mwKey(t, p.e), t.nw * 16 * t.rt);
    },
    describe: () => {
      const ctx = gpuContext();
      return {
        tiles: Object.fromEntries([64, 128].map((d) => [`d${d}`, sgmatTilesName(tilesFor(d))])),
        subgroupMatrixConfigs: ctx?.subgroupMatrixConfigs ?? [],
        emulated: ctx?.sgmatEmulated ?? false,
      };
    },
  };
}

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
    if (oneSgWorkgroupBytes(sg, dmax) > ctx.limits.maxComputeWorkgroupStorageSize) return `${name} tiles for head dim ${p.e} need ${oneSgWorkgroupBytes(sg, dmax)} bytes of workgroup memory, over maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}`;
    const failed = compileFailures.get(`old-d${dmax}`);
    return failed ? `${name} (old-d${dmax}) failed to compile on this adapter: ${failed}` : undefined;
  });
  return {
    name,
    summary: 'tensor cores (subgroup matrices), one subgroup per workgroup, whole tiles only (S a multiple of the subgroup size, L of 64)',
    program: { kind: 'wgsl', shaders: ['flash-sgmat.wgsl'] },
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
