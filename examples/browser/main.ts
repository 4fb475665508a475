/**
 * The browser example: every registered backend on every device the page can reach, each alone
 * through `withBackends([b], ...)`, compared with the float64 MATH reference; ineligible ones show
 * the dispatcher's reason (FLASH on cpu is the WebAssembly kernel, the native addon being
 * Node-only; FLASH on webgpu needs `shader-f16`, which SwiftShader lacks). Results land on the page
 * and on `window.__sdpaResults` for test/browser.test.ts, which also drives the public API through
 * `window.__sdpa` (the conformance cases on the wasm kernel and on every webgpu kernel SwiftShader runs).
 */
import {
  capabilities,
  causalLowerRight,
  explainDispatch,
  lastDispatch,
  registeredBackends,
  sdpa,
  setDispatchLogger,
  tensor,
  withBackends,
  SDPBackend,
  type Device,
  type FloatDType,
  type SdpaOptions,
  type Tensor,
} from '../../src/index.js';

/** One backend on one case, as the test reads it. */
export interface BrowserResult {
  readonly case: string;
  readonly backend: string;
  readonly device: Device;
  readonly status: 'ok' | 'ineligible' | 'failed';
  readonly reason?: string;
  readonly maxAbsDiff?: number;
  /** atol + rtol·max|ref| of the backend part for the dtype (the bound the diff should stay within). */
  readonly bound?: number;
  readonly withinTolerance?: boolean;
  readonly ms?: number;
}

/** What the page exposes on `window.__sdpaResults`. */
export interface BrowserReport {
  done: boolean;
  error?: string;
  engines: { backend: string; device: Device; available: boolean; reason?: string }[];
  results: BrowserResult[];
  log: string[];
}

/** The public API the browser test calls into (page.evaluate). */
export interface PageApi {
  readonly tensor: typeof tensor;
  readonly sdpa: typeof sdpa;
  readonly withBackends: typeof withBackends;
  readonly causalLowerRight: typeof causalLowerRight;
  readonly lastDispatch: typeof lastDispatch;
  readonly capabilities: typeof capabilities;
  readonly explainDispatch: typeof explainDispatch;
}

declare global {
  interface Window {
    __sdpaResults?: BrowserReport;
    __sdpa?: PageApi;
  }
}

interface Case {
  readonly name: string;
  readonly device: Device;
  readonly dtype: FloatDType;
  readonly shape: readonly number[];
  readonly opts: SdpaOptions;
}

// Small shapes: SwiftShader runs WebGPU on the CPU, and the page must finish in seconds.
const CASES: readonly Case[] = [
  { name: 'cpu float32 causal [1, 2, 64, 32]', device: 'cpu', dtype: 'float32', shape: [1, 2, 64, 32], opts: { isCausal: true } },
  { name: 'cpu float16 [1, 2, 48, 16]', device: 'cpu', dtype: 'float16', shape: [1, 2, 48, 16], opts: {} },
  { name: 'webgpu float32 causal [1, 2, 32, 32]', device: 'webgpu', dtype: 'float32', shape: [1, 2, 32, 32], opts: { isCausal: true } },
  { name: 'webgpu float16 causal [1, 2, 32, 32]', device: 'webgpu', dtype: 'float16', shape: [1, 2, 32, 32], opts: { isCausal: true } },
];

function seeded(shape: readonly number[], dtype: FloatDType, seed: number): Tensor {
  let a = seed;
  const n = shape.reduce((x, y) => x * y, 1);
  const values = Float32Array.from({ length: n }, () => {
    a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0;
    return ((a >>> 0) / 4294967296 - 0.5) * 2;
  });
  return tensor.fromFloat32(values, [...shape], dtype);
}

const report: BrowserReport = { done: false, engines: [], results: [], log: [] };
window.__sdpaResults = report;
window.__sdpa = { tensor, sdpa, withBackends, causalLowerRight, lastDispatch, capabilities, explainDispatch };

