/**
 * Named constraint functions (PyTorch's `check_*` in sdp_utils). Generic ones are factories over a
 * part's {@link BackendCaps}, so their messages and the support matrix come from the same data.
 * Each returns undefined when met, else one sentence: the requirement, the actual value, a hint.
 */
import { describeValue } from '../errors.js';
import { isBackendEnabled, inScope, partKey, strictBackend } from './context.js';
import { activePin, envPinFor } from './pins.js';
import type { AttentionParams, BackendCaps, BackendName, BackendPart, CausalVariant, Constraint, KernelVariant } from './types.js';

const list = (xs: readonly string[]): string => (xs.length === 0 ? 'none' : xs.join(', '));

/** Names a function for traces and docs (arrow functions from factories have no useful name). */
export function named<T extends Constraint>(name: string, fn: T): T {
  Object.defineProperty(fn, 'name', { value: name });
  return fn;
}

/** First constraint of every backend: it is enabled in the calling context. */
export function checkEnabledInContext(backend: BackendName): Constraint {
  return named('checkEnabledInContext', () => {
    const strict = strictBackend();
    if (strict !== undefined && strict !== backend && isBackendEnabled(backend)) {
      return `${backend} would be a fallback past ${strict}, which the enclosing withBackends(..., { strict: true }) scope forbids`;
    }
    if (isBackendEnabled(backend)) return undefined;
    return inScope()
      ? `${backend} is not in the backends allowed by the enclosing withBackends() scope`
      : `${backend} is disabled (setBackendEnabled(SDPBackend.${backend}, false)); re-enable it or use withBackends([...])`;
  });
}

/** The part's engine loaded (addon, adapter, runtime). */
export function checkAvailable(part: BackendPart): Constraint {
  return named('checkAvailable', () => {
    const a: unknown = part.availability();
    // A registered backend's availability() is user code: a malformed answer is a reason, not a TypeError in dispatch.
    if (typeof a !== 'object' || a === null || typeof (a as { available?: unknown }).available !== 'boolean') return `${part.label}: availability() returned ${describeValue(a)}, expected { available: boolean, reason?: string }`;
    return (a as { available: boolean }).available ? undefined : ((a as { reason?: string }).reason ?? `${part.label} is unavailable (no reason given)`);
  });
}

/** An environment pin of the part (`SDPA_KERNEL`, `SDPA_CPU_ISA`) names kernels the part has. */
export function checkEnvPin(backend: BackendName, part: BackendPart, names: readonly string[]): Constraint {
  return named('checkEnvPin', () => {
    const r = envPinFor(backend, part, names);
    return r && 'error' in r ? r.error : undefined;
  });
}

/** The kernel is one the pin in force allows (a `withBackends` kernel pin, else the environment's). */
export function checkKernelPin(backend: BackendName, part: BackendPart, name: string, names: readonly string[]): Constraint {
  const key = partKey(backend, part.device);
  return named('checkKernelPin', () => {
    const pin = activePin(backend, part, names, key);
    if (!pin || pin.kernels.includes(name)) return undefined;
    return `${name} is not used: ${pin.source} pins ${part.label} to ${pin.kernels.length ? pin.kernels.join(' or ') : 'no kernel it has'}`;
  });
}

/** The kernel can run on this machine (its ISA, the adapter's features). */
export function checkKernelAvailable(variant: KernelVariant): Constraint {
  return named('checkKernelAvailable', () => {
    if (!variant.availability) return undefined;
    const a: unknown = variant.availability();
    if (typeof a !== 'object' || a === null || typeof (a as { available?: unknown }).available !== 'boolean') return `${variant.name}: availability() returned ${describeValue(a)}, expected { available: boolean, reason?: string }`;
    return (a as { available: boolean }).available ? undefined : ((a as { reason?: string }).reason ?? `${variant.name} is unavailable (no reason given)`);
  });
}

/** A call that needs the log-sum-exp runs only on kernels that return it. */
export function checkKernelLse(variant: KernelVariant): Constraint {
  return named('checkKernelLse', (p) => (!p.needLse || variant.runWithLse ? undefined : `${variant.name} does not return the log-sum-exp (returnLse / split-KV)`));
}

