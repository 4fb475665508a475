/// <reference types="@webgpu/types" />
/**
 * FLASH_ATTENTION on WebGPU: f16 storage (bf16 converted), f32 accumulation, causal variants as a
 * diagonal offset (no mask buffers), GQA, dropout with the shared RNG. Kernels:
 * - tensor cores, several subgroups per workgroup: shaders/flash-sgmat-mw.wgsl, on adapters with
 *   an f16×f16→f32 16×16×16 subgroup-matrix configuration and 32-wide subgroups (NVIDIA through
 *   Dawn), any S and L (Q, and K/V when L is ragged, staged with bounds checks), E = Ev a multiple
 *   of 16 up to 256. Tested in CI through the subgroup-matrix emulation (lavapipe) and on an H200;
 * - tensor cores, one subgroup per workgroup: shaders/flash-sgmat.wgsl, the fallback where the
 *   first does not fit (other subgroup widths), whole tiles only (S % subgroup = 0, L % 64 = 0);
 *   `SDPA_WEBGPU_SGMAT_KERNEL=old` forces it;
 * - portable: shaders/tiled-attention.wgsl with f16 tiles (lavapipe, other adapters, other shapes).
 * Tile sizes come from maxComputeWorkgroupStorageSize; the path is an init-time fact per shape class.
 */
import { named } from '../../src/dispatch/constraints.js';
import { envVar as env } from '../../src/env.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { bindTensor, checkBuffersFit, dispatchRows, headDimBucket, ioDefines, paramsUniform, runAttention, type Pass } from '../../src/webgpu/attention.js';
import { describeGpu, gpuAvailability, gpuContext, initWebGpu, type WebGpuContext } from '../../src/webgpu/device.js';
import { getPipeline, type ProgramInfo } from '../../src/webgpu/programs.js';
import { keysPerBlock } from '../efficient/webgpu.js';

const LABEL = 'flash (webgpu)';
/** Rows per workgroup of the portable path. */
const BR = 64;
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
 * Default tiles per head dim: the fastest of the H200 sweeps of 2026-12-01 (runs 6-9 in
 * docs/performance-webgpu.md; kernel time at S=4096, B=8, H=12): 4 subgroups × 32 rows, 16-key
 * blocks, K/V straight from storage; above D=64 the softmax reads each score once into
 * registers (FLG 1024), which at D=64 was slower. K/V prefetch (FLG 2048) gained nothing at D=64
 * and lost 28% at D=128, so it stays off.
 */
function defaultTiles(d: number): SgmatTiles {
  // Not smaller workgroups for small grids: at S=2048 (1536 workgroups of 128 rows on 132 SMs)
  // 2x2x16d was slower than 4x2x16d (run 10: 29.7 against 32.8 TF/s in the kernel).
  return { nw: 4, rt: 2, bc: 16, kvs: false, th: 8, abl: 0, flg: d > 64 ? 1024 : 0 };
}

/** Which kernel a call would use, and why not a tensor-core one. */
export interface FlashPath {
  readonly kind: 'subgroup-matrix' | 'portable';
  readonly why: string;
  /** The tensor-core kernel: `mw-<tiles>` (flash-sgmat-mw.wgsl) or `old` (flash-sgmat.wgsl). */
  readonly kernel?: string;
  readonly tiles?: SgmatTiles;
}

/** Compile failures of the tensor-core kernels per kernel name (then the next path is used). */
const sgmatFailures = new Map<string, string>();

function hasF16Matrix(ctx: WebGpuContext): boolean {
  return ctx.subgroupMatrixConfigs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16);
}

/** Workgroup bytes of the one-subgroup kernel: f32 scores, f16 probabilities, f32 output tile. */
function sgmatWorkgroupBytes(sg: number, dmax: number): number {
  return sg * SGMAT_BC * 4 + sg * SGMAT_BC * 2 + sg * dmax * 4;
}

type PathQuery = Pick<AttentionParams, 'e' | 'ev'> & { causal?: AttentionParams['causal']; s?: number; l?: number };

