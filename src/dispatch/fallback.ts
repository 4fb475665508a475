/**
 * Fallback warnings: a call *falls back* when the backend that ran is not the one preferred for it —
 * the first backend in the priority order in force (measured, when calibrated) that is enabled in
 * the calling context and has a part for the call's device. Listeners (`onFallback`) receive the
 * inputs, what was preferred, what ran and why; by default each listener hears a distinct
 * (input class, preferred, chosen) once per process, never once per call. `SDPA_WARN_FALLBACK=1`
 * (read once, with the other SDPA_* switches) installs such a listener that prints one line.
 * PyTorch warns per call from `can_use_*` ("Memory efficient kernel not used because: …").
 */
import { SdpaTypeError, describeValue } from '../errors.js';
import { describeParams } from '../params.js';
import type { Device } from '../tensor.js';
import { envSwitches } from './pins.js';
import type { DispatchReport } from './select.js';
import type { AttentionParams, BackendName } from './types.js';

/** What a fallback listener receives. */
export interface FallbackEvent {
  /** The inputs, as in the dispatch log (`q [1, 8, 128, 64], k …, float32, mask none, …`). */
  readonly inputs: string;
  /** The input class distinct warnings are keyed by: device, dtype, head dims and the call's features — not S, L or batch, so a decode loop whose L grows warns once. */
  readonly signature: string;
  /** The first enabled backend in the priority order with a part on the device. */
  readonly preferred: { readonly backend: BackendName; readonly device: Device };
  /** What produced the result. */
  readonly ran: { readonly backend: BackendName; readonly device: Device; readonly kernel: string };
  /** Why the preferred backend did not run: its reasons (then its kernels'), or the faults it raised. */
  readonly reasons: readonly string[];
  /** Every candidate ahead of the one that ran, with its reasons (the preferred one first). */
  readonly skipped: readonly { readonly backend: BackendName; readonly device: Device; readonly reasons: readonly string[] }[];
  /** The one-line warning `SDPA_WARN_FALLBACK=1` prints. */
  readonly message: string;
}

/** Receives fallback events. */
export type FallbackListener = (event: FallbackEvent) => void;

/** Options of {@link onFallback}. */
export interface FallbackListenerOptions {
  /** Hear each distinct (signature, preferred, chosen) once per process (default true); false: every falling-back call. */
  readonly once?: boolean;
}

interface Subscriber {
  readonly listener: FallbackListener;
  readonly seen: Set<string> | undefined;
}

const subscribers = new Set<Subscriber>();
let envSubscriber: Subscriber | undefined;
let envChecked = false;

/**
 * Calls `listener` when a call falls back (see the module notes); returns a function that removes
 * it. With the default `once: true` a listener hears each distinct (input class, preferred,
 * chosen) once, however many calls repeat it.
 * @example const off = onFallback((e) => console.warn(e.message)); … off();
 */
export function onFallback(listener: FallbackListener, options?: FallbackListenerOptions): () => void {
  if (typeof listener !== 'function') throw new SdpaTypeError('onFallback', { argument: 'listener', expected: 'a function (event) => void', received: describeValue(listener) });
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new SdpaTypeError('onFallback', { argument: 'options', expected: 'an object { once?: boolean } or undefined', received: describeValue(options) });
  const unknown = options ? Object.keys(options).find((k) => k !== 'once') : undefined;
  if (unknown) throw new SdpaTypeError('onFallback', { argument: `options.${unknown}`, expected: 'one of the options once', received: `an unknown option ${JSON.stringify(unknown)}` });
  if (options?.once !== undefined && typeof options.once !== 'boolean') throw new SdpaTypeError('onFallback', { argument: 'options.once', expected: 'a boolean', received: describeValue(options.once) });
  const sub: Subscriber = { listener, seen: options?.once === false ? undefined : new Set() };
  subscribers.add(sub);
  return () => void subscribers.delete(sub);
}

