/**
 * Selection: walk the priority list in force, evaluate every candidate part's constraints and
 * each of its kernel variants' constraints with the same code, take the first part with no
 * reasons and an eligible kernel, and run that part's first eligible kernel. `explainDispatch`
 * returns the same evaluation as a report.
 */
import { describeParams } from '../params.js';
import { formatRanking, rankBackends, rankKernels, rankingFor, shapeClassKey, type ClassRanking } from './calibration.js';
import { getBackendPriority, priorityIsExplicit } from './context.js';
import { activePin } from './pins.js';
import { KERNEL_OWN_FROM, findPart, isRegistered, type RegisteredKernel, type RegisteredPart } from './registry.js';
import type { AttentionParams, BackendName, Constraint } from './types.js';
import type { Device } from '../tensor.js';

/** One kernel variant's verdict for a call. */
export interface KernelTrace {
  readonly name: string;
  /** No constraint of the kernel failed. */
  readonly eligible: boolean;
  /** Every failed constraint's sentence, in check order (empty when eligible). */
  readonly reasons: readonly string[];
  /** Names of the failed constraints, parallel to `reasons`. */
  readonly failed: readonly string[];
  /** This kernel is the one the part runs (the part's first eligible kernel, when the part is eligible). */
  readonly selected: boolean;
}

/** One backend part's verdict for a call. */
export interface CandidateTrace {
  readonly backend: BackendName;
  readonly device: Device;
  /** Enabled in the calling context (global switch or withBackends scope). */
  readonly enabled: boolean;
  /** No constraint failed and one of its kernels is eligible. */
  readonly eligible: boolean;
  /** Every failed constraint's sentence, in check order (empty when eligible). */
  readonly reasons: readonly string[];
  /** Names of the failed constraints, parallel to `reasons`. */
  readonly failed: readonly string[];
  /** Every kernel variant of the part, in its priority order, with its verdict (empty while the engine is unavailable). */
  readonly kernels: readonly KernelTrace[];
  /** The kernel the part would run, when it is eligible. */
  readonly kernel: string | undefined;
}

/** What `explainDispatch` returns. */
export interface DispatchReport {
  /** The backend `sdpa` would run (and its kernel), or null when none is eligible. */
  readonly selected: { readonly backend: BackendName; readonly device: Device; readonly kernel: string } | null;
  /** Every registered backend, in the priority order in force. */
  readonly candidates: readonly CandidateTrace[];
  /** One line describing the inputs. */
  readonly inputs: string;
  /**
   * The measured ranking that ordered the candidates (and the kernels inside each part), when the
   * call's shape class was calibrated (`calibrate()`); absent under the static order.
   */
  readonly ranking?: ClassRanking;
  /** A readable multi-line report. */
  toString(): string;
}

/** What a constraint list found: the failed checks' sentences and names (shared empty lists when none failed). */
interface ConstraintResult {
  readonly reasons: readonly string[];
  readonly failed: readonly string[];
}
const NONE: readonly string[] = Object.freeze([]);
const PASSED: ConstraintResult = Object.freeze({ reasons: NONE, failed: NONE });

/**
 * Runs a constraint list; `skipFrom` lets a caller skip the rest once a named check failed.
 * An indexed loop and lists made only when a check fails: a call evaluates ~140 constraints and
 * almost all pass, and the entries() iterator's [index, constraint] pairs plus two lists per run
 * were a fifth of the bytes a tiny sdpa() call allocated (sampling heap profile).
 */
function runConstraints(list: readonly Constraint[], params: AttentionParams, device: Device, skipFrom?: { index: number; ifFailed: string }): ConstraintResult {
  let reasons: string[] | undefined;
  let failed: string[] | undefined;
  for (let i = 0; i < list.length; i++) {
    if (failed && skipFrom && i >= skipFrom.index && failed.includes(skipFrom.ifFailed)) break;
    const c = list[i]!;
    const r = c(params, device);
    if (r !== undefined) {
      (reasons ??= []).push(r);
      (failed ??= []).push(c.name);
    }
  }
  return reasons ? { reasons, failed: failed! } : PASSED;
}

/** Evaluates one kernel variant of a part: once it cannot run here at all, its other rules are noise. */
const KERNEL_SKIP = { index: KERNEL_OWN_FROM, ifFailed: 'checkKernelAvailable' } as const;
function evaluateKernel(k: RegisteredKernel, params: AttentionParams, device: Device): ConstraintResult {
  return runConstraints(k.constraints, params, device, KERNEL_SKIP);
}

/**
 * Runs the constraints of one registered part and of each of its kernels (all of them: the
 * report shows every reason). The part is eligible when its own constraints pass and a kernel is.
 */
