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

/**
 * A backend name: a built-in {@link SDPBackend} or a name given to {@link registerBackend}
 * (names are open, TF.js style). The `string & {}` keeps editor completion for the built-ins.
 */
export type BackendName = SDPBackend | (string & {});

/**
 * Numeric priorities of the built-in backends (higher runs first, as TF.js's `registerBackend`
 * priority). {@link DEFAULT_PRIORITY} is this table sorted; a registered backend with priority 100
 * goes before all of them.
 */
export const BUILTIN_PRIORITY: Readonly<Record<SDPBackend, number>> = {
  FLASH_ATTENTION: 40,
  ONNXRUNTIME: 30,
  EFFICIENT_ATTENTION: 20,
  MATH: 10,
};

/**
 * Every backend name, in the default priority order. The first design started from FLASH, EFFICIENT,
 * ONNXRUNTIME, MATH, "changed only on measured evidence" (docs/design.md §3): ONNX Runtime's CPU Attention measured
 * 100–240× faster than the TypeScript EFFICIENT kernel (docs/onnxruntime.md), so it comes second.
 * Its memory constraint (it holds the float32 score matrix) still sends long sequences to
 * EFFICIENT. See docs/dispatch.md.
 */
export const DEFAULT_PRIORITY: readonly SDPBackend[] = [
  SDPBackend.FLASH_ATTENTION,
  SDPBackend.ONNXRUNTIME,
  SDPBackend.EFFICIENT_ATTENTION,
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

/** Where a structured rule's diagonal sits: top-left corner, or bottom-right (offset L - S). */
export type Alignment = 'upper-left' | 'lower-right';

/**
 * Sliding-window (local) attention: with `c = i + offset` (offset 0 for upper-left, L - S for
 * lower-right, per block under {@link BlockDiagonalInfo}), key j is visible when
 * `c - left <= j <= c + right`. `Infinity` leaves a side unbounded (flash-attn's -1).
 */
export interface WindowInfo {
  readonly left: number;
  readonly right: number;
  readonly alignment: Alignment;
}

/**
 * ALiBi: `-slope · |i + offset - j|` is added to the (soft-capped) score; offset as in
 * {@link WindowInfo}. `slopes` has one value per query head, or one per (batch, head) when
 * `perBatch` (per (block, head) under {@link BlockDiagonalInfo}).
 */
export interface AlibiInfo {
  readonly slopes: Float32Array;
  readonly perBatch: boolean;
  readonly alignment: Alignment;
}

/**
 * Block-diagonal (varlen) structure over the S×L scores: query rows `[qStart[b], qStart[b] + qLen[b])`
 * see only keys `[kvStart[b], kvStart[b] + kvLen[b])`; rows outside every block see nothing (zeros).
 * Inside a block, indices are block-local: causal, window and ALiBi use the block's own S and L.
 */
export interface BlockDiagonalInfo {
  readonly qStart: Int32Array;
  readonly qLen: Int32Array;
  readonly kvStart: Int32Array;
  readonly kvLen: Int32Array;
  /** Causal inside each block, with this alignment. */
  readonly causal: boolean;
  readonly alignment: Alignment;
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
  /** Sliding window (from a structured bias); absent for plain calls. */
  readonly window?: WindowInfo;
  /** ALiBi slopes (from a structured bias). */
  readonly alibi?: AlibiInfo;
  /** Logit soft-capping: scores become `softcap · tanh(score / softcap)` before biases and masks. */
  readonly softcap?: number;
  /** Block-diagonal / varlen structure (from a structured bias). */
  readonly blockDiagonal?: BlockDiagonalInfo;
  /** The caller needs the per-row log-sum-exp too (returnLse, split-KV merges). */
  readonly needLse?: boolean;
  /** The caller needs the attention weights `[..., Hq, S, L]` too (`returnWeights: true`). */
  readonly needWeights?: boolean;
}

/** Accuracy a backend promises against the float64 reference, per dtype: |a-b| <= atol + rtol·|b|. */
export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

/** A tolerance per float dtype. */
export type FloatTolerances = Readonly<Record<FloatDType, Tolerance>>;

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
  /** Applies sliding windows by rule, without a mask buffer (default false). */
  readonly window?: boolean;
  /** Applies ALiBi slopes by rule (default false). */
  readonly alibi?: boolean;
  /** Applies logit soft-capping (default false). */
  readonly softcap?: boolean;
  /** Applies block-diagonal (varlen) structure by rule (default false). */
  readonly blockDiagonal?: boolean;
  /** Returns the per-row log-sum-exp through `runWithLse` (default false). */
  readonly lse?: boolean;
  /** Returns the attention weights (softmax probabilities after dropout) through `runWithWeights` (default false). */
  readonly weights?: boolean;
}

