/// <reference types="@webgpu/types" />
/**
 * GPU buffers behind tensors: {@link GpuStorage} (a tensor's `storage` on webgpu), uploads of CPU
 * data, and `tensor.fromGPUBuffer`, which wraps a caller's buffer after checking that it belongs to
 * our device, can be bound as storage and is large enough.
 */
import { bytesPerElement, type DType } from '../dtype.js';
import { SdpaRangeError, SdpaTypeError, describeValue } from '../errors.js';
import { Tensor, setGpuBufferWrapper, shapeSize, type DeviceStorage, type TensorData } from '../tensor.js';
import { gpuContext } from './device.js';
import { envVar } from '../env.js';

/** Bytes rounded up to a multiple of 4 (WebGPU copy and binding granularity). */
export const align4 = (n: number): number => Math.ceil(n / 4) * 4;

/** Buffers created on each device, so fromGPUBuffer can tell ours from a foreign device's. */
const knownBuffers = new WeakMap<GPUDevice, WeakSet<GPUBuffer>>();

/** Buffers this library created and has not destroyed yet (soak tests watch it stay flat). */
let liveBuffers = 0;

/** Count of buffers the library created that are not destroyed yet. */
export function liveBufferCount(): number {
  return liveBuffers;
}

/** Creates a buffer on `device`, remembers it as ours and counts it until `destroy()`. */
export function createBuffer(device: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
  const b = device.createBuffer(desc);
  rememberBuffer(device, b);
  liveBuffers++;
  const destroy = b.destroy.bind(b);
  let destroyed = false;
  b.destroy = () => {
    if (!destroyed) liveBuffers--;
    destroyed = true;
    destroy();
  };
  return b;
}

/** Usage of pooled storage buffers: call temporaries, outputs and uploads. */
const POOL_USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
/** Usage of pooled uniform buffers (written with queue.writeBuffer). */
const UNIFORM_USAGE = () => GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;

/** Pool key: usage and byte size. */
const keyOf = (usage: number, size: number): string => `${usage}:${size}`;

/** What each pooled uniform buffer holds (its bytes as text), so a call with the same block skips the write. */
const uniformContent = new WeakMap<GPUBuffer, string>();
/** The pool key of a free buffer: uniforms are keyed by their content too. */
const keyOfBuffer = (b: GPUBuffer): string => `${keyOf(b.usage, b.size)}${uniformContent.has(b) ? `#${uniformContent.get(b)}` : ''}`;
/** A uniform block's bytes as a key. */
const contentKey = (data: ArrayBuffer): string => new Uint8Array(data).join(',');

interface Pool {
  /** Free buffers by usage and byte size, oldest first. */
  readonly free: Map<string, GPUBuffer[]>;
  /** The free buffers in the order they were given back (for evicting the oldest). */
  readonly order: GPUBuffer[];
  bytes: number;
}
const pools = new WeakMap<GPUDevice, Pool>();
/** At most this many free buffers per device (calls of many different sizes would pile up small ones). */
const POOL_MAX_BUFFERS = 32;

/**
 * Bytes the pool may hold per device: `SDPA_WEBGPU_POOL_MB` (default 512; 0 turns pooling off).
 * Why a pool: on an H200 a fresh 100 MB storage buffer per call cost about as much as the
 * attention kernel itself at S=4096 (docs/performance-webgpu.md), and a reused buffer also skips
 * Dawn's lazy zero-fill.
 */
function poolLimit(): number {
  const text = envVar('SDPA_WEBGPU_POOL_MB');
  const mb = text === undefined || text === '' ? 512 : Number(text);
  return Number.isFinite(mb) && mb > 0 ? mb * 2 ** 20 : 0;
}

function takePooled(device: GPUDevice, size: number, usage: number, key = keyOf(usage, size)): GPUBuffer | undefined {
  const pool = pools.get(device);
  const b = pool?.free.get(key)?.pop();
  if (pool && b) {
    pool.bytes -= size;
    pool.order.splice(pool.order.indexOf(b), 1);
  }
  return b;
}

/** A STORAGE | COPY_SRC | COPY_DST buffer of exactly `size` bytes: a pooled one when free, else new. */
export function takeStorage(device: GPUDevice, size: number, label: string): GPUBuffer {
  return takePooled(device, size, POOL_USAGE()) ?? createBuffer(device, { size, usage: POOL_USAGE(), label });
}

/**
 * A UNIFORM buffer holding `data` (its size rounded up to 4 bytes): a pooled one that already holds
 * it (repeated calls of one shape write nothing), else a pooled one rewritten through the queue
 * (ordered before the call's submit), else a new one mapped at creation. Give it back with
 * {@link giveBackStorage} when the call is done.
 */
