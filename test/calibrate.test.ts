/**
 * Measured priority (issue 19): calibrate() times eligible backend kernels per shape class and
 * dispatch then prefers the fastest — across backends and across the kernels of a part — and says
 * so; tables save and load as JSON (also through SDPA_CALIBRATION); resetCalibration() returns to
 * the static order. The test doubles differ by an added timer of 25 ms, so which is faster is not
 * a matter of machine noise.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SdpaTypeError,
  calibrate,
  calibratedClasses,
  capabilities,
  explainDispatch,
  lastDispatch,
  loadCalibration,
  registerBackend,
  resetCalibration,
  saveCalibration,
  sdpa,
  shapeClassKey,
  shapeClassOf,
  unregisterBackend,
  withBackends,
  type CalibrationProgress,
} from '../src/index.js';
import { rereadCalibrationEnv } from '../src/dispatch/calibration.js';
import { rereadEnvSwitches } from '../src/dispatch/pins.js';
import { buildParams } from '../src/params.js';
import { randTensor, rng } from './helpers/random.js';
import { testBackend, type TestKernelSpec } from './helpers/test-backend.js';

await capabilities();
const r = rng(5);
const q = randTensor(r, [1, 2, 12, 16]);
const k = randTensor(r, [1, 2, 12, 16]);
const shape = { s: 12, l: 12, headDim: 16, heads: 2 };

/** FIRST (priority 600) with kernels slow_first, fast_second; SECOND (590) with one kernel. */
function pair() {
  const firstKernels: TestKernelSpec[] = [{ name: 'slow_first' }, { name: 'fast_second' }];
  const secondKernels: TestKernelSpec[] = [{ name: 'only' }];
  const first = testBackend('FIRST', 600, firstKernels);
  const second = testBackend('SECOND', 590, secondKernels);
  registerBackend(first.descriptor);
  registerBackend(second.descriptor);
  return { firstKernels, secondKernels, first, second };
}

afterEach(() => {
  resetCalibration();
  unregisterBackend('FIRST');
  unregisterBackend('SECOND');
});

