/**
 * `calibrate()`: time every eligible backend kernel on this machine for a few shape classes and
 * make dispatch prefer the fastest per class (src/dispatch/calibration.ts holds the table and the
 * ordering rule). Each cell — one kernel on one shape — runs through `sdpa` itself, pinned with a
 * strict `withBackends([{ backend, device, kernel }])` scope: three untimed warm-ups (session
 * creation, shader compilation, first-touch allocations, the JIT), then timed calls until the
 * cell's share of the budget is spent (at least one, at most `runs`); the median of the kernel's
 * own time (`lastDispatch().ms`: validation and selection cost the same whichever kernel runs) is kept. PyTorch has none: its
 * priority order is static.
 */
import { capabilities } from './capabilities.js';
import { setRanking, shapeClassKey, shapeClassOf, type ClassRanking, type Measurement } from './dispatch/calibration.js';
import { withBackends } from './dispatch/scope.js';
import { lastDispatch } from './dispatch/trace.js';
import type { BackendName } from './dispatch/types.js';
import type { FloatDType } from './dtype.js';
import { SdpaAbortError, SdpaRangeError, SdpaTypeError, describeValue } from './errors.js';
import { buildParams, type SdpaOptions } from './params.js';
import { explainDispatch, sdpa } from './sdpa.js';
import { tensor, type Device, type Tensor } from './tensor.js';
import { ownOptions } from './params.js';

/** One shape to time; its class (see `shapeClassOf`) is what the measurement ranks. */
export interface CalibrationShape {
  /** Queries per head. */
  readonly s: number;
  /** Keys per head; default `s`. */
  readonly l?: number;
  /** Query/key head dim E; default 64. */
  readonly headDim?: number;
  /** Value head dim Ev; default E. */
  readonly valueDim?: number;
  /** Default float32. */
  readonly dtype?: FloatDType;
  /** Upper-left causal; default false. */
  readonly causal?: boolean;
  /** Default 1. */
  readonly batch?: number;
  /** Default 8. */
  readonly heads?: number;
}

/** Options of {@link calibrate}. */
export interface CalibrateOptions {
  /** Shapes to time; default {@link DEFAULT_CALIBRATION_SHAPES} (decode and prefill, causal or not). */
  readonly shapes?: readonly CalibrationShape[];
  /** Devices to time on; default every device with an available backend part. */
  readonly devices?: readonly Device[];
  /** Only these backends are timed (the others keep their static places); default all registered. */
  readonly backends?: readonly BackendName[];
  /** Wall-time budget of the whole calibration in milliseconds, shared evenly by its cells; default 20000. */
  readonly budgetMs?: number;
  /** Most timed calls per cell; default 7. */
  readonly runs?: number;
  /** Called before each cell and once at the end. */
  readonly onProgress?: (p: CalibrationProgress) => void;
  /** Stops between cells; the classes finished so far stay calibrated. */
  readonly signal?: AbortSignal;
}

/** A progress event of {@link calibrate}. */
export interface CalibrationProgress {
  /** Cells finished, of `total` (a cell is one kernel on one shape). */
  readonly done: number;
  readonly total: number;
  /** The S of the shape being timed. */
  readonly s: number;
  /** What runs now, e.g. `cpu float32 D≤64 S≤128 L≤128 causal: FLASH_ATTENTION avx2_fp32`. */
  readonly label: string;
}

/** What {@link calibrate} returns. */
export interface CalibrationResult {
  /** The classes measured by this run (now in force), each with its kernels fastest first. */
  readonly classes: readonly ClassRanking[];
  /** Cells that could not be timed (the kernel faulted, or was refused), with why. */
  readonly skipped: readonly { readonly class: string; readonly backend: BackendName; readonly device: Device; readonly kernel: string; readonly reason: string }[];
  /** Wall time of the calibration, in milliseconds. */
  readonly ms: number;
}

/** Decode (one query over 1024 keys) and prefill at 128 and 512, causal and not; head dim 64, 8 heads, float32. */
export const DEFAULT_CALIBRATION_SHAPES: readonly CalibrationShape[] = [
  { s: 1, l: 1024 },
  { s: 128, l: 128 },
  { s: 128, l: 128, causal: true },
  { s: 512, l: 512 },
  { s: 512, l: 512, causal: true },
];

const OPTION_KEYS = ['shapes', 'devices', 'backends', 'budgetMs', 'runs', 'onProgress', 'signal'];
const SHAPE_KEYS = ['s', 'l', 'headDim', 'valueDim', 'dtype', 'causal', 'batch', 'heads'];

