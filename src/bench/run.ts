/**
 * The benchmark behind `sdpa-dispatch bench`: every backend part registered on the chosen device,
 * at each sequence length, each one alone through `withBackends([b], ...)` — the naive MATH
 * reference beside flash, efficient and whatever else is registered (ONNXRUNTIME joins as just
 * another candidate). Speed is measured here and only here; tests never assert on time (docs/design.md §7).
 *
 * Node-only (process memory, os facts); the library itself stays browser-safe.
 */
import os from 'node:os';
import { capabilities } from '../capabilities.js';
import { registeredBackends } from '../dispatch/registry.js';
import { lastDispatch } from '../dispatch/trace.js';
import { withBackends } from '../dispatch/scope.js';
import { buildParams } from '../params.js';
import { explainDispatch, sdpa } from '../sdpa.js';
import { tensor, type Tensor } from '../tensor.js';
import type { SdpaOptions } from '../params.js';
import type { BackendName, Tolerance } from '../dispatch/types.js';
import { referenceAttention as mathReference, referenceMemoryBudget as mathMemoryBudget, referenceScoreBytes as mathScoreBytes } from '../builtins.js';
import type { BenchEnvironment, BenchOptions, BenchReference, BenchResult, BenchRow } from './types.js';

/** Progress of a run, for a progress bar. */
export interface BenchProgress {
  /** Cells finished (a cell is one backend at one S). */
  readonly done: number;
  readonly total: number;
  readonly s: number;
  /** What is running now, e.g. `FLASH_ATTENTION run 2/5` or `reference`. */
  readonly label: string;
}

/** Defaults for a CPU run on a small machine: the whole default run takes a few minutes. */
export const DEFAULT_BENCH_OPTIONS: BenchOptions = {
  batch: 1,
  heads: 8,
  headDim: 64,
  dtype: 'float32',
  causal: false,
  device: 'cpu',
  seqs: [512, 1024, 2048, 4096],
  runs: 5,
  budgetSeconds: 30,
  referenceRows: 32,
  fullReferenceMaxS: 512,
  seed: 1,
};

/** `--quick`: tiny shapes, two runs — for tests and smoke checks (seconds, not minutes). */
export const QUICK_BENCH_OPTIONS: Partial<BenchOptions> = {
  heads: 2,
  headDim: 32,
  seqs: [64, 128, 256],
  runs: 2,
  budgetSeconds: 5,
  referenceRows: 16,
  fullReferenceMaxS: 128,
};

/** FLOPs of one call (docs/design.md §7): 4·B·H·S·L·D, half when causal with S = L. */
export function attentionFlops(o: Pick<BenchOptions, 'batch' | 'heads' | 'headDim' | 'causal'>, s: number, l = s): number {
  const f = 4 * o.batch * o.heads * s * l * o.headDim;
  return o.causal && s === l ? f / 2 : f;
}

/** Deterministic inputs in [-1, 1) (mulberry-style), so runs on different machines compare. */
function randomValues(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Query rows the reference computes: all, or `n` spread evenly over [0, S) with both ends. */
function sampleRows(s: number, n: number): number[] {
  if (n >= s) return Array.from({ length: s }, (_, i) => i);
  return [...new Set(Array.from({ length: n }, (_, r) => Math.round((r * (s - 1)) / (n - 1))))];
}

/** Copies rows `rows` of every head of a `[B·H, S, D]` row-major array. */
function gatherRows(src: Float32Array | Float64Array, bh: number, s: number, d: number, rows: readonly number[]): Float64Array {
  const out = new Float64Array(bh * rows.length * d);
  for (let h = 0; h < bh; h++)
    for (const [r, i] of rows.entries()) for (let x = 0; x < d; x++) out[(h * rows.length + r) * d + x] = src[(h * s + i) * d + x];
  return out;
}

interface Inputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  qValues: Float32Array;
}

function makeInputs(o: BenchOptions, s: number): Inputs {
  const shape = [o.batch, o.heads, s, o.headDim];
  const n = shape.reduce((a, b) => a * b, 1);
  const qValues = randomValues(n, o.seed * 3 + 1);
  return {
    qValues,
    q: tensor.fromFloat32(qValues, shape, o.dtype),
    k: tensor.fromFloat32(randomValues(n, o.seed * 3 + 2), shape, o.dtype),
    v: tensor.fromFloat32(randomValues(n, o.seed * 3 + 3), shape, o.dtype),
  };
}

