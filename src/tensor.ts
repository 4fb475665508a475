/// <reference lib="esnext.disposable" preserve="true" />
/**
 * The library's tensor: a shape, a dtype and storage on the CPU (a typed array) or on a GPU (a
 * buffer owned by a backend). Tensors are immutable views: q/k/v are never written by `sdpa()`.
 */
import { DType, DTYPES, halfBitsToFloat32Array, float32ArrayToHalfBits, float32Bits, float32FromBits } from './dtype.js';
import { SdpaRangeError, SdpaTypeError, describeValue } from './errors.js';
import './gpu-globals.js';

/** Where a tensor's bytes live. */
export type Device = 'cpu' | 'webgpu';

/** The typed array that holds CPU data of each dtype. */
export type TensorData = Float32Array | Uint16Array | Uint8Array;

/**
 * Storage held on a GPU. Backends that keep results on a device implement this; the tensor only
 * needs to read it back and release it.
 */
export interface DeviceStorage {
  /** The device the storage lives on. */
  readonly device: Exclude<Device, 'cpu'>;
  /** Size of the storage in bytes. */
  readonly byteLength: number;
  /** Reads the raw elements back to the CPU, in the tensor's dtype layout (16-bit patterns for halves). */
  read(): Promise<TensorData>;
  /** Releases the GPU memory; later reads fail. */
  destroy(): void;
  /** True once destroyed (a tensor over it is then disposed); storages that cannot tell leave it out. */
  readonly destroyed?: boolean;
}

/** The typed array class of each dtype's CPU storage. */
const STORAGE_CLASS = { float32: Float32Array, float16: Uint16Array, bfloat16: Uint16Array, bool: Uint8Array } as const;
const BYTES_PER_ELEMENT: Record<DType, number> = { float32: 4, float16: 2, bfloat16: 2, bool: 1 };

/**
 * True when `a`'s ArrayBuffer is known to be detached (`.detached`, where the runtime has it). On
 * runtimes without it (Node 20) a detach after construction still shows: the array's length drops to 0.
 */
function dataDetached(a: TensorData): boolean {
  return (a.buffer as ArrayBuffer & { detached?: boolean }).detached === true;
}

/** One past the largest element index a view reaches (0 for an empty view). */
function extentEnd(shape: readonly number[], strides: readonly number[], offset: number): number {
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 0) return 0;
    last += (shape[i] - 1) * strides[i];
  }
  return last + 1;
}

/**
 * The key `using` looks up: `Symbol.dispose` where the runtime has it, else the registered symbol
 * TypeScript's downlevel `using` falls back to, so `using t = await sdpa(...)` disposes everywhere.
 */
const DISPOSE = ((Symbol as { dispose?: symbol }).dispose ?? Symbol.for('Symbol.dispose')) as typeof Symbol.dispose;

/** Largest element count one tensor may hold (2^32 - 1: a typed array's index limit in V8). */
export const MAX_TENSOR_ELEMENTS = 2 ** 32 - 1;

