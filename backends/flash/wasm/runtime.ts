/**
 * Loads and runs the WebAssembly flash kernel (csrc/kernel_wasm.cc, embedded as base64 in
 * src/generated/flash-wasm.ts): detects SIMD128, relaxed SIMD and threads with
 * `WebAssembly.validate` and the runtime's facts, and runs calls on workers — several sharing one
 * `WebAssembly.Memory` where SharedArrayBuffer is usable (Node; cross-origin isolated pages), one
 * owning its memory otherwise. Never on the calling thread: the event loop stays free.
 *
 * Workers are `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })` in browsers,
 * the literal form bundlers (Vite, webpack, Rollup plugins) follow and emit, and
 * `node:worker_threads` on the same file in Node (from the sources, vitest's case, on the built copy
 * under dist/, since a worker thread cannot load TypeScript).
 */
import { base64ToBytes } from '../../../src/assets.js';
import { envVar } from '../../../src/env.js';
import { readOutput, stageCall, WASM_STACK_BYTES, WasmMemoryError, type FlashWasmExports, type WasmJob } from './abi.js';
import type { WorkerReply, WorkerRequest } from './worker.js';
import type { Availability } from '../../../src/dispatch/types.js';

/** The SIMD flavours the modules are built in. */
export type WasmSimd = 'simd128' | 'relaxed';

/** What this engine offers the WebAssembly kernel (`capabilities()` shows it). */
export interface WasmFeatures {
  /** WebAssembly itself. */
  readonly webassembly: boolean;
  /** The SIMD128 module validates. */
  readonly simd128: boolean;
  /** The relaxed-SIMD (FMA) module validates. */
  readonly relaxedSimd: boolean;
  /** Workers sharing one memory: shared memory + atomics validate and SharedArrayBuffer is usable. */
  readonly threads: boolean;
  /** Why not, when `threads` is false. */
  readonly threadsReason?: string;
  /** Some worker mechanism exists (worker_threads, Web Workers); the kernel never runs on the calling thread. */
  readonly workers: boolean;
  readonly workersReason?: string;
  /** Threads a call uses by default (SDPA_NUM_THREADS in Node, else the cores; 1 without `threads`). */
  readonly defaultThreads: number;
}

type NodeProcess = { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown };
const proc = (globalThis as { process?: NodeProcess }).process;
const isNode = !!proc?.versions?.node && typeof proc.getBuiltinModule === 'function';

let binaries: Readonly<Record<string, string>> | undefined;
let loadError: string | undefined;
let features: WasmFeatures | undefined;

/** Module file of a flavour and threading. */
function moduleFile(simd: WasmSimd, threaded: boolean): string {
  return `flash-${simd}${threaded ? '-threads' : ''}.wasm`;
}

function bytesOf(file: string): Uint8Array<ArrayBuffer> | undefined {
  const b64 = binaries?.[file];
  return b64 === undefined ? undefined : base64ToBytes(b64);
}

function cores(): number {
  if (isNode) {
    const os = proc!.getBuiltinModule!('node:os') as { availableParallelism?: () => number; cpus(): unknown[] };
    return os.availableParallelism?.() ?? os.cpus().length;
  }
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}

/** The built worker module exists (Node, running from the TypeScript sources: dist/ must be built). */
function nodeWorkerUrl(): URL {
  const rel = import.meta.url.endsWith('.ts') ? '../../../dist/backends/flash/wasm/worker.js' : './worker.js';
  return new URL(rel, import.meta.url);
}