function envListener(): Subscriber | undefined {
  if (!envChecked) {
    envChecked = true;
    if (envSwitches().SDPA_WARN_FALLBACK === '1') envSubscriber = { listener: (e) => console.warn(e.message), seen: new Set() };
  }
  return envSubscriber;
}

/** @internal Reads SDPA_WARN_FALLBACK again and forgets what it printed (tests that set it in-process). */
export function rereadFallbackEnv(): void {
  envChecked = false;
  envSubscriber = undefined;
}

/** The input class of a call for deduplication: everything that decides eligibility except sizes that vary call to call (S, L, batch, heads). */
export function fallbackSignature(p: AttentionParams): string {
  const parts = [p.device, p.dtype, p.ev === p.e ? `E=${p.e}` : `E=${p.e} Ev=${p.ev}`, `mask ${p.maskKind}`, `causal ${p.causal ? p.causal.variant : 'no'}`, `dropout ${p.dropoutP > 0 ? 'yes' : 'no'}`];
  if (p.gqaGroup > 1) parts.push('gqa');
  if (!p.scaleIsDefault) parts.push('custom scale');
  if (p.window) parts.push('window');
  if (p.alibi) parts.push('alibi');
  if (p.softcap !== undefined) parts.push('softcap');
  if (p.blockDiagonal) parts.push('block-diagonal');
  if (p.needLse) parts.push('lse');
  if (p.needWeights) parts.push('weights');
  return parts.join(', ');
}

/**
 * @internal Called by the dispatch loop after a call produced its result: builds the event only
 * when someone listens and the call fell back, and hands it to each listener that has not heard
 * this (signature, preferred, chosen) yet.
 */
export function noteDispatch(params: AttentionParams, report: DispatchReport, ran: FallbackEvent['ran'], faults: readonly { backend: string; device: string; kernel: string; reason: string }[]): void {
  const env = envListener();
  if (subscribers.size === 0 && !env) return;
  const preferred = report.candidates.find((c) => c.enabled && !c.failed.includes('checkDevice'));
  if (!preferred || (preferred.backend === ran.backend && preferred.device === ran.device)) return;
  const signature = fallbackSignature(params);
  const key = `${signature}|${preferred.backend}/${preferred.device}|${ran.backend}/${ran.device}/${ran.kernel}`;
  const listeners = [...subscribers, ...(env ? [env] : [])].filter((s) => !s.seen?.has(key));
  if (listeners.length === 0) return;
  const faultsOf = (backend: string) => faults.filter((f) => f.backend === backend).map((f) => `${f.kernel} faulted: ${f.reason}`);
  // Kernel reasons only when they are why the part failed ("no kernel can run"), not beside a reason of the part's own.
  const reasonsOf = (c: (typeof report.candidates)[number]) => [...c.reasons, ...(c.failed.includes('checkKernels') ? c.kernels.flatMap((k) => k.reasons) : []), ...faultsOf(c.backend)];
  const skipped: FallbackEvent['skipped'][number][] = [];
  for (const c of report.candidates) {
    if (c.backend === ran.backend) break;
    // Backends the caller switched off (or left out of a scope) are a choice, not a fallback.
    if (c.enabled && !c.failed.includes('checkDevice')) skipped.push({ backend: c.backend, device: c.device, reasons: reasonsOf(c) });
  }
  const reasons = reasonsOf(preferred);
  const event: FallbackEvent = {
    inputs: describeParams(params),
    signature,
    preferred: { backend: preferred.backend, device: preferred.device },
    ran,
    reasons,
    skipped,
    message: `[sdpa] fallback: ${ran.backend} (${ran.device}) kernel ${ran.kernel} ran instead of the preferred ${preferred.backend} (${preferred.device}) for ${signature}: ${reasons.join('; ')} (said once per input class; inputs ${describeParams(params)})`,
  };
  for (const s of listeners) {
    s.seen?.add(key);
    // A warning hook that throws must not cost the caller a result it already has.
    try {
      s.listener(event);
    } catch (err) {
      console.error('sdpa: an onFallback listener threw:', err);
    }
  }
}
