/**
 * Parity: every registered backend part against the float64 math reference over seeded random
 * problems (shapes, dtypes, masks, causal variants, GQA, Ev ≠ E, scales, dropout), each with the
 * part's own tolerance. A new backend is covered by registering it; no new test file needed.
 */
import { describe, expect, it } from 'vitest';
import { capabilities, causalLowerRight, explainDispatch, lastDispatch, sdpa, tensor, withBackends, type FloatDType, type SdpaOptions, type Tensor } from '../src/index.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';
import { compare } from './helpers/compare.js';
import { testedVariants, variantVerdict } from './helpers/parts.js';
import { randBoolMask, randInt, randTensor, rng } from './helpers/random.js';

interface Problem {
  id: string;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  opts: SdpaOptions;
}

const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];

function makeProblem(seed: number): Problem {
  const r = rng(seed);
  const dtype = DTYPES[seed % 3];
  const hkv = randInt(r, 1, 3);
  const gqa = r() < 0.3 ? randInt(r, 2, 3) : 1;
  const hq = hkv * gqa;
  const batch = r() < 0.2 ? [] : r() < 0.8 ? [randInt(r, 1, 2)] : [2, randInt(r, 1, 2)];
  const s = randInt(r, 1, 40);
  const l = r() < 0.3 ? s : randInt(r, 1, 70);
  const e = [8, 16, 32, 64, 3, 24][randInt(r, 0, 5)];
  const ev = r() < 0.2 ? [8, 16, 40][randInt(r, 0, 2)] : e;
  const opts: SdpaOptions = {};
  if (gqa > 1) opts.enableGqa = true;
  const maskRoll = r();
  if (maskRoll < 0.2) opts.attnMask = randBoolMask(r, [s, l]);
  else if (maskRoll < 0.3) opts.attnMask = randBoolMask(r, [...batch.map(() => 1), hq, 1, l]);
  else if (maskRoll < 0.4) opts.attnMask = randTensor(r, [...batch, 1, s, l], dtype === 'bfloat16' ? 'float32' : dtype);
  else if (maskRoll < 0.5) opts.attnMask = causalLowerRight(s, l);
  if (r() < 0.3 && !(opts.attnMask && 'kind' in opts.attnMask && opts.attnMask.kind === 'causal')) opts.isCausal = true;
  if (r() < 0.2) opts.scale = 0.05 + r();
  if (r() < 0.2) {
    opts.dropoutP = [0.1, 0.5][randInt(r, 0, 1)];
    opts.seed = randInt(r, 0, 2 ** 31);
  }
  const qs = [...batch, hq, s, e];
  const ks = [...batch, hkv, l, e];
  const vs = [...batch, hkv, l, ev];
  // 2-D-free: the leading dims vary; a 3-D input is [H, S, E] with no batch.
  return {
    id: `#${seed} ${dtype} q[${qs}] k[${ks}] v[${vs}] ${JSON.stringify({ ...opts, attnMask: opts.attnMask ? String(opts.attnMask) : undefined })}`,
    q: randTensor(r, qs, dtype),
    k: randTensor(r, ks, dtype),
    v: randTensor(r, vs, dtype),
    opts,
  };
}

const N = Number(process.env.SDPA_PARITY_CASES ?? 60);
/** Causal S = L calls without a mask, one per dtype: kernels specialised for them (e.g. ORT's GroupQueryAttention) always get some. */
function causalSquare(seed: number, dtype: FloatDType): Problem {
  const r = rng(seed);
  const s = randInt(r, 5, 40);
  const shape = [1, 2, s, 16];
  return { id: `#${seed} ${dtype} causal square q[${shape}]`, q: randTensor(r, shape, dtype), k: randTensor(r, shape, dtype), v: randTensor(r, shape, dtype), opts: { isCausal: true } };
}
const problems = [...Array.from({ length: N }, (_, i) => makeProblem(1000 + i)), ...DTYPES.map((d, i) => causalSquare(900 + i, d))];
await capabilities();

for (const tv of testedVariants()) {
  const { part, pin, label } = tv;
  const available = part.availability().available ? (tv.variant?.availability?.() ?? { available: true as const }) : part.availability();
  describe(`parity: ${label} vs math reference`, () => {
    if (!available.available) {
      it.skip(`${label} cannot run on this machine: ${available.reason}`, () => {});
      return;
    }
    let ran = 0;
    const skipped: string[] = [];
    for (const p of problems) {
      const opts = { ...p.opts, device: part.device };
      const cand = explainDispatch(p.q, p.k, p.v, opts).candidates.find((c) => c.backend === tv.backend)!;
      const verdict = variantVerdict(cand, tv.kernel);
      if (!verdict.eligible) {
        skipped.push(verdict.reasons[0]);
        continue;
      }
      ran++;
      it(p.id, async () => {
        const expected = mathReference(buildParams('test', p.q, p.k, p.v, opts));
        const out = await withBackends([pin], () => sdpa(p.q, p.k, p.v, opts));
        expect(lastDispatch()?.ran?.kernel).toBe(tv.kernel);
        const c = compare(await out.toFloat32(), expected, tv.tolerance(p.q.dtype as FloatDType));
        expect(c.ok, c.message).toBe(true);
      });
    }
    it(`ran ${ran} of ${problems.length} problems (the rest ineligible, reasons recorded)`, () => {
      expect(ran).toBeGreaterThan(0);
      for (const reason of skipped) expect(reason.length).toBeGreaterThan(10);
    });
  });
}

describe('dropout is the same on every backend', () => {
  it('drops the same elements for the same seed, different ones for another seed', async () => {
    const r = rng(5);
    const q = randTensor(r, [1, 2, 9, 8]);
    const k = randTensor(r, [1, 2, 11, 8]);
    const v = tensor.fromFloat32(new Float32Array(2 * 11 * 8).fill(1), [1, 2, 11, 8], 'float32');
    const a = mathReference(buildParams('t', q, k, v, { dropoutP: 0.5, seed: 42 }));
    const b = mathReference(buildParams('t', q, k, v, { dropoutP: 0.5, seed: 43 }));
    expect(compare(a, b, { atol: 1e-9, rtol: 0 }).ok).toBe(false);
    const plain = mathReference(buildParams('t', q, k, v, {}));
    // With v = 1 the output row is (sum of kept probabilities)/(1-p): not 1 once something is dropped.
    expect(Array.from(plain).every((x) => Math.abs(x - 1) < 1e-12)).toBe(true);
    expect(Array.from(a).some((x) => Math.abs(x - 1) > 1e-3)).toBe(true);
  });
});
