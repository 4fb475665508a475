/**
 * Issue 20 on WebGPU (lavapipe here): a disposed device tensor's buffer went back to the pool, so
 * using it read another tensor's data (bit-equal to the newer output). Now it is refused before
 * dispatch, naming the argument, and reading it throws the library's SdpaTypeError.
 */
import { describe, expect, it } from 'vitest';
import { SdpaTypeError, sdpa, tensor, type Tensor } from '../src/index.js';
import { setUpWebGpuTests } from './helpers/webgpu.js';
import { rng, randTensor } from './helpers/random.js';

const { avail, required, skipReason } = await setUpWebGpuTests();

describe('webgpu setup', () => {
  it.runIf(required)('an adapter is present (SDPA_REQUIRE_WEBGPU=1)', () => {
    expect(avail.available, skipReason).toBe(true);
  });
});

describe.skipIf(!avail.available)(`disposed webgpu tensors${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('are refused as inputs (naming the argument) and cannot be read, even after their buffer was reused', async () => {
    const r = rng(51);
    const q = randTensor(r, [1, 2, 8, 16]), k = randTensor(r, [1, 2, 8, 16]), v = randTensor(r, [1, 2, 8, 16]);
    const a = await sdpa(q, k, v, { device: 'webgpu' });
    expect(a.device).toBe('webgpu');
    a.dispose();
    // The next output of the same size takes the pooled buffer `a` gave back.
    const b = await sdpa(q, k, v, { device: 'webgpu', scale: 0.3 });
    expect(a.disposed).toBe(true);
    expect(b.disposed).toBe(false);
    let err: unknown;
    try {
      await sdpa(a, k as Tensor, v, { device: 'webgpu' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SdpaTypeError);
    expect((err as Error).message).toMatch(/^sdpa: q: expected a tensor with live storage .* got a disposed tensor/);
    await expect(a.toFloat32()).rejects.toThrow(SdpaTypeError);
    await expect(a.toFloat32()).rejects.toThrow(/^toFloat32: tensor: /);
    // b is intact and still usable as an input.
    const bv = await b.toFloat32();
    const c = await sdpa(b, tensor(bv, b.shape), tensor(bv, b.shape), { device: 'webgpu' });
    expect((await c.toFloat32()).every(Number.isFinite)).toBe(true);
    b.dispose();
    c.dispose();
  });
});