/** The multi-subgroup kernel for `p`, or why not. */
function mwPath(ctx: WebGpuContext, p: PathQuery): FlashPath {
  const sg = ctx.adapterInfo.subgroupMaxSize;
  if (!ctx.sgmatEmulated && (sg !== 32 || ctx.adapterInfo.subgroupMinSize !== 32)) return { kind: 'portable', why: `the tensor-core kernel needs 32-wide subgroups (adapter: ${ctx.adapterInfo.subgroupMinSize}..${sg})` };
  if (p.e !== p.ev || p.e % 16 !== 0 || p.e > 256) return { kind: 'portable', why: `the tensor-core kernel needs E = Ev, a multiple of 16 up to 256 (E=${p.e}, Ev=${p.ev})` };
  const forced = env('SDPA_WEBGPU_SGMAT_TILES');
  const parsed = forced ? parseSgmatTiles(forced) : defaultTiles(p.e);
  if (!parsed) return { kind: 'portable', why: `SDPA_WEBGPU_SGMAT_TILES='${forced}' is not NWxRTxBC[s|d][-tTH][-aABL][-fFLG] (NW 1/2/4/8/16, RT 1/2, BC 16/32/64), e.g. 8x1x16d` };
  let tiles = parsed;
  // Direct K/V loads need whole key blocks (Dawn clamps a tile crossing the buffer end); ragged L stages them.
  if (!tiles.kvs && p.l !== undefined && p.l % tiles.bc !== 0) tiles = { ...tiles, kvs: true };
  const lanes = tiles.nw * 32;
  if (lanes > ctx.limits.maxComputeInvocationsPerWorkgroup || lanes > ctx.limits.maxComputeWorkgroupSizeX) return { kind: 'portable', why: `tensor-core tiles ${sgmatTilesName(tiles)} need ${lanes} invocations per workgroup, over the adapter's limit ${Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX)}` };
  const bytes = sgmatMwWorkgroupBytes(tiles, p.e);
  if (bytes > ctx.limits.maxComputeWorkgroupStorageSize) return { kind: 'portable', why: `tensor-core tiles ${sgmatTilesName(tiles)} for head dim ${p.e} need ${bytes} bytes of workgroup memory, over maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}` };
  const kernel = `mw-${sgmatTilesName(tiles)}-d${p.e}`;
  const failed = sgmatFailures.get(kernel);
  if (failed) return { kind: 'portable', why: `the tensor-core kernel ${kernel} failed to compile: ${failed}` };
  return { kind: 'subgroup-matrix', why: `f16 16×16×16 subgroup matrices${ctx.sgmatEmulated ? ' (emulated)' : ''}, ${tiles.nw} subgroups × ${16 * tiles.rt} rows, ${tiles.bc}-key blocks${tiles.kvs ? ' staged' : ''}`, kernel, tiles };
}

/** The first (one-subgroup) kernel for `p`, or why not: whole tiles only. */
function oldPath(ctx: WebGpuContext, p: PathQuery): FlashPath {
  const sg = ctx.adapterInfo.subgroupMaxSize;
  if (sg !== ctx.adapterInfo.subgroupMinSize || sg % 16 !== 0) return { kind: 'portable', why: `subgroup size is not a fixed multiple of 16 (${ctx.adapterInfo.subgroupMinSize}..${sg})` };
  // Dawn clamps a subgroup-matrix load/store on a storage buffer as a whole tile: a tile that runs
  // past the end of q/k/v (ragged S or L in the last head) reads wrong rows.
  if (p.s !== undefined && p.l !== undefined && (p.s % sg !== 0 || p.l % SGMAT_BC !== 0)) return { kind: 'portable', why: `the one-subgroup kernel needs S % ${sg} = 0 and L % ${SGMAT_BC} = 0 (S=${p.s}, L=${p.l})` };
  if (p.e !== p.ev || p.e % 16 !== 0) return { kind: 'portable', why: `the tensor-core kernel needs E = Ev, a multiple of 16 (E=${p.e}, Ev=${p.ev})` };
  const dmax = headDimBucket(p.e);
  if (sgmatWorkgroupBytes(sg, dmax) > ctx.limits.maxComputeWorkgroupStorageSize) return { kind: 'portable', why: `tiles for head dim ${p.e} exceed maxComputeWorkgroupStorageSize` };
  const failed = sgmatFailures.get(`old-d${dmax}`);
  if (failed) return { kind: 'portable', why: `the tensor-core kernel failed to compile: ${failed}` };
  return { kind: 'subgroup-matrix', why: `f16 16×16×16 subgroup matrices, one subgroup of ${sg}`, kernel: `old-d${dmax}` };
}

