/**
 * ONNXRUNTIME backend: constraint reasons, session cache (reuse across sequence lengths, LRU
 * bound, dispose), onnxruntime tensor interop, and fault → fallback on session-creation failure.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capabilities, explainDispatch, lastDispatch, sdpa, tensor, withBackends, SDPBackend, causalLowerRight, type Tensor } from '../src/index.js';
import {
  disposeOnnxSessions,
  onnxSessionStats,
  setOnnxSessionCacheSize,
  setOnnxSessionFactoryForTesting,
  toOrtTensor,
  NODE_WEBGPU_REASON,
  type OrtModuleLike,
} from '../backends/onnxruntime/index.js';
import { onnxruntimeCpu } from '../backends/onnxruntime/cpu.js';
import { describeOrtImportFailure, loadOnnxSchema } from '../backends/onnxruntime/runtime.js';
import { sessionsInWorker } from '../backends/onnxruntime/worker-ort.js';
import { oneAtATime, operationQueue } from '../backends/onnxruntime/serial.js';
import type { OrtTensorLike } from '../backends/onnxruntime/ort-types.js';
import { buildAttentionModel } from '../backends/onnxruntime/graph.js';
import { importNodeOnly, isModuleNotFound } from '../src/node-import.js';
import { compare } from './helpers/compare.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';

const ort = createRequire(import.meta.url)('onnxruntime-node') as OrtModuleLike;
await capabilities();
const available = onnxruntimeCpu.availability().available;

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    a[i] = (x / 2 ** 32) * 2 - 1;
  }
  return a;
}
const t4 = (b: number, h: number, s: number, e: number, seed: number): Tensor => tensor(rand(b * h * s * e, seed), [b, h, s, e]);
const reasonsOf = (q: Tensor, k: Tensor, v: Tensor, opts: Parameters<typeof explainDispatch>[3] = {}) =>
  explainDispatch(q, k, v, opts).candidates.find((c) => c.backend === SDPBackend.ONNXRUNTIME && c.device === (opts.device ?? 'cpu'))!;

async function vsMath(q: Tensor, k: Tensor, v: Tensor, opts: Parameters<typeof sdpa>[3] = {}) {
  const out = await withBackends([SDPBackend.ONNXRUNTIME], () => sdpa(q, k, v, opts));
  expect(lastDispatch()?.ran?.backend).toBe(SDPBackend.ONNXRUNTIME);
  const ref = mathReference(buildParams('test', q, k, v, opts));
  const r = compare(await out.toFloat32(), ref, onnxruntimeCpu.tolerance[q.dtype as 'float32']);
  expect(r.ok, r.message).toBe(true);
  return out;
}

describe.runIf(available)('ONNXRUNTIME (cpu)', () => {
  afterEach(() => setOnnxSessionFactoryForTesting(undefined));
  afterAll(() => disposeOnnxSessions());

  describe('constraints and reasons', () => {
    it('dropout is a reason naming the value', () => {
      const q = t4(1, 2, 4, 8, 1);
      const c = reasonsOf(q, q, q, { dropoutP: 0.1 });
      expect(c.eligible).toBe(false);
      expect(c.reasons).toContain('onnxruntime (cpu) does not support dropout, got dropoutP=0.1');
    });
    it('score memory beyond the budget is a reason with the sizes and a hint', () => {
      const prev = process.env.SDPA_ORT_MAX_BYTES;
      process.env.SDPA_ORT_MAX_BYTES = '1000';
      try {
        const q = t4(1, 2, 32, 8, 2);
        const c = reasonsOf(q, q, q);
        expect(c.reasons.join('\n')).toMatch(/^onnxruntime \(cpu\) materializes the batch·Hq·S·L float32 scores \(and masks\): 8\.0 KiB > budget 1000 B; use EFFICIENT_ATTENTION/m);
      } finally {
        if (prev === undefined) delete process.env.SDPA_ORT_MAX_BYTES;
        else process.env.SDPA_ORT_MAX_BYTES = prev;
      }
    });
    it('the webgpu part says exactly why it is off in Node', () => {
      const q = t4(1, 2, 4, 8, 3);
      const c = reasonsOf(q, q, q, { device: 'webgpu' });
      expect(c.reasons[0]).toBe(NODE_WEBGPU_REASON);
    });
    it('the webgpu part (MultiHeadAttention) reports GQA and Ev ≠ E limits', () => {
      const q = t4(1, 4, 4, 8, 4), k = t4(1, 2, 5, 8, 5), v = t4(1, 2, 5, 16, 6);
      const c = reasonsOf(q, k, v, { device: 'webgpu', enableGqa: true });
      expect(c.reasons).toContain('onnxruntime (webgpu) does not support grouped-query attention, got Hq=4, Hkv=2');
      expect(c.reasons).toContain('onnxruntime (webgpu) requires the value head dim to equal the query/key head dim, got E=8, Ev=16');
    });
    it('bf16, GQA, Ev ≠ E, scale, 3-D and 5-D inputs are eligible and match MATH', async () => {
      const bf = (x: Tensor) => tensor.fromFloat32(x.toFloat32Sync(), [...x.shape], 'bfloat16');
      await vsMath(bf(t4(1, 4, 9, 16, 7)), bf(t4(1, 2, 9, 16, 8)), bf(t4(1, 2, 9, 16, 9)), { enableGqa: true, isCausal: true });
      await vsMath(t4(1, 2, 5, 8, 10), t4(1, 2, 7, 8, 11), t4(1, 2, 7, 12, 12), { scale: 0.3 });
      await vsMath(tensor(rand(3 * 6 * 8, 13), [3, 6, 8]), tensor(rand(3 * 7 * 8, 14), [3, 7, 8]), tensor(rand(3 * 7 * 8, 15), [3, 7, 8]));
      await vsMath(tensor(rand(2 * 3 * 2 * 5 * 4, 16), [2, 3, 2, 5, 4]), tensor(rand(2 * 3 * 2 * 6 * 4, 17), [2, 3, 2, 6, 4]), tensor(rand(2 * 3 * 2 * 6 * 4, 18), [2, 3, 2, 6, 4]));
    });
    it('causal alignment: isCausal is upper-left and causalLowerRight is honoured, S < L and S > L', async () => {
      for (const [s, l] of [[5, 12], [12, 5]]) {
        const q = t4(1, 2, s, 8, 20 + s), k = t4(1, 2, l, 8, 21), v = t4(1, 2, l, 8, 22);
        await vsMath(q, k, v, { isCausal: true });
        await vsMath(q, k, v, { attnMask: causalLowerRight(s, l) });
      }
    });
    it('fully masked rows give zeros; masks broadcast over S or L are expanded', async () => {
      const q = t4(1, 2, 4, 8, 30), k = t4(1, 2, 6, 8, 31), v = t4(1, 2, 6, 8, 32);
      const m = new Uint8Array(4 * 6).fill(1);
      m.fill(0, 6, 12); // query row 1 sees nothing
      const out = await vsMath(q, k, v, { attnMask: tensor(m, [4, 6], 'bool') });
      expect(Array.from((await out.toFloat32()).slice(8, 16))).toEqual(new Array(8).fill(0));
      await vsMath(q, k, v, { attnMask: tensor(rand(2 * 6, 33), [2, 1, 6]) }); // S broadcast
      await vsMath(q, k, v, { attnMask: tensor(rand(4, 34), [4, 1]) }); // L broadcast
    });
  });

  describe('session cache', () => {
    it('reuses one session across sequence lengths and batch sizes', async () => {
      await disposeOnnxSessions();
      setOnnxSessionFactoryForTesting(undefined); // zero the counters
      for (const [b, s] of [[1, 8], [2, 17], [1, 33]]) {
        const q = t4(b, 2, s, 8, s);
        await vsMath(q, q, q, { isCausal: true });
      }
      const st = onnxSessionStats();
      expect(st.created).toBe(1);
      expect(st.hits).toBe(2);
      expect(st.live).toBe(1);
    });
    it('is bounded (LRU) and released by disposeOnnxSessions()', async () => {
      await disposeOnnxSessions();
      setOnnxSessionCacheSize(2);
      try {
        const q = t4(1, 1, 4, 8, 40);
        // Four graph keys (a custom scale is a run-time input and no longer makes its own graph).
        const boolMask = tensor(Uint8Array.from({ length: 16 }, (_, i) => (i % 3 ? 1 : 0)), [4, 4], 'bool');
        const floatMask = tensor(Float32Array.from({ length: 16 }, (_, i) => -(i % 3)), [4, 4]);
        const kinds = [{}, { isCausal: true }, { attnMask: boolMask }, { attnMask: floatMask }];
        for (const o of kinds) await vsMath(q, q, q, o);
        await new Promise((r) => setTimeout(r, 10));
        expect(onnxSessionStats().live).toBe(2);
        // Concurrent calls with capacity 1: each evicts the previous session while it may still run;
        // release waits for the run, and every result stays correct.
        setOnnxSessionCacheSize(1);
        await Promise.all(kinds.map((o, i) => vsMath(q, q, q, { ...o, scale: 0.5 + i / 10 })));
        await new Promise((r) => setTimeout(r, 10));
        expect(onnxSessionStats().live).toBe(1);
        await disposeOnnxSessions();
        expect(onnxSessionStats().live).toBe(0);
      } finally {
        setOnnxSessionCacheSize(16);
      }
    });
  });

  describe('operator choice', () => {
    it('causal S = L without a mask and head dim % 8 = 0 runs com.microsoft.GroupQueryAttention; others opset-23 Attention', async () => {
      await disposeOnnxSessions();
      const keys: string[] = [];
      setOnnxSessionFactoryForTesting((o, model, options, key) => {
        keys.push(key);
        return o.InferenceSession.create(model, options);
      });
      await vsMath(t4(2, 4, 9, 16, 80), t4(2, 2, 9, 16, 81), t4(2, 2, 9, 16, 82), { isCausal: true, enableGqa: true, scale: 0.2 });
      await vsMath(t4(1, 2, 9, 3, 86), t4(1, 2, 9, 3, 87), t4(1, 2, 9, 3, 88), { isCausal: true }); // head dim 3
      await vsMath(t4(1, 2, 6, 8, 83), t4(1, 2, 9, 8, 84), t4(1, 2, 9, 8, 85), { isCausal: true }); // S ≠ L
      expect(keys).toEqual([
        'cpu|GroupQueryAttention|float32|full|scale=input|mask=none|heads=4/2|dim=16',
        'cpu|Attention|float32|causal|scale=default|mask=none',
      ]);
    });
  });

  describe('interop with onnxruntime tensors', () => {
    it('accepts ort Tensors (float32, float16, bool mask) as q/k/v/mask and converts results back', async () => {
      const q = t4(1, 2, 5, 8, 50), k = t4(1, 2, 6, 8, 51), v = t4(1, 2, 6, 8, 52);
      const mask = tensor(Uint8Array.from({ length: 30 }, (_, i) => (i % 4 === 0 ? 0 : 1)), [5, 6], 'bool');
      const oq = toOrtTensor(q, ort), ok = toOrtTensor(k, ort), ov = toOrtTensor(v, ort), om = toOrtTensor(mask, ort);
      expect(oq.data).toBe(q.data); // zero-copy for contiguous tensors
      const viaOrt = await withBackends([SDPBackend.ONNXRUNTIME], () => sdpa(oq as unknown as Tensor, ok as unknown as Tensor, ov as unknown as Tensor, { attnMask: om as unknown as Tensor }));
      const direct = await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { attnMask: mask }));
      expect(compare(await viaOrt.toFloat32(), Float64Array.from(await direct.toFloat32()), { atol: 1e-5, rtol: 1e-5 }).ok).toBe(true);
      const back = toOrtTensor(viaOrt);
      expect(back.type).toBe('float32');
      expect(back.dims).toEqual([1, 2, 5, 8]);
      const h = (x: Tensor) => tensor.fromFloat32(x.toFloat32Sync(), [...x.shape], 'float16');
      const o16 = await sdpa(toOrtTensor(h(q), ort) as unknown as Tensor, toOrtTensor(h(k), ort) as unknown as Tensor, toOrtTensor(h(v), ort) as unknown as Tensor);
      expect(o16.dtype).toBe('float16');
      expect(toOrtTensor(o16, ort).type).toBe('float16');
    });
    it('rejects an ort Tensor of an unsupported type, naming the argument', async () => {
      const q = t4(1, 1, 2, 2, 60);
      const bad = new ort.Tensor('int32', new Int32Array(4), [1, 1, 2, 2]);
      await expect(sdpa(bad as unknown as Tensor, q, q)).rejects.toThrow(/^sdpa: q: expected an onnxruntime Tensor of type float32, float16, bfloat16 or bool, got type "int32"/);
    });
  });

  describe('faults', () => {
    it('a session-creation failure is a BackendFaultError and sdpa falls back', async () => {
      await disposeOnnxSessions();
      setOnnxSessionFactoryForTesting(() => Promise.reject(new Error('injected: out of memory')));
      const q = t4(1, 2, 4, 8, 70);
      const out = await withBackends([SDPBackend.ONNXRUNTIME, SDPBackend.MATH], () => sdpa(q, q, q), { setPriority: true });
      const rec = lastDispatch()!;
      expect(rec.ran?.backend).toBe(SDPBackend.MATH);
      expect(rec.fallbacks[0].backend).toBe(SDPBackend.ONNXRUNTIME);
      expect(rec.fallbacks[0].reason).toMatch(/^onnxruntime \(cpu\) could not create a session for cpu\|Attention\|float32\|full\|scale=default\|mask=none: injected: out of memory$/);
      expect(out.shape).toEqual([1, 2, 4, 8]);
    });
  });
});

describe('ONNXRUNTIME (cpu) when unavailable', () => {
  beforeAll(() => undefined);
  it('gives a reason instead of crashing', () => {
    const a = onnxruntimeCpu.availability();
    if (!a.available) expect(a.reason).toMatch(/onnxruntime \(cpu\) is unavailable/);
    else expect(a.available).toBe(true);
  });
});

describe('loading onnxruntime: what failed, in words', () => {
  it('a package that is absent says so and how to add it (onnxruntime-node: as an optional peer, without the CUDA download)', async () => {
    const err = await importNodeOnly('sdpa-no-such-package').catch((e: unknown) => e);
    expect(isModuleNotFound(err)).toBe(true);
    expect(describeOrtImportFailure('onnxruntime-node', err)).toBe(
      'onnxruntime-node is not installed; `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` (an optional peer dependency; skip = no CUDA download)',
    );
    expect(describeOrtImportFailure('onnxruntime-web/webgpu', err)).toBe('onnxruntime-web/webgpu is not installed; npm install onnxruntime-web');
  });

  it('an unbundled page that cannot resolve the bare specifier is told to bundle or map it, not to install it', () => {
    const err = new TypeError('Failed to resolve module specifier "onnxruntime-web". Relative references must start with either "/", "./", or "../".');
    expect(describeOrtImportFailure('onnxruntime-web', err)).toMatch(/^onnxruntime-web could not be resolved by this page \(Failed to resolve module specifier .*\); bundle the page .* or map 'onnxruntime-web' in an import map$/);
  });

  it('a package that is present but fails to load reports its own error', () => {
    const err = new Error('libonnxruntime.so.1: cannot open shared object file: No such file or directory\n    at Module._extensions..node');
    expect(describeOrtImportFailure('onnxruntime-node', err)).toBe('onnxruntime-node is installed but failed to load: libonnxruntime.so.1: cannot open shared object file: No such file or directory');
  });

  it('in Node with onnxruntime-node, the cpu part uses it and passes nothing over', () => {
    const d = onnxruntimeCpu.describe!();
    expect(d).toMatchObject({ engine: 'onnxruntime-node', executionProvider: 'cpu', notUsed: [] });
  });
});

describe('onnxruntime-node sessions run in a worker thread (their create/run block the calling thread)', () => {
  it.skipIf(!available)('after a call, describe() says the sessions run in the worker, and the result matches MATH', async () => {
    const [q, k, v] = [t4(1, 2, 64, 16, 71), t4(1, 2, 64, 16, 72), t4(1, 2, 64, 16, 73)];
    const out = await withBackends([SDPBackend.ONNXRUNTIME], () => sdpa(q, k, v));
    expect(lastDispatch()?.ran?.backend).toBe(SDPBackend.ONNXRUNTIME);
    expect(onnxruntimeCpu.describe!()).toMatchObject({ engine: 'onnxruntime-node', sessionThread: { thread: 'worker' } });
    const ref = mathReference(buildParams('t', q, k, v, {}));
    const r = compare(await out.toFloat32(), ref, { atol: 1e-4, rtol: 1e-4 });
    expect(r.ok, r.message).toBe(true);
  });

  it.skipIf(!available)('when the worker cannot start, sessions run on the main thread, correctly, and sessionThread says why', async () => {
    // The starter is the module's injection point (default: startOrtWorker); this one fails as
    // worker_threads would where it is refused.
    const w = sessionsInWorker(ort, () => Promise.reject(new Error('worker_threads refused by this test\nsecond line')));
    expect(w.sessionThread()).toEqual({ thread: 'not started' });
    const model = buildAttentionModel(await loadOnnxSchema(), { op: 'Attention', dtype: 'float32', causal: false, scale: undefined, mask: 'none' });
    const session = await w.ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
    expect(w.sessionThread()).toEqual({
      thread: 'main',
      reason: 'the session worker did not start: worker_threads refused by this test; sessions run on the main thread and hold its event loop while they run',
    });
    const [q, k, v] = [t4(1, 2, 16, 8, 81), t4(1, 2, 16, 8, 82), t4(1, 2, 16, 8, 83)];
    const feed = (t: Tensor) => new w.ort.Tensor('float32', t.data as Float32Array, [...t.shape]);
    const y = (await session.run({ q: feed(q), k: feed(k), v: feed(v) })).y;
    const r = compare(y.data as Float32Array, mathReference(buildParams('t', q, k, v, {})), { atol: 1e-4, rtol: 1e-4 });
    expect(r.ok, r.message).toBe(true);
    await session.release();
  });

  it.skipIf(!available || !existsSync(new URL('../dist/backends/onnxruntime/cpu.js', import.meta.url)))(
    'a build without the worker module: ONNXRUNTIME still runs (on the main thread) and capabilities() says why',
    () => {
      // The real condition the code checks (worker-ort.ts: the built worker module next to it):
      // a copy of dist/ without node-worker.js, onnxruntime-node found through a node_modules link.
      const root = new URL('..', import.meta.url).pathname;
      const dir = mkdtempSync(join(tmpdir(), 'sdpa-no-ort-worker-'));
      try {
        cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true, filter: (src) => !/node-worker\.js(\.map)?$|browser-example/.test(src) });
        symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
        cpSync(join(root, 'package.json'), join(dir, 'package.json'));
        const script = `
          import { capabilities, sdpa, tensor, withBackends, lastDispatch } from './dist/src/index.js';
          const t = (s) => tensor(Float32Array.from({ length: 2 * 32 * 16 }, (_, i) => Math.sin(i * s)), [1, 2, 32, 16]);
          const [q, k, v] = [t(1), t(2), t(3)];
          const a = await (await withBackends(['ONNXRUNTIME'], () => sdpa(q, k, v))).toFloat32();
          const ran = lastDispatch().ran;
          const b = await (await withBackends(['MATH'], () => sdpa(q, k, v))).toFloat32();
          let diff = 0;
          for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
          const d = (await capabilities()).backends.find((x) => x.backend === 'ONNXRUNTIME' && x.device === 'cpu').details;
          console.log(JSON.stringify({ ran, diff, engine: d.engine, sessionThread: d.sessionThread }));
        `;
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
        expect(r.status, r.stderr).toBe(0);
        const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ran: unknown; diff: number; engine: string; sessionThread: { thread: string; reason: string } };
        expect(got.ran).toEqual({ backend: 'ONNXRUNTIME', device: 'cpu', kernel: 'attention' });
        expect(got.diff).toBeLessThan(1e-4);
        expect(got.engine).toBe('onnxruntime-node');
        expect(got.sessionThread.thread).toBe('main');
        expect(got.sessionThread.reason).toMatch(/^the session worker did not start: the worker module \S*\/dist\/backends\/onnxruntime\/node-worker\.js is not built \(npm run build\); sessions run on the main thread and hold its event loop while they run$/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!available)('a process that ran a call exits on its own (the idle worker does not keep it alive)', () => {
    const root = new URL('..', import.meta.url).pathname;
    const script = `
      import { sdpa, tensor, withBackends, lastDispatch } from './dist/src/index.js';
      const t = () => tensor(Float32Array.from({ length: 2 * 32 * 16 }, (_, i) => Math.sin(i)), [1, 2, 32, 16]);
      await withBackends(['ONNXRUNTIME'], () => sdpa(t(), t(), t()));
      console.log(JSON.stringify(lastDispatch().ran));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ backend: 'ONNXRUNTIME', device: 'cpu', kernel: 'attention' });
  });

  it.skipIf(!available)('process.exit() while a session runs in the worker exits with its code (a terminate mid-run used to abort: 134)', () => {
    const root = new URL('..', import.meta.url).pathname;
    const script = `
      import { sdpa, tensor, withBackends } from './dist/src/index.js';
      const t = () => tensor(Float32Array.from({ length: 8 * 2048 * 64 }, (_, i) => Math.sin(i)), [1, 8, 2048, 64]);
      const [q, k, v] = [t(), t(), t()];
      await withBackends(['ONNXRUNTIME'], () => sdpa(q, k, v));
      void withBackends(['ONNXRUNTIME'], () => sdpa(q, k, v));
      setTimeout(() => process.exit(7), 30);
    `;
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 120_000 });
      expect(r.stderr).not.toMatch(/terminate called/);
      expect(r.status, r.stderr).toBe(7);
    }
  });
});

describe('onnxruntime-web session calls one at a time (serial.ts)', () => {
  /**
   * A module with onnxruntime-web's browser guard: one module-wide "call in flight" slot; a call
   * started while another awaits throws "Session already started", and clearing the slot on its
   * way out makes the first fail with "Session mismatch" (ort.bundle.min.mjs, 1.30).
   */
  function guardedModule(): OrtModuleLike & { calls: string[] } {
    let slot: object | null = null;
    const calls: string[] = [];
    const guarded = async <T>(name: string, f: () => T): Promise<T> => {
      const mine = {};
      try {
        // As onnxruntime-web: the check is inside the try, so the refused call's finally clears the slot.
        if (slot) throw new Error('Session already started');
        slot = mine;
        calls.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, 5));
        if (slot !== mine) throw new Error('Session mismatch');
        calls.push(`end ${name}`);
        return f();
      } finally {
        slot = null;
      }
    };
    class T {
      constructor(
        readonly type: string,
        readonly data: ArrayBufferView,
        readonly dims: readonly number[],
      ) {}
    }
    return {
      calls,
      Tensor: T,
      InferenceSession: {
        create: (model: Uint8Array) =>
          guarded(`create ${model[0]}`, () => ({
            run: (feeds: Record<string, OrtTensorLike>) => guarded(`run ${model[0]}`, () => ({ y: feeds.x })),
            release: () => guarded(`release ${model[0]}`, () => undefined),
          })),
      },
      env: { versions: { web: 'fake' } },
    };
  }
  const feeds = (ort: OrtModuleLike, v: number) => ({ x: new ort.Tensor('float32', Float32Array.of(v), [1]) });

  it('the guard itself rejects overlapping calls (so the test below can fail)', async () => {
    const ort = guardedModule();
    const r = await Promise.allSettled([ort.InferenceSession.create(Uint8Array.of(1)), ort.InferenceSession.create(Uint8Array.of(2))]);
    expect(r.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok')).sort()).toEqual(['Session already started', 'Session mismatch']);
  });

  it('overlapping creates, runs and releases all succeed, in call order', async () => {
    const raw = guardedModule();
    const ort = oneAtATime(raw);
    const [a, b] = await Promise.all([ort.InferenceSession.create(Uint8Array.of(1)), ort.InferenceSession.create(Uint8Array.of(2))]);
    const outs = await Promise.all([a.run(feeds(ort, 1)), b.run(feeds(ort, 2)), a.run(feeds(ort, 3))]);
    expect(outs.map((o) => (o.y.data as Float32Array)[0])).toEqual([1, 2, 3]);
    await Promise.all([a.release(), b.release()]);
    expect(raw.calls.filter((c) => c.startsWith('start')).map((c) => c.slice(6))).toEqual(['create 1', 'create 2', 'run 1', 'run 2', 'run 1', 'release 1', 'release 2']);
    // Strictly one at a time: every start is followed by its own end.
    for (let i = 0; i < raw.calls.length; i += 2) expect(raw.calls[i + 1]).toBe(raw.calls[i].replace('start', 'end'));
  });

  it("a failing call does not stop the queue, and its error stays the caller's", async () => {
    const enqueue = operationQueue();
    const r = await Promise.allSettled([enqueue(() => Promise.reject(new Error('boom'))), enqueue(async () => 7)]);
    expect(r[0]).toMatchObject({ status: 'rejected', reason: new Error('boom') });
    expect(r[1]).toEqual({ status: 'fulfilled', value: 7 });
  });
});