/** A dense, row-major (or strided view) N-d array with a dtype. Create with {@link tensor}. */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Where the data lives. */
  readonly device: Device;
  /** Element strides per dimension (row-major unless the tensor is a view). */
  readonly strides: readonly number[];
  /** Element offset of index [0, ..., 0] in the storage. */
  readonly offset: number;
  /** CPU storage; undefined for device-resident tensors. */
  readonly data: TensorData | undefined;
  /** GPU storage; undefined for CPU tensors. */
  readonly storage: DeviceStorage | undefined;

  /** Set by {@link dispose}; a private field, so freezing the instance leaves it writable. */
  #disposed = false;
  /** `data.length` when the tensor was made: a change means the storage was detached or resized. */
  readonly #dataLength: number;

  /**
   * Prefer {@link tensor}. The constructor is exported for views and backends; it validates every
   * field in one place (shape, dtype, the data's class for the dtype, strides and offset within
   * the data) and freezes the tensor, so `data`, `offset` and the rest cannot be reassigned later.
   * @throws SdpaTypeError / SdpaRangeError naming the field at fault.
   */
  constructor(init: {
    shape: readonly number[];
    dtype: DType;
    data?: TensorData;
    storage?: DeviceStorage;
    strides?: readonly number[];
    offset?: number;
  }) {
    const fn = 'Tensor';
    if (typeof init !== 'object' || init === null) throw new SdpaTypeError(fn, { argument: 'init', expected: 'an object { shape, dtype, data | storage, strides?, offset? }', received: describeValue(init) });
    const own = <K extends keyof typeof init>(k: K): (typeof init)[K] | undefined => (Object.hasOwn(init, k) ? init[k] : undefined);
    const shape = checkShape(fn, own('shape'));
    const dtype = checkDType(fn, own('dtype'));
    const data = own('data'), storage = own('storage');
    if ((data === undefined) === (storage === undefined)) {
      throw new SdpaTypeError(fn, { argument: 'init', expected: 'exactly one of data (CPU) and storage (device)', received: data === undefined ? 'neither' : 'both' });
    }
    if (data !== undefined && !(data instanceof STORAGE_CLASS[dtype])) {
      throw new SdpaTypeError(fn, { argument: 'data', expected: `a ${STORAGE_CLASS[dtype].name} for dtype '${dtype}'`, received: describeValue(data) });
    }
    if (storage !== undefined && (typeof storage !== 'object' || storage === null || typeof storage.read !== 'function' || typeof storage.destroy !== 'function' || (storage.device as string) === 'cpu')) {
      throw new SdpaTypeError(fn, { argument: 'storage', expected: 'a DeviceStorage { device, byteLength, read(), destroy() }', received: describeValue(storage) });
    }
    const rawStrides = own('strides');
    let strides: number[];
    if (rawStrides === undefined) strides = contiguousStrides(shape);
    else {
      if (!Array.isArray(rawStrides) || rawStrides.length !== shape.length) {
        throw new SdpaTypeError(fn, { argument: 'strides', expected: `an array of ${shape.length} non-negative integers (one per dim)`, received: describeValue(rawStrides) });
      }
      strides = [...(rawStrides as number[])];
      strides.forEach((x, i) => {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new SdpaRangeError(fn, { argument: `strides[${i}]`, expected: 'a non-negative integer (0 broadcasts)', received: describeValue(x) });
      });
    }
    const offset = own('offset') ?? 0;
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) throw new SdpaRangeError(fn, { argument: 'offset', expected: 'a non-negative integer', received: describeValue(offset) });
    if (data !== undefined) {
      if (dataDetached(data)) throw new SdpaTypeError(fn, { argument: 'data', expected: 'a typed array over a live buffer', received: 'a typed array whose ArrayBuffer was detached (transferred)' });
      const end = extentEnd(shape, strides, offset);
      if (end > data.length) {
        throw new SdpaRangeError(fn, { argument: 'data', expected: `at least ${end} elements (offset ${offset}, shape [${shape.join(', ')}], strides [${strides.join(', ')}])`, received: `length ${data.length}` });
      }
    } else if (storage!.byteLength < shapeSize(shape) * BYTES_PER_ELEMENT[dtype]) {
      throw new SdpaRangeError(fn, { argument: 'storage', expected: `at least ${shapeSize(shape) * BYTES_PER_ELEMENT[dtype]} bytes for ${dtype} [${shape.join(', ')}]`, received: `${storage!.byteLength} bytes` });
    }
    this.shape = Object.freeze(shape);
    this.dtype = dtype;
    this.data = data;
    this.storage = storage;
    this.device = storage ? storage.device : 'cpu';
    this.strides = Object.freeze(strides);
    this.offset = offset;
    this.#dataLength = data ? data.length : 0;
    Object.freeze(this);
  }

  /**
   * True once {@link dispose} was called on this tensor (or, for a device tensor, on any view of its
   * storage). A disposed tensor is refused as an input and cannot be read.
   */
  get disposed(): boolean {
    return this.#disposed || (this.storage?.destroyed ?? false);
  }

  /**
   * Why this tensor's storage cannot be used now, or undefined: disposed, or CPU data whose
   * ArrayBuffer was detached (transferred) or resized since the tensor was made.
   */
  storageProblem(): string | undefined {
    if (this.disposed) return `a disposed tensor (${this.toString()}): dispose() released it`;
    if (this.data && (this.data.length !== this.#dataLength || dataDetached(this.data))) {
      return 'a tensor whose ArrayBuffer was detached (transferred) or resized after the tensor was made';
    }
    return undefined;
  }

  /** Throws the library's error naming `argument` when {@link storageProblem} finds one. */
  assertUsable(fn: string, argument: string): void {
    const problem = this.storageProblem();
    if (problem) throw new SdpaTypeError(fn, { argument, expected: 'a tensor with live storage (not disposed, its ArrayBuffer neither detached nor resized)', received: problem });
  }

  /** Number of elements (product of the shape). */
  get size(): number {
    return shapeSize(this.shape);
  }

  /** True when the elements are stored densely in row-major order from offset 0. */
  get isContiguous(): boolean {
    if (this.offset !== 0) return false;
    const c = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || c[i] === this.strides[i]);
  }

  /** The values as float32 (bool becomes 0/1), copied out in row-major order. */
  async toFloat32(): Promise<Float32Array> {
    this.assertUsable('toFloat32', 'tensor');
    if (this.data) return this.toFloat32Sync();
    const raw = await this.storage!.read();
    return new Tensor({ shape: this.shape, dtype: this.dtype, data: raw, strides: this.strides, offset: this.offset }).toFloat32Sync();
  }

  /** Synchronous {@link toFloat32} for CPU tensors; throws for device-resident ones. */
  toFloat32Sync(): Float32Array {
    this.assertUsable('toFloat32Sync', 'tensor');
    if (!this.data) throw new SdpaTypeError('toFloat32Sync', { argument: 'tensor', expected: 'a CPU tensor (device tensors: await toFloat32())', received: `a tensor on ${this.device}` });
    const dense = this.contiguousData();
    if (this.dtype === 'float32') return dense === this.data ? new Float32Array(dense as Float32Array) : (dense as Float32Array);
    if (this.dtype === 'bool') return Float32Array.from(dense as Uint8Array);
    return halfBitsToFloat32Array(dense as Uint16Array, this.dtype);
  }

  /** The CPU elements in row-major order: the storage itself when already dense, else a gathered copy. */
  contiguousData(): TensorData {
    if (!this.data) throw new Error(`contiguousData: the tensor lives on ${this.device}`);
    const n = this.size;
    if (this.isContiguous) return this.data.length === n ? this.data : this.data.subarray(0, n);
    const out = new (this.data.constructor as new (n: number) => TensorData)(n);
    const rank = this.shape.length;
    const idx = new Array<number>(rank).fill(0);
    let src = this.offset;
    for (let i = 0; i < n; i++) {
      out[i] = this.data[src];
      // Odometer increment: bump the innermost index, carrying outward.
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        src += this.strides[d];
        if (idx[d] < this.shape[d]) break;
        src -= this.strides[d] * this.shape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  /**
   * Ends the tensor's use. Device tensors give their GPU buffer back (views of it are disposed with
   * it). CPU tensors: the typed array stays the caller's (it is neither freed nor cleared: the
   * garbage collector owns CPU memory), but the tensor is marked disposed, exactly like a device
   * one: using it as an input or reading it throws an `SdpaTypeError`. Calling it again does nothing.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.storage?.destroy();
  }

  /** `using out = await sdpa(q, k, v)`: {@link dispose} when the block ends. */
  [DISPOSE](): void {
    this.dispose();
  }

  /** A short description, e.g. `Tensor(float16 [1, 8, 128, 64] cpu)`. */
  toString(): string {
    return `Tensor(${this.dtype} [${this.shape.join(', ')}] ${this.device})`;
  }
}

/** Row-major strides of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Product of the dims (1 for a scalar shape). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(fn: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) {
    throw new SdpaTypeError(fn, { argument: 'shape', expected: 'an array of non-negative integers', received: describeValue(shape) });
  }
  // An index loop, not forEach: forEach skips the holes of a sparse array such as [1, , 4].
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number' || !Number.isInteger(d)) {
      throw new SdpaTypeError(fn, { argument: `shape[${i}]`, expected: 'an integer', received: describeValue(d) });
    }
    if (d < 0) throw new SdpaRangeError(fn, { argument: `shape[${i}]`, expected: 'a non-negative integer', received: `${d}` });
  }
  const n = shapeSize(shape as number[]);
  if (n > MAX_TENSOR_ELEMENTS) {
    throw new SdpaRangeError(fn, { argument: 'shape', expected: `at most ${MAX_TENSOR_ELEMENTS} elements`, received: `[${shape.join(', ')}] = ${n} elements` });
  }
  return [...(shape as number[])];
}

function checkDType(fn: string, dtype: unknown): DType {
  if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) {
    throw new SdpaTypeError(fn, { argument: 'dtype', expected: `one of ${DTYPES.map((d) => `'${d}'`).join(', ')}`, received: describeValue(dtype) });
  }
  return dtype as DType;
}

/**
 * A `Float16Array` (Node ≥ 24, recent browsers), typed structurally so that the declarations do
 * not need a compiler lib that has it: where the lib has `Float16Array`, it matches.
 */
export interface Float16ArrayLike extends ArrayLike<number> {
  readonly [Symbol.toStringTag]: 'Float16Array';
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
}

/**
 * What {@link tensor} takes as data: the storage classes ({@link TensorData}), used as they are, or
 * values to convert once into them for a float dtype (`Float64Array`, `number[]`, `Float16Array`).
 */
export type TensorSource = TensorData | Float64Array | readonly number[] | Float16ArrayLike;

const Float16ArrayCtor = (globalThis as { Float16Array?: abstract new (...a: never[]) => Float16ArrayLike }).Float16Array;

function isFloat16Array(x: unknown): x is Float16ArrayLike {
  return Float16ArrayCtor !== undefined && x instanceof Float16ArrayCtor;
}

function inferDType(data: unknown): DType {
  if (data instanceof Float32Array || data instanceof Float64Array || Array.isArray(data)) return 'float32';
  if (isFloat16Array(data)) return 'float16';
  if (data instanceof Uint8Array) return 'bool';
  if (data instanceof Uint16Array) {
    throw new SdpaTypeError('tensor', {
      argument: 'dtype',
      expected: "'float16' or 'bfloat16' for a Uint16Array (it holds 16-bit float bit patterns)",
      received: 'undefined',
    });
  }
  throw new SdpaTypeError('tensor', { argument: 'data', expected: `a Float32Array, Float64Array, number[]${Float16ArrayCtor ? ', Float16Array' : ''}, Uint16Array or Uint8Array`, received: describeValue(data) });
}

const DATA_EXPECTED: Record<DType, string> = {
  float32: 'a Float32Array, or values to convert (Float64Array, number[], Float16Array)',
  float16: 'a Uint16Array of float16 bit patterns, a Float16Array, or values to round (Float32Array, Float64Array, number[])',
  bfloat16: 'a Uint16Array of bfloat16 bit patterns, or values to round (Float32Array, Float64Array, number[], Float16Array)',
  bool: 'a Uint8Array of 0/1',
};

/**
 * Float64 values rounded to float32 "to odd" (an inexact result keeps its last bit set): rounding
 * that to float16/bfloat16 then equals rounding the float64 directly, with no double-rounding error,
 * because float32 carries more than two bits beyond either format's precision.
 */
function roundToOddFloat32(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    const f = Math.fround(x);
    if (f === x || x !== x || !Number.isFinite(f)) {
      out[i] = f;
      continue;
    }
    const bits = float32Bits(f);
    // Even last bit: take the neighbour on the other side of x (bits count magnitude away from 0).
    out[i] = (bits & 1) === 0 ? float32FromBits(Math.abs(f) > Math.abs(x) ? bits - 1 : bits + 1) : f;
  }
  return out;
}

