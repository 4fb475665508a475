/// <reference types="@webgpu/types" />
/**
 * MATH on WebGPU: naive WGSL (shaders/math.wgsl) in three passes over a materialized f32
 * `[batch·Hq, S, L]` score buffer — the GPU counterpart of the CPU reference. It is refused, with the
 * sizes in the reason, when that buffer exceeds what the adapter can bind or allocate.
 */
import { FULL_SEMANTICS_CAPS } from '../../src/dispatch/caps.js';
import { named, formatBytes, checkScaleFitsFloat32 } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { WG, bindMask, bindQkv, dispatch1D, ioDefines, paramsUniform, runAttention, type Pass } from '../../src/webgpu/attention.js';
import { gpuContext } from '../../src/webgpu/device.js';
import { GPU_F32_TOLERANCE, webgpuPart } from '../../src/webgpu/part.js';
import type { BindingKind, ProgramInfo } from '../../src/webgpu/programs.js';

const LABEL = 'math (webgpu)';
const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'];

/** Bytes of the f32 score buffer MATH (webgpu) materializes. */
export function mathGpuScoreBytes(p: AttentionParams): number {
  return p.batch * p.hq * p.s * p.l * 4;
}

/** The score buffer fits one storage binding and one buffer on this adapter. */
const checkScoreBufferFits = named('checkScoreBufferFits', (p: AttentionParams) => {
  const ctx = gpuContext();
  if (!ctx) return undefined;
  const need = mathGpuScoreBytes(p);
  const { maxStorageBufferBindingSize: bind, maxBufferSize: buf } = ctx.limits;
  if (need <= bind && need <= buf) return undefined;
  const [name, lim] = bind <= buf ? ['maxStorageBufferBindingSize', bind] : ['maxBufferSize', buf];
  return `${LABEL} materializes the batch·Hq·S·L f32 score buffer: ${formatBytes(need)} > the adapter's ${name} ${formatBytes(lim)}; use EFFICIENT_ATTENTION or FLASH_ATTENTION (O(S) memory)`;
});

function program(p: AttentionParams, entryPoint: string): ProgramInfo {
  return { shader: 'math.wgsl', entryPoint, defines: { ...ioDefines(p), WG }, bindings: BINDINGS };
}

async function run(p: AttentionParams, rctx: RunContext) {
  return runAttention(LABEL, p, rctx, async (cb, out, pre): Promise<Pass[]> => {
    const { q, k, v } = await bindQkv(cb, p, LABEL, pre);
    const { mask, bases } = bindMask(cb, p);
    const scores = cb.storage(mathGpuScoreBytes(p), 'scores');
    const buffers = [cb.uniform(paramsUniform(p)), q, k, v, mask, bases, scores, out];
    const bh = p.batch * p.hq;
    return [
      { program: program(p, 'scores_main'), buffers, dispatch: dispatch1D(cb.ctx, bh * p.s * p.l, WG) },
      { program: program(p, 'softmax_main'), buffers, dispatch: dispatch1D(cb.ctx, bh * p.s, WG) },
      { program: program(p, 'pv_main'), buffers, dispatch: dispatch1D(cb.ctx, bh * p.s * p.ev, WG) },
    ];
  });
}

/** The MATH backend's WebGPU part. */
export const mathWebgpu: BackendPart = webgpuPart({
  label: LABEL,
  caps: {
    ...FULL_SEMANTICS_CAPS,
    window: true,
    notes: 'naive WGSL, f32 arithmetic; sliding windows by rule; materializes the [batch·Hq, S, L] f32 score buffer (refused beyond maxStorageBufferBindingSize)',
  },
  constraints: [checkScaleFitsFloat32('math (webgpu)'), checkScoreBufferFits],
  kernels: [
    {
      name: 'naive_3pass',
      summary: 'three passes over a materialized f32 score buffer: scores, softmax rows, P·V',
      program: { kind: 'wgsl', shaders: ['math.wgsl'] },
      run,
    },
  ],
  tolerance: GPU_F32_TOLERANCE,
});
