/// <reference types="@webgpu/types" />
/**
 * The one WebGPU adapter/device of this process. It is requested lazily — the `webgpu` package
 * (Dawn) in Node, `navigator.gpu` in browsers — from the first webgpu part's `init()`, never at
 * module import. Its facts (adapter info, features, limits, subgroup-matrix configurations) feed
 * the parts' availability, constraints and `capabilities()`. Device loss makes every webgpu part
 * unavailable with the loss reason; a run that meets it throws BackendFaultError so sdpa falls back.
 */
import { BackendFaultError } from '../errors.js';
import type { Availability } from '../dispatch/types.js';
import { drainPool, liveBufferCount, pooled, trackDeviceBuffers } from './buffers.js';
import { importNodeOnly, isModuleNotFound } from '../node-import.js';

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0];

/** One subgroup-matrix (cooperative matrix) shape the adapter exposes. */
export interface SubgroupMatrixConfig {
  readonly componentType: string;
  readonly resultComponentType: string;
  readonly M: number;
  readonly N: number;
  readonly K: number;
}

/** The limits the kernels use, as granted to our device (the adapter's maxima). */
export interface GpuLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxStorageBuffersPerShaderStage: number;
}

/** Everything known about the device once it is up. */
export interface WebGpuContext {
  device: GPUDevice;
  readonly adapterInfo: { readonly vendor: string; readonly architecture: string; readonly device: string; readonly description: string; readonly subgroupMinSize: number; readonly subgroupMaxSize: number };
  readonly features: ReadonlySet<string>;
  readonly limits: GpuLimits;
  readonly subgroupMatrixConfigs: readonly SubgroupMatrixConfig[];
  /**
   * True when the subgroup-matrix configuration is emulated (SDPA_WEBGPU_SGMAT_EMULATE=1 on an
   * adapter without the feature): tensor-core shaders are rewritten into plain WGSL by
   * sgmat-emulation.ts. Exact but slow; for testing the kernels' logic, never for speed.
   */
  readonly sgmatEmulated?: boolean;
  /** Where the GPU came from: `dawn (node)` or `navigator.gpu`. */
  readonly source: string;
  /**
   * The GPU and adapter objects, held for the device's lifetime: in Dawn for Node, letting the
   * instance be garbage-collected tears down its threads under the live device (process abort).
   */
  readonly keepAlive: { readonly gpu: GPU; readonly adapter: GPUAdapter };
}

type State =
  | { readonly kind: 'unprobed' }
  | { readonly kind: 'ready'; readonly ctx: WebGpuContext }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'lost'; readonly reason: string; readonly ctx: WebGpuContext };

let state: State = { kind: 'unprobed' };
let initPromise: Promise<void> | undefined;

/** The features we ask for when the adapter has them. */
// timestamp-query only serves SDPA_WEBGPU_TIMESTAMPS=1 (kernel times for benchmarks, attention.ts).
const WANTED_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'] as const;
const LIMIT_NAMES: readonly (keyof GpuLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
];

/**
 * Dawn toggles: `allow_unsafe_apis` exposes the experimental subgroup-matrix feature and
 * `vulkan_enable_f16_on_nvidia` lets NVIDIA's Vulkan driver offer `shader-f16`; both are harmless
 * elsewhere. `SDPA_WEBGPU_FLAGS` (comma-separated `key=value` Dawn options; a value may hold commas) replaces them.
 */
/** @internal The Dawn options for `env` (exported for tests). */
export function dawnFlags(env: Record<string, string | undefined>): string[] {
  const custom = env.SDPA_WEBGPU_FLAGS;
  // Options are key=value and a value may hold commas (enable-dawn-features=a,b): split only before a key.
  if (custom !== undefined) return custom.split(/,(?=\s*[A-Za-z][\w-]*=)/).map((s) => s.trim()).filter(Boolean);
  return ['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia'];
}