/**
 * The float64 reference on `rows` (per head). Sampling query rows is exact: a row's output depends
 * only on its own query. Causal rows get their limit `j <= i` as an explicit bool mask, because
 * slicing q would otherwise move the diagonal.
 */
function reference(o: BenchOptions, s: number, x: Inputs): { kind: BenchReference['kind']; rows: number[]; values: Float64Array; ms: number } {
  const t0 = performance.now();
  const opts: SdpaOptions = o.causal ? { isCausal: true } : {};
  const full = buildParams('bench', x.q, x.k, x.v, opts);
  if (s <= o.fullReferenceMaxS && mathScoreBytes(full) <= mathMemoryBudget()) {
    const rows = sampleRows(s, s);
    return { kind: 'math-f64-full', rows, values: mathReference(full), ms: performance.now() - t0 };
  }
  const rows = sampleRows(s, o.referenceRows);
  const bh = o.batch * o.heads;
  const qRows = Float32Array.from(gatherRows(x.qValues, bh, s, o.headDim, rows));
  const q = tensor.fromFloat32(qRows, [o.batch, o.heads, rows.length, o.headDim], o.dtype);
  let sub: SdpaOptions = {};
  if (o.causal) {
    const mask = new Uint8Array(rows.length * s);
    for (const [r, i] of rows.entries()) mask.fill(1, r * s, r * s + i + 1);
    sub = { attnMask: tensor(mask, [rows.length, s], 'bool') };
  }
  const values = mathReference(buildParams('bench', q, x.k, x.v, sub));
  return { kind: 'math-f64-rows', rows, values, ms: performance.now() - t0 };
}

function compare(got: Float32Array, ref: Float64Array, o: BenchOptions, s: number, rows: readonly number[], tol: Tolerance | undefined) {
  const bh = o.batch * o.heads;
  const picked = rows.length === s ? got : gatherRows(got, bh, s, o.headDim, rows);
  let maxAbsDiff = 0;
  let within = true;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(picked[i] - ref[i]);
    // NaN must not pass: compare with !(d <= ...) rather than d > ...
    if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Number.NaN : d;
    if (tol && !(d <= tol.atol + tol.rtol * Math.abs(ref[i]))) within = false;
    if (Number.isNaN(maxAbsDiff)) break;
  }
  return { maxAbsDiff, withinTolerance: tol ? within : undefined };
}

/** Samples process RSS on a timer; sync TS kernels yield every few ms (src/cpu/cooperate.ts), so it ticks during them too. */
function rssSampler() {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  return {
    stop(): number {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage.rss());
    },
  };
}

function toleranceOf(backend: BackendName, o: BenchOptions): Tolerance | undefined {
  return registeredBackends()
    .find((d) => d.name === backend)
    ?.parts.find((p) => p.device === o.device)?.tolerance[o.dtype];
}