function detect(): WasmFeatures {
  const W = (globalThis as { WebAssembly?: typeof WebAssembly }).WebAssembly;
  const n = Number(envVar('SDPA_NUM_THREADS'));
  const dflt = Number.isInteger(n) && n > 0 ? n : Math.max(1, Math.min(16, cores()));
  if (!W || typeof W.validate !== 'function') return { webassembly: false, simd128: false, relaxedSimd: false, threads: false, threadsReason: 'no WebAssembly', workers: false, workersReason: 'no WebAssembly', defaultThreads: 1 };
  const ok = (f: string): boolean => {
    const b = bytesOf(f);
    return !!b && W.validate(b);
  };
  const simd128 = ok(moduleFile('simd128', false));
  const relaxedSimd = ok(moduleFile('relaxed', false));
  let workers = true, workersReason: string | undefined;
  if (isNode) {
    const fs = proc!.getBuiltinModule!('node:fs') as { existsSync(p: URL): boolean };
    if (!fs.existsSync(nodeWorkerUrl())) {
      workers = false;
      workersReason = `the worker module ${nodeWorkerUrl().pathname} is not built (npm run build)`;
    }
  } else if (typeof (globalThis as { Worker?: unknown }).Worker !== 'function') {
    workers = false;
    workersReason = 'this context has no Worker constructor (the kernel never runs on the calling thread)';
  }
  let threadsReason: string | undefined;
  const sabUsable = typeof SharedArrayBuffer === 'function' && (isNode || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true);
  if (!ok(moduleFile('simd128', true))) threadsReason = 'this engine does not validate shared memory with atomics (wasm threads)';
  else if (!sabUsable) threadsReason = 'SharedArrayBuffer is not usable here (the page is not cross-origin isolated: serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  else if (!workers) threadsReason = workersReason;
  const threads = threadsReason === undefined;
  return { webassembly: true, simd128, relaxedSimd, threads, ...(threads ? {} : { threadsReason }), workers, ...(workers ? {} : { workersReason }), defaultThreads: threads ? dflt : 1 };
}

/** Loads the embedded modules (a lazily imported chunk) and detects features; never throws. */
export async function initWasm(): Promise<void> {
  if (binaries || loadError) return;
  try {
    binaries = (await import('../../../src/generated/flash-wasm.js')).FLASH_WASM;
  } catch (e) {
    loadError = `the embedded WebAssembly modules could not be loaded (${e instanceof Error ? e.message : String(e)})`;
  }
  features = detect();
}

/** Features found, once {@link initWasm} ran (undefined before). */
export function wasmFeatures(): WasmFeatures | undefined {
  return features;
}

/** wasmAvailability's last answer per kernel, with the engine state it was made from. */
const availabilityMemo = new Map<string, { features: WasmFeatures | undefined; loadError: string | undefined; a: Availability }>();

/**
 * Whether the kernel of this flavour can run here, and why not (`name` starts the sentence). Asked
 * by every dispatch on the CPU: the answer is made again only when the engine's state (probed,
 * failed to load) changed.
 */
export function wasmAvailability(name: string, simd: WasmSimd): Availability {
  const m = availabilityMemo.get(name);
  if (m && m.features === features && m.loadError === loadError) return m.a;
  const why = unavailableNow(name, simd);
  const a: Availability = why === undefined ? { available: true } : { available: false, reason: why };
  availabilityMemo.set(name, { features, loadError, a });
  return a;
}

/** Why the kernel of this flavour cannot run here, or undefined when it can ({@link wasmAvailability}). */
export function wasmUnavailable(name: string, simd: WasmSimd): string | undefined {
  const a = wasmAvailability(name, simd);
  return a.available ? undefined : a.reason;
}

function unavailableNow(name: string, simd: WasmSimd): string | undefined {
  if (loadError) return `${name}: ${loadError}`;
  if (!features) return `${name}: the WebAssembly engine has not been probed yet (await capabilities(), or call sdpa())`;
  if (!features.webassembly) return `${name} needs WebAssembly, which this JavaScript engine lacks`;
  if (simd === 'simd128' && !features.simd128) return `${name} needs WebAssembly SIMD128, which this engine lacks (WebAssembly.validate refused the module)`;
  if (simd === 'relaxed' && !features.relaxedSimd)
    return `${name} needs WebAssembly relaxed SIMD, which this engine lacks (WebAssembly.validate refused the module${isNode ? '; Node 20 has it behind --experimental-wasm-relaxed-simd, Node 22 on by default' : ''})`;
  if (!features.workers) return `${name} runs on a worker, and ${features.workersReason}`;
  return undefined;
}

// ---- workers ---------------------------------------------------------------------------------

interface Handle {
  post(m: WorkerRequest, transfer?: ArrayBuffer[]): void;
  listen(fn: (m: WorkerReply) => void, onError: (e: Error) => void): () => void;
  ref(): void;
  unref(): void;
  terminate(): void;
}

