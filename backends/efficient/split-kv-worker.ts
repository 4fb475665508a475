/**
 * The split-KV worker's module entry (worker_threads in Node, a module Web Worker in browsers):
 * runs the EFFICIENT CPU kernel over one key range of a job and posts the partial output and
 * log-sum-exp back. A real module, so the kernel keeps importing its helpers.
 */
import { efficientKernel, type EfficientJob } from './cpu.js';

/** A request: the job (inputs in shared memory) and how many flat heads it covers. */
export interface SplitKvRequest {
  readonly job: EfficientJob;
  readonly bhCount: number;
}

/** A reply: the chunk's partial state, or the error it hit. */
export type SplitKvReply = { readonly out: Float64Array; readonly lse: Float64Array } | { readonly error: string };

/** Runs one request. */
export function handleSplitKv({ job, bhCount }: SplitKvRequest): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(bhCount * job.s * job.ev);
  const lse = new Float64Array(bhCount * job.s).fill(-Infinity);
  efficientKernel(job, 0, bhCount, 0, job.s, out, lse);
  return { out, lse };
}

interface Port {
  on?(ev: 'message', fn: (m: SplitKvRequest) => void): void;
  postMessage(m: SplitKvReply, transfer?: ArrayBuffer[]): void;
}

function reply(port: Port, msg: SplitKvRequest): void {
  try {
    const r = handleSplitKv(msg);
    port.postMessage(r, [r.out.buffer as ArrayBuffer, r.lse.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ error: String((e as Error)?.stack ?? e) });
  }
}

const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
const wt = proc?.getBuiltinModule?.('node:worker_threads') as { parentPort: Port | null; isMainThread: boolean } | undefined;
if (wt && !wt.isMainThread && wt.parentPort) {
  const port = wt.parentPort;
  port.on?.('message', (m) => reply(port, m));
} else if (!wt && typeof (globalThis as { importScripts?: unknown }).importScripts === 'undefined' && 'onmessage' in globalThis) {
  // A module Web Worker: globalThis is the worker scope.
  const scope = globalThis as unknown as Port & { onmessage: ((ev: { data: SplitKvRequest }) => void) | null };
  scope.onmessage = (ev) => reply(scope, ev.data);
}
