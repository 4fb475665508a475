/**
 * Advanced APIs (issue 7) against the math reference on explicit dense masks built here, on every
 * registered CPU backend part that calls the problem eligible (each with its own tolerance).
 */
import { describe, expect, it } from 'vitest';
import {
  capabilities, registeredBackends, tensor, withBackends, Tensor, SDPBackend, SdpaDispatchError, SdpaTypeError, SdpaRangeError,
  flashAttnFunc, flashAttnQkvpackedFunc, flashAttnKvpackedFunc, flashAttnVarlenFunc, flashAttnWithKvcache, explainFlashAttn,
  memoryEfficientAttention, explainMemoryEfficient, LowerTriangularMask, LowerTriangularFromBottomRightMask, BlockDiagonalMask,
  BlockDiagonalCausalMask, LocalAttentionFromBottomRightMask, causalLowerRight, StructuredBias, explainDispatch, sdpa,
  type FlashAttnOptions, type FloatDType, type BackendPart,
} from '../src/index.js';
import { compare } from './helpers/compare.js';
import { randTensor, rng } from './helpers/random.js';
import { bhsdToBshdArray, denseMask, naiveSoftcap, reference, toBhsd, type ScoreRule } from './helpers/advanced.js';

await capabilities();
const cpuParts = registeredBackends().flatMap((d) => d.parts.filter((p) => p.device === 'cpu').map((part) => ({ backend: d.name, part })));

/** flash-attn's visibility of (i, j) for S queries over L keys: bottom-right causal and window. */
function flashRule(S: number, L: number, o: FlashAttnOptions, slopes?: Float32Array, H = 1): ScoreRule {
  return (b, h, i, j) => {
    const c = i + L - S;
    let keep = true;
    if (o.causal && j > c) keep = false;
    const w = o.windowSize;
    if (w && w[0] >= 0 && j < c - w[0]) keep = false;
    if (w && w[1] >= 0 && j > c + w[1]) keep = false;
    const slope = slopes ? (slopes.length === H ? slopes[h] : slopes[b * H + h]) : 0;
    return { keep, add: -slope * Math.abs(c - j) };
  };
}

interface FlashCase { name: string; B: number; S: number; L: number; H: number; Hkv: number; E: number; Ev?: number; dtype: FloatDType; o: FlashAttnOptions; alibiPerBatch?: boolean }

const flashCases: FlashCase[] = [
  { name: 'plain', B: 2, S: 7, L: 7, H: 2, Hkv: 2, E: 16, dtype: 'float32', o: {} },
  { name: 'causal S<L (decode-like, bottom-right)', B: 1, S: 5, L: 19, H: 3, Hkv: 1, E: 8, dtype: 'float32', o: { causal: true } },
  { name: 'causal S>L (top rows see nothing)', B: 2, S: 9, L: 4, H: 2, Hkv: 2, E: 8, dtype: 'float32', o: { causal: true } },
  { name: 'window [3, 2]', B: 1, S: 40, L: 40, H: 2, Hkv: 2, E: 16, dtype: 'float32', o: { windowSize: [3, 2] } },
  { name: 'causal + window [5, -1], S<L', B: 2, S: 33, L: 70, H: 4, Hkv: 2, E: 8, dtype: 'float32', o: { causal: true, windowSize: [5, -1] } },
  { name: 'window [-1, 0] = causal', B: 1, S: 12, L: 20, H: 1, Hkv: 1, E: 8, dtype: 'float16', o: { windowSize: [-1, 0] } },
  { name: 'alibi per head, causal', B: 2, S: 17, L: 23, H: 4, Hkv: 4, E: 8, dtype: 'float32', o: { causal: true } },
  { name: 'alibi per batch·head, non-causal', B: 2, S: 11, L: 9, H: 2, Hkv: 1, E: 8, dtype: 'float32', o: {}, alibiPerBatch: true },
  { name: 'window + alibi + scale, bf16, Ev≠E', B: 1, S: 50, L: 66, H: 2, Hkv: 2, E: 16, Ev: 8, dtype: 'bfloat16', o: { windowSize: [8, 4], softmaxScale: 0.3 } },
];

