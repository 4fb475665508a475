/**
 * Dispatch for the advanced APIs. Without `returnLse` they call `sdpa()` itself; with it, the
 * call's params carry `needLse`, so only parts whose caps return the log-sum-exp are eligible and
 * the others say why (checkLse), and the chosen part's `runWithLse` runs.
 */
import { ensureBuiltinsRegistered } from '../builtins.js';
import { selectBackend, type DispatchReport } from '../dispatch/select.js';
import type { AttentionParams } from '../dispatch/types.js';
import { buildCall, buildParams, type SdpaOptions } from '../params.js';
import { sdpa, explainDispatch, dispatchRun } from '../sdpa.js';
import type { Tensor } from '../tensor.js';

/** Output and per-row log-sum-exp (`[...batch, Hq, S]`, float32; -Infinity for rows that see no key). */
export interface AttentionWithLse {
  readonly out: Tensor;
  readonly lse: Tensor;
}

/** Validated params of an advanced call, with `needLse` when asked. */
export function advancedParams(fn: string, q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions, needLse: boolean): AttentionParams {
  ensureBuiltinsRegistered();
  const p = buildParams(fn, q, k, v, opts);
  return needLse ? Object.freeze({ ...p, needLse: true }) : p;
}

/** The dispatch report of an advanced call (with the log-sum-exp requirement when `needLse`). */
export function explainAdvanced(fn: string, q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions, needLse: boolean): DispatchReport {
  ensureBuiltinsRegistered();
  return needLse ? selectBackend(advancedParams(fn, q, k, v, opts, true)) : explainDispatch(q, k, v, opts);
}

/** Runs attention; the output only. */
export function runAttention(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions): Promise<Tensor> {
  return sdpa(q, k, v, opts);
}

/** Runs attention on the first eligible part that returns the log-sum-exp too (honouring `opts.signal`). */
export async function runAttentionWithLse(fn: string, q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions): Promise<AttentionWithLse> {
  ensureBuiltinsRegistered();
  const { params: p, call } = buildCall(fn, q, k, v, opts);
  const params = Object.freeze({ ...p, needLse: true });
  return dispatchRun(params, (kernel, ctx) => {
    // checkKernelLse makes kernels without runWithLse ineligible here; reaching one is a bug.
    if (!kernel.runWithLse) throw new Error(`kernel ${kernel.name} was chosen for a log-sum-exp call but has no runWithLse`);
    return kernel.runWithLse(params, ctx);
  }, { fn, signal: call.signal });
}