/** Picks the kernel for `p` on `ctx` (`SDPA_WEBGPU_FLASH_PATH=portable` forces the portable one). */
export function flashPath(ctx: WebGpuContext, p: PathQuery): FlashPath {
  if (env('SDPA_WEBGPU_FLASH_PATH') === 'portable') return { kind: 'portable', why: 'SDPA_WEBGPU_FLASH_PATH=portable' };
  if (!hasF16Matrix(ctx)) return { kind: 'portable', why: 'the adapter exposes no f16 16×16×16 subgroup-matrix configuration' };
  const which = env('SDPA_WEBGPU_SGMAT_KERNEL');
  if (which === 'old') return oldPath(ctx, p);
  // The multi-subgroup kernel is 4-5× the first one on an H200 (docs/performance-webgpu.md) and
  // takes any S and L; the first one remains for what it cannot take (subgroups not 32 wide).
  const mw = mwPath(ctx, p);
  if (mw.kind === 'subgroup-matrix' || which === 'mw' || env('SDPA_WEBGPU_SGMAT_TILES') || ctx.sgmatEmulated) return mw;
  const old = oldPath(ctx, p);
  return old.kind === 'subgroup-matrix' ? old : { kind: 'portable', why: `${mw.why}; ${old.why}` };
}

const checkShaderF16 = named('checkShaderF16', () => {
  const ctx = gpuContext();
  if (!ctx || ctx.features.has('shader-f16')) return undefined;
  return `${LABEL} requires shader-f16; this adapter lacks it (on NVIDIA, Dawn needs the vulkan_enable_f16_on_nvidia toggle); use EFFICIENT_ATTENTION`;
});

const checkTileFits = named('checkWorkgroupStorage', (p: AttentionParams) => {
  const ctx = gpuContext();
  if (!ctx) return undefined;
  const need = 8 * (headDimBucket(p.e) + headDimBucket(p.ev)) * 2;
  return need <= ctx.limits.maxComputeWorkgroupStorageSize
    ? undefined
    : `${LABEL} needs ${need} bytes of workgroup memory for an 8-key f16 tile, more than the adapter's maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}; use EFFICIENT_ATTENTION`;
});

function portableProgram(ctx: WebGpuContext, p: AttentionParams): ProgramInfo {
  const dmax = headDimBucket(p.e);
  const dvmax = headDimBucket(p.ev);
  return {
    shader: 'tiled-attention.wgsl',
    entryPoint: 'main',
    defines: { ...ioDefines(p, 'float16'), ENABLES: 'enable f16;', TILE_T: 'f16', BR, BC: keysPerBlock(ctx, dmax, dvmax, 2), DMAX: dmax, DVMAX: dvmax },
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'rw'],
  };
}

function envFlag(name: string): boolean {
  return env(name) === '1';
}

