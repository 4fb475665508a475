/**
 * The library's error types. Three kinds of failure exist (docs/design.md §4): invalid input throws one of
 * the input errors below before any backend runs; "this backend can't" is a reason in the dispatch
 * report (and {@link SdpaDispatchError} when no backend can); an internal bug throws as itself.
 */

/** Fields every input error carries, so callers can react to the argument programmatically. */
export interface InputErrorDetails {
  /** The argument or option at fault, e.g. `q`, `opts.attnMask`, `shape[2]`. */
  readonly argument: string;
  /** What was expected, in words. */
  readonly expected: string;
  /** What was given, in words. */
  readonly received: string;
}

function formatInputMessage(fn: string, d: InputErrorDetails): string {
  return `${fn}: ${d.argument}: expected ${d.expected}, got ${d.received}`;
}

/** Invalid input of the wrong kind (a type, a dtype, a shape that cannot match). */
export class SdpaTypeError extends TypeError implements InputErrorDetails {
  readonly argument: string;
  readonly expected: string;
  readonly received: string;
  constructor(fn: string, details: InputErrorDetails) {
    super(formatInputMessage(fn, details));
    this.name = 'SdpaTypeError';
    this.argument = details.argument;
    this.expected = details.expected;
    this.received = details.received;
  }
}

/** Invalid input of the right kind but out of range (a negative dim, dropoutP >= 1, scale NaN). */
export class SdpaRangeError extends RangeError implements InputErrorDetails {
  readonly argument: string;
  readonly expected: string;
  readonly received: string;
  constructor(fn: string, details: InputErrorDetails) {
    super(formatInputMessage(fn, details));
    this.name = 'SdpaRangeError';
    this.argument = details.argument;
    this.expected = details.expected;
    this.received = details.received;
  }
}

/** Either input error. */
export type SdpaInputError = SdpaTypeError | SdpaRangeError;

/**
 * Thrown by a backend's `run()` when it could not complete for a reason outside the input
 * (device lost, session creation failed, addon vanished). `sdpa()` records the message as a
 * reason and falls back to the next eligible backend; any other error propagates as a bug.
 */
export class BackendFaultError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendFaultError';
  }
}

/** Describes a runtime value briefly for error messages: its type and, for arrays, its length. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : `${value}`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    const len = 'length' in value ? (value as unknown as { length: number }).length : value.byteLength;
    return `${value.constructor.name}(${len})`;
  }
  if (Array.isArray(value)) return value.length <= 8 ? `[${value.map(describeValue).join(', ')}]` : `an array of ${value.length}`;
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  return ctor && ctor !== 'Object' ? `a ${ctor}` : 'an object';
}

/** Where a call was when its AbortSignal fired. */
export type AbortStage = 'queued' | 'running';

/**
 * The rejection of a call whose AbortSignal fired (`sdpa(..., { signal })`). Its `name` is
 * `'AbortError'`, like `fetch`'s, so `err.name === 'AbortError'` checks work; `cause` is the
 * signal's reason. Nothing the caller can see was written (KV caches are left as they were).
 */
export class SdpaAbortError extends Error {
  /** `queued`: no kernel had started; `running`: a kernel was stopped (or its result dropped). */
  readonly stage: AbortStage;
  /** The backend and kernel that were running, when one was. */
  readonly backend: string | undefined;
  readonly kernel: string | undefined;
  constructor(fn: string, stage: AbortStage, reason: unknown, ran?: { backend: string; device: string; kernel: string }, detail?: string) {
    const where = ran ? ` while ${ran.backend} (${ran.device}) kernel ${ran.kernel} ran${detail ? ` (${detail})` : ''}` : ' before any kernel started';
    super(`${fn}: aborted${where}`, { cause: reason });
    this.name = 'AbortError';
    this.stage = stage;
    this.backend = ran?.backend;
    this.kernel = ran?.kernel;
  }
}

/** The element `verify` found worst, with everything needed to reproduce the check. */
export interface VerifyMismatch {
  /** Index into the output `[..., Hq, S, Ev]`. */
  readonly index: readonly number[];
  readonly got: number;
  readonly expected: number;
  /** |got − expected| (Infinity when one is NaN and the other is not, or infinities differ). */
  readonly error: number;
  /** What the tolerance allows at this element: atol + rtol·|expected|. */
  readonly allowed: number;
}

/**
 * Thrown by `sdpa(..., { verify })` when a sampled row of the result disagrees with the float64
 * reference beyond the kernel's own tolerance. Names the backend, the kernel and the worst element.
 */
export class SdpaVerifyError extends Error {
  readonly backend: string;
  readonly device: string;
  readonly kernel: string;
  readonly worst: VerifyMismatch;
  /** The tolerance of the kernel for the call's dtype. */
  readonly tolerance: { readonly atol: number; readonly rtol: number };
  /** Flat query rows (over batch·Hq·S) that were checked. */
  readonly rows: readonly number[];
  constructor(ran: { backend: string; device: string; kernel: string }, worst: VerifyMismatch, tolerance: { atol: number; rtol: number }, rows: readonly number[]) {
    const e = (x: number) => (Number.isFinite(x) ? x.toExponential(3) : String(x));
    super(
      `sdpa verify: ${ran.backend} (${ran.device}) kernel ${ran.kernel} disagrees with the float64 reference at out[${worst.index.join(', ')}]: ` +
        `got ${worst.got}, expected ${worst.expected}, |error| ${e(worst.error)} > allowed ${e(worst.allowed)} (atol ${tolerance.atol} + rtol ${tolerance.rtol}·|expected|); ` +
        `${rows.length} sampled rows checked`,
    );
    this.name = 'SdpaVerifyError';
    this.backend = ran.backend;
    this.device = ran.device;
    this.kernel = ran.kernel;
    this.worst = worst;
    this.tolerance = tolerance;
    this.rows = rows;
  }
}
