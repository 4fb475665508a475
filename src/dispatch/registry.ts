/**
 * The backend registry: descriptors by name, each part with its full constraint list computed
 * once at registration (enabled-in-context, available, caps-derived, then the part's own), and
 * each of its kernel variants with theirs (pin, available, caps-derived, then the variant's own).
 * One evaluator (select.ts) judges both levels.
 */
import { SdpaTypeError, describeValue } from '../errors.js';
import { capsConstraints, checkAvailable, checkEnabledInContext, checkEnvPin, checkKernelAvailable, checkKernelLse, checkKernelPin, checkKernelWeights } from './constraints.js';
import { addBackendName, removeBackendName } from './context.js';
import { BUILTIN_PRIORITY, type BackendDescriptor, type BackendName, type BackendPart, type Constraint, type KernelVariant } from './types.js';
import type { Device } from '../tensor.js';

/** A registered kernel variant with its constraint list. */
export interface RegisteredKernel {
  readonly variant: KernelVariant;
  readonly constraints: readonly Constraint[];
}

/** A registered part with everything selection needs. */
export interface RegisteredPart {
  readonly backend: BackendName;
  readonly part: BackendPart;
  readonly constraints: readonly Constraint[];
  /** Index in `constraints` where the part's own (engine-specific) constraints begin. */
  readonly ownFrom: number;
  /** The part's kernel variants in priority order (one implicit `default` for parts without `kernels`). */
  readonly kernels: readonly RegisteredKernel[];
  /** Resolves once `part.init()` has run (memoised: init runs at most once per process). */
  ensureInit(): Promise<void>;
  /** True once `init()` has finished (or when the part has none): its availability is final. */
  probed(): boolean;
}

const registry = new Map<BackendName, { descriptor: BackendDescriptor; parts: RegisteredPart[] }>();

/** Index in a kernel's constraints after the pin and availability checks (the rest need a runnable kernel). */
export const KERNEL_OWN_FROM = 2;

/** Kernel names are short identifiers: pins, reports and env switches spell them. */
const KERNEL_NAME = /^[a-z][a-z0-9_]*$/;

function bad(argument: string, expected: string, received: unknown): never {
  throw new SdpaTypeError('registerBackend', { argument, expected, received: describeValue(received) });
}

/** The part's variants, or one implicit `default` variant built from its `run` / `runWithLse`. */
function variantsOf(part: BackendPart, where: string): readonly KernelVariant[] {
  if (part.kernels !== undefined) {
    if (!Array.isArray(part.kernels) || part.kernels.length === 0) bad(`${where}.kernels`, 'a non-empty array of kernel variants', part.kernels);
    part.kernels.forEach((k, i) => {
      if (typeof k !== 'object' || k === null) bad(`${where}.kernels[${i}]`, 'a kernel variant object', k);
      if (typeof k.name !== 'string' || !KERNEL_NAME.test(k.name)) bad(`${where}.kernels[${i}].name`, 'a snake_case name such as "avx2_fp32"', k.name);
      if (typeof k.run !== 'function') bad(`${where}.kernels[${i}].run`, 'a function (params, ctx) => Promise<Tensor>', k.run);
      if (part.kernels!.findIndex((x) => x.name === k.name) !== i) bad(`${where}.kernels[${i}].name`, 'a name not used by another kernel of the part', k.name);
      if (k.constraints !== undefined && (!Array.isArray(k.constraints) || k.constraints.some((c: unknown) => typeof c !== 'function'))) bad(`${where}.kernels[${i}].constraints`, 'an array of constraint functions, or undefined', k.constraints);
      if (k.availability !== undefined && typeof k.availability !== 'function') bad(`${where}.kernels[${i}].availability`, 'a function returning { available }, or undefined', k.availability);
      if (k.caps !== undefined) checkCaps(`${where}.kernels[${i}].caps`, k.caps, true);
    });
    return part.kernels;
  }
  const run = part.run;
  if (typeof run !== 'function') bad(`${where}.run`, 'a function (or a kernels array)', run);
  const lse = part.runWithLse;
  const weights = part.runWithWeights;
  return [
    {
      name: 'default',
      summary: `the part's run()`,
      program: { kind: 'custom', description: `${part.label} run()` },
      run: (p, ctx) => run.call(part, p, ctx),
      ...(lse ? { runWithLse: (p, ctx) => lse.call(part, p, ctx) } : {}),
      ...(weights ? { runWithWeights: (p, ctx) => weights.call(part, p, ctx) } : {}),
    },
  ];
}