export function takeUniform(device: GPUDevice, data: ArrayBuffer): GPUBuffer {
  const size = align4(data.byteLength);
  const content = contentKey(data);
  // A free buffer that already holds this block (the same sizes and options as an earlier call):
  // no write at all. Else any free uniform of this size, rewritten.
  const same = takePooled(device, size, UNIFORM_USAGE(), `${keyOf(UNIFORM_USAGE(), size)}#${content}`);
  if (same) return same;
  const pool = pools.get(device);
  const other = pool?.order.find((b) => b.usage === UNIFORM_USAGE() && b.size === size);
  const pooledBuf = other ? takePooled(device, size, UNIFORM_USAGE(), keyOfBuffer(other)) : undefined;
  if (pooledBuf) {
    // writeBuffer takes whole words: pad a ragged tail with zeros.
    const words = data.byteLength % 4 === 0 ? data : (() => { const w = new Uint8Array(size); w.set(new Uint8Array(data)); return w.buffer; })();
    device.queue.writeBuffer(pooledBuf, 0, words, 0, size);
    uniformContent.set(pooledBuf, content);
    return pooledBuf;
  }
  const b = createBuffer(device, { size, usage: UNIFORM_USAGE(), mappedAtCreation: true, label: 'uniform' });
  new Uint8Array(b.getMappedRange()).set(new Uint8Array(data));
  b.unmap();
  uniformContent.set(b, content);
  return b;
}

/**
 * Gives `b` back for reuse by a later call on `device` (its contents are overwritten before any
 * read: outputs and temporaries are written whole). Buffers of other usages, or over the pool's
 * limit, are destroyed; the oldest free buffers go first when the pool is full.
 */
export function giveBackStorage(device: GPUDevice, b: GPUBuffer): void {
  const limit = poolLimit();
  if ((b.usage !== POOL_USAGE() && b.usage !== UNIFORM_USAGE()) || b.size > limit) {
    b.destroy();
    return;
  }
  let pool = pools.get(device);
  if (!pool) pools.set(device, (pool = { free: new Map(), order: [], bytes: 0 }));
  const key = keyOfBuffer(b);
  let list = pool.free.get(key);
  if (!list) pool.free.set(key, (list = []));
  list.push(b);
  pool.order.push(b);
  pool.bytes += b.size;
  while (pool.bytes > limit || pool.order.length > POOL_MAX_BUFFERS) {
    const old = pool.order.shift()!;
    const l = pool.free.get(keyOfBuffer(old))!;
    l.splice(l.indexOf(old), 1);
    pool.bytes -= old.size;
    old.destroy();
  }
}

/** Bytes and buffers held free in the pool of `device` (diagnostics: describe()). */
export function pooled(device: GPUDevice): { bytes: number; buffers: number } {
  const pool = pools.get(device);
  return { bytes: pool?.bytes ?? 0, buffers: pool?.order.length ?? 0 };
}

/** Destroys every free buffer of `device`'s pool (`releaseGpuMemory`, device loss). */
export function drainPool(device: GPUDevice): void {
  const pool = pools.get(device);
  if (!pool) return;
  for (const b of pool.order) b.destroy();
  pools.delete(device);
}

function rememberBuffer(device: GPUDevice, b: GPUBuffer): void {
  let s = knownBuffers.get(device);
  if (!s) knownBuffers.set(device, (s = new WeakSet()));
  s.add(b);
}

/**
 * Makes every buffer `device.createBuffer` returns known to {@link fromGPUBuffer}: callers create
 * buffers on the device from `getWebGpuDevice()`, and WebGPU has no way to ask a buffer its device.
 */
export function trackDeviceBuffers(device: GPUDevice): void {
  const orig = device.createBuffer.bind(device);
  device.createBuffer = (desc: GPUBufferDescriptor) => {
    const b = orig(desc);
    rememberBuffer(device, b);
    return b;
  };
}

/** Typed array class of a dtype's raw elements. */
function rawArray(dtype: DType, bytes: ArrayBuffer, n: number): TensorData {
  if (dtype === 'float32') return new Float32Array(bytes, 0, n);
  if (dtype === 'bool') return new Uint8Array(bytes, 0, n);
  return new Uint16Array(bytes, 0, n);
}

/**
 * A tensor's storage in a GPU buffer: dense, row-major, from byte 0. Reads copy to a staging
 * buffer; `destroy()` frees the buffer when we own it (a wrapped caller buffer stays the caller's).
 */
