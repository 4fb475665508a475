/**
 * What makes a tiny sdpa() call cheap (docs/performance-cpu.md, "Per-call overhead") keeps its
 * semantics: a tiny native call runs on the JS thread with the pooled plan (bit for bit the queued
 * result), a big one still leaves the event loop, memory budgets follow their variables per call
 * while the machine's total is read once, SDPA_LOG is honoured when it changes in-process, and the
 * report of a call is the one explainDispatch gives. No timing here: speed is in
 * scripts/probes/call-overhead.mjs.
 */
import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { explainDispatch, lastDispatch, sdpa, withBackends } from '../src/index.js';
import { NATIVE_INLINE_MAX_MACS, NATIVE_INLINE_POOL_MAX_BYTES, NATIVE_KERNELS, buildNativeArgs, nativeRunMode, nativeRunsInline } from '../backends/flash/cpu.js';
import { loadNative } from '../backends/flash/native.js';
import { buildParams } from '../src/params.js';
import { randTensor, rng } from './helpers/random.js';

const native = loadNative();
const r = rng(91);
// The probe's decode shape: B=1, Hq=32, Hkv=8, S=1, L=16, D=128 (2^17 multiply-adds, the bound).
const q = randTensor(r, [1, 32, 1, 128]);
const k = randTensor(r, [1, 8, 16, 128]);
const v = randTensor(r, [1, 8, 16, 128]);
const gqa = { enableGqa: true };

afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.SDPA_MATH_MAX_BYTES;
  delete process.env.SDPA_LOG;
});

describe.skipIf(!native.ok)(`native calls on the JS thread${native.ok ? '' : ` (skipped: ${native.error})`}`, () => {
  const addon = native.ok ? native.native : undefined!;
  const runnable = native.ok ? addon.kernels().filter((x) => x.missing.length === 0).map((x) => x.name) : [];

  it('the bounds are work estimates: the probe shape runs alone on the JS thread, a decode up to 32 MiB of K/V with the pool, bigger calls are queued', () => {
    const p = buildParams('sdpa', q, k, v, gqa);
    expect(p.batch * p.hq * p.s * p.l * (p.e + p.ev)).toBe(NATIVE_INLINE_MAX_MACS);
    expect(nativeRunMode(p)).toBe('caller');
    const kl = randTensor(r, [1, 8, 4096, 128]); // fp32: 2 · 8 · 4096 · 128 · 4 bytes = 32 MiB
    expect(2 * 8 * 4096 * 128 * 4).toBe(NATIVE_INLINE_POOL_MAX_BYTES);
    expect(nativeRunMode(buildParams('sdpa', q, kl, kl, gqa))).toBe('pool');
    expect(nativeRunsInline(buildParams('sdpa', q, kl, kl, gqa))).toBe(true);
    const kx = randTensor(r, [1, 8, 4100, 128]);
    expect(nativeRunMode(buildParams('sdpa', q, kx, kx, gqa))).toBe('queued');
    // Prefill shapes stay queued whatever their size.
    const q17 = randTensor(r, [1, 32, 17, 128]), k64 = randTensor(r, [1, 8, 64, 128]);
    expect(nativeRunMode(buildParams('sdpa', q17, k64, k64, gqa))).toBe('queued');
  });

  it('an inline call with the pool gives the queued call’s bits, and the pool’s workers joined it when it was free', async () => {
    const kl = randTensor(r, [1, 8, 1024, 128]);
    const p = buildParams('sdpa', q, kl, kl, gqa);
    const queued = new Float32Array(32 * 128), inline = new Float32Array(32 * 128);
    // Two threads whatever the machine has (the plan, hence the bits, depend on the count).
    await addon.flashAttention(buildNativeArgs(p, queued, 2));
    const run = addon.flashAttentionRun({ ...buildNativeArgs(p, inline, 2), inlinePool: true }, true);
    expect(run.pooled).toBe(true);
    expect(new Uint32Array(inline.buffer)).toEqual(new Uint32Array(queued.buffer));
    // Without inlinePool every job runs on this thread alone, with the same plan and bits.
    inline.fill(0);
    expect(addon.flashAttentionRun(buildNativeArgs(p, inline, 2), true).pooled).toBe(false);
    expect(new Uint32Array(inline.buffer)).toEqual(new Uint32Array(queued.buffer));
  });

  it('an inline run gives bit for bit the queued run, for every native kernel this CPU runs (split-KV plan of the pool)', async () => {
    const p = buildParams('sdpa', q, k, v, gqa);
    const ran: string[] = [];
    for (const { name } of NATIVE_KERNELS) {
      if (!runnable.includes(name)) continue;
      const queued = new Float32Array(32 * 128), inline = new Float32Array(32 * 128);
      const a = { ...buildNativeArgs(p, queued), kernel: name };
      try {
        await addon.flashAttention(a);
      } catch (e) {
        // A kernel whose shape rules refuse this call (e.g. an AMX one for fp32) says so; skip it.
        expect(String(e)).toMatch(/kernel/);
        continue;
      }
      const w = addon.flashAttentionRun({ ...buildNativeArgs(p, inline), kernel: name }, true);
      expect(w.workspaceBytes).toBe(addon.workspaceBytes(a));
      expect(new Uint32Array(inline.buffer)).toEqual(new Uint32Array(queued.buffer));
      ran.push(name);
    }
    expect(ran.length).toBeGreaterThan(0);
  });

  it('a tiny sdpa() call settles without leaving the JS thread; a big one lets the event loop run meanwhile', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    await withBackends(['FLASH_ATTENTION'], () => sdpa(q, k, v, gqa)).then(() => order.push('tiny'));
    expect(lastDispatch()?.backend).toBe('FLASH_ATTENTION');
    await new Promise((res) => setImmediate(res));
    expect(order).toEqual(['tiny', 'immediate']);

    // Big enough (4.3 G multiply-adds, tens of ms) that the kernel is still running when the loop
    // reaches its check phase even on a fast or loaded machine: at 256 × 1024 keys (~1.5 ms with
    // AVX-512) a descheduled JS thread came back after the kernel and 'big' settled first.
    const qb = randTensor(r, [1, 8, 1024, 64]), kb = randTensor(r, [1, 8, 4096, 64]);
    order.length = 0;
    setImmediate(() => order.push('immediate'));
    await withBackends(['FLASH_ATTENTION'], () => sdpa(qb, kb, kb)).then(() => order.push('big'));
    expect(lastDispatch()?.backend).toBe('FLASH_ATTENTION');
    expect(order).toEqual(['immediate', 'big']);
  });

  it('flashAttentionRun rejects bad arguments like flashAttention, naming the argument', () => {
    const p = buildParams('sdpa', q, k, v, gqa);
    const a = { ...buildNativeArgs(p, new Float32Array(3)) };
    expect(() => addon.flashAttentionRun(a, true)).toThrow(/out must hold bh\*s\*ev elements/);
    expect(() => addon.flashAttentionRun(a, false)).toThrow(/out must hold bh\*s\*ev elements/);
  });
});

