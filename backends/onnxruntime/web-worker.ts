/**
 * The Web Worker that owns onnxruntime-web's sessions for ONNXRUNTIME (cpu) in browsers, so that the
 * wasm's compilation (the first session: 1.6–2.2 s measured) and every run (~0.5 s at S = 2048) do
 * not hold the page's main thread. Same protocol as the Node worker (node-worker.ts): `create`,
 * `run`, `release`, one reply each, matched by id; plus `init` first (the page's onnxruntime-web
 * thread count, which this worker's own copy of onnxruntime-web does not see otherwise).
 *
 * Why our own worker and not onnxruntime-web's proxy (`env.wasm.proxy`): its proxy worker is
 * onnxruntime-web's chunk of the page's bundle started again, and a Vite 8 production build puts a
 * runtime helper of that chunk into the app's entry chunk, which then runs in the worker and fails
 * there ("document is not defined"), leaving onnxruntime-web unusable for the page. A worker entry
 * of its own is bundled apart (with onnxruntime-web inside), in dev and in builds alike.
 *
 * onnxruntime-web's threads (a cross-origin isolated page) are module workers started from this
 * worker's own script, named `em-pthread…`: in those, onnxruntime-web's module does the work and
 * this file serves nothing.
 */
import * as ortWeb from 'onnxruntime-web';
import type { OrtWorkerReply, OrtWorkerRequest, WireTensor } from './node-worker.js';
import { operationQueue } from './serial.js';

/** The page's settings for this worker's onnxruntime-web, sent before anything else. */
export interface WebOrtInit {
  readonly type: 'init';
  readonly numThreads?: number;
}

interface OrtWeb {
  Tensor: new (type: string, data: ArrayBufferView, dims: readonly number[]) => { type: string; data: ArrayBufferView; dims: readonly number[] };
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtWebSession> };
  env: { versions?: Record<string, string>; wasm: { numThreads?: number } };
}
interface OrtWebSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { type: string; data: ArrayBufferView; dims: readonly number[] }>>;
  release(): Promise<void>;
}
interface Scope {
  readonly name?: string;
  postMessage(m: OrtWorkerReply, transfer?: ArrayBuffer[]): void;
  addEventListener(ev: 'message', fn: (e: { data: OrtWorkerRequest | WebOrtInit }) => void): void;
}

/** An output's bytes in a buffer of its own (transferable; the wasm heap's views are not). */
function own(d: ArrayBufferView): ArrayBufferView {
  const whole = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer;
  return whole ? d : (d as unknown as { slice(): ArrayBufferView }).slice();
}

function serve(scope: Scope, ort: OrtWeb): void {
  const sessions = new Map<number, OrtWebSession>();
  let nextSession = 1;
  // Requests are handled one after another: onnxruntime-web refuses a session call while another
  // is awaiting ("Session already started" / "Session mismatch", serial.ts), and the page sends
  // one request per concurrent sdpa() call.
  const enqueue = operationQueue();
  scope.addEventListener('message', (ev) => {
    const m = ev.data;
    if (m.type === 'init') {
      if (typeof m.numThreads === 'number') ort.env.wasm.numThreads = m.numThreads;
      scope.postMessage({ type: 'ready', versions: ort.env.versions });
      return;
    }
    void enqueue(async () => {
      try {
        if (m.type === 'create') {
          const s = await ort.InferenceSession.create(m.model, m.options);
          const id = nextSession++;
          sessions.set(id, s);
          scope.postMessage({ type: 'created', id: m.id, session: id });
        } else if (m.type === 'run') {
          const s = sessions.get(m.session);
          if (!s) throw new Error(`onnxruntime worker: unknown session ${m.session}`);
          const feeds: Record<string, unknown> = {};
          for (const [name, t] of Object.entries(m.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
          const t0 = performance.now();
          const res = await s.run(feeds);
          const runMs = performance.now() - t0;
          const outputs: Record<string, WireTensor> = {};
          const transfer: ArrayBuffer[] = [];
          for (const [name, t] of Object.entries(res)) {
            const data = own(t.data);
            outputs[name] = { type: t.type, data, dims: [...t.dims] };
            transfer.push(data.buffer as ArrayBuffer);
          }
          scope.postMessage({ type: 'ran', id: m.id, outputs, runMs }, transfer);
        } else {
          const s = sessions.get(m.session);
          sessions.delete(m.session);
          if (s) await s.release();
          scope.postMessage({ type: 'released', id: m.id });
        }
      } catch (err) {
        scope.postMessage({ type: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) });
      }
    });
  });
}

const scope = globalThis as unknown as Scope & { document?: unknown; WorkerGlobalScope?: unknown };
if (scope.WorkerGlobalScope !== undefined && scope.document === undefined && !scope.name?.startsWith('em-pthread')) {
  const m = ortWeb as unknown as OrtWeb & { default?: OrtWeb };
  serve(scope, typeof m.InferenceSession?.create === 'function' ? m : m.default!);
}
