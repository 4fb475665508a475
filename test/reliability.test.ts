/**
 * Issue 20, in-process: no half-written state, no silently wrong answer, clear errors. Each test
 * here failed before its fix. Crashes (the process dying) are tested in child processes in
 * test/reliability-crash.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  KvCache,
  MultiHeadAttention,
  SDPBackend,
  flashAttnWithKvcache,
  registerBackend,
  tensor,
  unregisterBackend,
  withBackends,
  type Tensor,
} from '../src/index.js';
import { rng, randTensor } from './helpers/random.js';
import { testBackend } from './helpers/test-backend.js';

/** The raw bytes of a tensor's storage (bit-identity, NaN payloads included). */
function bytesOf(t: Tensor): Uint8Array {
  const d = t.data!;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to reject');
}

describe('validate, then write: a failed call leaves every cache bit-identical', () => {
  const [B, Sq, H, Hkv, D, Lc] = [2, 2, 4, 2, 8, 16];
  function setup(seed: number) {
    const r = rng(seed);
    const kCache = randTensor(r, [B, Lc, Hkv, D]), vCache = randTensor(r, [B, Lc, Hkv, D]);
    // A signalling-NaN payload in the cache.
    // Token 3 of sequence 0 (where cacheSeqlens 3 appends): an undo through JS numbers would quieten it.
    new Uint32Array(kCache.data!.buffer)[3 * Hkv * D] = 0x7f800001;
    const kNew = randTensor(r, [B, Sq, Hkv, D]), vNew = randTensor(r, [B, Sq, Hkv, D]);
    const q = randTensor(r, [B, Sq, H, D]);
    return { kCache, vCache, kNew, vNew, q };
  }

  it('flashAttnWithKvcache: every input error throws before either cache is written', async () => {
    const s = setup(5);
    const r = rng(6);
    const k0 = bytesOf(s.kCache), v0 = bytesOf(s.vCache);
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['float16 opts.v', () => flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: randTensor(r, [B, Sq, Hkv, D], 'float16'), cacheSeqlens: 3 }), /opts\.v\.dtype/],
      ['float16 q', () => flashAttnWithKvcache(randTensor(r, [B, Sq, H, D], 'float16'), s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3 }), /dtype/],
      ['q head dim', () => flashAttnWithKvcache(randTensor(r, [B, Sq, H, D * 2]), s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3 }), /head dim|shape/],
      ['q heads not a multiple', () => flashAttnWithKvcache(randTensor(r, [B, Sq, 3, D]), s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3 }), /k\.shape|heads/],
      ['softmaxScale NaN', () => flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3, softmaxScale: NaN }), /scale/],
      ['seed -1', () => flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3, seed: -1 }), /seed/],
      ['alibi slopes of the wrong count', () => flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3, alibiSlopes: new Float32Array(3) }), /alibiSlopes/],
      ['all lengths 0 and no new tokens', () => flashAttnWithKvcache(s.q, s.kCache, s.vCache, { cacheSeqlens: 0 }), /cacheSeqlens/],
    ];
    for (const [what, call, message] of cases) {
      const err = await rejection(call());
      expect(err.message, what).toMatch(message);
      expect(['SdpaTypeError', 'SdpaRangeError'], `${what}: ${err.name} ${err.message}`).toContain(err.name);
      expect(Buffer.compare(bytesOf(s.kCache), k0), `${what}: kCache`).toBe(0);
      expect(Buffer.compare(bytesOf(s.vCache), v0), `${what}: vCache`).toBe(0);
    }
    // And a good call after them all still works and writes.
    await flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3 });
    expect(Buffer.compare(bytesOf(s.kCache), k0)).not.toBe(0);
  });

  it('flashAttnWithKvcache: a call that fails while attending (a kernel bug) is undone bit for bit', async () => {
    const s = setup(7);
    const k0 = bytesOf(s.kCache), v0 = bytesOf(s.vCache);
    let sawAppend = false;
    const { descriptor } = testBackend('REL_FAULTY', 1000, [{ name: 'boom', run: async () => {
      sawAppend = Buffer.compare(bytesOf(s.kCache), k0) !== 0;
      throw new Error('a kernel bug');
    } }]);
    registerBackend(descriptor);
    try {
      const err = await rejection(withBackends(['REL_FAULTY'], () => flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 3 })));
      expect(err.message).toBe('a kernel bug');
    } finally {
      unregisterBackend('REL_FAULTY');
    }
    expect(sawAppend).toBe(true);
    expect(Buffer.compare(bytesOf(s.kCache), k0)).toBe(0);
    expect(Buffer.compare(bytesOf(s.vCache), v0)).toBe(0);
  });

  it('MultiHeadAttention.forward: a failed forward does not advance kvCache.length or change it', async () => {
    const mha = new MultiHeadAttention({ dModel: 32, numHeads: 4, numKvHeads: 2, rope: true });
    const cache = new KvCache();
    const r = rng(9);
    await mha.forward(randTensor(r, [1, 3, 32]), { isCausal: true, kvCache: cache });
    expect(cache.length).toBe(3);
    const bad: [string, () => Promise<unknown>][] = [
      ['a bias object with isCausal over a cache', () => mha.forward(randTensor(r, [1, 2, 32]), { isCausal: true, kvCache: cache, attnMask: { kind: 'nope' } as never })],
      ['a mask of the wrong shape', () => mha.forward(randTensor(r, [1, 2, 32]), { kvCache: cache, attnMask: tensor(new Uint8Array(7).fill(1), [7], 'bool') })],
      ['an unknown option', () => mha.forward(randTensor(r, [1, 2, 32]), { kvCache: cache, casual: true } as never)],
      ['a batch that does not match the cache', () => mha.forward(randTensor(r, [2, 2, 32]), { kvCache: cache })],
      ['a kvCache that is not a KvCache', () => mha.forward(randTensor(r, [1, 2, 32]), { kvCache: {} as KvCache })],
    ];
    for (const [what, call] of bad) {
      const err = await rejection(call());
      expect(['SdpaTypeError', 'SdpaRangeError'], `${what}: ${err.name}: ${err.message}`).toContain(err.name);
      expect(cache.length, what).toBe(3);
    }
    // The cache still serves the next token exactly as if the failures never happened.
    const fresh = new KvCache();
    const r2 = rng(9);
    await mha.forward(randTensor(r2, [1, 3, 32]), { isCausal: true, kvCache: fresh });
    const x = randTensor(rng(10), [1, 1, 32]);
    const a = await (await mha.forward(x, { isCausal: true, kvCache: cache })).toFloat32();
    const b = await (await mha.forward(x, { isCausal: true, kvCache: fresh })).toFloat32();
    expect(a).toEqual(b);
  });
});
