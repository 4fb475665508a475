/**
 * The error thrown when no backend can run a call (its own module so backends can throw it without
 * importing `sdpa.ts`, which imports the backend registry).
 */
import { strictBackend } from './context.js';
import type { DispatchReport } from './select.js';
import type { AttentionParams, BackendName } from './types.js';
import type { Tensor } from '../tensor.js';

/** Thrown when no backend can run a call; carries the full report. Message in xFormers' shape. */
export class SdpaDispatchError extends Error {
  readonly report: DispatchReport;
  /** The backend a strict `withBackends(..., { strict: true })` scope allowed alone, when the call ran in one. */
  readonly strict: BackendName | undefined;
  constructor(params: AttentionParams, report: DispatchReport) {
    const strict = strictBackend();
    super(formatNothingEligible(params, report, strict));
    this.name = 'SdpaDispatchError';
    this.report = report;
    this.strict = strict;
  }
}

function formatNothingEligible(p: AttentionParams, report: DispatchReport, strict: BackendName | undefined): string {
  // xFormers' layout, in this library's own names and JavaScript values (not Python's None/False/tuples).
  const shape = (t: Tensor) => `[${t.shape.join(', ')}] ${t.dtype} on ${t.device}`;
  const lines = [
    strict
      ? `sdpa: strict mode (withBackends(..., { strict: true })) allows only ${strict}, the first backend listed, and it cannot run this call:`
      : 'sdpa: no backend can run this call:',
    `     q           : ${shape(p.q)}`,
    `     k           : ${shape(p.k)}`,
    `     v           : ${shape(p.v)}`,
    `     attnMask    : ${p.mask ? `${p.mask.kind} ${shape(p.mask.tensor)}` : 'no mask tensor'}`,
    `     causal      : ${p.causal ? p.causal.variant : 'none'} (isCausal or a causal bias)`,
    `     dropoutP    : ${p.dropoutP}`,
    `     scale       : ${p.scale}${p.scaleIsDefault ? ' (default)' : ''}`,
    `     device      : '${p.device}'`,
  ];
  if (p.needWeights) lines.push('     returnWeights: true');
  for (const c of report.candidates) {
    lines.push(`\`${c.backend}\` (${c.device}) is not supported because:`);
    for (const r of c.reasons) lines.push(`    ${r}`);
    if (c.kernels.length > 1 || c.kernels.some((k) => !k.eligible)) for (const k of c.kernels) for (const r of k.reasons) lines.push(`      · ${r}`);
  }
  return lines.join('\n');
}

