/**
 * WebGPU device lifecycle: "not probed yet" before init, adapter facts after, and device loss —
 * injected by swapping in a destroyed device — turning runs into BackendFaultError (so sdpa falls
 * back and reports it) and the webgpu parts unavailable with the reason. Its own file: the loss is
 * process-wide. Skips without a Vulkan driver (`bash scripts/install-vulkan.sh`) unless SDPA_REQUIRE_WEBGPU=1.
 */
import { describe, expect, it } from 'vitest';
import { capabilities, sdpa, tensor, withBackends, BackendFaultError, SDPBackend, SdpaDispatchError } from '../src/index.js';
import { dawnFlags, gpuAvailability, gpuContext, injectDeviceForTesting, initWebGpu } from '../src/webgpu/device.js';
import { efficientWebgpu } from '../backends/efficient/webgpu.js';
import { buildParams } from '../src/params.js';

const before = gpuAvailability();
await initWebGpu();
const avail = gpuAvailability();
const required = process.env.SDPA_REQUIRE_WEBGPU === '1';

describe('webgpu device lifecycle', () => {
  it('says the adapter has not been probed before init', () => {
    expect(before.available).toBe(false);
    expect((before as { reason: string }).reason).toMatch(/not been probed yet/);
  });

  it(required ? 'finds an adapter (SDPA_REQUIRE_WEBGPU=1)' : 'finds an adapter or says how to get one', () => {
    if (required) expect(avail.available, (avail as { reason?: string }).reason).toBe(true);
    else if (!avail.available) expect(avail.reason).toMatch(/webgpu is unavailable/);
  });

  it.skipIf(!avail.available)('capabilities() reports adapter, features and limits', async () => {
    const caps = await capabilities();
    const part = caps.backends.find((b) => b.backend === SDPBackend.EFFICIENT_ATTENTION && b.device === 'webgpu')!;
    expect(part.available).toBe(true);
    expect(part.details).toMatchObject({ state: 'ready', features: expect.arrayContaining(['shader-f16']) });
    expect((part.details.limits as Record<string, number>).maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it.skipIf(!avail.available)('a lost device faults the run, sdpa reports the fault, and the parts become unavailable', async () => {
    const ctx = gpuContext()!;
    const adapter = await ctx.keepAlive.gpu.requestAdapter();
    const dead = await adapter!.requestDevice();
    dead.destroy();
    await dead.lost;
    injectDeviceForTesting(dead);

    const q = tensor.fromFloat32(new Float32Array(2 * 6 * 8).fill(0.5), [2, 6, 8], 'float32');
    const params = buildParams('sdpa', q, q, q, { device: 'webgpu' });
    await expect(efficientWebgpu.kernels![0].run(params, { recordAllocation: () => {} })).rejects.toBeInstanceOf(BackendFaultError);

    expect(gpuAvailability().available).toBe(false);
    expect((gpuAvailability() as { reason: string }).reason).toMatch(/device was lost/);
    const err = await withBackends([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], () => sdpa(q, q, q, { device: 'webgpu' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaDispatchError);
    expect(String((err as Error).message)).toMatch(/device was lost/);
    // The CPU is untouched.
    const cpu = await sdpa(q, q, q);
    expect(cpu.device).toBe('cpu');
  });
});

describe('SDPA_WEBGPU_FLAGS', () => {
  // A regression: the list was split at every comma, so a value holding commas reached Dawn in
  // pieces ("Flags expected argument format is <key>=<value>") and WebGPU was unavailable.
  it('splits options only before a key=, so feature lists keep their commas', () => {
    expect(dawnFlags({ SDPA_WEBGPU_FLAGS: 'enable-dawn-features=allow_unsafe_apis,disable_robustness, dlopen=/x.so' })).toEqual([
      'enable-dawn-features=allow_unsafe_apis,disable_robustness',
      'dlopen=/x.so',
    ]);
    expect(dawnFlags({})).toEqual(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia']);
  });
});
