/**
 * `sdpa()` and `explainDispatch()`: validate, evaluate candidates, run the first eligible backend,
 * fall back past backends that fault, honour the caller's AbortSignal, verify when asked, and
 * record what happened.
 */
import { BackendFaultError, SdpaAbortError, SdpaTypeError } from './errors.js';
import { buildCall, buildParams, describeParams, type SdpaOptions, type SdpaWeightsOptions } from './params.js';
import { candidatesFor, evaluate, makeReport, selectBackend, type CandidateTrace, type DispatchReport } from './dispatch/select.js';
import type { RegisteredPart } from './dispatch/registry.js';
import { recordDispatch } from './dispatch/trace.js';
import { noteDispatch } from './dispatch/fallback.js';
import type { AttentionParams, AttentionWithWeights, KernelVariant, RunContext } from './dispatch/types.js';
import { Tensor } from './tensor.js';
import type { TensorInput } from './tensor-adapters.js';
import { ensureBuiltinsRegistered } from './builtins.js';
import { verifyOutput, type VerifyRecord } from './verify.js';
import { SdpaDispatchError } from './dispatch/no-backend.js';

export { SdpaDispatchError };

/**
 * Says, for every registered backend on the call's device, whether it could run this call and why
 * not. Runs nothing; engines not probed yet say so (await `capabilities()` to probe them).
 *
 * @example console.log(explainDispatch(q, k, v, { isCausal: true }).toString());
 */
export function explainDispatch(q: TensorInput, k: TensorInput, v: TensorInput, opts?: SdpaOptions | SdpaWeightsOptions): DispatchReport {
  ensureBuiltinsRegistered();
  return selectBackend(buildParams('explainDispatch', q, k, v, opts));
}

/**
 * Scaled dot-product attention with PyTorch 2.11 semantics (docs/design.md §2) on the best eligible backend.
 *
 * @param q `[..., Hq, S, E]`: a {@link Tensor}, or an onnxruntime `Tensor` with CPU data (shared, not copied).
 * @param k `[..., Hkv, L, E]`
 * @param v `[..., Hkv, L, Ev]`
 * @returns `[..., Hq, S, Ev]` in q's dtype (on the GPU when the call ran on webgpu); with
 *          `returnWeights: true`, `{ out, weights }` where weights are `[..., Hq, S, L]`.
 * @throws SdpaTypeError / SdpaRangeError for invalid input, before anything runs;
 *         SdpaDispatchError when no backend can run the call; SdpaAbortError when `signal` fired;
 *         SdpaVerifyError when `verify` found a disagreement.
 * @example
 * const out = await sdpa(q, k, v, { isCausal: true });
 * const values = await out.toFloat32();
 * const { out: o, weights } = await sdpa(q, k, v, { returnWeights: true }); // like need_weights=True
 */
export function sdpa(q: TensorInput, k: TensorInput, v: TensorInput, opts: SdpaWeightsOptions): Promise<AttentionWithWeights>;
export function sdpa(q: TensorInput, k: TensorInput, v: TensorInput, opts?: SdpaOptions): Promise<Tensor>;
export async function sdpa(q: TensorInput, k: TensorInput, v: TensorInput, opts?: SdpaOptions | SdpaWeightsOptions): Promise<Tensor | AttentionWithWeights> {
  ensureBuiltinsRegistered();
  const { params, call } = buildCall('sdpa', q, k, v, opts);
  if (params.needWeights) {
    return dispatchRun(params, (kernel, ctx) => {
      // checkKernelWeights makes kernels without runWithWeights ineligible here; reaching one is a bug.
      if (!kernel.runWithWeights) throw new Error(`kernel ${kernel.name} was chosen for a returnWeights call but has no runWithWeights`);
      return kernel.runWithWeights(params, ctx);
    }, { fn: 'sdpa', ...call });
  }
  return dispatchRun(params, (kernel, ctx) => kernel.run(params, ctx), { fn: 'sdpa', ...call });
}

/** How a dispatch runs besides the params (all optional). */
export interface RunOptions {
  /** The API name for error messages (`sdpa`, `flashAttnFunc`, …). */
  readonly fn?: string;
  /** The caller's AbortSignal. */
  readonly signal?: AbortSignal | undefined;
  /** Rows to verify against the float64 reference (undefined: no check). */
  readonly verifyRows?: number | undefined;
}

/** The output tensor of a kernel's result (`Tensor`, or `{ out, lse }` / `{ out, weights }`). */
function outputOf(r: unknown): Tensor {
  return r instanceof Tensor ? r : (r as { out: Tensor }).out;
}

/**
 * Whether probing an unprobed part could make it eligible: the part's only failure is its engine's
 * availability, or it has no kernel that can run and some kernel's only failure is its own
 * availability (a kernel the probe decides, e.g. a wasm kernel pinned by withBackends).
 */
function probeCouldHelp(t: CandidateTrace): boolean {
  if (t.eligible || !t.failed.every((f) => f === 'checkAvailable' || f === 'checkKernels')) return false;
  return !t.failed.includes('checkKernels') || t.kernels.some((k) => k.failed.length > 0 && k.failed.every((f) => f === 'checkKernelAvailable'));
}

/** The call's tensor arguments by name. */
function inputsOf(p: AttentionParams): [string, Tensor][] {
  const list: [string, Tensor][] = [['q', p.q], ['k', p.k], ['v', p.v]];
  if (p.mask) list.push(['opts.attnMask', p.mask.tensor]);
  return list;
}

