/**
 * The library's tensor: a shape, a dtype and storage on the CPU (a typed array) or on a GPU (a
 * buffer owned by a backend). Tensors are immutable views: q/k/v are never written by `sdpa()`.
 */
import { DType, DTYPES, halfBitsToFloat32Array, float32ArrayToHalfBits } from './dtype.js';
import { SdpaRangeError, SdpaTypeError, describeValue } from './errors.js';

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
}

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

  /** @internal Use {@link tensor}; this constructor does not validate. */
  constructor(init: {
    shape: readonly number[];
    dtype: DType;
    data?: TensorData;
    storage?: DeviceStorage;
    strides?: readonly number[];
    offset?: number;
  }) {
    this.shape = Object.freeze([...init.shape]);
    this.dtype = init.dtype;
    this.data = init.data;
    this.storage = init.storage;
    this.device = init.storage ? init.storage.device : 'cpu';
    this.strides = Object.freeze(init.strides ? [...init.strides] : contiguousStrides(init.shape));
    this.offset = init.offset ?? 0;
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
    if (this.data) return this.toFloat32Sync();
    if (!this.storage) throw new Error('tensor has neither CPU data nor device storage (disposed?)');
    const raw = await this.storage.read();
    return new Tensor({ shape: this.shape, dtype: this.dtype, data: raw, strides: this.strides, offset: this.offset }).toFloat32Sync();
  }

  /** Synchronous {@link toFloat32} for CPU tensors; throws for device-resident ones. */
  toFloat32Sync(): Float32Array {
    if (!this.data) throw new Error(`toFloat32Sync: the tensor lives on ${this.device}; use await toFloat32()`);
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

  /** Frees device storage (no-op for CPU tensors). */
  dispose(): void {
    this.storage?.destroy();
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

const DATA_CLASS: Record<DType, string> = {
  float32: 'Float32Array',
  float16: 'Uint16Array (float16 bit patterns)',
  bfloat16: 'Uint16Array (bfloat16 bit patterns)',
  bool: 'Uint8Array of 0/1',
};

function checkShape(fn: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) {
    throw new SdpaTypeError(fn, { argument: 'shape', expected: 'an array of non-negative integers', received: describeValue(shape) });
  }
  shape.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d)) {
      throw new SdpaTypeError(fn, { argument: `shape[${i}]`, expected: 'an integer', received: describeValue(d) });
    }
    if (d < 0) throw new SdpaRangeError(fn, { argument: `shape[${i}]`, expected: 'a non-negative integer', received: `${d}` });
  });
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

function inferDType(data: unknown): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint8Array) return 'bool';
  if (data instanceof Uint16Array) {
    throw new SdpaTypeError('tensor', {
      argument: 'dtype',
      expected: "'float16' or 'bfloat16' for a Uint16Array (it holds 16-bit float bit patterns)",
      received: 'undefined',
    });
  }
  throw new SdpaTypeError('tensor', { argument: 'data', expected: 'a Float32Array, Uint16Array or Uint8Array', received: describeValue(data) });
}

function checkData(fn: string, data: unknown, dtype: DType, n: number): TensorData {
  const ok =
    (dtype === 'float32' && data instanceof Float32Array) ||
    ((dtype === 'float16' || dtype === 'bfloat16') && data instanceof Uint16Array) ||
    (dtype === 'bool' && data instanceof Uint8Array);
  if (!ok) throw new SdpaTypeError(fn, { argument: 'data', expected: `a ${DATA_CLASS[dtype]} for dtype '${dtype}'`, received: describeValue(data) });
  const arr = data as TensorData;
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
 * Creates a CPU tensor over `data` (not copied: keep it unchanged while the tensor is in use).
 *
 * @param data Float32Array for float32, Uint16Array bit patterns for float16/bfloat16, Uint8Array of 0/1 for bool.
 * @param shape Dimensions; their product must equal `data.length`.
 * @param dtype Element type; inferred from `data` when omitted (a Uint16Array needs it).
 * @example
 * const q = tensor(new Float32Array(2 * 8 * 64), [1, 2, 8, 64]);
 */
function tensorImpl(data: Float32Array | Uint16Array | Uint8Array, shape: number[], dtype?: DType): Tensor {
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
function fromFloat32(values: Float32Array, shape: number[], dtype: DType): Tensor {
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
  (data: Float32Array | Uint16Array | Uint8Array, shape: number[], dtype?: DType): Tensor;
  /** Creates a tensor of `dtype` from float32 values (round to nearest even). */
  fromFloat32(values: Float32Array, shape: number[], dtype: DType): Tensor;
  /**
   * Wraps a GPU buffer as a tensor without copying (WebGPU). Available once the WebGPU backend is
   * loaded; until then it throws a clear error.
   */
  fromGPUBuffer(buffer: unknown, shape: number[], dtype: DType): Tensor;
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
  fromGPUBuffer(buffer: unknown, shape: number[], dtype: DType): Tensor {
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
