/**
 * ONNXRUNTIME (cpu) in Node runs onnxruntime-node's sessions on a worker thread (and in browsers
 * onnxruntime-web's in a Web Worker, web-ort.ts, through the same `ortOverMessages` and
 * `sessionsInWorker`)
 * (backends/onnxruntime/node-worker.ts), so that their synchronous creation and runs do not hold
 * the event loop. This module is the main thread's side: an {@link OrtModuleLike} whose
 * `InferenceSession.create` and `session.run` are requests to that worker. The engine
 * (engine.ts: graphs, session cache, feeds, output fix-ups) is unchanged and does not know.
 *
 * Costs: each call's feeds are copied once and moved to the worker, the output's buffer is moved
 * back; measured 1–15 ms per call on top of session.run (scripts/probes/ort-worker-cost.mjs). A run
 * still cannot be interrupted (as on the main thread); the worker is never terminated by the
 * library, and is unref'd while idle so it does not keep the process alive. Should the worker die,
 * its sessions' calls reject (a BackendFaultError of the call, which dispatch reports).
 */
import type { OrtModuleLike, OrtSessionLike, OrtSessionOptions, OrtTensorLike } from './ort-types.js';
import type { OrtWorkerReply, OrtWorkerRequest, WireTensor } from './node-worker.js';

/** A tensor on the main thread's side: what the engine builds feeds with and reads outputs from. */
class WorkerTensor implements OrtTensorLike {
  constructor(
    readonly type: string,
    readonly data: ArrayBufferView,
    readonly dims: readonly number[],
  ) {}
}

interface NodeWorker {
  postMessage(m: OrtWorkerRequest, transfer?: ArrayBuffer[]): void;
  on(ev: 'message', fn: (m: OrtWorkerReply) => void): void;
  on(ev: 'error', fn: (e: Error) => void): void;
  on(ev: 'exit', fn: (code: number) => void): void;
  ref(): void;
  unref(): void;
}

/** @internal The worker's own time in the last `session.run` (ms): scripts/probes/ort-worker-cost.mjs separates it from the round trip. */
export let lastRunMs = 0;

const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;

/** The worker module: the built copy next to this file, or dist/'s when running from the TypeScript sources (vitest). */
export function ortWorkerUrl(): URL {
  const rel = import.meta.url.endsWith('.ts') ? '../../dist/backends/onnxruntime/node-worker.js' : './node-worker.js';
  return new URL(rel, import.meta.url);
}

/** Thrown by {@link startOrtWorker} when onnxruntime-node fails to load in the worker (`notFound`: not installed). */
export class OrtWorkerLoadError extends Error {
  constructor(
    message: string,
    readonly notFound: boolean,
  ) {
    super(message);
    this.name = 'OrtWorkerLoadError';
  }
}

/**
 * Starts the worker and loads onnxruntime-node in it; resolves to the module that runs sessions
 * there. Rejects when worker_threads or the built worker module is missing, or onnxruntime-node
 * does not load in the worker.
 */
export async function startOrtWorker(): Promise<OrtModuleLike> {
  const wt = proc?.getBuiltinModule?.('node:worker_threads') as { Worker: new (url: URL, o: { execArgv: string[]; workerData: unknown }) => NodeWorker } | undefined;
  if (!wt) throw new Error('node:worker_threads is not available');
  const fs = proc!.getBuiltinModule!('node:fs') as { existsSync(u: URL): boolean };
  const url = ortWorkerUrl();
  if (!fs.existsSync(url)) throw new Error(`the worker module ${url.pathname} is not built (npm run build)`);
  // [0] calls inside onnxruntime, [1] exiting (node-worker.ts). At process exit Node terminates the
  // worker, and a terminate while onnxruntime-node is inside a call aborts the process (measured:
  // process.exit() during a run, exit code 134 instead of the one asked for): the exit handler waits
  // for the call in flight (at most one run) so the worker is terminated between calls.
  const words = new Int32Array(new SharedArrayBuffer(8));
  const onExit = (): void => {
    Atomics.store(words, 1, 1);
    // Bounded (60 s): a run that never returns must not keep the process from exiting.
    const end = performance.now() + 60_000;
    for (let n; (n = Atomics.load(words, 0)) !== 0 && performance.now() < end; ) Atomics.wait(words, 0, n, 1000);
  };
  (proc as unknown as { on(ev: 'exit', f: () => void): void }).on('exit', onExit);
  // No inherited flags: some are refused in a worker (see backends/flash/wasm/runtime.ts).
  const w = new wt.Worker(url, { execArgv: [], workerData: { words: words.buffer } });
  w.unref();
  const pending = new Map<number, { resolve(r: OrtWorkerReply): void; reject(e: Error): void }>();
  let dead: Error | undefined;
  let onReady: ((r: OrtWorkerReply) => void) | undefined;
  const fail = (e: Error): void => {
    dead ??= e;
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
    w.unref();
  };
  w.on('message', (r) => {
    if (r.type === 'ready' || r.type === 'load-failed') return onReady?.(r);
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if (pending.size === 0) w.unref();
    if (r.type === 'error') p.reject(new Error(r.message));
    else p.resolve(r);
  });
  w.on('error', (e) => fail(new Error(`the onnxruntime-node worker failed: ${e.message}`, { cause: e })));
  w.on('exit', (code) => fail(new Error(`the onnxruntime-node worker exited (code ${code})`)));

  const ready = await new Promise<OrtWorkerReply>((resolve, reject) => {
    onReady = resolve;
    w.ref();
    w.on('error', reject);
    w.on('exit', (code) => reject(new Error(`the onnxruntime-node worker exited (code ${code}) before it was ready`)));
  }).finally(() => w.unref());
  // After a failed load the worker's module returns and the thread ends by itself.
  if (ready.type === 'load-failed') throw new OrtWorkerLoadError(ready.message, ready.notFound);
  const versions = ready.type === 'ready' ? ready.versions : undefined;

  /** One request: the worker is ref'd while any is outstanding (a pending call keeps the process alive). */
  function request(m: OrtWorkerRequest, transfer?: ArrayBuffer[]): Promise<OrtWorkerReply> {
    if (dead) return Promise.reject(dead);
    return new Promise((resolve, reject) => {
      pending.set(m.id, { resolve, reject });
      w.ref();
      w.postMessage(m, transfer);
    });
  }
  return ortOverMessages(request, versions);
}

