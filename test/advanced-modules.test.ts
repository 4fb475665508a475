/** MultiHeadAttention and FlashAttention modules. */
import { describe, expect, it } from 'vitest';
import { FlashAttention, KvCache, MultiHeadAttention, SdpaDispatchError, SDPBackend, StructuredBias, tensor, capabilities, registeredBackends, applyRotary } from '../src/index.js';
import { compare } from './helpers/compare.js';
import { randTensor, rng } from './helpers/random.js';
import { denseMask, reference } from './helpers/advanced.js';

await capabilities();

/** y = x·Wᵀ + b, the test's own projection. */
function lin(x: Float32Array, rows: number, inF: number, w: Float32Array, outF: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) {
    let s = b ? b[o] : 0;
    for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
    y[r * outF + o] = s;
  }
  return y;
}

describe('MultiHeadAttention', () => {
  it('equals projections + reference attention + output projection (GQA, causal)', async () => {
    const [B, S, dm, H, Hkv] = [2, 6, 16, 4, 2];
    const D = dm / H;
    const mha = new MultiHeadAttention({ dModel: dm, numHeads: H, numKvHeads: Hkv, seed: 5 });
    const x = randTensor(rng(1), [B, S, dm]);
    const got = await (await mha.forward(x, { isCausal: true })).toFloat32();
    const X = x.toFloat32Sync(), w = mha.weights;
    const Q = lin(X, B * S, dm, w.wq!, H * D, w.bq), K = lin(X, B * S, dm, w.wk!, Hkv * D, w.bk), V = lin(X, B * S, dm, w.wv!, Hkv * D, w.bv);
    const bhsd = (a: Float64Array, h: number) => {
      const o = new Float32Array(B * h * S * D);
      for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let hh = 0; hh < h; hh++) for (let d = 0; d < D; d++) o[((b * h + hh) * S + s) * D + d] = a[((b * S + s) * h + hh) * D + d];
      return tensor(o, [B, h, S, D]);
    };
    const att = reference(bhsd(Q, H), bhsd(K, Hkv), bhsd(V, Hkv), denseMask(B, H, S, S, (_b, _h, i, j) => ({ keep: j <= i }))).out;
    const merged = new Float32Array(B * S * H * D);
    for (let b = 0; b < B; b++) for (let hh = 0; hh < H; hh++) for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) merged[((b * S + s) * H + hh) * D + d] = att[((b * H + hh) * S + s) * D + d];
    const exp = lin(merged, B * S, H * D, w.wo, dm, w.bo);
    const c = compare(got, exp, { atol: 1e-5, rtol: 1e-4 });
    expect(c.ok, c.message).toBe(true);
  });

  it('decoding token by token with a KV cache (and RoPE) equals one causal forward over the whole sequence', async () => {
    const [B, S, dm] = [1, 7, 16];
    const mha = new MultiHeadAttention({ dModel: dm, numHeads: 4, numKvHeads: 1, rope: true, seed: 9 });
    const x = randTensor(rng(2), [B, S, dm]);
    const full = await (await mha.forward(x, { isCausal: true })).toFloat32();
    const cache = new KvCache();
    const X = x.toFloat32Sync();
    // Prefill 3 tokens, then one at a time.
    const pre = await (await mha.forward(tensor(X.slice(0, 3 * dm), [1, 3, dm]), { isCausal: true, kvCache: cache })).toFloat32();
    expect(compare(pre, full.slice(0, 3 * dm), { atol: 1e-5, rtol: 1e-4 }).ok).toBe(true);
    for (let t = 3; t < S; t++) {
      const y = await (await mha.forward(tensor(X.slice(t * dm, (t + 1) * dm), [1, 1, dm]), { isCausal: true, kvCache: cache })).toFloat32();
      const c = compare(y, full.slice(t * dm, (t + 1) * dm), { atol: 1e-5, rtol: 1e-4 });
      expect(c.ok, `token ${t}: ${c.message}`).toBe(true);
    }
    expect(cache.length).toBe(S);
  });

  it('packed qkv weights give the same result as the separate ones', async () => {
    const sep = new MultiHeadAttention({ dModel: 8, numHeads: 2, seed: 3 });
    const w = sep.weights;
    const wqkv = new Float32Array([...w.wq!, ...w.wk!, ...w.wv!]);
    const bqkv = new Float32Array([...w.bq!, ...w.bk!, ...w.bv!]);
    const packed = new MultiHeadAttention({ dModel: 8, numHeads: 2, packedQkv: true, weights: { wqkv, bqkv, wo: w.wo, bo: w.bo } });
    const x = randTensor(rng(4), [2, 5, 8]);
    const a = await (await sep.forward(x)).toFloat32(), b = await (await packed.forward(x)).toFloat32();
    expect(compare(a, b, { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
  });

  it('rotary embedding preserves norms and is the identity at position 0', () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const y = x.slice();
    applyRotary(y, 1, 1, 1, 8, 0);
    expect(Array.from(y)).toEqual(Array.from(x));
    applyRotary(y, 1, 1, 1, 8, 5);
    const n = (a: Float32Array) => Math.hypot(...a);
    expect(Math.abs(n(y) - n(x))).toBeLessThan(1e-5);
  });

  it('names bad options', () => {
    expect(() => new MultiHeadAttention({ dModel: 10, numHeads: 3 })).toThrow(/opts.numHeads/);
    expect(() => new MultiHeadAttention({ dModel: 8, numHeads: 4, numKvHeads: 3 })).toThrow(/opts.numKvHeads/);
    expect(() => new MultiHeadAttention({ dModel: 8, numHeads: 2, weights: { wo: new Float32Array(1) } })).toThrow(/opts.weights.wq/);
  });
});

