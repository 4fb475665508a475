/**
 * Issue 20, the inputs that used to kill the process, each in a child `node` process that must
 * exit normally (status 0, no signal) and print what it saw:
 * - a q/k/v/mask ArrayBuffer transferred (structuredClone) while FLASH (cpu) reads it, then
 *   collected: SIGSEGV in the kernel before; now the addon keeps the memory alive and rejects;
 * - `worker.terminate()` while a FLASH (cpu) call runs in that worker: abort() from
 *   Napi::AsyncWorker's completion before; now the completion is a no-op.
 * The children use the addon this checkout built (build/Release) directly, and through sdpa()
 * from dist/ (built by `npm test`'s pretest, or here when stale).
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNative } from '../backends/flash/native.js';
import { ROOT, ensureDist } from './helpers/dist.js';
const native = loadNative();
const ADDON = native.ok ? native.path : '';

beforeAll(ensureDist, 300_000);

/** Runs an ES module script in a child node; returns its status, signal and last stdout line as JSON. */
function child(script: string, args: string[] = []): { status: number | null; signal: NodeJS.Signals | null; out: unknown; stderr: string } {
  const r = spawnSync(process.execPath, [...args, '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 240_000, env: { ...process.env, SDPA_ADDON: ADDON } });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let out: unknown = last;
  try {
    out = JSON.parse(last);
  } catch {
    // not JSON: kept as text for the failure message
  }
  return { status: r.status, signal: r.signal, out, stderr: r.stderr };
}

/** A native call of about 100 ms on this machine (8 heads × 1024 queries × 1024 keys × 64). */
const BIG_CALL = `
  const bh = 8, s = 1024, l = 1024, e = 64;
  const mk = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.01));
  const bases = (n, stride) => Float64Array.from({ length: n }, (_, i) => i * stride);
  const makeArgs = () => ({ dtype: 0, q: mk(bh * s * e), k: mk(bh * l * e), v: mk(bh * l * e), out: new Float32Array(bh * s * e), bh, hq: bh, hkv: bh, s, l, e, ev: e,
    qBase: bases(bh, s * e), kvBaseK: bases(bh, l * e), kvBaseV: bases(bh, l * e), qRowStride: e, kRowStride: e, vRowStride: e });
`;

describe.skipIf(!native.ok)('no crash: buffers detached during a native call, workers terminated mid-call', () => {
  it('an input ArrayBuffer transferred and collected while the addon reads it: the call rejects, the process lives', () => {
    const script = `
      import { createRequire } from 'node:module';
      const native = createRequire(import.meta.url)(process.env.SDPA_ADDON);
      ${BIG_CALL}
      const seen = [];
      for (const which of ['q', 'k', 'v', 'out']) {
        const args = makeArgs();
        const p = native.flashAttention(args);
        let moved = structuredClone(args[which].buffer, { transfer: [args[which].buffer] });
        moved = null;
        for (let i = 0; i < 10; i++) { globalThis.gc(); new Float32Array(bh * l * e).fill(7); }
        try { await p; seen.push({ which, resolved: true }); }
        catch (e) { seen.push({ which, code: e.code, argument: e.argument, message: e.message }); }
      }
      console.log(JSON.stringify(seen));
    `;
    const r = child(script, ['--expose-gc']);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    for (const [i, which] of ['q', 'k', 'v', 'out'].entries()) {
      const s = (r.out as { which: string; code?: string; argument?: string; message?: string }[])[i];
      expect(s, JSON.stringify(r.out)).toMatchObject({ which, code: 'SDPA_STORAGE_CHANGED', argument: which });
      expect(s.message).toMatch(new RegExp(`^flashAttention: args\\.${which} changed storage while the kernel ran .*; the result is discarded$`));
    }
  });

  it('through sdpa(): q transferred mid-call rejects with SdpaTypeError naming q (no fallback, no garbage)', () => {
    const script = `
      import { sdpa, tensor, withBackends, lastDispatch } from './dist/src/index.js';
      const mk = (n, shape) => tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.01)), shape);
      const shape = [1, 8, 1024, 64], n = 8 * 1024 * 64;
      const q = mk(n, shape), k = mk(n, shape), v = mk(n, shape);
      const p = withBackends(['FLASH_ATTENTION'], () => sdpa(q, k, v));
      await new Promise((r) => setImmediate(r));
      let moved = structuredClone(q.data.buffer, { transfer: [q.data.buffer] });
      moved = null;
      globalThis.gc();
      try { const out = await p; console.log(JSON.stringify({ resolved: true, first: (await out.toFloat32())[0] })); }
      catch (e) { console.log(JSON.stringify({ name: e.name, argument: e.argument, message: e.message })); }
    `;
    const r = child(script, ['--expose-gc']);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.out, JSON.stringify(r.out)).toMatchObject({ name: 'SdpaTypeError', argument: 'q' });
    expect((r.out as { message: string }).message).toMatch(/^sdpa: q: expected storage left as it was until the call settles \(FLASH_ATTENTION \(cpu\) kernel \w+ was reading it/);
  });

  it('worker.terminate() while a FLASH (cpu) call runs in the worker: the process exits normally', () => {
    const script = `
      import { Worker } from 'node:worker_threads';
      const src = \`
        const { parentPort } = require('node:worker_threads');
        const native = require(process.env.SDPA_ADDON);
        ${BIG_CALL.replace(/`/g, '\\`')}
        for (let i = 0; i < 3; i++) native.flashAttention(makeArgs()).catch(() => {});
        parentPort.postMessage('started');
      \`;
      const results = [];
      for (let round = 0; round < 3; round++) {
        const w = new Worker(src, { eval: true, execArgv: [] }); // CommonJS eval: the parent runs with --input-type=module
        await new Promise((r) => w.once('message', r));
        const code = await w.terminate();
        results.push(code);
      }
      await new Promise((r) => setTimeout(r, 200));
      console.log(JSON.stringify({ terminated: results }));
    `;
    const r = child(script);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.stderr).not.toMatch(/terminate called|Napi::Error/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toEqual({ terminated: [1, 1, 1] });
  });
});
