/**
 * One session operation at a time per onnxruntime-web instance. The browser builds of
 * onnxruntime-web (asyncify/JSPI, and JSEP for WebGPU) run a session's create and run as awaited
 * wasm calls guarded by one module-wide "call in flight" slot: a second call started while one is
 * awaiting throws "Session already started", and clearing the slot on its way out makes the first
 * fail with "Session mismatch". So two overlapping `sdpa()` calls on ONNXRUNTIME would both fail
 * (seen in headless Chromium, on the page's main thread and in the Web Worker alike). Node's
 * onnxruntime-node runs each call synchronously and needs none of this; onnxruntime-web in Node is
 * wrapped too, which costs nothing there (its calls do not overlap anyway).
 */
import type { OrtModuleLike, OrtSessionLike, OrtSessionOptions, OrtTensorLike } from './ort-types.js';

/** A FIFO of async operations: each starts when the one before it has settled (fulfilled or not). */
export function operationQueue(): <T>(op: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(op: () => Promise<T>): Promise<T> => {
    const result = tail.then(op, op);
    // The next operation waits for this one, whatever its outcome; its error stays the caller's.
    tail = result.catch(() => undefined);
    return result;
  };
}

/**
 * `ort` with every `InferenceSession.create`, `session.run` and `session.release` queued behind
 * the previous one (one FIFO for the whole module, since the guard in onnxruntime-web is
 * module-wide). `Tensor` and `env` are the module's own.
 */
export function oneAtATime(ort: OrtModuleLike): OrtModuleLike {
  const enqueue = operationQueue();
  const wrap = (s: OrtSessionLike): OrtSessionLike => ({
    run: (feeds: Record<string, OrtTensorLike>) => enqueue(() => s.run(feeds)),
    release: () => enqueue(() => s.release()),
  });
  return {
    Tensor: ort.Tensor,
    InferenceSession: {
      create: async (model: Uint8Array, options?: OrtSessionOptions) => wrap(await enqueue(() => ort.InferenceSession.create(model, options))),
    },
    env: ort.env,
  };
}
