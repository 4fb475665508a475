/**
 * Split-KV attention on one machine: the keys/values are cut into contiguous chunks, each chunk is
 * attended by a worker (worker_threads in Node, module Web Workers in browsers) running the
 * EFFICIENT CPU kernel on its key range (split-kv-worker.ts), and the partial results are merged
 * by their log-sum-exps — exact, since attention over A ∪ B is the LSE-weighted mix of attention
 * over A and over B (src/advanced/merge.ts). Inputs travel once, in SharedArrayBuffers every
 * worker reads.
 */
import { makeEfficientJob, type EfficientJob } from './cpu.js';
import { handleSplitKv, type SplitKvReply, type SplitKvRequest } from './split-kv-worker.js';
import { SDPBackend } from '../../src/dispatch/types.js';
import { selectBackend } from '../../src/dispatch/select.js';
import { withBackends } from '../../src/dispatch/scope.js';
import { outputTensor } from '../../src/cpu/layout.js';
import { SdpaAbortError, SdpaRangeError, SdpaTypeError, describeValue } from '../../src/errors.js';
import { buildParams, ownOptions, type SdpaOptions } from '../../src/params.js';
import { SdpaDispatchError } from '../../src/dispatch/no-backend.js';
import { Tensor } from '../../src/tensor.js';
import { mergeStates } from '../../src/advanced/merge.js';

/** Options of {@link sdpaSplitKv}: `sdpa`'s options plus the split. */
export interface SplitKvOptions extends Omit<SdpaOptions, 'device' | 'verify' | 'returnWeights'> {
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

type WorkerRequest = SplitKvRequest;

/**
 * The compiled worker module. From dist/ it sits beside this file; from the sources (vitest runs
 * TypeScript, which a worker thread cannot load) it is the build's copy under dist/.
 */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('../../dist/backends/efficient/split-kv-worker.js', import.meta.url)
    : new URL('./split-kv-worker.js', import.meta.url);
}

interface NodeWorkerLike {
  on(ev: 'message', fn: (m: SplitKvReply) => void): void;
  on(ev: 'error', fn: (e: Error) => void): void;
  postMessage(m: WorkerRequest): void;
  terminate(): Promise<number>;
}
interface WebWorkerLike {
  onmessage: ((ev: { data: SplitKvReply }) => void) | null;
  onerror: ((ev: { message?: string }) => void) | null;
  postMessage(m: WorkerRequest): void;
  terminate(): void;
}

type Runner = (req: WorkerRequest, signal: AbortSignal | undefined) => Promise<Partial>;

/** Rejects `reject` when `signal` fires (after `stop`, which ends the worker); returns the unsubscribe. */
function onAbort(signal: AbortSignal | undefined, stop: () => void, reject: (e: unknown) => void): () => void {
  if (!signal) return () => {};
  const h = (): void => {
    stop();
    reject(signal.reason);
  };
  signal.addEventListener('abort', h, { once: true });
  return () => signal.removeEventListener('abort', h);
}

