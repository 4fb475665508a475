/**
 * Kernel pins from the environment, read once (at the first dispatch, explain or capabilities
 * call) so a process never changes kernels mid-run because a variable changed:
 *
 * - `SDPA_KERNEL=FLASH_ATTENTION/cpu=avx2_fp32,FLASH_ATTENTION/webgpu=tiled_portable_f16` pins parts to
 *   kernels (`BACKEND=kernel` without a device pins whichever part has that kernel; `a|b` pins
 *   to either, in the part's order);
 * - a part's own alias, e.g. `SDPA_CPU_ISA=avx2` (FLASH on cpu: the kernels of that ISA).
 *
 * `withBackends([{ backend, kernel }], fn)` pins from code and wins over both. A pin that names
 * no kernel of the part is a reason on the part, never a silent default.
 *
 * The same snapshot holds the other switches read once: `SDPA_WARN_FALLBACK` (fallback.ts) and
 * `SDPA_CALIBRATION` (calibration.ts).
 */
import { envVar } from '../env.js';
import type { BackendName, BackendPart } from './types.js';
import { currentState, partKey, type KernelPin } from './context.js';

/** One parsed `SDPA_KERNEL` entry. */
interface KernelEntry {
  readonly backend: string;
  readonly device: string | undefined;
  readonly kernels: readonly string[];
  readonly text: string;
}

interface EnvSwitches {
  /** Every `SDPA_*` variable set at first read, as read. */
  readonly values: Readonly<Record<string, string>>;
  readonly entries: readonly KernelEntry[];
  /** Entries of SDPA_KERNEL that could not be parsed. */
  readonly malformed: readonly string[];
}

let snapshot: EnvSwitches | undefined;

function readSwitches(): EnvSwitches {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('SDPA_') && v !== undefined) values[k] = v;
  const entries: KernelEntry[] = [];
  const malformed: string[] = [];
  for (const raw of (envVar('SDPA_KERNEL') ?? '').split(',')) {
    const text = raw.trim();
    if (!text) continue;
    const m = /^([A-Za-z][A-Za-z0-9_]*)(?:\/(cpu|webgpu))?=([a-z][a-z0-9_]*(?:\|[a-z][a-z0-9_]*)*)$/.exec(text);
    if (!m) malformed.push(text);
    else entries.push({ backend: m[1], device: m[2], kernels: m[3].split('|'), text });
  }
  return { values, entries, malformed };
}

function switches(): EnvSwitches {
  return (snapshot ??= readSwitches());
}

/** @internal Reads the environment again (tests that change `SDPA_*` variables in-process). */
export function rereadEnvSwitches(): void {
  snapshot = undefined;
}

/** The `SDPA_*` switches in force, as read once ({@link capabilities} shows them). */
export function envSwitches(): Readonly<Record<string, string>> {
  return switches().values;
}

/** Problems with the switches that no part can report (unparsable or unknown-backend `SDPA_KERNEL` entries). */
export function envSwitchProblems(known: (backend: string) => boolean): string[] {
  const s = switches();
  return [
    ...s.malformed.map((t) => `SDPA_KERNEL entry '${t}' is not BACKEND[/cpu|/webgpu]=kernel[|kernel…]; it is ignored`),
    ...s.entries.filter((e) => !known(e.backend)).map((e) => `SDPA_KERNEL entry '${e.text}' names no registered backend; it is ignored`),
  ];
}

/** What the environment says about one part's kernels: a pin, an invalid pin, or nothing. */
export type EnvPinResult = { readonly pin: KernelPin } | { readonly error: string } | undefined;

/**
 * The environment's pin of `part` of `backend` whose kernels are `names`: `SDPA_KERNEL` first,
 * then the part's own alias variable.
 */
export function envPinFor(backend: BackendName, part: BackendPart, names: readonly string[]): EnvPinResult {
  const s = switches();
  // Asked by every kernel of every part on every call (checkEnvPin, checkKernelPin): the answer
  // changes only with the snapshot, so it is kept per part for the snapshot it was read from.
  const hit = pinCache.get(part);
  if (hit && hit.snapshot === s && hit.backend === backend && hit.names === names) return hit.result;
  const result = readEnvPin(s, backend, part, names);
  pinCache.set(part, { snapshot: s, backend, names, result });
  return result;
}

const pinCache = new WeakMap<BackendPart, { snapshot: EnvSwitches; backend: BackendName; names: readonly string[]; result: EnvPinResult }>();

function readEnvPin(s: EnvSwitches, backend: BackendName, part: BackendPart, names: readonly string[]): EnvPinResult {
  const mine = s.entries.filter((e) => e.backend === backend && (e.device === undefined || e.device === part.device));
  // An entry without a device that names none of this part's kernels belongs to another device's part.
  const relevant = mine.filter((e) => e.device !== undefined || e.kernels.some((k) => names.includes(k)));
  const entry = relevant[relevant.length - 1];
  if (entry) {
    const unknown = entry.kernels.filter((k) => !names.includes(k));
    if (unknown.length) {
      return { error: `SDPA_KERNEL pins ${part.label} to ${unknown.map((k) => `'${k}'`).join(', ')}, which is not one of its kernels (${names.join(', ')}); fix or unset SDPA_KERNEL` };
    }
    return { pin: { kernels: entry.kernels, source: `SDPA_KERNEL=${entry.text}` } };
  }
  const alias = part.envPin;
  const value = alias ? s.values[alias.variable] : undefined;
  if (!alias || value === undefined || value === '') return undefined;
  const kernels = alias.kernelsFor(value);
  if (!kernels) return { error: `${alias.variable}='${value}' is not one of ${alias.values.join(', ')}; unset it or pick one` };
  const present = kernels.filter((k) => names.includes(k));
  return { pin: { kernels: present, source: `${alias.variable}=${value}` } };
}

/**
 * The pin in force for a part: the enclosing `withBackends` scope's, else a valid environment pin.
 * (An invalid environment pin is the part's reason, see `checkEnvPin`; it pins nothing.) `key` is
 * the part's {@link partKey}, for callers that keep it (every kernel asks on every call).
 */
export function activePin(backend: BackendName, part: BackendPart, names: readonly string[], key: string = partKey(backend, part.device)): KernelPin | undefined {
  const scoped = currentState().pins.get(key);
  if (scoped) return scoped;
  const env = envPinFor(backend, part, names);
  return env && 'pin' in env ? env.pin : undefined;
}
