/**
 * The WebAssembly flash kernel's worker (worker_threads in Node, a module Web Worker in browsers).
 * Two roles, chosen by the `init` message:
 * - threaded: it instantiates the module on the shared `WebAssembly.Memory` with its own stack and
 *   runs jobs of calls the main thread staged there (`run`), taking them from the shared counter;
 * - single: it owns a non-shared memory (no SharedArrayBuffer on this page), stages each call
 *   itself (`call`) and runs its jobs in slices, reading `cancel` messages between slices.
 * The main thread never runs the kernel, so no call holds its event loop.
 */
import { readOutput, stageCall, WASM_STACK_BYTES, WasmMemoryError, type FlashWasmExports, type WasmJob } from './abi.js';

/** Messages to the worker. */
export type WorkerRequest =
  | { readonly type: 'init'; readonly module: WebAssembly.Module; readonly memory?: WebAssembly.Memory; readonly stack?: number }
  | { readonly type: 'run'; readonly id: number; readonly plan: number; readonly ws: number; readonly ctl: number }
  | { readonly type: 'call'; readonly id: number; readonly job: WasmJob; readonly sliceMs: number }
  | { readonly type: 'cancel'; readonly id: number };

/** Messages from the worker. */
export type WorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly id: number; readonly jobs: number; readonly busyMs: number }
  | { readonly type: 'result'; readonly id: number; readonly out: Float32Array | Uint16Array; readonly jobs: number; readonly njobs: number }
  | { readonly type: 'error'; readonly id: number; readonly message: string; readonly memory?: boolean };

interface Port {
  postMessage(m: WorkerReply, transfer?: ArrayBuffer[]): void;
}

let ex: FlashWasmExports | undefined;
let memory: WebAssembly.Memory | undefined;
const cancelled = new Set<number>();

/** A macrotask turn, so `cancel` messages queued meanwhile are delivered before the next slice. */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function handle(port: Port, m: WorkerRequest): Promise<void> {
  if (m.type === 'init') {
    try {
      const imports: WebAssembly.Imports = m.memory ? { env: { memory: m.memory } } : {};
      const inst = await WebAssembly.instantiate(m.module, imports);
      ex = inst.exports as unknown as FlashWasmExports;
      memory = m.memory ?? ex.memory;
      // Threaded: the main thread carved this worker's stack out of the shared arena (stacks grow down).
      if (m.stack) ex.__stack_pointer.value = m.stack + WASM_STACK_BYTES;
      port.postMessage({ type: 'ready' });
    } catch (e) {
      port.postMessage({ type: 'error', id: -1, message: `instantiating the flash wasm module failed: ${String(e)}` });
    }
    return;
  }
  if (m.type === 'cancel') {
    cancelled.add(m.id);
    return;
  }
  if (!ex || !memory) {
    port.postMessage({ type: 'error', id: m.id, message: 'worker used before init' });
    return;
  }
  if (m.type === 'run') {
    try {
      const t0 = performance.now();
      const jobs = ex.sdpa_run(m.plan, m.ws, m.ctl, m.ctl + 4, 0x7fffffff);
      port.postMessage({ type: 'done', id: m.id, jobs, busyMs: performance.now() - t0 });
    } catch (e) {
      port.postMessage({ type: 'error', id: m.id, message: String(e) });
    }
    return;
  }
  // A whole call in this worker's own memory, in slices of about sliceMs.
  const st = (() => {
    try {
      return stageCall(ex, memory, m.job, 1);
    } catch (e) {
      port.postMessage({ type: 'error', id: m.id, message: String((e as Error).message ?? e), memory: e instanceof WasmMemoryError });
      return undefined;
    }
  })();
  if (!st) return;
  try {
    let done = 0, slice = 1;
    while (done < st.njobs) {
      if (cancelled.has(m.id)) break;
      const t0 = performance.now();
      const ran = ex.sdpa_run(st.plan, st.workspaces[0], st.ctl, st.ctl + 4, slice);
      done += ran;
      if (ran === 0) break;
      // Grow or shrink the slice so one lasts about sliceMs (jobs differ in size under a causal mask).
      const ms = performance.now() - t0;
      slice = Math.max(1, Math.min(1024, Math.round(ms > 0 ? (slice * m.sliceMs) / ms : slice * 2)));
      await turn();
    }
    const out = readOutput(memory, st, m.job.dtype);
    port.postMessage({ type: 'result', id: m.id, out, jobs: done, njobs: st.njobs }, [out.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ type: 'error', id: m.id, message: String(e) });
  } finally {
    ex.sdpa_release(st.mark);
    cancelled.delete(m.id);
  }
}

const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
const wt = proc?.getBuiltinModule?.('node:worker_threads') as { parentPort: (Port & { on(ev: 'message', fn: (m: WorkerRequest) => void): void }) | null; isMainThread: boolean } | undefined;
if (wt && !wt.isMainThread && wt.parentPort) {
  const port = wt.parentPort;
  port.on('message', (m) => void handle(port, m));
} else if (!wt && 'onmessage' in globalThis && typeof (globalThis as { document?: unknown }).document === 'undefined') {
  // A module Web Worker: globalThis is the worker scope.
  const scope = globalThis as unknown as Port & { onmessage: ((ev: { data: WorkerRequest }) => void) | null };
  scope.onmessage = (ev) => void handle(scope, ev.data);
}
