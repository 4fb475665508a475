/// <reference types="@webgpu/types" />
/**
 * The row-wise kernel variant of FLASH_ATTENTION (webgpu): shaders/tiled-attention.wgsl with f16
 * tiles, one query row per invocation — the last resort where the register-tiled kernels do not fit
 * (head dims that are not whole 16-byte words, or too little workgroup memory); needs shader-f16.
 */
import type { KernelVariant } from '../../src/dispatch/types.js';
import { bindQkv, dispatchRows, headDimBucket, ioDefines, keysPerBlock, paramsUniform, runAttention, type Pass } from '../../src/webgpu/attention.js';
import type { ProgramInfo } from '../../src/webgpu/programs.js';

/** Rows per workgroup of the portable kernel. */
const BR = 64;

/** The row-wise f16 kernel. */
export function tiledF16Kernel(label: string): KernelVariant {
  return {
    name: 'rowwise_f16',
    summary: `f16 K/V tiles in workgroup memory, one query row per invocation (${BR} per workgroup), f32 accumulation; any adapter with shader-f16`,
    program: { kind: 'wgsl', shaders: ['tiled-attention.wgsl'] },
    run(p, rctx) {
      return runAttention(label, p, rctx, async (cb, out, pre): Promise<Pass[]> => {
        const { q, k, v } = await bindQkv(cb, p, label, pre, true);
        const dmax = headDimBucket(p.e);
        const dvmax = headDimBucket(p.ev);
        const program: ProgramInfo = {
          shader: 'tiled-attention.wgsl',
          entryPoint: 'main',
          defines: { ...ioDefines(p, 'float16'), ENABLES: 'enable f16;', TILE_T: 'f16', BR, BC: keysPerBlock(cb.ctx, dmax, dvmax, 2), DMAX: dmax, DVMAX: dvmax },
          bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'rw'],
        };
        const dummy = cb.storage(16, 'no-mask');
        return [{ program, buffers: [cb.uniform(paramsUniform(p)), q, k, v, dummy, dummy, out], dispatch: dispatchRows(cb.ctx, p, BR) }];
      });
    },
  };
}
