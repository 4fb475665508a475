/// <reference types="@webgpu/types" />
/**
 * FLASH_ATTENTION on WebGPU: f16 storage (bf16 converted), f32 accumulation, causal variants as a
 * diagonal offset (no mask buffers), GQA, dropout with the shared RNG. Two kernels:
 * - tensor cores: shaders/flash-sgmat.wgsl, on adapters exposing subgroup matrices with an
 *   f16×f16→f32 16×16×16 configuration (NVIDIA through Dawn), when E = Ev and E is a multiple of 16;
 * - portable: shaders/tiled-attention.wgsl with f16 tiles (lavapipe, other adapters, other shapes).
 * Tile sizes come from maxComputeWorkgroupStorageSize; the path is an init-time fact per head-dim bucket.
 */
import { named } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { bindTensor, checkBuffersFit, dispatchRows, headDimBucket, ioDefines, paramsUniform, runAttention, type Pass } from '../../src/webgpu/attention.js';
import { describeGpu, gpuAvailability, gpuContext, initWebGpu, type WebGpuContext } from '../../src/webgpu/device.js';
import { getPipeline, type ProgramInfo } from '../../src/webgpu/programs.js';
import { keysPerBlock } from '../efficient/webgpu.js';

const LABEL = 'flash (webgpu)';
/** Rows per workgroup of the portable path. */
const BR = 64;
/** Keys per block of the tensor-core kernel (fixed in the shader). */
const SGMAT_BC = 64;

/** Which kernel a call would use, and why not the tensor-core one. */
export interface FlashPath {
  readonly kind: 'subgroup-matrix' | 'portable';
  readonly why: string;
}

/** Compile failures of the tensor-core kernel per head-dim bucket (then the portable path is used). */
const sgmatFailures = new Map<number, string>();

function hasF16Matrix(ctx: WebGpuContext): boolean {
  return ctx.subgroupMatrixConfigs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16);
}

/** Workgroup bytes of the tensor-core kernel: f32 scores, f16 probabilities, f32 output tile. */
function sgmatWorkgroupBytes(sg: number, dmax: number): number {
  return sg * SGMAT_BC * 4 + sg * SGMAT_BC * 2 + sg * dmax * 4;
}

/** Picks the kernel for `p` on `ctx` (`SDPA_WEBGPU_FLASH_PATH=portable` forces the portable one). */
export function flashPath(ctx: WebGpuContext, p: Pick<AttentionParams, 'e' | 'ev'> & { causal?: AttentionParams['causal']; s?: number; l?: number }): FlashPath {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.SDPA_WEBGPU_FLASH_PATH;
  if (env === 'portable') return { kind: 'portable', why: 'SDPA_WEBGPU_FLASH_PATH=portable' };
  // SDPA_WEBGPU_FLASH_PATH=subgroup-matrix forces the tensor-core kernel where it can run (diagnostics).
  if (!hasF16Matrix(ctx)) return { kind: 'portable', why: 'the adapter exposes no f16 16×16×16 subgroup-matrix configuration' };
  const sg = ctx.adapterInfo.subgroupMaxSize;
  if (sg !== ctx.adapterInfo.subgroupMinSize || sg % 16 !== 0) return { kind: 'portable', why: `subgroup size is not a fixed multiple of 16 (${ctx.adapterInfo.subgroupMinSize}..${sg})` };
  // Causal is served by the tensor-core kernel too: on an H200 the aligned causal, lower-right and
  // GQA-causal cases pass against the CPU reference (docs/bench-webgpu-h200-verify.txt); the
  // earlier parity failures were ragged shapes, routed to the portable kernel below.
  // Dawn clamps a subgroup-matrix load/store on a storage buffer as a whole tile: a tile that runs
  // past the end of q/k/v (ragged S or L in the last head) reads wrong rows. This kernel loads Q
  // (SG rows) and K/V (64 keys) straight from storage, so it only takes shapes with whole tiles.
  // (This, not causal masking, is what failed GPU parity: every failing case was ragged.)
  if (p.s !== undefined && p.l !== undefined && (p.s % sg !== 0 || p.l % SGMAT_BC !== 0)) return { kind: 'portable', why: `the tensor-core kernel needs S % ${sg} = 0 and L % ${SGMAT_BC} = 0 (S=${p.s}, L=${p.l})` };
  if (p.e !== p.ev || p.e % 16 !== 0) return { kind: 'portable', why: `the tensor-core kernel needs E = Ev, a multiple of 16 (E=${p.e}, Ev=${p.ev})` };
  const dmax = headDimBucket(p.e);
  if (sgmatWorkgroupBytes(sg, dmax) > ctx.limits.maxComputeWorkgroupStorageSize) return { kind: 'portable', why: `tiles for head dim ${p.e} exceed maxComputeWorkgroupStorageSize` };
  const failed = sgmatFailures.get(dmax);
  if (failed) return { kind: 'portable', why: `the tensor-core kernel failed to compile: ${failed}` };
  return { kind: 'subgroup-matrix', why: `f16 16×16×16 subgroup matrices, subgroup ${sg}` };
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
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name] === '1';
}

function sgmatProgram(ctx: WebGpuContext, p: AttentionParams): ProgramInfo {
  return {
    shader: 'flash-sgmat.wgsl',
    entryPoint: 'main',
    defines: { SG: ctx.adapterInfo.subgroupMaxSize, DMAX: headDimBucket(p.e), CAUSAL_SKIP: envFlag('SDPA_WEBGPU_SGMAT_NOSKIP') ? 0 : 1 },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

async function run(p: AttentionParams, rctx: RunContext) {
  return runAttention(LABEL, p, rctx, async (cb, out, pre): Promise<Pass[]> => {
    const q = await bindTensor(cb, p.q, 'q', LABEL, pre, true);
    const k = await bindTensor(cb, p.k, 'k', LABEL, pre, true);
    const v = await bindTensor(cb, p.v, 'v', LABEL, pre, true);
    const uniform = cb.uniform(paramsUniform(p));
    if (flashPath(cb.ctx, p).kind === 'subgroup-matrix') {
      const program = sgmatProgram(cb.ctx, p);
      try {
        await getPipeline(cb.ctx, program);
        return [{ program, buffers: [uniform, q, k, v, out], dispatch: dispatchRows(cb.ctx, p, cb.ctx.adapterInfo.subgroupMaxSize) }];
      } catch (err) {
        // Experimental WGSL: a driver or Dawn that rejects it leaves the portable path, once.
        sgmatFailures.set(headDimBucket(p.e), (err as Error).message);
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
