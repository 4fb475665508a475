/**
 * ONNXRUNTIME (cpu) in a browser runs onnxruntime-web's wasm build. On the page's main thread its
 * first session held the page for 1.7–3.7 s (compiling and instantiating the 27 MB wasm) and each
 * timed run at S = 2048 for ~0.5 s (headless Chromium, scripts/bench-wasm-page/). onnxruntime-web
 * has a supported way to run all of that in a worker of its own: `env.wasm.proxy = true`, read at
 * its first session; the worker is onnxruntime-web's own script started again as a module worker,
 * the same mechanism its multi-threaded build already uses for its threads (so it resolves wherever
 * onnxruntime-web's threads resolve: Vite dev and build, docs/bundlers.md). This module switches it
 * on where it can and says why not where it cannot, and copies each run's feeds, because the proxy
 * transfers (detaches) the input buffers it is given, and those are the caller's tensors' storage.
 */
import type { OrtModuleLike, OrtSessionLike, OrtSessionOptions, OrtTensorLike } from './ort-types.js';
import type { OrtSessionThread } from './worker-ort.js';

/** The part of onnxruntime-web's `env.wasm` this module reads and sets. */
interface WasmEnv {
  proxy?: boolean;
}

/** What the page offers: a DOM document (the main thread) and the Worker constructor. */
export interface PageGlobals {
  readonly hasDocument: boolean;
  readonly hasWorker: boolean;
}

function pageGlobals(): PageGlobals {
  const g = globalThis as { document?: unknown; Worker?: unknown };
  return { hasDocument: typeof g.document !== 'undefined', hasWorker: typeof g.Worker === 'function' };
}

/**
 * Decides where onnxruntime-web's sessions run and, where it can, turns its proxy worker on (before
 * its first session: onnxruntime-web reads the flag once, when it initialises its wasm).
 * `env.wasm.proxy` left undefined means nothing has initialised onnxruntime-web yet (its first
 * session sets it to a boolean); a boolean there is the page's own choice, or the trace of a session
 * the page created before this backend's first one — either way it is respected, not overridden
 * (flipping it after the wasm initialised on this thread breaks every later session: "worker not ready").
 */
export function enableOrtWebProxy(ort: OrtModuleLike, page: PageGlobals = pageGlobals()): OrtSessionThread {
  if (!page.hasDocument) return { thread: 'worker', reason: 'called from a worker: onnxruntime-web runs on that thread, not the page\'s main thread' };
  const wasm = (ort.env as { wasm?: WasmEnv }).wasm;
  if (!wasm) return { thread: 'main', reason: 'this onnxruntime-web build has no env.wasm (no proxy worker option); sessions run on the page\'s main thread and hold it while they run' };
  if (!page.hasWorker) return { thread: 'main', reason: 'this page has no Worker constructor, which onnxruntime-web\'s proxy worker needs; sessions run on the main thread and hold it while they run' };
  if (wasm.proxy === true) return { thread: 'worker', reason: 'the page set onnxruntime-web\'s env.wasm.proxy = true itself' };
  if (wasm.proxy === false) {
    return {
      thread: 'main',
      reason:
        'onnxruntime-web\'s env.wasm.proxy is false on this page (set by the page, or onnxruntime-web was initialised by a session created before this backend\'s first): ' +
        'sessions run on the main thread and hold it while they run; set ort.env.wasm.proxy = true before the first session to move them to a worker',
    };
  }
  wasm.proxy = true;
  return { thread: 'worker' };
}

/**
 * `ort` (onnxruntime-web) with each session's feeds, and the model bytes, copied before they go to
 * the proxy worker: it transfers them, which would detach the caller's q/k/v/mask storage (the engine
 * feeds contiguous float32 tensors without copying) and protobufjs's pooled encode buffer.
 */
export function copyingFeeds(ort: OrtModuleLike): OrtModuleLike {
  const wrap = (s: OrtSessionLike): OrtSessionLike => ({
    run(feeds) {
      const own: Record<string, OrtTensorLike> = {};
      for (const [name, t] of Object.entries(feeds)) {
        own[name] = new ort.Tensor(t.type, (t.data as unknown as { slice(): ArrayBufferView }).slice(), t.dims);
      }
      return s.run(own);
    },
    release: () => s.release(),
  });
  return {
    Tensor: ort.Tensor,
    InferenceSession: {
      async create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSessionLike> {
        return wrap(await ort.InferenceSession.create(model.slice(), options));
      },
    },
    env: ort.env,
  };
}
