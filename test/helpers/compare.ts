/** Elementwise comparison with a backend's tolerance, reporting the worst element. */
import type { Tensor, Tolerance } from '../../src/index.js';

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

/** float32's unit roundoff ×2 (its machine epsilon): every kernel forms its logits in float32. */
const EPS_F32 = 2 ** -23;

/**
 * The absolute error a correct float32 kernel may make on a case because of the case's own
 * conditioning, added to a part's tolerance. A softmax weight's relative error equals the absolute
 * error of its logit, and a logit s formed in float32 is off by an ulp of |s| or so whatever the
 * summation order; an output is a convex combination of V, so it moves by up to about
 * eps·max|s|·(max V − min V). For ordinary cases (|s| ≲ 10, V of order 1) this is ~1e-6 and
 * changes nothing; for large_logits_stability (|s| ≈ 1000, V spread ≈ 100) it is ~1.5e-2, the
 * size of what float32 rounding of the logits may cost there (measured: 3.7e-3 on decode_avx2,
 * whose scores are within one ulp of exact). Only the logits near a row's maximum carry weight,
 * so |s| is the largest |row maximum| over the rows, computed in float64 over the query/key head
 * pairs the call attends (GQA: query head h reads key head h / (Hq/Hkv)); a mask is ignored, which
 * can only overstate it.
 */
export function conditioningAtol(q: Tensor, k: Tensor, v: Tensor, scale: number): number {
  const qs = q.shape;
  const ks = k.shape;
  const e = qs[qs.length - 1];
  const sq = qs.length >= 2 ? qs[qs.length - 2] : 1;
  const lk = ks.length >= 2 ? ks[ks.length - 2] : 1;
  const hq = qs.length >= 3 ? qs[qs.length - 3] : 1;
  const hkv = ks.length >= 3 ? ks[ks.length - 3] : 1;
  const qf = q.toFloat32Sync();
  const kf = k.toFloat32Sync();
  const qHeads = qf.length / (sq * e);
  const kHeads = kf.length / (lk * e);
  const kBatches = kHeads / hkv;
  let maxAbs = 0;
  for (let qh = 0; qh < qHeads; qh++) {
    const b = Math.floor(qh / hq);
    const kh = (kBatches === 1 ? 0 : b) * hkv + Math.floor((qh % hq) / Math.max(1, hq / hkv));
    for (let i = 0; i < sq; i++) {
      const qo = (qh * sq + i) * e;
      let rowMax = -Infinity;
      for (let j = 0; j < lk; j++) {
        const ko = (kh * lk + j) * e;
        let s = 0;
        for (let t = 0; t < e; t++) s += qf[qo + t] * kf[ko + t];
        rowMax = Math.max(rowMax, s * scale);
      }
      maxAbs = Math.max(maxAbs, Math.abs(rowMax));
    }
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v.toFloat32Sync()) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return hi >= lo ? EPS_F32 * maxAbs * (hi - lo) : 0;
}