/** `data` as the storage of `dtype`: shared when it already is that storage, else converted once. */
function toStorage(fn: string, data: unknown, dtype: DType): TensorData {
  const bad = (): never => {
    throw new SdpaTypeError(fn, { argument: 'data', expected: `${DATA_EXPECTED[dtype]} for dtype '${dtype}'`, received: describeValue(data) });
  };
  if (dtype === 'bool') return data instanceof Uint8Array ? data : bad();
  if (dtype === 'float32' && data instanceof Float32Array) return data;
  if (dtype !== 'float32' && data instanceof Uint16Array) return data;
  // Float16Array holds IEEE binary16 bit patterns: a Uint16Array view of them is our float16 storage.
  if (dtype === 'float16' && isFloat16Array(data)) return new Uint16Array(data.buffer, data.byteOffset, data.length);
  let values: ArrayLike<number>;
  if (Array.isArray(data)) {
    const i = data.findIndex((x) => typeof x !== 'number');
    if (i >= 0) throw new SdpaTypeError(fn, { argument: `data[${i}]`, expected: 'a number', received: describeValue(data[i]) });
    values = data as number[];
  } else if (data instanceof Float64Array || data instanceof Float32Array || isFloat16Array(data)) values = data;
  else return bad();
  if (dtype === 'float32') return Float32Array.from(values);
  // float32 and float16 sources are exact in float32; float64 ones are rounded to odd first.
  const f32 = data instanceof Float32Array ? data : data instanceof Float64Array || Array.isArray(data) ? roundToOddFloat32(values) : Float32Array.from(values);
  return float32ArrayToHalfBits(f32, dtype);
}

