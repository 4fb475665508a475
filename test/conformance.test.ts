/**
 * Every PyTorch 2.11 conformance case on every kernel variant of every registered backend part
 * that calls it eligible — each kernel pinned in turn and compared with its own tolerance. A
 * kernel that cannot run on this machine is skipped with its reason. Error cases must throw an
 * input error.
 */
import { describe, expect, it } from 'vitest';
import { explainDispatch, lastDispatch, sdpa, withBackends, SdpaTypeError, SdpaRangeError, capabilities } from '../src/index.js';
import { loadCases } from './helpers/cases.js';
import { compare, conditioningAtol } from './helpers/compare.js';
import { testedVariants, variantVerdict } from './helpers/parts.js';

const cases = loadCases();
await capabilities(); // probe lazy engines so eligibility below is final
const variants = testedVariants();

describe('conformance: error cases throw input errors', () => {
  for (const c of cases.filter((x) => x.error)) {
    it(c.name, async () => {
      const err = await sdpa(c.q, c.k, c.v, c.opts).catch((e: unknown) => e);
      expect(err instanceof SdpaTypeError || err instanceof SdpaRangeError, String(err)).toBe(true);
      expect(() => explainDispatch(c.q, c.k, c.v, c.opts)).toThrow(/expected/);
    });
  }
});

for (const tv of variants) {
  const { part, pin, label } = tv;
  const available = part.availability().available ? (tv.variant?.availability?.() ?? { available: true as const }) : part.availability();
  describe(`conformance on ${label}`, () => {
    if (!available.available) {
      it.skip(`${label} cannot run on this machine: ${available.reason}`, () => {});
      return;
    }
    let eligibleCount = 0;
    for (const c of cases.filter((x) => !x.error)) {
      const opts = { ...c.opts, device: part.device };
      const cand = explainDispatch(c.q, c.k, c.v, opts).candidates.find((x) => x.backend === tv.backend)!;
      const verdict = variantVerdict(cand, tv.kernel);
      if (!verdict.eligible) {
        it.skip(`${c.name} — not eligible: ${verdict.reasons.join('; ')}`, () => {});
        continue;
      }
      eligibleCount++;
      it(c.name, async () => {
        const out = await withBackends([pin], () => sdpa(c.q, c.k, c.v, opts));
        expect(lastDispatch()?.ran?.kernel).toBe(tv.kernel);
        expect(out.shape).toEqual(c.expectedShape);
        expect(out.dtype).toBe(c.q.dtype);
        const tol = tv.tolerance(c.q.dtype as 'float32');
        const e = c.q.shape[c.q.shape.length - 1];
        const cond = conditioningAtol(c.q, c.k, c.v, c.opts.scale ?? 1 / Math.sqrt(e));
        const r = compare(await out.toFloat32(), c.expected!, { ...tol, atol: tol.atol + cond });
        expect(r.ok, r.message).toBe(true);
      });
    }
    it('calls at least one case eligible', () => {
      expect(eligibleCount).toBeGreaterThan(0);
    });
  });
}