describe('calibrate', () => {
  it('changes the selection when a backend is made slower, and the explanation says so', async () => {
    const { firstKernels } = pair();
    expect(explainDispatch(q, k, k).selected).toEqual({ backend: 'FIRST', device: 'cpu', kernel: 'slow_first' });
    firstKernels[0].delayMs = 25;
    firstKernels[1].delayMs = 25;
    const progress: CalibrationProgress[] = [];
    const res = await calibrate({ shapes: [shape], devices: ['cpu'], backends: ['FIRST', 'SECOND'], runs: 3, budgetMs: 2000, onProgress: (p) => progress.push(p) });
    expect(res.skipped).toEqual([]);
    expect(res.classes).toHaveLength(1);
    const cls = res.classes[0];
    expect(cls.key).toBe('cpu float32 D≤16 S≤16 L≤16 non-causal');
    expect(cls.key).toBe(shapeClassKey(shapeClassOf(buildParams('t', q, k, k, {}))));
    expect(cls.measured[0]).toMatchObject({ backend: 'SECOND', kernel: 'only' });
    expect(cls.measured.map((m) => m.backend).slice(1)).toEqual(['FIRST', 'FIRST']);
    expect(cls.measured.every((m) => m.runs >= 1 && m.runs <= 3)).toBe(true);
    expect(progress.map((p) => p.done)).toEqual([0, 1, 2, 3]);
    expect(progress[0].label).toBe('cpu float32 D≤16 S≤16 L≤16 non-causal: FIRST slow_first');

    const report = explainDispatch(q, k, k);
    expect(report.selected?.backend).toBe('SECOND');
    expect(report.ranking?.key).toBe(cls.key);
    const text = report.toString();
    expect(text.split('\n')[1]).toMatch(/^ {2}ranked by measurement: SECOND only \d[\d.]* ms < FIRST (slow_first|fast_second) \d[\d.]* ms \(class cpu float32 D≤16 S≤16 L≤16 non-causal, calibrated 20\d\d-\d\d-\d\dT/);
    expect(text).toMatch(/→ SECOND \(cpu\)\s+selected/);
    await sdpa(q, k, k);
    expect(lastDispatch()?.ran?.backend).toBe('SECOND');
    // Other classes keep the static order.
    const big = randTensor(r, [1, 2, 40, 16]);
    expect(explainDispatch(big, big, big).selected?.backend).toBe('FIRST');
    expect(explainDispatch(big, big, big).ranking).toBeUndefined();
    // A scope that sets its own order is not reordered.
    await withBackends(['FIRST', 'SECOND'], () => expect(explainDispatch(q, k, k).selected?.backend).toBe('FIRST'), { setPriority: true });
    resetCalibration();
    expect(explainDispatch(q, k, k).selected?.backend).toBe('FIRST');
  });

  it('orders the kernels inside a part by measurement too', async () => {
    const { firstKernels, secondKernels } = pair();
    firstKernels[0].delayMs = 25; // slow_first is now slow, fast_second not
    secondKernels[0].delayMs = 40;
    await calibrate({ shapes: [shape], devices: ['cpu'], backends: ['FIRST', 'SECOND'], runs: 2, budgetMs: 2000 });
    const report = explainDispatch(q, k, k);
    expect(report.selected).toEqual({ backend: 'FIRST', device: 'cpu', kernel: 'fast_second' });
    const first = report.candidates.find((c) => c.backend === 'FIRST')!;
    expect(first.kernels.map((x) => x.name)).toEqual(['fast_second', 'slow_first']);
    expect(report.toString()).toContain('ranked by measurement: FIRST fast_second');
  });

  it('saves and loads JSON (also through SDPA_CALIBRATION), and a table from elsewhere must have the format', async () => {
    const { firstKernels } = pair();
    firstKernels[0].delayMs = 25;
    firstKernels[1].delayMs = 25;
    await calibrate({ shapes: [shape], devices: ['cpu'], backends: ['FIRST', 'SECOND'], runs: 2, budgetMs: 2000 });
    const json = JSON.stringify(saveCalibration());
    const data = JSON.parse(json);
    expect(data.format).toBe('sdpa-dispatch-calibration');
    expect(typeof data.machine.cpu === 'string' || typeof data.machine.runtime === 'string').toBe(true);
    resetCalibration();
    expect(explainDispatch(q, k, k).selected?.backend).toBe('FIRST');
    expect(loadCalibration(JSON.parse(json)).classes).toBe(1);
    expect(explainDispatch(q, k, k).selected?.backend).toBe('SECOND');
    expect(calibratedClasses()).toHaveLength(1);

    resetCalibration();
    const dir = mkdtempSync(join(tmpdir(), 'sdpa-cal-'));
    try {
      writeFileSync(join(dir, 'cal.json'), json);
      process.env.SDPA_CALIBRATION = join(dir, 'cal.json');
      rereadEnvSwitches();
      rereadCalibrationEnv();
      expect(explainDispatch(q, k, k).selected?.backend).toBe('SECOND');
      resetCalibration();
      process.env.SDPA_CALIBRATION = join(dir, 'missing.json');
      rereadEnvSwitches();
      rereadCalibrationEnv();
      expect(explainDispatch(q, k, k).selected?.backend).toBe('FIRST');
      expect((await capabilities()).env.problems.some((p) => p.startsWith(`SDPA_CALIBRATION='${join(dir, 'missing.json')}' could not be loaded`))).toBe(true);
    } finally {
      delete process.env.SDPA_CALIBRATION;
      rereadEnvSwitches();
      rereadCalibrationEnv();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => loadCalibration({ format: 'something-else' })).toThrow(SdpaTypeError);
    expect(() => loadCalibration({ ...data, classes: [{ ...data.classes[0], measured: [{ backend: 'X' }] }] })).toThrow(/loadCalibration: data\.classes\[0\]\.measured\[0\]\.device/);
  });

  it('times the real backends, each eligible kernel once per class', async () => {
    const res = await calibrate({ shapes: [{ s: 16, l: 16, headDim: 16, heads: 1 }], devices: ['cpu'], runs: 1, budgetMs: 1000 });
    const cls = res.classes[0];
    const report = explainDispatch(randTensor(r, [1, 1, 16, 16]), randTensor(r, [1, 1, 16, 16]), randTensor(r, [1, 1, 16, 16]));
    const eligible = report.candidates.flatMap((c) => (c.reasons.some((_, i) => c.failed[i] !== 'checkKernels') ? [] : c.kernels.filter((x) => x.eligible).map((x) => `${c.backend}/${x.name}`)));
    expect(cls.measured.map((m) => `${m.backend}/${m.kernel}`).sort()).toEqual(eligible.sort());
    expect(report.ranking?.key).toBe(cls.key);
  });

  it('rejects bad options', async () => {
    await expect(calibrate({ budgetMs: 0 })).rejects.toThrow(/options\.budgetMs: expected milliseconds > 0, got 0/);
    await expect(calibrate({ shapes: [{ s: 0 }] })).rejects.toThrow(/options\.shapes\[0\]\.s: expected a positive integer/);
    await expect(calibrate({ budget: 1 } as never)).rejects.toThrow(/options\.budget: expected one of the options/);
  });
});