function checkData(fn: string, data: unknown, dtype: DType, n: number): TensorData {
  const arr = toStorage(fn, data, dtype);
  if (arr.buffer instanceof ArrayBuffer && (arr.buffer as ArrayBuffer & { detached?: boolean }).detached) {
    throw new SdpaTypeError(fn, { argument: 'data', expected: 'a typed array over a live buffer', received: 'a typed array whose ArrayBuffer was detached (transferred)' });
  }
  if (arr.length !== n) {
    throw new SdpaRangeError(fn, { argument: 'data', expected: `length ${n} (the product of the shape)`, received: `length ${arr.length}` });
  }
  if (dtype === 'bool') {
    const u8 = arr as Uint8Array;
    for (let i = 0; i < u8.length; i++) {
      if (u8[i] > 1) throw new SdpaRangeError(fn, { argument: `data[${i}]`, expected: 'a bool value 0 or 1', received: `${u8[i]}` });
    }
  }
  return arr;
}

/**
 * Creates a CPU tensor. Storage-class data is used as it is, not copied (keep it unchanged while
 * the tensor is in use); values of another class are converted once into a new array.
 *
 * @param data float32: a Float32Array (shared), or a Float64Array, `number[]` or Float16Array (converted).
 *   float16/bfloat16: a Uint16Array of bit patterns (shared), a Float16Array for float16 (shared,
 *   it holds the same bits), or Float32Array/Float64Array/`number[]` values rounded to nearest even
 *   (from float64 without double rounding). bool: a Uint8Array of 0/1 (shared).
 * @param shape Dimensions; their product must equal the data's length (a tensor's own `shape` works).
 * @param dtype Element type; inferred when omitted: float32 for Float32Array/Float64Array/`number[]`,
 *   float16 for Float16Array, bool for Uint8Array (a Uint16Array needs it).
 * @example
 * const q = tensor(new Float32Array(2 * 8 * 64), [1, 2, 8, 64]);
 * const k = tensor([0.5, -1, 2, 0.25], [1, 1, 2, 2], 'float16');
 */
