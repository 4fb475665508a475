/**
 * Selection: walk the priority list in force, evaluate every candidate's constraints, take the
 * first with no reasons. `explainDispatch` returns the same evaluation as a report.
 */
import { describeParams } from '../params.js';
import { currentState } from './context.js';
import { findPart, isRegistered, type RegisteredPart } from './registry.js';
import type { AttentionParams, SDPBackend } from './types.js';
import type { Device } from '../tensor.js';

/** One backend's verdict for a call. */
export interface CandidateTrace {
  readonly backend: SDPBackend;
  readonly device: Device;
  /** Enabled in the calling context (global switch or withBackends scope). */
  readonly enabled: boolean;
  /** No constraint failed. */
  readonly eligible: boolean;
  /** Every failed constraint's sentence, in check order (empty when eligible). */
  readonly reasons: readonly string[];
  /** Names of the failed constraints, parallel to `reasons`. */
  readonly failed: readonly string[];
}

/** What `explainDispatch` returns. */
export interface DispatchReport {
  /** The backend `sdpa` would run, or null when none is eligible. */
  readonly selected: { readonly backend: SDPBackend; readonly device: Device } | null;
  /** Every registered backend, in the priority order in force. */
  readonly candidates: readonly CandidateTrace[];
  /** One line describing the inputs. */
  readonly inputs: string;
  /** A readable multi-line report. */
  toString(): string;
}

/** Runs the constraints of one registered part (all of them: the report shows every reason). */
export function evaluate(rp: RegisteredPart, params: AttentionParams): CandidateTrace {
  const reasons: string[] = [];
  const failed: string[] = [];
  const device = rp.part.device;
  let enabled = true;
  for (const [i, c] of rp.constraints.entries()) {
    // Engine-specific constraints may need init-time facts: skip them while the engine is unavailable.
    if (i >= rp.ownFrom && failed.includes('checkAvailable')) break;
    const r = c(params, device);
    if (r !== undefined) {
      reasons.push(r);
      failed.push(c.name);
      if (i === 0) enabled = false;
    }
  }
  return { backend: rp.backend, device, enabled, eligible: reasons.length === 0, reasons, failed };
}

/** Candidates for a call in priority order, with the registered part where one exists on the device. */
export function candidatesFor(params: AttentionParams): { backend: SDPBackend; rp: RegisteredPart | undefined }[] {
  return currentState()
    .priority.filter(isRegistered)
    .map((backend) => ({ backend, rp: findPart(backend, params.device) }));
}

function noPart(backend: SDPBackend, device: Device): CandidateTrace {
  return { backend, device, enabled: true, eligible: false, reasons: [`${backend} has no ${device} implementation`], failed: ['checkDevice'] };
}

/** Evaluates every candidate and picks the first eligible one. */
export function selectBackend(params: AttentionParams): DispatchReport {
  const candidates = candidatesFor(params).map(({ backend, rp }) => (rp ? evaluate(rp, params) : noPart(backend, params.device)));
  return makeReport(params, candidates);
}

/** Wraps candidate traces into a {@link DispatchReport}. */
export function makeReport(params: AttentionParams, candidates: CandidateTrace[]): DispatchReport {
  const first = candidates.find((c) => c.eligible);
  const inputs = describeParams(params);
  return {
    selected: first ? { backend: first.backend, device: first.device } : null,
    candidates,
    inputs,
    toString: () => formatReport(inputs, candidates, first),
  };
}

function formatReport(inputs: string, candidates: readonly CandidateTrace[], first: CandidateTrace | undefined): string {
  const lines = [`sdpa dispatch: ${inputs}`];
  const width = Math.max(...candidates.map((c) => `${c.backend} (${c.device})`.length));
  for (const c of candidates) {
    const label = `${c.backend} (${c.device})`.padEnd(width);
    const verdict = c === first ? 'selected' : c.eligible ? 'eligible (lower priority)' : c.enabled ? 'not eligible' : 'disabled';
    lines.push(`  ${c === first ? '→' : ' '} ${label}  ${verdict}`);
    for (const r of c.reasons) lines.push(`      - ${r}`);
  }
  if (!first) lines.push('  no backend can run this call');
  return lines.join('\n');
}
