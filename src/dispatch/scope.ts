/**
 * `withBackends`: runs a function with only the listed backends allowed (PyTorch's
 * `torch.nn.attention.sdpa_kernel`), optionally in the list's order, optionally with parts pinned
 * to kernel variants (`{ backend, device?, kernel }` entries).
 */
import { SdpaTypeError, describeValue } from '../errors.js';
import { checkBackendName, checkBackendList, getBackendPriority, partKey, runInScope, type BackendState, type KernelPin } from './context.js';
import { partsOf } from './registry.js';
import type { BackendName } from './types.js';
import type { Device } from '../tensor.js';

/** A backend with some of its kernel variants pinned (the rest of the part's kernels are not used in the scope). */
export interface KernelChoice {
  readonly backend: BackendName;
  /** The part to pin; omitted: every part of the backend that has the named kernel(s). */
  readonly device?: Device;
  /** One kernel name, or several (tried in the part's own order). */
  readonly kernel: string | readonly string[];
}

/** An entry of {@link withBackends}' list: a backend name, or a backend with pinned kernels. */
export type BackendChoice = BackendName | KernelChoice;

/** Options of {@link withBackends}. */
export interface WithBackendsOptions {
  /** Make the list's order the priority order inside the scope (PyTorch's `set_priority=True`). */
  setPriority?: boolean;
  /**
   * No fallback past the first listed backend: inside the scope only it may run (its part for the
   * call's device, with its kernel pin when the entry has one); when it cannot, or every one of its
   * kernels faults, `sdpa` throws `SdpaDispatchError` listing the reasons instead of running
   * another backend. PyTorch has none (its `sdpa_kernel` falls back within the list).
   */
  strict?: boolean;
}

const OPTION_KEYS = ['setPriority', 'strict'] as const;

function kernelsOfParts(backend: BackendName): { device: Device; names: string[] }[] {
  return partsOf(backend).map((rp) => ({ device: rp.part.device, names: rp.kernels.map((k) => k.variant.name) }));
}

/** Validates a `{ backend, device?, kernel }` entry and returns the pins it makes, by part key. */
function pinsOf(fn: string, argument: string, choice: KernelChoice): [string, KernelPin][] {
  // Own properties only, and no typos ({ backend, devce: 'cpu', kernel } would pin every device).
  const unknown = Object.keys(choice).find((k) => !['backend', 'device', 'kernel'].includes(k));
  if (unknown !== undefined) throw new SdpaTypeError(fn, { argument: `${argument}.${unknown}`, expected: 'one of the keys backend, device, kernel', received: `an unknown key ${JSON.stringify(unknown)}` });
  const own = <K extends keyof KernelChoice>(k: K): KernelChoice[K] | undefined => (Object.hasOwn(choice, k) ? choice[k] : undefined);
  const c = { backend: own('backend'), device: own('device'), kernel: own('kernel') } as KernelChoice;
  const backend = checkBackendName(fn, `${argument}.backend`, c.backend);
  if (c.device !== undefined && c.device !== 'cpu' && c.device !== 'webgpu') {
    throw new SdpaTypeError(fn, { argument: `${argument}.device`, expected: "'cpu', 'webgpu' or omitted", received: describeValue(c.device) });
  }
  const wanted = typeof c.kernel === 'string' ? [c.kernel] : c.kernel;
  if (!Array.isArray(wanted) || wanted.length === 0 || wanted.some((k) => typeof k !== 'string')) {
    throw new SdpaTypeError(fn, { argument: `${argument}.kernel`, expected: 'a kernel name or a non-empty array of kernel names', received: describeValue(c.kernel) });
  }
  const parts = kernelsOfParts(backend).filter((p) => c.device === undefined || p.device === c.device);
  const valid = parts.map((p) => `${p.device}: ${p.names.join(', ')}`).join('; ');
  const matching = parts.filter((p) => wanted.every((k) => p.names.includes(k)));
  if (matching.length === 0) {
    throw new SdpaTypeError(fn, {
      argument: `${argument}.kernel`,
      expected: parts.length ? `kernels of ${backend}${c.device ? ` (${c.device})` : ''} — ${valid}` : `a backend with a ${c.device ?? 'registered'} part`,
      received: describeValue(c.kernel),
    });
  }
  return matching.map((p) => [partKey(backend, p.device), { kernels: [...wanted], source: 'withBackends' }]);
}

/**
 * Runs `fn` with only `backends` allowed (an inner call replaces, not intersects, the outer set).
 * An entry `{ backend, device?, kernel }` allows that backend and pins its part to those kernel
 * variants. The previous state is restored when `fn` settles, also when it throws.
 *
 * @example
 * await withBackends([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH], () => sdpa(q, k, v));
 * await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'cpu', kernel: 'avx2_fp32' }], () => sdpa(q, k, v));
 */
export async function withBackends<T>(backends: BackendChoice[], fn: () => T | Promise<T>, options?: WithBackendsOptions): Promise<Awaited<T>> {
  const fnName = 'withBackends';
  if (!Array.isArray(backends)) throw new SdpaTypeError(fnName, { argument: 'backends', expected: 'an array of SDPBackend values or { backend, kernel } entries', received: describeValue(backends) });
  const pins = new Map<string, KernelPin>();
  const names = backends.map((b: unknown, i): unknown => {
    if (typeof b === 'object' && b !== null && !Array.isArray(b)) {
      const choice = b as KernelChoice;
      for (const [key, pin] of pinsOf(fnName, `backends[${i}]`, choice)) pins.set(key, pin);
      return Object.hasOwn(choice, 'backend') ? choice.backend : undefined;
    }
    return b;
  });
  const list = checkBackendList(fnName, names);
  if (typeof fn !== 'function') throw new SdpaTypeError(fnName, { argument: 'fn', expected: 'a function to run inside the scope', received: describeValue(fn) });
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new SdpaTypeError(fnName, { argument: 'options', expected: 'an object { setPriority?: boolean, strict?: boolean } or undefined', received: describeValue(options) });
  }
  const unknown = options ? Object.keys(options).filter((k) => !(OPTION_KEYS as readonly string[]).includes(k)) : [];
  if (unknown.length) {
    throw new SdpaTypeError(fnName, { argument: `options.${unknown[0]}`, expected: `one of the options ${OPTION_KEYS.join(', ')}`, received: `an unknown option ${JSON.stringify(unknown[0])}` });
  }
  const setPriority = options && Object.hasOwn(options, 'setPriority') ? options.setPriority : false;
  if (typeof setPriority !== 'boolean') throw new SdpaTypeError(fnName, { argument: 'options.setPriority', expected: 'a boolean', received: describeValue(setPriority) });
  const strict = options && Object.hasOwn(options, 'strict') ? options.strict : false;
  if (typeof strict !== 'boolean') throw new SdpaTypeError(fnName, { argument: 'options.strict', expected: 'a boolean', received: describeValue(strict) });
  const outer = getBackendPriority();
  const scope: BackendState = {
    enabled: new Map(list.map((b) => [b, true])),
    enabledByDefault: false,
    priority: setPriority ? [...list, ...outer.filter((b) => !list.includes(b))] : outer,
    pins,
    ...(strict ? { strict: list[0] } : {}),
    ...(setPriority ? { explicitPriority: true } : {}),
  };
  return runInScope(scope, fn);
}
