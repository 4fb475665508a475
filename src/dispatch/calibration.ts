/**
 * Measured priority: what `calibrate()` learnt on this machine, per shape class (device, dtype,
 * head dim, S and L buckets, causal or not), and how dispatch uses it. For a call of a calibrated
 * class, the backends that were measured are ordered by their best time *within the slots they
 * hold in the priority order in force* (backends that were not measured keep their places), and
 * so are the kernels inside a part. Eligibility is untouched: a measured backend that cannot run a
 * call still gives its reasons. An order a scope set for itself (`withBackends(..., { setPriority:
 * true })`) is never reordered. Tables are saved and loaded as JSON (`saveCalibration`,
 * `loadCalibration`, or `SDPA_CALIBRATION=file.json`, read once at the first dispatch).
 */
import { z } from 'zod';
import { SdpaTypeError } from '../errors.js';
import type { FloatDType } from '../dtype.js';
import type { Device } from '../tensor.js';
import { envSwitches } from './pins.js';
import type { AttentionParams, BackendName } from './types.js';

/** Upper bounds of the sequence-length buckets (S and L); the last one is open. */
export const LENGTH_BUCKETS: readonly number[] = [1, 16, 128, 512, 2048, 8192, Infinity];

/** The shape class of a call: what measured rankings are keyed by. */
export interface ShapeClass {
  readonly device: Device;
  readonly dtype: FloatDType;
  /** Upper bound of the head-dim bucket: the next power of two >= max(E, Ev) (at least 8). */
  readonly headDim: number;
  /** Upper bounds of the S and L buckets ({@link LENGTH_BUCKETS}; `Infinity` is serialised as null). */
  readonly s: number;
  readonly l: number;
  /** Any causal structure (isCausal or a causal bias). */
  readonly causal: boolean;
}

/** One timed backend kernel of a class. */
export interface Measurement {
  readonly backend: BackendName;
  readonly device: Device;
  readonly kernel: string;
  /** Median time of the kernel's run in one `sdpa` call (`lastDispatch().ms`), in milliseconds. */
  readonly ms: number;
  /** Timed runs behind the median (after three untimed warm-ups). */
  readonly runs: number;
}

/** What was learnt for one class. */
export interface ClassRanking {
  /** {@link shapeClassKey} of `class`. */
  readonly key: string;
  readonly class: ShapeClass;
  /** The shape that was timed, `[batch, heads, S, L, E, Ev]`. */
  readonly shape: readonly number[];
  /** Every measured kernel, fastest first. */
  readonly measured: readonly Measurement[];
  /** When it was measured (ISO 8601). */
  readonly calibratedAt: string;
}

/** The JSON form of a calibration table (`saveCalibration()` / `loadCalibration()`). */
export interface CalibrationData {
  readonly format: 'sdpa-dispatch-calibration';
  readonly version: 1;
  /** Where it was measured: a table from another machine still loads, and reports say where it came from. */
  readonly machine: Readonly<Record<string, string | number>>;
  readonly classes: readonly ClassRanking[];
}

const bucket = (n: number): number => LENGTH_BUCKETS.find((b) => n <= b) ?? Infinity;

/** The class of a call. */
export function shapeClassOf(p: AttentionParams): ShapeClass {
  const d = Math.max(p.e, p.ev, 8);
  return {
    device: p.device,
    dtype: p.dtype,
    headDim: 2 ** Math.ceil(Math.log2(d)),
    s: bucket(p.s),
    l: bucket(p.l),
    causal: p.causal !== undefined || p.blockDiagonal?.causal === true,
  };
}

const bound = (name: string, b: number): string => (b === Infinity ? `${name}>${LENGTH_BUCKETS[LENGTH_BUCKETS.length - 2]}` : b === 1 ? `${name}=1` : `${name}≤${b}`);

/** A readable key, e.g. `cpu float32 D≤64 S≤128 L≤512 causal`. */
export function shapeClassKey(c: ShapeClass): string {
  return `${c.device} ${c.dtype} D≤${c.headDim} ${bound('S', c.s)} ${bound('L', c.l)} ${c.causal ? 'causal' : 'non-causal'}`;
}