describe('flashAttnFunc vs dense-mask math reference, on every eligible CPU backend', () => {
  for (const c of flashCases) {
    const r = rng(c.S * 131 + c.L);
    const Ev = c.Ev ?? c.E;
    const q = randTensor(r, [c.B, c.S, c.H, c.E], c.dtype);
    const k = randTensor(r, [c.B, c.L, c.Hkv, c.E], c.dtype);
    const v = randTensor(r, [c.B, c.L, c.Hkv, Ev], c.dtype);
    const slopes = c.name.includes('alibi') ? Float32Array.from({ length: c.alibiPerBatch ? c.B * c.H : c.H }, (_, i) => 2 ** (-(i + 1))) : undefined;
    const o: FlashAttnOptions = { ...c.o, ...(slopes ? { alibiSlopes: slopes } : {}) };
    const mask = denseMask(c.B, c.H, c.S, c.L, flashRule(c.S, c.L, o, slopes, c.H));
    const ref = reference(toBhsd(q), toBhsd(k), toBhsd(v), mask, o.softmaxScale !== undefined ? { scale: o.softmaxScale } : {});
    const expected = bhsdToBshdArray(ref.out, c.B, c.H, c.S, Ev);
    let ran = 0;
    for (const { backend, part } of cpuParts) {
      const cand = explainFlashAttn(q, k, v, o).candidates.find((x) => x.backend === backend)!;
      if (!cand.eligible) {
        it(`${c.name}: ${backend} says why it can't`, () => expect(cand.reasons.join(' ').length).toBeGreaterThan(20));
        continue;
      }
      ran++;
      it(`${c.name} on ${backend}`, async () => {
        const out = await withBackends([backend], () => flashAttnFunc(q, k, v, o));
        expect(out.shape).toEqual([c.B, c.S, c.H, Ev]);
        const cmp = compare(await out.toFloat32(), expected, part.tolerance[c.dtype]);
        expect(cmp.ok, cmp.message).toBe(true);
      });
      if (part.caps.lse) {
        it(`${c.name} on ${backend}: returnLse equals the reference log-sum-exp`, async () => {
          const { out, lse } = await withBackends([backend], () => flashAttnFunc(q, k, v, { ...o, returnLse: true }));
          expect(lse.shape).toEqual([c.B, c.H, c.S]);
          expect(compare(await out.toFloat32(), expected, part.tolerance[c.dtype]).ok).toBe(true);
          const got = await lse.toFloat32();
          for (let x = 0; x < got.length; x++) {
            if (ref.lse[x] === -Infinity) expect(got[x]).toBe(-Infinity);
            else expect(Math.abs(got[x] - ref.lse[x])).toBeLessThan(1e-4 + 1e-4 * Math.abs(ref.lse[x]));
          }
        });
      }
    }
    it(`${c.name}: at least EFFICIENT and MATH serve it`, () => expect(ran).toBeGreaterThanOrEqual(2));
  }

  it("mirrors flash-attn 2's documented causal masks (S=2, L=5 and S=5, L=2)", () => {
    expect(Array.from(causalLowerRight(2, 5).materialize())).toEqual([1, 1, 1, 1, 0, 1, 1, 1, 1, 1]);
    expect(Array.from(new StructuredBias(5, 2, { causal: true }).materialize())).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 1, 1]);
  });

  it('softcap equals a naive soft-capped attention on every backend that applies it', async () => {
    const r = rng(77);
    const [B, S, L, H, Hkv, E] = [2, 13, 21, 4, 2, 8];
    const q = randTensor(r, [B, S, H, E], 'float32', 3), k = randTensor(r, [B, L, Hkv, E], 'float32', 3), v = randTensor(r, [B, L, Hkv, E]);
    const o: FlashAttnOptions = { causal: true, softcap: 2.5, windowSize: [6, -1] };
    const exp = bhsdToBshdArray(naiveSoftcap(toBhsd(q).toFloat32Sync(), toBhsd(k).toFloat32Sync(), toBhsd(v).toFloat32Sync(), { B, H, Hkv, S, L, E, Ev: E }, 1 / Math.sqrt(E), 2.5, flashRule(S, L, o)), B, H, S, E);
    let ran = 0;
    for (const { backend, part } of cpuParts) {
      if (!explainFlashAttn(q, k, v, o).candidates.find((x) => x.backend === backend)!.eligible) continue;
      ran++;
      const out = await withBackends([backend], () => flashAttnFunc(q, k, v, o));
      const cmp = compare(await out.toFloat32(), exp, part.tolerance.float32);
      expect(cmp.ok, `${backend}: ${cmp.message}`).toBe(true);
    }
    expect(ran).toBeGreaterThanOrEqual(2);
  });

  it('reads [B, S, H, D] in place: the output is a strided view, inputs are not copied into new shapes', async () => {
    const r = rng(3);
    const q = randTensor(r, [1, 4, 2, 8]), k = randTensor(r, [1, 6, 2, 8]), v = randTensor(r, [1, 6, 2, 8]);
    const out = await flashAttnFunc(q, k, v, { causal: true });
    expect(out.shape).toEqual([1, 4, 2, 8]);
    expect(out.isContiguous).toBe(false); // a [B, H, S, D] result seen as [B, S, H, D]
  });
});

