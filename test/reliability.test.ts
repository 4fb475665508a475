/**
 * Issue 20, in-process: no half-written state, no silently wrong answer, clear errors. Each test
 * here failed before its fix. Crashes (the process dying) are tested in child processes in
 * test/reliability-crash.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  FlashAttention,
  KvCache,
  MultiHeadAttention,
  SDPBackend,
  SdpaTypeError,
  StructuredBias,
  Tensor,
  capabilities,
  lastDispatch,
  explainDispatch,
  flashAttnFunc,
  sdpa,
  sdpaSplitKv,
  flashAttnWithKvcache,
  registerBackend,
  tensor,
  unregisterBackend,
  withBackends,
} from '../src/index.js';
import { splitKvWorkers } from '../backends/efficient/split-kv.js';
import { mathCallBytes, mathCopyBytes, mathReference, mathReservation } from '../backends/math/cpu.js';
import { loadNative } from '../backends/flash/native.js';
import { buildParams } from '../src/params.js';
import { compare } from './helpers/compare.js';
import { testedParts } from './helpers/parts.js';
import { rng, randTensor } from './helpers/random.js';
import { testBackend } from './helpers/test-backend.js';
import { FULL_SEMANTICS_CAPS } from '../src/dispatch/caps.js';

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

describe('tensors: validated in one place, immutable, disposed means unusable', () => {
  it('the exported Tensor constructor validates data class, extent, strides and offset', () => {
    const ok = new Tensor({ shape: [2, 3], dtype: 'float32', data: new Float32Array(6) });
    expect(ok.size).toBe(6);
    const bad: [unknown, RegExp][] = [
      [{ shape: [2, 3], dtype: 'float16', data: new Float32Array(6) }, /Tensor: data: expected a Uint16Array for dtype 'float16', got Float32Array\(6\)/],
      [{ shape: [2, 3], dtype: 'float32', data: new Float32Array(5) }, /Tensor: data: expected at least 6 elements/],
      [{ shape: [2, 3], dtype: 'float32', data: new Float32Array(6), offset: 1 }, /Tensor: data: expected at least 7 elements/],
      [{ shape: [2, 3], dtype: 'float32', data: new Float32Array(6), strides: [3, -1] }, /Tensor: strides\[1\]: expected a non-negative integer/],
      [{ shape: [2, 3], dtype: 'float32', data: new Float32Array(6), strides: [3] }, /Tensor: strides: expected an array of 2/],
      [{ shape: [2, 3], dtype: 'float32', data: new Float32Array(6), offset: 0.5 }, /Tensor: offset: expected a non-negative integer/],
      [{ shape: [2, 3], dtype: 'float64', data: new Float32Array(6) }, /Tensor: dtype/],
      [{ shape: [2, 3], dtype: 'float32' }, /Tensor: init: expected exactly one of data \(CPU\) and storage \(device\), got neither/],
      [{ shape: [1, , 4], dtype: 'float32', data: new Float32Array(4) }, /Tensor: shape\[1\]: expected an integer, got undefined/],
    ];
    for (const [init, message] of bad) {
      const f = () => new Tensor(init as never);
      expect(f).toThrow(message);
      try {
        f();
      } catch (e) {
        expect(['SdpaTypeError', 'SdpaRangeError']).toContain((e as Error).name);
      }
    }
  });

  it('a sparse shape [1,,4] names the hole instead of "expected length NaN"', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(() => tensor(new Float32Array(4), [1, , 4])).toThrow(/tensor: shape\[1\]: expected an integer, got undefined/);
  });

  it('data, offset, shape and strides cannot be reassigned (the tensor is frozen)', () => {
    const t = tensor(new Float32Array(8).fill(1), [1, 1, 2, 4]);
    expect(Object.isFrozen(t)).toBe(true);
    expect(() => ((t as { data: unknown }).data = new Float32Array(8))).toThrow(TypeError);
    expect(() => ((t as { offset: number }).offset = 3)).toThrow(TypeError);
    expect(() => ((t as { dtype: string }).dtype = 'float16')).toThrow(TypeError);
    expect(t.toFloat32Sync()).toEqual(new Float32Array(8).fill(1));
  });

  it('a disposed CPU tensor is refused as an input (naming it) and cannot be read', async () => {
    const r = rng(3);
    const q = randTensor(r, [1, 2, 4, 8]), k = randTensor(r, [1, 2, 5, 8]), v = randTensor(r, [1, 2, 5, 8]);
    v.dispose();
    v.dispose(); // twice is fine
    const err = await rejection(sdpa(q, k, v));
    expect(err.name).toBe('SdpaTypeError');
    expect(err.message).toMatch(/^sdpa: v: expected a tensor with live storage .* got a disposed tensor/);
    expect(() => explainDispatch(q, k, v)).toThrow(/explainDispatch: v: /);
    await expect(v.toFloat32()).rejects.toThrow(SdpaTypeError);
    expect(() => v.toFloat32Sync()).toThrow(SdpaTypeError);
  });

  it('an input detached before the call is refused naming it', async () => {
    const r = rng(4);
    const q = randTensor(r, [1, 2, 4, 8]), k = randTensor(r, [1, 2, 5, 8]), v = randTensor(r, [1, 2, 5, 8]);
    structuredClone(k.data!.buffer, { transfer: [k.data!.buffer as ArrayBuffer] });
    const err = await rejection(sdpa(q, k, v));
    expect(err.message).toMatch(/^sdpa: k: expected a tensor with live storage .*detached/);
  });

  it('EFFICIENT (which yields between row blocks) rejects when v is detached during the call, never resolves with NaN', async () => {
    for (const backend of [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]) {
      const r = rng(5);
      const q = randTensor(r, [1, 4, 256, 32]), k = randTensor(r, [1, 4, 256, 32]), v = randTensor(r, [1, 4, 256, 32]);
      const call = withBackends([backend], () => sdpa(q, k, v));
      // Detach right after the call was made: the kernel is on its way (or about to start).
      await Promise.resolve();
      structuredClone(v.data!.buffer, { transfer: [v.data!.buffer as ArrayBuffer] });
      const err = await rejection(call);
      expect(err.name, `${backend}: ${err.message}`).toBe('SdpaTypeError');
      expect(err.message, backend).toMatch(/^sdpa: v: expected storage left as it was until the call settles/);
    }
  });
});

describe('options are own properties, validated strictly', () => {
  it('Object.prototype.isCausal = true changes nothing (sdpa, explainDispatch, flash-attn, modules)', async () => {
    const r = rng(11);
    const q = randTensor(r, [1, 2, 6, 8]), k = randTensor(r, [1, 2, 6, 8]), v = randTensor(r, [1, 2, 6, 8]);
    const plain = await (await sdpa(q, k, v)).toFloat32();
    const proto = Object.prototype as Record<string, unknown>;
    proto.isCausal = true;
    proto.causal = true;
    proto.scale = 100;
    proto.dropoutP = 0.5;
    try {
      expect(await (await sdpa(q, k, v)).toFloat32()).toEqual(plain);
      expect(await (await sdpa(q, k, v, {})).toFloat32()).toEqual(plain);
      expect(explainDispatch(q, k, v).toString()).not.toMatch(/causal upper-left/);
      const bshd = (t: Tensor) => tensor(t.toFloat32Sync(), [1, 6, 2, 8]);
      const a = await (await flashAttnFunc(bshd(q), bshd(k), bshd(v))).toFloat32();
      delete proto.isCausal; delete proto.causal; delete proto.scale; delete proto.dropoutP;
      const b = await (await flashAttnFunc(bshd(q), bshd(k), bshd(v))).toFloat32();
      expect(a).toEqual(b);
    } finally {
      delete proto.isCausal;
      delete proto.causal;
      delete proto.scale;
      delete proto.dropoutP;
    }
  });

  it('typos and bad values throw naming the key: FlashAttention, MultiHeadAttention (rope base), KvCache.append', () => {
    expect(() => new FlashAttention({ casual: true } as never)).toThrow(/FlashAttention: opts\.casual: expected one of the options causal, dropout, flash, scale, seed, got an unknown option "casual"/);
    expect(() => new FlashAttention({ scale: NaN })).toThrow(/FlashAttention: opts\.scale: expected a finite number, got NaN/);
    expect(() => new FlashAttention({ causal: 'yes' } as never)).toThrow(/FlashAttention: opts\.causal: expected a boolean/);
    expect(() => new MultiHeadAttention({ dModel: 16, numHeads: 2, rope: { base: NaN } })).toThrow(/MultiHeadAttention: opts\.rope\.base: expected a finite number > 1/);
    expect(() => new MultiHeadAttention({ dModel: 16, numHeads: 2, rope: { bse: 10 } as never })).toThrow(/opts\.rope\.bse/);
    expect(() => new MultiHeadAttention({ dModel: 16, numHeads: 2, numHeds: 1 } as never)).toThrow(/MultiHeadAttention: opts\.numHeds/);
    const cache = new KvCache();
    expect(() => cache.append(new Float32Array(3), new Float32Array(16), 1, 2, 1, 8)).toThrow(/KvCache\.append: k: expected length b·s·hkv·d = 1·2·1·8 = 16, got length 3/);
    expect(() => cache.append(new Float32Array(16), new Float32Array(16), 1, 2, 1, 0)).toThrow(/KvCache\.append: d: expected a positive integer/);
    expect(cache.length).toBe(0);
  });

  it('FlashAttention.forward(null, …) is a library error naming q', async () => {
    const err = await rejection(new FlashAttention().forward(null as never, null as never, null as never));
    expect(err.name).toBe('SdpaTypeError');
    expect(err.message).toMatch(/^FlashAttention\.forward: q: expected a Tensor/);
  });

  it('sdpaSplitKv: workers validated and capped at the available cores', async () => {
    const { availableParallelism } = await import('node:os');
    expect(splitKvWorkers(2 ** 31, 256)).toBe(Math.min(availableParallelism(), 256));
    expect(splitKvWorkers(2 ** 31, 1)).toBe(1);
    expect(splitKvWorkers(0, 256)).toBe(0);
    const r = rng(12);
    const q = randTensor(r, [1, 1, 4, 8]), k = randTensor(r, [1, 1, 64, 8]), v = randTensor(r, [1, 1, 64, 8]);
    await expect(sdpaSplitKv(q, k, v, { workers: 1.5 })).rejects.toThrow(/sdpaSplitKv: opts\.workers: expected a non-negative integer/);
    await expect(sdpaSplitKv(q, k, v, { workers: 2 ** 53 })).rejects.toThrow(/opts\.workers/);
    await expect(sdpaSplitKv(q, k, v, { wrkers: 2 } as never)).rejects.toThrow(/sdpaSplitKv: opts\.wrkers/);
  });
});

describe('SharedArrayBuffer and resizable ArrayBuffer inputs', () => {
  const onShared = (t: Tensor, resizable = false): Tensor => {
    const d = t.data as Float32Array;
    const buf = resizable ? new ArrayBuffer(d.byteLength, { maxByteLength: d.byteLength * 2 }) : new SharedArrayBuffer(d.byteLength);
    const a = new Float32Array(buf, 0, d.length);
    a.set(d);
    return tensor(a, t.shape, 'float32');
  };

  it('SharedArrayBuffer-backed q/k/v/mask run on every eligible part and equal the reference (FLASH (cpu) included)', async () => {
    await capabilities();
    const r = rng(21);
    const q = onShared(randTensor(r, [1, 2, 8, 16])), k = onShared(randTensor(r, [1, 2, 9, 16])), v = onShared(randTensor(r, [1, 2, 9, 16]));
    const mask = onShared(randTensor(r, [8, 9]));
    const ran: string[] = [];
    for (const { backend, part } of testedParts()) {
      const opts = { attnMask: mask, device: part.device };
      const cand = explainDispatch(q, k, v, opts).candidates.find((c) => c.backend === backend)!;
      if (!cand.eligible) continue;
      const expected = mathReference(buildParams('t', q, k, v, opts));
      const out = await withBackends([backend], () => sdpa(q, k, v, opts));
      const c = compare(await out.toFloat32(), expected, part.tolerance.float32);
      out.dispose();
      expect(c.ok, `${backend} (${part.device}): ${c.message}`).toBe(true);
      ran.push(`${backend} (${part.device})`);
    }
    if (loadNative().ok) expect(ran).toContain('FLASH_ATTENTION (cpu)');
  });

  it('a resizable ArrayBuffer makes FLASH (cpu) ineligible with a reason; the call runs on the next backend, correct', async () => {
    const r = rng(22);
    const q = randTensor(r, [1, 2, 8, 16]), k = onShared(randTensor(r, [1, 2, 9, 16]), true), v = randTensor(r, [1, 2, 9, 16]);
    const flash = explainDispatch(q, k, v).candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!;
    expect(flash.eligible).toBe(false);
    expect(flash.reasons.join('\n')).toMatch(/flash \(cpu\) reads its inputs in place off the event loop and needs fixed-length buffers; k is over a resizable ArrayBuffer/);
    const out = await sdpa(q, k, v);
    expect(lastDispatch()!.ran!.backend).not.toBe(SDPBackend.FLASH_ATTENTION);
    expect(compare(await out.toFloat32(), mathReference(buildParams('t', q, k, v, {})), { atol: 1e-5, rtol: 1e-5 }).ok).toBe(true);
  });

  it('a resizable buffer shrunk during an EFFICIENT call rejects naming it', async () => {
    const r = rng(23);
    const q = randTensor(r, [1, 4, 256, 32]), k = randTensor(r, [1, 4, 256, 32]), v = onShared(randTensor(r, [1, 4, 256, 32]), true);
    const call = withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, v));
    await Promise.resolve();
    (v.data!.buffer as ArrayBuffer & { resize(n: number): void }).resize(16);
    const err = await rejection(call);
    expect(err.message).toMatch(/^sdpa: v: expected storage left as it was until the call settles/);
  });
});

describe('backends agree on overflow, or say why they cannot', () => {
  it('scale 1e39 (beyond float32): float32-scaling parts are ineligible with a reason; the others agree with MATH, finite', async () => {
    await capabilities();
    const r = rng(31);
    const q = randTensor(r, [1, 2, 4, 8], 'float32', 0.01), k = randTensor(r, [1, 2, 5, 8], 'float32', 0.01), v = randTensor(r, [1, 2, 5, 8]);
    const ran: string[] = [];
    for (const { backend, part } of testedParts()) {
      const opts = { scale: 1e39, device: part.device };
      const cand = explainDispatch(q, k, v, opts).candidates.find((c) => c.backend === backend)!;
      if (!cand.eligible) {
        if (part.availability().available && /flash|onnx|webgpu/.test(part.label)) expect(cand.reasons.join('\n'), part.label).toMatch(/applies scale in float32; scale 1e\+39 is beyond float32's range/);
        continue;
      }
      const got = await (await withBackends([backend], () => sdpa(q, k, v, opts))).toFloat32();
      expect(got.every(Number.isFinite), `${backend} (${part.device})`).toBe(true);
      expect(compare(got, mathReference(buildParams('t', q, k, v, opts)), part.tolerance.float32).ok, `${backend} (${part.device})`).toBe(true);
      ran.push(`${backend} (${part.device})`);
    }
    expect(ran).toContain('MATH (cpu)');
    expect(ran).toContain('EFFICIENT_ATTENTION (cpu)');
    expect(ran).not.toContain('FLASH_ATTENTION (cpu)');
    expect(ran).not.toContain('ONNXRUNTIME (cpu)');
  });

  it('rows whose every score is −∞ from the data (k holds −∞) give zeros on every backend, ORT included (PyTorch 2.5+ safe softmax)', async () => {
    await capabilities();
    const S = 4, L = 6, E = 8;
    const qv = new Float32Array(2 * S * E).fill(0.5);
    const kv = new Float32Array(2 * L * E).map((_, i) => Math.sin(i));
    for (let j = 0; j < L; j++) kv[L * E + j * E] = -Infinity; // head 1: every key has −∞ in dim 0 and q = 0.5 there → every score −∞; head 0 stays finite
    const q = tensor(qv, [1, 2, S, E]), k = tensor(kv, [1, 2, L, E]), v = tensor(new Float32Array(2 * L * E).map((_, i) => Math.cos(i)), [1, 2, L, E]);
    const expected = mathReference(buildParams('t', q, k, v, {}));
    for (let i = S * E; i < 2 * S * E; i++) expect(expected[i]).toBe(0);
    const ran: string[] = [];
    for (const { backend, part } of testedParts().filter((x) => x.part.device === 'cpu')) {
      const cand = explainDispatch(q, k, v).candidates.find((c) => c.backend === backend)!;
      if (!cand.eligible) continue;
      const got = await (await withBackends([backend], () => sdpa(q, k, v))).toFloat32();
      expect(Array.from(got.subarray(S * E)), `${backend}: head 1 rows`).toEqual(new Array(S * E).fill(0));
      ran.push(backend);
    }
    expect(ran).toContain(SDPBackend.ONNXRUNTIME);
  });

  it('ONNX Runtime: scale <= 0 and 1e-46 (0 in float32) run and agree with MATH, with no session error', async () => {
    await capabilities();
    const r = rng(32);
    const q = randTensor(r, [1, 2, 4, 8]), k = randTensor(r, [1, 2, 5, 8]), v = randTensor(r, [1, 2, 5, 8]);
    for (const scale of [-0.5, 0, 1e-46, 3]) {
      const cand = explainDispatch(q, k, v, { scale }).candidates.find((c) => c.backend === SDPBackend.ONNXRUNTIME)!;
      expect(cand.eligible, `scale ${scale}: ${cand.reasons.join('; ')}`).toBe(true);
      const got = await (await withBackends([SDPBackend.ONNXRUNTIME], () => sdpa(q, k, v, { scale }))).toFloat32();
      expect(lastDispatch()!.fallbacks).toEqual([]);
      expect(compare(got, mathReference(buildParams('t', q, k, v, { scale })), { atol: 1e-5, rtol: 1e-4 }).ok, `scale ${scale}`).toBe(true);
    }
  });

  it('ONNX Runtime: the session cache does not key on scale (17 scales cycling share one session)', async () => {
    await capabilities();
    const { onnxSessionStats, disposeOnnxSessions } = await import('../backends/onnxruntime/public.js');
    await disposeOnnxSessions();
    const r = rng(33);
    const q = randTensor(r, [1, 2, 4, 8]), k = randTensor(r, [1, 2, 5, 8]), v = randTensor(r, [1, 2, 5, 8]);
    const before = onnxSessionStats();
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 17; i++) await withBackends([SDPBackend.ONNXRUNTIME], () => sdpa(q, k, v, { scale: 0.1 + i * 0.05 }));
    }
    const after = onnxSessionStats();
    expect(after.created - before.created).toBe(1);
    expect(after.hits - before.hits).toBe(33);
  });
});

describe('MATH memory budget: counts the copies of half inputs and holds across concurrent calls', () => {
  const withBudget = async <T>(bytes: number, fn: () => Promise<T>): Promise<T> => {
    const was = process.env.SDPA_MATH_MAX_BYTES;
    process.env.SDPA_MATH_MAX_BYTES = String(bytes);
    try {
      return await fn();
    } finally {
      if (was === undefined) delete process.env.SDPA_MATH_MAX_BYTES;
      else process.env.SDPA_MATH_MAX_BYTES = was;
    }
  };

  it('float16 inputs: the float32 copies count toward the budget and lastDispatch().allocatedBytes', async () => {
    const r = rng(41);
    const q = randTensor(r, [1, 2, 16, 64], 'float16'), k = randTensor(r, [1, 2, 512, 64], 'float16'), v = randTensor(r, [1, 2, 512, 64], 'float16');
    const p = buildParams('t', q, k, v, {});
    const copies = (q.size + k.size + v.size) * 4;
    expect(mathCopyBytes(p)).toBe(copies);
    const scores = 2 * 16 * 512 * 8;
    await withBudget(scores + copies - 1, async () => {
      const math = explainDispatch(q, k, v).candidates.find((c) => c.backend === SDPBackend.MATH)!;
      expect(math.eligible).toBe(false);
      expect(math.reasons.join('\n')).toMatch(/math \(cpu\) materializes the batch·Hq·S·L float64 score matrix plus float32 copies of the half-precision inputs \(/);
    });
    await withBudget(scores + copies, async () => {
      await withBackends([SDPBackend.MATH], () => sdpa(q, k, v));
      expect(lastDispatch()!.allocatedBytes).toBeGreaterThanOrEqual(scores + copies);
    });
  });

  it('six concurrent MATH calls never hold more than the budget together, and all are right', async () => {
    const r = rng(42);
    const problems = Array.from({ length: 6 }, () => ({ q: randTensor(r, [1, 2, 64, 16]), k: randTensor(r, [1, 2, 256, 16]), v: randTensor(r, [1, 2, 256, 16]) }));
    const one = mathCallBytes(buildParams('t', problems[0].q, problems[0].k, problems[0].v, {}));
    const budget = Math.floor(2.5 * one);
    mathReservation(true);
    const outs = await withBudget(budget, () => Promise.all(problems.map((pr) => withBackends([SDPBackend.MATH], () => sdpa(pr.q, pr.k, pr.v)))));
    const { peak, reserved, waiting } = mathReservation();
    expect(peak).toBeGreaterThanOrEqual(one);
    expect(peak).toBeLessThanOrEqual(budget);
    expect(reserved).toBe(0);
    expect(waiting).toBe(0);
    for (const [i, pr] of problems.entries()) {
      expect(compare(await outs[i].toFloat32(), mathReference(buildParams('t', pr.q, pr.k, pr.v, {})), { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
    }
  });
});

describe('registerBackend: partial descriptors are clear errors, never a TypeError in dispatch', () => {
  const part = { device: 'cpu', label: 'x (cpu)', caps: {}, availability: () => ({ available: true }), constraints: [], tolerance: {}, run: async () => null };
  it.each([
    [null, /^registerBackend: descriptor: expected a backend descriptor/],
    [{ name: 'REL_X', parts: [{ ...part }] }, /^registerBackend: descriptor\.parts\[0\]\.caps\.dtypes: expected an array of 'float32', 'float16', 'bfloat16', got undefined/],
    [{ name: 'REL_X', parts: [{ ...part, caps: { ...FULL_SEMANTICS_CAPS, maxHeadDim: '64' } }] }, /descriptor\.parts\[0\]\.caps\.maxHeadDim: expected a positive integer, got "64"/],
    [{ name: 'REL_X', parts: [{ ...part, caps: FULL_SEMANTICS_CAPS, constraints: [5] }] }, /descriptor\.parts\[0\]\.constraints\[0\]: expected a constraint function/],
    [{ name: 'REL_X', parts: [{ ...part, caps: FULL_SEMANTICS_CAPS, kernels: [{ name: 'a', run: async () => null, constraints: 5 }] }] }, /descriptor\.parts\[0\]\.kernels\[0\]\.constraints: expected an array of constraint functions/],
  ])('%#: %s', (descriptor, message) => {
    try {
      expect(() => registerBackend(descriptor as never)).toThrow(message);
      expect(() => registerBackend(descriptor as never)).toThrow(SdpaTypeError);
    } finally {
      unregisterBackend('REL_X');
    }
  });

  it("an availability() that returns nothing is the part's reason", () => {
    registerBackend({ name: 'REL_X', summary: 's', parts: [{ ...part, caps: FULL_SEMANTICS_CAPS, availability: () => undefined }] } as never);
    try {
      const q = tensor(new Float32Array(16), [1, 1, 2, 8]);
      const c = explainDispatch(q, q, q).candidates.find((x) => x.backend === 'REL_X')!;
      expect(c.eligible).toBe(false);
      expect(c.reasons.join()).toMatch(/x \(cpu\): availability\(\) returned undefined, expected \{ available: boolean/);
    } finally {
      unregisterBackend('REL_X');
    }
  });
});

describe('strict, own-property options in the remaining entry points', () => {
  it('StructuredBias init and withBackends kernel entries reject unknown keys and ignore Object.prototype', () => {
    expect(() => new StructuredBias(4, 4, { casual: true } as never)).toThrow(/StructuredBias: init\.casual: expected one of alignment, causal, window/);
    expect(() => new StructuredBias(4, 4, { causal: 1 } as never)).toThrow(/StructuredBias: init\.causal: expected a boolean/);
    const proto = Object.prototype as Record<string, unknown>;
    proto.causal = true;
    try {
      expect(new StructuredBias(4, 4, {}).causal).toBe(false);
    } finally {
      delete proto.causal;
    }
    return expect(withBackends([{ backend: SDPBackend.FLASH_ATTENTION, devce: 'cpu', kernel: 'avx2_fp32' } as never], async () => 1)).rejects.toThrow(/withBackends: backends\[0\]\.devce: expected one of the keys backend, device, kernel/);
  });
});
