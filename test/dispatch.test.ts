/** Dispatch: reports, reason texts, toggles, scopes (restore, nesting, priority, concurrency), logging, fallback. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BackendFaultError,
  SDPBackend,
  SdpaDispatchError,
  explainDispatch,
  isBackendEnabled,
  lastDispatch,
  registerBackend,
  registeredBackends,
  sdpa,
  setBackendEnabled,
  setDispatchLogger,
  tensor,
  unregisterBackend,
  withBackends,
  causalLowerRight,
  type BackendDescriptor,
  type BackendPart,
} from '../src/index.js';
import { randTensor, rng } from './helpers/random.js';

const r = rng(7);
const q = randTensor(r, [1, 2, 8, 16]);
const k = randTensor(r, [1, 2, 12, 16]);
const v = randTensor(r, [1, 2, 12, 16]);
const ALL = Object.values(SDPBackend);

/** A cpu test-double part: MATH's caps, always available, no constraints; `over` replaces any of it. */
function testPart(label: string, over: Partial<BackendPart>): BackendPart {
  return {
    device: 'cpu',
    label,
    caps: { ...registeredBackends().find((d) => d.name === 'MATH')!.parts[0].caps },
    availability: () => ({ available: true }),
    constraints: [],
    run: async () => {
      throw new Error(`${label} is not run by this test`);
    },
    tolerance: { float32: { atol: 0, rtol: 0 }, float16: { atol: 0, rtol: 0 }, bfloat16: { atol: 0, rtol: 0 } },
    ...over,
  };
}

afterEach(() => {
  for (const b of ALL) setBackendEnabled(b, true);
  setDispatchLogger(undefined);
});

describe('explainDispatch', () => {
  it('lists every registered backend on the device with eligible and reasons, in priority order', () => {
    const rep = explainDispatch(q, k, v);
    const names = rep.candidates.map((c) => c.backend);
    for (const d of registeredBackends()) expect(names).toContain(d.name);
    for (const c of rep.candidates) {
      expect(c.device).toBe('cpu');
      expect(typeof c.eligible).toBe('boolean');
      expect(c.eligible).toBe(c.reasons.length === 0);
    }
    expect(rep.selected).not.toBeNull();
    const text = rep.toString();
    expect(text).toMatch(/^sdpa dispatch: q \[1, 2, 8, 16\]/);
    expect(text).toContain('→');
    expect(text).toContain('selected');
  });

  it('names a disabled backend with the switch that disabled it', () => {
    setBackendEnabled(SDPBackend.EFFICIENT_ATTENTION, false);
    expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(false);
    const c = explainDispatch(q, k, v).candidates.find((x) => x.backend === 'EFFICIENT_ATTENTION')!;
    expect(c.enabled).toBe(false);
    expect(c.reasons[0]).toBe('EFFICIENT_ATTENTION is disabled (setBackendEnabled(SDPBackend.EFFICIENT_ATTENTION, false)); re-enable it or use withBackends([...])');
  });

  it('refuses a 56 GiB score matrix on MATH with a reason instead of allocating it', async () => {
    const S = 30720;
    const big = (n: number) => tensor(new Float32Array(8 * n * 64), [1, 8, n, 64]);
    const [bq, bk, bv] = [big(S), big(S), big(S)];
    const c = explainDispatch(bq, bk, bv).candidates.find((x) => x.backend === 'MATH')!;
    expect(c.eligible).toBe(false);
    expect(c.reasons.join()).toMatch(/^math \(cpu\) materializes the batch·Hq·S·L float64 score matrix: 56\.3 GiB > budget [\d.]+ [GM]iB; use EFFICIENT_ATTENTION or FLASH_ATTENTION/);
    const err = await withBackends([SDPBackend.MATH], () => sdpa(bq, bk, bv)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaDispatchError);
  });
});

