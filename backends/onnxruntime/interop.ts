/**
 * Interop with onnxruntime tensors, without importing onnxruntime: its tensors are recognised by
 * shape (`dims`, `type`, `data`), so `sdpa()` accepts them as q/k/v/mask, and {@link toOrtTensor}
 * turns results into them. CPU data is shared, not copied, where the layouts agree.
 */
import { float32ArrayToHalfBits } from '../../src/dtype.js';
import type { DType } from '../../src/dtype.js';
import { SdpaTypeError, describeValue } from '../../src/errors.js';
import { Tensor, shapeSize } from '../../src/tensor.js';
import type { OrtModuleLike, OrtTensorLike } from './ort-types.js';

/** True when `x` looks like an onnxruntime `Tensor` (and is not one of ours). */
export function isOrtTensorLike(x: unknown): x is OrtTensorLike {
  if (x === null || typeof x !== 'object' || x instanceof Tensor) return false;
  const t = x as Partial<OrtTensorLike>;
  return Array.isArray(t.dims) && typeof t.type === 'string' && 'data' in t;
}

/** `Float16Array` where the runtime has it (Node ≥ 24, recent browsers); onnxruntime may use it for float16. */
const Float16ArrayCtor = (globalThis as { Float16Array?: new (...a: never[]) => ArrayLike<number> }).Float16Array;

/**
 * @internal The conversion behind the tensor adapter (src/builtins.ts) and {@link fromOrtTensor}:
 * an onnxruntime tensor as the library's {@link Tensor}. float32, bool and 16-bit bit
 * patterns (Uint16Array) are shared, not copied; a `Float16Array` is re-encoded to bit patterns
 * (exact: every float16 value round-trips). Throws {@link SdpaTypeError} naming `argument`.
 *
 * @param fn The calling function, for the error message.
 * @param argument The argument name, e.g. `q` or `opts.attnMask`.
 */
export function tensorFromOrt(fn: string, argument: string, t: OrtTensorLike): Tensor {
  const dims = t.dims.map(Number);
  const data = t.data;
  const bad = (expected: string, received: string): never => {
    throw new SdpaTypeError(fn, { argument, expected, received });
  };
  if (data === undefined || data === null || typeof data !== 'object') {
    bad('an onnxruntime Tensor with CPU data (call await tensor.getData() on GPU-resident tensors first)', `an onnxruntime Tensor of type ${t.type} without CPU data`);
  }
  const n = shapeSize(dims);
  let dtype: DType;
  let typed: Float32Array | Uint16Array | Uint8Array;
  switch (t.type) {
    case 'float32':
      if (!(data instanceof Float32Array)) bad('Float32Array data for an onnxruntime float32 tensor', describeValue(data));
      dtype = 'float32';
      typed = data as Float32Array;
      break;
    case 'float16':
    case 'bfloat16':
      dtype = t.type;
      if (data instanceof Uint16Array) typed = data;
      else if (t.type === 'float16' && Float16ArrayCtor && data instanceof Float16ArrayCtor) typed = float32ArrayToHalfBits(data as ArrayLike<number>, 'float16');
      else return bad(`Uint16Array (bit patterns) or Float16Array data for an onnxruntime ${t.type} tensor`, describeValue(data));
      break;
    case 'bool':
    case 'uint8':
      if (!(data instanceof Uint8Array)) bad('Uint8Array data for an onnxruntime bool tensor', describeValue(data));
      dtype = 'bool';
      typed = data as Uint8Array;
      break;
    default:
      return bad('an onnxruntime Tensor of type float32, float16, bfloat16 or bool', `type ${JSON.stringify(t.type)}`);
  }
  if (typed.length !== n) bad(`data of length ${n} (the product of dims [${dims.join(', ')}])`, `length ${typed.length}`);
  if (dtype === 'bool') {
    const u8 = typed as Uint8Array;
    for (let i = 0; i < u8.length; i++) if (u8[i] > 1) bad('bool values 0 or 1', `${u8[i]} at index ${i}`);
  }
  return new Tensor({ shape: dims, dtype, data: typed });
}

/**
 * Converts an onnxruntime tensor (CPU data) to the library's {@link Tensor}: float32, bool and
 * 16-bit bit patterns (Uint16Array) are shared, not copied; a `Float16Array` is re-encoded to bit
 * patterns (exact). `sdpa()` does this itself for its inputs; call it to hold a library tensor.
 * @throws SdpaTypeError for other element types, GPU-resident data or a length that does not match `dims`.
 * @example const q = fromOrtTensor(ortQ); console.log(q.shape);
 */
export function fromOrtTensor(t: OrtTensorLike): Tensor {
  if (!isOrtTensorLike(t)) throw new SdpaTypeError('fromOrtTensor', { argument: 'tensor', expected: 'an onnxruntime Tensor (with dims, type and data)', received: describeValue(t) });
  return tensorFromOrt('fromOrtTensor', 'tensor', t);
}

/** The onnxruntime module the backend loaded, if any (set by the parts' `init()`). */
let loadedOrt: OrtModuleLike | undefined;

/** @internal Records the module the cpu part loaded, for {@link toOrtTensor} without an argument. */
export function setLoadedOrt(m: OrtModuleLike): void {
  loadedOrt ??= m;
}

/**
 * Wraps a CPU {@link Tensor} as an onnxruntime `Tensor` of the same dtype and shape. A contiguous
 * tensor shares its storage (no copy); a strided view is gathered first.
 *
 * @param t A CPU tensor (`await t.toFloat32()` device-resident ones first).
 * @param ort The onnxruntime module whose `Tensor` to build (`import * as ort from 'onnxruntime-node'`);
 *   defaults to the one this backend loaded (after `await capabilities()` or a first ONNXRUNTIME call).
 * @example
 * const out = await sdpa(q, k, v);
 * const ortOut = toOrtTensor(out, ort); // feed it to another session
 */
export function toOrtTensor(t: Tensor, ort?: OrtModuleLike): OrtTensorLike {
  if (!(t instanceof Tensor)) throw new SdpaTypeError('toOrtTensor', { argument: 'tensor', expected: 'a Tensor from this library', received: describeValue(t) });
  const m = ort ?? loadedOrt;
  if (!m) {
    throw new SdpaTypeError('toOrtTensor', {
      argument: 'ort',
      expected: "an onnxruntime module (e.g. import * as ort from 'onnxruntime-node'), or a prior ONNXRUNTIME probe (await capabilities())",
      received: 'undefined, and no onnxruntime module has been loaded by this library',
    });
  }
  if (!t.data) throw new SdpaTypeError('toOrtTensor', { argument: 'tensor', expected: 'a CPU tensor', received: `a tensor on ${t.device}` });
  return new m.Tensor(t.dtype, t.contiguousData(), [...t.shape]);
}
