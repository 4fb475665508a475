/**
 * ONNXRUNTIME (cpu) in a browser: the main thread's side of web-worker.ts. On the page's main thread
 * onnxruntime-web's wasm held the page for 1.6–2.2 s at its first session (compiling the 27 MB
 * module) and 0.46–0.71 s per run at S = 2048 (headless Chromium, scripts/bench-wasm-page/); in the
 * worker those block the worker instead. The worker is `new Worker(new URL('./web-worker.js',
 * import.meta.url), { type: 'module' })`, the form bundlers follow (Vite dev and build, webpack 5:
 * docs/bundlers.md), with its own copy of onnxruntime-web. Feeds are copied once and moved there,
 * the output moved back (worker-ort.ts `ortOverMessages`, the protocol of the Node worker).
 * Where the worker cannot start (no Worker, its script blocked or failing), sessions run on the
 * main thread with the page's onnxruntime-web, and `sessionThread` says why (worker-ort.ts
 * `sessionsInWorker`).
 */
import type { OrtWorkerReply, OrtWorkerRequest } from './node-worker.js';
import type { OrtModuleLike } from './ort-types.js';
import type { WebOrtInit } from './web-worker.js';
import { ortOverMessages } from './worker-ort.js';

/** How long the worker may take to load onnxruntime-web and answer `init` before the main thread is used instead. */
const READY_TIMEOUT_MS = 30_000;

/**
 * Starts web-worker.ts and waits until its onnxruntime-web is loaded; `numThreads` is the page's
 * `ort.env.wasm.numThreads` (the worker's copy of onnxruntime-web has its own env). Rejects when the
 * page has no Worker or the worker fails before it is ready (the reason becomes `sessionThread`'s).
 */
export async function startWebOrtWorker(numThreads: number | undefined): Promise<OrtModuleLike> {
  if (typeof Worker !== 'function') throw new Error('this page has no Worker constructor');
  const w = new Worker(new URL('./web-worker.js', import.meta.url), { type: 'module', name: 'sdpa-dispatch-onnxruntime' });
  const pending = new Map<number, { resolve(r: OrtWorkerReply): void; reject(e: Error): void }>();
  let dead: Error | undefined;
  let onReady: ((r: OrtWorkerReply) => void) | undefined;
  let onFail: ((e: Error) => void) | undefined;
  const fail = (e: Error): void => {
    dead ??= e;
    onFail?.(dead);
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  w.addEventListener('message', (ev: MessageEvent<OrtWorkerReply>) => {
    const r = ev.data;
    if (r.type === 'ready' || r.type === 'load-failed') return onReady?.(r);
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if (r.type === 'error') p.reject(new Error(r.message));
    else p.resolve(r);
  });
  w.addEventListener('error', (ev: ErrorEvent) => {
    ev.preventDefault();
    fail(new Error(`the onnxruntime-web worker failed: ${ev.message || 'its script did not load'}`));
  });
  w.addEventListener('messageerror', () => fail(new Error('the onnxruntime-web worker sent a message that could not be read')));
  const init: WebOrtInit = { type: 'init', ...(typeof numThreads === 'number' ? { numThreads } : {}) };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ready = await new Promise<OrtWorkerReply>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
    timer = setTimeout(() => reject(new Error(`the onnxruntime-web worker did not load onnxruntime-web within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
    w.postMessage(init);
  })
    .catch((e: unknown) => {
      w.terminate();
      throw e;
    })
    .finally(() => {
      clearTimeout(timer);
      onFail = undefined;
    });
  if (ready.type === 'load-failed') {
    w.terminate();
    throw new Error(ready.message);
  }
  const request = (m: OrtWorkerRequest, transfer?: ArrayBuffer[]): Promise<OrtWorkerReply> => {
    if (dead) return Promise.reject(dead);
    return new Promise((resolve, reject) => {
      pending.set(m.id, { resolve, reject });
      w.postMessage(m, transfer ?? []);
    });
  };
  return ortOverMessages(request, ready.type === 'ready' ? ready.versions : undefined);
}