interface NodeProcess {
  env: Record<string, string | undefined>;
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}

/** Finds `navigator.gpu` (browser, Deno, Node with a global) or loads Dawn in Node. */
async function loadGpu(): Promise<{ gpu: GPU; source: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, source: 'navigator.gpu' };
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (!proc?.versions?.node) throw new Error('no navigator.gpu in this runtime (a browser needs WebGPU enabled)');
  // Point the Vulkan loader at lavapipe when nothing else was chosen and it is installed, so a
  // machine set up with scripts/install-vulkan.sh works without extra environment.
  const fs = proc.getBuiltinModule?.('node:fs') as { existsSync(p: string): boolean } | undefined;
  const lvp = '/usr/share/vulkan/icd.d/lvp_icd.json';
  if (!proc.env.VK_ICD_FILENAMES && !proc.env.VK_DRIVER_FILES && fs?.existsSync(lvp)) proc.env.VK_ICD_FILENAMES = lvp;
  proc.env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: { create(flags: string[]): GPU; globals: object };
  try {
    // Through Node's resolver, never a static specifier: browser bundles must not contain Dawn.
    mod = (await importNodeOnly('webgpu')) as typeof mod;
  } catch (err) {
    const what = firstLine(err);
    throw new Error(
      isModuleNotFound(err)
        ? `the optional package 'webgpu' (Dawn for Node) is not installed (${what}); npm install webgpu`
        : `the optional package 'webgpu' (Dawn for Node) is installed but failed to load: ${what}`,
    );
  }
  // Dawn's GPU* classes (GPUBufferUsage, …) are expected as globals by WebGPU code.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return { gpu: mod.create(dawnFlags(proc.env)), source: 'dawn (node)' };
}

const NO_DRIVER_HINT =
  'no WebGPU adapter found (Dawn needs a Vulkan driver: on Debian 12 run `sudo bash scripts/install-vulkan.sh` for Mesa lavapipe, then VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json)';

async function probe(): Promise<void> {
  const { gpu, source } = await loadGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(NO_DRIVER_HINT);
  const features = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const n of LIMIT_NAMES) requiredLimits[n] = adapter.limits[n];
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: readonly SubgroupMatrixConfig[]; subgroupMinSize?: number; subgroupMaxSize?: number };
  const limits = Object.fromEntries(LIMIT_NAMES.map((n) => [n, device.limits[n]])) as unknown as GpuLimits;
  const realConfigs = device.features.has('chromium-experimental-subgroup-matrix')
    ? (info.subgroupMatrixConfigs ?? []).map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K }))
    : [];
  const emulate = realConfigs.length === 0 && (globalThis as { process?: NodeProcess }).process?.env?.SDPA_WEBGPU_SGMAT_EMULATE === '1';
  const ctx: WebGpuContext = {
    device,
    adapterInfo: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      subgroupMinSize: info.subgroupMinSize ?? 0,
      subgroupMaxSize: info.subgroupMaxSize ?? 0,
    },
    features: new Set([...device.features]),
    limits,
    // The emulation computes in f32 whatever the result type, so it stands in for both f16 configurations.
    subgroupMatrixConfigs: emulate ? [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }, { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 }] : realConfigs,
    sgmatEmulated: emulate,
    source,
    keepAlive: { gpu, adapter },
  };
  trackDeviceBuffers(device);
  watchLoss(ctx, device);
  state = { kind: 'ready', ctx };
}

function lossReason(info: GPUDeviceLostInfo | { reason?: string; message?: string }): string {
  return `the WebGPU device was lost (${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}); webgpu backends are unavailable for the rest of this process`;
}

function watchLoss(ctx: WebGpuContext, device: GPUDevice): void {
  void device.lost.then((info) => {
    drainPool(device);
    // Only the device in use counts: a replaced one (tests) going away is not our loss.
    if (state.kind === 'ready' && state.ctx.device === device) state = { kind: 'lost', reason: lossReason(info), ctx };
  });
}

