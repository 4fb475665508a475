/**
 * Registration of the built-in backends. Adding a backend: its folder under backends/, one line
 * here, its row in the docs (generated). Optional engines load lazily inside their parts, so
 * registering them costs nothing at import.
 */
import { registerBackend, isRegistered } from './dispatch/registry.js';
import type { BackendDescriptor } from './dispatch/types.js';
import { mathBackend } from '../backends/math/index.js';
import { efficientBackend } from '../backends/efficient/index.js';
import { onnxruntimeBackend } from '../backends/onnxruntime/index.js';
import { flashBackend } from '../backends/flash/index.js';

/** The built-in descriptors, in registration order. */
export const BUILTIN_BACKENDS: readonly BackendDescriptor[] = [flashBackend, efficientBackend, onnxruntimeBackend, mathBackend];

let done = false;
/** Registers the built-ins once (idempotent; a name registered by the user first is left alone). */
export function ensureBuiltinsRegistered(): void {
  if (done) return;
  done = true;
  for (const d of BUILTIN_BACKENDS) if (!isRegistered(d.name)) registerBackend(d);
}
