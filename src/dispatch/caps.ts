/**
 * Capability sets shared by several backend parts. Parts spread one and override what differs,
 * so a capability added to the full semantics is added once (and the support matrix follows).
 */
import type { BackendCaps } from './types.js';

/** Every dtype, any head dim, every mask kind and causal variant, dropout, GQA, custom scale, Ev ≠ E. */
export const FULL_SEMANTICS_CAPS = {
  dtypes: ['float32', 'float16', 'bfloat16'],
  maxHeadDim: Number.MAX_SAFE_INTEGER,
  headDimMultiple: 1,
  maskKinds: ['none', 'bool', 'float'],
  causalVariants: ['upper-left', 'lower-right', 'both'],
  maskWithCausal: true,
  dropout: true,
  gqa: true,
  customScale: true,
  valueDimDiffers: true,
} as const satisfies Omit<BackendCaps, 'notes'>;

/** {@link FULL_SEMANTICS_CAPS} plus every structured bias applied by rule and the log-sum-exp. */
export const FULL_STRUCTURED_CAPS = {
  ...FULL_SEMANTICS_CAPS,
  window: true,
  alibi: true,
  softcap: true,
  blockDiagonal: true,
  lse: true,
} as const satisfies Omit<BackendCaps, 'notes'>;
