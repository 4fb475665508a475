/// <reference types="@webgpu/types" />
/**
 * FLASH_ATTENTION on WebGPU: f16 storage (bf16 converted), f32 accumulation, causal variants as a
 * diagonal offset (no mask buffers), GQA, dropout with the shared RNG. Its kernel variants, in
 * priority order (the first eligible one runs; each says why not otherwise):
 * - `sgmat_st`, `sgmat_mw`, `sgmat_1sg`: tensor cores through subgroup matrices (webgpu-sgmat.ts);
 * - `tiled_f16`: the portable kernel (webgpu-tiled.ts).
 */
import { named, checkScaleFitsFloat32 } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart } from '../../src/dispatch/types.js';
import { headDimBucket } from '../../src/webgpu/attention.js';
import { gpuContext } from '../../src/webgpu/device.js';
import { webgpuPart } from '../../src/webgpu/part.js';
import { sgmatCompileFailures, sgmatMwKernel, sgmatOneSubgroupKernel, sgmatStKernel } from './webgpu-sgmat.js';
import { tiledF16Kernel } from './webgpu-tiled.js';

const LABEL = 'flash (webgpu)';

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

/** The FLASH_ATTENTION backend's WebGPU part. Register it in backends/flash/index.ts's `parts`. */
export const flashWebgpu: BackendPart = webgpuPart({
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
    notes: 'WGSL, f16 storage (bf16 converted), f32 accumulation; subgroup-matrix (tensor core) kernels when the adapter exposes f16 configs, else f16 tiles sized from maxComputeWorkgroupStorageSize; causal variants without mask buffers',
  },
  constraints: [checkScaleFitsFloat32('flash (webgpu)'), checkShaderF16, checkTileFits],
  kernels: [sgmatStKernel(LABEL), sgmatMwKernel(LABEL), sgmatOneSubgroupKernel(LABEL), tiledF16Kernel(LABEL)],
  // f16 probabilities feed the P·V product on the tensor-core path: a little more than the output rounding.
  tolerance: {
    float32: { atol: 2e-4, rtol: 2e-4 },
    float16: { atol: 2e-3, rtol: 2e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => ({ sgmatCompileFailures: sgmatCompileFailures() }),
});
