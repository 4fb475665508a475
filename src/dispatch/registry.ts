/**
 * The backend registry: descriptors by name, each part with its full constraint list computed
 * once at registration (enabled-in-context, available, caps-derived, then the part's own).
 */
import { capsConstraints, checkAvailable, checkEnabledInContext } from './constraints.js';
import type { BackendDescriptor, BackendPart, Constraint, SDPBackend } from './types.js';
import type { Device } from '../tensor.js';

/** A registered part with everything selection needs. */
export interface RegisteredPart {
  readonly backend: SDPBackend;
  readonly part: BackendPart;
  readonly constraints: readonly Constraint[];
  /** Index in `constraints` where the part's own (engine-specific) constraints begin. */
  readonly ownFrom: number;
  /** Resolves once `part.init()` has run (memoised: init runs at most once per process). */
  ensureInit(): Promise<void>;
}

const registry = new Map<SDPBackend, { descriptor: BackendDescriptor; parts: RegisteredPart[] }>();

/** Registers a backend. Registering the same name twice throws (a second engine must pick a new name). */
export function registerBackend(descriptor: BackendDescriptor): void {
  if (registry.has(descriptor.name)) throw new Error(`registerBackend: ${descriptor.name} is already registered`);
  const devices = descriptor.parts.map((p) => p.device);
  if (new Set(devices).size !== devices.length) throw new Error(`registerBackend: ${descriptor.name} has two parts for one device`);
  const parts = descriptor.parts.map((part): RegisteredPart => {
    let init: Promise<void> | undefined;
    const generic = [checkEnabledInContext(descriptor.name), checkAvailable(part), ...capsConstraints(part)];
    return {
      backend: descriptor.name,
      part,
      constraints: [...generic, ...part.constraints],
      ownFrom: generic.length,
      ensureInit: () => (init ??= part.init ? part.init().catch(() => undefined) : Promise.resolve()),
    };
  });
  registry.set(descriptor.name, { descriptor, parts });
}

/** Removes a backend (tests and hot-swapping engines); returns whether it was registered. */
export function unregisterBackend(name: SDPBackend): boolean {
  return registry.delete(name);
}

/** Every registered descriptor, in registration order. */
export function registeredBackends(): BackendDescriptor[] {
  return [...registry.values()].map((r) => r.descriptor);
}

/** The registered part of `backend` on `device`, if any. */
export function findPart(backend: SDPBackend, device: Device): RegisteredPart | undefined {
  return registry.get(backend)?.parts.find((p) => p.part.device === device);
}

/** Every registered part, all devices. */
export function allParts(): RegisteredPart[] {
  return [...registry.values()].flatMap((r) => r.parts);
}

/** True when `backend` is registered. */
export function isRegistered(backend: SDPBackend): boolean {
  return registry.has(backend);
}