function checkOptions(o: unknown): CalibrateOptions {
  const bad = (argument: string, expected: string, value: unknown, range = false): never => {
    throw new (range ? SdpaRangeError : SdpaTypeError)('calibrate', { argument, expected, received: describeValue(value) });
  };
  if (o === undefined) return ownOptions({});
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad('options', 'an options object or undefined', o);
  // Own properties only (an option on Object.prototype is not this call's).
  const opts = ownOptions(o as CalibrateOptions);
  const unknown = Object.keys(opts).find((k) => !OPTION_KEYS.includes(k));
  if (unknown) throw new SdpaTypeError('calibrate', { argument: `options.${unknown}`, expected: `one of the options ${OPTION_KEYS.join(', ')}`, received: `an unknown option ${JSON.stringify(unknown)}` });
  if (opts.budgetMs !== undefined && !(typeof opts.budgetMs === 'number' && opts.budgetMs > 0)) bad('options.budgetMs', 'milliseconds > 0', opts.budgetMs, typeof opts.budgetMs === 'number');
  if (opts.runs !== undefined && !(Number.isInteger(opts.runs) && opts.runs >= 1)) bad('options.runs', 'an integer >= 1', opts.runs, typeof opts.runs === 'number');
  if (opts.devices !== undefined && (!Array.isArray(opts.devices) || opts.devices.some((d) => d !== 'cpu' && d !== 'webgpu'))) bad('options.devices', "an array of 'cpu' and 'webgpu'", opts.devices);
  if (opts.backends !== undefined && (!Array.isArray(opts.backends) || opts.backends.some((b) => typeof b !== 'string'))) bad('options.backends', 'an array of backend names', opts.backends);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') bad('options.onProgress', 'a function', opts.onProgress);
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) bad('options.signal', 'an AbortSignal', opts.signal);
  if (opts.shapes !== undefined) {
    if (!Array.isArray(opts.shapes) || opts.shapes.length === 0) bad('options.shapes', 'a non-empty array of { s, l?, headDim?, … }', opts.shapes);
    opts.shapes.forEach((sh, i) => {
      if (typeof sh !== 'object' || sh === null) bad(`options.shapes[${i}]`, 'an object { s, l?, headDim?, valueDim?, dtype?, causal?, batch?, heads? }', sh);
      const extra = Object.keys(sh).find((k) => !SHAPE_KEYS.includes(k));
      if (extra) throw new SdpaTypeError('calibrate', { argument: `options.shapes[${i}].${extra}`, expected: `one of ${SHAPE_KEYS.join(', ')}`, received: `an unknown key ${JSON.stringify(extra)}` });
      for (const key of ['s', 'l', 'headDim', 'valueDim', 'batch', 'heads'] as const) {
        const x = sh[key];
        if ((key === 's' || x !== undefined) && !(Number.isInteger(x) && (x as number) >= 1)) bad(`options.shapes[${i}].${key}`, 'a positive integer', x, typeof x === 'number');
      }
      if (sh.dtype !== undefined && !['float32', 'float16', 'bfloat16'].includes(sh.dtype)) bad(`options.shapes[${i}].dtype`, 'float32, float16 or bfloat16', sh.dtype);
      if (sh.causal !== undefined && typeof sh.causal !== 'boolean') bad(`options.shapes[${i}].causal`, 'a boolean', sh.causal);
    });
  }
  return opts;
}

/** Reproducible values in [-1, 1) for a shape. */
function seeded(shape: number[], dtype: FloatDType, seed: number): Tensor {
  let a = seed >>> 0;
  const n = shape.reduce((x, y) => x * y, 1);
  const values = Float32Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  });
  return tensor.fromFloat32(values, shape, dtype);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Cell {
  readonly classKey: string;
  readonly s: number;
  readonly backend: BackendName;
  readonly device: Device;
  readonly kernel: string;
  readonly run: () => Promise<Tensor>;
}

/**
 * Times every eligible backend kernel for each shape (and device) and makes dispatch prefer the
 * fastest per shape class from now on; `explainDispatch` then starts with "ranked by measurement:
 * …". Save the result with `saveCalibration()` and load it in later processes with
 * `loadCalibration()` (or `SDPA_CALIBRATION=file.json`); `resetCalibration()` returns to the
 * static order.
 *
 * @example
 * const { classes } = await calibrate({ budgetMs: 10_000 });
 * writeFileSync('calibration.json', JSON.stringify(saveCalibration()));
 */
