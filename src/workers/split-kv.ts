/**
 * Split-KV attention on one machine: the keys/values are cut into contiguous chunks, each chunk is
 * attended by a worker (worker_threads in Node, Web Workers in browsers) running the EFFICIENT CPU
 * kernel on its key range, and the partial results are merged by their log-sum-exps — exact, since
 * attention over A ∪ B is the LSE-weighted mix of attention over A and over B (src/advanced/merge.ts).
 *
 * Workers get the kernel's own source text (`efficientKernel.toString()`), so they need no module
 * resolution or build step, and compute exactly what the in-process EFFICIENT path computes.
 * Inputs travel once, in SharedArrayBuffers every worker reads.
 */
import { efficientKernel, makeEfficientJob, type EfficientJob } from '../../backends/efficient/cpu.js';
import { ensureBuiltinsRegistered } from '../builtins.js';
import { SDPBackend } from '../dispatch/types.js';
import { selectBackend } from '../dispatch/select.js';
import { withBackends } from '../dispatch/context.js';
import { outputTensor } from '../cpu/layout.js';
import { SdpaRangeError, SdpaTypeError, describeValue } from '../errors.js';
import { buildParams, type SdpaOptions } from '../params.js';
import { SdpaDispatchError } from '../sdpa.js';
import { Tensor } from '../tensor.js';
import { mergeStates } from '../advanced/merge.js';

/** Options of {@link sdpaSplitKv}: `sdpa`'s options plus the split. */
export interface SplitKvOptions extends Omit<SdpaOptions, 'device'> {
  /** Worker threads (and KV chunks); default min(4, available cores). 0 runs the chunks in-process. */
  workers?: number;
  /** Return the merged log-sum-exp too. */
  returnLse?: boolean;
}

/** One chunk's partial state. */
interface Partial {
  out: Float64Array;
  lse: Float64Array;
}

/** Message to a worker: the job (over shared memory) and the flat heads / rows to compute. */
interface WorkerRequest {
  job: EfficientJob;
  bhCount: number;
}

/** The worker's program: compile the kernel from its source, run one request, post the partial back. */
function workerSource(kind: 'node' | 'web'): string {
  const body = `
const kernel = (${efficientKernel.toString()});
function handle(msg) {
  const { job, bhCount } = msg;
  const out = new Float64Array(bhCount * job.s * job.ev);
  const lse = new Float64Array(bhCount * job.s).fill(-Infinity);
  kernel(job, 0, bhCount, 0, job.s, out, lse);
  return { out, lse };
}`;
  return kind === 'node'
    ? `${body}
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (msg) => { try { const r = handle(msg); parentPort.postMessage(r, [r.out.buffer, r.lse.buffer]); } catch (e) { parentPort.postMessage({ error: String(e && e.stack || e) }); } });`
    : `${body}
self.onmessage = (ev) => { try { const r = handle(ev.data); self.postMessage(r, [r.out.buffer, r.lse.buffer]); } catch (e) { self.postMessage({ error: String(e && e.stack || e) }); } };`;
}

interface NodeWorkerLike {
  on(ev: 'message', fn: (m: Partial | { error: string }) => void): void;
  on(ev: 'error', fn: (e: Error) => void): void;
  postMessage(m: WorkerRequest): void;
  terminate(): Promise<number>;
}
interface WebWorkerLike {
  onmessage: ((ev: { data: Partial | { error: string } }) => void) | null;
  onerror: ((ev: { message?: string }) => void) | null;
  postMessage(m: WorkerRequest): void;
  terminate(): void;
}

type Runner = (req: WorkerRequest) => Promise<Partial>;

/** Starts one worker and returns a function that runs a request on it and then ends it. */
function startWorker(): Runner | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const wt = proc?.getBuiltinModule?.('node:worker_threads') as { Worker: new (src: string, o: { eval: true }) => NodeWorkerLike } | undefined;
  if (wt) {
    const w = new wt.Worker(workerSource('node'), { eval: true });
    return (req) =>
      new Promise<Partial>((resolve, reject) => {
        w.on('message', (m) => ('error' in m ? reject(new Error(`split-KV worker failed: ${m.error}`)) : resolve(m)));
        w.on('error', reject);
        w.postMessage(req);
      }).finally(() => void w.terminate());
  }
  const g = globalThis as { Worker?: new (url: string) => WebWorkerLike; Blob?: typeof Blob; URL?: typeof URL };
  if (g.Worker && g.Blob && g.URL?.createObjectURL) {
    const url = g.URL.createObjectURL(new g.Blob([workerSource('web')], { type: 'text/javascript' }));
    const w = new g.Worker(url);
    return (req) =>
      new Promise<Partial>((resolve, reject) => {
        w.onmessage = (ev) => ('error' in ev.data ? reject(new Error(`split-KV worker failed: ${ev.data.error}`)) : resolve(ev.data));
        w.onerror = (ev) => reject(new Error(`split-KV worker failed: ${ev.message ?? 'error'}`));
        w.postMessage(req);
      }).finally(() => {
        w.terminate();
        g.URL!.revokeObjectURL(url);
      });
  }
  return undefined;
}

