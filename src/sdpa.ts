/**
 * `sdpa()` and `explainDispatch()`: validate, evaluate candidates, run the first eligible backend,
 * fall back past backends that fault, and record what happened.
 */
import { BackendFaultError } from './errors.js';
import { buildParams, describeParams, type SdpaOptions } from './params.js';
import { candidatesFor, evaluate, makeReport, selectBackend, type DispatchReport } from './dispatch/select.js';
import { recordDispatch } from './dispatch/trace.js';
import type { AttentionParams, KernelVariant, RunContext } from './dispatch/types.js';
import type { Tensor } from './tensor.js';
import type { TensorInput } from './tensor-adapters.js';
import { ensureBuiltinsRegistered } from './builtins.js';

/** Thrown when no backend can run a call; carries the full report. Message in xFormers' shape. */
export class SdpaDispatchError extends Error {
  readonly report: DispatchReport;
  constructor(params: AttentionParams, report: DispatchReport) {
    super(formatNothingEligible(params, report));
    this.name = 'SdpaDispatchError';
    this.report = report;
  }
}

function formatNothingEligible(p: AttentionParams, report: DispatchReport): string {
  // xFormers' layout, in this library's own names and JavaScript values (not Python's None/False/tuples).
  const shape = (t: Tensor) => `[${t.shape.join(', ')}] ${t.dtype} on ${t.device}`;
  const lines = [
    'sdpa: no backend can run this call:',
    `     q           : ${shape(p.q)}`,
    `     k           : ${shape(p.k)}`,
    `     v           : ${shape(p.v)}`,
    `     attnMask    : ${p.mask ? `${p.mask.kind} ${shape(p.mask.tensor)}` : 'no mask tensor'}`,
    `     causal      : ${p.causal ? p.causal.variant : 'none'} (isCausal or a causal bias)`,
    `     dropoutP    : ${p.dropoutP}`,
    `     scale       : ${p.scale}${p.scaleIsDefault ? ' (default)' : ''}`,
    `     device      : '${p.device}'`,
  ];
  for (const c of report.candidates) {
    lines.push(`\`${c.backend}\` (${c.device}) is not supported because:`);
    for (const r of c.reasons) lines.push(`    ${r}`);
    if (c.kernels.length > 1 || c.kernels.some((k) => !k.eligible)) for (const k of c.kernels) for (const r of k.reasons) lines.push(`      · ${r}`);
  }
  return lines.join('\n');
}

/**
 * Says, for every registered backend on the call's device, whether it could run this call and why
 * not. Runs nothing; engines not probed yet say so (await `capabilities()` to probe them).
 *
 * @example console.log(explainDispatch(q, k, v, { isCausal: true }).toString());
 */
export function explainDispatch(q: TensorInput, k: TensorInput, v: TensorInput, opts?: SdpaOptions): DispatchReport {
  ensureBuiltinsRegistered();
  return selectBackend(buildParams('explainDispatch', q, k, v, opts));
}

/**
 * Scaled dot-product attention with PyTorch 2.11 semantics (docs/design.md §2) on the best eligible backend.
 *
 * @param q `[..., Hq, S, E]`: a {@link Tensor}, or an onnxruntime `Tensor` with CPU data (shared, not copied).
 * @param k `[..., Hkv, L, E]`
 * @param v `[..., Hkv, L, Ev]`
 * @returns `[..., Hq, S, Ev]` in q's dtype (on the GPU when the call ran on webgpu).
 * @throws SdpaTypeError / SdpaRangeError for invalid input, before anything runs;
 *         SdpaDispatchError when no backend can run the call.
 * @example
 * const out = await sdpa(q, k, v, { isCausal: true });
 * const values = await out.toFloat32();
 */
export async function sdpa(q: TensorInput, k: TensorInput, v: TensorInput, opts?: SdpaOptions): Promise<Tensor> {
  ensureBuiltinsRegistered();
  const params = buildParams('sdpa', q, k, v, opts);
  return dispatchRun(params, (kernel, ctx) => kernel.run(params, ctx));
}

/**
 * @internal The one dispatch loop (sdpa and the advanced APIs): probes lazy engines that only
 * availability stands against, runs the first eligible kernel of the first eligible part through
 * `invoke`, falls back past kernels (then parts) that throw {@link BackendFaultError}, records the
 * dispatch, and throws {@link SdpaDispatchError} when nothing could run.
 */
export async function dispatchRun<T>(params: AttentionParams, invoke: (kernel: KernelVariant, ctx: RunContext) => Promise<T>): Promise<T> {
  const cands = candidatesFor(params);
  // Probe lazily: an engine is initialised only when availability is all that stands in its way.
  for (const { rp } of cands) {
    if (!rp?.part.init) continue;
    const pre = evaluate(rp, params);
    if (!pre.eligible && pre.failed.every((f) => f === 'checkAvailable')) await rp.ensureInit();
  }
  const report = selectBackend(params);
  const fallbacks: { backend: string; device: string; kernel: string; reason: string }[] = [];
  for (const c of report.candidates) {
    if (!c.eligible) continue;
    const rp = cands.find((x) => x.backend === c.backend)?.rp;
    if (!rp) continue;
    // The part's eligible kernels in its order: a kernel that faults gives way to the next one.
    for (const kt of c.kernels) {
      if (!kt.eligible) continue;
      const kernel = rp.kernels.find((k) => k.variant.name === kt.name)!.variant;
      let allocated = 0;
      const t0 = performance.now();
      try {
        const out = await invoke(kernel, { recordAllocation: (b) => void (allocated += b) });
        recordDispatch({ report, ran: { backend: c.backend, device: c.device, kernel: kernel.name }, fallbacks, allocatedBytes: allocated, ms: performance.now() - t0 });
        return out;
      } catch (err) {
        if (!(err instanceof BackendFaultError)) throw err;
        fallbacks.push({ backend: c.backend, device: c.device, kernel: kernel.name, reason: err.message });
      }
    }
  }
  const finalReport = fallbacks.length
    ? makeReport(params, report.candidates.map((c) => {
        const fs = fallbacks.filter((x) => x.backend === c.backend && x.device === c.device);
        if (!fs.length) return c;
        const kernels = c.kernels.map((k) => {
          const f = fs.find((x) => x.kernel === k.name);
          return f ? { ...k, eligible: false, selected: false, reasons: [...k.reasons, `${k.name} faulted while running: ${f.reason}`], failed: [...k.failed, 'run'] } : k;
        });
        return { ...c, eligible: false, kernel: undefined, kernels, reasons: [...c.reasons, ...fs.map((f) => `faulted while running kernel ${f.kernel}: ${f.reason}`)], failed: [...c.failed, 'run'] };
      }))
    : report;
  recordDispatch({ report: finalReport, ran: null, fallbacks, allocatedBytes: 0, ms: 0 });
  throw new SdpaDispatchError(params, finalReport);
}

export { describeParams };
