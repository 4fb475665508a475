/**
 * Registration of the built-in backends — the one file of the core in src/ that imports from
 * backends/. Adding a backend: its folder under backends/, one line here, its row in the docs
 * (generated). Optional engines load lazily inside their parts, so registering them costs nothing
 * at import. What the core and its tools need from backends (the float64 reference for the CLI and
 * the bench, the onnxruntime tensor adapter, the split-KV API) is handed over here too.
 */
import { registerBackend, isRegistered, setBuiltinRegistrar } from './dispatch/registry.js';
import type { BackendDescriptor } from './dispatch/types.js';
import { mathBackend } from '../backends/math/index.js';
import { efficientBackend } from '../backends/efficient/index.js';
import { sdpaSplitKv as splitKv, type SplitKvOptions } from '../backends/efficient/split-kv.js';
import { isOrtTensorLike, onnxruntimeBackend, tensorFromOrt } from '../backends/onnxruntime/index.js';
import { registerTensorAdapter } from './tensor-adapters.js';
import { flashBackend } from '../backends/flash/index.js';

/** The built-in descriptors, in registration order. */
export const BUILTIN_BACKENDS: readonly BackendDescriptor[] = [flashBackend, efficientBackend, onnxruntimeBackend, mathBackend];

let done = false;
/** Registers the built-ins once (idempotent; a name registered by the user first is left alone). */
export function ensureBuiltinsRegistered(): void {
  if (done) return;
  done = true;
  for (const d of BUILTIN_BACKENDS) if (!isRegistered(d.name)) registerBackend(d);
  // onnxruntime Tensors (duck-typed: dims/type/data) are accepted as q/k/v/mask; no runtime import.
  registerTensorAdapter({ name: 'onnxruntime', matches: isOrtTensorLike, convert: (fn, argument, x) => tensorFromOrt(fn, argument, x as Parameters<typeof tensorFromOrt>[2]) });
}
setBuiltinRegistrar(ensureBuiltinsRegistered);

/** The float64 reference (MATH on cpu) and its memory rule, for the CLI's and the bench's accuracy columns. */
export { mathReference as referenceAttention, mathMemoryBudget as referenceMemoryBudget, mathScoreBytes as referenceScoreBytes } from '../backends/math/cpu.js';

/** The float64 reference of sampled query rows, for `sdpa(..., { verify })` (src/verify.ts). */
export { mathReferenceRows as referenceRows } from '../backends/math/cpu.js';

export type { SplitKvOptions };

/**
 * Attention with the keys/values split over worker threads, then merged by log-sum-exp (see
 * backends/efficient/split-kv.ts). Same result as `sdpa()` on EFFICIENT_ATTENTION.
 *
 * @example const out = await sdpaSplitKv(q, k, v, { workers: 4, isCausal: true });
 */
export const sdpaSplitKv: typeof splitKv = ((...args: Parameters<typeof splitKv>) => {
  ensureBuiltinsRegistered();
  return splitKv(...args);
}) as typeof splitKv;
