/**
 * `capabilities()`: what this process can run — every registered backend part, whether its engine
 * is available (probing the lazy ones), its capabilities as data and engine facts (ISA, adapter,
 * runtime versions).
 */
import { ensureBuiltinsRegistered } from './builtins.js';
import { allParts } from './dispatch/registry.js';
import type { BackendCaps, SDPBackend } from './dispatch/types.js';
import type { Device } from './tensor.js';

/** One backend part as `capabilities()` reports it. */
export interface PartCapabilities {
  readonly backend: SDPBackend;
  readonly device: Device;
  readonly available: boolean;
  /** Why not, when unavailable. */
  readonly reason?: string;
  readonly caps: BackendCaps;
  /** Engine facts from the part (e.g. detected ISA, adapter info). */
  readonly details: Record<string, unknown>;
}

/** What `capabilities()` returns. */
export interface Capabilities {
  readonly runtime: { readonly name: 'node' | 'browser' | 'other'; readonly version: string; readonly platform: string; readonly arch: string };
  /** Logical CPU cores visible to this process. */
  readonly cpuCores: number;
  readonly backends: readonly PartCapabilities[];
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
    backends: parts.map(({ backend, part }) => {
      const a = part.availability();
      return {
        backend,
        device: part.device,
        available: a.available,
        ...(a.available ? {} : { reason: a.reason }),
        caps: part.caps,
        details: part.describe?.() ?? {},
      };
    }),
  };
}