const table = new Map<string, ClassRanking>();
let envLoaded = false;
let envProblem: string | undefined;

/** Loads `SDPA_CALIBRATION` once (Node); a file that cannot be read or parsed becomes a problem in `capabilities().env`. */
function loadFromEnvOnce(): void {
  if (envLoaded) return;
  envLoaded = true;
  const path = envSwitches().SDPA_CALIBRATION;
  if (!path) return;
  const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as { readFileSync(p: string, enc: 'utf8'): string } | undefined;
  try {
    if (!fs) throw new Error('no file system in this runtime');
    loadCalibration(JSON.parse(fs.readFileSync(path, 'utf8')));
  } catch (err) {
    envProblem = `SDPA_CALIBRATION='${path}' could not be loaded (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); the static priority order is used`;
  }
}

/** @internal Reads `SDPA_CALIBRATION` again at the next dispatch (tests that set it in-process). */
export function rereadCalibrationEnv(): void {
  envLoaded = false;
  envProblem = undefined;
}

/** Problems with `SDPA_CALIBRATION`, for `capabilities().env.problems`. */
export function calibrationProblems(): string[] {
  loadFromEnvOnce();
  return envProblem ? [envProblem] : [];
}

/** The ranking in force for a call's class, if it was calibrated. */
export function rankingFor(p: AttentionParams): ClassRanking | undefined {
  loadFromEnvOnce();
  if (table.size === 0) return undefined;
  return table.get(shapeClassKey(shapeClassOf(p)));
}

/** @internal Stores what `calibrate()` measured for one class (replacing an earlier ranking of it). */
export function setRanking(r: ClassRanking): void {
  table.set(r.key, r);
}

/** Every calibrated class in force, in the order they were measured or loaded. */
export function calibratedClasses(): readonly ClassRanking[] {
  loadFromEnvOnce();
  return [...table.values()];
}

/**
 * Forgets every measurement: dispatch returns to the static priority order (an `SDPA_CALIBRATION`
 * file is not read again).
 * @example resetCalibration();
 */
export function resetCalibration(): void {
  envLoaded = true;
  table.clear();
}

/** The machine facts a table records. */
export function machineFacts(): Record<string, string | number> {
  const proc = (globalThis as { process?: { versions?: { node?: string }; platform?: string; arch?: string; getBuiltinModule?: (id: string) => unknown } }).process;
  const os = proc?.getBuiltinModule?.('node:os') as { cpus(): { model: string }[]; availableParallelism?: () => number; hostname(): string } | undefined;
  if (os && proc?.versions?.node) {
    return { runtime: `node ${proc.versions.node}`, platform: `${proc.platform}/${proc.arch}`, cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cores: os.availableParallelism?.() ?? os.cpus().length };
  }
  const nav = (globalThis as { navigator?: { userAgent?: string; hardwareConcurrency?: number } }).navigator;
  return { runtime: nav?.userAgent ?? 'unknown', cores: nav?.hardwareConcurrency ?? 1 };
}

/**
 * The calibration in force as JSON-ready data, to write to a file and load in later processes.
 * @example writeFileSync('calibration.json', JSON.stringify(saveCalibration()));
 */
export function saveCalibration(): CalibrationData {
  const classes = calibratedClasses().map((c) => ({ ...c, class: { ...c.class, s: finiteOrNull(c.class.s), l: finiteOrNull(c.class.l) } }));
  return { format: 'sdpa-dispatch-calibration', version: 1, machine: machineFacts(), classes: classes as unknown as ClassRanking[] };
}

// JSON has no Infinity: the open bucket is written as null.
const finiteOrNull = (n: number): number | null => (Number.isFinite(n) ? n : null);