export function evaluate(rp: RegisteredPart, params: AttentionParams, ranking: ClassRanking | undefined = activeRanking(params)): CandidateTrace {
  const device = rp.part.device;
  // Engine-specific constraints may need init-time facts: skip them while the engine is unavailable.
  const part = runConstraints(rp.constraints, params, device, { index: rp.ownFrom, ifFailed: 'checkAvailable' });
  const enabled = !part.failed.includes('checkEnabledInContext');
  const unavailable = part.failed.includes('checkAvailable');
  // A measured ranking of the call's class orders the kernels too (fastest eligible first).
  const order = ranking ? rankKernels(rp.kernels, ranking, rp.backend, device) : rp.kernels;
  // Built field by field, not spread: the spreads were ~14% of a tiny sdpa() call's CPU time.
  // One trace object per kernel, marked selected once the part's verdict is known.
  const kernels: { name: string; reasons: readonly string[]; failed: readonly string[]; eligible: boolean; selected: boolean }[] = [];
  let firstOk: (typeof kernels)[number] | undefined;
  if (!unavailable) {
    for (const k of order) {
      const v = evaluateKernel(k, params, device);
      const trace = { name: k.variant.name, reasons: v.reasons, failed: v.failed, eligible: v.reasons.length === 0, selected: false };
      kernels.push(trace);
      if (!firstOk && trace.eligible) firstOk = trace;
    }
  }
  let reasons = part.reasons;
  let failed = part.failed;
  if (!unavailable && !firstOk) {
    const pin = activePin(rp.backend, rp.part, rp.kernels.map((k) => k.variant.name));
    reasons = [
      ...reasons,
      pin
        ? `${rp.part.label} is pinned by ${pin.source} to ${pin.kernels.join(' or ') || 'no kernel it has'}, which cannot run this call (reasons under its kernels)`
        : `${rp.part.label} has no kernel that can run this call (reasons under its kernels)`,
    ];
    failed = [...failed, 'checkKernels'];
  }
  // "Not probed yet" beside a real reason says nothing: the real one stands whatever a probe finds.
  const unprobed = failed.indexOf('checkAvailable');
  if (unprobed >= 0 && reasons.length > 1 && !rp.probed()) {
    reasons = reasons.filter((_, i) => i !== unprobed);
    failed = failed.filter((_, i) => i !== unprobed);
  }
  const eligible = reasons.length === 0;
  if (eligible && firstOk) firstOk.selected = true;
  return { backend: rp.backend, device, enabled, eligible, reasons, failed, kernels: kernels as readonly KernelTrace[], kernel: eligible ? firstOk?.name : undefined };
}

/** The measured ranking that applies to a call: its class's, unless the scope set its own order. */
export function activeRanking(params: AttentionParams): ClassRanking | undefined {
  return priorityIsExplicit() ? undefined : rankingFor(params);
}

/** Candidates for a call in priority order (measured, when its class was calibrated), with the registered part where one exists on the device. */
export function candidatesFor(params: AttentionParams, ranking: ClassRanking | undefined = activeRanking(params)): { backend: BackendName; rp: RegisteredPart | undefined }[] {
  const order = getBackendPriority().filter(isRegistered);
  return (ranking ? rankBackends(order, ranking, params.device) : order).map((backend) => ({ backend, rp: findPart(backend, params.device) }));
}

/**
 * Evaluates every candidate and picks the first eligible one. `known` holds traces already
 * evaluated for these params in this same synchronous stretch (nothing could change in between:
 * dispatchRun passes the ones it made while deciding what to probe), reused instead of evaluated again.
 */
export function selectBackend(params: AttentionParams, known?: ReadonlyMap<RegisteredPart, CandidateTrace>): DispatchReport {
  const ranking = activeRanking(params);
  const candidates = candidatesFor(params, ranking).map(({ backend, rp }) => (rp ? (known?.get(rp) ?? evaluate(rp, params, ranking)) : noPart(backend, params.device)));
  return makeReport(params, candidates, ranking);
}

/** The trace of a backend with no part on the call's device. */
export function noPart(backend: BackendName, device: Device): CandidateTrace {
  return { backend, device, enabled: true, eligible: false, reasons: [`${backend} has no ${device} implementation`], failed: ['checkDevice'], kernels: [], kernel: undefined };
}

/** Wraps candidate traces into a {@link DispatchReport}. */
export function makeReport(params: AttentionParams, candidates: CandidateTrace[], ranking?: ClassRanking): DispatchReport {
  const first = candidates.find((c) => c.eligible);
  // The inputs line is built when first read: every sdpa() call makes a report, few print it
  // (describing the inputs was ~4% of the dispatch's CPU time per call).
  let inputs: string | undefined;
  const inputsLine = () => (inputs ??= describeParams(params));
  return {
    selected: first ? { backend: first.backend, device: first.device, kernel: first.kernel ?? 'default' } : null,
    candidates,
    get inputs() {
      return inputsLine();
    },
    ...(ranking ? { ranking } : {}),
    toString: () => formatReport(inputsLine(), candidates, first, ranking, params.device),
  };
}

/** Kernel lines are worth showing when a part has a real choice or its only kernel failed. */
function showKernels(c: CandidateTrace): boolean {
  return c.kernels.length > 1 || c.kernels.some((k) => !k.eligible);
}

function formatReport(inputs: string, candidates: readonly CandidateTrace[], first: CandidateTrace | undefined, ranking: ClassRanking | undefined, device: Device): string {
  const lines = [`sdpa dispatch: ${inputs}`];
  if (ranking) lines.push(`  ranked by measurement: ${formatRanking(ranking, device)} (class ${shapeClassKey(ranking.class)}, calibrated ${ranking.calibratedAt})`);
  const width = Math.max(...candidates.map((c) => `${c.backend} (${c.device})`.length));
  for (const c of candidates) {
    const label = `${c.backend} (${c.device})`.padEnd(width);
    const verdict = c === first ? 'selected' : c.eligible ? 'eligible (lower priority)' : c.enabled ? 'not eligible' : 'disabled';
    const kernel = c.eligible && c.kernel && (c.kernels.length > 1 || c.kernel !== 'default') ? ` — kernel ${c.kernel}` : '';
    lines.push(`  ${c === first ? '→' : ' '} ${label}  ${verdict}${kernel}`);
    for (const r of c.reasons) lines.push(`      - ${r}`);
    if (!showKernels(c)) continue;
    for (const k of c.kernels) {
      if (k.selected) continue;
      if (k.eligible) lines.push(`        · ${k.name}: eligible (lower priority)`);
      // Kernel reasons are sentences that begin with the kernel's name.
      for (const r of k.reasons) lines.push(`        · ${r}`);
    }
  }
  if (!first) lines.push('  no backend can run this call');
  return lines.join('\n');
}