interface NodeWorker {
  postMessage(m: WorkerRequest, transfer?: ArrayBuffer[]): void;
  on(ev: 'message', fn: (m: WorkerReply) => void): void;
  on(ev: 'error', fn: (e: Error) => void): void;
  off(ev: 'message' | 'error', fn: (...a: never[]) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}

function spawn(): Handle {
  if (isNode) {
    const { Worker } = proc!.getBuiltinModule!('node:worker_threads') as { Worker: new (url: URL, o: { execArgv: string[] }) => NodeWorker };
    // No inherited flags: the worker is a plain .js module that needs none, and some are refused in
    // a worker (`--input-type` of a `node -e` parent, V8 options such as --experimental-wasm-relaxed-simd,
    // which apply process-wide anyway).
    const w = new Worker(nodeWorkerUrl(), { execArgv: [] });
    w.unref();
    return {
      post: (m, t) => w.postMessage(m, t),
      listen(fn, onError) {
        w.on('message', fn);
        w.on('error', onError);
        return () => {
          w.off('message', fn);
          w.off('error', onError);
        };
      },
      ref: () => w.ref(),
      unref: () => w.unref(),
      terminate: () => void w.terminate(),
    };
  }
  const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  return {
    post: (m, t) => w.postMessage(m, t ?? []),
    listen(fn, onError) {
      const onMsg = (ev: MessageEvent<WorkerReply>): void => fn(ev.data);
      const onErr = (ev: ErrorEvent): void => onError(new Error(ev.message || 'worker error'));
      w.addEventListener('message', onMsg);
      w.addEventListener('error', onErr);
      return () => {
        w.removeEventListener('message', onMsg);
        w.removeEventListener('error', onErr);
      };
    },
    ref: () => {},
    unref: () => {},
    terminate: () => w.terminate(),
  };
}

/** Sends `m` and resolves with the first reply that `accept` takes (rejects on error replies). */
function request<T extends WorkerReply>(h: Handle, m: WorkerRequest, accept: (r: WorkerReply) => r is T, transfer?: ArrayBuffer[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = h.listen(
      (r) => {
        if (r.type === 'error' && (r.id === -1 || ('id' in m && r.id === m.id))) {
          stop();
          reject(r.memory ? new WasmMemoryError(r.message) : new Error(r.message));
        } else if (accept(r)) {
          stop();
          resolve(r);
        }
      },
      (e) => {
        stop();
        reject(e);
      },
    );
    h.post(m, transfer);
  });
}

const isReady = (r: WorkerReply): r is Extract<WorkerReply, { type: 'ready' }> => r.type === 'ready';

let nextId = 1;

/** Result of one run: the output and how many of the plan's jobs ran (fewer after a cancel). */
export interface WasmRunResult {
  readonly out: Float32Array | Uint16Array;
  readonly jobs: number;
  readonly njobs: number;
  readonly threads: number;
  /** Jobs each thread took from the shared counter, and its time inside the kernel (threaded runs). */
  readonly perThread?: readonly { readonly jobs: number; readonly busyMs: number }[];
}

/** The module's workers and memory for one flavour; calls run one at a time, in order. */
abstract class Pool {
  protected tail: Promise<unknown> = Promise.resolve();
  protected module: Promise<WebAssembly.Module>;
  constructor(protected readonly file: string) {
    const bytes = bytesOf(file);
    if (!bytes) throw new Error(`${file} is not among the embedded WebAssembly modules`);
    this.module = WebAssembly.compile(bytes);
  }
  /** Queues a call behind the running one (one parallel region at a time, like the native pool). */
  run(job: WasmJob, threads: number, signal: AbortSignal | undefined): Promise<WasmRunResult> {
    const r = this.tail.then(() => this.runNow(job, threads, signal));
    this.tail = r.catch(() => undefined);
    return r;
  }
  protected abstract runNow(job: WasmJob, threads: number, signal: AbortSignal | undefined): Promise<WasmRunResult>;
}

/** Workers sharing one WebAssembly.Memory; the main thread only stages calls and reads results. */
class ThreadedPool extends Pool {
  private memory: WebAssembly.Memory | undefined;
  private host: FlashWasmExports | undefined;
  private workers: Handle[] = [];

  private async ensure(n: number): Promise<{ memory: WebAssembly.Memory; host: FlashWasmExports }> {
    const module = await this.module;
    if (!this.memory || !this.host) {
      // The full 4 GiB wasm32 range as maximum (address space only: pages are committed on growth),
      // smaller where an engine cannot reserve that much.
      let memory: WebAssembly.Memory | undefined, err: unknown;
      for (const maximum of [65536, 16384, 4096]) {
        try {
          memory = new WebAssembly.Memory({ initial: 32, maximum, shared: true });
          break;
        } catch (e) {
          err = e;
        }
      }
      if (!memory) throw new Error(`a shared WebAssembly.Memory could not be created: ${String(err)}`);
      const inst = await WebAssembly.instantiate(module, { env: { memory } });
      this.memory = memory;
      this.host = inst.exports as unknown as FlashWasmExports;
    }
    while (this.workers.length < n) {
      const stack = this.host.sdpa_alloc(WASM_STACK_BYTES);
      if (stack === 0) throw new WasmMemoryError('no memory for a worker stack');
      const h = spawn();
      try {
        await request(h, { type: 'init', module, memory: this.memory, stack }, isReady);
      } catch (e) {
        h.terminate();
        throw e;
      }
      this.workers.push(h);
    }
    return { memory: this.memory, host: this.host };
  }

