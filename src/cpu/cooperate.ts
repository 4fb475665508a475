/**
 * Lets long TypeScript kernels share the event loop: call `maybeYield()` between units of work;
 * it awaits a macrotask once a time slice has passed, so timers and I/O still run during a big
 * math or efficient call, and checks the abort signal.
 */
const SLICE_MS = 25;

/** A per-call yielder. */
export function makeYielder(signal?: AbortSignal): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    if (performance.now() - last < SLICE_MS) return undefined;
    return new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        last = performance.now();
        if (signal?.aborted) reject(signal.reason ?? new Error('sdpa aborted'));
        else resolve();
      }, 0);
    });
  };
}
