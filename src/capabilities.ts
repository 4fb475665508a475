/**
 * `capabilities()`: what this process can run — every registered backend part, whether its engine
 * is available (probing the lazy ones), its capabilities as data and engine facts (ISA, adapter,
 * runtime versions).
 */
import { ensureBuiltinsRegistered } from './builtins.js';
import { allParts, isRegistered } from './dispatch/registry.js';
import { activePin, envSwitchProblems, envSwitches } from './dispatch/pins.js';
import { calibrationProblems } from './dispatch/calibration.js';
import type { BackendCaps, BackendName, KernelProgram } from './dispatch/types.js';
import type { Device } from './tensor.js';

/** One kernel variant of a part as `capabilities()` reports it: static facts, no call involved. */
export interface KernelCapabilities {
  readonly name: string;
  readonly summary: string;
  readonly program: KernelProgram;
  /** It can run on this machine (the part is available and the kernel's ISA / features are present). */
  readonly available: boolean;
  /** Why not, when unavailable. */
  readonly reason?: string;
  /** Its own caps, where narrower than the part's. */
  readonly caps?: BackendCaps;
  /** Engine facts of the kernel (ISA found, tile shape, subgroup-matrix configs). */
  readonly details: Record<string, unknown>;
}

/** One backend part as `capabilities()` reports it. */
export interface PartCapabilities {
  readonly backend: BackendName;
  readonly device: Device;
  readonly available: boolean;
  /** Why not, when unavailable. */
  readonly reason?: string;
  readonly caps: BackendCaps;
  /** Engine facts from the part (e.g. detected ISA, adapter info). */
  readonly details: Record<string, unknown>;
  /** Its kernel variants in priority order. */
  readonly kernels: readonly KernelCapabilities[];
  /** The kernels the part is pinned to outside any scope (SDPA_KERNEL, SDPA_CPU_ISA), and by what. */
  readonly pinned?: { readonly kernels: readonly string[]; readonly source: string };
}

/** What `capabilities()` returns. */
export interface Capabilities {
  readonly runtime: { readonly name: 'node' | 'browser' | 'other'; readonly version: string; readonly platform: string; readonly arch: string };
  /** Logical CPU cores visible to this process. */
  readonly cpuCores: number;
  readonly backends: readonly PartCapabilities[];
  /** The `SDPA_*` environment switches in force (read once) and problems with them no part reports. */
  readonly env: { readonly switches: Readonly<Record<string, string>>; readonly problems: readonly string[] };
}

function runtimeFacts(): Capabilities['runtime'] & { cores: number } {
  const proc = (globalThis as { process?: { versions?: { node?: string }; platform?: string; arch?: string; getBuiltinModule?: (id: string) => unknown } }).process;
  if (proc?.versions?.node) {
    const os = proc.getBuiltinModule?.('node:os') as { availableParallelism?: () => number; cpus(): unknown[] } | undefined;
    return { name: 'node', version: proc.versions.node, platform: proc.platform ?? '', arch: proc.arch ?? '', cores: os?.availableParallelism?.() ?? os?.cpus().length ?? 1 };
  }
  const nav = (globalThis as { navigator?: { userAgent?: string; hardwareConcurrency?: number } }).navigator;
  if (nav) return { name: 'browser', version: nav.userAgent ?? '', platform: '', arch: '', cores: nav.hardwareConcurrency ?? 1 };
  return { name: 'other', version: '', platform: '', arch: '', cores: 1 };
}

/**
 * Probes every backend part (loading optional engines) and reports what is available and why not.
 * @example const caps = await capabilities(); console.table(caps.backends.map(b => [b.backend, b.device, b.available]));
 */
export async function capabilities(): Promise<Capabilities> {
  ensureBuiltinsRegistered();
  const parts = allParts();
  await Promise.all(parts.map((p) => p.ensureInit()));
  const { cores, ...runtime } = runtimeFacts();
  return {
    runtime,
    cpuCores: cores,
    backends: parts.map(({ backend, part, kernels }) => {
      const a = part.availability();
      const pin = activePin(backend, part, kernels.map((k) => k.variant.name));
      return {
        backend,
        device: part.device,
        available: a.available,
        ...(a.available ? {} : { reason: a.reason }),
        caps: part.caps,
        details: part.describe?.() ?? {},
        kernels: kernels.map(({ variant: k }): KernelCapabilities => {
          const ka = a.available ? (k.availability?.() ?? { available: true as const }) : a;
          return {
            name: k.name,
            summary: k.summary,
            program: k.program,
            available: ka.available,
            ...(ka.available ? {} : { reason: ka.reason }),
            ...(k.caps ? { caps: k.caps } : {}),
            details: a.available ? (k.describe?.() ?? {}) : {},
          };
        }),
        ...(pin ? { pinned: { kernels: pin.kernels, source: pin.source } } : {}),
      };
    }),
    env: { switches: envSwitches(), problems: [...envSwitchProblems(isRegistered), ...calibrationProblems()] },
  };
}
