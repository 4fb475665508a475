/**
 * A withBackends kernel pin as the program's first call into the library: nothing (sdpa,
 * capabilities, explainDispatch) registered the built-in backends or probed the WebAssembly engine
 * before it. Two bugs this file holds fixed (each test failed before its fix):
 * - withBackends validated the pin against an empty registry and threw "expected a backend with a
 *   cpu part" (the built-ins were registered by the first sdpa() call only);
 * - a pin to a wasm kernel found the engine unprobed and the dispatch stopped there ("the
 *   WebAssembly engine has not been probed yet"): the lazy probe only ran when the part itself,
 *   not one of its kernels, waited on it.
 * The file is its own module graph (vitest isolates files), so these run before any other call.
 */
import { describe, expect, it } from 'vitest';
import { SDPBackend, lastDispatch, sdpa, tensor, withBackends } from '../src/index.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';
import { randTensor, rng } from './helpers/random.js';

describe('withBackends kernel pins before any other call', () => {
  it('runs the pinned wasm kernel (the engine is probed on the way)', async () => {
    const r = rng(5);
    const q = randTensor(r, [1, 2, 5, 8]), k = randTensor(r, [1, 2, 7, 8]), v = randTensor(r, [1, 2, 7, 8]);
    const out = await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'cpu', kernel: 'wasm_simd128' }], () => sdpa(q, k, v));
    expect(lastDispatch()?.kernel).toBe('wasm_simd128');
    const ref = mathReference(buildParams('sdpa', q, k, v, undefined));
    const got = out.data as Float32Array;
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - ref[i])).toBeLessThan(1e-5);
  });

  it('still names a kernel the part does not have', async () => {
    const q = tensor(new Float32Array(16), [1, 1, 2, 8]);
    await expect(withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'cpu', kernel: 'no_such_kernel' }], () => sdpa(q, q, q))).rejects.toThrow(/backends\[0\]\.kernel/);
  });
});
