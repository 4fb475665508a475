#!/usr/bin/env node
// The WebAssembly flash kernel's first calls in a fresh Node process: V8 runs a module's first calls
// as baseline (Liftoff) code and swaps in optimised (TurboFan) code per function, at that
// function's next call, so the first sdpa() call's time shows how soon the kernel's hot loops run
// optimised (csrc/kernel_wasm.cc: the strip phases are functions of their own for that reason).
// fp32 B=1 H=8 D=64 S=2048 through sdpa() with the wasm kernel pinned; prints each call's ms.
// Uses the built dist/ (npm run build). Usage: node scripts/probes/wasm-first-call.mjs [threads] [calls]
const lib = await import('../../dist/src/index.js');
const { tensor, sdpa, withBackends } = lib;
const { setWasmThreads } = await import('../../dist/backends/flash/wasm/kernel.js');
const caps = await lib.capabilities();
const kernel = caps.backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu').kernels.find((k) => k.name.startsWith('wasm_') && k.available)?.name;
if (!kernel) throw new Error('no wasm kernel can run here');
const S = 2048, H = 8, D = 64;
let seed = 1;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
const mk = () => tensor(Float32Array.from({ length: H * S * D }, rnd), [1, H, S, D]);
const q = mk(), k = mk(), v = mk();
const threads = Number(process.argv[2] ?? 1), calls = Number(process.argv[3] ?? 8);
setWasmThreads(threads);
const ts = [];
for (let i = 0; i < calls; i++) {
  const t0 = performance.now();
  await withBackends([{ backend: 'FLASH_ATTENTION', device: 'cpu', kernel }], () => sdpa(q, k, v));
  ts.push((performance.now() - t0).toFixed(0));
}
console.log(`${kernel}, ${threads} thread(s), ms per call from the first: ${ts.join(' ')}`);