export class GpuStorage implements DeviceStorage {
  readonly device = 'webgpu' as const;
  readonly byteLength: number;
  private released = false;
  constructor(
    readonly gpuDevice: GPUDevice,
    readonly buffer: GPUBuffer,
    readonly dtype: DType,
    readonly elements: number,
    readonly owned: boolean,
  ) {
    this.byteLength = elements * bytesPerElement(dtype);
  }

  /** True once destroyed: its buffer went back to the pool, where another tensor may now own it. */
  get destroyed(): boolean {
    return this.released;
  }

  /** Copies the elements back to the CPU in the dtype's raw layout. */
  async read(): Promise<TensorData> {
    if (this.released) throw new SdpaTypeError('toFloat32', { argument: 'tensor', expected: 'a tensor that was not disposed', received: 'a disposed webgpu tensor (its buffer went back to the pool)' });
    const size = align4(this.byteLength);
    const staging = this.gpuDevice.createBuffer({ size: Math.max(size, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const enc = this.gpuDevice.createCommandEncoder();
      enc.copyBufferToBuffer(this.buffer, 0, staging, 0, size);
      this.gpuDevice.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const copy = staging.getMappedRange(0, size).slice(0);
      staging.unmap();
      return rawArray(this.dtype, copy, this.elements);
    } finally {
      staging.destroy();
    }
  }

  destroy(): void {
    if (this.released) return;
    this.released = true;
    if (this.owned) giveBackStorage(this.gpuDevice, this.buffer);
  }
}

/** The GpuStorage of a tensor when it lives on our webgpu device. */
export function gpuStorageOf(t: Tensor): GpuStorage | undefined {
  return t.storage instanceof GpuStorage ? t.storage : undefined;
}

/** Uploads bytes to a new STORAGE buffer (padded to 4 bytes); the caller destroys it. */
export function uploadBytes(device: GPUDevice, data: ArrayBufferView, label: string): GPUBuffer {
  const size = Math.max(4, align4(data.byteLength));
  const buf = createBuffer(device, { size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, mappedAtCreation: true, label });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buf.unmap();
  return buf;
}

function isGpuBuffer(x: unknown): x is GPUBuffer {
  if (typeof x !== 'object' || x === null) return false;
  const b = x as Partial<GPUBuffer>;
  return typeof b.mapAsync === 'function' && typeof b.size === 'number' && typeof b.usage === 'number' && typeof b.destroy === 'function';
}

/**
 * `tensor.fromGPUBuffer`: wraps `buffer` (dense, row-major, from byte 0) without copying.
 * The buffer must come from this library's device (see `getWebGpuDevice()`), have STORAGE usage
 * (and COPY_SRC to be read back with toFloat32) and hold at least the shape's bytes.
 */
export function wrapGpuBuffer(buffer: unknown, shape: number[], dtype: DType): Tensor {
  const fn = 'tensor.fromGPUBuffer';
  const ctx = gpuContext();
  if (!isGpuBuffer(buffer)) throw new SdpaTypeError(fn, { argument: 'buffer', expected: 'a GPUBuffer', received: describeValue(buffer) });
  if (!ctx) {
    throw new SdpaTypeError(fn, {
      argument: 'buffer',
      expected: "a GPUBuffer of this library's WebGPU device (await getWebGpuDevice() or capabilities() first)",
      received: 'a GPUBuffer, but the WebGPU device is not initialised or was lost',
    });
  }
  if (!knownBuffers.get(ctx.device)?.has(buffer)) {
    throw new SdpaTypeError(fn, { argument: 'buffer', expected: "a GPUBuffer created on this library's device (getWebGpuDevice())", received: 'a GPUBuffer of another device' });
  }
  if ((buffer.usage & GPUBufferUsage.STORAGE) === 0) {
    throw new SdpaTypeError(fn, { argument: 'buffer', expected: 'a GPUBuffer with STORAGE usage (GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC)', received: `usage 0x${buffer.usage.toString(16)}` });
  }
  const n = shapeSize(shape);
  const need = n * bytesPerElement(dtype);
  if (buffer.size < need) {
    throw new SdpaRangeError(fn, { argument: 'buffer', expected: `at least ${need} bytes for ${dtype} [${shape.join(', ')}]`, received: `a GPUBuffer of ${buffer.size} bytes` });
  }
  return new Tensor({ shape, dtype, storage: new GpuStorage(ctx.device, buffer, dtype, n, false) });
}

// Registering costs nothing: the wrapper only touches WebGPU when called.
setGpuBufferWrapper(wrapGpuBuffer);
