/**
 * `sdpa(q, k, v, { verify })`: recompute some query rows of a call with the float64 reference
 * (MATH's row arithmetic, O(rows·L·(E+Ev)) work and O(L) scratch, never S×L) and compare them with
 * what the backend returned, within the tolerance that kernel promises. The first and last rows
 * (over the flat batch·Hq·S rows) are always among them; the others are spread by a fixed hash, so
 * a check is reproducible. PyTorch has none.
 */
import { referenceRows } from './builtins.js';
import type { AttentionParams, Tolerance } from './dispatch/types.js';
import { SdpaVerifyError, type VerifyMismatch } from './errors.js';
import { mix32 } from './rng.js';
import type { Tensor } from './tensor.js';

/** What a verified call records in `lastDispatch().verify`. */
export interface VerifyRecord {
  /** Flat query rows checked (over batch·Hq·S), ascending. */
  readonly rows: readonly number[];
  /** Of `batch·Hq·S` rows in all. */
  readonly totalRows: number;
  /** The tolerance of the kernel that ran, for the call's dtype. */
  readonly tolerance: Tolerance;
  /** Largest |got − expected| over the checked rows. */
  readonly maxAbsError: number;
  /** Largest |got − expected| / (atol + rtol·|expected|): below 1 passes. */
  readonly worstRatio: number;
  /** Multiply-adds of the reference rows: rows·L·(E+Ev). */
  readonly multiplyAdds: number;
  /** Wall time of the check (reference rows, reading the output back, comparing), in milliseconds. */
  readonly ms: number;
}

/** `n` distinct flat rows of `total`: the first, the last, and the rest spread by a fixed hash; ascending. */
export function sampleRows(total: number, n: number): number[] {
  if (n >= total) return Array.from({ length: total }, (_, i) => i);
  const rows = new Set<number>([0, total - 1]);
  for (let k = 0; rows.size < n; k++) rows.add(mix32(k ^ 0x9e3779b9) % total);
  return [...rows].slice(0, n).sort((a, b) => a - b);
}

/** Index into `shape` of flat element `flat` (row-major). */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

/**
 * Checks `out` of the call `p`, which `ran` produced with tolerance `tol`; throws
 * {@link SdpaVerifyError} at the worst element when a checked row disagrees.
 */
export async function verifyOutput(p: AttentionParams, out: Tensor, ran: { backend: string; device: string; kernel: string }, tol: Tolerance, nRows: number): Promise<VerifyRecord> {
  const t0 = performance.now();
  const totalRows = p.batch * p.hq * p.s;
  const rows = sampleRows(totalRows, nRows);
  const expected = referenceRows(p, rows);
  const got = await out.toFloat32();
  let maxAbsError = 0;
  let worstRatio = 0;
  let worst: VerifyMismatch | undefined;
  rows.forEach((row, n) => {
    for (let d = 0; d < p.ev; d++) {
      const a = got[row * p.ev + d];
      const b = expected[n * p.ev + d];
      const allowed = tol.atol + tol.rtol * Math.abs(b);
      // NaN must meet NaN (a NaN input row is NaN in PyTorch too); equal infinities agree.
      const error = a === b || (Number.isNaN(a) && Number.isNaN(b)) ? 0 : Number.isNaN(a) || Number.isNaN(b) ? Infinity : Math.abs(a - b);
      if (Number.isFinite(error) && error > maxAbsError) maxAbsError = error;
      const ratio = error / allowed;
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = { index: unravel(row * p.ev + d, out.shape), got: a, expected: b, error, allowed };
      }
    }
  });
  if (worst && worstRatio > 1) throw new SdpaVerifyError(ran, worst, tol, rows);
  return { rows, totalRows, tolerance: tol, maxAbsError, worstRatio, multiplyAdds: rows.length * p.l * (p.e + p.ev), ms: performance.now() - t0 };
}
