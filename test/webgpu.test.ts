/**
 * WebGPU-specific behaviour: FLASH (webgpu) on the conformance cases, GPU-resident tensors
 * (fromGPUBuffer, results staying on the GPU), dropout equal to the CPU's, the MATH buffer-limit
 * refusal, and the pipeline cache. Without a Vulkan driver these tests skip with the reason
 * (`bash scripts/install-vulkan.sh` installs lavapipe); SDPA_REQUIRE_WEBGPU=1 turns the skip into a failure.
 */
/// <reference types="@webgpu/types" />
import { describe, expect, it } from 'vitest';
import { explainDispatch, sdpa, tensor, withBackends, SDPBackend, SdpaRangeError, SdpaTypeError, type Tensor } from '../src/index.js';
import { flashWebgpu } from '../backends/flash/webgpu.js';
import { gpuContext } from '../src/webgpu/device.js';
import { getWebGpuDevice } from '../src/webgpu/get-device.js';
import { GpuStorage } from '../src/webgpu/buffers.js';
import { pipelineCompileCount } from '../src/webgpu/programs.js';
import { loadCases } from './helpers/cases.js';
import { compare } from './helpers/compare.js';
import { setUpWebGpuTests } from './helpers/webgpu.js';

const { avail, required, skipReason } = await setUpWebGpuTests();

let seed = 99;
const rnd = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const randT = (shape: number[], dtype: 'float32' | 'float16' | 'bfloat16' = 'float32'): Tensor =>
  tensor.fromFloat32(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rnd), shape, dtype);