describe('packed variants equal flashAttnFunc on the unpacked tensors', () => {
  it('flashAttnQkvpackedFunc', async () => {
    const r = rng(11);
    const [B, S, H, D] = [2, 9, 3, 8];
    const qkv = randTensor(r, [B, S, 3, H, D]);
    const data = qkv.toFloat32Sync();
    const part = (x: number) => tensor(Float32Array.from({ length: B * S * H * D }, (_, i) => {
      const d = i % D, h = Math.floor(i / D) % H, s = Math.floor(i / (D * H)) % S, b = Math.floor(i / (D * H * S));
      return data[((((b * S + s) * 3 + x) * H + h) * D) + d];
    }), [B, S, H, D]);
    const o = { causal: true, windowSize: [4, 0] as [number, number] };
    const a = await (await flashAttnQkvpackedFunc(qkv, o)).toFloat32();
    const b = await (await flashAttnFunc(part(0), part(1), part(2), o)).toFloat32();
    expect(compare(a, b, { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
  });

  it('flashAttnKvpackedFunc (GQA)', async () => {
    const r = rng(12);
    const [B, S, L, H, Hkv, D] = [1, 5, 12, 4, 2, 8];
    const q = randTensor(r, [B, S, H, D]);
    const kv = randTensor(r, [B, L, 2, Hkv, D]);
    const data = kv.toFloat32Sync();
    const part = (x: number) => tensor(Float32Array.from({ length: B * L * Hkv * D }, (_, i) => {
      const d = i % D, h = Math.floor(i / D) % Hkv, s = Math.floor(i / (D * Hkv)) % L, b = Math.floor(i / (D * Hkv * L));
      return data[((((b * L + s) * 2 + x) * Hkv + h) * D) + d];
    }), [B, L, Hkv, D]);
    const a = await (await flashAttnKvpackedFunc(q, kv, { causal: true })).toFloat32();
    const b = await (await flashAttnFunc(q, part(0), part(1), { causal: true })).toFloat32();
    expect(compare(a, b, { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
  });
});

describe('flashAttnVarlenFunc', () => {
  const r = rng(21);
  const seqQ = [3, 0, 7, 1], seqK = [5, 2, 7, 9];
  const H = 4, Hkv = 2, D = 8;
  const cu = (xs: number[]) => Int32Array.from([0, ...xs.map((_, i) => xs.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
  const cuQ = cu(seqQ), cuK = cu(seqK);
  const Tq = cuQ[cuQ.length - 1], Tk = cuK[cuK.length - 1];
  const q = randTensor(r, [Tq, H, D]), k = randTensor(r, [Tk, Hkv, D]), v = randTensor(r, [Tk, Hkv, D]);
  const slopes = Float32Array.from({ length: seqQ.length * H }, (_, i) => 0.1 * (i % 5));

  for (const o of [{}, { causal: true }, { causal: true, windowSize: [2, -1] as [number, number], alibiSlopes: slopes }] as FlashAttnOptions[]) {
    it(`equals one flashAttnFunc per sequence ${JSON.stringify({ ...o, alibiSlopes: o.alibiSlopes ? 'per seq·head' : undefined })}`, async () => {
      const packed = await (await flashAttnVarlenFunc(q, k, v, cuQ, cuK, 7, 9, o)).toFloat32();
      const qd = q.toFloat32Sync(), kd = k.toFloat32Sync(), vd = v.toFloat32Sync();
      for (let b = 0; b < seqQ.length; b++) {
        if (seqQ[b] === 0) continue;
        const sub = (t: Float32Array, from: number, n: number, h: number) => tensor(t.slice(from * h * D, (from + n) * h * D), [1, n, h, D]);
        const one = await (await flashAttnFunc(sub(qd, cuQ[b], seqQ[b], H), sub(kd, cuK[b], seqK[b], Hkv), sub(vd, cuK[b], seqK[b], Hkv), { ...o, ...(o.alibiSlopes ? { alibiSlopes: slopes.slice(b * H, (b + 1) * H) } : {}) })).toFloat32();
        const got = packed.slice(cuQ[b] * H * D, cuQ[b + 1] * H * D);
        const cmp = compare(got, one, { atol: 1e-6, rtol: 1e-6 });
        expect(cmp.ok, `sequence ${b}: ${cmp.message}`).toBe(true);
      }
    });
  }

  it('equals the math reference on a dense block-diagonal mask, on every eligible backend; lse is [H, totalQ]', async () => {
    const o: FlashAttnOptions = { causal: true };
    const blockOf = (cuX: Int32Array, i: number) => { for (let b = 0; b < cuX.length - 1; b++) if (i >= cuX[b] && i < cuX[b + 1]) return b; return -1; };
    const rule: ScoreRule = (_b, _h, i, j) => {
      const bq = blockOf(cuQ, i);
      if (bq < 0 || blockOf(cuK, j) !== bq) return { keep: false };
      const li = i - cuQ[bq], lj = j - cuK[bq];
      return { keep: lj <= li + seqK[bq] - seqQ[bq] };
    };
    const qb = tensor(q.toFloat32Sync(), [1, Tq, H, D]), kb = tensor(k.toFloat32Sync(), [1, Tk, Hkv, D]), vb = tensor(v.toFloat32Sync(), [1, Tk, Hkv, D]);
    const ref = reference(toBhsd(qb), toBhsd(kb), toBhsd(vb), denseMask(1, H, Tq, Tk, rule));
    const expected = bhsdToBshdArray(ref.out, 1, H, Tq, D);
    let ran = 0;
    for (const { backend, part } of cpuParts) {
      const cand = explainDispatch(toBhsd(qb), toBhsd(kb), toBhsd(vb), { enableGqa: true, attnMask: new StructuredBias(Tq, Tk, { causal: true, blocks: { qStart: cuQ.slice(0, 4), qLen: Int32Array.from(seqQ), kvStart: cuK.slice(0, 4), kvLen: Int32Array.from(seqK) } }) }).candidates.find((c) => c.backend === backend)!;
      if (!cand.eligible) {
        expect(cand.reasons.join(' ')).toMatch(/block-diagonal|not|disabled|unavailable/);
        continue;
      }
      ran++;
      const { out, lse } = await withBackends([backend], () => flashAttnVarlenFunc(q, k, v, cuQ, cuK, 7, 9, { ...o, returnLse: true }));
      const cmp = compare(await out.toFloat32(), expected, part.tolerance.float32);
      expect(cmp.ok, `${backend}: ${cmp.message}`).toBe(true);
      expect(lse.shape).toEqual([H, Tq]);
    }
    expect(ran).toBeGreaterThanOrEqual(2);
  });

  it('names bad cuSeqlens / maxSeqlen', async () => {
    await expect(flashAttnVarlenFunc(q, k, v, Int32Array.from([0, 3, 2, 9, 11]), cuK, 7, 9)).rejects.toThrow(/cuSeqlensQ\[2\]/);
    await expect(flashAttnVarlenFunc(q, k, v, cuQ, cuK, 6, 9)).rejects.toThrow(/maxSeqlenQ/);
    await expect(flashAttnVarlenFunc(q, k, v, cuQ, cuK.slice(0, 4), 7, 9)).rejects.toThrow(SdpaRangeError);
  });
});

describe('flashAttnWithKvcache', () => {
  const [B, Sq, H, Hkv, D, Lc] = [3, 2, 4, 2, 8, 16];
  const lens = Int32Array.from([5, 9, 0]);

  function setup(seed: number) {
    const r = rng(seed);
    const kCache = randTensor(r, [B, Lc, Hkv, D]), vCache = randTensor(r, [B, Lc, Hkv, D]);
    const kNew = randTensor(r, [B, Sq, Hkv, D]), vNew = randTensor(r, [B, Sq, Hkv, D]);
    const q = randTensor(r, [B, Sq, H, D]);
    return { kCache, vCache, kNew, vNew, q };
  }

  /** The unsplit result: per sequence, flashAttnFunc over cache[:len] ++ new. */
  async function expectedPerSequence(s: ReturnType<typeof setup>, kc0: Float32Array, vc0: Float32Array, o: FlashAttnOptions): Promise<Float32Array> {
    const out = new Float32Array(B * Sq * H * D);
    const kn = s.kNew.toFloat32Sync(), vn = s.vNew.toFloat32Sync(), qd = s.q.toFloat32Sync();
    const row = Hkv * D;
    for (let b = 0; b < B; b++) {
      const L = lens[b] + Sq;
      const cat = (c: Float32Array, n: Float32Array) => {
        const x = new Float32Array(L * row);
        x.set(c.subarray(b * Lc * row, b * Lc * row + lens[b] * row));
        x.set(n.subarray(b * Sq * row, (b + 1) * Sq * row), lens[b] * row);
        return tensor(x, [1, L, Hkv, D]);
      };
      const o1 = await (await flashAttnFunc(tensor(qd.slice(b * Sq * H * D, (b + 1) * Sq * H * D), [1, Sq, H, D]), cat(kc0, kn), cat(vc0, vn), o)).toFloat32();
      out.set(o1, b * Sq * H * D);
    }
    return out;
  }

  it('appends new k/v into the cache in place and equals the unsplit attention (ragged lengths)', async () => {
    const s = setup(31);
    const kc0 = s.kCache.toFloat32Sync(), vc0 = s.vCache.toFloat32Sync();
    const o: FlashAttnOptions = { causal: true };
    const got = await (await flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: lens, ...o })).toFloat32();
    const exp = await expectedPerSequence(s, kc0, vc0, o);
    expect(compare(got, exp, { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
    const kc = s.kCache.data as Float32Array, kn = s.kNew.toFloat32Sync();
    expect(kc[(1 * Lc + 9) * Hkv * D + 3]).toBe(kn[(1 * Sq + 0) * Hkv * D + 3]); // written at position lens[1]
  });

  it('paged KV (blockTable) equals the contiguous cache', async () => {
    const s = setup(32);
    const kc0 = s.kCache.toFloat32Sync(), vc0 = s.vCache.toFloat32Sync();
    const page = 4, pagesPer = Lc / page;
    // Scatter each sequence's pages over a shuffled pool.
    const order = [7, 2, 9, 0, 11, 4, 1, 10, 3, 8, 5, 6];
    const kPool = new Float32Array(B * Lc * Hkv * D), vPool = new Float32Array(B * Lc * Hkv * D);
    const tables = Array.from({ length: B }, (_, b) => Int32Array.from({ length: pagesPer }, (_, p) => order[b * pagesPer + p]));
    const pageElems = page * Hkv * D;
    for (let b = 0; b < B; b++) for (let p = 0; p < pagesPer; p++) {
      kPool.set(kc0.subarray((b * pagesPer + p) * pageElems, (b * pagesPer + p + 1) * pageElems), tables[b][p] * pageElems);
      vPool.set(vc0.subarray((b * pagesPer + p) * pageElems, (b * pagesPer + p + 1) * pageElems), tables[b][p] * pageElems);
    }
    const o: FlashAttnOptions = { causal: true, windowSize: [6, 0] };
    const got = await (await flashAttnWithKvcache(s.q, tensor(kPool, [B * pagesPer, page, Hkv, D]), tensor(vPool, [B * pagesPer, page, Hkv, D]), { k: s.kNew, v: s.vNew, cacheSeqlens: lens, blockTable: tables, ...o })).toFloat32();
    const exp = await expectedPerSequence(s, kc0, vc0, o);
    const cmp = compare(got, exp, { atol: 1e-6, rtol: 1e-6 });
    expect(cmp.ok, cmp.message).toBe(true);
  });

  it('equal lengths use plain views (FLASH eligible when available) and returnLse gives [B, H, Sq]', async () => {
    const s = setup(33);
    const r = await flashAttnWithKvcache(s.q, s.kCache, s.vCache, { cacheSeqlens: 10, causal: true, returnLse: true });
    expect(r.out.shape).toEqual([B, Sq, H, D]);
    expect(r.lse.shape).toEqual([B, H, Sq]);
  });

  it('names what is wrong', async () => {
    const s = setup(34);
    await expect(flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew })).rejects.toThrow(/opts.cacheSeqlens/);
    await expect(flashAttnWithKvcache(s.q, s.kCache, s.vCache, { k: s.kNew, v: s.vNew, cacheSeqlens: 15 })).rejects.toThrow(/cacheSeqlens\[0\].*capacity 16/);
    await expect(flashAttnWithKvcache(s.q, s.kCache, s.vCache, { cacheSeqlens: 3, blockTable: [Int32Array.from([0])] })).rejects.toThrow(/opts.blockTable/);
  });
});

describe('memoryEfficientAttention (xFormers style) vs dense masks', () => {
  const r = rng(41);
  const cases: { name: string; M: number; N: number; bias: () => InstanceType<typeof LowerTriangularMask | typeof LowerTriangularFromBottomRightMask | typeof LocalAttentionFromBottomRightMask> | BlockDiagonalMask; rule: ScoreRule }[] = [
    { name: 'LowerTriangularMask (top-left)', M: 9, N: 14, bias: () => new LowerTriangularMask(), rule: (_b, _h, i, j) => ({ keep: j <= i }) },
    { name: 'LowerTriangularFromBottomRightMask', M: 9, N: 14, bias: () => new LowerTriangularFromBottomRightMask(), rule: (_b, _h, i, j) => ({ keep: j <= i + 5 }) },
    { name: 'LocalAttentionFromBottomRightMask(3, 1)', M: 20, N: 26, bias: () => new LocalAttentionFromBottomRightMask(3, 1), rule: (_b, _h, i, j) => ({ keep: i - 3 <= j + 20 - 26 && j + 20 - 26 <= i + 1 }) },
    {
      name: 'BlockDiagonalMask.fromSeqlens([3, 5], [4, 2])', M: 8, N: 6, bias: () => BlockDiagonalMask.fromSeqlens([3, 5], [4, 2]),
      rule: (_b, _h, i, j) => ({ keep: (i < 3 && j < 4) || (i >= 3 && j >= 4) }),
    },
    {
      name: 'BlockDiagonalCausalMask.fromSeqlens([4, 3])', M: 7, N: 7, bias: () => BlockDiagonalCausalMask.fromSeqlens([4, 3]),
      rule: (_b, _h, i, j) => ({ keep: (i < 4 && j <= i) || (i >= 4 && j >= 4 && j <= i) }),
    },
    {
      name: 'BlockDiagonalMask.makeCausalFromBottomRight', M: 5, N: 9, bias: () => BlockDiagonalMask.fromSeqlens([2, 3], [4, 5]).makeCausalFromBottomRight(),
      rule: (_b, _h, i, j) => (i < 2 ? { keep: j < 4 && j <= i + 2 } : { keep: j >= 4 && j - 4 <= i - 2 + 2 }),
    },
  ];
  for (const c of cases) {
    const H = 2, K = 8;
    const q = randTensor(r, [1, c.M, H, K]), k = randTensor(r, [1, c.N, H, K]), v = randTensor(r, [1, c.N, H, K]);
    const ref = bhsdToBshdArray(reference(toBhsd(q), toBhsd(k), toBhsd(v), denseMask(1, H, c.M, c.N, c.rule)).out, 1, H, c.M, K);
    for (const { backend, part } of cpuParts) {
      const cand = explainMemoryEfficient(q, k, v, { attnBias: c.bias() }).candidates.find((x) => x.backend === backend)!;
      if (!cand.eligible) continue;
      it(`${c.name} on ${backend}`, async () => {
        const out = await withBackends([backend], () => memoryEfficientAttention(q, k, v, { attnBias: c.bias() }));
        const cmp = compare(await out.toFloat32(), ref, part.tolerance.float32);
        expect(cmp.ok, cmp.message).toBe(true);
      });
    }
  }
  it('takes a dense additive tensor bias, p and scale', async () => {
    const q = randTensor(r, [2, 4, 2, 8]), k = randTensor(r, [2, 6, 2, 8]), v = randTensor(r, [2, 6, 2, 8]);
    const bias = randTensor(r, [2, 2, 4, 6]);
    const got = await (await memoryEfficientAttention(q, k, v, { attnBias: bias, p: 0.2, scale: 0.4, seed: 9 })).toFloat32();
    const ref = bhsdToBshdArray(reference(toBhsd(q), toBhsd(k), toBhsd(v), bias, { dropoutP: 0.2, scale: 0.4, seed: 9 }).out, 2, 2, 4, 8);
    expect(compare(got, ref, { atol: 1e-5, rtol: 1e-5 }).ok).toBe(true);
  });
  it('block-diagonal needs batch 1', async () => {
    const q = randTensor(r, [2, 3, 1, 8]);
    await expect(memoryEfficientAttention(q, q, q, { attnBias: BlockDiagonalMask.fromSeqlens([1, 2]) })).rejects.toThrow(/q.shape\[0\]/);
  });
});

describe('backends that cannot apply a structured bias say so (never crash)', () => {
  const r = rng(51);
  const q = randTensor(r, [1, 8, 2, 8], 'float16'), k = randTensor(r, [1, 8, 2, 8], 'float16'), v = randTensor(r, [1, 8, 2, 8], 'float16');
  const variants: [string, FlashAttnOptions, RegExp][] = [
    ['window', { windowSize: [2, 2] }, /sliding window/],
    ['alibi', { alibiSlopes: new Float32Array([0.5, 0.25]) }, /ALiBi/],
    ['softcap', { softcap: 10 }, /softcap/],
    ['returnLse', { returnLse: true }, /log-sum-exp/],
  ];
  for (const [name, o, re] of variants) {
    it(`${name}: every part (cpu and webgpu) is eligible or gives a reason`, () => {
      for (const device of ['cpu', 'webgpu'] as const) {
        const qt = toBhsd(q), kt = toBhsd(k), vt = toBhsd(v);
        const bias = name === 'returnLse' ? undefined : new StructuredBias(8, 8, { ...(o.windowSize ? { window: o.windowSize } : {}), ...(o.alibiSlopes ? { alibiSlopes: o.alibiSlopes } : {}), ...(o.softcap ? { softcap: o.softcap } : {}) });
        const report = explainDispatch(qt, kt, vt, { device, ...(bias ? { attnMask: bias } : {}) });
        for (const c of report.candidates) {
          const part = registeredBackends().find((d) => d.name === c.backend)?.parts.find((p: BackendPart) => p.device === device);
          if (!part || name === 'returnLse') continue;
          const key = name === 'window' ? 'window' : name === 'alibi' ? 'alibi' : 'softcap';
          if (!part.caps[key] && c.enabled && part.availability().available) expect(c.reasons.join(' ')).toMatch(re);
        }
      }
      if (name === 'returnLse') {
        const rep = explainFlashAttn(q, k, v, o);
        for (const c of rep.candidates) {
          const part = registeredBackends().find((d) => d.name === c.backend)!.parts.find((p) => p.device === 'cpu');
          if (part && !part.caps.lse && part.availability().available) expect(c.reasons.join(' ')).toMatch(re);
        }
      }
    });
  }
  it('the flash (cpu) reason names the feature and the way out', () => {
    const rep = explainFlashAttn(q, k, v, { causal: true, softcap: 10 });
    const flash = rep.candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION);
    if (flash && flash.enabled && !flash.reasons.some((x) => /unavailable/.test(x))) {
      expect(flash.reasons.join(' ')).toMatch(/flash \(cpu\) does not apply softcap 10 without a mask buffer; use EFFICIENT_ATTENTION/);
    }
    expect(rep.selected?.backend).not.toBe(SDPBackend.FLASH_ATTENTION);
  });
  it('plain bottom-right causal stays a causal fact (FLASH serves it when its engine is available)', () => {
    const rep = explainFlashAttn(q, k, v, { causal: true });
    const flash = rep.candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!;
    if (flash.reasons.length === 0) expect(rep.selected?.backend).toBe(SDPBackend.FLASH_ATTENTION);
    else expect(flash.reasons.join(' ')).toMatch(/unavailable|disabled|withBackends/);
  });
});

describe('option errors name the argument', () => {
  const r = rng(61);
  const q = randTensor(r, [1, 4, 2, 8]);
  it.each([
    [{ windowSize: [1] }, /opts.windowSize/],
    [{ windowSize: [-2, 0] }, /opts.windowSize\[0\]/],
    [{ softcap: -1 }, /opts.softcap/],
    [{ alibiSlopes: [1, 2] }, /opts.alibiSlopes/],
    [{ alibiSlopes: new Float32Array(3) }, /alibiSlopes/],
    [{ window_size: [1, 1] }, /opts.window_size/],
  ])('%j', async (o, re) => {
    await expect(flashAttnFunc(q, q, q, o as FlashAttnOptions)).rejects.toThrow(re);
  });
  it('rejects a non-4-D q with its name', async () => {
    await expect(flashAttnFunc(tensor(new Float32Array(8), [1, 8]), q, q)).rejects.toThrow(SdpaTypeError);
  });
  it('sdpa accepts the structured bias too, with a matching size check', async () => {
    const qb = randTensor(r, [1, 2, 4, 8]);
    await expect(sdpa(qb, qb, qb, { attnMask: new StructuredBias(4, 5, { causal: true }) })).rejects.toThrow(/opts.attnMask/);
  });
});

export { Tensor, SdpaDispatchError };
