/**
 * Cancelling with an AbortSignal (issue 19): queued work never starts; running TypeScript work stops
 * at its next block boundary, native work between thread-pool jobs, GPU work before its submit;
 * the promise rejects with SdpaAbortError (name AbortError) and nothing the caller sees is
 * written — KV caches are left exactly as they were.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  KvCache,
  MultiHeadAttention,
  SDPBackend,
  SdpaAbortError,
  SdpaTypeError,
  capabilities,
  flashAttnFunc,
  flashAttnWithKvcache,
  lastDispatch,
  memoryEfficientAttention,
  registerBackend,
  sdpa,
  sdpaSplitKv,
  tensor,
  unregisterBackend,
  withBackends,
} from '../src/index.js';
import { makeYielder } from '../src/cpu/cooperate.js';
import { FIRST_SLICE_ROWS, nextSliceRows } from '../backends/efficient/cpu.js';
import { loadNative } from '../backends/flash/native.js';
import { randTensor, rng } from './helpers/random.js';
import { referenceTensor, testBackend } from './helpers/test-backend.js';
import { setUpWebGpuTests } from './helpers/webgpu.js';

const caps = await capabilities();
const { avail: gpu } = await setUpWebGpuTests();
const native = loadNative();
const r = rng(404);
const small = randTensor(r, [1, 2, 8, 16]);

/** Rejects with what `p` rejects with (or fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the call to reject');
    },
    (e: unknown) => e,
  );
}

describe('abort before anything runs', () => {
  afterEach(() => void unregisterBackend('COUNTED'));

  it('a signal aborted before the call rejects with AbortError and no kernel starts', async () => {
    const counted = testBackend('COUNTED', 500, [{ name: 'counted' }]);
    registerBackend(counted.descriptor);
    const ac = new AbortController();
    ac.abort();
    const err = await rejection(sdpa(small, small, small, { signal: ac.signal }));
    expect(err).toBeInstanceOf(SdpaAbortError);
    const e = err as SdpaAbortError;
    expect(e.name).toBe('AbortError');
    expect(e.stage).toBe('queued');
    expect(e.cause).toBe(ac.signal.reason);
    expect(e.message).toBe('sdpa: aborted before any kernel started');
    expect(counted.runs.size).toBe(0);
    // The same for the advanced entry points.
    const bshd = randTensor(r, [1, 8, 2, 16]);
    for (const call of [
      () => flashAttnFunc(bshd, bshd, bshd, { signal: ac.signal }),
      () => flashAttnFunc(bshd, bshd, bshd, { signal: ac.signal, returnLse: true }),
      () => memoryEfficientAttention(bshd, bshd, bshd, { signal: ac.signal }),
      () => sdpaSplitKv(small, small, small, { signal: ac.signal, workers: 0 }),
    ]) {
      expect(((await rejection(call())) as Error).name).toBe('AbortError');
    }
    expect(counted.runs.size).toBe(0);
  });

  it('validates the signal option', async () => {
    await expect(sdpa(small, small, small, { signal: {} as never })).rejects.toThrow(/opts\.signal: expected an AbortSignal/);
    await expect(flashAttnFunc(randTensor(r, [1, 4, 2, 8]), randTensor(r, [1, 4, 2, 8]), randTensor(r, [1, 4, 2, 8]), { signal: 'stop' as never })).rejects.toThrow(SdpaTypeError);
  });
});

describe('abort while running', () => {
  afterEach(() => void unregisterBackend('BLOCKY'));

  it('a TypeScript kernel on the library’s yielder stops within one block: no block starts after the abort', async () => {
    // 40 blocks of ~10 ms each, yielding the way MATH and EFFICIENT do (src/cpu/cooperate.ts).
    let blocks = 0;
    let afterAbort = 0;
    let aborted = false;
    const blocky = testBackend('BLOCKY', 500, [
      {
        name: 'blocks',
        run: async (p, ctx) => {
          const yieldNow = makeYielder(ctx.signal);
          for (let b = 0; b < 40; b++) {
            if (aborted) afterAbort++;
            const until = performance.now() + 10;
            while (performance.now() < until);
            blocks++;
            await yieldNow();
          }
          return referenceTensor(p);
        },
      },
    ]);
    registerBackend(blocky.descriptor);
    const ac = new AbortController();
    const call = sdpa(small, small, small, { signal: ac.signal });
    setTimeout(() => {
      aborted = true;
      ac.abort();
    }, 0);
    const err = await rejection(call);
    expect(err).toBeInstanceOf(SdpaAbortError);
    expect((err as SdpaAbortError).stage).toBe('running');
    expect((err as SdpaAbortError).backend).toBe('BLOCKY');
    expect((err as SdpaAbortError).message).toBe('sdpa: aborted while BLOCKY (cpu) kernel blocks ran');
    expect(blocks).toBeGreaterThan(0);
    expect(blocks).toBeLessThan(40);
    expect(afterAbort).toBe(0);
  });

  for (const backend of [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]) {
    it(`${backend} (cpu) stops mid-call and rejects with AbortError`, async () => {
      const q = randTensor(r, [1, 8, 512, 64]); // hundreds of milliseconds of TypeScript work
      const ac = new AbortController();
      const call = withBackends([backend], () => sdpa(q, q, q, { signal: ac.signal }));
      setTimeout(() => ac.abort(new Error('user stop')), 0);
      const err = (await rejection(call)) as SdpaAbortError;
      expect(err).toBeInstanceOf(SdpaAbortError);
      expect([err.stage, err.backend]).toEqual(['running', backend]);
      expect((err.cause as Error).message).toBe('user stop');
    });
  }

  it.skipIf(!native.ok)(`FLASH_ATTENTION (cpu) stops between thread-pool jobs${native.ok ? '' : ` (skipped: ${native.ok ? '' : native.error})`}`, async () => {
    // The scalar kernel on 8 heads × 2048 queries: seconds of work in 256 jobs of 64 rows.
    const q = randTensor(r, [1, 8, 2048, 64]);
    const ac = new AbortController();
    const call = withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'cpu', kernel: 'scalar_fp32' }], () => sdpa(q, q, q, { signal: ac.signal }));
    setTimeout(() => ac.abort(), 20);
    const err = (await rejection(call)) as SdpaAbortError;
    expect(err).toBeInstanceOf(SdpaAbortError);
    expect(err.kernel).toBe('scalar_fp32');
    const m = /cancelled after (\d+) of (\d+) jobs/.exec(err.message);
    expect(m, err.message).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(Number(m![2]));
    // The pool is free again: the next call runs normally.
    await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(small, small, small));
    expect(lastDispatch()?.ran?.backend).toBe(SDPBackend.FLASH_ATTENTION);
  });

  it.skipIf(!gpu)('WebGPU work is not submitted once aborted', async () => {
    const q = randTensor(r, [1, 2, 32, 32]);
    const ac = new AbortController();
    const call = withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, q, q, { device: 'webgpu', signal: ac.signal }));
    ac.abort(); // after the kernel started building its passes (sdpa ran synchronously up to its first await)
    const err = (await rejection(call)) as SdpaAbortError;
    expect(err).toBeInstanceOf(SdpaAbortError);
    expect(err.name).toBe('AbortError');
  });

  it('ONNX Runtime honours an abort up to the session run', async () => {
    const ort = caps.backends.find((b) => b.backend === SDPBackend.ONNXRUNTIME && b.device === 'cpu');
    if (!ort?.available) return;
    const ac = new AbortController();
    const call = withBackends([SDPBackend.ONNXRUNTIME], () => sdpa(small, small, small, { signal: ac.signal }));
    ac.abort();
    expect(((await rejection(call)) as Error).name).toBe('AbortError');
  });
});

describe('caches are left untouched', () => {
  it('flashAttnWithKvcache: an abort during attention undoes the append', async () => {
    const [B, Lc, H, D] = [1, 512, 8, 64];
    const kCache = tensor(Float32Array.from({ length: B * Lc * H * D }, (_, i) => Math.sin(i)), [B, Lc, H, D]);
    const vCache = tensor(Float32Array.from({ length: B * Lc * H * D }, (_, i) => Math.cos(i)), [B, Lc, H, D]);
    const before = [Float32Array.from(kCache.data as Float32Array), Float32Array.from(vCache.data as Float32Array)];
    const qs = randTensor(r, [B, 256, H, D]);
    const kNew = randTensor(r, [B, 256, H, D]);
    const vNew = randTensor(r, [B, 256, H, D]);
    const ac = new AbortController();
    // EFFICIENT (TypeScript) so the call is long enough to be aborted while it runs.
    const call = withBackends([SDPBackend.EFFICIENT_ATTENTION], () => flashAttnWithKvcache(qs, kCache, vCache, { k: kNew, v: vNew, cacheSeqlens: 100, causal: true, signal: ac.signal }));
    setTimeout(() => ac.abort(), 0);
    const err = (await rejection(call)) as SdpaAbortError;
    expect(err).toBeInstanceOf(SdpaAbortError);
    expect(err.stage).toBe('running');
    expect(Array.from(kCache.data as Float32Array)).toEqual(Array.from(before[0]));
    expect(Array.from(vCache.data as Float32Array)).toEqual(Array.from(before[1]));
    // Aborted before it starts: nothing is written either; without an abort the rows land.
    const pre = new AbortController();
    pre.abort();
    expect(((await rejection(flashAttnWithKvcache(qs, kCache, vCache, { k: kNew, v: vNew, cacheSeqlens: 100, signal: pre.signal }))) as Error).name).toBe('AbortError');
    expect(Array.from(kCache.data as Float32Array)).toEqual(Array.from(before[0]));
    await flashAttnWithKvcache(qs, kCache, vCache, { k: kNew, v: vNew, cacheSeqlens: 100 });
    expect((kCache.data as Float32Array)[100 * H * D]).toBe((kNew.data as Float32Array)[0]);
  });

  it('MultiHeadAttention: an aborted forward leaves its KvCache as it was', async () => {
    const mha = new MultiHeadAttention({ dModel: 64, numHeads: 4 });
    const cache = new KvCache();
    await mha.forward(randTensor(r, [1, 5, 64]), { isCausal: true, kvCache: cache });
    expect(cache.length).toBe(5);
    const ac = new AbortController();
    ac.abort();
    expect(((await rejection(mha.forward(randTensor(r, [1, 3, 64]), { isCausal: true, kvCache: cache, signal: ac.signal }))) as Error).name).toBe('AbortError');
    expect(cache.length).toBe(5);
    await mha.forward(randTensor(r, [1, 3, 64]), { isCausal: true, kvCache: cache });
    expect(cache.length).toBe(8);
  });

  it('sdpaSplitKv terminates its workers', async () => {
    const q = randTensor(r, [1, 8, 512, 64]);
    const ac = new AbortController();
    const call = sdpaSplitKv(q, q, q, { workers: 2, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const err = (await rejection(call)) as SdpaAbortError;
    expect(err).toBeInstanceOf(SdpaAbortError);
    expect(err.stage).toBe('running');
  });
});

describe('makeYielder (src/cpu/cooperate.ts)', () => {
  it('yields at once when asked (MATH turns the loop once after its set-up), else only after a slice', async () => {
    const y = makeYielder();
    expect(y()).toBeUndefined(); // within the first slice
    let timerRan = false;
    setTimeout(() => (timerRan = true), 0);
    const p = y(true);
    expect(p).toBeInstanceOf(Promise);
    await p;
    expect(timerRan).toBe(true); // a macrotask turn: the timer queued before it ran first
  });
});

describe('EFFICIENT (cpu) slices (backends/efficient/cpu.ts)', () => {
  // A call used to start with full slices (BR·8 rows at S = 512) while V8 still interpreted the
  // kernel: its first stretch held the event loop for 66–102 ms. Slices now start at one row and
  // double while they take under 4 ms, up to the per-shape bound.
  it('start at one row and double while short, up to the bound', () => {
    expect(FIRST_SLICE_ROWS).toBe(1);
    const seen: number[] = [];
    let rows = FIRST_SLICE_ROWS;
    for (let i = 0; i < 12; i++) {
      seen.push(rows);
      rows = nextSliceRows(rows, 1, 256);
    }
    expect(seen.slice(0, 10)).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 256]);
  });
  it('stop growing once a slice takes 4 ms or more, and never pass the bound nor drop below 1', () => {
    expect(nextSliceRows(8, 4, 256)).toBe(8);
    expect(nextSliceRows(8, 30, 256)).toBe(8);
    expect(nextSliceRows(200, 1, 256)).toBe(256);
    expect(nextSliceRows(1, 1, 1)).toBe(1);
    expect(nextSliceRows(0, 10, 256)).toBe(1);
  });
  it('a sliced call still gives MATH’s result (rows that do not fill a block at the start)', async () => {
    const r = rng(7);
    const q = randTensor(r, [1, 2, 70, 16]), k = randTensor(r, [1, 2, 90, 16]), v = randTensor(r, [1, 2, 90, 16]);
    const got = await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, v, { device: 'cpu' }));
    const want = await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { device: 'cpu' }));
    const a = got.data as Float32Array, b = want.data as Float32Array;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
  });
});