function tensorImpl(data: TensorSource, shape: readonly number[], dtype?: DType): Tensor {
  const s = checkShape('tensor', shape);
  const dt = dtype === undefined ? inferDType(data) : checkDType('tensor', dtype);
  const d = checkData('tensor', data, dt, shapeSize(s));
  return new Tensor({ shape: s, dtype: dt, data: d });
}

/**
 * Creates a tensor of `dtype` from float32 values, rounding to nearest-even for float16/bfloat16
 * (bool: nonzero becomes 1).
 *
 * @example
 * const k = tensor.fromFloat32(Float32Array.from([0.1, 0.2]), [1, 1, 1, 2], 'bfloat16');
 */
function fromFloat32(values: Float32Array, shape: readonly number[], dtype: DType): Tensor {
  const s = checkShape('tensor.fromFloat32', shape);
  const dt = checkDType('tensor.fromFloat32', dtype);
  if (!(values instanceof Float32Array)) {
    throw new SdpaTypeError('tensor.fromFloat32', { argument: 'values', expected: 'a Float32Array', received: describeValue(values) });
  }
  if (values.length !== shapeSize(s)) {
    throw new SdpaRangeError('tensor.fromFloat32', { argument: 'values', expected: `length ${shapeSize(s)} (the product of the shape)`, received: `length ${values.length}` });
  }
  let data: TensorData;
  if (dt === 'float32') data = new Float32Array(values);
  else if (dt === 'bool') data = Uint8Array.from(values, (x) => (x !== 0 ? 1 : 0));
  else data = float32ArrayToHalfBits(values, dt);
  return new Tensor({ shape: s, dtype: dt, data });
}

