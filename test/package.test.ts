/**
 * The package where users put it: `npm pack`, then a fresh project (test/fixtures/consumer) that
 * installs the tarball beside Vite and TypeScript, as a user would. Checks that the install needs
 * no download of its own (onnxruntime-node is an optional peer dependency), that
 * `require('sdpa-dispatch')` works from CommonJS, that strict consumer projects type-check with
 * `skipLibCheck: false`, that `doctor` names the ONNX Runtime engine in use, and that a Vite-built
 * app runs in headless Chromium with correct results on cpu and on webgpu (SwiftShader).
 *
 * The install comes from the npm cache that `npm ci` filled (`--prefer-offline`); the native addon
 * is not compiled there (SDPA_SKIP_NATIVE=1: the repository's own build covers it). Chromium
 * missing skips the browser part with the reason, unless CI is set (then it fails).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { sdpa, tensor, withBackends, SDPBackend } from '../src/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/consumer');
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
/** The Chromium flags of test/browser.test.ts: WebGPU on SwiftShader, headless, nothing phoning home. */
const CHROMIUM_ARGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--disable-gpu-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** The version of a dev dependency installed here, so the consumer install is a cache hit. */
const version = (pkg: string): string => (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The environment of a child run in the consumer: without the npm_* variables of the `npm test`
 * that runs us (npm_config_local_prefix and friends would point npm at this repository).
 */
function consumerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, SDPA_SKIP_NATIVE: '1', SDPA_LOG: '', ...extra };
}

function run(cmd: string, args: string[], cwd: string, timeout = 240_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, env: consumerEnv(), encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function runAsync(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: consumerEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Newest mtime of what dist/ is built from. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'generated') newest = Math.max(newest, newestSource(p));
    else if (/\.(ts|wgsl)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The float64 MATH reference of `sdpa` on the inputs a consumer reported. */
async function reference(inputs: { shape: number[]; q: number[]; k: number[]; v: number[] }, isCausal: boolean): Promise<Float32Array> {
  const [q, k, v] = [inputs.q, inputs.k, inputs.v].map((d) => tensor(d, inputs.shape));
  const out = await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { isCausal, device: 'cpu' }));
  return out.toFloat32();
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
};

