/**
 * Sliding windows on FLASH_ATTENTION (cpu) (backends/flash/cpu.ts windowSlice): every kernel
 * variant of the part (native prefill and decode kernels, the WebAssembly ones), each pinned, against
 * MATH's float64 reference on windowed calls — decode (S = 1: the window is a key range, read in
 * place), decode with S > 1 (a ragged lower edge), prefill, causal + window, upper-left, rows with no
 * visible key, a call's own mask beside a window — and the reasons when it declines.
 */
import { describe, expect, it } from 'vitest';
import { SDPBackend, StructuredBias, capabilities, explainDispatch, lastDispatch, sdpa, withBackends } from '../src/index.js';
import { WINDOW_CHUNK_MASK_BYTES, WINDOW_MASK_MAX_BYTES, windowChunks, windowSlice } from '../backends/flash/cpu.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams, type SdpaOptions } from '../src/params.js';
import { compare } from './helpers/compare.js';
import { testedVariants, variantVerdict } from './helpers/parts.js';
import { randBoolMask, randTensor, rng } from './helpers/random.js';
import { windowCases, windowInputs } from './helpers/window-cases.js';

await capabilities(); // registers the built-in backends and probes the wasm engine
const flashVariants = testedVariants().filter((v) => v.backend === SDPBackend.FLASH_ATTENTION && v.part.device === 'cpu');
const r = rng(4242);

