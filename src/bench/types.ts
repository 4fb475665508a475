/**
 * Data of `sdpa-dispatch bench`: the options of a run and the rows it produces. The JSON file the
 * CLI writes is a {@link BenchResult} as is, so other tools (and the HTML report) read these names.
 */
import type { FloatDType } from '../dtype.js';
import type { BackendName } from '../dispatch/types.js';
import type { Device } from '../tensor.js';

/** What to measure. */
export interface BenchOptions {
  /** Batch size B. */
  readonly batch: number;
  /** Heads H (query and key/value: no GQA in the bench). */
  readonly heads: number;
  /** Head dim D (E = Ev). */
  readonly headDim: number;
  readonly dtype: FloatDType;
  /** Upper-left causal (S = L, so FLOPs count half). */
  readonly causal: boolean;
  readonly device: Device;
  /** Sequence lengths S (= L), ascending. */
  readonly seqs: readonly number[];
  /** Timed runs per cell after one warm-up; the median is reported. */
  readonly runs: number;
  /**
   * Wall-time budget of one cell (one backend at one S), seconds. A backend whose next call is
   * extrapolated to exceed it is not run and its row says so; slow cells get fewer runs.
   */
  readonly budgetSeconds: number;
  /** Query rows the float64 reference computes when the full reference is too big (see {@link BenchReference}). */
  readonly referenceRows: number;
  /** Largest S for which the full float64 reference (all rows) is computed. */
  readonly fullReferenceMaxS: number;
  /** Seed of the random inputs. */
  readonly seed: number;
}

/** Which reference a row's max |diff| is measured against. */
export interface BenchReference {
  /**
   * `math-f64-full`: `mathReference` (float64) over all rows. `math-f64-rows`: the same float64
   * reference on `rows` query rows spread over S (first and last included); with causal, the rows'
   * causal limits are passed as an explicit bool mask, so the sampled rows are exact.
   */
  readonly kind: 'math-f64-full' | 'math-f64-rows';
  /** Query rows compared per head. */
  readonly rows: number;
  /** Wall time of computing the reference, ms (not part of any backend's time). */
  readonly ms: number;
}

/** One backend at one sequence length: a measurement, or why there is none. */
export interface BenchRow {
  readonly s: number;
  readonly backend: BackendName;
  readonly device: Device;
  readonly status: 'ok' | 'ineligible' | 'skipped' | 'failed';
  /** Why there is no number: the dispatcher's reasons (ineligible), the bench's budget (skipped) or the error (failed). */
  readonly reason?: string;
  /** Median wall time of the timed runs, ms (webgpu: includes reading the output back). */
  readonly ms?: number;
  /** Every timed run, ms. */
  readonly runsMs?: readonly number[];
  readonly warmup?: boolean;
  /** FLOPs of one call: 4·B·H·S·L·D, half when causal. */
  readonly flops: number;
  readonly gflops?: number;
  /** MATH's median time / this backend's, at the same S (when MATH ran). */
  readonly speedupVsMath?: number;
  /** Bytes the backend recorded allocating for one call (`lastDispatch().allocatedBytes`). */
  readonly allocatedBytes?: number;
  /** Peak process RSS during the warm-up and timed runs minus RSS before them (sampled every 5 ms). */
  readonly rssDeltaBytes?: number;
  /** Largest |out - reference| over the compared rows. */
  readonly maxAbsDiff?: number;
  /** All compared elements within the backend part's own tolerance for the dtype. */
  readonly withinTolerance?: boolean;
}

/** The machine and build a run was taken on. */
export interface BenchEnvironment {
  readonly date: string;
  readonly node: string;
  readonly platform: string;
  readonly cpu: string;
  readonly cores: number;
  readonly totalMemoryBytes: number;
  /** Per backend part: `describe()` facts (kernels, adapter) of the parts on the bench's device. */
  readonly parts: Readonly<Record<string, Record<string, unknown>>>;
  /** The command line, for reproducing. */
  readonly command: string;
}

/** What `runBench` returns and the CLI writes as JSON. */
export interface BenchResult {
  readonly options: BenchOptions;
  readonly environment: BenchEnvironment;
  /** Per S, the reference used for its rows. */
  readonly references: Readonly<Record<number, BenchReference>>;
  readonly rows: readonly BenchRow[];
  /** Total wall time of the run, seconds. */
  readonly seconds: number;
}
