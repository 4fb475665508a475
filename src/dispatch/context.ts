/**
 * Which backends may run, in which order, and which kernels they are pinned to: a global state
 * (`setBackendEnabled`, `setBackendPriority`) and scopes (`withBackends`, src/dispatch/scope.ts)
 * that replace it for the duration of a function, like PyTorch's `torch.nn.attention.sdpa_kernel`.
 * In Node the scope follows async work through AsyncLocalStorage, so concurrent tasks never see
 * each other's toggles. Browsers have no AsyncLocalStorage: there the scope is a module variable
 * restored in `finally`, which is exact for sequential code but visible to other tasks that run
 * while `fn` awaits (documented).
 */
import { SdpaRangeError, SdpaTypeError, describeValue } from '../errors.js';
import { BUILTIN_PRIORITY, DEFAULT_PRIORITY, SDPBackend, type BackendName } from './types.js';
import type { Device } from '../tensor.js';

/** A part pinned to some of its kernels, and who pinned it (for reasons). */
export interface KernelPin {
  readonly kernels: readonly string[];
  /** Who pinned it, as reasons say it: `withBackends` or `SDPA_CPU_ISA=avx2`. */
  readonly source: string;
}

/** The toggles in force: per-backend switches, the priority order and kernel pins. */
export interface BackendState {
  readonly enabled: Map<BackendName, boolean>;
  /** Whether a backend absent from `enabled` may run (true globally, false inside a scope). */
  readonly enabledByDefault: boolean;
  priority: BackendName[];
  /** Kernel pins by part key (`BACKEND/device`). */
  readonly pins: ReadonlyMap<string, KernelPin>;
  /** Strict scope (`withBackends(list, fn, { strict: true })`): only this backend, the first listed, may run. */
  readonly strict?: BackendName;
  /** The scope set its own order (`setPriority: true`): measured rankings (`calibrate()`) do not reorder it. */
  readonly explicitPriority?: boolean;
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
const BUILTINS: readonly string[] = Object.values(SDPBackend);
/** Every backend name known to this process with its numeric priority (built-ins always). */
const names = new Map<BackendName, number>(Object.entries(BUILTIN_PRIORITY));
const globalState: BackendState = { enabled: new Map(), enabledByDefault: true, priority: [...DEFAULT_PRIORITY], pins: new Map() };
let fallbackScope: BackendState | undefined; // browsers only

/** True when scopes are isolated per async task (Node); false in browsers. */
export const scopesAreAsyncIsolated = store !== undefined;

/** The key of a backend part in pin maps and reports. */
export function partKey(backend: BackendName, device: Device): string {
  return `${backend}/${device}`;
}

/** The state in force for the calling async context. */
export function currentState(): BackendState {
  return store?.getStore() ?? fallbackScope ?? globalState;
}

/** The backend a strict `withBackends` scope allows alone, when one is in force. */
export function strictBackend(): BackendName | undefined {
  return currentState().strict;
}

/** True when a scope from `withBackends` is active here. */
export function inScope(): boolean {
  return currentState() !== globalState;
}

/**
 * @internal Makes a registered name known, placing a new one in the global order by its numeric
 * priority (higher first). A name already placed keeps its place unless `explicit` moves it.
 */
export function addBackendName(name: BackendName, priority: number, explicit = false): void {
  const known = globalState.priority.includes(name);
  names.set(name, priority);
  if (known && !explicit) return;
  if (known) globalState.priority.splice(globalState.priority.indexOf(name), 1);
  const at = globalState.priority.findIndex((b) => (names.get(b) ?? 0) < priority);
  globalState.priority.splice(at < 0 ? globalState.priority.length : at, 0, name);
}

/** @internal Forgets a non-built-in name (unregistered); built-ins stay known. */
export function removeBackendName(name: BackendName): void {
  if (BUILTINS.includes(name)) return;
  names.delete(name);
  const i = globalState.priority.indexOf(name);
  if (i >= 0) globalState.priority.splice(i, 1);
}

/** The backend names this process knows (built-ins and registered ones). */
export function knownBackendNames(): BackendName[] {
  return [...names.keys()];
}

/** Validates a backend name argument: a built-in or a registered name. */
export function checkBackendName(fn: string, argument: string, b: unknown): BackendName {
  if (typeof b !== 'string' || !names.has(b)) {
    const extra = [...names.keys()].filter((n) => !BUILTINS.includes(n));
    throw new SdpaTypeError(fn, {
      argument,
      expected: `one of SDPBackend.${BUILTINS.join(', SDPBackend.')}${extra.length ? ` or a registered backend (${extra.join(', ')})` : ''}`,
      received: describeValue(b),
    });
  }
  return b;
}

/**
 * Globally (or, inside `withBackends`, for that scope only) enables or disables a backend,
 * like `torch.backends.cuda.enable_flash_sdp(False)`.
 */
export function setBackendEnabled(backend: BackendName, enabled: boolean): void {
  const b = checkBackendName('setBackendEnabled', 'backend', backend);
  if (typeof enabled !== 'boolean') throw new SdpaTypeError('setBackendEnabled', { argument: 'enabled', expected: 'a boolean', received: describeValue(enabled) });
  currentState().enabled.set(b, enabled);
}

/** Whether `backend` may be chosen in the calling context (scope first, then the global switch). */
export function isBackendEnabled(backend: BackendName): boolean {
  const b = checkBackendName('isBackendEnabled', 'backend', backend);
  const st = currentState();
  return st.enabled.get(b) ?? st.enabledByDefault;
}

/** The priority order in force in the calling context (every known name, registered ones included). */
export function getBackendPriority(): BackendName[] {
  const p = currentState().priority;
  // A backend registered after a scope began is not in its copied order: it goes last there.
  return [...p, ...globalState.priority.filter((b) => !p.includes(b))];
}

/** Validates a list of backend names (no duplicates, at least one). */
export function checkBackendList(fn: string, list: unknown): BackendName[] {
  if (!Array.isArray(list)) throw new SdpaTypeError(fn, { argument: 'backends', expected: 'an array of SDPBackend values', received: describeValue(list) });
  if (list.length === 0) throw new SdpaRangeError(fn, { argument: 'backends', expected: 'at least one SDPBackend (an empty list would make every call fail)', received: '[]' });
  const out = list.map((b, i) => checkBackendName(fn, `backends[${i}]`, b));
  const dup = out.find((b, i) => out.indexOf(b) !== i);
  if (dup) throw new SdpaTypeError(fn, { argument: 'backends', expected: 'each backend at most once', received: `${dup} twice` });
  return out;
}

/** Sets the global (or current scope's) priority order; backends not listed keep their relative order after the listed ones. */
export function setBackendPriority(backends: BackendName[]): void {
  const list = checkBackendList('setBackendPriority', backends);
  const st = currentState();
  st.priority = [...list, ...getBackendPriority().filter((b) => !list.includes(b))];
}

/** Whether the order in force is a scope's own (`withBackends(..., { setPriority: true })`); measured rankings leave it alone. */
export function priorityIsExplicit(): boolean {
  return currentState().explicitPriority === true;
}

/**
 * @internal Runs `fn` with `scope` as the state in force (AsyncLocalStorage in Node; a module
 * variable restored in `finally` elsewhere).
 */
export async function runInScope<T>(scope: BackendState, fn: () => T | Promise<T>): Promise<Awaited<T>> {
  if (store) return store.run(scope, async (): Promise<Awaited<T>> => await fn());
  const prev = fallbackScope;
  fallbackScope = scope;
  try {
    return await fn();
  } finally {
    fallbackScope = prev;
  }
}