async function environment(o: BenchOptions, command: string): Promise<BenchEnvironment> {
  const caps = await capabilities();
  const parts: Record<string, Record<string, unknown>> = {};
  for (const b of caps.backends) {
    if (b.device !== o.device) continue;
    parts[b.backend] = b.available ? b.details : { unavailable: b.reason };
  }
  return {
    date: new Date().toISOString(),
    node: process.versions.node,
    platform: `${process.platform}/${process.arch}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    parts,
    command,
  };
}

/**
 * Runs the benchmark. Every candidate on `options.device` at every S gets a row: a measurement, or
 * the dispatcher's reasons when it is ineligible, or the budget when the bench chose not to run it.
 *
 * @param command the command line to record in the result (for reproducing).
 * @example const result = await runBench({ ...DEFAULT_BENCH_OPTIONS, seqs: [512, 1024] });
 */
export async function runBench(options: BenchOptions, onProgress?: (p: BenchProgress) => void, command = ''): Promise<BenchResult> {
  const o = options;
  const started = performance.now();
  // Probes every engine (addon, adapter, ORT) so explainDispatch's reasons are final, not "not probed yet".
  const env = await environment(o, command);
  const opts: SdpaOptions = { device: o.device, ...(o.causal ? { isCausal: true } : {}) };
  const rows: BenchRow[] = [];
  const references: Record<number, BenchReference> = {};
  // Per backend: the last measured (flops, ms), to extrapolate the next S and stay within budget.
  const last = new Map<BackendName, { flops: number; ms: number; s: number }>();
  let total = 0;
  let done = 0;

  for (const s of o.seqs) {
    const x = makeInputs(o, s);
    const report = explainDispatch(x.q, x.k, x.v, opts);
    if (total === 0) total = o.seqs.length * report.candidates.length;
    const flops = attentionFlops(o, s);
    const tell = (label: string) => onProgress?.({ done, total, s, label });

    tell('reference');
    const ref = reference(o, s, x);
    references[s] = { kind: ref.kind, rows: ref.rows.length, ms: ref.ms };
    const atS: BenchRow[] = [];

    for (const c of report.candidates) {
      const base = { s, backend: c.backend, device: c.device, flops };
      tell(c.backend);
      if (!c.eligible) {
        atS.push({ ...base, status: 'ineligible', reason: c.reasons.join('; ') });
        done++;
        continue;
      }
      const prev = last.get(c.backend);
      const estimate = prev ? (prev.ms * flops) / prev.flops : undefined;
      const budgetMs = o.budgetSeconds * 1000;
      if (estimate !== undefined && estimate > budgetMs) {
        atS.push({
          ...base,
          status: 'skipped',
          reason: `not run by the bench: one call would take ~${(estimate / 1000).toFixed(0)} s (extrapolated from S=${prev!.s}) > --budget ${o.budgetSeconds} s`,
        });
        done++;
        continue;
      }
      try {
        const one = async () => {
          const t0 = performance.now();
          const out = await withBackends([c.backend], () => sdpa(x.q, x.k, x.v, opts));
          // On webgpu, sdpa resolves once the work is queued: reading back is the sync point.
          const values = out.device === 'cpu' ? undefined : await out.toFloat32();
          const ms = performance.now() - t0;
          return { out, values, ms };
        };
        const rssBefore = process.memoryUsage.rss();
        const sampler = rssSampler();
        // A warm-up (JIT, pipeline compile, thread pool start) unless it alone would eat the budget.
        const warmup = estimate === undefined || estimate * 2 <= budgetMs;
        const times: number[] = [];
        let allocated = 0;
        let final: Awaited<ReturnType<typeof one>> | undefined;
        let peak: number;
        try {
          let perRun = estimate ?? 0;
          let spent = 0;
          if (warmup) {
            tell(`${c.backend} warm-up`);
            const w = await one();
            w.out.dispose();
            perRun = spent = w.ms;
          }
          const n = Math.max(1, Math.min(o.runs, perRun > 0 ? Math.floor((budgetMs - spent) / perRun) : o.runs));
          for (let r = 0; r < n; r++) {
            tell(`${c.backend} run ${r + 1}/${n}`);
            final?.out.dispose();
            final = await one();
            times.push(final.ms);
            allocated = Math.max(allocated, lastDispatch()?.allocatedBytes ?? 0);
          }
        } finally {
          // Always stop the timer: a live interval would keep the process from exiting after a failure.
          peak = sampler.stop();
        }
        const got = final!.values ?? (await final!.out.toFloat32());
        final!.out.dispose();
        const ms = median(times);
        const cmp = compare(got, ref.values, o, s, ref.rows, toleranceOf(c.backend, o));
        last.set(c.backend, { flops, ms, s });
        atS.push({
          ...base,
          status: 'ok',
          ms,
          runsMs: times,
          warmup,
          gflops: flops / ms / 1e6,
          allocatedBytes: allocated,
          rssDeltaBytes: Math.max(0, peak - rssBefore),
          maxAbsDiff: cmp.maxAbsDiff,
          ...(cmp.withinTolerance === undefined ? {} : { withinTolerance: cmp.withinTolerance }),
        });
      } catch (err) {
        atS.push({ ...base, status: 'failed', reason: err instanceof Error ? err.message.split('\n')[0] : String(err) });
      }
      done++;
    }
    const math = atS.find((r) => r.backend === 'MATH' && r.status === 'ok');
    for (const r of atS) rows.push(math?.ms && r.ms ? { ...r, speedupVsMath: math.ms / r.ms } : r);
    onProgress?.({ done, total, s, label: 'done' });
  }
  return { options: o, environment: env, references, rows, seconds: (performance.now() - started) / 1000 };
}
