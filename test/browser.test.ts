/**
 * The library in a real browser: serves examples/browser with Vite's JS API (the page imports the
 * library from source), opens it in Debian's headless Chromium through playwright-core, and checks
 * the page's results against the float64 reference. WebGPU comes from SwiftShader (no GPU needed;
 * it lacks shader-f16, so FLASH on webgpu is expected to be ineligible with a reason). FLASH on cpu
 * is the WebAssembly kernel there (one worker: the page is not cross-origin isolated); every
 * PyTorch conformance case runs on it through the public API in the page. Also renders a small
 * bench report and checks its SVG charts drew. Screenshots go to bench-results/ (gitignored).
 *
 * Skipped, with the reason, when /usr/bin/chromium is missing — unless CI is set, where it fails
 * (scripts/install-chromium.sh installs it).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import type { BrowserReport } from '../examples/browser/main.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, 'bench-results');
const hasChromium = existsSync(CHROMIUM);


/**
 * Headless Chromium flags that give `navigator.gpu` a SwiftShader adapter without a GPU (checked
 * with Chromium 156 on Debian 12): WebGPU on, Vulkan through SwiftShader, no GPU sandbox (which
 * cannot start in containers), and nothing that phones home.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

if (!hasChromium && process.env.CI) {
  it('browser tests need Chromium', () => {
    throw new Error(`${CHROMIUM} is missing and CI is set: run scripts/install-chromium.sh (as root) before the tests`);
  });
} else if (!hasChromium) {
  it.skip(`browser tests skipped: ${CHROMIUM} is missing (install it with scripts/install-chromium.sh)`, () => {});
} else {
  describe('browser example (Vite + headless Chromium)', () => {
    let server: ViteDevServer;
    let browser: Browser;
    let page: Page;
    let report: BrowserReport;

    beforeAll(async () => {
      const { createServer } = await import('vite');
      const { chromium } = await import('playwright-core');
      mkdirSync(ARTIFACTS, { recursive: true });
      server = await createServer({
        configFile: join(ROOT, 'examples/browser/vite.config.ts'),
        logLevel: 'error',
        // Port 0: parallel runs never collide; localhost is a secure context, which WebGPU requires.
        server: { port: 0, strictPort: false, host: '127.0.0.1', hmr: false },
      });
      await server.listen();
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const url = server.resolvedUrls?.local[0];
      if (!url) throw new Error('vite did not report a local URL');
      await page.goto(url);
      await page.waitForFunction(() => window.__sdpaResults?.done === true, undefined, { timeout: 100_000 });
      report = (await page.evaluate(() => window.__sdpaResults))!;
      await page.screenshot({ path: join(ARTIFACTS, 'browser-example.png'), fullPage: true });
      if (errors.length) throw new Error(`page errors: ${errors.join('\n')}`);
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    it('runs without errors and reports every engine', () => {
      expect(report.error).toBeUndefined();
      expect(report.engines.map((e) => `${e.backend} (${e.device})`)).toEqual(expect.arrayContaining(['MATH (cpu)', 'EFFICIENT_ATTENTION (cpu)']));
      expect(report.results.length).toBeGreaterThan(0);
    });

    it('FLASH (cpu) is the WebAssembly kernel; the native kernels say they need Node.js', async () => {
      const flash = report.engines.find((e) => e.backend === 'FLASH_ATTENTION' && e.device === 'cpu');
      expect(flash?.available).toBe(true);
      const caps = await page.evaluate(async () => {
        const c = (await window.__sdpa!.capabilities()).backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu')!;
        return { wasm: c.details.wasm, kernels: c.kernels.map((k) => ({ name: k.name, available: k.available, reason: k.reason })) };
      });
      // Not cross-origin isolated: SIMD yes, threads no (and the reason says how to get them).
      expect(caps.wasm).toMatchObject({ simd128: true, threads: false, threadsReason: expect.stringMatching(/cross-origin isolated/) });
      for (const k of caps.kernels.filter((x) => !x.name.startsWith('wasm_'))) expect(k.reason, k.name).toMatch(/needs the native addon: the native flash kernel needs Node\.js/);
      expect(caps.kernels.some((k) => k.name.startsWith('wasm_') && k.available)).toBe(true);
    });

    it('every PyTorch conformance case passes on the wasm kernel through the public API in the page', async () => {
      const raw = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sdpa_cases.json'), 'utf8')) as { cases: { error?: string }[] };
      const cases = raw.cases.filter((c) => !c.error);
      const tol = { float32: { atol: 2e-4, rtol: 1e-3 }, float16: { atol: 1e-3, rtol: 2e-3 }, bfloat16: { atol: 1e-2, rtol: 1.6e-2 } };
      const results = await page.evaluate(
        async ({ cases, tol }) => {
          type Raw = { shape: number[]; dtype?: string; data: (number | string | boolean)[] };
          type Case = { name: string; q: Raw; k: Raw; v: Raw; is_causal: boolean; causal_variant?: string; attn_mask?: Raw; scale?: number; enable_gqa?: boolean; expected: Raw };
          const api = window.__sdpa!;
          const num = (x: number | string | boolean): number => (typeof x === 'boolean' ? (x ? 1 : 0) : typeof x === 'string' ? (x === '-inf' ? -Infinity : x === 'inf' ? Infinity : Number(x)) : x);
          const t = (r: Raw) => api.tensor.fromFloat32(Float32Array.from(r.data, num), r.shape, (r.dtype ?? 'float32') as 'float32');
          const kernels = (await api.capabilities()).backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu')!.kernels.filter((k) => k.name.startsWith('wasm_') && k.available).map((k) => k.name);
          const out: { name: string; kernel: string; ran?: string; ok: boolean; worst: number; error?: string }[] = [];
          for (const kernel of kernels) {
            for (const c of cases as Case[]) {
              const q = t(c.q), k = t(c.k), v = t(c.v);
              const opts: Record<string, unknown> = {};
              if (c.is_causal) opts.isCausal = true;
              if (c.causal_variant === 'lower_right') opts.attnMask = api.causalLowerRight(q.shape[q.shape.length - 2], k.shape[k.shape.length - 2]);
              if (c.attn_mask) opts.attnMask = t(c.attn_mask);
              if (c.scale !== undefined) opts.scale = c.scale;
              if (c.enable_gqa) opts.enableGqa = true;
              try {
                const res = await api.withBackends([{ backend: 'FLASH_ATTENTION', device: 'cpu', kernel }], () => api.sdpa(q, k, v, opts));
                const got = await res.toFloat32();
                const exp = Float64Array.from(c.expected.data, num);
                const tl = tol[q.dtype as keyof typeof tol];
                let worst = 0;
                for (let i = 0; i < exp.length; i++) {
                  const d = Math.abs(got[i] - exp[i]);
                  worst = Math.max(worst, Number.isNaN(d) ? (Number.isNaN(got[i]) && Number.isNaN(exp[i]) ? 0 : Infinity) : d / (tl.atol + tl.rtol * Math.abs(exp[i])));
                }
                out.push({ name: c.name, kernel, ran: api.lastDispatch()?.ran?.kernel, ok: worst <= 1 && got.length === exp.length, worst });
              } catch (e) {
                out.push({ name: c.name, kernel, ok: false, worst: Infinity, error: String(e) });
              }
            }
          }
          return out;
        },
        { cases, tol },
      );
      expect(results.length).toBeGreaterThanOrEqual(cases.length);
      for (const r of results) {
        expect(r.error, `${r.kernel} ${r.name}`).toBeUndefined();
        expect(r.ran, r.name).toBe(r.kernel);
        expect(r.ok, `${r.kernel} ${r.name}: worst ${r.worst} of tolerance`).toBe(true);
      }
    });

    it('ONNXRUNTIME (cpu) runs onnxruntime-web in a Web Worker, and a call leaves the inputs intact', async () => {
      const r = await page.evaluate(async () => {
        const api = window.__sdpa!;
        const ort = (await api.capabilities()).backends.find((b) => b.backend === 'ONNXRUNTIME' && b.device === 'cpu')!;
        const n = 2 * 24 * 8;
        const mk = (s: number) => api.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * s)), [1, 2, 24, 8]);
        const [q, k, v] = [mk(1), mk(2), mk(3)];
        const a = await (await api.withBackends(['ONNXRUNTIME'], () => api.sdpa(q, k, v))).toFloat32();
        const ran = api.lastDispatch()?.ran?.backend;
        // Feeds are moved (transferred) to the worker: the caller's q/k/v buffers must not be the ones moved.
        const intact = [q, k, v].every((t) => (t.data as Float32Array).length === n && (t.data as Float32Array)[1] !== undefined);
        const b = intact ? await (await api.withBackends(['MATH'], () => api.sdpa(q, k, v))).toFloat32() : new Float32Array(0);
        let diff = intact ? 0 : Infinity;
        for (let i = 0; i < b.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
        return { available: ort.available, sessionThread: ort.details.sessionThread, ran, intact, diff };
      });
      expect(r.available).toBe(true);
      expect(r.sessionThread).toEqual({ thread: 'worker' });
      expect(r.ran).toBe('ONNXRUNTIME');
      expect(r.intact).toBe(true);
      expect(r.diff).toBeLessThan(1e-4);
    });

    it('the CPU backends match the float64 reference', () => {
      for (const b of ['MATH', 'EFFICIENT_ATTENTION', 'FLASH_ATTENTION']) {
        const rows = report.results.filter((r) => r.backend === b && r.device === 'cpu');
        expect(rows.length, b).toBe(2);
        for (const r of rows) {
          expect(r.status, `${b} ${r.case}: ${r.reason ?? ''}`).toBe('ok');
          expect(r.maxAbsDiff!, `${b} ${r.case}`).toBeLessThanOrEqual(r.bound!);
        }
      }
    });

    it('WebGPU runs on SwiftShader and matches the reference; what cannot run says why', () => {
      const gpuEngines = report.engines.filter((e) => e.device === 'webgpu');
      expect(gpuEngines.length, 'no webgpu backend part registered').toBeGreaterThan(0);
      expect(gpuEngines.some((e) => e.available), `no WebGPU adapter: ${gpuEngines.map((e) => e.reason).join('; ')}`).toBe(true);
      const rows = report.results.filter((r) => r.device === 'webgpu');
      expect(rows.filter((r) => r.status === 'ok').length).toBeGreaterThan(0);
      for (const r of rows) {
        if (r.status === 'ok') expect(r.maxAbsDiff!, `${r.backend} ${r.case}`).toBeLessThanOrEqual(r.bound!);
        else expect(r, `${r.backend} ${r.case}`).toMatchObject({ status: 'ineligible', reason: expect.stringMatching(/\S/) });
      }
      // SwiftShader has no shader-f16: FLASH on webgpu must be ineligible, not broken.
      for (const r of rows.filter((x) => x.backend === 'FLASH_ATTENTION')) expect(r.status).not.toBe('failed');
    });

    it('no backend failed; every row is a result or a reason', () => {
      for (const r of report.results) expect(r.status === 'ok' || (r.status === 'ineligible' && !!r.reason), `${r.backend} (${r.device}) ${r.case}: ${r.status} ${r.reason ?? ''}`).toBe(true);
    });

    it('shows the results and the explain log on the page', async () => {
      const rows = await page.locator('#results tbody tr').count();
      expect(rows).toBe(report.results.length);
      await expect(page.locator('#log').textContent()).resolves.toMatch(/→ FLASH_ATTENTION \(cpu\)\s+selected — kernel wasm_/);
    });

    it('renders the bench HTML report with its SVG charts', async () => {
      const { runBench } = await import('../src/bench/run.js');
      const { renderHtml } = await import('../src/bench/html.js');
      const result = await runBench({
        batch: 1, heads: 1, headDim: 16, dtype: 'float32', causal: true, device: 'cpu',
        seqs: [32, 64, 128], runs: 1, budgetSeconds: 5, referenceRows: 8, fullReferenceMaxS: 64, seed: 1,
      });
      const dir = join(ARTIFACTS, 'browser-test');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'bench.html');
      writeFileSync(file, renderHtml(result));
      const p = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await p.goto(`file://${file}`);
      expect(await p.locator('svg').count()).toBe(2);
      // One line per backend that ran (FLASH, EFFICIENT, MATH on cpu), in both charts.
      const ran = new Set(result.rows.filter((r) => r.status === 'ok').map((r) => r.backend));
      expect(await p.locator('svg path.series').count()).toBe(2 * ran.size);
      expect(await p.locator('#results tbody tr').count()).toBe(result.rows.length);
      await p.screenshot({ path: join(ARTIFACTS, 'bench-chart.png'), fullPage: true });
      await p.close();
    });
  });
}