describe('FlashAttention module', () => {
  const r = rng(7);
  const q = randTensor(r, [1, 2, 3, 8]), k = randTensor(r, [1, 2, 5, 8]), v = randTensor(r, [1, 2, 5, 8]);

  it('getMask(i, j) is the bottom-right causal keep-mask', () => {
    expect(Array.from(new FlashAttention().getMask(2, 4).toFloat32Sync())).toEqual([1, 1, 1, 0, 1, 1, 1, 1]);
  });

  it('causal forward with a key-padding mask equals the reference on the dense mask', async () => {
    const pad = tensor(Uint8Array.from([1, 1, 0, 1, 1]), [1, 5], 'bool');
    const got = await (await new FlashAttention({ causal: true }).forward(q, k, v, { mask: pad })).toFloat32();
    const exp = reference(q, k, v, denseMask(1, 2, 3, 5, (_b, _h, i, j) => ({ keep: j <= i + 2 && j !== 2 }))).out;
    expect(compare(got, exp, { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
  });

  it('attnBias: additive tensor, or a structured bias', async () => {
    const bias = randTensor(r, [1, 2, 3, 5]);
    const got = await (await new FlashAttention().forward(q, k, v, { attnBias: bias })).toFloat32();
    expect(compare(got, reference(q, k, v, bias).out, { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
    const sb = new StructuredBias(3, 5, { window: [1, 0] });
    const got2 = await (await new FlashAttention().forward(q, k, v, { attnBias: sb })).toFloat32();
    const exp2 = reference(q, k, v, denseMask(1, 2, 3, 5, (_b, _h, i, j) => ({ keep: j >= i + 2 - 1 && j <= i + 2 }))).out;
    expect(compare(got2, exp2, { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
  });

  it('flash: true runs only FLASH_ATTENTION, and explains (SdpaDispatchError with reasons) when it cannot', async () => {
    const flashPart = registeredBackends().find((d) => d.name === SDPBackend.FLASH_ATTENTION)!.parts.find((p) => p.device === 'cpu')!;
    const attend = new FlashAttention({ causal: true, flash: true });
    if (flashPart.availability().available) {
      const out = await attend.forward(q, k, v);
      expect(out.shape).toEqual([1, 2, 3, 8]);
    }
    // Soft-capping is beyond FLASH (cpu) whether or not its engine is built.
    const err = await new FlashAttention({ flash: true }).forward(q, k, v, { attnBias: new StructuredBias(3, 5, { causal: true, softcap: 5 }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaDispatchError);
    const report = (err as SdpaDispatchError).report;
    expect(report.candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!.reasons.join(' ')).toMatch(/softcap|unavailable/);
    expect(report.candidates.filter((c) => c.backend !== SDPBackend.FLASH_ATTENTION).every((c) => !c.enabled)).toBe(true);
    expect((err as Error).message).toMatch(/`FLASH_ATTENTION` \(cpu\) is not supported because:/);
  });
});