describe('per-call state that the fast path still honours', () => {
  it('memory budgets follow SDPA_MATH_MAX_BYTES per call; the machine total is read once, not per call', async () => {
    explainDispatch(q, k, v, gqa);
    const spy = vi.spyOn(os, 'totalmem');
    const math = () => explainDispatch(q, k, v, gqa).candidates.find((c) => c.backend === 'MATH')!;
    expect(math().eligible).toBe(true);
    process.env.SDPA_MATH_MAX_BYTES = '1024';
    expect(math().reasons.join(' ')).toMatch(/budget 1\.0 KiB/);
    delete process.env.SDPA_MATH_MAX_BYTES;
    expect(math().eligible).toBe(true);
    await sdpa(q, k, v, gqa);
    expect(spy).not.toHaveBeenCalled();
  });

  it('SDPA_LOG=dispatch set and unset in-process turns the log line on and off', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    process.env.SDPA_LOG = 'dispatch';
    await sdpa(q, k, v, gqa);
    expect(err).toHaveBeenCalledTimes(1);
    expect(String(err.mock.calls[0]![0])).toMatch(/^\[sdpa\] /);
    delete process.env.SDPA_LOG;
    await sdpa(q, k, v, gqa);
    expect(err).toHaveBeenCalledTimes(1);
  });

  it('the report recorded for a call is the one explainDispatch gives (traces reused by selection included)', async () => {
    await sdpa(q, k, v, gqa);
    expect(lastDispatch()!.report.toString()).toBe(explainDispatch(q, k, v, gqa).toString());
    expect(lastDispatch()!.report.candidates).toEqual(explainDispatch(q, k, v, gqa).candidates);
    await withBackends(['MATH'], async () => {
      await sdpa(q, k, v, gqa);
      expect(lastDispatch()!.backend).toBe('MATH');
      expect(lastDispatch()!.report.toString()).toBe(explainDispatch(q, k, v, gqa).toString());
    });
  });
});