/** The reason a constraint gives, or undefined when it is met. */
export type ConstraintResult = string | undefined;

/**
 * A named check `(params, device) => reason | undefined`. The function's `name` (checkXxx) is the
 * constraint's name in traces and docs.
 */
export type Constraint = (params: AttentionParams, device: Device) => ConstraintResult;

/** Output and attention weights of one call (`sdpa(q, k, v, { returnWeights: true })`). */
export interface AttentionWithWeights {
  /** `[..., Hq, S, Ev]` in q's dtype. */
  readonly out: Tensor;
  /**
   * `[..., Hq, S, L]` in q's dtype: softmax(scale·q·kᵀ + mask) after dropout, as PyTorch's math path
   * returns it (dropped weights are 0, kept ones scaled by 1/(1-p)); rows that see no key are 0.
   */
  readonly weights: Tensor;
}

/** Per-run context handed to a backend part. */
export interface RunContext {
  /**
   * The caller's AbortSignal (`sdpa(..., { signal })`), when it gave one. The contract every
   * kernel honours:
   * - Dispatch checks it before each kernel starts, so a kernel never needs to check on entry.
   * - Work that runs in blocks (TypeScript row blocks, native thread-pool jobs, WebAssembly worker
   *   slices) checks `signal.aborted` between blocks and, once it is set, starts no new block and
   *   rejects — conventionally with `signal.throwIfAborted()`. Blocks already running may finish.
   * - Work that cannot be interrupted (a GPU submit, an ONNX Runtime session run) checks it just
   *   before it starts and then runs to the end.
   * - After an abort the kernel writes nothing the caller can see: only its own output buffers,
   *   which dispatch drops. Dispatch rejects with `SdpaAbortError` (name `AbortError`), whatever the
   *   kernel rejected with, and never falls back to another kernel.
   */
  readonly signal?: AbortSignal;
  /** Records bytes a backend allocated for this call (scratch, score matrices, GPU buffers). */
  recordAllocation(bytes: number): void;
}

/** Availability of a part: known, or not yet probed (async engines probe in `init()`). */
export type Availability = { readonly available: true } | { readonly available: false; readonly reason: string };

/**
 * What a kernel variant runs, as data (`capabilities()` and the docs show it): a native addon
 * entry and its ISA, a WebAssembly module, WGSL shader files, a TypeScript function or an ONNX op.
 */
export type KernelProgram =
  | { readonly kind: 'native'; readonly entry: string; readonly isa: string }
  | { readonly kind: 'wasm'; readonly module: string; readonly entry: string; readonly simd: string }
  | { readonly kind: 'wgsl'; readonly shaders: readonly string[]; readonly note?: string }
  | { readonly kind: 'typescript'; readonly fn: string }
  | { readonly kind: 'onnx'; readonly op: string }
  | { readonly kind: 'custom'; readonly description: string };

/**
 * One kernel of a backend part (xFormers makes each its own op; here they are entries under the
 * part, judged by the same evaluator): its own caps, constraints, tolerance and code. A part runs
 * the first eligible variant of its `kernels`, in that (priority) order.
 */
