/**
 * Which backends may run, and in which order: a global state (`setBackendEnabled`) and scopes
 * (`withBackends`) that replace it for the duration of a function, like PyTorch's
 * `torch.nn.attention.sdpa_kernel`. In Node the scope follows async work through
 * AsyncLocalStorage, so concurrent tasks never see each other's toggles. Browsers have no
 * AsyncLocalStorage: there the scope is a module variable restored in `finally`, which is exact
 * for sequential code but visible to other tasks that run while `fn` awaits (documented).
 */
import { SdpaRangeError, SdpaTypeError, describeValue } from '../errors.js';
import { DEFAULT_PRIORITY, SDPBackend } from './types.js';

/** The toggles in force: per-backend switches and the priority order. */
export interface BackendState {
  readonly enabled: Map<SDPBackend, boolean>;
  priority: SDPBackend[];
}

interface AsyncStore<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

/** Node's AsyncLocalStorage when the runtime has it, without a static import (keeps browser bundles clean). */
function makeStore(): AsyncStore<BackendState> | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.('node:async_hooks') as { AsyncLocalStorage?: new () => AsyncStore<BackendState> } | undefined;
  return mod?.AsyncLocalStorage ? new mod.AsyncLocalStorage() : undefined;
}

const store = makeStore();
const ALL: readonly SDPBackend[] = Object.values(SDPBackend);
const globalState: BackendState = { enabled: new Map(ALL.map((b) => [b, true])), priority: [...DEFAULT_PRIORITY] };
let fallbackScope: BackendState | undefined; // browsers only

/** True when scopes are isolated per async task (Node); false in browsers. */
export const scopesAreAsyncIsolated = store !== undefined;

/** The state in force for the calling async context. */
export function currentState(): BackendState {
  return store?.getStore() ?? fallbackScope ?? globalState;
}

/** True when a scope from {@link withBackends} is active here. */
export function inScope(): boolean {
  return currentState() !== globalState;
}

function checkBackendName(fn: string, argument: string, b: unknown): SDPBackend {
  if (typeof b !== 'string' || !(ALL as readonly string[]).includes(b)) {
    throw new SdpaTypeError(fn, { argument, expected: `one of SDPBackend.${ALL.join(', SDPBackend.')}`, received: describeValue(b) });
  }
  return b as SDPBackend;
}

/**
 * Globally (or, inside {@link withBackends}, for that scope only) enables or disables a backend,
 * like `torch.backends.cuda.enable_flash_sdp(False)`.
 */
export function setBackendEnabled(backend: SDPBackend, enabled: boolean): void {
  const b = checkBackendName('setBackendEnabled', 'backend', backend);
  if (typeof enabled !== 'boolean') throw new SdpaTypeError('setBackendEnabled', { argument: 'enabled', expected: 'a boolean', received: describeValue(enabled) });
  currentState().enabled.set(b, enabled);
}

/** Whether `backend` may be chosen in the calling context (scope first, then the global switch). */
export function isBackendEnabled(backend: SDPBackend): boolean {
  const b = checkBackendName('isBackendEnabled', 'backend', backend);
  return currentState().enabled.get(b) ?? false;
}

/** The priority order in force in the calling context. */
export function getBackendPriority(): SDPBackend[] {
  return [...currentState().priority];
}

function checkList(fn: string, list: unknown): SDPBackend[] {
  if (!Array.isArray(list)) throw new SdpaTypeError(fn, { argument: 'backends', expected: 'an array of SDPBackend values', received: describeValue(list) });
  if (list.length === 0) throw new SdpaRangeError(fn, { argument: 'backends', expected: 'at least one SDPBackend (an empty list would make every call fail)', received: '[]' });
  const out = list.map((b, i) => checkBackendName(fn, `backends[${i}]`, b));
  const dup = out.find((b, i) => out.indexOf(b) !== i);
  if (dup) throw new SdpaTypeError(fn, { argument: 'backends', expected: 'each backend at most once', received: `${dup} twice` });
  return out;
}

/** Sets the global (or current scope's) priority order; backends not listed keep their relative order after the listed ones. */
export function setBackendPriority(backends: SDPBackend[]): void {
  const list = checkList('setBackendPriority', backends);
  const st = currentState();
  st.priority = [...list, ...st.priority.filter((b) => !list.includes(b))];
}

/** Options of {@link withBackends}. */
export interface WithBackendsOptions {
  /** Make the list's order the priority order inside the scope (PyTorch's `set_priority=True`). */
  setPriority?: boolean;
}

/**
 * Runs `fn` with only `backends` allowed (an inner call replaces, not intersects, the outer set).
 * The previous state is restored when `fn` settles, also when it throws.
 *
 * @example
 * await withBackends([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH], () => sdpa(q, k, v));
 */
export async function withBackends<T>(backends: SDPBackend[], fn: () => T | Promise<T>, options?: WithBackendsOptions): Promise<Awaited<T>> {
  const list = checkList('withBackends', backends);
  if (typeof fn !== 'function') throw new SdpaTypeError('withBackends', { argument: 'fn', expected: 'a function to run inside the scope', received: describeValue(fn) });
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new SdpaTypeError('withBackends', { argument: 'options', expected: 'an object { setPriority?: boolean } or undefined', received: describeValue(options) });
  }
  const setPriority = options?.setPriority ?? false;
  if (typeof setPriority !== 'boolean') throw new SdpaTypeError('withBackends', { argument: 'options.setPriority', expected: 'a boolean', received: describeValue(setPriority) });
  const outer = currentState();
  const scope: BackendState = {
    enabled: new Map(ALL.map((b) => [b, list.includes(b)])),
    priority: setPriority ? [...list, ...outer.priority.filter((b) => !list.includes(b))] : [...outer.priority],
  };
  if (store) return store.run(scope, async (): Promise<Awaited<T>> => await fn());
  const prev = fallbackScope;
  fallbackScope = scope;
  try {
    return await fn();
  } finally {
    fallbackScope = prev;
  }
}