/** A copy of `a` in shared memory (one copy, read by every worker), or `a` itself without SharedArrayBuffer. */
function shared<T extends Float32Array | Uint8Array>(a: T): T {
  if (typeof SharedArrayBuffer === 'undefined') return a;
  const ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const s = new ctor(new SharedArrayBuffer(a.byteLength));
  (s as Float32Array).set(a as Float32Array);
  return s;
}

function defaultWorkers(): number {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const os = proc?.getBuiltinModule?.('node:os') as { availableParallelism?: () => number } | undefined;
  const n = os?.availableParallelism?.() ?? (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 4;
  return Math.max(1, Math.min(4, n));
}

/**
 * Attention with the keys/values split over workers, then merged by log-sum-exp. Same result as
 * `sdpa()` on EFFICIENT_ATTENTION (same options, structured biases included); the split must be
 * one EFFICIENT (cpu) can run, else it throws {@link SdpaDispatchError} with EFFICIENT's reasons.
 *
 * @example const out = await sdpaSplitKv(q, k, v, { workers: 4, isCausal: true });
 */
export function sdpaSplitKv(q: Tensor, k: Tensor, v: Tensor, opts: SplitKvOptions & { returnLse: true }): Promise<{ out: Tensor; lse: Tensor }>;
export function sdpaSplitKv(q: Tensor, k: Tensor, v: Tensor, opts?: SplitKvOptions): Promise<Tensor>;
export async function sdpaSplitKv(q: Tensor, k: Tensor, v: Tensor, opts?: SplitKvOptions): Promise<Tensor | { out: Tensor; lse: Tensor }> {
  const fn = 'sdpaSplitKv';
  const { workers: rawWorkers, returnLse, ...rest } = opts ?? {};
  if (rawWorkers !== undefined && (typeof rawWorkers !== 'number' || !Number.isInteger(rawWorkers) || rawWorkers < 0)) {
    throw new (typeof rawWorkers === 'number' ? SdpaRangeError : SdpaTypeError)(fn, { argument: 'opts.workers', expected: 'a non-negative integer', received: describeValue(rawWorkers) });
  }
  ensureBuiltinsRegistered();
  const params = Object.freeze({ ...buildParams(fn, q, k, v, { ...rest, device: 'cpu' }), needLse: true });
  // The chunks run EFFICIENT's kernel: the call must be one EFFICIENT (cpu) accepts.
  const report = await withBackends([SDPBackend.EFFICIENT_ATTENTION], async () => selectBackend(params));
  if (!report.selected) throw new SdpaDispatchError(params, report);
  const nWorkers = rawWorkers ?? defaultWorkers();
  const chunks = Math.max(1, Math.min(nWorkers || 1, params.l));
  const base = makeEfficientJob(params);
  const job: EfficientJob = { ...base, q: shared(base.q), k: shared(base.k), v: shared(base.v), mask: base.mask ? shared(base.mask) : null };
  const bhCount = params.batch * params.hq;
  const bounds = Array.from({ length: chunks + 1 }, (_, c) => Math.round((c * params.l) / chunks));
  const requests: WorkerRequest[] = bounds.slice(0, -1).map((jMin, c) => ({ job: { ...job, jMin, jMax: bounds[c + 1] }, bhCount }));
  const runInProcess: Runner = async (req) => {
    const out = new Float64Array(bhCount * params.s * params.ev);
    const lse = new Float64Array(bhCount * params.s).fill(-Infinity);
    efficientKernel(req.job, 0, bhCount, 0, params.s, out, lse);
    return { out, lse };
  };
  const partials = await Promise.all(requests.map((req) => (nWorkers > 0 ? (startWorker() ?? runInProcess) : runInProcess)(req)));
  let acc = partials[0];
  for (const p of partials.slice(1)) acc = mergeStates(acc.out, acc.lse, p.out, p.lse, params.ev);
  const out = outputTensor(params, acc.out);
  if (!returnLse) return out;
  return { out, lse: new Tensor({ shape: params.q.shape.slice(0, -1), dtype: 'float32', data: Float32Array.from(acc.lse) }) };
}