export interface KernelVariant {
  /** Unique within the part, snake_case: `avx2_fp32`, `tiled_portable_f16`. Pins and reports use it. */
  readonly name: string;
  /** One sentence on what it is. */
  readonly summary: string;
  /** What this variant can do; defaults to the part's caps. Narrower caps become this variant's reasons. */
  readonly caps?: BackendCaps;
  /**
   * Whether this kernel can run on this machine at all (the ISA, an adapter feature), known after
   * the part's `init()`. Omitted: available whenever the part is.
   */
  availability?(): Availability;
  /** Variant-specific constraints, checked after the caps-derived ones (same sentence form as parts'). */
  readonly constraints?: readonly Constraint[];
  /** What it runs. */
  readonly program: KernelProgram;
  /** Computes attention. Throw {@link BackendFaultError} for faults that should fall back. */
  run(params: AttentionParams, ctx: RunContext): Promise<Tensor>;
  /** Attention plus the per-row log-sum-exp, present exactly when the variant's caps say `lse`. */
  runWithLse?(params: AttentionParams, ctx: RunContext): Promise<{ out: Tensor; lse: Tensor }>;
  /** Attention plus the attention weights `[..., Hq, S, L]` (see {@link AttentionWithWeights}); present when the caps say `weights`. */
  runWithWeights?(params: AttentionParams, ctx: RunContext): Promise<AttentionWithWeights>;
  /** Tolerance per dtype against the float64 reference; defaults to the part's. */
  readonly tolerance?: Readonly<Record<FloatDType, Tolerance>>;
  /** Static facts for `capabilities()`: ISA found, tile shape, subgroup-matrix configs. */
  describe?(): Record<string, unknown>;
}

/**
 * An environment switch that pins a part to some of its kernels (read once, at first use). A
 * value `kernelsFor` does not know is a reason on the part, never a silent default.
 */
export interface KernelEnvPin {
  /** The variable, e.g. `SDPA_CPU_ISA`. */
  readonly variable: string;
  /** The values it takes, for the reason when it holds another. */
  readonly values: readonly string[];
  /** The kernels a value pins the part to (undefined: not a valid value). */
  kernelsFor(value: string): readonly string[] | undefined;
}

/** A backend on one device: capabilities, checks and its kernel variants. */
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
  /**
   * The part's kernel variants in priority order; the first eligible one runs. A part without
   * `kernels` has one implicit variant named `default` made of its `run` / `runWithLse`.
   */
  readonly kernels?: readonly KernelVariant[];
  /** An environment switch that pins this part's kernel (e.g. `SDPA_CPU_ISA`), besides `SDPA_KERNEL`. */
  readonly envPin?: KernelEnvPin;
  /** Computes attention (parts without `kernels`). Throw {@link BackendFaultError} for faults that should fall back. */
  run?(params: AttentionParams, ctx: RunContext): Promise<Tensor>;
  /**
   * Computes attention and the per-row log-sum-exp of the scores (`[...batch, Hq, S]` float32;
   * -Infinity for rows that see no key). Parts without `kernels`, when `caps.lse` is true.
   */
  runWithLse?(params: AttentionParams, ctx: RunContext): Promise<{ out: Tensor; lse: Tensor }>;
  /** Attention plus its weights (parts without `kernels`, when `caps.weights` is true). */
  runWithWeights?(params: AttentionParams, ctx: RunContext): Promise<AttentionWithWeights>;
  /** Tolerance per dtype against the float64 reference. */
  readonly tolerance: Readonly<Record<FloatDType, Tolerance>>;
  /** Extra facts for `capabilities()` (ISA, adapter, versions). */
  describe?(): Record<string, unknown>;
}

/** One backend: a name and its parts per device. */
export interface BackendDescriptor {
  /** A built-in {@link SDPBackend} or a new name. */
  readonly name: BackendName;
  /**
   * Where it goes in the default order: higher runs first ({@link BUILTIN_PRIORITY}: FLASH 40 …
   * MATH 10). Defaults to the built-in's priority, or 0 (last) for a new name.
   */
  readonly priority?: number;
  /** One sentence on what it is. */
  readonly summary: string;
  readonly parts: readonly BackendPart[];
}
