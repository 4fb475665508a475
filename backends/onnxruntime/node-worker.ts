/**
 * The worker thread that owns onnxruntime-node's sessions for ONNXRUNTIME (cpu) in Node. onnxruntime-node
 * 1.30 creates sessions and runs them synchronously on the calling thread (its `run()` is a
 * `setImmediate` around the binding's blocking call): on the main thread that held the event loop
 * for 91–248 ms per session creation and up to 217 ms per call at S = 2048. Here those calls block
 * this worker instead; the main thread talks to it through backends/onnxruntime/worker-ort.ts.
 *
 * Protocol (one request, one reply, matched by id): `create` (model bytes, options) → a session id;
 * `run` (session id, feeds as type/data/dims) → the outputs, their buffers transferred; `release`.
 * Imports only src/node-import.js (how onnxruntime-node is found, as on the main thread).
 */
import { importNodeOnly } from '../../src/node-import.js';

/** A tensor as it crosses the thread boundary. */
export interface WireTensor {
  readonly type: string;
  readonly data: ArrayBufferView;
  readonly dims: readonly number[];
}

/** Messages to the worker. */
export type OrtWorkerRequest =
  | { readonly type: 'create'; readonly id: number; readonly model: Uint8Array; readonly options: Record<string, unknown> }
  | { readonly type: 'run'; readonly id: number; readonly session: number; readonly feeds: Record<string, WireTensor> }
  | { readonly type: 'release'; readonly id: number; readonly session: number };

/** Messages from the worker. */
export type OrtWorkerReply =
  | { readonly type: 'ready'; readonly versions: Record<string, string> | undefined }
  | { readonly type: 'load-failed'; readonly message: string; readonly notFound: boolean }
  | { readonly type: 'created'; readonly id: number; readonly session: number }
  | { readonly type: 'ran'; readonly id: number; readonly outputs: Record<string, WireTensor>; readonly runMs: number }
  | { readonly type: 'released'; readonly id: number }
  | { readonly type: 'error'; readonly id: number; readonly message: string };

interface OrtNode {
  Tensor: new (type: string, data: ArrayBufferView, dims: readonly number[]) => { type: string; data: ArrayBufferView; dims: readonly number[] };
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtNodeSession> };
  env?: { versions?: Record<string, string> };
}
interface OrtNodeSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { type: string; data: ArrayBufferView; dims: readonly number[] }>>;
  release(): Promise<void>;
}
interface Port {
  postMessage(m: OrtWorkerReply, transfer?: ArrayBuffer[]): void;
  on(ev: 'message', fn: (m: OrtWorkerRequest) => void): void;
}

/** An output's bytes in a buffer of its own (transferable; onnxruntime may hand out external memory). */
function own(d: ArrayBufferView): ArrayBufferView {
  const whole = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer;
  return whole ? d : ((d as unknown as { slice(): ArrayBufferView }).slice());
}

/**
 * Words shared with the main thread: [0] calls inside onnxruntime now, [1] set when the process is
 * exiting. Terminating this worker while onnxruntime-node is inside a create or run aborts the whole
 * process (its binding throws into the torn-down environment), so the main thread's `exit` handler
 * sets [1] and waits until [0] is 0; a call that starts after [1] is set does not enter onnxruntime.
 */
let words: Int32Array | undefined;
async function guarded<T>(f: () => Promise<T>): Promise<T> {
  if (words) {
    Atomics.add(words, 0, 1);
    if (Atomics.load(words, 1) !== 0) {
      Atomics.sub(words, 0, 1);
      Atomics.notify(words, 0);
      throw new Error('the process is exiting');
    }
  }
  try {
    return await f();
  } finally {
    if (words) {
      Atomics.sub(words, 0, 1);
      Atomics.notify(words, 0);
    }
  }
}

async function serve(port: Port, shared: SharedArrayBuffer | undefined): Promise<void> {
  if (shared) words = new Int32Array(shared);
  let ort: OrtNode;
  try {
    const m = (await importNodeOnly('onnxruntime-node')) as OrtNode & { default?: OrtNode };
    ort = typeof m.InferenceSession?.create === 'function' ? m : m.default!;
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    port.postMessage({ type: 'load-failed', message: err instanceof Error ? err.message : String(err), notFound: code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND' });
    return;
  }
  const sessions = new Map<number, OrtNodeSession>();
  let nextSession = 1;
  port.on('message', (m) => {
    void (async () => {
      try {
        if (m.type === 'create') {
          const s = await guarded(() => ort.InferenceSession.create(m.model, m.options));
          const id = nextSession++;
          sessions.set(id, s);
          port.postMessage({ type: 'created', id: m.id, session: id });
        } else if (m.type === 'run') {
          const s = sessions.get(m.session);
          if (!s) throw new Error(`onnxruntime worker: unknown session ${m.session}`);
          const feeds: Record<string, unknown> = {};
          for (const [name, t] of Object.entries(m.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
          const t0 = performance.now();
          const res = await guarded(() => s.run(feeds));
          const runMs = performance.now() - t0;
          const outputs: Record<string, WireTensor> = {};
          const transfer: ArrayBuffer[] = [];
          for (const [name, t] of Object.entries(res)) {
            const data = own(t.data);
            outputs[name] = { type: t.type, data, dims: [...t.dims] };
            transfer.push(data.buffer as ArrayBuffer);
          }
          port.postMessage({ type: 'ran', id: m.id, outputs, runMs }, transfer);
        } else {
          const s = sessions.get(m.session);
          sessions.delete(m.session);
          if (s) await guarded(() => s.release());
          port.postMessage({ type: 'released', id: m.id });
        }
      } catch (err) {
        port.postMessage({ type: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) });
      }
    })();
  });
  port.postMessage({ type: 'ready', versions: ort.env?.versions });
}

const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
const wt = proc?.getBuiltinModule?.('node:worker_threads') as { parentPort: Port | null; isMainThread: boolean; workerData: unknown } | undefined;
if (wt && !wt.isMainThread && wt.parentPort) void serve(wt.parentPort, (wt.workerData as { words?: SharedArrayBuffer } | undefined)?.words);
