/**
 * The backend parts and kernel variants a test run covers: every registered part (and each of its
 * kernels), or only the parts named in SDPA_ONLY_PARTS ("FLASH_ATTENTION:cpu,MATH:cpu") — the
 * sanitizer run uses it to focus on the native kernels.
 */
import { registeredBackends, type BackendName, type BackendPart, type CandidateTrace, type FloatDType, type KernelChoice, type KernelVariant, type Tolerance } from '../../src/index.js';

/** A registered part with its backend name. */
export interface TestedPart {
  backend: BackendName;
  part: BackendPart;
}

/** Parts to test in this run. */
export function testedParts(): TestedPart[] {
  const only = (process.env.SDPA_ONLY_PARTS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return registeredBackends()
    .flatMap((d) => d.parts.map((part) => ({ backend: d.name, part })))
    .filter(({ backend, part }) => only.length === 0 || only.includes(`${backend}:${part.device}`));
}

/** One kernel variant of a tested part: how to pin it, and its tolerance. */
export interface TestedVariant extends TestedPart {
  /** The kernel's name (`default` for parts without kernels). */
  kernel: string;
  variant: KernelVariant | undefined;
  /** The `withBackends` entry that pins exactly this kernel. */
  pin: KernelChoice;
  /** `backend (device) kernel`. */
  label: string;
  tolerance(dtype: FloatDType): Tolerance;
}

/** Every kernel variant of every tested part. */
export function testedVariants(): TestedVariant[] {
  return testedParts().flatMap(({ backend, part }) =>
    (part.kernels ?? [undefined]).map((variant) => {
      const kernel = variant?.name ?? 'default';
      return {
        backend,
        part,
        kernel,
        variant,
        pin: { backend, device: part.device, kernel },
        label: `${backend} (${part.device}) kernel ${kernel}`,
        tolerance: (d: FloatDType) => (variant?.tolerance ?? part.tolerance)[d],
      };
    }),
  );
}

/**
 * Whether a kernel can run a call, from the unscoped report: its part's own constraints pass
 * (only "no kernel can run" may fail) and the kernel's do. Reasons say which failed.
 */
export function variantVerdict(cand: CandidateTrace, kernel: string): { eligible: boolean; reasons: string[] } {
  const partReasons = cand.reasons.filter((_, i) => cand.failed[i] !== 'checkKernels');
  const k = cand.kernels.find((x) => x.name === kernel);
  const kernelReasons = k ? [...k.reasons] : [`${kernel} was not evaluated (engine unavailable)`];
  return { eligible: partReasons.length === 0 && k?.eligible === true, reasons: [...partReasons, ...kernelReasons] };
}
