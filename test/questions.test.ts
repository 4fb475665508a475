/**
 * The questions PyTorch users ask of dispatch (issue 19), through the public API: canUse (PyTorch's
 * can_use_flash_attention) agrees with explainDispatch for every registered part on every
 * conformance case; fallbacks are reported once per distinct (input class, preferred, chosen), also
 * by SDPA_WARN_FALLBACK=1; strict scopes throw the aggregate error instead of falling back.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BackendFaultError,
  SDPBackend,
  SdpaDispatchError,
  SdpaTypeError,
  StructuredBias,
  canUse,
  capabilities,
  explainDispatch,
  lastDispatch,
  onFallback,
  registerBackend,
  sdpa,
  setBackendEnabled,
  unregisterBackend,
  withBackends,
  type FallbackEvent,
} from '../src/index.js';
import { named } from '../src/dispatch/constraints.js';
import { rereadEnvSwitches } from '../src/dispatch/pins.js';
import { rereadFallbackEnv } from '../src/dispatch/fallback.js';
import { loadCases } from './helpers/cases.js';
import { testedParts, variantVerdict } from './helpers/parts.js';
import { randTensor, rng } from './helpers/random.js';
import { testBackend } from './helpers/test-backend.js';

await capabilities(); // probe lazy engines so eligibility is final
const cases = loadCases().filter((c) => !c.error);
const r = rng(19);
const q = randTensor(r, [1, 2, 8, 16]);
const k = randTensor(r, [1, 2, 8, 16]);
const v = randTensor(r, [1, 2, 8, 16]);

describe('canUse', () => {
  const devices = [...new Set(testedParts().map((t) => t.part.device))];
  for (const device of devices) {
    it(`matches explainDispatch for every registered part and kernel on every conformance case (${device})`, () => {
      let compared = 0;
      for (const c of cases) {
        const opts = { ...c.opts, device };
        const report = explainDispatch(c.q, c.k, c.v, opts);
        for (const cand of report.candidates) {
          const got = canUse(cand.backend, c.q, c.k, c.v, opts);
          expect({ ok: got.ok, reasons: got.reasons, kernel: got.kernel, kernels: got.kernels }, `${c.name} ${cand.backend}`).toEqual({ ok: cand.eligible, reasons: cand.reasons, kernel: cand.kernel, kernels: cand.kernels });
          expect(canUse({ backend: cand.backend, device }, c.q, c.k, c.v, c.opts).ok).toBe(cand.eligible);
          for (const kt of cand.kernels) {
            const verdict = variantVerdict(cand, kt.name);
            const kr = canUse({ backend: cand.backend, device, kernel: kt.name }, c.q, c.k, c.v, c.opts);
            expect({ ok: kr.ok, reasons: kr.reasons }, `${c.name} ${cand.backend} ${kt.name}`).toEqual({ ok: verdict.eligible, reasons: verdict.eligible ? [] : verdict.reasons });
            compared++;
          }
        }
      }
      expect(compared).toBeGreaterThan(cases.length);
    });
  }

  it('says why not in the report’s words, and prints like PyTorch’s debug=True', () => {
    const wide = randTensor(r, [1, 1, 4, 2048]);
    const res = canUse(SDPBackend.FLASH_ATTENTION, wide, wide, wide);
    expect(res.ok).toBe(false);
    expect(res.reasons).toEqual(explainDispatch(wide, wide, wide).candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!.reasons);
    expect(res.reasons[0]).toMatch(/^flash \(cpu\) requires head dim <= 1024, got 2048/);
    expect(res.toString()).toMatch(/^FLASH_ATTENTION \(cpu\): no\n {2}- flash \(cpu\) requires head dim/);
    expect(canUse(SDPBackend.MATH, q, k, v).toString()).toBe('MATH (cpu): yes — kernel float64_reference');
  });

  it('sees the calling context: switches and scopes', async () => {
    setBackendEnabled(SDPBackend.MATH, false);
    try {
      expect(canUse(SDPBackend.MATH, q, k, v).reasons).toEqual(['MATH is disabled (setBackendEnabled(SDPBackend.MATH, false)); re-enable it or use withBackends([...])']);
    } finally {
      setBackendEnabled(SDPBackend.MATH, true);
    }
    await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => {
      expect(canUse(SDPBackend.MATH, q, k, v).ok).toBe(false);
      expect(canUse(SDPBackend.EFFICIENT_ATTENTION, q, k, v).ok).toBe(true);
    });
  });

  it('rejects bad choices with clear errors', () => {
    expect(() => canUse('NOPE', q, k, v)).toThrow(SdpaTypeError);
    expect(() => canUse({ backend: SDPBackend.MATH, kernel: 'avx9' }, q, k, v)).toThrow(/backend\.kernel: expected a kernel of MATH \(cpu\): float64_reference, got "avx9"/);
    expect(() => canUse({ backend: SDPBackend.MATH, device: 'cpu' }, q, k, v, { device: 'webgpu' })).toThrow(/opts\.device: expected 'cpu'/);
    expect(() => canUse({ backend: SDPBackend.MATH, colour: 1 } as never, q, k, v)).toThrow(/backend\.colour/);
  });
});

/** A top-priority backend that refuses head dim 16 (with a reason) and a catcher below it. */
function pickyPair() {
  const refuse16 = named('checkNot16', (p) => (p.e === 16 ? `picky (cpu) refuses head dim 16, got E=${p.e}; test constraint` : undefined));
  const picky = testBackend('PICKY', 500, [{ name: 'picky_kernel' }], { constraints: [refuse16] });
  const catcher = testBackend('CATCHER', 490, [{ name: 'catch_kernel' }]);
  registerBackend(picky.descriptor);
  registerBackend(catcher.descriptor);
  return { picky, catcher };
}

