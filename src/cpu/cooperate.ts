/**
 * Lets long TypeScript kernels share the event loop: call `maybeYield()` between units of work;
 * it awaits a macrotask once a time slice has passed, so timers and I/O still run during a big
 * math or efficient call, and checks the abort signal.
 */
// 15 ms: the longest stall is a slice plus one unit of work (EFFICIENT ~1.5M multiply-adds, MATH one query row), which
// must stay under 50 ms on a loaded machine; the timer round trip costs ~1 ms per slice.
const SLICE_MS = 15;

/** A per-call yielder; `now` yields whatever the time since the last turn (a call's set-up). */
export function makeYielder(signal?: AbortSignal): (now?: boolean) => Promise<void> | undefined {
  let last = performance.now();
  return (now = false) => {
    if (!now && performance.now() - last < SLICE_MS) return undefined;
    return new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        last = performance.now();
        if (signal?.aborted) reject(signal.reason ?? new Error('sdpa aborted'));
        else resolve();
      }, 0);
    });
  };
}
