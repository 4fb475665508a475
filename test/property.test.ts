/**
 * Property-based parity (fast-check): random problems, every registered backend part that calls
 * the problem eligible against the float64 math reference with the part's own tolerance, and
 * NaN/Inf inputs that must never crash a kernel. At least 500 problems per run of `npm test`;
 * `npm run fuzz` runs 10,000+ with a reproducible seed (FUZZ_SEED, FUZZ_RUNS).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capabilities, explainDispatch, sdpa, tensor, withBackends, Tensor, type FloatDType, type SdpaTypeError } from '../src/index.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';
import { compare } from './helpers/compare.js';
import { buildProblem, problemSpec, type ProblemSpec } from './helpers/problems.js';
import { testedParts } from './helpers/parts.js';
import { ROOT, ensureDist } from './helpers/dist.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
const SEED = Number(process.env.FUZZ_SEED ?? 20261121);
await capabilities();
const parts = testedParts();
const counts = new Map<string, number>();

/** Runs one problem on every eligible part; throws (for fast-check to shrink) on a disagreement. */
async function checkProblem(spec: ProblemSpec): Promise<void> {
  const pr = buildProblem(spec);
  for (const { backend, part } of parts) {
    // WebGPU on CPU drivers is slow: property runs there use the smaller half of the space.
    if (part.device === 'webgpu' && spec.s * spec.l > 144) continue;
    const opts = { ...pr.opts, device: part.device };
    const cand = explainDispatch(pr.q, pr.k, pr.v, opts).candidates.find((c) => c.backend === backend)!;
    if (!cand.eligible) continue;
    const expected = mathReference(buildParams('property', pr.q, pr.k, pr.v, opts));
    const out = await withBackends([backend], () => sdpa(pr.q, pr.k, pr.v, opts));
    const got = await out.toFloat32();
    out.dispose();
    const c = compare(got, expected, part.tolerance[spec.dtype as FloatDType]);
    if (!c.ok) throw new Error(`${backend} (${part.device}) disagrees with math: ${c.message}`);
    const key = `${backend} (${part.device})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}

describe('property: every eligible backend equals the math reference', () => {
  it(`${RUNS} random problems (seed ${SEED})`, async () => {
    await fc.assert(fc.asyncProperty(problemSpec(), checkProblem), { numRuns: RUNS, seed: SEED, endOnFailure: false });
    const summary = [...counts].map(([k, n]) => `${k}: ${n}`).join(', ');
    console.log(`property runs per backend part — ${summary}`);
    for (const { backend, part } of parts) {
      if (part.availability().available) expect(counts.get(`${backend} (${part.device})`) ?? 0, `${backend} (${part.device}) ran no problem`).toBeGreaterThan(0);
    }
  }, 600_000);
});

describe('NaN and Inf never crash a kernel and follow the math formula', () => {
  // WGSL leaves NaN behaviour implementation-defined (min/max/exp may drop it), so the exact rule is
  // asserted on the CPU parts; the WebGPU parts are held to "no crash, right shape" below.
  it('a NaN in query row i makes output row i NaN on every CPU backend; other rows stay finite', async () => {
    const n = 2 * 6 * 16;
    const qv = new Float32Array(n).map((_, i) => Math.sin(i));
    qv[16 * 2 + 3] = NaN; // head 0, row 2
    const q = tensor(qv, [1, 2, 6, 16]);
    const k = tensor(new Float32Array(2 * 7 * 16).map((_, i) => Math.cos(i)), [1, 2, 7, 16]);
    const v = tensor(new Float32Array(2 * 7 * 16).map((_, i) => Math.sin(i * 0.3)), [1, 2, 7, 16]);
    for (const { backend, part } of parts.filter((x) => x.part.device === 'cpu')) {
      const cand = explainDispatch(q, k, v, { device: part.device }).candidates.find((c) => c.backend === backend)!;
      if (!cand.eligible) continue;
      const got = await (await withBackends([backend], () => sdpa(q, k, v, { device: part.device }))).toFloat32();
      for (let i = 0; i < 2 * 6; i++) {
        const row = got.subarray(i * 16, i * 16 + 16);
        expect(row.every((x) => (i === 2 ? Number.isNaN(x) : Number.isFinite(x))), `${backend} (${part.device}) row ${i}`).toBe(true);
      }
    }
  });

  it('random NaN/±Inf sprinkled into q, k, v and float masks: no throw, right shape, every backend', async () => {
    await fc.assert(
      fc.asyncProperty(problemSpec(12), fc.array(fc.tuple(fc.constantFrom('q', 'k', 'v'), fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity, 3e38)), { minLength: 1, maxLength: 4 }), async (spec, poison) => {
        const pr = buildProblem({ ...spec, dtype: 'float32' });
        for (const [name, idx, val] of poison) {
          const t = pr[name as 'q' | 'k' | 'v'];
          (t.data as Float32Array)[idx % t.size] = val;
        }
        for (const { backend, part } of parts) {
          if (part.device === 'webgpu' && spec.s * spec.l > 144) continue;
          const opts = { ...pr.opts, device: part.device };
          const cand = explainDispatch(pr.q, pr.k, pr.v, opts).candidates.find((c) => c.backend === backend)!;
          if (!cand.eligible) continue;
          const out = await withBackends([backend], () => sdpa(pr.q, pr.k, pr.v, opts));
          expect(out.shape).toEqual([...pr.q.shape.slice(0, -1), pr.v.shape[pr.v.shape.length - 1]]);
          await out.toFloat32();
          out.dispose();
        }
      }),
      { numRuns: 60, seed: SEED },
    );
  });
});

/**
 * Lifecycle misuse (issue 20): while or before a call runs, an input is detached (transferred),
 * its resizable buffer shrunk, it is disposed, reassigned, or the call is aborted — on every cpu
 * part and the webgpu parts. Allowed outcomes only: the reference result, or the library's own
 * error naming what happened (SdpaTypeError for the input, AbortError for the signal); never a
 * crash, a hang (every call races a timeout) or a silently different result. The terminate case
 * (a worker killed mid-call) runs in child processes: test/reliability-crash.test.ts.
 */
type Misuse = 'none' | 'detach-before' | 'detach-during' | 'resize-during' | 'dispose-before' | 'dispose-during' | 'reassign' | 'abort-before' | 'abort-during';
const MISUSES: readonly Misuse[] = ['none', 'detach-before', 'detach-during', 'resize-during', 'dispose-before', 'dispose-during', 'reassign', 'abort-before', 'abort-during'];
const LIFECYCLE_RUNS = Number(process.env.FUZZ_RUNS ? Math.max(300, Math.round(Number(process.env.FUZZ_RUNS) / 4)) : 300);
const lifecycleCounts = new Map<string, number>();

/** A copy of `t` over a fresh buffer (resizable when asked), so misuse never touches the problem's own arrays. */
function ownCopy(t: Tensor, resizable: boolean): Tensor {
  const d = t.contiguousData();
  const ctor = d.constructor as new (b: ArrayBuffer, o: number, n: number) => typeof d;
  const buf = resizable ? new ArrayBuffer(d.byteLength, { maxByteLength: d.byteLength + 64 }) : new ArrayBuffer(d.byteLength);
  const copy = new ctor(buf, 0, d.length);
  (copy as Float32Array).set(d as Float32Array);
  return tensor(copy, [...t.shape], t.dtype);
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`hang: ${what} did not settle in ${ms} ms`)), ms).unref?.())]);

describe('property: lifecycle misuse never crashes, hangs or returns a wrong result', () => {
  const lifecycleParts = parts.filter(({ part }) => part.availability().available);
  it(`${LIFECYCLE_RUNS} misuse runs over ${lifecycleParts.length} parts (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(problemSpec(12), fc.constantFrom(...MISUSES), fc.constantFrom<'q' | 'k' | 'v' | 'attnMask'>('q', 'k', 'v', 'attnMask'), fc.nat(lifecycleParts.length - 1), async (spec, misuse, target, partIndex) => {
        const { backend, part } = lifecycleParts[partIndex];
        if (part.device === 'webgpu' && spec.s * spec.l > 144) return;
        const pr = buildProblem(spec);
        // A problem without a mask tensor takes v as the victim of a mask misuse.
        const victimKey = target === 'attnMask' && !(pr.opts.attnMask instanceof Tensor) ? 'v' : target;
        const resizable = (k: string): boolean => misuse === 'resize-during' && k === victimKey;
        const inputs: Record<'q' | 'k' | 'v' | 'attnMask', Tensor | undefined> = {
          q: ownCopy(pr.q, resizable('q')),
          k: ownCopy(pr.k, resizable('k')),
          v: ownCopy(pr.v, resizable('v')),
          attnMask: pr.opts.attnMask instanceof Tensor ? ownCopy(pr.opts.attnMask, resizable('attnMask')) : undefined,
        };
        const victim = inputs[victimKey]!;
        const victimName = victimKey === 'attnMask' ? 'opts.attnMask' : victimKey;
        const ac = new AbortController();
        const opts = { ...pr.opts, ...(inputs.attnMask ? { attnMask: inputs.attnMask } : {}), device: part.device, signal: ac.signal };
        const cand = explainDispatch(inputs.q!, inputs.k!, inputs.v!, opts).candidates.find((c) => c.backend === backend)!;
        if (!cand.eligible) return;
        const expected = mathReference(buildParams('property', inputs.q!, inputs.k!, inputs.v!, opts));
        const detach = (t: Tensor): void => void structuredClone(t.data!.buffer, { transfer: [t.data!.buffer as ArrayBuffer] });
        if (misuse === 'detach-before') detach(victim);
        if (misuse === 'dispose-before') victim.dispose();
        if (misuse === 'abort-before') ac.abort(new Error('stop'));
        if (misuse === 'reassign') {
          expect(() => ((victim as { data: unknown }).data = new Float32Array(victim.size))).toThrow(TypeError);
          expect(() => ((victim as { offset: number }).offset = 1)).toThrow(TypeError);
        }
        let call: Promise<Tensor>;
        try {
          call = withBackends([backend], () => sdpa(inputs.q!, inputs.k!, inputs.v!, opts));
        } catch (e) {
          call = Promise.reject(e);
        }
        if (misuse.endsWith('-during')) {
          await Promise.resolve();
          if (misuse === 'detach-during') detach(victim);
          if (misuse === 'resize-during') (victim.data!.buffer as ArrayBuffer & { resize(n: number): void }).resize(0);
          if (misuse === 'dispose-during') victim.dispose();
          if (misuse === 'abort-during') ac.abort(new Error('stop'));
        }
        let out: Tensor | undefined;
        let err: Error | undefined;
        try {
          out = await withTimeout(call, 60_000, `${backend} (${part.device}) ${misuse}`);
        } catch (e) {
          err = e as Error;
        }
        const label = `${backend} (${part.device}) ${misuse} ${victimName}`;
        if (err?.message.startsWith('hang:')) throw err;
        if (misuse === 'none' || misuse === 'reassign') expect(err, `${label}: ${err?.message}`).toBeUndefined();
        if (misuse.endsWith('-before')) expect(err, label).toBeDefined();
        if (err) {
          if (misuse.startsWith('abort')) expect(err.name, `${label}: ${err.message}`).toBe('AbortError');
          else {
            expect(err.name, `${label}: ${err.message}`).toBe('SdpaTypeError');
            expect((err as SdpaTypeError).argument, `${label}: ${err.message}`).toBe(victimName);
          }
        } else {
          // Resolved: it must be the right answer (the misuse came after the result was complete).
          const got = await out!.toFloat32();
          out!.dispose();
          const c = compare(got, expected, part.tolerance[spec.dtype as FloatDType]);
          if (!c.ok) throw new Error(`${label}: resolved with a wrong result: ${c.message}`);
        }
        const key = `${backend} (${part.device})`;
        lifecycleCounts.set(key, (lifecycleCounts.get(key) ?? 0) + 1);
      }),
      { numRuns: LIFECYCLE_RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`lifecycle runs per backend part — ${[...lifecycleCounts].map(([k, n]) => `${k}: ${n}`).join(', ')}`);
    for (const { backend, part } of lifecycleParts) expect(lifecycleCounts.get(`${backend} (${part.device})`) ?? 0, `${backend} (${part.device}) ran no misuse case`).toBeGreaterThan(0);
  }, 600_000);
});