describe('fallback warnings', () => {
  afterEach(() => {
    unregisterBackend('PICKY');
    unregisterBackend('CATCHER');
  });

  it('one event per distinct (input class, preferred, chosen) over 1,000 calls; every call with once: false', async () => {
    pickyPair();
    const events: FallbackEvent[] = [];
    let every = 0;
    const off = onFallback((e) => events.push(e));
    const offEvery = onFallback(() => every++, { once: false });
    try {
      const small = randTensor(r, [1, 1, 2, 8]); // E = 8: PICKY runs, no fallback
      for (let i = 0; i < 1000; i++) {
        // Decode-like: the key length grows, which must not make each call a new warning.
        const L = 1 + (i % 50);
        const kk = randTensor(r, [1, 2, L, 16]);
        await sdpa(q, kk, kk, i % 2 ? { isCausal: false } : { scale: 0.5 });
        if (i % 100 === 0) await sdpa(small, small, small);
      }
    } finally {
      off();
      offEvery();
    }
    expect(every).toBe(1000);
    // Two input classes (default scale, custom scale), one preferred and one chosen backend: two events.
    expect(events.map((e) => e.signature)).toEqual(['cpu, float32, E=16, mask none, causal no, dropout no, custom scale', 'cpu, float32, E=16, mask none, causal no, dropout no']);
    const e = events[1];
    expect(e.preferred).toEqual({ backend: 'PICKY', device: 'cpu' });
    expect(e.ran).toEqual({ backend: 'CATCHER', device: 'cpu', kernel: 'catch_kernel' });
    expect(e.reasons).toEqual(['picky (cpu) refuses head dim 16, got E=16; test constraint']);
    expect(e.skipped).toEqual([{ backend: 'PICKY', device: 'cpu', reasons: e.reasons }]);
    expect(e.inputs).toMatch(/^q \[1, 2, 8, 16\], k \[1, 2, \d+, 16\]/);
    expect(e.message).toMatch(/^\[sdpa\] fallback: CATCHER \(cpu\) kernel catch_kernel ran instead of the preferred PICKY \(cpu\) for cpu, float32, E=16.*: picky \(cpu\) refuses head dim 16/);
  });

  it('SDPA_WARN_FALLBACK=1 prints one line per distinct fallback, never per call', async () => {
    pickyPair();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    process.env.SDPA_WARN_FALLBACK = '1';
    rereadEnvSwitches();
    rereadFallbackEnv();
    try {
      for (let i = 0; i < 1000; i++) await sdpa(q, k, v, { isCausal: i % 3 === 0 });
      const lines = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.startsWith('[sdpa] fallback:'));
      expect(lines).toHaveLength(2); // causal and not causal
      expect(lines.every((l) => l.includes('instead of the preferred PICKY (cpu)'))).toBe(true);
    } finally {
      warn.mockRestore();
      delete process.env.SDPA_WARN_FALLBACK;
      rereadEnvSwitches();
      rereadFallbackEnv();
    }
  });

  it('a disabled backend is a choice, not a fallback; a fault of the preferred backend is one, with the fault as reason', async () => {
    const events: FallbackEvent[] = [];
    const off = onFallback((e) => events.push(e), { once: false });
    try {
      await withBackends([SDPBackend.MATH], () => sdpa(q, k, v));
      expect(events).toHaveLength(0);
      const faulty = testBackend('PICKY', 500, [{ name: 'faults', run: async () => { throw new BackendFaultError('picky: injected fault'); } }]);
      registerBackend(faulty.descriptor);
      await sdpa(q, k, v);
      expect(events).toHaveLength(1);
      expect(events[0].preferred.backend).toBe('PICKY');
      expect(events[0].reasons).toEqual(['faults faulted: picky: injected fault']);
    } finally {
      off();
    }
  });

  it('gives the preferred part’s own reasons, and its kernels’ only when no kernel could run', async () => {
    const events: FallbackEvent[] = [];
    const off = onFallback((e) => events.push(e), { once: false });
    try {
      const capped = new StructuredBias(8, 8, { softcap: 30 });
      await sdpa(q, k, v, { attnMask: capped });
      const flash = explainDispatch(q, k, v, { attnMask: capped }).candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!;
      if (!flash.enabled || flash.failed.includes('checkAvailable')) return; // the native addon is missing: another fallback
      expect(events[0].preferred.backend).toBe(SDPBackend.FLASH_ATTENTION);
      expect(events[0].reasons).toEqual(flash.reasons);
      // A pin that no kernel can honour: the kernels' reasons are the why.
      events.length = 0;
      await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'cpu', kernel: 'amx_bf16' }, SDPBackend.MATH], () => sdpa(q, k, v));
      expect(events[0].reasons.some((x) => x.startsWith('amx_bf16 '))).toBe(true);
    } finally {
      off();
    }
  });

  it('validates its arguments', () => {
    expect(() => onFallback(42 as never)).toThrow(SdpaTypeError);
    expect(() => onFallback(() => {}, { every: true } as never)).toThrow(/options\.every/);
  });
});

