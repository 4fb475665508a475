/**
 * Strided addressing for the CPU kernels: the element offset of row 0 of every flat head, and the
 * row stride. With these, batch/head strides, views and mask broadcasting (stride 0) all read in
 * place, without copies.
 */
import { float32ArrayToHalfBits, halfBitsToFloat32Array } from '../dtype.js';
import type { AttentionParams } from '../dispatch/types.js';
import { Tensor, Tensor as TensorClass } from '../tensor.js';

/**
 * Offsets of `[...outer, 0, 0]` for every index of the outer dims (row-major over `outer`), given the
 * strides of those dims. Float64Array: offsets can pass 2^31.
 */
export function outerOffsets(outer: readonly number[], strides: readonly number[], base: number): Float64Array {
  let n = 1;
  for (const d of outer) n *= d;
  const out = new Float64Array(n);
  const idx = new Array<number>(outer.length).fill(0);
  let off = base;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let d = outer.length - 1; d >= 0; d--) {
      idx[d]++;
      off += strides[d];
      if (idx[d] < outer[d]) break;
      off -= strides[d] * outer[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** A tensor addressed as `[flatHead, row, col]`: per-head base offsets, a row stride and a column stride. */
export interface HeadView {
  readonly bases: Float64Array;
  readonly rowStride: number;
  readonly colStride: number;
}

/** View of q/k/v (`[...batch, H, rows, cols]`, or `[rows, cols]`) by flat head. */
export function headView(t: Tensor): HeadView {
  const r = t.shape.length;
  return {
    bases: outerOffsets(t.shape.slice(0, r - 2), t.strides.slice(0, r - 2), t.offset),
    rowStride: t.strides[r - 2],
    colStride: t.strides[r - 1],
  };
}

/** View of the mask by flat query head over the score layout (strides already broadcast). */
export function maskView(p: AttentionParams): HeadView | undefined {
  if (!p.mask) return undefined;
  const st = p.mask.strides;
  const n = st.length;
  return {
    bases: outerOffsets([...p.batchShape, p.hq], st.slice(0, n - 2), p.mask.tensor.offset),
    rowStride: st[n - 2],
    colStride: st[n - 1],
  };
}

/** Storage of a CPU tensor as numbers: float32 data as is, halves widened once (O(N), never S×L). */
export function numericStorage(t: Tensor): Float32Array | Uint8Array {
  if (!t.data) throw new Error(`numericStorage: ${t} is not on the CPU`);
  if (t.dtype === 'float32') return t.data as Float32Array;
  if (t.dtype === 'bool') return t.data as Uint8Array;
  return halfBitsToFloat32Array(t.data as Uint16Array, t.dtype);
}

/** For flat query head `bh`, the flat kv head serving it (GQA: h / group within the same batch). */
export function kvHeadOf(p: AttentionParams, bh: number): number {
  const b = Math.floor(bh / p.hq);
  const h = bh % p.hq;
  return b * p.hkv + Math.floor(h / p.gqaGroup);
}

/** Wraps float results (contiguous `[...batch, Hq, S, Ev]`) as the call's output tensor in its dtype. */
export function outputTensor(p: AttentionParams, values: Float32Array | Float64Array): Tensor {
  const shape = [...p.q.shape.slice(0, -1), p.ev];
  if (p.dtype === 'float32') return new TensorClass({ shape, dtype: 'float32', data: values instanceof Float32Array ? values : Float32Array.from(values) });
  return new TensorClass({ shape, dtype: p.dtype, data: float32ArrayToHalfBits(values, p.dtype) });
}
