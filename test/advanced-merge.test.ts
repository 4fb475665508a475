/** LSE merge and split-KV (worker_threads): exact against the unsplit result. */
import { describe, expect, it } from 'vitest';
import { mergeAttentionStates, runAttentionWithLse, sdpa, sdpaSplitKv, StructuredBias, tensor, withBackends, SDPBackend, SdpaDispatchError, Tensor, type SdpaOptions } from '../src/index.js';
import { compare } from './helpers/compare.js';
import { randTensor, rng } from './helpers/random.js';

/** Keys/values [.., L, D] narrowed to [from, to) as a contiguous copy (the test's own split). */
function keysRange(t: Tensor, from: number, to: number): Tensor {
  const [B, H, L, D] = t.shape;
  const src = t.toFloat32Sync();
  const out = new Float32Array(B * H * (to - from) * D);
  for (let bh = 0; bh < B * H; bh++) out.set(src.subarray((bh * L + from) * D, (bh * L + to) * D), bh * (to - from) * D);
  return tensor(out, [B, H, to - from, D]);
}

describe('mergeAttentionStates', () => {
  it('merging attention over two key halves equals attention over all keys (out and lse)', async () => {
    const r = rng(1);
    const q = randTensor(r, [2, 3, 11, 8]), k = randTensor(r, [2, 3, 30, 8]), v = randTensor(r, [2, 3, 30, 16]);
    const full = await runAttentionWithLse('t', q, k, v, {});
    const a = await runAttentionWithLse('t', q, keysRange(k, 0, 13), keysRange(v, 0, 13), {});
    const b = await runAttentionWithLse('t', q, keysRange(k, 13, 30), keysRange(v, 13, 30), {});
    const m = mergeAttentionStates(a.out, a.lse, b.out, b.lse);
    expect(compare(await m.out.toFloat32(), await full.out.toFloat32(), { atol: 1e-6, rtol: 1e-5 }).ok).toBe(true);
    expect(compare(await m.lse.toFloat32(), await full.lse.toFloat32(), { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
  });

  it('a part that saw no key (lse -Infinity) gets no weight; both empty gives zeros', () => {
    const o1 = tensor(new Float32Array([1, 2, 3, 4]), [2, 2]), o2 = tensor(new Float32Array([9, 9, 0, 0]), [2, 2]);
    const l1 = tensor(new Float32Array([0.5, -Infinity]), [2]), l2 = tensor(new Float32Array([-Infinity, -Infinity]), [2]);
    const m = mergeAttentionStates(o1, l1, o2, l2);
    expect(Array.from(m.out.toFloat32Sync())).toEqual([1, 2, 0, 0]);
    expect(Array.from(m.lse.toFloat32Sync())).toEqual([0.5, -Infinity]);
  });

  it('names mismatched shapes', () => {
    const o = tensor(new Float32Array(4), [2, 2]);
    expect(() => mergeAttentionStates(o, tensor(new Float32Array(3), [3]), o, tensor(new Float32Array(2), [2]))).toThrow(/lse1.shape/);
  });
});

describe('sdpaSplitKv (worker_threads, EFFICIENT kernel per KV chunk, LSE merge)', () => {
  const r = rng(2);
  const q = randTensor(r, [2, 4, 19, 8]), k = randTensor(r, [2, 2, 150, 8]), v = randTensor(r, [2, 2, 150, 8]);
  const cases: [string, SdpaOptions][] = [
    ['plain GQA', { enableGqa: true }],
    ['causal (upper-left)', { enableGqa: true, isCausal: true }],
    ['dropout', { enableGqa: true, dropoutP: 0.3, seed: 17 }],
    ['window + alibi + softcap (structured bias)', { enableGqa: true, attnMask: new StructuredBias(19, 150, { causal: true, window: [40, 0], alibiSlopes: Float32Array.from([0.1, 0.2, 0.3, 0.4]), softcap: 3 }) }],
    ['bool mask tensor', { enableGqa: true, attnMask: tensor(Uint8Array.from({ length: 19 * 150 }, (_, i) => (i % 7 === 0 ? 0 : 1)), [19, 150], 'bool') }],
  ];
  for (const [name, opts] of cases) {
    for (const workers of [0, 1, 3]) {
      it(`${name}, ${workers} workers: equals the unsplit EFFICIENT result`, async () => {
        const exp = await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => runAttentionWithLse('t', q, k, v, opts));
        const got = await sdpaSplitKv(q, k, v, { ...opts, workers, returnLse: true });
        const c = compare(await got.out.toFloat32(), await exp.out.toFloat32(), { atol: 1e-6, rtol: 1e-5 });
        expect(c.ok, c.message).toBe(true);
        expect(compare(await got.lse.toFloat32(), await exp.lse.toFloat32(), { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
      });
    }
  }
  it('float16 inputs come back as float16', async () => {
    const qh = randTensor(r, [1, 2, 5, 8], 'float16'), kh = randTensor(r, [1, 2, 40, 8], 'float16');
    const out = await sdpaSplitKv(qh, kh, kh, { workers: 2 });
    expect(out.dtype).toBe('float16');
    const exp = await sdpa(qh, kh, kh);
    expect(compare(await out.toFloat32(), await exp.toFloat32(), { atol: 1e-3, rtol: 1e-3 }).ok).toBe(true);
  });
  it('validates workers and explains when EFFICIENT cannot run the call', async () => {
    await expect(sdpaSplitKv(q, k, v, { enableGqa: true, workers: -1 })).rejects.toThrow(/opts.workers/);
    await expect(sdpaSplitKv(q, k, v, { workers: 1 })).rejects.toThrow(/enableGqa/);
    const big = randTensor(r, [1, 1, 2, 8]);
    const err = await withBackends([SDPBackend.MATH], () => sdpaSplitKv(big, big, big, { workers: 0 })).catch((e: unknown) => e);
    // The split pins EFFICIENT itself, so an outer scope cannot disable it: it runs.
    expect(err).toBeInstanceOf(Tensor);
    expect(SdpaDispatchError).toBeDefined();
  });
});
