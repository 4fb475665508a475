/**
 * Property-based parity (fast-check): random problems, every registered backend part that calls
 * the problem eligible against the float64 math reference with the part's own tolerance, and
 * NaN/Inf inputs that must never crash a kernel. At least 500 problems per run of `npm test`;
 * `npm run fuzz` runs 10,000+ with a reproducible seed (FUZZ_SEED, FUZZ_RUNS).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capabilities, explainDispatch, sdpa, tensor, withBackends, type FloatDType } from '../src/index.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';
import { compare } from './helpers/compare.js';
import { buildProblem, problemSpec, type ProblemSpec } from './helpers/problems.js';
import { testedParts } from './helpers/parts.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
const SEED = Number(process.env.FUZZ_SEED ?? 20261121);
await capabilities();
const parts = testedParts();
const counts = new Map<string, number>();

/** Runs one problem on every eligible part; throws (for fast-check to shrink) on a disagreement. */
async function checkProblem(spec: ProblemSpec): Promise<void> {
  const pr = buildProblem(spec);
  for (const { backend, part } of parts) {
    // WebGPU on CPU drivers is slow: property runs there use the smaller half of the space.
    if (part.device === 'webgpu' && spec.s * spec.l > 144) continue;
    const opts = { ...pr.opts, device: part.device };
    const cand = explainDispatch(pr.q, pr.k, pr.v, opts).candidates.find((c) => c.backend === backend)!;
    if (!cand.eligible) continue;
    const expected = mathReference(buildParams('property', pr.q, pr.k, pr.v, opts));
    const out = await withBackends([backend], () => sdpa(pr.q, pr.k, pr.v, opts));
    const got = await out.toFloat32();
    out.dispose();
    const c = compare(got, expected, part.tolerance[spec.dtype as FloatDType]);
    if (!c.ok) throw new Error(`${backend} (${part.device}) disagrees with math: ${c.message}`);
    const key = `${backend} (${part.device})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}

describe('property: every eligible backend equals the math reference', () => {
  it(`${RUNS} random problems (seed ${SEED})`, async () => {
    await fc.assert(fc.asyncProperty(problemSpec(), checkProblem), { numRuns: RUNS, seed: SEED, endOnFailure: false });
    const summary = [...counts].map(([k, n]) => `${k}: ${n}`).join(', ');
    console.log(`property runs per backend part — ${summary}`);
    for (const { backend, part } of parts) {
      if (part.availability().available) expect(counts.get(`${backend} (${part.device})`) ?? 0, `${backend} (${part.device}) ran no problem`).toBeGreaterThan(0);
    }
  }, 600_000);
});

describe('NaN and Inf never crash a kernel and follow the math formula', () => {
  // WGSL leaves NaN behaviour implementation-defined (min/max/exp may drop it), so the exact rule is
  // asserted on the CPU parts; the WebGPU parts are held to "no crash, right shape" below.
  it('a NaN in query row i makes output row i NaN on every CPU backend; other rows stay finite', async () => {
    const n = 2 * 6 * 16;
    const qv = new Float32Array(n).map((_, i) => Math.sin(i));
    qv[16 * 2 + 3] = NaN; // head 0, row 2
    const q = tensor(qv, [1, 2, 6, 16]);
    const k = tensor(new Float32Array(2 * 7 * 16).map((_, i) => Math.cos(i)), [1, 2, 7, 16]);
    const v = tensor(new Float32Array(2 * 7 * 16).map((_, i) => Math.sin(i * 0.3)), [1, 2, 7, 16]);
    for (const { backend, part } of parts.filter((x) => x.part.device === 'cpu')) {
      const cand = explainDispatch(q, k, v, { device: part.device }).candidates.find((c) => c.backend === backend)!;
      if (!cand.eligible) continue;
      const got = await (await withBackends([backend], () => sdpa(q, k, v, { device: part.device }))).toFloat32();
      for (let i = 0; i < 2 * 6; i++) {
        const row = got.subarray(i * 16, i * 16 + 16);
        expect(row.every((x) => (i === 2 ? Number.isNaN(x) : Number.isFinite(x))), `${backend} (${part.device}) row ${i}`).toBe(true);
      }
    }
  });

  it('random NaN/±Inf sprinkled into q, k, v and float masks: no throw, right shape, every backend', async () => {
    await fc.assert(
      fc.asyncProperty(problemSpec(12), fc.array(fc.tuple(fc.constantFrom('q', 'k', 'v'), fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity, 3e38)), { minLength: 1, maxLength: 4 }), async (spec, poison) => {
        const pr = buildProblem({ ...spec, dtype: 'float32' });
        for (const [name, idx, val] of poison) {
          const t = pr[name as 'q' | 'k' | 'v'];
          (t.data as Float32Array)[idx % t.size] = val;
        }
        for (const { backend, part } of parts) {
          if (part.device === 'webgpu' && spec.s * spec.l > 144) continue;
          const opts = { ...pr.opts, device: part.device };
          const cand = explainDispatch(pr.q, pr.k, pr.v, opts).candidates.find((c) => c.backend === backend)!;
          if (!cand.eligible) continue;
          const out = await withBackends([backend], () => sdpa(pr.q, pr.k, pr.v, opts));
          expect(out.shape).toEqual([...pr.q.shape.slice(0, -1), pr.v.shape[pr.v.shape.length - 1]]);
          await out.toFloat32();
          out.dispose();
        }
      }),
      { numRuns: 60, seed: SEED },
    );
  });
});
