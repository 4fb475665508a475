/**
 * ONNXRUNTIME-specific constraints (the generic ones — dtype, dropout, GQA, Ev ≠ E — derive from
 * each part's caps). Each returns undefined when met, else one sentence: requirement, actual value,
 * hint. They encode what onnxruntime 1.30 was measured to accept (docs/onnxruntime.md).
 */
import { formatBytes, named } from '../../src/dispatch/constraints.js';
import type { AttentionParams, Constraint } from '../../src/dispatch/types.js';
import { envVar, totalMemoryBytes } from '../../src/env.js';

/** Bytes of the `[batch·Hq, S, L]` float32 score/probability matrix ORT's attention kernels allocate. */
export function ortScoreBytes(p: AttentionParams): number {
  return p.batch * p.hq * p.s * p.l * 4;
}

/** Bytes of the mask this backend materializes for the call (lower-right causal, broadcast S/L dims). */
export function ortMaskBytes(p: AttentionParams, forceDense: boolean): number {
  const needsCausalMask = p.causal !== undefined && (p.causal.diagonalOffset !== 0 || forceDense);
  if (!p.mask && !needsCausalMask) return 0;
  return p.batch * p.hq * p.s * p.l * (p.mask?.kind === 'bool' ? 1 : 4);
}

/**
 * The score budget: `SDPA_ORT_MAX_BYTES` when set, else a quarter of the machine's memory
 * (1 GiB in browsers, where the wasm heap is at most 4 GiB).
 */
export function ortMemoryBudget(): number {
  // The variable is read per call (it may change in-process); the total, fixed for the process, once.
  const env = envVar('SDPA_ORT_MAX_BYTES');
  if (env !== undefined && Number.isFinite(Number(env)) && Number(env) > 0) return Number(env);
  const total = totalMemoryBytes();
  return total !== undefined ? total / 4 : 2 ** 30;
}

/**
 * ORT's CPU/wasm `Attention` and `MultiHeadAttention` kernels materialize the float32 probabilities
 * of every head (`batch·Hq·S·L`); together with any mask this backend materializes, it must fit.
 */
export function checkOrtScoreMemory(label: string, forceDenseCausal: boolean): Constraint {
  return named('checkOrtScoreMemory', (p) => {
    const need = ortScoreBytes(p) + ortMaskBytes(p, forceDenseCausal);
    const have = ortMemoryBudget();
    return need <= have
      ? undefined
      : `${label} materializes the batch·Hq·S·L float32 scores (and masks): ${formatBytes(need)} > budget ${formatBytes(have)}; use EFFICIENT_ATTENTION (O(S) memory) or raise SDPA_ORT_MAX_BYTES`;
  });
}

/** onnxruntime tensors are fed from CPU memory here; GPU-resident inputs of other backends are not read back. */
export function checkOrtInputsOnCpu(label: string): Constraint {
  return named('checkOrtInputsOnCpu', (p) => {
    const named_ = [['q', p.q], ['k', p.k], ['v', p.v], ['attnMask', p.mask?.tensor]] as const;
    const off = named_.find(([, t]) => t !== undefined && t.device !== 'cpu');
    return off ? `${label} takes CPU-resident tensors, got ${off[0]} on ${off[1]!.device}; read it back (await t.toFloat32()) or use a webgpu-native backend` : undefined;
  });
}

/**
 * onnxruntime's `Attention` (opset 23) and `MultiHeadAttention` carry dimensions as int64 but this
 * backend's feeds are typed arrays indexed by 32-bit offsets: each input stays below 2^31 elements.
 */
export function checkOrtTensorSize(label: string): Constraint {
  return named('checkOrtTensorSize', (p) => {
    const limit = 2 ** 31 - 1;
    const big = ([['q', p.q], ['k', p.k], ['v', p.v]] as const).find(([, t]) => t.size > limit);
    return big ? `${label} requires each input below 2^31 elements, got ${big[0]} with ${big[1].size}; split the batch` : undefined;
  });
}

/**
 * The WebGPU EP runs float16 calls in float16 graphs, where a custom scale stays the operator's
 * `scale` attribute (a float16 scale input would round it), and onnxruntime refuses a scale
 * attribute that is not > 0 when it creates the session (on every call, printing its error): so
 * such a call is a reason here. float32 graphs take the scale as an input and serve any scale.
 */
export function checkOrtScaleAttribute(label: string): Constraint {
  return named('checkOrtScaleAttribute', (p) =>
    p.scaleIsDefault || p.dtype !== 'float16' || Math.fround(p.scale) > 0
      ? undefined
      : `${label} passes a float16 call's scale as the operator's scale attribute, which must be > 0 in float32; got scale ${p.scale}${p.scale > 0 ? ' (it rounds to 0 in float32)' : ''}; use float32 inputs or another backend`,
  );
}