describe('withBackends', () => {
  it('allows only the listed backends inside and restores afterwards', async () => {
    await withBackends([SDPBackend.MATH], async () => {
      expect(isBackendEnabled(SDPBackend.MATH)).toBe(true);
      expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(false);
      const rep = explainDispatch(q, k, v);
      expect(rep.selected?.backend).toBe('MATH');
      const eff = rep.candidates.find((c) => c.backend === 'EFFICIENT_ATTENTION')!;
      expect(eff.reasons[0]).toBe('EFFICIENT_ATTENTION is not in the backends allowed by the enclosing withBackends() scope');
      await sdpa(q, k, v);
      expect(lastDispatch()?.ran?.backend).toBe('MATH');
    });
    expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(true);
  });

  it('restores the state when fn throws', async () => {
    await expect(withBackends([SDPBackend.MATH], () => {
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(true);
    await expect(withBackends([SDPBackend.MATH], async () => {
      await new Promise((res) => setTimeout(res, 1));
      throw new Error('later');
    })).rejects.toThrow('later');
    expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(true);
  });

  it('inner scopes replace the outer set; setBackendEnabled inside a scope ends with it', async () => {
    setBackendEnabled(SDPBackend.MATH, false);
    await withBackends([SDPBackend.EFFICIENT_ATTENTION], async () => {
      await withBackends([SDPBackend.MATH], () => {
        expect(isBackendEnabled(SDPBackend.MATH)).toBe(true); // replaced, not intersected
        expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(false);
      });
      setBackendEnabled(SDPBackend.EFFICIENT_ATTENTION, false);
      expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(false);
    });
    expect(isBackendEnabled(SDPBackend.EFFICIENT_ATTENTION)).toBe(true);
    expect(isBackendEnabled(SDPBackend.MATH)).toBe(false);
  });

  it('setPriority makes the list order the priority order', async () => {
    expect(explainDispatch(q, k, v).selected?.backend).not.toBe('MATH');
    const sel = await withBackends([SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION], () => explainDispatch(q, k, v).selected, { setPriority: true });
    expect(sel?.backend).toBe('MATH');
    const noPrio = await withBackends([SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION], () => explainDispatch(q, k, v).selected);
    expect(noPrio?.backend).toBe('EFFICIENT_ATTENTION');
  });

  it('200 interleaved async tasks each see only their own backends', async () => {
    const choices = [[SDPBackend.MATH], [SDPBackend.EFFICIENT_ATTENTION], [SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION]];
    const rr = rng(99);
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const mine = choices[i % 3];
        return withBackends(mine, async () => {
          const seen: boolean[] = [];
          for (let step = 0; step < 3; step++) {
            await new Promise((res) => setTimeout(res, Math.floor(rr() * 5)));
            seen.push(ALL.every((b) => isBackendEnabled(b) === mine.includes(b)));
            const out = await sdpa(q, k, v);
            seen.push(out.shape[2] === 8 && mine.includes(explainDispatch(q, k, v).selected!.backend));
          }
          return seen.every(Boolean);
        }, { setPriority: true });
      }),
    );
    expect(results.filter((x) => !x)).toHaveLength(0);
    expect(ALL.every((b) => isBackendEnabled(b))).toBe(true);
  });
});

