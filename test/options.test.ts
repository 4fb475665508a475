/**
 * parseOptions checks the plain options (numbers, booleans, the device) without zod, for speed
 * (a decode step validates its options on every token). This holds that path to the schema's
 * verdicts: for any mix of plain options and edge values, the same parsed object or the same error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseOptions, parseOptionsWithSchema } from '../src/params.js';

const KEYS = ['dropoutP', 'isCausal', 'scale', 'enableGqa', 'seed', 'device', 'returnWeights'] as const;
const VALUES: unknown[] = [
  undefined, null, true, false, 0, -0, 0.5, 0.999999, 1, -1, 1.5, 3, 2 ** 32 - 1, 2 ** 32, -(2 ** 31), 1e-300,
  NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER, 'cpu', 'webgpu', 'gpu', '', '0', {}, [], 0n,
];

function outcome(f: () => unknown): { ok: true; value: unknown } | { ok: false; name: string; message: string } {
  try {
    return { ok: true, value: { ...(f() as object) } };
  } catch (e) {
    return { ok: false, name: (e as Error).name, message: (e as Error).message };
  }
}

describe('parseOptions: the plain-options path agrees with the zod schema', () => {
  it('on random mixes of plain options and edge values', () => {
    const opt = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 7 });
    fc.assert(
      fc.property(opt, (o) => {
        const fast = outcome(() => parseOptions('sdpa', o));
        const zod = outcome(() => parseOptionsWithSchema('sdpa', { ...o }));
        expect(fast).toEqual(zod);
      }),
      { numRuns: 8000, seed: 17 },
    );
  });

  it('drops options given as undefined and keeps the rest as given', () => {
    const p = parseOptions('sdpa', { enableGqa: true, scale: undefined, device: 'cpu', seed: 7 });
    expect({ ...p }).toEqual({ enableGqa: true, device: 'cpu', seed: 7 });
    expect('scale' in p).toBe(false);
    expect(Object.getPrototypeOf(p)).toBe(null);
  });

  it('reads each option once even when the object is handed on to zod', () => {
    let reads = 0;
    const o = { enableGqa: true, get isCausal() { reads++; return 'yes'; } };
    expect(() => parseOptions('sdpa', o)).toThrow(/opts\.isCausal/);
    expect(reads).toBe(1);
  });
});