const $ = (id: string) => document.getElementById(id)!;
function el(tag: string, text: string, cls?: string): HTMLElement {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function log(line: string): void {
  report.log.push(line);
  $('log').textContent += `${line}\n`;
}

function showRow(r: BrowserResult): void {
  const tr = document.createElement('tr');
  tr.append(el('td', r.case), el('td', r.backend), el('td', r.device));
  if (r.status === 'ok') {
    tr.append(
      el('td', r.withinTolerance ? 'ok' : 'over tolerance', r.withinTolerance ? 'ok' : 'bad'),
      el('td', r.maxAbsDiff!.toExponential(2), 'n'),
      el('td', `≤ ${r.bound!.toExponential(1)}`, 'n'),
      el('td', r.ms!.toFixed(1), 'n'),
    );
  } else {
    const td = el('td', `${r.status}: ${r.reason ?? ''}`, r.status === 'failed' ? 'bad' : 'skip');
    td.setAttribute('colspan', '4');
    tr.append(td);
  }
  $('results').querySelector('tbody')!.append(tr);
}

async function runCase(c: Case): Promise<void> {
  const [q, k, v] = [1, 2, 3].map((s) => seeded(c.shape, c.dtype, s));
  const opts: SdpaOptions = { ...c.opts, device: c.device };
  // The reference: MATH on the CPU computes in float64 and rounds once to the output dtype.
  const refOut = await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { ...c.opts, device: 'cpu' }));
  const ref = await refOut.toFloat32();
  const refMax = ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const explained = explainDispatch(q, k, v, opts);
  log(`explainDispatch — ${c.name}:\n${explained.toString()}\n`);
  for (const cand of explained.candidates) {
    const base = { case: c.name, backend: cand.backend, device: cand.device };
    let r: BrowserResult;
    if (!cand.eligible) {
      r = { ...base, status: 'ineligible', reason: cand.reasons.join('; ') };
    } else {
      try {
        const t0 = performance.now();
        const out = await withBackends([cand.backend], () => sdpa(q, k, v, opts));
        const got = await out.toFloat32();
        const ms = performance.now() - t0;
        out.dispose();
        let maxAbsDiff = 0;
        for (let i = 0; i < got.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[i] - ref[i]));
        if (got.some(Number.isNaN)) maxAbsDiff = Number.NaN;
        const tol = registeredBackends().find((d) => d.name === cand.backend)?.parts.find((p) => p.device === c.device)?.tolerance[c.dtype];
        // The reference itself is rounded to the dtype once: allow one rounding step on top.
        const bound = (tol?.atol ?? 0) + (tol?.rtol ?? 0) * refMax + (c.dtype === 'float32' ? 0 : refMax * 2 ** -10);
        r = { ...base, status: 'ok', maxAbsDiff, bound, withinTolerance: maxAbsDiff <= bound, ms };
      } catch (err) {
        r = { ...base, status: 'failed', reason: err instanceof Error ? err.message : String(err) };
      }
    }
    report.results.push(r);
    showRow(r);
  }
}

async function main(): Promise<void> {
  const caps = await capabilities();
  for (const b of caps.backends) {
    report.engines.push({ backend: b.backend, device: b.device, available: b.available, ...(b.available ? {} : { reason: b.reason }) });
    // For webgpu parts, the adapter's features say why FLASH may be ineligible (no shader-f16 on SwiftShader).
    const features = b.available && Array.isArray(b.details.features) ? ` — features: ${(b.details.features as string[]).join(', ')}` : '';
    $('engines').append(el('li', `${b.available ? '✓' : '✗'} ${b.backend} (${b.device})${b.available ? features : ` — ${b.reason}`}`, b.available ? 'ok' : 'bad'));
  }
  for (const c of CASES) await runCase(c);
  log('dispatch log of sdpa() with the default priority (cpu, then webgpu):');
  setDispatchLogger((line) => log(`  ${line}`));
  const [q, k, v] = [1, 2, 3].map((s) => seeded([1, 2, 32, 32], 'float32', s));
  await sdpa(q, k, v, { isCausal: true });
  if (caps.backends.some((b) => b.device === 'webgpu' && b.available)) (await sdpa(q, k, v, { isCausal: true, device: 'webgpu' })).dispose();
  setDispatchLogger(undefined);
}

main()
  .catch((err: unknown) => {
    report.error = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
    log(`error: ${report.error}`);
  })
  .finally(() => {
    report.done = true;
    $('status').textContent = report.error ? 'failed' : `done: ${report.results.filter((r) => r.status === 'ok').length} runs`;
  });