/** A call that needs the attention weights runs only on kernels that return them. */
export function checkKernelWeights(variant: KernelVariant): Constraint {
  return named('checkKernelWeights', (p) => (!p.needWeights || variant.runWithWeights ? undefined : `${variant.name} does not return attention weights (returnWeights)`));
}

/** dtype is one the part computes. */
export function checkDtype(label: string, caps: BackendCaps): Constraint {
  return named('checkDtype', (p) =>
    caps.dtypes.includes(p.dtype) ? undefined : `${label} supports dtypes ${list(caps.dtypes)}, got ${p.dtype}`,
  );
}

/** Head dims (E and Ev) within the part's limit and multiple. */
export function checkHeadDim(label: string, caps: BackendCaps): Constraint {
  return named('checkHeadDim', (p) => {
    const dims = p.ev === p.e ? [p.e] : [p.e, p.ev];
    const bad = dims.find((d) => d > caps.maxHeadDim || d % caps.headDimMultiple !== 0);
    if (bad === undefined) return undefined;
    const rule = caps.headDimMultiple > 1 ? `<= ${caps.maxHeadDim} and a multiple of ${caps.headDimMultiple}` : `<= ${caps.maxHeadDim}`;
    const padded = Math.ceil(bad / caps.headDimMultiple) * caps.headDimMultiple;
    const hint = caps.headDimMultiple > 1 && padded <= caps.maxHeadDim ? `pad to ${padded} or ` : '';
    return `${label} requires head dim ${rule}, got ${p.ev === p.e ? bad : `E=${p.e}, Ev=${p.ev}`}; ${hint}use EFFICIENT_ATTENTION`;
  });
}

/** Ev ≠ E only where supported. */
export function checkValueDim(label: string, caps: BackendCaps): Constraint {
  return named('checkValueDim', (p) =>
    p.ev === p.e || caps.valueDimDiffers ? undefined : `${label} requires the value head dim to equal the query/key head dim, got E=${p.e}, Ev=${p.ev}`,
  );
}

/** The mask kind (none / bool / float) is supported. */
export function checkMaskKind(label: string, caps: BackendCaps): Constraint {
  return named('checkMaskKind', (p) =>
    caps.maskKinds.includes(p.maskKind)
      ? undefined
      : `${label} does not take a ${p.maskKind} attnMask tensor (supports: ${list(caps.maskKinds)}); use a causal bias object if the mask is causal, or EFFICIENT_ATTENTION`,
  );
}

/** The causal variant is supported, alone or together with a dense mask. */
export function checkCausal(label: string, caps: BackendCaps): Constraint {
  return named('checkCausal', (p) => {
    if (!p.causal) return undefined;
    const v: CausalVariant = p.causal.variant;
    if (!caps.causalVariants.includes(v)) return `${label} does not support causal ${v} (supports: ${list(caps.causalVariants)})`;
    if (p.mask && !caps.maskWithCausal) return `${label} cannot combine an attnMask tensor with a causal mask; fold the causal part into the mask or use EFFICIENT_ATTENTION`;
    return undefined;
  });
}

/** Dropout supported when p > 0. */
export function checkDropout(label: string, caps: BackendCaps): Constraint {
  return named('checkDropout', (p) => (p.dropoutP === 0 || caps.dropout ? undefined : `${label} does not support dropout, got dropoutP=${p.dropoutP}`));
}

/** Grouped-query attention supported when Hq ≠ Hkv. */
export function checkGqa(label: string, caps: BackendCaps): Constraint {
  return named('checkGqa', (p) => (p.gqaGroup === 1 || caps.gqa ? undefined : `${label} does not support grouped-query attention, got Hq=${p.hq}, Hkv=${p.hkv}`));
}

/** A caller-given scale supported. */
export function checkCustomScale(label: string, caps: BackendCaps): Constraint {
  return named('checkCustomScale', (p) => (p.scaleIsDefault || caps.customScale ? undefined : `${label} supports only the default scale 1/sqrt(E), got ${p.scale}`));
}

/**
 * Structured biases (sliding window, ALiBi, soft-cap, block-diagonal) are applied only by parts
 * whose caps say they apply them by rule; others would need a materialized S×L mask they cannot take.
 */