const lengthBound = z.union([z.number().positive(), z.null()]).transform((x) => x ?? Infinity);
const schema = z.object({
  format: z.literal('sdpa-dispatch-calibration'),
  version: z.literal(1),
  machine: z.record(z.string(), z.union([z.string(), z.number()])),
  classes: z.array(
    z.object({
      key: z.string(),
      class: z.object({ device: z.enum(['cpu', 'webgpu']), dtype: z.enum(['float32', 'float16', 'bfloat16']), headDim: z.number().int().positive(), s: lengthBound, l: lengthBound, causal: z.boolean() }),
      shape: z.array(z.number().int().positive()),
      measured: z.array(z.object({ backend: z.string(), device: z.enum(['cpu', 'webgpu']), kernel: z.string(), ms: z.number().nonnegative(), runs: z.number().int().positive() })),
      calibratedAt: z.string(),
    }),
  ),
});

/**
 * Loads a table written by {@link saveCalibration} (parsed JSON), replacing the rankings of the
 * classes it holds. Entries naming backends or kernels this process has not registered are kept
 * but never match a candidate. Returns how many classes were loaded.
 * @example loadCalibration(JSON.parse(readFileSync('calibration.json', 'utf8')));
 */
export function loadCalibration(data: unknown): { classes: number; machine: Readonly<Record<string, string | number>> } {
  const r = schema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SdpaTypeError('loadCalibration', { argument: `data${issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}`, expected: 'a table from saveCalibration() (format sdpa-dispatch-calibration, version 1)', received: issue.message });
  }
  for (const c of r.data.classes) {
    const key = shapeClassKey(c.class);
    const measured = [...c.measured].sort((a, b) => a.ms - b.ms);
    table.set(key, { key, class: c.class, shape: c.shape, measured, calibratedAt: c.calibratedAt });
  }
  envLoaded = true;
  return { classes: r.data.classes.length, machine: r.data.machine };
}

/** Best time of each measured backend of `device` in a ranking. */
function bestByBackend(r: ClassRanking, device: Device): Map<BackendName, number> {
  const best = new Map<BackendName, number>();
  for (const m of r.measured) if (m.device === device && !(m.ms >= (best.get(m.backend) ?? Infinity))) best.set(m.backend, m.ms);
  return best;
}

/**
 * Reorders `items` so the measured ones, fastest first, fill the slots the measured ones held;
 * the others stay where they were. Stable for equal times.
 */
export function permuteByTime<T>(items: readonly T[], timeOf: (x: T) => number | undefined): T[] {
  const slots: number[] = [];
  const measured: { x: T; ms: number; at: number }[] = [];
  items.forEach((x, at) => {
    const ms = timeOf(x);
    if (ms === undefined) return;
    slots.push(at);
    measured.push({ x, ms, at });
  });
  measured.sort((a, b) => a.ms - b.ms || a.at - b.at);
  const out = [...items];
  slots.forEach((slot, n) => (out[slot] = measured[n].x));
  return out;
}

/** The backend order for a call under its class's ranking. */
export function rankBackends(order: readonly BackendName[], r: ClassRanking, device: Device): BackendName[] {
  const best = bestByBackend(r, device);
  return permuteByTime(order, (b) => best.get(b));
}

/** The kernel order of one part under a ranking. */
export function rankKernels<T extends { readonly variant: { readonly name: string } }>(kernels: readonly T[], r: ClassRanking, backend: BackendName, device: Device): T[] {
  const ms = new Map(r.measured.filter((m) => m.backend === backend && m.device === device).map((m) => [m.kernel, m.ms]));
  return permuteByTime(kernels, (k) => ms.get(k.variant.name));
}

/** `FLASH_ATTENTION avx2_fp32 12.1 ms < ONNXRUNTIME attention 13.4 ms`: each backend's best kernel, fastest first. */
export function formatRanking(r: ClassRanking, device: Device): string {
  const seen = new Set<BackendName>();
  const parts: string[] = [];
  for (const m of r.measured) {
    if (m.device !== device || seen.has(m.backend)) continue;
    seen.add(m.backend);
    parts.push(`${m.backend} ${m.kernel} ${formatMs(m.ms)}`);
  }
  return parts.join(' < ');
}

/** 12.1 ms, 0.412 ms, 1530 ms. */
export function formatMs(ms: number): string {
  return `${ms >= 100 ? ms.toFixed(0) : ms.toPrecision(3)} ms`;
}