describe('errors, logging and fallback', () => {
  it('throws one aggregate error listing the inputs and every backend when nothing is eligible', async () => {
    for (const b of ALL) setBackendEnabled(b, false);
    const err = (await sdpa(q, k, v, { attnMask: causalLowerRight(8, 12) }).catch((e: unknown) => e)) as SdpaDispatchError;
    expect(err).toBeInstanceOf(SdpaDispatchError);
    expect(err.message).toContain('sdpa: no backend can run this call:');
    expect(err.message).toContain('q           : [1, 2, 8, 16] float32 on cpu');
    // JavaScript values, not Python's None/False/tuples.
    expect(err.message).toContain('attnMask    : no mask tensor');
    expect(err.message).not.toMatch(/None|False|\(1, 2/);
    expect(err.message).toContain('causal      : lower-right');
    expect(err.message).toContain('`MATH` (cpu) is not supported because:\n    MATH is disabled');
    expect(err.report.selected).toBeNull();
  });

  it('logs one line per call through the logger hook and SDPA_LOG=dispatch', async () => {
    const lines: string[] = [];
    setDispatchLogger((line) => lines.push(line));
    for (const b of ALL) if (b !== SDPBackend.MATH) setBackendEnabled(b, false);
    await sdpa(q, k, v);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[sdpa\] MATH \(cpu\) kernel float64_reference for q \[1, 2, 8, 16\].* — skipped .*EFFICIENT_ATTENTION: EFFICIENT_ATTENTION is disabled/);
    setDispatchLogger(undefined);
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    process.env.SDPA_LOG = 'dispatch';
    try {
      await sdpa(q, k, v);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0][0])).toMatch(/^\[sdpa\] MATH \(cpu\)/);
    } finally {
      delete process.env.SDPA_LOG;
      spy.mockRestore();
    }
  });

  it('falls back to the next eligible backend when one faults, and records why', async () => {
    const original = registeredBackends().find((d) => d.name === SDPBackend.FLASH_ATTENTION);
    const faulty: BackendDescriptor = {
      name: SDPBackend.FLASH_ATTENTION,
      summary: 'test double that always faults',
      parts: [testPart('faulty (cpu)', {
        run: async () => {
          throw new BackendFaultError('injected fault: device went away');
        },
      })],
    };
    unregisterBackend(SDPBackend.FLASH_ATTENTION);
    registerBackend(faulty);
    try {
      expect(explainDispatch(q, k, v).selected?.backend).toBe('FLASH_ATTENTION');
      const out = await sdpa(q, k, v);
      expect(out.shape).toEqual([1, 2, 8, 16]);
      const rec = lastDispatch()!;
      expect(rec.ran?.backend).not.toBe('FLASH_ATTENTION');
      expect(rec.fallbacks).toEqual([{ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: 'default', reason: 'injected fault: device went away' }]);
    } finally {
      unregisterBackend(SDPBackend.FLASH_ATTENTION);
      if (original) registerBackend(original);
    }
  });

  it('explainDispatch lists "not probed yet" only when it is the only reason', async () => {
    const original = registeredBackends().find((d) => d.name === SDPBackend.FLASH_ATTENTION);
    let probed = false;
    const lazy: BackendDescriptor = {
      name: SDPBackend.FLASH_ATTENTION,
      summary: 'test double with a lazy engine that takes float16 only',
      parts: [testPart('lazy (cpu)', {
        caps: { ...registeredBackends().find((d) => d.name === 'MATH')!.parts[0].caps, dtypes: ['float16'] },
        availability: () => (probed ? { available: true } : { available: false, reason: 'lazy (cpu) has not been probed yet' }),
        init: async () => void (probed = true),
      })],
    };
    unregisterBackend(SDPBackend.FLASH_ATTENTION);
    registerBackend(lazy);
    try {
      const flash = () => explainDispatch(q, k, v).candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!;
      // Not probed, and float32: the dtype is the reason that stands whatever a probe finds.
      expect(flash().reasons).toEqual(['lazy (cpu) supports dtypes float16, got float32']);
      const h = [q, k, v].map((t) => tensor.fromFloat32(t.toFloat32Sync(), t.shape, 'float16'));
      // float16: nothing else stands against it, so "not probed yet" is the reason.
      expect(explainDispatch(h[0], h[1], h[2]).candidates.find((c) => c.backend === SDPBackend.FLASH_ATTENTION)!.reasons).toEqual(['lazy (cpu) has not been probed yet']);
    } finally {
      unregisterBackend(SDPBackend.FLASH_ATTENTION);
      if (original) registerBackend(original);
    }
  });

  it('refuses to register a name twice', () => {
    const d = registeredBackends()[0];
    expect(() => registerBackend(d)).toThrow(/already registered/);
  });

  it('EFFICIENT never allocates S×L', async () => {
    const rr = rng(3);
    const [bq, bk, bv] = [randTensor(rr, [1, 1, 1024, 8]), randTensor(rr, [1, 1, 1024, 8]), randTensor(rr, [1, 1, 1024, 8])];
    await withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(bq, bk, bv));
    const rec = lastDispatch()!;
    expect(rec.ran?.backend).toBe('EFFICIENT_ATTENTION');
    // output (1024·8 float64) + fixed tiles; the score matrix alone would be 8 MiB.
    expect(rec.allocatedBytes).toBeLessThan(1024 * 1024 * 8 / 16);
  });
});
