/**
 * Runtime machinery of the webgpu parts, on any adapter (lavapipe in CI):
 * - the per-device pool of free GPU buffers (src/webgpu/buffers.ts): call temporaries and disposed
 *   outputs are reused by exact size, bounded by SDPA_WEBGPU_POOL_MB and a buffer count, off at 0;
 *   describe() counts pooled buffers apart from those in use;
 * - per-pass GPU timestamps (SDPA_WEBGPU_TIMESTAMPS=1, lastPassTimes) for benchmarks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sdpa, tensor, withBackends, SDPBackend } from '../src/index.js';
import { giveBackStorage, pooled, takeStorage, takeUniform } from '../src/webgpu/buffers.js';
import { describeGpu, gpuContext } from '../src/webgpu/device.js';
import { getWebGpuDevice } from '../src/webgpu/get-device.js';
import { lastPassTimes } from '../src/webgpu/attention.js';
import { setUpWebGpuTests } from './helpers/webgpu.js';

const { avail, skipReason } = await setUpWebGpuTests();
const savedLimit = process.env.SDPA_WEBGPU_POOL_MB;

afterEach(() => {
  if (savedLimit === undefined) delete process.env.SDPA_WEBGPU_POOL_MB;
  else process.env.SDPA_WEBGPU_POOL_MB = savedLimit;
});

describe.skipIf(!avail.available)(`webgpu buffer pool${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('hands a given-back buffer to the next request of the same size, and a new one for another size', async () => {
    const device = await getWebGpuDevice();
    const a = takeStorage(device, 4096 + 12, 'test-a');
    const before = pooled(device);
    giveBackStorage(device, a);
    expect(pooled(device)).toEqual({ bytes: before.bytes + a.size, buffers: before.buffers + 1 });
    expect(takeStorage(device, 4096 + 12, 'test-b')).toBe(a);
    const other = takeStorage(device, 4096 + 16, 'test-c');
    expect(other).not.toBe(a);
    giveBackStorage(device, a);
    giveBackStorage(device, other);
  });

  it('reuses uniform buffers by size, apart from storage buffers of the same size', async () => {
    const device = await getWebGpuDevice();
    const u = takeUniform(device, new Uint32Array([1, 2, 3, 4]).buffer);
    expect(u.usage & GPUBufferUsage.UNIFORM).toBeTruthy();
    giveBackStorage(device, u);
    const st = takeStorage(device, 16, 'test-same-size');
    expect(st).not.toBe(u);
    expect(takeUniform(device, new Uint32Array([5, 6, 7, 8]).buffer)).toBe(u);
    // A ragged tail is padded to whole words for the queue write.
    giveBackStorage(device, u);
    expect(takeUniform(device, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]).buffer)).toBe(u);
    giveBackStorage(device, u);
    giveBackStorage(device, st);
  });

  it('a uniform block that a free buffer already holds is not written again (repeated calls of one shape write no uniform)', async () => {
    const device = await getWebGpuDevice();
    const u = takeUniform(device, new Uint32Array([9, 8, 7, 6]).buffer);
    giveBackStorage(device, u);
    const write = device.queue.writeBuffer;
    let writes = 0;
    device.queue.writeBuffer = ((...args: Parameters<GPUQueue['writeBuffer']>) => {
      writes++;
      return write.apply(device.queue, args);
    }) as GPUQueue['writeBuffer'];
    try {
      expect(takeUniform(device, new Uint32Array([9, 8, 7, 6]).buffer)).toBe(u);
      expect(writes).toBe(0);
      giveBackStorage(device, u);
      // Other contents: a free buffer of the size is rewritten.
      const w = takeUniform(device, new Uint32Array([1, 1, 1, 1]).buffer);
      expect(writes).toBe(1);
      giveBackStorage(device, w);
    } finally {
      device.queue.writeBuffer = write;
    }
  });

  it('calls of alternating shapes each bind their own uniform block (results as when run alone)', async () => {
    const mk = (s: number) => tensor.fromFloat32(Float32Array.from({ length: 2 * s * 8 }, (_, i) => Math.sin(i * 0.37 + s)), [1, 2, s, 8], 'float32');
    const a = mk(16), b = mk(24);
    const run = async (x: ReturnType<typeof mk>) => {
      const out = await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(x, x, x, { device: 'webgpu' }));
      const v = await out.toFloat32();
      out.dispose();
      return v;
    };
    const ra = await run(a), rb = await run(b);
    for (let i = 0; i < 3; i++) {
      expect(await run(a)).toEqual(ra);
      expect(await run(b)).toEqual(rb);
    }
  });

  it('destroys instead of pooling when SDPA_WEBGPU_POOL_MB=0, or past the byte limit', async () => {
    const device = await getWebGpuDevice();
    process.env.SDPA_WEBGPU_POOL_MB = '0';
    const before = pooled(device);
    giveBackStorage(device, takeStorage(device, 1000, 'test-off'));
    expect(pooled(device)).toEqual(before);
    process.env.SDPA_WEBGPU_POOL_MB = '1';
    const big = takeStorage(device, 2 * 2 ** 20, 'test-big');
    giveBackStorage(device, big);
    expect(pooled(device).bytes).toBeLessThanOrEqual(2 ** 20);
  });

  it('keeps at most 32 free buffers, evicting the oldest', async () => {
    const device = await getWebGpuDevice();
    const bufs = Array.from({ length: 40 }, (_, i) => takeStorage(device, 256 + 4 * i, 'test-many'));
    for (const b of bufs) giveBackStorage(device, b);
    expect(pooled(device).buffers).toBe(32);
    // The oldest went: a request of the first size gets a new buffer.
    const first = takeStorage(device, 256, 'test-first');
    expect(bufs).not.toContain(first);
    giveBackStorage(device, first);
  });

  it('reuses a disposed output for the next call of the same shape; liveResources counts only buffers in use', async () => {
    const q = tensor.fromFloat32(Float32Array.from({ length: 2 * 16 * 8 }, (_, i) => Math.sin(i)), [1, 2, 16, 8], 'float32');
    const run = () => withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, q, q, { device: 'webgpu' }));
    (await run()).dispose();
    const settled = describeGpu() as { liveResources: number; pooledBuffers: number };
    for (let i = 0; i < 5; i++) (await run()).dispose();
    const after = describeGpu() as { liveResources: number; pooledBuffers: number };
    expect(after.liveResources).toBe(settled.liveResources);
    expect(after.pooledBuffers).toBe(settled.pooledBuffers);
    expect(after.pooledBuffers).toBeGreaterThan(0);
  });
});

describe.skipIf(!avail.available)(`webgpu pass timestamps${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('records each pass of the last call with SDPA_WEBGPU_TIMESTAMPS=1, and nothing new without it', async () => {
    // Without the feature the times stay empty by design; say so instead of passing vacuously.
    if (!gpuContext()?.features.has('timestamp-query')) {
      expect(lastPassTimes()).toEqual([]);
      return;
    }
    const q = tensor.fromFloat32(Float32Array.from({ length: 16 * 16 }, (_, i) => Math.cos(i)), [1, 1, 16, 16], 'float16');
    const saved = process.env.SDPA_WEBGPU_TIMESTAMPS;
    try {
      process.env.SDPA_WEBGPU_TIMESTAMPS = '1';
      (await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, q, q, { device: 'webgpu' }))).dispose();
      const times = lastPassTimes();
      // S = 16: the decode kernel and its merge pass, which writes the f16 output itself (no pack pass).
      expect(times.map((t) => t.shader)).toEqual(['flash-decode.wgsl', 'flash-decode-merge.wgsl']);
      for (const t of times) expect(t.ms).toBeGreaterThanOrEqual(0);
      delete process.env.SDPA_WEBGPU_TIMESTAMPS;
      (await withBackends([SDPBackend.MATH], () => sdpa(q, q, q, { device: 'webgpu' }))).dispose();
      expect(lastPassTimes()).toBe(times);
    } finally {
      if (saved === undefined) delete process.env.SDPA_WEBGPU_TIMESTAMPS;
      else process.env.SDPA_WEBGPU_TIMESTAMPS = saved;
    }
  });
});