/**
 * A part's (or, `partial`, a kernel's) caps: the generic constraints read every field, so a
 * missing or mistyped one must be an error here, not a raw TypeError in the first explainDispatch.
 */
function checkCaps(where: string, caps: unknown, partial = false): void {
  if (typeof caps !== 'object' || caps === null) bad(where, 'a BackendCaps object', caps);
  const c = caps as Record<string, unknown>;
  const arrays = { dtypes: ['float32', 'float16', 'bfloat16'], maskKinds: ['none', 'bool', 'float'], causalVariants: ['upper-left', 'lower-right', 'both'] } as const;
  for (const [key, allowed] of Object.entries(arrays)) {
    if (partial && c[key] === undefined) continue;
    const v = c[key];
    if (!Array.isArray(v) || v.some((x) => !(allowed as readonly string[]).includes(x))) bad(`${where}.${key}`, `an array of ${allowed.map((x) => `'${x}'`).join(', ')}`, v);
  }
  for (const key of ['maxHeadDim', 'headDimMultiple']) {
    if (partial && c[key] === undefined) continue;
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(`${where}.${key}`, 'a positive integer', v);
  }
  for (const key of ['maskWithCausal', 'dropout', 'gqa', 'customScale', 'valueDimDiffers']) {
    if (partial && c[key] === undefined) continue;
    if (typeof c[key] !== 'boolean') bad(`${where}.${key}`, 'a boolean', c[key]);
  }
  for (const key of ['window', 'alibi', 'softcap', 'blockDiagonal', 'lse', 'weights']) {
    if (c[key] !== undefined && typeof c[key] !== 'boolean') bad(`${where}.${key}`, 'a boolean or undefined', c[key]);
  }
}

function checkDescriptor(d: unknown): BackendDescriptor {
  if (typeof d !== 'object' || d === null) bad('descriptor', 'a backend descriptor { name, summary, parts }', d);
  const desc = d as BackendDescriptor;
  if (typeof desc.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(desc.name)) bad('descriptor.name', 'an identifier such as "MY_BACKEND"', desc.name);
  if (desc.priority !== undefined && !Number.isFinite(desc.priority)) bad('descriptor.priority', 'a finite number (higher runs first; FLASH_ATTENTION is 40)', desc.priority);
  if (!Array.isArray(desc.parts) || desc.parts.length === 0) bad('descriptor.parts', 'a non-empty array of backend parts', desc.parts);
  desc.parts.forEach((p, i) => {
    if (typeof p !== 'object' || p === null) bad(`descriptor.parts[${i}]`, 'a backend part object', p);
    if (p.device !== 'cpu' && p.device !== 'webgpu') bad(`descriptor.parts[${i}].device`, "'cpu' or 'webgpu'", p.device);
    if (typeof p.label !== 'string') bad(`descriptor.parts[${i}].label`, 'a string such as "mine (cpu)"', p.label);
    if (typeof p.caps !== 'object' || p.caps === null) bad(`descriptor.parts[${i}].caps`, 'a BackendCaps object', p.caps);
    checkCaps(`descriptor.parts[${i}].caps`, p.caps);
    if (typeof p.availability !== 'function') bad(`descriptor.parts[${i}].availability`, 'a function returning { available }', p.availability);
    if (!Array.isArray(p.constraints)) bad(`descriptor.parts[${i}].constraints`, 'an array of constraints (may be empty)', p.constraints);
    p.constraints.forEach((c: unknown, j: number) => typeof c === 'function' || bad(`descriptor.parts[${i}].constraints[${j}]`, 'a constraint function (params, device) => string | undefined', c));
    if (typeof p.tolerance !== 'object' || p.tolerance === null) bad(`descriptor.parts[${i}].tolerance`, 'tolerances per dtype', p.tolerance);
  });
  return desc;
}

