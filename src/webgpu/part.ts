/**
 * What every WebGPU backend part shares, made once: availability and initialisation of the one
 * WebGPU context, the adapter facts in `describe()`, and the constraint that every binding fits the
 * adapter's limits (after the part's own). A part only states its label, caps, constraints,
 * kernels and tolerance.
 */
import type { BackendCaps, BackendPart, Constraint, FloatTolerances, KernelVariant } from '../dispatch/types.js';
import { checkBuffersFit } from './attention.js';
import { describeGpu, gpuAvailability, initWebGpu } from './device.js';

/** The part-specific facts of a WebGPU backend part. */
export interface WebGpuPartSpec {
  readonly label: string;
  readonly caps: BackendCaps;
  /** Checked before the shared buffer-size check. */
  readonly constraints: readonly Constraint[];
  readonly kernels: readonly KernelVariant[];
  readonly tolerance: FloatTolerances;
  /** Extra facts for `capabilities()`, merged over the adapter's. */
  describe?(): Record<string, unknown>;
}

/** A WebGPU backend part from its specific facts. */
export function webgpuPart(spec: WebGpuPartSpec): BackendPart {
  return {
    device: 'webgpu',
    label: spec.label,
    caps: spec.caps,
    availability: gpuAvailability,
    init: initWebGpu,
    constraints: [...spec.constraints, checkBuffersFit(spec.label)],
    kernels: spec.kernels,
    tolerance: spec.tolerance,
    describe: () => ({ ...describeGpu(), ...spec.describe?.() }),
  };
}

/**
 * The tolerance of WebGPU parts that compute in f32 (EFFICIENT, MATH): exp may be a few ulp off on
 * GPUs, and half inputs add their output rounding, against the float64 reference.
 */
export const GPU_F32_TOLERANCE: FloatTolerances = {
  float32: { atol: 2e-4, rtol: 2e-4 },
  float16: { atol: 1.2e-3, rtol: 1.2e-3 },
  bfloat16: { atol: 8e-3, rtol: 8e-3 },
};
