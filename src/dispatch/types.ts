/**
 * The data model of dispatch: the normalised facts of one call ({@link AttentionParams}), a
 * backend's capabilities as data ({@link BackendCaps}), named constraints and the backend
 * descriptor every engine registers ({@link BackendDescriptor}).
 */
import type { FloatDType } from '../dtype.js';
import type { Device, Tensor } from '../tensor.js';

/** Backend names; the string values equal the keys, like PyTorch's `SDPBackend` members. */
export const SDPBackend = {
  FLASH_ATTENTION: 'FLASH_ATTENTION',
  EFFICIENT_ATTENTION: 'EFFICIENT_ATTENTION',
  MATH: 'MATH',
  ONNXRUNTIME: 'ONNXRUNTIME',
} as const;

/** One of the {@link SDPBackend} values. */
export type SDPBackend = (typeof SDPBackend)[keyof typeof SDPBackend];

/** Every backend name, in the default priority order (DESIGN §3). */
export const DEFAULT_PRIORITY: readonly SDPBackend[] = [
  SDPBackend.FLASH_ATTENTION,
  SDPBackend.EFFICIENT_ATTENTION,
  SDPBackend.ONNXRUNTIME,
  SDPBackend.MATH,
];

/** How the mask argument constrains scores. */
export type MaskKind = 'none' | 'bool' | 'float';

/** Which causal alignment(s) apply. `both` is `isCausal` together with a lower-right bias. */
export type CausalVariant = 'upper-left' | 'lower-right' | 'both';

/** A dense mask, with its strides broadcast to the score layout `[...batch, Hq, S, L]` (0 = broadcast). */
export interface MaskInfo {
  readonly kind: Exclude<MaskKind, 'none'>;
  readonly tensor: Tensor;
  /** Strides over `[...batchShape, Hq, S, L]`, in elements of `tensor`'s storage; 0 on broadcast dims. */
  readonly strides: readonly number[];
}

/** Causal structure: key j is visible to query i when `j <= i + diagonalOffset`. */
export interface CausalInfo {
  readonly variant: CausalVariant;
  /** 0 for upper-left, L - S for lower-right, the smaller of the two for both. */
  readonly diagonalOffset: number;
}

/**
 * The validated, normalised facts of one `sdpa` call: what constraints look at and kernels run.
 * Built once per call by `buildParams` (src/params.ts); never mutated.
 */
export interface AttentionParams {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  /** Leading dims before the head dim (may be empty). */
  readonly batchShape: readonly number[];
  /** Product of `batchShape` (1 when empty). */
  readonly batch: number;
  /** Query heads (1 for 2-D inputs). */
  readonly hq: number;
  /** Key/value heads. */
  readonly hkv: number;
  /** Query length. */
  readonly s: number;
  /** Key/value length. */
  readonly l: number;
  /** Query/key head dim. */
  readonly e: number;
  /** Value head dim. */
  readonly ev: number;
  readonly dtype: FloatDType;
  readonly maskKind: MaskKind;
  readonly mask: MaskInfo | undefined;
  readonly causal: CausalInfo | undefined;
  readonly scale: number;
  /** True when the caller passed no scale (1/sqrt(E) was used). */
  readonly scaleIsDefault: boolean;
  readonly dropoutP: number;
  readonly seed: number;
  readonly enableGqa: boolean;
  /** Hq / Hkv (1 without GQA). */
  readonly gqaGroup: number;
  /** Where the call computes. */
  readonly device: Device;
}

/** Accuracy a backend promises against the float64 reference, per dtype: |a-b| <= atol + rtol·|b|. */
export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

/** What a backend part can do, as data: generic constraints and the support matrix derive from it. */
export interface BackendCaps {
  readonly dtypes: readonly FloatDType[];
  /** Largest head dim (E and Ev). */
  readonly maxHeadDim: number;
  /** Head dims must be a multiple of this (1: any). */
  readonly headDimMultiple: number;
  readonly maskKinds: readonly MaskKind[];
  readonly causalVariants: readonly CausalVariant[];
  /** A dense mask together with a causal variant. */
  readonly maskWithCausal: boolean;
  readonly dropout: boolean;
  readonly gqa: boolean;
  readonly customScale: boolean;
  /** Ev may differ from E. */
  readonly valueDimDiffers: boolean;
  /** Free text for the support matrix: memory behaviour, notes. */
  readonly notes?: string;
}

/** The reason a constraint gives, or undefined when it is met. */
export type ConstraintResult = string | undefined;

/**
 * A named check `(params, device) => reason | undefined`. The function's `name` (checkXxx) is the
 * constraint's name in traces and docs.
 */
export type Constraint = (params: AttentionParams, device: Device) => ConstraintResult;

/** Per-run context handed to a backend part. */
export interface RunContext {
  /** Aborts long CPU work between blocks; set when the caller's AbortSignal fires. */
  readonly signal?: AbortSignal;
  /** Records bytes a backend allocated for this call (scratch, score matrices, GPU buffers). */
  recordAllocation(bytes: number): void;
}

/** Availability of a part: known, or not yet probed (async engines probe in `init()`). */
export type Availability = { readonly available: true } | { readonly available: false; readonly reason: string };

/** A backend on one device: capabilities, checks and the kernel. */
export interface BackendPart {
  readonly device: Device;
  /** Short label used in reasons, e.g. `flash (cpu)`. */
  readonly label: string;
  readonly caps: BackendCaps;
  /** Synchronous availability as known now (after `init()` for engines that need probing). */
  availability(): Availability;
  /**
   * Once-only initialisation (load an addon, request an adapter). Must not throw: a failure becomes
   * the part's unavailability reason. Called by `sdpa()` / `capabilities()` before selection.
   */
  init?(): Promise<void>;
  /**
   * Backend-specific constraints, checked after the generic ones derived from `caps`
   * (e.g. a memory budget, a buffer limit).
   */
  readonly constraints: readonly Constraint[];
  /** Computes attention. Throw {@link BackendFaultError} for faults that should fall back. */
  run(params: AttentionParams, ctx: RunContext): Promise<Tensor>;
  /** Tolerance per dtype against the float64 reference. */
  readonly tolerance: Readonly<Record<FloatDType, Tolerance>>;
  /** Extra facts for `capabilities()` (ISA, adapter, versions). */
  describe?(): Record<string, unknown>;
}

/** One backend: a name and its parts per device. */
export interface BackendDescriptor {
  readonly name: SDPBackend;
  /** One sentence on what it is. */
  readonly summary: string;
  readonly parts: readonly BackendPart[];
}
