/**
 * The slice of the onnxruntime JavaScript API this backend uses, declared here so that the library
 * type-checks and runs without onnxruntime-node / onnxruntime-web installed (they are optional
 * dependencies, loaded lazily inside the parts' `init()`).
 */
import type { OrtTensorLike } from '../../src/tensor-adapters.js';

export type { OrtTensorLike };

/** Element types of onnxruntime tensors that this backend exchanges. */
export type OrtElementType = 'float32' | 'float16' | 'bfloat16' | 'bool' | 'int64' | 'int32' | 'uint8';

/** Typed arrays onnxruntime tensors hold for those element types. */
export type OrtTensorData = Float32Array | Uint16Array | Uint8Array | Int32Array | BigInt64Array | ArrayBufferView;

/** The `Tensor` constructor of an onnxruntime module. */
export interface OrtTensorConstructor {
  new (type: string, data: ArrayBufferView, dims: readonly number[]): OrtTensorLike;
}

/** Options passed to `InferenceSession.create`. */
export interface OrtSessionOptions {
  executionProviders?: readonly (string | { name: string; [k: string]: unknown })[];
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  intraOpNumThreads?: number;
}

/** An onnxruntime `InferenceSession`. */
export interface OrtSessionLike {
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/** The parts of an onnxruntime module (`onnxruntime-node` or `onnxruntime-web`) used here. */
export interface OrtModuleLike {
  readonly Tensor: OrtTensorConstructor;
  readonly InferenceSession: { create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSessionLike> };
  readonly env: { readonly versions?: Record<string, string>; wasm?: { numThreads?: number }; logLevel?: string };
}

/** True when `m` looks like an onnxruntime module. */
export function isOrtModule(m: unknown): m is OrtModuleLike {
  const x = m as Partial<OrtModuleLike> | null;
  return !!x && typeof x.Tensor === 'function' && typeof x.InferenceSession?.create === 'function';
}
