/**
 * The dispatch log: one line per call naming the chosen backend and why the ones before it were
 * skipped. On when `SDPA_LOG` contains `dispatch` or a logger hook is set; the line is built
 * lazily, only when someone listens.
 */
import type { DispatchReport } from './select.js';
import type { VerifyRecord } from '../verify.js';
import { envVar } from '../env.js';

/** A record of one `sdpa` call's dispatch, as kept by {@link lastDispatch}. */
export interface DispatchRecord {
  /** The evaluation before running (all candidates and reasons). */
  readonly report: DispatchReport;
  /** The backend and kernel that produced the result (may differ from `report.selected` after a fallback). */
  readonly ran: { readonly backend: string; readonly device: string; readonly kernel: string } | null;
  /** Backend kernels that were selected but faulted while running, with the fault, in order. */
  readonly fallbacks: readonly { readonly backend: string; readonly device: string; readonly kernel: string; readonly reason: string }[];
  /** Bytes the running backend reported allocating for this call. */
  readonly allocatedBytes: number;
  /** Wall time of the backend's run, in milliseconds. */
  readonly ms: number;
  /** The `verify` check of this call (rows, worst error against the tolerance, its cost), when it was asked for. */
  readonly verify?: VerifyRecord;
  /** Shorthand for `ran.backend`: the backend that produced the result (null when none could run). */
  readonly backend: string | null;
  /** Shorthand for `ran.device`. */
  readonly device: string | null;
  /** Shorthand for `ran.kernel`: the kernel variant that produced the result, e.g. `avx2_fp32`. */
  readonly kernel: string | null;
}

/** Receives each dispatch line and record. */
export type DispatchLogger = (line: string, record: DispatchRecord) => void;

let logger: DispatchLogger | undefined;
let last: DispatchRecord | undefined;

/** Installs (or, with undefined, removes) a logger called once per `sdpa` call. */
export function setDispatchLogger(fn: DispatchLogger | undefined): void {
  logger = fn;
}

/** The record of the most recent `sdpa` call in this process (undefined before the first). */
export function lastDispatch(): DispatchRecord | undefined {
  return last;
}

let logVar: { raw: string | undefined; on: boolean } | undefined;

/** `SDPA_LOG` names `dispatch`: read per call (it may change in-process), parsed only when it changed. */
function envLogOn(): boolean {
  const raw = envVar('SDPA_LOG');
  if (logVar?.raw !== raw || !logVar) logVar = { raw, on: (raw ?? '').split(',').map((s) => s.trim()).includes('dispatch') };
  return logVar.on;
}

/** The one-line form of a record. */
export function formatDispatchLine(r: DispatchRecord): string {
  const chosen = r.ran ? `${r.ran.backend} (${r.ran.device}) kernel ${r.ran.kernel}` : 'none';
  const skipped: string[] = [];
  for (const c of r.report.candidates) {
    if (r.ran && c.backend === r.ran.backend) {
      // Kernels of the part that ran, ahead of the one that ran, and why they did not.
      for (const k of c.kernels) {
        if (k.name === r.ran.kernel) break;
        if (!k.eligible) skipped.push(k.reasons.join('; '));
      }
      break;
    }
    if (!c.eligible) skipped.push(`${c.backend}: ${c.reasons.join('; ')}`);
  }
  for (const f of r.fallbacks) skipped.push(`${f.backend} kernel ${f.kernel} faulted: ${f.reason}`);
  const verified = r.verify ? `, verified ${r.verify.rows.length} rows (worst ${r.verify.worstRatio.toFixed(2)} of tolerance, ${r.verify.ms.toFixed(1)} ms)` : '';
  return `[sdpa] ${chosen} for ${r.report.inputs} in ${r.ms.toFixed(1)} ms${verified}${skipped.length ? ` — skipped ${skipped.join(' | ')}` : ''}`;
}

/** Stores the record and emits the log line when logging is on. */
export function recordDispatch(fields: Omit<DispatchRecord, 'backend' | 'device' | 'kernel'>): void {
  const r: DispatchRecord = { ...fields, backend: fields.ran?.backend ?? null, device: fields.ran?.device ?? null, kernel: fields.ran?.kernel ?? null };
  last = r;
  const env = envLogOn();
  if (!env && !logger) return;
  const line = formatDispatchLine(r);
  if (env) console.error(line);
  logger?.(line, r);
}
