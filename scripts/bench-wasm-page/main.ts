/**
 * The browser half of scripts/bench-wasm.mjs: in one page (cross-origin isolated, so both engines
 * may use threads), FLASH (cpu) on the WebAssembly kernel beside ONNXRUNTIME (cpu) on
 * onnxruntime-web's wasm build, the same fp32 shape, the same thread count (`?threads=N`), with a
 * timer that measures the longest event-loop stall while each runs. Results on `window.__bench`.
 */
import * as ort from 'onnxruntime-web';
import { capabilities, lastDispatch, sdpa, tensor, withBackends, type Tensor } from '../../src/index.js';
import { setWasmThreads } from '../../backends/flash/wasm/kernel.js';

/** One timed row. */
export interface PageRow {
  readonly engine: string;
  readonly kernel: string;
  readonly s: number;
  readonly threads: number;
  readonly ms: number;
  readonly gflops: number;
  readonly stallMs: number;
  readonly maxAbsDiffVsFlash?: number;
}

declare global {
  interface Window {
    __bench?: { done: boolean; rows: PageRow[]; error?: string; isolated: boolean; wasm?: unknown };
  }
}

const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') ?? '1');
const sizes = (params.get('sizes') ?? '2048').split(',').map(Number);
const runs = Number(params.get('runs') ?? '3');
const H = 8, D = 64;
const state: NonNullable<Window['__bench']> = { done: false, rows: [], isolated: crossOriginIsolated };
window.__bench = state;
// onnxruntime-web reads its thread count once, at its first session.
(ort.env.wasm as { numThreads?: number }).numThreads = threads;
setWasmThreads(threads);

function rand(n: number, seed: number): Float32Array {
  let a = seed;
  return Float32Array.from({ length: n }, () => {
    a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0;
    return (a >>> 0) / 4294967296 - 0.5;
  });
}

async function timed(fn: () => Promise<Tensor>): Promise<{ ms: number; stall: number; out: Float32Array }> {
  let last = performance.now(), stall = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    stall = Math.max(stall, t - last);
    last = t;
  }, 4);
  try {
    const outT = await fn(); // warm-up (sessions, workers, first-touch pages)
    const out = await outT.toFloat32();
    const ts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await fn();
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    return { ms: ts[ts.length >> 1], stall, out };
  } finally {
    clearInterval(timer);
  }
}

async function main(): Promise<void> {
  const caps = (await capabilities()).backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu');
  state.wasm = caps?.details.wasm;
  const wasmKernel = caps?.kernels.find((k) => k.name.startsWith('wasm_') && k.available)?.name;
  if (!wasmKernel) throw new Error(`no wasm kernel can run here: ${caps?.kernels.map((k) => k.reason).join('; ')}`);
  for (const s of sizes) {
    const [q, k, v] = [1, 2, 3].map((seed) => tensor(rand(H * s * D, seed), [1, H, s, D]));
    const flops = 4 * H * s * s * D;
    const flash = await timed(() => withBackends([{ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: wasmKernel }], () => sdpa(q, k, v)));
    state.rows.push({ engine: 'FLASH_ATTENTION (cpu)', kernel: lastDispatch()?.ran?.kernel ?? '?', s, threads, ms: flash.ms, gflops: flops / flash.ms / 1e6, stallMs: flash.stall });
    const ortRun = await timed(() => withBackends(['ONNXRUNTIME'], () => sdpa(q, k, v)));
    let diff = 0;
    for (let i = 0; i < ortRun.out.length; i++) diff = Math.max(diff, Math.abs(ortRun.out[i] - flash.out[i]));
    state.rows.push({ engine: 'ONNXRUNTIME (cpu, onnxruntime-web wasm)', kernel: lastDispatch()?.ran?.kernel ?? '?', s, threads, ms: ortRun.ms, gflops: flops / ortRun.ms / 1e6, stallMs: ortRun.stall, maxAbsDiffVsFlash: diff });
  }
}

main()
  .catch((e: unknown) => {
    state.error = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
  })
  .finally(() => {
    state.done = true;
    document.getElementById('out')!.textContent = JSON.stringify(state, null, 1);
  });