/** Starts one worker and returns a function that runs a request on it and then ends it (at once when the signal fires). */
function startWorker(): Runner | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const wt = proc?.getBuiltinModule?.('node:worker_threads') as { Worker: new (url: URL) => NodeWorkerLike } | undefined;
  if (wt) {
    const w = new wt.Worker(workerUrl());
    return (req, signal) => {
      let off = (): void => {};
      return new Promise<Partial>((resolve, reject) => {
        off = onAbort(signal, () => void w.terminate(), reject);
        w.on('message', (m) => ('error' in m ? reject(new Error(`split-KV worker failed: ${m.error}`)) : resolve(m)));
        w.on('error', reject);
        w.postMessage(req);
      }).finally(() => {
        off();
        void w.terminate();
      });
    };
  }
  const g = globalThis as { Worker?: new (url: URL, o: { type: 'module' }) => WebWorkerLike };
  if (g.Worker) {
    const w = new g.Worker(workerUrl(), { type: 'module' });
    return (req, signal) => {
      let off = (): void => {};
      return new Promise<Partial>((resolve, reject) => {
        off = onAbort(signal, () => w.terminate(), reject);
        w.onmessage = (ev) => ('error' in ev.data ? reject(new Error(`split-KV worker failed: ${ev.data.error}`)) : resolve(ev.data));
        w.onerror = (ev) => reject(new Error(`split-KV worker failed: ${ev.message ?? 'error'}`));
        w.postMessage(req);
      }).finally(() => {
        off();
        w.terminate();
      });
    };
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

/** Cores this process may use (os.availableParallelism, navigator.hardwareConcurrency, else 4). */
function availableCores(): number {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const os = proc?.getBuiltinModule?.('node:os') as { availableParallelism?: () => number } | undefined;
  const n = os?.availableParallelism?.() ?? (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 4;
  return Math.max(1, Math.floor(n));
}

function defaultWorkers(): number {
  return Math.min(4, availableCores());
}

/**
 * Workers a call starts for `asked`: at most the available cores (a thread per core is all the
 * split can use; { workers: 2**31 } once started one thread per key, 256 threads and 1.4 GB for a
 * small problem) and at most one per key.
 */
export function splitKvWorkers(asked: number | undefined, keys: number): number {
  const n = asked ?? defaultWorkers();
  if (n === 0) return 0;
  return Math.max(1, Math.min(n, availableCores(), keys));
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
  if (opts !== undefined && (opts === null || typeof opts !== 'object' || Array.isArray(opts))) {
    throw new SdpaTypeError(fn, { argument: 'opts', expected: 'an options object or undefined', received: describeValue(opts) });
  }
  // Own properties only (an option on Object.prototype is not this call's); the rest is sdpa's, validated strictly by buildParams.
  const { workers: rawWorkers, returnLse, signal, ...rest } = ownOptions(opts ?? {});
  if (returnLse !== undefined && typeof returnLse !== 'boolean') throw new SdpaTypeError(fn, { argument: 'opts.returnLse', expected: 'a boolean', received: describeValue(returnLse) });
  for (const key of ['verify', 'returnWeights'] as const) {
    if ((rest as Record<string, unknown>)[key] !== undefined) throw new SdpaTypeError(fn, { argument: `opts.${key}`, expected: `no ${key} (sdpaSplitKv merges partial results; use sdpa for it)`, received: describeValue((rest as Record<string, unknown>)[key]) });
  }
  if (signal !== undefined && !(typeof AbortSignal !== 'undefined' && signal instanceof AbortSignal)) {
    throw new SdpaTypeError(fn, { argument: 'opts.signal', expected: 'an AbortSignal (from an AbortController)', received: describeValue(signal) });
  }
  if (rawWorkers !== undefined && (typeof rawWorkers !== 'number' || !Number.isSafeInteger(rawWorkers) || rawWorkers < 0)) {
    throw new (typeof rawWorkers === 'number' ? SdpaRangeError : SdpaTypeError)(fn, { argument: 'opts.workers', expected: 'a non-negative integer (capped at the available cores)', received: describeValue(rawWorkers) });
  }
  const params = Object.freeze({ ...buildParams(fn, q, k, v, { ...rest, device: 'cpu' }), needLse: true });
  // The chunks run EFFICIENT's kernel: the call must be one EFFICIENT (cpu) accepts.
  const report = await withBackends([SDPBackend.EFFICIENT_ATTENTION], async () => selectBackend(params));
  if (!report.selected) throw new SdpaDispatchError(params, report);
  const nWorkers = splitKvWorkers(rawWorkers, params.l);
  const chunks = Math.max(1, Math.min(nWorkers || 1, params.l));
  const base = makeEfficientJob(params);
  const job: EfficientJob = { ...base, q: shared(base.q), k: shared(base.k), v: shared(base.v), mask: base.mask ? shared(base.mask) : null };
  const bhCount = params.batch * params.hq;
  const bounds = Array.from({ length: chunks + 1 }, (_, c) => Math.round((c * params.l) / chunks));
  const requests: WorkerRequest[] = bounds.slice(0, -1).map((jMin, c) => ({ job: { ...job, jMin, jMax: bounds[c + 1] }, bhCount }));
  const runInProcess: Runner = async (req, sig) => {
    sig?.throwIfAborted();
    return handleSplitKv(req);
  };
  if (signal?.aborted) throw new SdpaAbortError(fn, 'queued', signal.reason);
  let partials: Partial[];
  try {
    partials = await Promise.all(requests.map((req) => (nWorkers > 0 ? (startWorker() ?? runInProcess) : runInProcess)(req, signal)));
  } catch (err) {
    // The workers were terminated; the partial states are dropped.
    if (signal?.aborted) throw new SdpaAbortError(fn, 'running', signal.reason, { backend: SDPBackend.EFFICIENT_ATTENTION, device: 'cpu', kernel: 'split_kv_workers' });
    throw err;
  }
  let acc = partials[0];
  for (const p of partials.slice(1)) acc = mergeStates(acc.out, acc.lse, p.out, p.lse, params.ev);
  const out = outputTensor(params, acc.out);
  if (!returnLse) return out;
  return { out, lse: new Tensor({ shape: params.q.shape.slice(0, -1), dtype: 'float32', data: Float32Array.from(acc.lse) }) };
}
