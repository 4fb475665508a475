/** Elementwise comparison with a backend's tolerance, reporting the worst element. */
import type { Tolerance } from '../../src/index.js';

/** Result of {@link compare}: ok, plus where it was worst. */
export interface Comparison {
  ok: boolean;
  maxAbsDiff: number;
  worstIndex: number;
  message: string;
}

/** |a - b| <= atol + rtol·|b| everywhere; NaN must match NaN. */
export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): Comparison {
  if (actual.length !== expected.length) {
    return { ok: false, maxAbsDiff: Infinity, worstIndex: -1, message: `length ${actual.length} != expected ${expected.length}` };
  }
  let maxAbsDiff = 0;
  let worstIndex = -1;
  let firstBad = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const b = expected[i];
    if (Number.isNaN(b) || Number.isNaN(a)) {
      if (Number.isNaN(a) !== Number.isNaN(b) && firstBad < 0) firstBad = i;
      continue;
    }
    const d = Math.abs(a - b);
    if (d > maxAbsDiff) {
      maxAbsDiff = d;
      worstIndex = i;
    }
    if (!(d <= tol.atol + tol.rtol * Math.abs(b)) && firstBad < 0) firstBad = i;
  }
  const ok = firstBad < 0;
  const message = ok
    ? `max |diff| ${maxAbsDiff.toExponential(2)}`
    : `element ${firstBad}: got ${actual[firstBad]}, expected ${expected[firstBad]} (atol ${tol.atol}, rtol ${tol.rtol}); max |diff| ${maxAbsDiff.toExponential(2)} at ${worstIndex}`;
  return { ok, maxAbsDiff, worstIndex, message };
}
