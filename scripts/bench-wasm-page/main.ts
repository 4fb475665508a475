/**
 * The browser half of scripts/bench-wasm.mjs: in one page (cross-origin isolated, so both engines
 * may use threads), FLASH (cpu) on the WebAssembly kernel beside ONNXRUNTIME (cpu) on
 * onnxruntime-web's wasm build, the same fp32 shape, the same thread count (`?threads=N`), with a
 * timer that measures the longest event-loop stall while each runs. Results on `window.__bench`.
 */
import * as ort from 'onnxruntime-web';
import { capabilities, lastDispatch, sdpa, tensor, withBackends, type Tensor } from '../../src/index.js';
import { lastWasmRun, setWasmThreads, type WasmRunStats } from '../../backends/flash/wasm/kernel.js';

/** One timed row. */
export interface PageRow {
  readonly engine: string;
  readonly kernel: string;
  readonly s: number;
  readonly threads: number;
  /** Median of the timed calls. */
  readonly ms: number;
  /** Fastest timed call: the least disturbed one on a shared machine. */
  readonly bestMs: number;
  readonly gflops: number;
  readonly stallMs: number;
  /** Longest stall during the engine's warm-up calls (the first of them: sessions, workers, wasm compile). */
  readonly firstStallMs: number;
  readonly maxAbsDiffVsFlash?: number;
  /** The wasm call's split over threads (jobs and kernel time per worker). */
  readonly split?: WasmRunStats;
}

declare global {
  interface Window {
    __bench?: { done: boolean; rows: PageRow[]; error?: string; isolated: boolean; wasm?: unknown; ortSessionThread?: unknown };
  }
}

const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') ?? '1');
const sizes = (params.get('sizes') ?? '2048').split(',').map(Number);
const runs = Number(params.get('runs') ?? '3');
// Idle ms after each call before the next engine's (see timedInterleaved).
const gapMs = Number(params.get('gap') ?? '12');
// Untimed rounds (one call of each engine) before the timed ones.
const WARMUP_ROUNDS = 3;
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

/**
 * Times the engines interleaved (warm-up rounds of each — sessions, workers, first-touch pages, the JIT — then
 * `runs` rounds of one call each, in turn), so load from the machine's other jobs falls on both alike;
 * a 4 ms timer's longest gap is charged to the engine whose call was running. After each call the
 * page idles 12 ms before the next engine's call starts, so the timer fires and charges a stretch
 * that ended with a call to that call (a promise resolved right after a long synchronous block runs
 * before any timer: switching engines at once would charge the block to the next engine).
 */
async function timedInterleaved(fns: readonly (() => Promise<Tensor>)[]): Promise<{ ms: number; bestMs: number; stall: number; firstStall: number; out: Float32Array; kernel: string; split?: WasmRunStats }[]> {
  let last = performance.now(), current = 0;
  const stall = fns.map(() => 0);
  const timer = setInterval(() => {
    const t = performance.now();
    stall[current] = Math.max(stall[current], t - last);
    last = t;
  }, 4);
  try {
    const outs: Float32Array[] = [];
    const splits: (WasmRunStats | undefined)[] = [];
    const kernels: string[] = [];
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, gapMs));
    // Warm-up rounds, every engine alike: V8 tiers wasm code up over a module's first calls, not
    // within the first one (the Node benchmark's RATIO_WARMUPS says what was measured).
    for (let w = 0; w < WARMUP_ROUNDS; w++) {
      for (let e = 0; e < fns.length; e++) {
        current = e;
        const out = await fns[e]();
        if (w === 0) outs.push(await out.toFloat32());
        await settle();
      }
    }
    // The warm-up's stalls apart from the timed calls'.
    const firstStall = [...stall];
    stall.fill(0);
    const ts: number[][] = fns.map(() => []);
    for (let i = 0; i < runs; i++) {
      for (let e = 0; e < fns.length; e++) {
        current = e;
        const t0 = performance.now();
        await fns[e]();
        ts[e].push(performance.now() - t0);
        await settle();
        if (i === runs - 1) {
          kernels[e] = lastDispatch()?.ran?.kernel ?? '?';
          splits[e] = kernels[e].startsWith('wasm_') ? lastWasmRun() : undefined;
        }
      }
    }
    return ts.map((t, e) => {
      t.sort((a, b) => a - b);
      const split = splits[e];
      return { ms: t[t.length >> 1], bestMs: t[0], stall: stall[e], firstStall: firstStall[e], out: outs[e], kernel: kernels[e], ...(split ? { split } : {}) };
    });
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
    const [flash, ortRun] = await timedInterleaved([
      () => withBackends([{ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: wasmKernel }], () => sdpa(q, k, v)),
      () => withBackends(['ONNXRUNTIME'], () => sdpa(q, k, v)),
    ]);
    let diff = 0;
    for (let i = 0; i < ortRun.out.length; i++) diff = Math.max(diff, Math.abs(ortRun.out[i] - flash.out[i]));
    state.ortSessionThread = (await capabilities()).backends.find((b) => b.backend === 'ONNXRUNTIME' && b.device === 'cpu')?.details.sessionThread;
    state.rows.push({ engine: 'FLASH_ATTENTION (cpu)', kernel: flash.kernel, s, threads, ms: flash.ms, bestMs: flash.bestMs, gflops: flops / flash.ms / 1e6, stallMs: flash.stall, firstStallMs: flash.firstStall, ...(flash.split ? { split: flash.split } : {}) });
    state.rows.push({ engine: 'ONNXRUNTIME (cpu, onnxruntime-web wasm)', kernel: ortRun.kernel, s, threads, ms: ortRun.ms, bestMs: ortRun.bestMs, gflops: flops / ortRun.ms / 1e6, stallMs: ortRun.stall, firstStallMs: ortRun.firstStall, maxAbsDiffVsFlash: diff });
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