export async function calibrate(options?: CalibrateOptions): Promise<CalibrationResult> {
  const o = checkOptions(options);
  const t0 = performance.now();
  const caps = await capabilities(); // probes every engine, so eligibility below is final
  const devices = o.devices ?? (['cpu', 'webgpu'] as const).filter((d) => caps.backends.some((b) => b.device === d && b.available));
  const only = o.backends ? new Set<string>(o.backends) : undefined;
  const shapes = o.shapes ?? DEFAULT_CALIBRATION_SHAPES;
  const cells: Cell[] = [];
  const classes = new Map<string, { cls: ClassRanking['class']; shape: number[]; measured: Map<string, Measurement> }>();
  const skipped: { class: string; backend: BackendName; device: Device; kernel: string; reason: string }[] = [];
  for (const device of devices) {
    for (const [n, sh] of shapes.entries()) {
      const dtype = sh.dtype ?? 'float32';
      const [b, h, s, l, e] = [sh.batch ?? 1, sh.heads ?? 8, sh.s, sh.l ?? sh.s, sh.headDim ?? 64];
      const ev = sh.valueDim ?? e;
      const q = seeded([b, h, s, e], dtype, 3 * n + 1), k = seeded([b, h, l, e], dtype, 3 * n + 2), v = seeded([b, h, l, ev], dtype, 3 * n + 3);
      const opts: SdpaOptions = { device, ...(sh.causal ? { isCausal: true } : {}) };
      const cls = shapeClassOf(buildParams('calibrate', q, k, v, opts));
      const classKey = shapeClassKey(cls);
      if (!classes.has(classKey)) classes.set(classKey, { cls, shape: [b, h, s, l, e, ev], measured: new Map() });
      for (const c of explainDispatch(q, k, v, opts).candidates) {
        if (only && !only.has(c.backend)) continue;
        // The part's own constraints must pass; then every kernel that is eligible gets a cell, selected or not.
        if (c.reasons.some((_, i) => c.failed[i] !== 'checkKernels')) continue;
        for (const kt of c.kernels.filter((x) => x.eligible)) {
          const pin = { backend: c.backend, device, kernel: kt.name };
          cells.push({ classKey, s, backend: c.backend, device, kernel: kt.name, run: () => withBackends([pin], () => sdpa(q, k, v, opts), { strict: true }) });
        }
      }
    }
  }
  const perCell = (o.budgetMs ?? 20_000) / Math.max(1, cells.length);
  const maxRuns = o.runs ?? 7;
  const committed: ClassRanking[] = [];
  const commit = (key: string): void => {
    const c = classes.get(key)!;
    if (c.measured.size === 0) return;
    const measured = [...c.measured.values()].sort((a, b) => a.ms - b.ms);
    const ranking: ClassRanking = { key, class: c.cls, shape: c.shape, measured, calibratedAt: new Date().toISOString() };
    setRanking(ranking);
    committed.push(ranking);
  };
  for (const [i, cell] of cells.entries()) {
    if (o.signal?.aborted) throw new SdpaAbortError('calibrate', 'queued', o.signal.reason);
    o.onProgress?.({ done: i, total: cells.length, s: cell.s, label: `${cell.classKey}: ${cell.backend} ${cell.kernel}` });
    try {
      // Three untimed warm-ups: sessions, pipelines and first-touch pages, then the JIT (a
      // TypeScript kernel measured 100×, 40×, 20× its steady time on its first three calls).
      for (let w = 0; w < 3; w++) (await cell.run()).dispose();
      const times: number[] = [];
      const started = performance.now();
      while (times.length < maxRuns && (times.length === 0 || performance.now() - started + times[times.length - 1] <= perCell)) {
        const out = await cell.run();
        // The kernel's own time (lastDispatch().ms): validation and selection cost the same whoever runs.
        times.push(lastDispatch()!.ms);
        out.dispose();
      }
      classes.get(cell.classKey)!.measured.set(`${cell.backend}/${cell.kernel}`, { backend: cell.backend, device: cell.device, kernel: cell.kernel, ms: median(times), runs: times.length });
    } catch (err) {
      skipped.push({ class: cell.classKey, backend: cell.backend, device: cell.device, kernel: cell.kernel, reason: err instanceof Error ? err.message.split('\n')[0] : String(err) });
    }
    // A class is committed once its last cell ran, so an abort keeps the classes finished so far.
    if (!cells.slice(i + 1).some((x) => x.classKey === cell.classKey)) commit(cell.classKey);
  }
  o.onProgress?.({ done: cells.length, total: cells.length, s: cells[cells.length - 1]?.s ?? 0, label: 'done' });
  return { classes: committed, skipped, ms: performance.now() - t0 };
}