export function checkStructuredBias(label: string, caps: BackendCaps): Constraint {
  return named('checkStructuredBias', (p, device) => {
    const missing: string[] = [];
    if (p.window && !caps.window) missing.push(`a sliding window [${p.window.left}, ${p.window.right}]`);
    if (p.alibi && !caps.alibi) missing.push('ALiBi slopes');
    if (p.softcap !== undefined && !caps.softcap) missing.push(`softcap ${p.softcap}`);
    if (p.blockDiagonal && !caps.blockDiagonal) missing.push(`a block-diagonal (varlen) bias of ${p.blockDiagonal.qLen.length} blocks`);
    if (missing.length === 0) return undefined;
    // The hint names what serves them on the part's own device: on webgpu only sliding windows are
    // applied by rule (the WGSL kernels take a lower and an upper diagonal), the rest on the cpu.
    const onlyWindow = p.alibi === undefined && p.softcap === undefined && p.blockDiagonal === undefined;
    const hint = device !== 'webgpu'
      ? 'use EFFICIENT_ATTENTION (applies them by rule) or MATH (materializes them)'
      : onlyWindow
        ? 'use EFFICIENT_ATTENTION or MATH on webgpu (apply sliding windows by rule)'
        : "no webgpu backend applies ALiBi, soft-capping or block-diagonal biases; use device 'cpu', where EFFICIENT_ATTENTION applies them by rule and MATH materializes them";
    return `${label} does not apply ${missing.join(', ')} without a mask buffer; ${hint}`;
  });
}

/** The per-row log-sum-exp is returned only by parts with `runWithLse`. */
export function checkLse(label: string, caps: BackendCaps): Constraint {
  return named('checkLse', (p) =>
    !p.needLse || caps.lse ? undefined : `${label} does not return the log-sum-exp (returnLse / split-KV); use EFFICIENT_ATTENTION or MATH`,
  );
}

/** The attention weights (`returnWeights: true`) are returned only by parts that materialize them. */
export function checkWeights(label: string, caps: BackendCaps): Constraint {
  return named('checkWeights', (p) =>
    !p.needWeights || caps.weights
      ? undefined
      : `${label} does not return attention weights (returnWeights: true), it never materializes the S×L probabilities; use MATH (cpu)`,
  );
}

/**
 * The generic constraints a part (or a kernel variant, labelled by its name) gets from its caps,
 * in check order.
 */
export function capsConstraints(label: string, caps: BackendCaps): Constraint[] {
  return [
    checkDtype(label, caps),
    checkHeadDim(label, caps),
    checkValueDim(label, caps),
    checkMaskKind(label, caps),
    checkCausal(label, caps),
    checkDropout(label, caps),
    checkGqa(label, caps),
    checkCustomScale(label, caps),
    checkStructuredBias(label, caps),
    checkLse(label, caps),
    checkWeights(label, caps),
  ];
}

/** Factory: the number of bytes a part would allocate stays within a budget. */
export function checkMemoryBudget(label: string, what: string, bytes: (p: AttentionParams) => number, budget: () => number, hint: string): Constraint {
  return named('checkMemoryBudget', (p) => {
    const need = bytes(p);
    const have = budget();
    return need <= have ? undefined : `${label} materializes ${what}: ${formatBytes(need)} > budget ${formatBytes(have)}; ${hint}`;
  });
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

/**
 * Parts that scale the scores in float32 (native kernels, WGSL, onnxruntime) turn a scale beyond
 * float32's range into ±Infinity, and every score into ±Infinity or NaN, where MATH and EFFICIENT
 * (cpu) scale in float64 and return finite values: such a part is ineligible rather than disagreeing.
 */
export function checkScaleFitsFloat32(label: string): Constraint {
  return named('checkScaleFitsFloat32', (p: AttentionParams) =>
    Number.isFinite(Math.fround(p.scale))
      ? undefined
      : `${label} applies scale in float32; scale ${p.scale} is beyond float32's range (|scale| <= 3.4028235e38) and would make every score infinite; use MATH or EFFICIENT_ATTENTION on cpu (float64 scaling)`,
  );
}