/**
 * Terminate: workers killed at random moments while they run calls (FLASH (cpu) natively, EFFICIENT,
 * and the webgpu parts when an adapter is present), all in one child process that must exit
 * normally: before issue 20, a terminate during a native call aborted the whole process.
 */
describe('property: workers terminated mid-call never take the process down', () => {
  const ROUNDS = process.env.FUZZ_RUNS ? Math.max(8, Math.round(Number(process.env.FUZZ_RUNS) / 200)) : 8;
  it(`${ROUNDS} workers terminated at random moments (seed ${SEED})`, async () => {
    ensureDist();
    const gpu = parts.some(({ part }) => part.device === 'webgpu' && part.availability().available);
    const schedule = fc.sample(
      fc.record({ delayMs: fc.integer({ min: 0, max: 120 }), device: fc.constantFrom(...(gpu && process.env.SDPA_TERMINATE_WEBGPU === '1' ? ['cpu', 'cpu', 'webgpu'] : ['cpu'])), backend: fc.constantFrom('FLASH_ATTENTION', 'EFFICIENT_ATTENTION', 'MATH'), s: fc.integer({ min: 1, max: 256 }) }),
      { numRuns: ROUNDS, seed: SEED },
    );
    const script = `
      import { Worker } from 'node:worker_threads';
      const schedule = ${JSON.stringify(schedule)};
      const src = \`
        import { parentPort, workerData } from 'node:worker_threads';
        const { sdpa, tensor, withBackends, capabilities } = await import(workerData.lib);
        await capabilities();
        const { s, device, backend } = workerData;
        const mk = (n, shape) => tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.01)), shape);
        const q = mk(4 * s * 32, [1, 4, s, 32]), k = mk(4 * 256 * 32, [1, 4, 256, 32]);
        parentPort.postMessage('ready');
        for (;;) {
          const out = await withBackends(backend === 'EFFICIENT_ATTENTION' ? [backend] : [backend, 'EFFICIENT_ATTENTION'], () => sdpa(q, k, k, { device }));
          await out.toFloat32();
          out.dispose();
        }
      \`;
      const codes = [];
      for (const round of schedule) {
        const w = new Worker(new URL('data:text/javascript,' + encodeURIComponent(src)), { workerData: { ...round, lib: new URL('./dist/src/index.js', 'file://' + process.cwd() + '/').href } });
        w.on('error', (e) => console.error('worker error', e.message));
        await new Promise((r) => w.once('message', r));
        await new Promise((r) => setTimeout(r, round.delayMs));
        codes.push(await w.terminate());
      }
      console.log(JSON.stringify({ codes }));
    `;
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.stderr).not.toMatch(/terminate called|Napi::Error|FATAL|Aborted/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/worker error/);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!).codes).toEqual(schedule.map(() => 1));
  }, 320_000);
});
