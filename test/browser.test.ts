/**
 * The library in a real browser: serves examples/browser with Vite's JS API (the page imports the
 * library from source), opens it in Debian's headless Chromium through playwright-core, and checks
 * the page's results against the float64 reference. WebGPU comes from SwiftShader (no GPU needed;
 * it lacks shader-f16, so only the FLASH kernels that need none — the register-tiled and decode
 * ones — run there). FLASH on cpu is the WebAssembly kernel there (one worker: the page is not
 * cross-origin isolated); every PyTorch conformance case runs on it through the public API in the
 * page, and on every webgpu kernel variant the adapter can run, each pinned. Also renders a small
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

    it('the PyTorch conformance cases a FLASH or EFFICIENT webgpu kernel takes pass on it, each kernel pinned, in the page (SwiftShader)', async () => {
      // A representative subset (every mask kind, causal variant, GQA, Ev ≠ E, dtype, decode and
      // multi-block shapes): SwiftShader compiles each pipeline slowly, and the full set runs on
      // lavapipe in test/conformance.test.ts.
      const subset = new Set(['basic', 'value_dim_differs', 'causal_lower_right_short_q', 'bool_mask_2d', 'float_mask_full', 'gqa_8_2', 'large_logits_stability', 'fp16_basic', 'bf16_gqa_causal', 'decode_single_query', 'decode_causal_lower_right', 'fully_masked_row', 'seq_129_d64']);
      const raw = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sdpa_cases.json'), 'utf8')) as { cases: { name: string; error?: string }[] };
      const cases = raw.cases.filter((c) => !c.error && subset.has(c.name));
      expect(cases.length).toBe(subset.size);
      // The webgpu parts' own tolerances (src/webgpu/part.ts, backends/flash/webgpu.ts).
      const tol = { float32: { atol: 2e-4, rtol: 2e-4 }, float16: { atol: 2e-3, rtol: 2e-3 }, bfloat16: { atol: 8e-3, rtol: 8e-3 } };
      const results = await page.evaluate(
        async ({ cases, tol }) => {
          type Raw = { shape: number[]; dtype?: string; data: (number | string | boolean)[] };
          type Case = { name: string; q: Raw; k: Raw; v: Raw; is_causal: boolean; causal_variant?: string; attn_mask?: Raw; scale?: number; enable_gqa?: boolean; expected: Raw };
          const api = window.__sdpa!;
          const num = (x: number | string | boolean): number => (typeof x === 'boolean' ? (x ? 1 : 0) : typeof x === 'string' ? (x === '-inf' ? -Infinity : x === 'inf' ? Infinity : Number(x)) : x);
          const t = (r: Raw) => api.tensor.fromFloat32(Float32Array.from(r.data, num), r.shape, (r.dtype ?? 'float32') as 'float32');
          // The library's own attention kernels (MATH and ONNX Runtime's webgpu part are checked apart).
          const own = ['EFFICIENT_ATTENTION', 'FLASH_ATTENTION'];
          const parts = (await api.capabilities()).backends.filter((b) => b.device === 'webgpu' && b.available && own.includes(b.backend));
          const out: { backend: string; kernel: string; name: string; ran?: string; ok: boolean; worst: number; error?: string; skipped?: string }[] = [];
          for (const part of parts) {
            for (const kernel of part.kernels.filter((k) => k.available).map((k) => k.name)) {
              const pin = [{ backend: part.backend, device: 'webgpu' as const, kernel }];
              for (const c of cases as Case[]) {
                const q = t(c.q), k = t(c.k), v = t(c.v);
                const opts: Record<string, unknown> = { device: 'webgpu' };
                if (c.is_causal) opts.isCausal = true;
                if (c.causal_variant === 'lower_right') opts.attnMask = api.causalLowerRight(q.shape[q.shape.length - 2], k.shape[k.shape.length - 2]);
                if (c.attn_mask) opts.attnMask = t(c.attn_mask);
                if (c.scale !== undefined) opts.scale = c.scale;
                if (c.enable_gqa) opts.enableGqa = true;
                const report = await api.withBackends(pin, () => api.explainDispatch(q, k, v, opts));
                const cand = report.candidates.find((x) => x.backend === part.backend);
                const kt = cand?.kernels.find((x) => x.name === kernel);
                if (!cand?.eligible || !kt?.eligible) {
                  out.push({ backend: part.backend, kernel, name: c.name, ok: true, worst: 0, skipped: [...(cand?.reasons ?? []), ...(kt?.reasons ?? [])].join('; ') || 'not eligible' });
                  continue;
                }
                try {
                  const res = await api.withBackends(pin, () => api.sdpa(q, k, v, opts));
                  const got = await res.toFloat32();
                  const exp = Float64Array.from(c.expected.data, num);
                  const tl = tol[q.dtype as keyof typeof tol];
                  let worst = 0;
                  for (let i = 0; i < exp.length; i++) {
                    const d = Math.abs(got[i] - exp[i]);
                    worst = Math.max(worst, Number.isNaN(d) ? (Number.isNaN(got[i]) && Number.isNaN(exp[i]) ? 0 : Infinity) : d / (tl.atol + tl.rtol * Math.abs(exp[i])));
                  }
                  out.push({ backend: part.backend, kernel, name: c.name, ran: api.lastDispatch()?.ran?.kernel, ok: worst <= 1 && got.length === exp.length, worst });
                } catch (e) {
                  out.push({ backend: part.backend, kernel, name: c.name, ok: false, worst: Infinity, error: String(e) });
                }
              }
            }
          }
          return out;
        },
        { cases, tol },
      );
      const ran = results.filter((r) => !r.skipped);
      expect(ran.length, 'no webgpu kernel ran a case in the page').toBeGreaterThan(0);
      // Known gap, kept visible: on SwiftShader (not on lavapipe or the H200) the decode kernels miss
      // large_logits_stability (|s| ≈ 1000) by ~4× the plain f32 tolerance — within what f32 rounding
      // of such logits may cost (test/helpers/compare.ts conditioningAtol, ~1.5e-2 there); it is held
      // to 10× here so a worse regression still fails, and the full tolerance applies elsewhere.
      const knownGap = (r: { kernel: string; name: string }) => r.kernel.startsWith('decode_') && r.name === 'large_logits_stability';
      for (const r of ran) {
        expect(r.error, `${r.backend} ${r.kernel} ${r.name}`).toBeUndefined();
        expect(r.ran, `${r.backend} ${r.kernel} ${r.name}`).toBe(r.kernel);
        if (knownGap(r)) expect(r.worst, `${r.backend} ${r.kernel} ${r.name}: worst ${r.worst} of tolerance`).toBeLessThan(10);
        else expect(r.ok, `${r.backend} ${r.kernel} ${r.name}: worst ${r.worst} of tolerance`).toBe(true);
      }
      for (const r of results.filter((x) => x.skipped)) expect(r.skipped, `${r.kernel} ${r.name}`).toMatch(/\S/);
      // The portable FLASH kernels need no shader-f16: they run where SwiftShader offers none.
      const kernelsRan = new Set(ran.map((r) => `${r.backend}/${r.kernel}`));
      for (const k of ['EFFICIENT_ATTENTION/tiled_portable_f32', 'EFFICIENT_ATTENTION/decode_f32_portable', 'FLASH_ATTENTION/tiled_portable_f16']) expect(kernelsRan.has(k), `${k} ran no case (ran: ${[...kernelsRan].join(', ')})`).toBe(true);
      console.log(`webgpu kernels in the page: ${[...kernelsRan].join(', ')}; ${ran.length} runs, ${results.length - ran.length} not eligible`);
    }, 240_000);

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
        // Three calls at once reach the worker together; it runs them one after another (serial.ts).
        const many = await Promise.allSettled([4, 7, 10].map((s) => api.withBackends(['ONNXRUNTIME'], async () => (await api.sdpa(mk(s), mk(s + 1), mk(s + 2))).toFloat32())));
        const concurrent = many.map((x) => (x.status === 'fulfilled' ? 'ok' : String(x.reason).split('\n')[0]));
        return { available: ort.available, sessionThread: ort.details.sessionThread, ran, intact, diff, concurrent };
      });
      expect(r.concurrent).toEqual(['ok', 'ok', 'ok']);
      expect(r.available).toBe(true);
      expect(r.sessionThread).toEqual({ thread: 'worker' });
      expect(r.ran).toBe('ONNXRUNTIME');
      expect(r.intact).toBe(true);
      expect(r.diff).toBeLessThan(1e-4);
    });

    it('ONNXRUNTIME (cpu) falls back to the main thread, with the reason, when the worker script cannot load', async () => {
      // A second page of the same browser whose request for web-worker.ts is refused (as a CSP or a
      // broken deployment would): sessions must run on the page's own onnxruntime-web instead.
      const blocked: string[] = [];
      const p2 = await browser.newPage();
      try {
        await p2.route(/\/web-worker\.(ts|js)/, (route) => {
          blocked.push(route.request().url());
          return route.abort();
        });
        await p2.goto(server.resolvedUrls!.local[0]);
        await p2.waitForFunction(() => window.__sdpa !== undefined, undefined, { timeout: 100_000 });
        const r = await p2.evaluate(async () => {
          const api = window.__sdpa!;
          const n = 2 * 24 * 8;
          const mk = (s: number) => api.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * s)), [1, 2, 24, 8]);
          // Three calls at once: onnxruntime-web refuses overlapping session calls, which the
          // library queues (backends/onnxruntime/serial.ts); before that they failed here.
          const inputs = [1, 4, 7].map((s) => [mk(s), mk(s + 1), mk(s + 2)] as const);
          const outs = await Promise.all(inputs.map(([q, k, v]) => api.withBackends(['ONNXRUNTIME'], async () => ({ y: await (await api.sdpa(q, k, v)).toFloat32(), ran: api.lastDispatch()?.ran?.backend }))));
          const ran = outs.every((o) => o.ran === 'ONNXRUNTIME') ? 'ONNXRUNTIME' : outs.map((o) => o.ran).join(',');
          let diff = 0;
          for (const [j, [q, k, v]] of inputs.entries()) {
            const b = await (await api.withBackends(['MATH'], () => api.sdpa(q, k, v))).toFloat32();
            for (let i = 0; i < b.length; i++) diff = Math.max(diff, Math.abs(outs[j].y[i] - b[i]));
          }
          const a = outs[0].y;
          const ort = (await api.capabilities()).backends.find((x) => x.backend === 'ONNXRUNTIME' && x.device === 'cpu')!;
          return { sessionThread: ort.details.sessionThread, ran, diff, n: a.length };
        });
        expect(blocked.length, 'the worker script was never requested').toBeGreaterThan(0);
        expect(r.ran).toBe('ONNXRUNTIME');
        expect(r.n).toBe(2 * 24 * 8);
        expect(r.diff).toBeLessThan(1e-4);
        expect(r.sessionThread).toEqual({ thread: 'main', reason: expect.stringMatching(/the session worker did not start: the onnxruntime-web worker failed: .*sessions run on the main thread/) });
      } finally {
        await p2.close();
      }
    }, 120_000);

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
