/**
 * Small backends registered from tests (registerBackend): a cpu part whose kernels compute the
 * float64 reference (or whatever `compute` says), with hooks to count runs, slow a kernel down,
 * corrupt its output or fault — the test doubles of issue 19's features.
 */
import { FULL_SEMANTICS_CAPS } from '../../src/dispatch/caps.js';
import { mathReference } from '../../backends/math/cpu.js';
import { tensor, type AttentionParams, type BackendCaps, type BackendDescriptor, type Constraint, type KernelVariant, type RunContext, type Tensor } from '../../src/index.js';

/** One kernel of a test backend. */
export interface TestKernelSpec {
  readonly name: string;
  /** Added wall time per call (a timer, so the event loop stays free). */
  delayMs?: number;
  /** Replaces the reference output values (e.g. to corrupt one element). */
  readonly corrupt?: (values: Float32Array, p: AttentionParams) => void;
  /** Replaces the whole run. */
  readonly run?: (p: AttentionParams, ctx: RunContext) => Promise<Tensor>;
  readonly constraints?: readonly Constraint[];
}

/** The reference output of `p` as a float32 tensor (after `corrupt`). */
export function referenceTensor(p: AttentionParams, corrupt?: (values: Float32Array, p: AttentionParams) => void): Tensor {
  const values = Float32Array.from(mathReference(p));
  corrupt?.(values, p);
  return tensor(values, [...p.q.shape.slice(0, -1), p.ev]);
}

/** A test backend of float32 cpu kernels; `runs` counts calls per kernel name. */
export function testBackend(name: string, priority: number, kernels: readonly TestKernelSpec[], options: { caps?: Partial<BackendCaps>; constraints?: readonly Constraint[] } = {}): { descriptor: BackendDescriptor; runs: Map<string, number> } {
  const runs = new Map<string, number>();
  const variants: KernelVariant[] = kernels.map((spec) => ({
    name: spec.name,
    summary: `test kernel ${spec.name}`,
    program: { kind: 'custom', description: 'a test double' },
    constraints: spec.constraints ?? [],
    async run(p, ctx) {
      runs.set(spec.name, (runs.get(spec.name) ?? 0) + 1);
      if (spec.run) return spec.run(p, ctx);
      if (spec.delayMs) await new Promise((r) => setTimeout(r, spec.delayMs));
      return referenceTensor(p, spec.corrupt);
    },
  }));
  return {
    runs,
    descriptor: {
      name,
      priority,
      summary: `test backend ${name}`,
      parts: [
        {
          device: 'cpu',
          label: `${name.toLowerCase()} (cpu)`,
          caps: { ...FULL_SEMANTICS_CAPS, dtypes: ['float32'], ...options.caps },
          availability: () => ({ available: true }),
          constraints: options.constraints ?? [],
          kernels: variants,
          tolerance: { float32: { atol: 1e-5, rtol: 1e-5 }, float16: { atol: 1e-3, rtol: 1e-3 }, bfloat16: { atol: 8e-3, rtol: 8e-3 } },
        },
      ],
    },
  };
}
