/**
 * Merging partial attention results. Attention over keys A ∪ B equals the LSE-weighted average of
 * attention over A and over B: with m = max(lse1, lse2), w_i = exp(lse_i - m),
 * out = (w1·o1 + w2·o2) / (w1 + w2) and lse = m + log(w1 + w2). This is exact (up to rounding),
 * also with dropout, because each partial normaliser counts dropped weights; it is what split-KV
 * (src/workers/) and ring attention (docs/scaling.md) rely on.
 */
import { SdpaTypeError, describeValue } from '../errors.js';
import { Tensor, tensor } from '../tensor.js';

const FN = 'mergeAttentionStates';

function check(name: string, x: unknown): Tensor {
  if (!(x instanceof Tensor) || x.device !== 'cpu' || x.dtype === 'bool') {
    throw new SdpaTypeError(FN, { argument: name, expected: 'a float CPU Tensor', received: describeValue(x) });
  }
  return x;
}

/**
 * Merges two partial attention states over disjoint key sets: outputs `[..., H, S, Dv]` and their
 * log-sum-exps `[..., H, S]` (any float dtype; -Infinity = the part saw no key). Returns the merged
 * output (in o1's dtype) and lse (float32).
 * @example const { out, lse } = mergeAttentionStates(a.out, a.lse, b.out, b.lse);
 */
export function mergeAttentionStates(o1: Tensor, lse1: Tensor, o2: Tensor, lse2: Tensor): { out: Tensor; lse: Tensor } {
  const a = check('o1', o1), la = check('lse1', lse1), b = check('o2', o2), lb = check('lse2', lse2);
  const same = (x: readonly number[], y: readonly number[]): boolean => x.length === y.length && x.every((d, i) => d === y[i]);
  if (!same(a.shape, b.shape)) throw new SdpaTypeError(FN, { argument: 'o2.shape', expected: `[${a.shape.join(', ')}] like o1`, received: `[${b.shape.join(', ')}]` });
  const rowsShape = a.shape.slice(0, -1);
  if (!same(la.shape, rowsShape)) throw new SdpaTypeError(FN, { argument: 'lse1.shape', expected: `[${rowsShape.join(', ')}] (o1 without its last dim)`, received: `[${la.shape.join(', ')}]` });
  if (!same(lb.shape, rowsShape)) throw new SdpaTypeError(FN, { argument: 'lse2.shape', expected: `[${rowsShape.join(', ')}] (o1 without its last dim)`, received: `[${lb.shape.join(', ')}]` });
  const { out, lse } = mergeStates(a.toFloat32Sync(), la.toFloat32Sync(), b.toFloat32Sync(), lb.toFloat32Sync(), a.shape[a.shape.length - 1]);
  return { out: tensor.fromFloat32(Float32Array.from(out), [...a.shape], a.dtype), lse: tensor(Float32Array.from(lse), [...rowsShape], 'float32') };
}

/**
 * The merge on plain arrays (row-major `[rows, dv]` outputs, `[rows]` lses), float64 results.
 * Exported for split-KV, which merges many chunks by folding this over them.
 */
export function mergeStates(o1: ArrayLike<number>, l1: ArrayLike<number>, o2: ArrayLike<number>, l2: ArrayLike<number>, dv: number): { out: Float64Array; lse: Float64Array } {
  const rows = l1.length;
  const out = new Float64Array(rows * dv);
  const lse = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const m = Math.max(l1[r], l2[r]);
    if (m === -Infinity) {
      lse[r] = -Infinity; // neither part saw a key: zeros, as a fully masked row
      continue;
    }
    const w1 = Math.exp(l1[r] - m), w2 = Math.exp(l2[r] - m);
    const inv = 1 / (w1 + w2);
    for (let d = 0; d < dv; d++) out[r * dv + d] = (w1 * o1[r * dv + d] + w2 * o2[r * dv + d]) * inv;
    lse[r] = m + Math.log(w1 + w2);
  }
  return { out, lse };
}
