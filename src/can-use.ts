/**
 * `canUse(backend, q, k, v, opts)`: PyTorch's `can_use_flash_attention(params, debug=True)` for any
 * backend (or backend part, or kernel). It validates the inputs like `sdpa` and runs the very same
 * evaluation `explainDispatch` runs for that part (`evaluate` in select.ts), so the answer and the
 * reasons are the report's, word for word. Runs nothing.
 */
import { ensureBuiltinsRegistered } from './builtins.js';
import { SdpaTypeError, describeValue } from './errors.js';
import { buildParams, type SdpaOptions, type SdpaWeightsOptions } from './params.js';
import type { Device, Tensor } from './tensor.js';
import { checkBackendName } from './dispatch/context.js';
import { findPart } from './dispatch/registry.js';
import { evaluate, noPart, type KernelTrace } from './dispatch/select.js';
import type { BackendName } from './dispatch/types.js';

/** What {@link canUse} asks about: a backend, a backend on one device, or one kernel of a part. */
export type CanUseChoice = BackendName | { readonly backend: BackendName; readonly device?: Device; readonly kernel?: string };

/** The answer of {@link canUse}. */
export interface CanUseResult {
  /** The backend (kernel) could run this call in the calling context. */
  readonly ok: boolean;
  readonly backend: BackendName;
  readonly device: Device;
  /** The kernel that would run (the asked one, when a kernel was named); undefined when not ok. */
  readonly kernel: string | undefined;
  /**
   * Why not, in the report's words: the part's reasons (for a named kernel, the part's own reasons
   * and then the kernel's); empty when ok.
   */
  readonly reasons: readonly string[];
  /** Every kernel of the part with its verdict, as in `explainDispatch(...).candidates[i].kernels`. */
  readonly kernels: readonly KernelTrace[];
  /** `FLASH_ATTENTION (cpu): yes — kernel avx2_fp32`, or `no` and the reasons one per line. */
  toString(): string;
}

function parseChoice(choice: unknown): { backend: BackendName; device: Device | undefined; kernel: string | undefined } {
  if (typeof choice === 'string') return { backend: checkBackendName('canUse', 'backend', choice), device: undefined, kernel: undefined };
  if (typeof choice !== 'object' || choice === null || Array.isArray(choice)) {
    throw new SdpaTypeError('canUse', { argument: 'backend', expected: 'a backend name or { backend, device?, kernel? }', received: describeValue(choice) });
  }
  const c = choice as { backend?: unknown; device?: unknown; kernel?: unknown };
  const unknown = Object.keys(c).find((k) => !['backend', 'device', 'kernel'].includes(k));
  if (unknown) throw new SdpaTypeError('canUse', { argument: `backend.${unknown}`, expected: 'one of backend, device, kernel', received: `an unknown key ${JSON.stringify(unknown)}` });
  const backend = checkBackendName('canUse', 'backend.backend', c.backend);
  if (c.device !== undefined && c.device !== 'cpu' && c.device !== 'webgpu') throw new SdpaTypeError('canUse', { argument: 'backend.device', expected: "'cpu', 'webgpu' or omitted", received: describeValue(c.device) });
  if (c.kernel !== undefined && typeof c.kernel !== 'string') throw new SdpaTypeError('canUse', { argument: 'backend.kernel', expected: 'a kernel name or omitted', received: describeValue(c.kernel) });
  return { backend, device: c.device, kernel: c.kernel };
}

/**
 * Whether `backend` (on the call's device, or the device the choice names; or one of its kernels)
 * could run `sdpa(q, k, v, opts)` here and now, and why not — the same evaluation and the same
 * reasons as the matching candidate of {@link explainDispatch}, including the calling context
 * (global switches, `withBackends` scopes and pins). Engines not probed yet say so: await
 * `capabilities()` first for a final answer.
 *
 * @example
 * const r = canUse(SDPBackend.FLASH_ATTENTION, q, k, v, { isCausal: true });
 * if (!r.ok) console.warn(r.reasons.join('\n'));
 * canUse({ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: 'avx2_fp32' }, q, k, v).ok;
 */
export function canUse(backend: CanUseChoice, q: Tensor, k: Tensor, v: Tensor, opts?: SdpaOptions | SdpaWeightsOptions): CanUseResult {
  ensureBuiltinsRegistered();
  const choice = parseChoice(backend);
  const given = (opts as { device?: unknown } | undefined)?.device;
  if (choice.device !== undefined && given !== undefined && given !== choice.device) {
    throw new SdpaTypeError('canUse', { argument: 'opts.device', expected: `'${choice.device}' (the device of backend.device) or omitted`, received: describeValue(given) });
  }
  const params = buildParams('canUse', q, k, v, choice.device !== undefined && typeof opts === 'object' && opts !== null ? { ...opts, device: choice.device } : choice.device !== undefined ? { device: choice.device } : opts);
  const rp = findPart(choice.backend, params.device);
  const trace = rp ? evaluate(rp, params) : noPart(choice.backend, params.device);
  let ok: boolean;
  let reasons: readonly string[];
  let kernel: string | undefined;
  if (choice.kernel === undefined) {
    ({ eligible: ok, reasons, kernel } = trace);
  } else {
    const names = rp?.kernels.map((x) => x.variant.name) ?? [];
    if (!names.includes(choice.kernel)) {
      throw new SdpaTypeError('canUse', { argument: 'backend.kernel', expected: names.length ? `a kernel of ${choice.backend} (${params.device}): ${names.join(', ')}` : `a backend with a ${params.device} part`, received: describeValue(choice.kernel) });
    }
    // The part's own reasons (without "no kernel can run", which is about the other kernels too), then the kernel's.
    const own = trace.reasons.filter((_, i) => trace.failed[i] !== 'checkKernels');
    const kt = trace.kernels.find((x) => x.name === choice.kernel);
    const kernelReasons = kt ? kt.reasons : [`${choice.kernel} was not evaluated: its engine is unavailable`];
    reasons = own.length ? [...own, ...(kt ? kernelReasons : [])] : kernelReasons;
    ok = own.length === 0 && kt?.eligible === true;
    kernel = ok ? choice.kernel : undefined;
  }
  const label = `${choice.backend} (${params.device})${choice.kernel ? ` kernel ${choice.kernel}` : ''}`;
  return {
    ok,
    backend: choice.backend,
    device: params.device,
    kernel,
    reasons,
    kernels: trace.kernels,
    toString: () => (ok ? `${label}: yes${kernel && !choice.kernel ? ` — kernel ${kernel}` : ''}` : [`${label}: no`, ...reasons.map((r) => `  - ${r}`)].join('\n')),
  };
}
