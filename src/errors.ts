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