/** The `tensor` factory with its static helpers. */
export interface TensorFactory {
  /** See {@link tensor}: storage-class data is shared, other values are converted once. */
  (data: TensorSource, shape: readonly number[], dtype?: DType): Tensor;
  /** Creates a tensor of `dtype` from float32 values (round to nearest even). */
  fromFloat32(values: Float32Array, shape: readonly number[], dtype: DType): Tensor;
  /**
   * Wraps a GPU buffer as a tensor without copying (WebGPU): dense, row-major from byte 0, created
   * on this library's device (`getWebGpuDevice()`) with STORAGE (and COPY_SRC to read it back) usage.
   * Available once the WebGPU backend is loaded; until then it throws a clear error.
   */
  fromGPUBuffer(buffer: GPUBuffer, shape: readonly number[], dtype: DType): Tensor;
}

type GpuBufferWrapper = (buffer: unknown, shape: number[], dtype: DType) => Tensor;
let gpuBufferWrapper: GpuBufferWrapper | undefined;

/** @internal The WebGPU part registers how to wrap its buffers. */
export function setGpuBufferWrapper(fn: GpuBufferWrapper): void {
  gpuBufferWrapper = fn;
}

/** Creates tensors; see {@link TensorFactory}. */
export const tensor: TensorFactory = Object.assign(tensorImpl, {
  fromFloat32,
  fromGPUBuffer(buffer: GPUBuffer, shape: readonly number[], dtype: DType): Tensor {
    if (!gpuBufferWrapper) {
      throw new SdpaTypeError('tensor.fromGPUBuffer', {
        argument: 'buffer',
        expected: 'a GPUBuffer of the WebGPU device this library uses (the webgpu backends are not part of this build)',
        received: describeValue(buffer),
      });
    }
    return gpuBufferWrapper(buffer, checkShape('tensor.fromGPUBuffer', shape), checkDType('tensor.fromGPUBuffer', dtype));
  },
});
