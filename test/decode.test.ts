/**
 * The decode kernels of FLASH_ATTENTION (cpu) (csrc/kernel_decode_impl.h: decode_avx512,
 * decode_avx2, decode_scalar), each pinned and checked against the float64 MATH reference with the
 * part's tolerance: S = 1..16 queries, GQA groups 1..8, key counts no multiple of any block (split
 * across threads into chunks merged by log-sum-exp), bool and float masks, causal lower-right,
 * dropout, and paged KV caches through flashAttnWithKvcache. And the dispatcher: it picks a decode
 * kernel for S <= 16 and says why not for S > 16.
 */
import { describe, expect, it } from 'vitest';
import { SDPBackend, capabilities, causalLowerRight, explainDispatch, flashAttnWithKvcache, lastDispatch, sdpa, withBackends, type Tensor } from '../src/index.js';
import { flashCpu } from '../backends/flash/cpu.js';
import { loadNative } from '../backends/flash/native.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';
import type { SdpaOptions } from '../src/params.js';
import { compare } from './helpers/compare.js';
import { randBoolMask, randTensor, rng } from './helpers/random.js';

await capabilities(); // registers the built-in backends (withBackends pins name their kernels)
const native = loadNative();
const decodeKernels = native.ok ? native.native.kernels().filter((k) => k.name.startsWith('decode_')) : [];
const runnable = decodeKernels.filter((k) => k.missing.length === 0);
const notHere = decodeKernels.filter((k) => k.missing.length > 0);
const r = rng(1616);

/** Runs the call on one kernel (pinned) and compares it with MATH's float64 reference. */
async function check(kernel: string, q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions = {}): Promise<void> {
  const out = await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'cpu', kernel }], () => sdpa(q, k, v, opts));
  expect(lastDispatch()?.ran?.kernel).toBe(kernel);
  const ref = mathReference(buildParams('t', q, k, v, opts));
  const c = compare(await out.toFloat32(), ref, flashCpu.tolerance[q.dtype]);
  expect(c.ok, `${kernel} ${q.dtype} q [${q.shape}] k [${k.shape}]: ${JSON.stringify(c)}`).toBe(true);
}