/**
 * Registers a backend: a built-in name or a new one, placed in the default order by its
 * `priority` (higher first). Registering the same name twice throws (a second engine must pick a
 * new name). Such a backend is then selected, scoped by `withBackends` and explained like the built-ins.
 *
 * @example registerBackend({ name: 'MY_BACKEND', priority: 100, summary: '…', parts: [myCpuPart] });
 */
export function registerBackend(descriptor: BackendDescriptor): void {
  const d = checkDescriptor(descriptor);
  if (registry.has(d.name)) throw new Error(`registerBackend: ${d.name} is already registered`);
  const devices = d.parts.map((p) => p.device);
  if (new Set(devices).size !== devices.length) throw new Error(`registerBackend: ${d.name} has two parts for one device`);
  const parts = d.parts.map((part, i): RegisteredPart => {
    let init: Promise<void> | undefined;
    const variants = variantsOf(part, `descriptor.parts[${i}]`);
    const names = variants.map((v) => v.name);
    const generic = [checkEnabledInContext(d.name), checkAvailable(part), checkEnvPin(d.name, part, names), ...capsConstraints(part.label, part.caps)];
    const kernels = variants.map((variant): RegisteredKernel => ({
      variant,
      constraints: [
        checkKernelPin(d.name, part, variant.name, names),
        checkKernelAvailable(variant),
        checkKernelLse(variant),
        checkKernelWeights(variant),
        ...(variant.caps ? capsConstraints(variant.name, variant.caps) : []),
        ...(variant.constraints ?? []),
      ],
    }));
    let probed = !part.init;
    return {
      backend: d.name,
      part,
      constraints: [...generic, ...part.constraints],
      ownFrom: generic.length,
      kernels,
      ensureInit: () =>
        (init ??= (part.init ? part.init().catch(() => undefined) : Promise.resolve()).then(() => {
          probed = true;
        })),
      probed: () => probed,
    };
  });
  registry.set(d.name, { descriptor: d, parts });
  addBackendName(d.name, d.priority ?? (BUILTIN_PRIORITY as Record<string, number>)[d.name] ?? 0);
}

/** Removes a backend (tests and hot-swapping engines); returns whether it was registered. */
export function unregisterBackend(name: BackendName): boolean {
  const had = registry.delete(name);
  if (had) removeBackendName(name);
  return had;
}

/** Every registered descriptor, in registration order. */
export function registeredBackends(): BackendDescriptor[] {
  return [...registry.values()].map((r) => r.descriptor);
}

/** The registered part of `backend` on `device`, if any. */
export function findPart(backend: BackendName, device: Device): RegisteredPart | undefined {
  return registry.get(backend)?.parts.find((p) => p.part.device === device);
}

let builtinRegistrar: (() => void) | undefined;

/**
 * @internal Set by src/builtins.ts when the package loads: registers the built-in backends (once).
 * The core cannot import them (they live above it, in backends/); lookups that may come before
 * any sdpa() call run it first.
 */
export function setBuiltinRegistrar(fn: () => void): void {
  builtinRegistrar = fn;
}

/**
 * The registered parts of `backend` (all devices). The built-ins are registered first, so a
 * `withBackends` kernel pin validates as the program's first call too.
 */
export function partsOf(backend: BackendName): readonly RegisteredPart[] {
  builtinRegistrar?.();
  return registry.get(backend)?.parts ?? [];
}

/** Every registered part, all devices. */
export function allParts(): RegisteredPart[] {
  return [...registry.values()].flatMap((r) => r.parts);
}

/** True when `backend` is registered. */
export function isRegistered(backend: BackendName): boolean {
  return registry.has(backend);
}
