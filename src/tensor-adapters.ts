/**
 * Foreign tensor types `sdpa()` accepts as q/k/v/mask (onnxruntime's today), registered by the
 * backends that know them (src/builtins.ts), so the core never imports a backend to recognise them.
 */
import type { Tensor } from './tensor.js';

/**
 * An onnxruntime `Tensor` as seen through duck typing (`.dims`, `.type`, `.data`): the type of
 * the foreign tensors `sdpa()` takes, declared here so that the public signatures need no backend.
 */
export interface OrtTensorLike {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
  /** Present on onnxruntime ≥ 1.16; frees GPU-resident data. */
  dispose?(): void;
}

/** What `sdpa()` and `explainDispatch()` take as q, k, v and `attnMask`: a library tensor or an onnxruntime one. */
export type TensorInput = Tensor | OrtTensorLike;

/** Recognises and converts one foreign tensor type. */
export interface TensorAdapter {
  /** A short name for messages, e.g. `onnxruntime`. */
  readonly name: string;
  /** True when `x` is a tensor of this type. */
  matches(x: unknown): boolean;
  /** Converts it; throws an input error naming `argument` when its data cannot be used. */
  convert(fn: string, argument: string, x: unknown): Tensor;
}

const adapters: TensorAdapter[] = [];

/** Registers an adapter (once per name; a second registration of a name replaces the first). */
export function registerTensorAdapter(adapter: TensorAdapter): void {
  const i = adapters.findIndex((a) => a.name === adapter.name);
  if (i >= 0) adapters[i] = adapter;
  else adapters.push(adapter);
}

/** `x` converted by the first adapter that recognises it, or undefined when none does. */
export function adaptForeignTensor(fn: string, argument: string, x: unknown): Tensor | undefined {
  const a = adapters.find((ad) => ad.matches(x));
  return a ? a.convert(fn, argument, x) : undefined;
}