describe.skipIf(!native.ok)(`decode kernels of FLASH_ATTENTION (cpu)${native.ok ? '' : ` (skipped: ${native.error})`}`, () => {
  it('the addon has the four decode kernels, each for at most 16 queries per head', () => {
    expect(decodeKernels.map((k) => k.name)).toEqual(['decode_avx512_bf16', 'decode_avx512', 'decode_avx2', 'decode_scalar']);
    for (const k of decodeKernels) expect(k.maxQueries).toBe(16);
  });
  // Kernels whose ISA this CPU lacks cannot be tested here (the C++ test lists them as not run).
  for (const k of notHere) it.skip(`${k.name}: this CPU lacks ${k.missing.join(', ')}`, () => {});

  for (const kern of runnable) {
    describe(kern.name, () => {
      // A head dim that is a multiple of every decode kernel's vector width (their table rule).
      const D = 64;
      // The masks' and the dropout's cases in the first dtype the kernel runs.
      const dt0 = kern.dtypes.includes('float32') ? 'float32' : kern.dtypes[0];
      for (const dtype of (['float32', 'float16', 'bfloat16'] as const).filter((d) => kern.dtypes.includes(d))) {
        it(`${dtype}: S = 1..16 over GQA groups 1..8 and key counts no multiple of a block`, async () => {
          const shapes: [number, number, number, number][] = [
            // [S, Hq, Hkv, L]
            [1, 8, 1, 1031],
            [1, 8, 8, 77],
            [2, 4, 2, 1],
            [3, 6, 3, 513],
            [5, 8, 2, 2049],
            [16, 8, 4, 130],
            [16, 2, 2, 1500],
          ];
          for (const [S, hq, hkv, L] of shapes) {
            const q = randTensor(r, [1, hq, S, D], dtype), k = randTensor(r, [1, hkv, L, D], dtype), v = randTensor(r, [1, hkv, L, D], dtype);
            await check(kern.name, q, k, v, { enableGqa: hq !== hkv });
          }
        });
      }
      it('bool and float masks (broadcast over heads), causal lower-right, and both', async () => {
        const S = 4, hq = 8, hkv = 2, L = 700;
        const q = randTensor(r, [2, hq, S, D], dt0), k = randTensor(r, [2, hkv, L, D], dt0), v = randTensor(r, [2, hkv, L, D], dt0);
        await check(kern.name, q, k, v, { enableGqa: true, attnMask: randBoolMask(r, [2, 1, S, L]) });
        await check(kern.name, q, k, v, { enableGqa: true, attnMask: randTensor(r, [1, hq, S, L]) });
        await check(kern.name, q, k, v, { enableGqa: true, attnMask: causalLowerRight(S, L) });
        // Upper-left causal with S < L: query i sees keys 0..i only (most keys hidden from every row).
        await check(kern.name, q, k, v, { enableGqa: true, isCausal: true });
        await check(kern.name, q, k, v, { enableGqa: true, isCausal: true, attnMask: randBoolMask(r, [2, hq, S, L], 0.5) });
      });
      it('rows that see no key give zeros; dropout keeps the shared RNG', async () => {
        const S = 3, L = 600;
        const q = randTensor(r, [1, 4, S, D], dt0), k = randTensor(r, [1, 2, L, D], dt0), v = randTensor(r, [1, 2, L, D], dt0);
        const none = randBoolMask(r, [1, 4, S, L]);
        (none.data as Uint8Array).fill(0, 0, L); // row 0 of head 0: every key masked
        await check(kern.name, q, k, v, { enableGqa: true, attnMask: none });
        await check(kern.name, q, k, v, { enableGqa: true, dropoutP: 0.3, seed: 99 });
      });
    });
  }

  it('the dispatcher picks a decode kernel for S <= 16 and says why not above', () => {
    const f32 = runnable.filter((k) => k.dtypes.includes('float32'));
    if (f32.length === 0) return;
    const first = f32[0].name; // these calls are float32
    const mk = (S: number) => explainDispatch(randTensor(r, [1, 8, S, 64]), randTensor(r, [1, 2, 300, 64]), randTensor(r, [1, 2, 300, 64]), { enableGqa: true });
    const fc = (S: number) => mk(S).candidates.find((c) => c.backend === 'FLASH_ATTENTION' && c.device === 'cpu')!;
    expect(fc(1).kernel).toBe(first);
    expect(fc(16).kernel).toBe(first);
    const above = fc(17);
    expect(above.kernel).not.toMatch(/^decode_/);
    expect(above.kernels.find((k) => k.name === first)!.reasons).toEqual([`${first} is a decode kernel for at most 16 queries per head, got S=17`]);
    expect(mk(17).toString()).toContain(`· ${first} is a decode kernel for at most 16 queries per head, got S=17`);
  });

  it('paged KV (flashAttnWithKvcache with a block table) runs on a decode kernel and matches the reference', async () => {
    if (runnable.length === 0) return;
    // B = 2 sequences of 300 tokens in 64-token pages (the last page partly used), pages shuffled.
    const B = 2, S = 1, H = 8, Hkv = 2, D = 64, page = 64, len = 300, pages = Math.ceil(len / page);
    const kCache = randTensor(r, [B * pages + 1, page, Hkv, D]), vCache = randTensor(r, [B * pages + 1, page, Hkv, D]);
    const order = [6, 2, 9, 0, 4, 1, 8, 3, 5, 7, 10];
    const blockTable = [Int32Array.from(order.slice(0, pages)), Int32Array.from(order.slice(pages, 2 * pages))];
    const q = randTensor(r, [B, S, H, D]);
    const out = await flashAttnWithKvcache(q, kCache, vCache, { blockTable, cacheSeqlens: len, causal: true });
    expect(lastDispatch()?.ran?.kernel).toMatch(/^decode_/);
    // The reference: the same tokens gathered by hand into [B, H, L, D].
    const gather = (c: Tensor): Float32Array => {
      const src = c.data as Float32Array, dst = new Float32Array(B * Hkv * len * D);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < len; t++)
          for (let h = 0; h < Hkv; h++)
            for (let d = 0; d < D; d++) dst[((b * Hkv + h) * len + t) * D + d] = src[((blockTable[b][Math.floor(t / page)] * page + (t % page)) * Hkv + h) * D + d];
      return dst;
    };
    const { Tensor: T } = await import('../src/tensor.js');
    const kg = new T({ shape: [B, Hkv, len, D], dtype: 'float32', data: gather(kCache) }), vg = new T({ shape: [B, Hkv, len, D], dtype: 'float32', data: gather(vCache) });
    const qd = q.data as Float32Array, qh = new Float32Array(qd.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) qh[(b * H + h) * D + d] = qd[(b * H + h) * D + d];
    const qb = new T({ shape: [B, H, S, D], dtype: 'float32', data: qh });
    const ref = mathReference(buildParams('t', qb, kg, vg, { enableGqa: true, attnMask: causalLowerRight(S, len) }));
    const got = await out.toFloat32(); // [B, S, H, D] with S = 1: the same order as [B, H, 1, D]
    expect(compare(got, ref, flashCpu.tolerance.float32).ok).toBe(true);
  });
});