/**
 * Requests the adapter and device once per process. Never throws: a failure becomes the webgpu
 * parts' unavailability reason.
 */
export function initWebGpu(): Promise<void> {
  initPromise ??= probe().catch((err: unknown) => {
    state = { kind: 'failed', reason: `webgpu is unavailable: ${(err as Error)?.message ?? String(err)}` };
  });
  return initPromise;
}

/** Availability of the device, for the parts' `availability()`. */
export function gpuAvailability(): Availability {
  switch (state.kind) {
    case 'ready':
      return { available: true };
    case 'unprobed':
      return { available: false, reason: 'the WebGPU adapter has not been probed yet (sdpa() probes it on demand; await capabilities() to probe now)' };
    default:
      return { available: false, reason: state.reason };
  }
}

/** The context when the device is up, else undefined (constraints use it for limits and features). */
export function gpuContext(): WebGpuContext | undefined {
  return state.kind === 'ready' ? state.ctx : undefined;
}

/** The context for a run; a lost or missing device is a {@link BackendFaultError}. */
export function requireContext(label: string): WebGpuContext {
  if (state.kind === 'ready') return state.ctx;
  throw new BackendFaultError(`${label}: ${gpuAvailability().available ? 'no device' : (gpuAvailability() as { reason: string }).reason}`);
}

/**
 * Resolves with the loss info when `device` is already lost, else undefined, without waiting:
 * both promises race, and an already-settled `lost` wins because it subscribes first.
 */
export async function pollLost(device: GPUDevice): Promise<GPUDeviceLostInfo | undefined> {
  return Promise.race([device.lost, Promise.resolve(undefined)]);
}

/** Records that the device in use was found lost during a run and returns the fault to throw. */
export function markLost(ctx: WebGpuContext, info: GPUDeviceLostInfo | { reason?: string; message?: string }, label: string): BackendFaultError {
  const reason = lossReason(info);
  if (state.kind === 'ready' && state.ctx === ctx) state = { kind: 'lost', reason, ctx };
  return new BackendFaultError(`${label}: ${reason}`);
}

/** Facts for `describe()` / `capabilities()`. */
export function describeGpu(): Record<string, unknown> {
  const ctx = state.kind === 'ready' || state.kind === 'lost' ? state.ctx : undefined;
  if (!ctx) return { state: state.kind };
  return {
    state: state.kind,
    // Buffers in use (tensors, calls in flight); the pool's free buffers, bounded and kept for reuse
    // by later calls (SDPA_WEBGPU_POOL_MB, buffers.ts), are counted apart.
    liveResources: liveBufferCount() - pooled(ctx.device).buffers,
    pooledBuffers: pooled(ctx.device).buffers,
    pooledBytes: pooled(ctx.device).bytes,
    source: ctx.source,
    adapter: ctx.adapterInfo,
    features: [...ctx.features].sort(),
    subgroupMatrixConfigs: ctx.subgroupMatrixConfigs,
    ...(ctx.sgmatEmulated ? { subgroupMatrixEmulated: true } : {}),
    limits: ctx.limits,
  };
}

/**
 * @internal Tests: swap the device in use for `device` (e.g. one already destroyed, to inject a
 * loss that runs discover) without watching its `lost` promise.
 */
export function injectDeviceForTesting(device: GPUDevice): void {
  if (state.kind !== 'ready') throw new Error('injectDeviceForTesting: WebGPU is not initialised');
  state.ctx.device = device;
}

/**
 * @internal Tests: runs `fn` (synchronously) with `ctx` as the context in use — adapter facts of
 * another GPU, so kernel routing can be checked from its facts alone — then restores the real one.
 */
export function withContextForTesting<T>(ctx: WebGpuContext, fn: () => T): T {
  const saved = state;
  state = { kind: 'ready', ctx };
  try {
    return fn();
  } finally {
    state = saved;
  }
}
