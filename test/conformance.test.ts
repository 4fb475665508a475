/**
 * Every PyTorch 2.11 conformance case on every registered backend part that calls it eligible,
 * each compared with the backend's own tolerance. Error cases must throw an input error.
 */
import { describe, expect, it } from 'vitest';
import { explainDispatch, sdpa, withBackends, SdpaTypeError, SdpaRangeError, capabilities } from '../src/index.js';
import { loadCases } from './helpers/cases.js';
import { compare } from './helpers/compare.js';
import { testedParts } from './helpers/parts.js';

const cases = loadCases();
await capabilities(); // probe lazy engines so eligibility below is final
const parts = testedParts();

describe('conformance: error cases throw input errors', () => {
  for (const c of cases.filter((x) => x.error)) {
    it(c.name, async () => {
      const err = await sdpa(c.q, c.k, c.v, c.opts).catch((e: unknown) => e);
      expect(err instanceof SdpaTypeError || err instanceof SdpaRangeError, String(err)).toBe(true);
      expect(() => explainDispatch(c.q, c.k, c.v, c.opts)).toThrow(/expected/);
    });
  }
});

for (const { backend, part } of parts) {
  describe(`conformance on ${backend} (${part.device})`, () => {
    let eligibleCount = 0;
    for (const c of cases.filter((x) => !x.error)) {
      const opts = { ...c.opts, device: part.device };
      const cand = explainDispatch(c.q, c.k, c.v, opts).candidates.find((x) => x.backend === backend)!;
      if (!cand.eligible) {
        it.skip(`${c.name} — not eligible: ${cand.reasons.join('; ')}`, () => {});
        continue;
      }
      eligibleCount++;
      it(c.name, async () => {
        const out = await withBackends([backend], () => sdpa(c.q, c.k, c.v, opts));
        expect(out.shape).toEqual(c.expectedShape);
        expect(out.dtype).toBe(c.q.dtype);
        const r = compare(await out.toFloat32(), c.expected!, part.tolerance[c.q.dtype as 'float32']);
        expect(r.ok, r.message).toBe(true);
      });
    }
    it('calls at least one case eligible, or says why not', () => {
      const a = part.availability();
      if (!a.available) expect(a.reason.length).toBeGreaterThan(10);
      else expect(eligibleCount).toBeGreaterThan(0);
    });
  });
}
