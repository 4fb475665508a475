/**
 * Sliding windows on WebGPU: every kernel variant of FLASH, EFFICIENT and MATH (webgpu), each
 * pinned, against MATH's float64 reference on windowed calls. The kernels take a window as two
 * diagonals in the uniform block (`j <= i + diag`, `j >= i + ldiag`; src/webgpu/attention.ts
 * bandDiagonals): the tiled kernels skip key blocks below the first row's lower edge, the decode
 * kernel splits only the keys some row sees. The tensor-core kernels' lower edge is checked through
 * the subgroup-matrix emulation (test/webgpu-sgmat-emulated.test.ts). Cases: the cpu window cases
 * (test/helpers/window-cases.ts) plus longer ones where whole blocks and chunks fall outside the window.
 */
import { describe, expect, it } from 'vitest';
import { SDPBackend, StructuredBias, explainDispatch, lastDispatch, sdpa, withBackends } from '../src/index.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';
import { bandDiagonals } from '../src/webgpu/attention.js';
import { decodeKeyRange, decodeSplit } from '../src/webgpu/portable.js';
import { compare } from './helpers/compare.js';
import { testedVariants, variantVerdict } from './helpers/parts.js';
import { randTensor, rng } from './helpers/random.js';
import { windowCases, windowInputs, type WindowCase } from './helpers/window-cases.js';
import { setUpWebGpuTests } from './helpers/webgpu.js';

const { avail, required, skipReason } = await setUpWebGpuTests();
const r = rng(777);

const gpuCases: WindowCase[] = [
  ...windowCases,
  { name: 'prefill S=L=300 fp16, causal + window [40, 0] (key blocks below the edge skipped)', B: 1, Hq: 2, Hkv: 2, S: 300, L: 300, D: 64, dtype: 'float16', bias: { causal: true, window: [40, 0] } },
  { name: 'prefill S=200 L=260 bf16, window [33, 10], GQA 4:2', B: 1, Hq: 4, Hkv: 2, S: 200, L: 260, D: 64, dtype: 'bfloat16', bias: { window: [33, 10] } },
  { name: 'prefill S=L=150 f32, window [20, 20] upper-left', B: 1, Hq: 2, Hkv: 1, S: 150, L: 150, D: 32, dtype: 'float32', bias: { window: [20, 20], alignment: 'upper-left' } },
  { name: 'decode S=1 fp16, L=5000, window [1000, 0], GQA 4:1 (chunks over the window only)', B: 2, Hq: 4, Hkv: 1, S: 1, L: 5000, D: 64, dtype: 'float16', bias: { window: [1000, 0] } },
  { name: 'decode S=3 f32, L=3000, causal + window [700, 0], dropout 0.25', B: 1, Hq: 2, Hkv: 2, S: 3, L: 3000, D: 32, dtype: 'float32', bias: { causal: true, window: [700, 0] }, dropoutP: 0.25 },
];

describe('the band of a windowed call, as diagonals', () => {
  const p = (s: number, l: number, init: ConstructorParameters<typeof StructuredBias>[2]) => {
    const q = randTensor(r, [1, 1, s, 8]), k = randTensor(r, [1, 1, l, 8]);
    return buildParams('t', q, k, k, { attnMask: new StructuredBias(s, l, init) });
  };
  it('lower-right window [w, 0] with causal: upper diagonal L − S, lower L − S − w', () => {
    expect(bandDiagonals(p(10, 30, { causal: true, window: [5, 0] }))).toEqual({ upper: 20, lower: 15 });
  });
  it('the nearer upper edge wins: window right 3 inside causal; unbounded sides stay unset', () => {
    expect(bandDiagonals(p(10, 10, { causal: true, window: [Infinity, 3], alignment: 'upper-left' }))).toEqual({ upper: 0, lower: undefined });
    expect(bandDiagonals(p(10, 10, { window: [4, 3], alignment: 'upper-left' }))).toEqual({ upper: 3, lower: -4 });
    expect(bandDiagonals(p(10, 10, { window: [4, Infinity], alignment: 'upper-left' }))).toEqual({ upper: undefined, lower: -4 });
  });
  it('huge sides are clamped to [-(S + 1), L + 1] (they fit an i32 and mean the same)', () => {
    expect(bandDiagonals(p(4, 6, { window: [2 ** 40, 2 ** 40], alignment: 'upper-left' }))).toEqual({ upper: 7, lower: -5 });
  });
  it('a decode call over a long cache splits only the window: chunk 0 starts at its first key', () => {
    const q = p(1, 32768, { window: [4095, 0] });
    expect(decodeKeyRange(q)).toEqual({ begin: 32768 - 4096, end: 32768 });
    const split = decodeSplit(q);
    expect(split.kBegin).toBe(32768 - 4096);
    expect(split.chunks * split.chunkLen).toBeGreaterThanOrEqual(4096);
    expect((split.chunks - 1) * split.chunkLen).toBeLessThan(4096);
  });
});