describe('sliding windows on FLASH_ATTENTION (cpu), every kernel variant pinned', () => {
  for (const c of windowCases) {
    const { q, k, v, opts } = windowInputs(r, c);
    const ref = mathReference(buildParams('t', q, k, v, opts));
    const report = explainDispatch(q, k, v, { ...opts, device: 'cpu' });
    const cand = report.candidates.find((x) => x.backend === SDPBackend.FLASH_ATTENTION)!;
    for (const fv of flashVariants) {
      const verdict = variantVerdict(cand, fv.kernel);
      if (!verdict.eligible) {
        // Kernels this machine or shape cannot run say why (ISA, S > 16 for decode, engine missing).
        it.skip(`${c.name}: ${fv.kernel} not run here (${verdict.reasons.join('; ')})`, () => {});
        continue;
      }
      it(`${c.name}: ${fv.kernel}`, async () => {
        const out = await withBackends([fv.pin], () => sdpa(q, k, v, opts));
        expect(lastDispatch()?.ran?.kernel).toBe(fv.kernel);
        const cmp = compare(await out.toFloat32(), ref, fv.tolerance(c.dtype));
        expect(cmp.ok, cmp.message).toBe(true);
      });
    }
  }

  it('a decode step reads only its window of the cache: the slice starts at the window, no mask built', () => {
    const q = randTensor(r, [1, 2, 1, 8]), kv = randTensor(r, [1, 2, 4096, 8]);
    const p = buildParams('t', q, kv, kv, { attnMask: new StructuredBias(1, 4096, { window: [127, 0] }) });
    expect(windowSlice(p)).toEqual({ lo: 4096 - 128, len: 128, causalOffset: undefined, lowerOffset: undefined });
  });

  it('prefill keeps a lower-edge mask and the causal diagonal inside the slice', () => {
    const q = randTensor(r, [1, 1, 10, 8]);
    const p = buildParams('t', q, q, q, { attnMask: new StructuredBias(10, 10, { causal: true, window: [3, 0] }) });
    // Row i sees keys i-3 .. i: the slice is all keys, the diagonal j <= i, the lower edge j >= i - 3.
    expect(windowSlice(p)).toEqual({ lo: 0, len: 10, causalOffset: 0, lowerOffset: -3 });
  });

  it('declines, with the reason, a ragged window beside the call’s own mask, and EFFICIENT serves it', async () => {
    const q = randTensor(r, [1, 2, 8, 16]), k = randTensor(r, [1, 2, 40, 16]);
    const mask = randBoolMask(r, [1, 1, 8, 40], 0.8);
    const opts: SdpaOptions = { attnMask: new StructuredBias(8, 40, { window: [4, 0], mask }) };
    const cand = explainDispatch(q, k, k, { ...opts, device: 'cpu' }).candidates.find((x) => x.backend === SDPBackend.FLASH_ATTENTION)!;
    if (!cand.enabled) return; // no FLASH (cpu) engine at all here: nothing to decline
    expect(cand.reasons.join(' ')).toMatch(/flash \(cpu\) runs a sliding window whose lower edge cuts into the kept keys \(S=8 > 1 rows start at different keys\) as a mask of its own, and cannot combine it with the call's attention mask; EFFICIENT_ATTENTION applies both/);
    const out = await withBackends([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, k, opts));
    expect(lastDispatch()?.ran?.backend).toBe(SDPBackend.EFFICIENT_ATTENTION);
    expect(compare(await out.toFloat32(), mathReference(buildParams('t', q, k, k, opts)), { atol: 1e-5, rtol: 1e-5 }).ok).toBe(true);
  });

  it('with dropout (one chunk: its draws are keyed by row and key), declines a lower-edge mask above its limit, naming the sizes', () => {
    const S = 9000;
    const q = randTensor(r, [1, 1, S, 4]);
    const opts: SdpaOptions = { attnMask: new StructuredBias(S, S, { window: [16, 0] }), dropoutP: 0.1 };
    expect(S * S).toBeGreaterThan(WINDOW_MASK_MAX_BYTES);
    const cand = explainDispatch(q, q, q, { ...opts, device: 'cpu' }).candidates.find((x) => x.backend === SDPBackend.FLASH_ATTENTION)!;
    if (!cand.enabled) return;
    expect(cand.reasons.join(' ')).toContain(`flash (cpu) runs a sliding window with dropout in one piece (dropout's draws are keyed by row and key), its lower edge as an S×L bool mask of ${S}×${S} = 77 MiB here, above its 64 MiB limit`);
    // Without dropout the same call runs in row chunks, each with a small mask.
    const plain = explainDispatch(q, q, q, { attnMask: opts.attnMask, device: 'cpu' }).candidates.find((x) => x.backend === SDPBackend.FLASH_ATTENTION)!;
    expect(plain.reasons.join(' ')).not.toMatch(/sliding window/);
  });
});

describe('long windowed prefills run in row chunks, each reading only its keys', () => {
  // S = L = 2100 with a 100-key window: one mask would be 2100×2100 bytes (> 1 MiB), so chunks of
  // rows, each with its own key slice (the keys left of its windows are never read) and mask.
  const S = 2100;
  const q = randTensor(r, [1, 2, S, 8]), k = randTensor(r, [1, 2, S, 8]), v = randTensor(r, [1, 2, S, 8]);
  const opts: SdpaOptions = { attnMask: new StructuredBias(S, S, { causal: true, window: [100, 0] }) };
  const p = buildParams('t', q, k, v, opts);
  it('the plan: chunks of whole 64-row multiples, each slice starting at its first row’s window', () => {
    expect(S * S).toBeGreaterThan(WINDOW_CHUNK_MASK_BYTES);
    const chunks = windowChunks(p);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks[0][0]).toBe(0);
    expect(chunks[chunks.length - 1][1]).toBe(S);
    for (const [i0, i1] of chunks) {
      expect(i0 % 64).toBe(0);
      const w = windowSlice(p, i0, i1)!;
      expect(w.lo).toBe(Math.max(0, i0 - 100));
      expect(w.len).toBe(i1 - 1 - w.lo + 1);
      expect((i1 - i0) * w.len).toBeLessThanOrEqual(WINDOW_CHUNK_MASK_BYTES);
    }
  });
  const ref = mathReference(p);
  const report = explainDispatch(q, k, v, { ...opts, device: 'cpu' });
  const cand = report.candidates.find((x) => x.backend === SDPBackend.FLASH_ATTENTION)!;
  for (const fv of flashVariants) {
    const verdict = variantVerdict(cand, fv.kernel);
    if (!verdict.eligible) {
      it.skip(`${fv.kernel} not run here (${verdict.reasons.join('; ')})`, () => {});
      continue;
    }
    it(`${fv.kernel} equals MATH`, async () => {
      const out = await withBackends([fv.pin], () => sdpa(q, k, v, opts));
      expect(lastDispatch()?.ran?.kernel).toBe(fv.kernel);
      const cmp = compare(await out.toFloat32(), ref, fv.tolerance('float32'));
      expect(cmp.ok, cmp.message).toBe(true);
    });
  }
});
