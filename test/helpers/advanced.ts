/** Helpers for the advanced API tests: layout copies, explicit dense masks and a naive reference. */
import { Tensor, buildParamsForTest, type FloatDType } from './advanced-imports.js';
import { mathReferenceWithLse } from '../../backends/math/cpu.js';

/** A contiguous copy of `t` with dims permuted (`perm[i]` = source dim). */
export function permuteCopy(t: Tensor, perm: number[]): Tensor {
  const view = new Tensor({ shape: perm.map((d) => t.shape[d]), dtype: t.dtype, data: t.data, strides: perm.map((d) => t.strides[d]), offset: t.offset });
  return new Tensor({ shape: view.shape, dtype: t.dtype, data: view.contiguousData().slice() });
}

/** `[B, S, H, D]` → contiguous `[B, H, S, D]`. */
export const toBhsd = (t: Tensor): Tensor => permuteCopy(t, [0, 2, 1, 3]);

/** Rule of one score: visible, plus an additive term (ALiBi). */
export type ScoreRule = (b: number, h: number, i: number, j: number) => { keep: boolean; add?: number };

/** Dense additive float32 mask `[B, H, S, L]` (-Infinity where hidden), built element by element. */
export function denseMask(B: number, H: number, S: number, L: number, rule: ScoreRule): Tensor {
  const m = new Float32Array(B * H * S * L);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < S; i++) for (let j = 0; j < L; j++) {
    const r = rule(b, h, i, j);
    m[((b * H + h) * S + i) * L + j] = r.keep ? r.add ?? 0 : -Infinity;
  }
  return new Tensor({ shape: [B, H, S, L], dtype: 'float32', data: m });
}

/** The math reference (float64) on contiguous `[B, H, S, D]` inputs with a dense mask. */
export function reference(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | undefined, opts: { scale?: number; dropoutP?: number; seed?: number } = {}): { out: Float64Array; lse: Float64Array } {
  const gqa = q.shape[1] !== k.shape[1];
  return mathReferenceWithLse(buildParamsForTest(q, k, v, { ...(mask ? { attnMask: mask } : {}), ...(gqa ? { enableGqa: true } : {}), ...opts }));
}

/** Reorders a `[B, H, S, D]` result to `[B, S, H, D]` (flat arrays). */
export function bhsdToBshdArray(x: ArrayLike<number>, B: number, H: number, S: number, D: number): Float64Array {
  const out = new Float64Array(B * S * H * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) out[((b * S + s) * H + h) * D + d] = x[((b * H + h) * S + s) * D + d];
  return out;
}

/**
 * A naive float64 attention with soft-capping (not expressible as a mask): per score
 * s = scale·q·k, softcap·tanh(s/softcap), + add, hidden → -Infinity; empty rows → zeros.
 */
export function naiveSoftcap(q: Float32Array, k: Float32Array, v: Float32Array, dims: { B: number; H: number; Hkv: number; S: number; L: number; E: number; Ev: number }, scale: number, softcap: number, rule: ScoreRule): Float64Array {
  const { B, H, Hkv, S, L, E, Ev } = dims;
  const out = new Float64Array(B * H * S * Ev);
  const sc = new Float64Array(L);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const g = Math.floor(h / (H / Hkv));
    for (let i = 0; i < S; i++) {
      let max = -Infinity;
      for (let j = 0; j < L; j++) {
        const r = rule(b, h, i, j);
        if (!r.keep) { sc[j] = -Infinity; continue; }
        let dot = 0;
        for (let d = 0; d < E; d++) dot += q[((b * H + h) * S + i) * E + d] * k[((b * Hkv + g) * L + j) * E + d];
        let s = dot * scale;
        s = softcap * Math.tanh(s / softcap);
        sc[j] = s + (r.add ?? 0);
        if (sc[j] > max) max = sc[j];
      }
      if (max === -Infinity) continue;
      let sum = 0;
      for (let j = 0; j < L; j++) { sc[j] = Math.exp(sc[j] - max); sum += sc[j]; }
      for (let j = 0; j < L; j++) for (let d = 0; d < Ev; d++) out[((b * H + h) * S + i) * Ev + d] += (sc[j] / sum) * v[((b * Hkv + g) * L + j) * Ev + d];
    }
  }
  return out;
}

export type { FloatDType };