describe('webgpu availability (window file)', () => {
  it(required ? 'a WebGPU adapter is present (SDPA_REQUIRE_WEBGPU=1)' : 'reports whether a WebGPU adapter is present', () => {
    if (required) expect(avail.available, skipReason).toBe(true);
  });
});

describe.skipIf(!avail.available)(`sliding windows on webgpu, every kernel variant pinned${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const variants = avail.available ? testedVariants().filter((v) => v.part.device === 'webgpu' && v.backend !== SDPBackend.ONNXRUNTIME) : [];
  for (const c of gpuCases) {
    const { q, k, v, opts } = windowInputs(r, c);
    const ref = mathReference(buildParams('t', q, k, v, opts));
    const report = explainDispatch(q, k, v, { ...opts, device: 'webgpu' });
    for (const tv of variants) {
      const cand = report.candidates.find((x) => x.backend === tv.backend)!;
      const verdict = variantVerdict(cand, tv.kernel);
      if (!verdict.eligible) {
        // Kernels this adapter or call cannot take say why (dtype, S > 16 for decode, a feature).
        it.skip(`${c.name}: ${tv.label} not run (${verdict.reasons.join('; ')})`, () => {});
        continue;
      }
      it(`${c.name}: ${tv.label}`, async () => {
        const out = await withBackends([tv.pin], () => sdpa(q, k, v, { ...opts, device: 'webgpu' }));
        expect(lastDispatch()?.ran?.kernel).toBe(tv.kernel);
        const cmp = compare(await out.toFloat32(), ref, tv.tolerance(c.dtype));
        expect(cmp.ok, cmp.message).toBe(true);
      }, 120_000);
    }
  }

  it('FLASH (halves), EFFICIENT and MATH on webgpu take a windowed call (they declined every window before)', () => {
    const q = randTensor(r, [1, 2, 64, 32], 'float16');
    const report = explainDispatch(q, q, q, { attnMask: new StructuredBias(64, 64, { causal: true, window: [8, 0] }), device: 'webgpu' });
    for (const b of [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]) {
      const cand = report.candidates.find((x) => x.backend === b)!;
      expect(cand.reasons, b).toEqual([]);
    }
  });

  it('structured biases webgpu does not apply are reasons that point to the cpu device', () => {
    const q = randTensor(r, [1, 2, 8, 16], 'float16');
    const sb = new StructuredBias(8, 8, { window: [2, 0], softcap: 30 });
    const cand = explainDispatch(q, q, q, { attnMask: sb, device: 'webgpu' }).candidates.find((x) => x.backend === SDPBackend.EFFICIENT_ATTENTION)!;
    expect(cand.reasons).toContain("efficient (webgpu) does not apply softcap 30 without a mask buffer; no webgpu backend applies ALiBi, soft-capping or block-diagonal biases; use device 'cpu', where EFFICIENT_ATTENTION applies them by rule and MATH materializes them");
  });
});
