/**
 * Windowed calls shared by the sliding-window tests of every device (test/window.test.ts for the
 * cpu, test/webgpu-window.test.ts for webgpu): decode (S = 1, a key range), decode with S > 1 (a
 * ragged lower edge), prefill, causal + window, upper-left, a right-only window, rows with no
 * visible key, a mask beside the window, dropout.
 */
import { StructuredBias, type Tensor } from '../../src/index.js';
import type { SdpaOptions } from '../../src/params.js';
import { randBoolMask, randTensor } from './random.js';

/** One windowed call. */
export interface WindowCase {
  name: string;
  B: number;
  Hq: number;
  Hkv: number;
  S: number;
  L: number;
  D: number;
  dtype: 'float32' | 'float16' | 'bfloat16';
  bias: { causal?: boolean; window: [number, number]; alignment?: 'upper-left' | 'lower-right' };
  mask?: boolean;
  /** Dropout with the shared RNG: its pattern is keyed by the global query and key index. */
  dropoutP?: number;
}

/** The windowed calls. */
export const windowCases: WindowCase[] = [
  { name: 'decode S=1, window [64, 0] over L=1031 (a key range: no mask)', B: 1, Hq: 8, Hkv: 2, S: 1, L: 1031, D: 64, dtype: 'float32', bias: { window: [64, 0] } },
  { name: 'decode S=1 fp16, causal + window [300, 0], GQA 4:1', B: 2, Hq: 4, Hkv: 1, S: 1, L: 777, D: 32, dtype: 'float16', bias: { causal: true, window: [300, 0] } },
  { name: 'decode S=4 bf16, window [50, 0] (ragged lower edge)', B: 1, Hq: 4, Hkv: 2, S: 4, L: 517, D: 32, dtype: 'bfloat16', bias: { window: [50, 0] } },
  { name: 'decode S=16, causal + window [20, 3]', B: 1, Hq: 2, Hkv: 2, S: 16, L: 200, D: 16, dtype: 'float32', bias: { causal: true, window: [20, 3] } },
  { name: 'prefill S=L=70, window [5, 2]', B: 1, Hq: 2, Hkv: 2, S: 70, L: 70, D: 16, dtype: 'float32', bias: { window: [5, 2] } },
  { name: 'prefill S=40 L=90 upper-left, causal + window [7, Infinity]', B: 2, Hq: 2, Hkv: 1, S: 40, L: 90, D: 16, dtype: 'float32', bias: { causal: true, window: [7, Infinity], alignment: 'upper-left' } },
  { name: 'right-only window [Infinity, 4] (no lower edge)', B: 1, Hq: 2, Hkv: 2, S: 30, L: 30, D: 16, dtype: 'float16', bias: { window: [Infinity, 4], alignment: 'upper-left' } },
  { name: 'S=6 > L=4 lower-right: rows with no visible key give zeros', B: 1, Hq: 2, Hkv: 2, S: 6, L: 4, D: 16, dtype: 'float32', bias: { window: [1, 0] } },
  { name: 'decode S=1 with a bool mask beside the window (mask read from the slice)', B: 1, Hq: 4, Hkv: 2, S: 1, L: 300, D: 32, dtype: 'float32', bias: { window: [40, 0] }, mask: true },
  { name: 'decode S=1, window [64, 0], dropout 0.3 (the RNG sees the cache’s key indices)', B: 1, Hq: 4, Hkv: 2, S: 1, L: 700, D: 32, dtype: 'float32', bias: { window: [64, 0] }, dropoutP: 0.3 },
  { name: 'prefill S=L=50, causal + window [6, 0], dropout 0.2', B: 1, Hq: 2, Hkv: 2, S: 50, L: 50, D: 16, dtype: 'float32', bias: { causal: true, window: [6, 0] }, dropoutP: 0.2 },
];

/** Random inputs of a case (from `r`) and its options, the window as a StructuredBias. */
export function windowInputs(r: () => number, c: WindowCase): { q: Tensor; k: Tensor; v: Tensor; opts: SdpaOptions } {
  const q = randTensor(r, [c.B, c.Hq, c.S, c.D], c.dtype);
  const k = randTensor(r, [c.B, c.Hkv, c.L, c.D], c.dtype);
  const v = randTensor(r, [c.B, c.Hkv, c.L, c.D], c.dtype);
  const mask = c.mask ? randBoolMask(r, [c.B, 1, c.S, c.L], 0.8) : undefined;
  const sb = new StructuredBias(c.S, c.L, { ...(c.bias.causal ? { causal: true } : {}), window: c.bias.window, alignment: c.bias.alignment ?? 'lower-right', ...(mask ? { mask } : {}) });
  return { q, k, v, opts: { attnMask: sb, enableGqa: c.Hq !== c.Hkv, ...(c.dropoutP ? { dropoutP: c.dropoutP, seed: 1234 } : {}) } };
}