describe('paged caches through flashAttnWithKvcache: the gather buffer kept between calls', () => {
  // The gathered [B, L, Hkv, D] buffer is kept with the cache (a fresh one per decode step cost more
  // than the attention: 90 ms a step at L = 32768 fp16, 759 ms before page runs were copied whole).
  // Reusing it must never mix steps or calls: a decode loop over a growing paged cache equals the
  // same loop over a contiguous cache at every step, and concurrent calls on one cache each get
  // their own buffer.
  const B = 2, H = 4, Hkv = 2, D = 16, page = 16, pages = 4;
  const order = [5, 1, 7, 3, 0, 6, 2, 4];
  const blockTable = [Int32Array.from(order.slice(0, pages)), Int32Array.from(order.slice(pages))];
  const fill = (t: Tensor, src: Float32Array): void => void (t.data as Float32Array).set(src);

  it('a growing decode loop equals the contiguous cache at every step', async () => {
    const kPaged = randTensor(r, [B * pages, page, Hkv, D]), vPaged = randTensor(r, [B * pages, page, Hkv, D]);
    const kFlat = randTensor(r, [B, pages * page, Hkv, D]), vFlat = randTensor(r, [B, pages * page, Hkv, D]);
    // Same tokens in both: token t of sequence b lives in page blockTable[b][t / page].
    const kp = kPaged.data as Float32Array, vp = vPaged.data as Float32Array, kf = new Float32Array(kFlat.size), vf = new Float32Array(vFlat.size);
    const row = Hkv * D;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < pages * page; t++) {
        const from = (blockTable[b][Math.floor(t / page)] * page + (t % page)) * row, to = (b * pages * page + t) * row;
        kf.set(kp.subarray(from, from + row), to);
        vf.set(vp.subarray(from, from + row), to);
      }
    fill(kFlat, kf);
    fill(vFlat, vf);
    let len = 20;
    for (let step = 0; step < 6; step++, len++) {
      const q = randTensor(r, [B, 1, H, D]), kn = randTensor(r, [B, 1, Hkv, D]), vn = randTensor(r, [B, 1, Hkv, D]);
      const lens = Int32Array.from([len, len - 3]);
      const got = await flashAttnWithKvcache(q, kPaged, vPaged, { blockTable, cacheSeqlens: lens, k: kn, v: vn, causal: true });
      const want = await flashAttnWithKvcache(q, kFlat, vFlat, { cacheSeqlens: lens, k: kn, v: vn, causal: true });
      const c = compare(await got.toFloat32(), await want.toFloat32(), { atol: 1e-6, rtol: 1e-6 });
      expect(c.ok, `step ${step}: ${c.message}`).toBe(true);
    }
  });

  it('concurrent calls on one paged cache each read their own gathered tokens', async () => {
    const kPaged = randTensor(r, [B * pages, page, Hkv, D]), vPaged = randTensor(r, [B * pages, page, Hkv, D]);
    const qs = [0, 1, 2].map(() => randTensor(r, [B, 1, H, D]));
    const lens = [Int32Array.from([40, 33]), Int32Array.from([64, 10]), Int32Array.from([7, 50])];
    const alone: Float32Array[] = [];
    for (let i = 0; i < 3; i++) alone.push(await (await flashAttnWithKvcache(qs[i], kPaged, vPaged, { blockTable, cacheSeqlens: lens[i] })).toFloat32());
    const together = await Promise.all(qs.map((q, i) => flashAttnWithKvcache(q, kPaged, vPaged, { blockTable, cacheSeqlens: lens[i] })));
    for (let i = 0; i < 3; i++) expect(compare(await together[i].toFloat32(), alone[i], { atol: 0, rtol: 0 }).ok, `call ${i}`).toBe(true);
  });
});