async function maxDiff(a: Tensor, b: Tensor): Promise<number> {
  const x = await a.toFloat32();
  const y = await b.toFloat32();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

describe('webgpu availability', () => {
  it(required ? 'a WebGPU adapter is present (SDPA_REQUIRE_WEBGPU=1)' : 'reports whether a WebGPU adapter is present', () => {
    if (required) expect(avail.available, skipReason).toBe(true);
    else if (!avail.available) expect(avail.reason.length).toBeGreaterThan(10);
  });
});

describe.skipIf(!avail.available)(`webgpu${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  describe('conformance on FLASH_ATTENTION (webgpu)', () => {
    for (const c of loadCases().filter((x) => !x.error)) {
      const opts = { ...c.opts, device: 'webgpu' as const };
      const cand = avail.available ? explainDispatch(c.q, c.k, c.v, opts).candidates.find((x) => x.backend === SDPBackend.FLASH_ATTENTION) : undefined;
      if (!cand?.eligible) continue;
      it(c.name, async () => {
        const out = await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(c.q, c.k, c.v, opts));
        const r = compare(await out.toFloat32(), c.expected!, flashWebgpu.tolerance[c.q.dtype as 'float16']);
        expect(r.ok, r.message).toBe(true);
      });
    }
    it('runs f16 and bf16 (causal, GQA) close to the CPU reference', async () => {
      for (const dtype of ['float16', 'bfloat16'] as const) {
        const q = randT([1, 4, 40, 16], dtype), k = randT([1, 2, 56, 16], dtype), v = randT([1, 2, 56, 24], dtype);
        const opts = { isCausal: true, enableGqa: true };
        const ref = await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, opts));
        const out = await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, k, v, { ...opts, device: 'webgpu' }));
        expect(out.dtype).toBe(dtype);
        expect(await maxDiff(out, ref)).toBeLessThan(dtype === 'float16' ? 4e-3 : 1.6e-2);
      }
    });
    it('refuses dense masks with a reason', () => {
      const q = randT([1, 8, 16], 'float16');
      const mask = tensor(new Uint8Array(64).fill(1), [8, 8], 'bool');
      const cand = explainDispatch(q, q, q, { attnMask: mask, device: 'webgpu' }).candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!;
      expect(cand.eligible).toBe(false);
      expect(cand.reasons.join(' ')).toMatch(/flash \(webgpu\) does not take a bool attnMask/);
    });
  });

  describe('GPU-resident tensors', () => {
    it('results stay on the GPU until toFloat32()', async () => {
      const q = randT([2, 3, 12, 8]);
      const out = await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, q, q, { device: 'webgpu' }));
      expect(out.device).toBe('webgpu');
      expect(out.data).toBeUndefined();
      expect(out.storage).toBeInstanceOf(GpuStorage);
      const ref = await withBackends([SDPBackend.MATH], () => sdpa(q, q, q));
      expect(await maxDiff(out, ref)).toBeLessThan(1e-5);
      out.dispose();
      await expect(out.toFloat32()).rejects.toThrow(/disposed/);
    });

    it('tensor.fromGPUBuffer wraps our buffers and sdpa reads them in place', async () => {
      const device = await getWebGpuDevice();
      const shape = [1, 2, 10, 8];
      const host = randT(shape);
      const buf = device.createBuffer({ size: host.size * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
      device.queue.writeBuffer(buf, 0, host.data as Float32Array<ArrayBuffer>);
      const q = tensor.fromGPUBuffer(buf, shape, 'float32');
      expect(q.device).toBe('webgpu');
      expect(Array.from(await q.toFloat32())).toEqual(Array.from(host.data as Float32Array));
      // Device-resident inputs fix the call's device; the output is a new GPU tensor.
      const out = await withBackends([SDPBackend.MATH], () => sdpa(q, q, q, { isCausal: true }));
      expect(out.device).toBe('webgpu');
      const ref = await withBackends([SDPBackend.MATH], () => sdpa(host, host, host, { isCausal: true }));
      expect(await maxDiff(out, ref)).toBeLessThan(1e-5);
      q.dispose(); // a wrapped buffer stays the caller's
      expect(buf.size).toBe(host.size * 4);
      buf.destroy();
    });

    it('tensor.fromGPUBuffer refuses what it cannot use, naming the argument', async () => {
      const device = await getWebGpuDevice();
      expect(() => tensor.fromGPUBuffer({}, [2], 'float32')).toThrow(SdpaTypeError);
      expect(() => tensor.fromGPUBuffer({}, [2], 'float32')).toThrow(/buffer: expected a GPUBuffer/);
      const noStorage = device.createBuffer({ size: 64, usage: GPUBufferUsage.COPY_DST });
      expect(() => tensor.fromGPUBuffer(noStorage, [4], 'float32')).toThrow(/STORAGE usage/);
      const small = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
      expect(() => tensor.fromGPUBuffer(small, [8], 'float32')).toThrow(SdpaRangeError);
      expect(() => tensor.fromGPUBuffer(small, [8], 'float32')).toThrow(/at least 32 bytes/);
      const adapter = await gpuContext()!.keepAlive.gpu.requestAdapter();
      const other = await adapter!.requestDevice();
      const foreign = other.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE });
      expect(() => tensor.fromGPUBuffer(foreign, [4], 'float32')).toThrow(/another device/);
      for (const b of [noStorage, small, foreign]) b.destroy();
      other.destroy();
    });
  });

  describe('dropout', () => {
    it('drops the same elements as the CPU (EFFICIENT, MATH, FLASH)', async () => {
      const opts = { dropoutP: 0.3, seed: 1234 };
      const q = randT([2, 2, 24, 16]), k = randT([2, 2, 40, 16]), v = randT([2, 2, 40, 16]);
      const ref = await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, v, opts));
      for (const b of [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]) {
        const out = await withBackends([b], () => sdpa(q, k, v, { ...opts, device: 'webgpu' }));
        expect(await maxDiff(out, ref), b).toBeLessThan(1e-5);
      }
      const [qh, kh, vh] = [q, k, v].map((t) => tensor.fromFloat32(t.data as Float32Array, [...t.shape], 'float16'));
      const refH = await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(qh, kh, vh, opts));
      const outH = await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(qh, kh, vh, { ...opts, device: 'webgpu' }));
      expect(await maxDiff(outH, refH)).toBeLessThan(4e-3);
    });
  });

  describe('limits and caching', () => {
    it('MATH (webgpu) is refused when its score buffer exceeds the binding limit, with the sizes', () => {
      const lim = gpuContext()!.limits.maxStorageBufferBindingSize;
      const s = Math.ceil(Math.sqrt(lim / 4)) + 64; // S·L·4 bytes just past the limit
      const q = tensor(new Float32Array(s * 4), [1, s, 4]);
      const cand = explainDispatch(q, q, q, { device: 'webgpu' }).candidates.find((c) => c.backend === SDPBackend.MATH)!;
      expect(cand.eligible).toBe(false);
      expect(cand.failed).toContain('checkScoreBufferFits');
      expect(cand.reasons.join(' ')).toMatch(/math \(webgpu\) materializes the batch·Hq·S·L f32 score buffer: .* > the adapter's maxStorageBufferBindingSize/);
    });

    it('compiles each pipeline once: new sizes reuse it', async () => {
      const run = (s: number, l: number) => {
        const q = randT([1, 2, s, 16]), k = randT([1, 2, l, 16]);
        return withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, k, { device: 'webgpu', isCausal: true }));
      };
      await run(8, 8);
      const before = pipelineCompileCount();
      for (const [s, l] of [[33, 17], [5, 70], [64, 64]]) (await run(s, l)).dispose();
      expect(pipelineCompileCount()).toBe(before);
    });

    it('broadcast masks are read in place (stride 0) and match the CPU', async () => {
      const q = randT([2, 3, 9, 8]), k = randT([2, 3, 13, 8]);
      const mask = tensor.fromFloat32(Float32Array.from({ length: 13 }, (_, j) => (j % 3 === 0 ? -Infinity : j * 0.1)), [1, 1, 1, 13], 'float32');
      const ref = await withBackends([SDPBackend.MATH], () => sdpa(q, k, k, { attnMask: mask }));
      for (const b of [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]) {
        const out = await withBackends([b], () => sdpa(q, k, k, { attnMask: mask, device: 'webgpu' }));
        expect(await maxDiff(out, ref), b).toBeLessThan(1e-5);
      }
    });
  });
});