/** Rejects the call when an input was disposed, detached or resized while a kernel ran on it. */
function assertInputsUnchanged(fn: string, inputs: readonly [string, Tensor][], ran: { backend: string; device: string; kernel: string }): void {
  for (const [name, t] of inputs) {
    const problem = t.storageProblem();
    if (problem) {
      throw new SdpaTypeError(fn, {
        argument: name,
        expected: `storage left as it was until the call settles (${ran.backend} (${ran.device}) kernel ${ran.kernel} was reading it; its result is discarded)`,
        received: `${problem}, during the call`,
      });
    }
  }
}

/** Frees what a dropped result holds (GPU buffers); CPU tensors need nothing. */
function dropResult(r: unknown): void {
  for (const t of r instanceof Tensor ? [r] : Object.values(r as Record<string, unknown>)) if (t instanceof Tensor && t.device !== 'cpu') t.dispose();
}

/**
 * @internal The one dispatch loop (sdpa and the advanced APIs): probes lazy engines that only
 * availability stands against, runs the first eligible kernel of the first eligible part through
 * `invoke`, falls back past kernels (then parts) that throw {@link BackendFaultError}, honours the
 * caller's AbortSignal (checked before each kernel; a kernel stopped by it rejects the call with
 * {@link SdpaAbortError} and is never followed by another), verifies sampled rows when asked,
 * records the dispatch, tells fallback listeners, and throws {@link SdpaDispatchError} when
 * nothing could run.
 */
export async function dispatchRun<T>(params: AttentionParams, invoke: (kernel: KernelVariant, ctx: RunContext) => Promise<T>, run: RunOptions = {}): Promise<T> {
  const fn = run.fn ?? 'sdpa';
  const signal = run.signal;
  if (signal?.aborted) throw new SdpaAbortError(fn, 'queued', signal.reason);
  // Kernels that yield (EFFICIENT between row blocks, webgpu while the queue runs, native off the
  // loop) give the caller time to detach, resize or dispose an input: then the result is not trusted.
  const inputs = inputsOf(params);
  const cands = candidatesFor(params);
  // Probe lazily: an engine is initialised only when availability is all that stands in its way.
  // A part already probed needs no second evaluation here (it cost ~30% of the dispatch's CPU time).
  // Those evaluations stand for the selection below unless a probe awaited (then all are redone):
  // re-evaluating a part that stays unprobed (e.g. ONNXRUNTIME on calls it cannot run) was ~10%
  // of a tiny call's CPU time.
  let known: Map<RegisteredPart, CandidateTrace> | undefined = new Map();
  for (const { rp } of cands) {
    if (!rp?.part.init || rp.probed()) continue;
    const pre = evaluate(rp, params);
    if (probeCouldHelp(pre)) {
      await rp.ensureInit();
      known = undefined;
    } else known?.set(rp, pre);
  }
  const report = selectBackend(params, known);
  const fallbacks: { backend: string; device: string; kernel: string; reason: string }[] = [];
  let started = false;
  for (const c of report.candidates) {
    if (!c.eligible) continue;
    const rp = cands.find((x) => x.backend === c.backend)?.rp;
    if (!rp) continue;
    // The part's eligible kernels in its order: a kernel that faults gives way to the next one.
    for (const kt of c.kernels) {
      if (!kt.eligible) continue;
      if (signal?.aborted) throw new SdpaAbortError(fn, started ? 'running' : 'queued', signal.reason);
      const kernel = rp.kernels.find((k) => k.variant.name === kt.name)!.variant;
      const ran = { backend: c.backend, device: c.device, kernel: kernel.name };
      let allocated = 0;
      const t0 = performance.now();
      let out: T;
      started = true;
      try {
        out = await invoke(kernel, { ...(signal ? { signal } : {}), recordAllocation: (b) => void (allocated += b) });
      } catch (err) {
        // Stopped by the signal (whatever the kernel rejected with): an abort, never a fallback.
        if (signal?.aborted) throw new SdpaAbortError(fn, 'running', signal.reason, ran, err !== signal.reason && err instanceof Error ? err.message : undefined);
        // An input changed under the kernel: the caller's doing, not the engine's — no fallback would read it correctly.
        assertInputsUnchanged(fn, inputs, ran);
        if (!(err instanceof BackendFaultError)) throw err;
        fallbacks.push({ ...ran, reason: err.message });
        continue;
      }
      const ms = performance.now() - t0;
      try {
        assertInputsUnchanged(fn, inputs, ran);
      } catch (err) {
        dropResult(out);
        throw err;
      }
      // Work that cannot be interrupted finished after the abort: its result is dropped.
      if (signal?.aborted) {
        dropResult(out);
        throw new SdpaAbortError(fn, 'running', signal.reason, ran, 'the result was dropped');
      }
      let verify: VerifyRecord | undefined;
      if (run.verifyRows !== undefined) {
        const tolerance = (kernel.tolerance ?? rp.part.tolerance)[params.dtype];
        try {
          verify = await verifyOutput(params, outputOf(out), ran, tolerance, run.verifyRows);
        } catch (err) {
          dropResult(out);
          recordDispatch({ report, ran, fallbacks, allocatedBytes: allocated, ms });
          throw err;
        }
      }
      recordDispatch({ report, ran, fallbacks, allocatedBytes: allocated, ms, ...(verify ? { verify } : {}) });
      noteDispatch(params, report, ran, fallbacks);
      return out;
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
      }), report.ranking)
    : report;
  recordDispatch({ report: finalReport, ran: null, fallbacks, allocatedBytes: 0, ms: 0 });
  throw new SdpaDispatchError(params, finalReport);
}

export { describeParams };
