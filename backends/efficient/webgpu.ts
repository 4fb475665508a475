/// <reference types="@webgpu/types" />
/**
 * EFFICIENT_ATTENTION on WebGPU (the row-wise kernel here; see kernels below): f32 tiles — tiled online
 * softmax, O(S) memory, any mask kind (broadcast masks read in place through strides in the
 * uniforms and per-head base offsets), Ev ≠ E, GQA, causal variants and sliding windows as an
 * upper and a lower diagonal (key blocks outside them skipped), and
 * dropout with the shared counter-based RNG (the same elements dropped as on the CPU).
 */
import { FULL_SEMANTICS_CAPS } from '../../src/dispatch/caps.js';
import { named, checkScaleFitsFloat32 } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { bindMask, bindQkv, dispatchRows, headDimBucket, ioDefines, keysPerBlock, paramsUniform, runAttention, type Pass } from '../../src/webgpu/attention.js';
import { gpuContext } from '../../src/webgpu/device.js';
import { GPU_F32_TOLERANCE, webgpuPart } from '../../src/webgpu/part.js';
import type { ProgramInfo } from '../../src/webgpu/programs.js';
import { decodeVariant, prefillVariant } from '../../src/webgpu/portable.js';

const LABEL = 'efficient (webgpu)';
/** Query rows per workgroup (one thread each). */
const BR = 64;
const MAX_HEAD_DIM = 256;

const checkTileFits = named('checkWorkgroupStorage', (p: AttentionParams) => {
  const ctx = gpuContext();
  if (!ctx) return undefined;
  const need = (headDimBucket(p.e) + headDimBucket(p.ev)) * 4;
  return need <= ctx.limits.maxComputeWorkgroupStorageSize
    ? undefined
    : `${LABEL} needs ${need} bytes of workgroup memory for one key of its tiles, more than the adapter's maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}; use the cpu device`;
});

async function run(p: AttentionParams, rctx: RunContext) {
  return runAttention(LABEL, p, rctx, async (cb, out, pre): Promise<Pass[]> => {
    const dmax = headDimBucket(p.e);
    const dvmax = headDimBucket(p.ev);
    const program: ProgramInfo = {
      shader: 'tiled-attention.wgsl',
      entryPoint: 'main',
      defines: { ...ioDefines(p), ENABLES: '', TILE_T: 'f32', BR, BC: keysPerBlock(cb.ctx, dmax, dvmax, 4), DMAX: dmax, DVMAX: dvmax },
      bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'rw'],
    };
    const { q, k, v } = await bindQkv(cb, p, LABEL, pre);
    const { mask, bases } = bindMask(cb, p);
    return [{ program, buffers: [cb.uniform(paramsUniform(p)), q, k, v, mask, bases, out], dispatch: dispatchRows(cb.ctx, p, BR) }];
  });
}

/** The EFFICIENT_ATTENTION backend's WebGPU part. */
export const efficientWebgpu: BackendPart = webgpuPart({
  label: LABEL,
  caps: {
    ...FULL_SEMANTICS_CAPS,
    maxHeadDim: MAX_HEAD_DIM,
    window: true,
    notes: `WGSL, f32 tiles and accumulation, tiled online softmax (register-tiled 64-row blocks, key blocks sized from maxComputeWorkgroupStorageSize; flash-decoding for S ≤ 16), O(S) memory; halves read in place`,
  },
  constraints: [checkScaleFitsFloat32('efficient (webgpu)'), checkTileFits],
  // First eligible runs: flash-decoding for S ≤ 16, the register-tiled kernel (src/webgpu/portable.ts;
  // each with and without subgroups), then the row-wise kernel for head dims that are not whole
  // 16-byte words or tiles the adapter's workgroup memory cannot hold.
  kernels: [
    // Portable before subgroups, as measured on the H200 (decode 2.52 against 0.80 TB/s, prefill
    // 13.1 against 12.2 TF/s; docs/performance-webgpu.md).
    decodeVariant({ label: LABEL, name: 'decode_f32_portable', subgroups: false }),
    decodeVariant({ label: LABEL, name: 'decode_f32', subgroups: true }),
    prefillVariant({ label: LABEL, name: 'tiled_portable_f32', subgroups: false }),
    prefillVariant({ label: LABEL, name: 'tiled_sg_f32', subgroups: true }),
    {
      name: 'rowwise_f32',
      summary: `f32 tiles, one query row per invocation (${BR} per workgroup), K/V blocks in workgroup memory, any mask read in place; any head dim`,
      program: { kind: 'wgsl', shaders: ['tiled-attention.wgsl'] },
      run,
    },
  ],
  tolerance: GPU_F32_TOLERANCE,
});