/**
 * An {@link OrtModuleLike} whose sessions live behind `request` (a worker speaking node-worker.ts's
 * protocol: the Node worker, or web-worker.ts in browsers).
 */
export function ortOverMessages(request: (m: OrtWorkerRequest, transfer?: ArrayBuffer[]) => Promise<OrtWorkerReply>, versions: Record<string, string> | undefined): OrtModuleLike {
  let nextId = 1;
  class WorkerSession implements OrtSessionLike {
    constructor(private readonly id: number) {}
    async run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>> {
      // Each feed copied once into a buffer of its own, which is then transferred (moved, not
      // copied again): a structured clone would copy twice (serialise here, deserialise there),
      // and the caller's buffers cannot be moved.
      const wire: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, t] of Object.entries(feeds)) {
        const data = (t.data as unknown as { slice(): ArrayBufferView }).slice();
        wire[name] = { type: t.type, data, dims: [...t.dims] };
        transfer.push(data.buffer as ArrayBuffer);
      }
      const r = await request({ type: 'run', id: nextId++, session: this.id, feeds: wire }, transfer);
      if (r.type !== 'ran') throw new Error(`onnxruntime worker: unexpected reply ${r.type}`);
      lastRunMs = r.runMs;
      const out: Record<string, OrtTensorLike> = {};
      for (const [name, t] of Object.entries(r.outputs)) out[name] = new WorkerTensor(t.type, t.data, t.dims);
      return out;
    }
    async release(): Promise<void> {
      await request({ type: 'release', id: nextId++, session: this.id });
    }
  }

  return {
    Tensor: WorkerTensor,
    InferenceSession: {
      async create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSessionLike> {
        const r = await request({ type: 'create', id: nextId++, model, options: { ...options } });
        if (r.type !== 'created') throw new Error(`onnxruntime worker: unexpected reply ${r.type}`);
        return new WorkerSession(r.session);
      },
    },
    env: { versions },
  };
}

/** Where ONNXRUNTIME (cpu)'s sessions run, and why not in a worker when not. */
export interface OrtSessionThread {
  readonly thread: 'worker' | 'main' | 'not started';
  readonly reason?: string;
}

/** How the session worker is started: {@link startOrtWorker}, or a caller's own (the injection point tests use). */
export type OrtWorkerStarter = () => Promise<OrtModuleLike>;

/**
 * `real` (onnxruntime-node, loaded on this thread) with sessions created and run in the worker,
 * started at the first session by `start`. Where the worker cannot start (no built worker module,
 * onnxruntime-node failing to load there) sessions run on this thread as before, and
 * `sessionThread()` says why.
 */
export function sessionsInWorker(real: OrtModuleLike, start: OrtWorkerStarter = startOrtWorker): { readonly ort: OrtModuleLike; sessionThread(): OrtSessionThread } {
  let thread: OrtSessionThread = { thread: 'not started' };
  let worker: Promise<OrtModuleLike | undefined> | undefined;
  const started = (): Promise<OrtModuleLike | undefined> =>
    (worker ??= start().then(
      (m) => {
        thread = { thread: 'worker' };
        return m;
      },
      (err: unknown) => {
        thread = { thread: 'main', reason: `the session worker did not start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}; sessions run on the main thread and hold its event loop while they run` };
        return undefined;
      },
    ));
  /** A main-thread session fed WorkerTensors (what the engine builds with this module's Tensor). */
  const onThisThread = (s: OrtSessionLike): OrtSessionLike => ({
    async run(feeds) {
      const real_: Record<string, OrtTensorLike> = {};
      for (const [name, t] of Object.entries(feeds)) real_[name] = new real.Tensor(t.type, t.data as ArrayBufferView, t.dims);
      return s.run(real_);
    },
    release: () => s.release(),
  });
  return {
    ort: {
      Tensor: WorkerTensor,
      InferenceSession: {
        async create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSessionLike> {
          const w = await started();
          return w ? w.InferenceSession.create(model, options) : onThisThread(await real.InferenceSession.create(model, options));
        },
      },
      env: real.env,
    },
    sessionThread: () => thread,
  };
}