describe('the packed package in a fresh consumer project', () => {
  const work = mkdtempSync(join(tmpdir(), 'sdpa-consumer-'));
  const app = join(work, 'consumer');
  let packed: { filename: string; files: { path: string }[] };

  beforeAll(() => {
    // `npm test` builds dist/ first (scripts/ensure-ready.mjs); a bare `npx vitest run` may find it stale.
    const built = join(ROOT, 'dist/src/index.js');
    const newest = Math.max(...['src', 'backends', 'shaders'].map((d) => newestSource(join(ROOT, d))));
    if (!existsSync(built) || statSync(built).mtimeMs < newest) {
      execFileSync(process.execPath, [join(ROOT, 'scripts/embed-assets.mjs')], { cwd: ROOT });
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
    }
    const pack = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT);
    expect(pack.code, pack.stderr).toBe(0);
    packed = (JSON.parse(pack.stdout) as (typeof packed)[])[0];
    cpSync(FIXTURE, app, { recursive: true });
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'sdpa-consumer', private: true, type: 'module' }, null, 2)}\n`);
    const deps = [join(work, packed.filename), `vite@${version('vite')}`, `typescript@${version('typescript')}`, `@types/node@${version('@types/node')}`, `@webgpu/types@${version('@webgpu/types')}`];
    const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...deps], app, 280_000);
    expect(install.code, install.stderr).toBe(0);
  }, 300_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('packs no benchmark logs, and the embedded shaders instead of paths to them', () => {
    const files = packed.files.map((f) => f.path);
    expect(files.filter((f) => f.startsWith('docs/logs/') || /^docs\/[^/]+\.txt$/.test(f))).toEqual([]);
    expect(files).toContain('dist/src/generated/shaders.js');
    expect(files).toContain('dist/backends/onnxruntime/public.js');
    expect(files).toContain('scripts/build-native.mjs');
  });

  it('installs without onnxruntime-node, and nothing in the tree has an install script that downloads', () => {
    const nm = join(app, 'node_modules');
    expect(existsSync(join(nm, 'onnxruntime-node')), 'onnxruntime-node is an optional peer dependency: never installed for the user').toBe(false);
    // Every package with an install-time script, and why each one downloads nothing.
    const reviewed: Record<string, string> = {
      'sdpa-dispatch': 'node-gyp against the local Node headers (scripts/build-native.mjs)',
      webgpu: 'macOS only: clears the quarantine attribute of the bundled dawn.node',
      protobufjs: 'a version-scheme check of its dependents',
    };
    const withScripts: string[] = [];
    const visit = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory() || e.name.startsWith('.')) continue;
        const p = join(dir, e.name);
        if (e.name.startsWith('@')) {
          visit(p);
          continue;
        }
        const manifest = join(p, 'package.json');
        if (existsSync(manifest)) {
          const m = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; scripts?: Record<string, string> };
          if (['preinstall', 'install', 'postinstall'].some((s) => m.scripts?.[s])) withScripts.push(m.name ?? e.name);
        }
        if (existsSync(join(p, 'node_modules'))) visit(join(p, 'node_modules'));
      }
    };
    visit(nm);
    expect([...new Set(withScripts)].filter((n) => !(n in reviewed))).toEqual([]);
  });

  it("require('sdpa-dispatch') works from CommonJS and computes the right values", async () => {
    const r = run(process.execPath, ['require.cjs'], app);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { q: number[]; k: number[]; v: number[]; shape: number[]; out: number[]; toOrtTensor: string; backends: number };
    expect(got.toOrtTensor).toBe('function');
    expect(got.backends).toBeGreaterThan(0);
    const ref = await reference(got, true);
    expect(maxAbsDiff(got.out, ref)).toBeLessThan(1e-4);
  });

  it('strict consumer projects type-check against the declarations (skipLibCheck false): Node without a DOM lib, and a browser with @webgpu/types', async () => {
    const tsc = join(app, 'node_modules/typescript/bin/tsc');
    // Both at once: each is a whole-program check of the declarations and @types/node.
    const [node, browser] = await Promise.all(['tsconfig.node.json', 'tsconfig.browser.json'].map((c) => runAsync(process.execPath, [tsc, '-p', c], app)));
    expect(node.code, `node: ${node.stdout}${node.stderr}`).toBe(0);
    expect(browser.code, `browser (GPUBuffer must be the real interface there): ${browser.stdout}${browser.stderr}`).toBe(0);
  });

  it('doctor names the ONNX Runtime engine in use and why onnxruntime-node is not', () => {
    const r = run(process.execPath, [join(app, 'node_modules/sdpa-dispatch/dist/src/cli.js'), 'doctor'], app);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ONNX Runtime engine in use: onnxruntime-web \S+ \(wasm EP\); not used: onnxruntime-node is not installed; `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node`/);
  });

  if (!hasChromium && process.env.CI) {
    it('the Vite app test needs Chromium', () => {
      throw new Error(`${CHROMIUM} is missing and CI is set: run scripts/install-chromium.sh (as root) before the tests`);
    });
  } else if (!hasChromium) {
    it.skip(`Vite app in Chromium skipped: ${CHROMIUM} is missing (install it with scripts/install-chromium.sh)`, () => {});
  } else {
    describe('a Vite-built app (vite build + vite preview) in headless Chromium', () => {
      let preview: ChildProcess | undefined;
      let browser: Browser | undefined;
      let report: {
        done: boolean;
        error?: string;
        inputs: { shape: number[]; q: number[]; k: number[]; v: number[] };
        float16Array: { dtype: string; shared: boolean; bits: number[] } | null;
        engines: { backend: string; device: string; available: boolean; reason: string | null; engine: string | null }[];
        ortSessionThread: unknown;
        runs: { backend: string; device: string; isCausal: boolean; status: string; reason?: string; values?: number[]; tolerance?: { atol: number; rtol: number } | null }[];
      };
      let build: ReturnType<typeof run>;

      beforeAll(async () => {
        const vite = join(app, 'node_modules/vite/bin/vite.js');
        build = run(process.execPath, [vite, 'build', 'app', '--logLevel', 'warn'], app);
        expect(build.code, build.stderr).toBe(0);
        const port = await freePort();
        preview = spawn(process.execPath, [vite, 'preview', 'app', '--port', String(port), '--strictPort', '--host', '127.0.0.1'], { cwd: app, env: consumerEnv(), stdio: 'ignore' });
        const url = `http://127.0.0.1:${port}/`;
        for (let i = 0; i < 100; i++) {
          if (await fetch(url).then((r) => r.ok, () => false)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const { chromium } = await import('playwright-core');
        browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(url);
        await page.waitForFunction(() => (window as { __sdpa?: { done: boolean } }).__sdpa?.done === true, undefined, { timeout: 150_000 });
        report = (await page.evaluate(() => (window as unknown as { __sdpa: unknown }).__sdpa)) as typeof report;
        if (errors.length) throw new Error(`page errors: ${errors.join('\n')}`);
      }, 240_000);

      afterAll(async () => {
        await browser?.close();
        preview?.kill();
      });

      it('the build needs no configuration and carries neither Dawn nor a native addon, nor shader files', () => {
        expect(build.stderr).not.toMatch(/externalized for browser compatibility|dawn/i);
        const assets = readdirSync(join(app, 'app/dist/assets'));
        expect(assets.filter((f) => /\.(node|wgsl)$/.test(f))).toEqual([]);
        for (const f of assets.filter((x) => x.endsWith('.js'))) {
          const text = readFileSync(join(app, 'app/dist/assets', f), 'utf8');
          // Dawn's loader (webgpu/index.js) and onnxruntime-node's binding must not be bundled.
          expect(text, f).not.toMatch(/dawnNodePath|onnxruntime_binding/);
        }
      });

      it('runs without errors; ONNX Runtime resolved from the bundle is onnxruntime-web, its sessions in a worker', () => {
        expect(report.error).toBeUndefined();
        const ort = report.engines.find((e) => e.backend === 'ONNXRUNTIME' && e.device === 'cpu');
        expect(ort, JSON.stringify(report.engines)).toMatchObject({ available: true, engine: 'onnxruntime-web' });
        // The worker entry (web-worker.ts, with onnxruntime-web inside) as the build emitted it: the
        // app's ONNXRUNTIME (cpu) rows (checked below against the reference) ran through it.
        expect(report.ortSessionThread).toEqual({ thread: 'worker' });
      });

      it('tensor() takes a Float16Array as float16 storage, shared (Chromium has Float16Array; Node 20 does not)', () => {
        expect(report.float16Array, 'this Chromium has no Float16Array').not.toBeNull();
        expect(report.float16Array).toEqual({ dtype: 'float16', shared: true, bits: [0x3c00, 0x3800, 0xc000] });
      });

      it('every backend that ran on cpu or webgpu matches the float64 reference; the rest give reasons', async () => {
        const refs = { true: await reference(report.inputs, true), false: await reference(report.inputs, false) };
        const refMax = (r: Float32Array) => r.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        for (const r of report.runs) {
          const what = `${r.backend} (${r.device}) isCausal=${r.isCausal}`;
          expect(r.status === 'ok' || r.status === 'ineligible', `${what}: ${r.status} ${r.reason ?? ''}`).toBe(true);
          if (r.status !== 'ok') {
            expect(r.reason, what).toMatch(/\S/);
            continue;
          }
          const ref = refs[String(r.isCausal) as 'true' | 'false'];
          const bound = (r.tolerance?.atol ?? 1e-4) + (r.tolerance?.rtol ?? 1e-4) * refMax(ref);
          expect(maxAbsDiff(r.values!, ref), what).toBeLessThanOrEqual(bound);
        }
        const ran = (device: string) => new Set(report.runs.filter((r) => r.device === device && r.status === 'ok').map((r) => r.backend));
        // On cpu: the WebAssembly flash kernel (its modules and its worker come from the bundle),
        // the TypeScript kernels and onnxruntime-web's wasm build; on webgpu: the WGSL kernels
        // (their shaders come from the bundle) on SwiftShader, and onnxruntime-web/webgpu.
        expect([...ran('cpu')]).toEqual(expect.arrayContaining(['FLASH_ATTENTION', 'EFFICIENT_ATTENTION', 'MATH', 'ONNXRUNTIME']));
        expect([...ran('webgpu')]).toEqual(expect.arrayContaining(['EFFICIENT_ATTENTION', 'MATH']));
        // onnxruntime-web's WebGPU EP (non-causal float32 only: its causal output was wrong on SwiftShader).
        expect(report.runs.find((r) => r.backend === 'ONNXRUNTIME' && r.device === 'webgpu' && !r.isCausal)?.status).toBe('ok');
      });
    });
  }
});
