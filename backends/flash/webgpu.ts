/// <reference types="@webgpu/types" />
/**
 * FLASH_ATTENTION on WebGPU: f16 storage (bf16 converted), f32 accumulation, causal variants and
 * sliding windows as an upper and a lower diagonal (no mask buffers), GQA, dropout with the shared RNG. Its kernel variants, in
 * priority order (the first eligible one runs; each says why not otherwise):
 * - `decode_f16_portable`, `decode_f16`: flash-decoding for S ≤ 16 (src/webgpu/portable.ts),
 *   without and with the subgroups feature (the portable one first: faster on the H200);
 * - `sgmat_st`, `sgmat_mw`, `sgmat_1sg`: tensor cores through subgroup matrices (webgpu-sgmat.ts);
 * - `tiled_portable_f16`, `tiled_sg_f16`: the register-tiled kernel (src/webgpu/portable.ts),
 *   without and with subgroups; neither needs shader-f16 (halves are unpacked from u32 words);
 * - `rowwise_f16`: one query row per invocation, f16 tiles (webgpu-tiled.ts): head dims that are
 *   not whole 16-byte words, or tiles too large for the adapter's workgroup memory.
 */
import { named, checkScaleFitsFloat32 } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart, KernelVariant } from '../../src/dispatch/types.js';
import { headDimBucket } from '../../src/webgpu/attention.js';
import { gpuContext } from '../../src/webgpu/device.js';
import { webgpuPart } from '../../src/webgpu/part.js';
import { sgmatCompileFailures, sgmatMwKernel, sgmatOneSubgroupKernel, sgmatStKernel } from './webgpu-sgmat.js';
import { decodeVariant, prefillVariant } from '../../src/webgpu/portable.js';
import { tiledF16Kernel } from './webgpu-tiled.js';

const LABEL = 'flash (webgpu)';

const checkShaderF16 = named('checkShaderF16', () => {
  const ctx = gpuContext();
  if (!ctx || ctx.features.has('shader-f16')) return undefined;
  return `${LABEL}: this kernel uses f16 shader types and needs shader-f16, which this adapter lacks (on NVIDIA, Dawn needs the vulkan_enable_f16_on_nvidia toggle)`;
});

const checkTileFits = named('checkWorkgroupStorage', (p: AttentionParams) => {
  const ctx = gpuContext();
  if (!ctx) return undefined;
  const need = 8 * (headDimBucket(p.e) + headDimBucket(p.ev)) * 2;
  return need <= ctx.limits.maxComputeWorkgroupStorageSize
    ? undefined
    : `${LABEL} needs ${need} bytes of workgroup memory for an 8-key f16 tile, more than the adapter's maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}; use EFFICIENT_ATTENTION`;
});

/** `k` with constraints checked before its own (the f16 shader types of the tensor-core and row-wise kernels). */
function requiring(k: KernelVariant, ...extra: KernelVariant['constraints'] & object): KernelVariant {
  return { ...k, constraints: [...extra, ...(k.constraints ?? [])] };
}

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
    window: true,
    notes: 'WGSL, f16/bf16 storage read in place (bf16 converted for the tensor cores), f32 accumulation; flash-decoding for S ≤ 16; subgroup-matrix (tensor core) kernels when the adapter exposes f16 configs, else register-tiled f32 blocks sized from maxComputeWorkgroupStorageSize (no shader-f16 needed); causal variants and sliding windows as diagonals, without mask buffers (key blocks outside them skipped)',
  },
  constraints: [checkScaleFitsFloat32('flash (webgpu)')],
  kernels: [
    // The portable variants first: on the H200 they beat the subgroup ones (decode 1.37 against
    // 0.55 TB/s, prefill 14.9 against 13.7 TF/s; docs/performance-webgpu.md).
    decodeVariant({ label: LABEL, name: 'decode_f16_portable', subgroups: false }),
    decodeVariant({ label: LABEL, name: 'decode_f16', subgroups: true }),
    requiring(sgmatStKernel(LABEL), checkShaderF16),
    requiring(sgmatMwKernel(LABEL), checkShaderF16),
    requiring(sgmatOneSubgroupKernel(LABEL), checkShaderF16),
    prefillVariant({ label: LABEL, name: 'tiled_portable_f16', subgroups: false }),
    prefillVariant({ label: LABEL, name: 'tiled_sg_f16', subgroups: true }),
    requiring(tiledF16Kernel(LABEL), checkShaderF16, checkTileFits),
  ],
  // f16 probabilities feed the P·V product on the tensor-core path: a little more than the output rounding.
  tolerance: {
    float32: { atol: 2e-4, rtol: 2e-4 },
    float16: { atol: 2e-3, rtol: 2e-3 },
    bfloat16: { atol: 8e-3, rtol: 8e-3 },
  },
  describe: () => ({ sgmatCompileFailures: sgmatCompileFailures() }),
});