  protected async runNow(job: WasmJob, threads: number, signal: AbortSignal | undefined): Promise<WasmRunResult> {
    const { memory, host } = await this.ensure(threads);
    signal?.throwIfAborted();
    const st = stageCall(host, memory, job, threads);
    const words = new Int32Array(memory.buffer, st.ctl, 2);
    const onAbort = (): void => void Atomics.store(words, 1, 1);
    signal?.addEventListener('abort', onAbort, { once: true });
    const id = nextId++;
    const used = this.workers.slice(0, st.threads);
    for (const w of used) w.ref();
    try {
      const isDone = (r: WorkerReply): r is Extract<WorkerReply, { type: 'done' }> => r.type === 'done' && r.id === id;
      // allSettled: the memory is released only once every worker has stopped writing to it.
      const settled = await Promise.allSettled(used.map((w, i) => request(w, { type: 'run', id, plan: st.plan, ws: st.workspaces[i], ctl: st.ctl }, isDone)));
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      const jobs = settled.reduce((n, s) => n + (s.status === 'fulfilled' ? s.value.jobs : 0), 0);
      const perThread = settled.map((s) => (s.status === 'fulfilled' ? { jobs: s.value.jobs, busyMs: s.value.busyMs } : { jobs: 0, busyMs: 0 }));
      return { out: jobs === st.njobs ? readOutput(memory, st, job.dtype) : new Float32Array(0), jobs, njobs: st.njobs, threads: st.threads, perThread };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      for (const w of used) w.unref();
      host.sdpa_release(st.mark);
    }
  }
}

/** One worker owning its memory (no SharedArrayBuffer): it stages and runs calls in slices. */
class SinglePool extends Pool {
  private worker: Handle | undefined;

  private async ensure(): Promise<Handle> {
    if (!this.worker) {
      const h = spawn();
      try {
        await request(h, { type: 'init', module: await this.module }, isReady);
      } catch (e) {
        h.terminate();
        throw e;
      }
      this.worker = h;
    }
    return this.worker;
  }

  protected async runNow(job: WasmJob, _threads: number, signal: AbortSignal | undefined): Promise<WasmRunResult> {
    const w = await this.ensure();
    signal?.throwIfAborted();
    const id = nextId++;
    const onAbort = (): void => w.post({ type: 'cancel', id });
    signal?.addEventListener('abort', onAbort, { once: true });
    w.ref();
    try {
      const isResult = (r: WorkerReply): r is Extract<WorkerReply, { type: 'result' }> => r.type === 'result' && r.id === id;
      // Structured clone copies each array's whole buffer: send only the viewed bytes.
      const own = <A extends ArrayBufferView>(a: A): A => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : ((a as unknown as { slice(): A }).slice()));
      const sent: WasmJob = { ...job, q: own(job.q), k: job.k === job.q ? own(job.q) : own(job.k), v: own(job.v), ...(job.mask ? { mask: own(job.mask) } : {}) };
      const r = await request(w, { type: 'call', id, job: sent, sliceMs: 10 }, isResult);
      return { out: r.out, jobs: r.jobs, njobs: r.njobs, threads: 1 };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      w.unref();
    }
  }
}

const pools = new Map<string, Pool>();

/**
 * Runs a job on the kernel of `simd` with `threads` threads (1 when threads are not usable here).
 * Rejects with WasmMemoryError when linear memory cannot hold the call.
 */
export function runWasm(job: WasmJob, simd: WasmSimd, threads: number, signal?: AbortSignal): Promise<WasmRunResult> {
  const f = features;
  if (!f) throw new Error('initWasm() has not run');
  const threaded = f.threads;
  const file = moduleFile(simd, threaded);
  let pool = pools.get(file);
  if (!pool) pools.set(file, (pool = threaded ? new ThreadedPool(file) : new SinglePool(file)));
  return pool.run(job, threaded ? Math.max(1, threads) : 1, signal);
}