function oldProgram(ctx: WebGpuContext, p: AttentionParams): ProgramInfo {
  return {
    shader: 'flash-sgmat.wgsl',
    entryPoint: 'main',
    defines: { SG: ctx.adapterInfo.subgroupMaxSize, DMAX: headDimBucket(p.e), CAUSAL_SKIP: envFlag('SDPA_WEBGPU_SGMAT_NOSKIP') ? 0 : 1 },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

/** Workgroup rows of a tensor-core program (for the dispatch size). */
function programRows(ctx: WebGpuContext, path: FlashPath): number {
  return path.tiles ? path.tiles.nw * 16 * path.tiles.rt : ctx.adapterInfo.subgroupMaxSize;
}

/** The program of flash-sgmat-mw.wgsl for tiles `t` and head dim `d` (exported for tests). */
export function mwProgram(t: SgmatTiles, d: number): ProgramInfo {
  // SDPA_WEBGPU_SGMAT_DEBUG=1..5 makes the kernel write an intermediate instead of the output (see the shader).
  const dbg = Number(env('SDPA_WEBGPU_SGMAT_DEBUG') ?? 0) || 0;
  const rows = t.nw * 16 * t.rt;
  const ocw = Math.min(d, t.bc);
  const qrr = Math.min(rows, 2 * t.bc);
  return {
    shader: 'flash-sgmat-mw.wgsl',
    entryPoint: 'main',
    defines: {
      NW: t.nw, RT: t.rt, R: 16 * t.rt, LPR: 32 / (16 * t.rt), SHUF: t.rt === 1 ? 1 : 0, BC: t.bc, NC: t.bc / 16, DM: d, DK: d / 16,
      OCW: ocw, OCH: d / ocw, OCT: ocw / 16, PPAD: pad(t), KPAD: pad(t), TH: t.th.toFixed(1), KVS: t.kvs ? 1 : 0,
      QR: Math.ceil(rows / qrr), QRR: qrr, CAUSAL_SKIP: envFlag('SDPA_WEBGPU_SGMAT_NOSKIP') ? 0 : 1, ABL: t.abl,
      FLG: t.flg, OWG: t.flg & 2 ? 1 : 0, QG: t.flg & 1 ? 1 : 0,
      // Prefetch applies to direct K/V only (staged blocks come through kv_sm).
      PF: t.flg & 2048 && !t.kvs ? 1 : 0, KDIRECT: !t.kvs && !(t.flg & 2048) ? 1 : 0,
      QONE: !(t.flg & 1) && rows <= qrr ? 1 : 0, QROUNDS: !(t.flg & 1) && rows > qrr ? 1 : 0,
      RTALWAYS: t.flg & 128 && !(t.flg & 2) ? 1 : 0,
      GSTRIDE: t.flg & 512 ? 'params.e' : 'DM',
      DBG: dbg, DBG3: dbg === 3 ? 1 : 0, DBG4: dbg === 4 ? 1 : 0, DBG5: dbg === 5 ? 1 : 0,
      DO_QK: t.abl & 4 ? 0 : 1, DO_SST: t.abl & 8 ? 0 : 1, DO_PV: t.abl & 2 ? 0 : 1,
    },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

async function run(p: AttentionParams, rctx: RunContext) {
  return runAttention(LABEL, p, rctx, async (cb, out, pre): Promise<Pass[]> => {
    const q = await bindTensor(cb, p.q, 'q', LABEL, pre, true);
    const k = await bindTensor(cb, p.k, 'k', LABEL, pre, true);
    const v = await bindTensor(cb, p.v, 'v', LABEL, pre, true);
    const uniform = cb.uniform(paramsUniform(p));
    // Experimental WGSL: a kernel that a driver or Dawn rejects is recorded once (then flashPath
    // returns the next path).
    for (let path = flashPath(cb.ctx, p); path.kind === 'subgroup-matrix' && path.kernel; path = flashPath(cb.ctx, p)) {
      const program = path.tiles ? mwProgram(path.tiles, p.e) : oldProgram(cb.ctx, p);
      try {
        await getPipeline(cb.ctx, program);
        return [{ program, buffers: [uniform, q, k, v, out], dispatch: dispatchRows(cb.ctx, p, programRows(cb.ctx, path)) }];
      } catch (err) {
        sgmatFailures.set(path.kernel, (err as Error).message);
      }
    }
    const dummy = cb.storage(16, 'no-mask');
    return [{ program: portableProgram(cb.ctx, p), buffers: [uniform, q, k, v, dummy, dummy, out], dispatch: dispatchRows(cb.ctx, p, BR) }];
  });
}

/** The FLASH_ATTENTION backend's WebGPU part. Register it in backends/flash/index.ts's `parts`. */
export const flashWebgpu: BackendPart = {
  device: 'webgpu',
  label: LABEL,
  caps: {
    dtypes: ['float16', 'bfloat16'],
    maxHeadDim: 256,
    headDimMultiple: 8,
    maskKinds: ['none'],
    causalVariants: ['upper-left', 'lower-right', 'both'],
    maskWithCausal: false,
    dropout: true,
    gqa: true,
    customScale: true,
    valueDimDiffers: true,
    notes: 'WGSL, f16 storage (bf16 converted), f32 accumulation; subgroup-matrix (tensor core) kernel when the adapter exposes f16 configs, else f16 tiles sized from maxComputeWorkgroupStorageSize; causal variants without mask buffers',
  },
  availability: gpuAvailability,
  init: initWebGpu,
  constraints: [checkShaderF16, checkTileFits, checkBuffersFit(LABEL)],
  run,
  // f16 probabilities feed the P·V product on the tensor-core path: a little more than the output rounding.
  tolerance: {
    float32: { atol: 2e-4, rtol: 2e-4 },
    float16: { atol: 2e-3, rtol: 2e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => {
    const ctx = gpuContext();
    const path = ctx ? flashPath(ctx, { e: 64, ev: 64 }) : undefined;
    return { ...describeGpu(), flashPathHeadDim64: path, sgmatCompileFailures: Object.fromEntries(sgmatFailures) };
  },
};