describe('strict mode', () => {
  afterEach(() => void unregisterBackend('PICKY'));
  // FLASH (cpu) has no soft-capping rule, EFFICIENT has: a non-strict scope falls back to EFFICIENT.
  const capped = new StructuredBias(8, 8, { softcap: 30 });

  it('throws the aggregate error with the reasons instead of falling back past the first listed backend', async () => {
    await withBackends([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, v, { attnMask: capped }));
    expect(lastDispatch()?.ran?.backend).toBe(SDPBackend.EFFICIENT_ATTENTION);
    const err = await withBackends([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, v, { attnMask: capped }), { strict: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaDispatchError);
    const e = err as SdpaDispatchError;
    expect(e.strict).toBe(SDPBackend.FLASH_ATTENTION);
    expect(e.message).toMatch(/^sdpa: strict mode \(withBackends\(\.\.\., \{ strict: true \}\)\) allows only FLASH_ATTENTION, the first backend listed, and it cannot run this call:/);
    expect(e.message).toContain('`FLASH_ATTENTION` (cpu) is not supported because:\n    flash (cpu) does not apply softcap 30 without a mask buffer');
    expect(e.message).toContain('`EFFICIENT_ATTENTION` (cpu) is not supported because:\n    EFFICIENT_ATTENTION would be a fallback past FLASH_ATTENTION, which the enclosing withBackends(..., { strict: true }) scope forbids');
    expect(e.report.selected).toBeNull();
  });

  it('runs the first listed backend when it can, and explain / canUse agree with it inside the scope', async () => {
    await withBackends([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], async () => {
      await sdpa(q, k, v);
      expect(lastDispatch()?.ran?.backend).toBe(SDPBackend.EFFICIENT_ATTENTION);
      expect(explainDispatch(q, k, v).selected?.backend).toBe(SDPBackend.EFFICIENT_ATTENTION);
      expect(canUse(SDPBackend.MATH, q, k, v).reasons).toEqual(['MATH would be a fallback past EFFICIENT_ATTENTION, which the enclosing withBackends(..., { strict: true }) scope forbids']);
    }, { strict: true });
    // An inner scope replaces the outer one (strictness included), like sdpa_kernel.
    await withBackends([SDPBackend.FLASH_ATTENTION], () => withBackends([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, v, { attnMask: capped })), { strict: true });
    expect(lastDispatch()?.ran?.backend).toBe(SDPBackend.EFFICIENT_ATTENTION);
  });

  it('a pinned kernel that cannot run, or a fault, is an error too (no fallback to another backend)', async () => {
    const pinned = await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'cpu', kernel: 'amx_bf16' }, SDPBackend.MATH], () => sdpa(q, k, v), { strict: true }).catch((e: unknown) => e);
    expect(pinned).toBeInstanceOf(SdpaDispatchError);
    expect((pinned as Error).message).toMatch(/amx_bf16 /);
    registerBackend(testBackend('PICKY', 500, [{ name: 'faults', run: async () => { throw new BackendFaultError('picky: injected fault'); } }]).descriptor);
    const faulted = await withBackends(['PICKY', SDPBackend.MATH], () => sdpa(q, k, v), { strict: true }).catch((e: unknown) => e);
    expect(faulted).toBeInstanceOf(SdpaDispatchError);
    expect((faulted as Error).message).toContain('faulted while running kernel faults: picky: injected fault');
  });

  it('keeps rejecting unknown option keys and non-boolean values', async () => {
    await expect(withBackends([SDPBackend.MATH], () => 1, { strickt: true } as never)).rejects.toThrow(/options\.strickt: expected one of the options setPriority, strict/);
    await expect(withBackends([SDPBackend.MATH], () => 1, { strict: 'yes' } as never)).rejects.toThrow(/options\.strict: expected a boolean/);
  });
});
