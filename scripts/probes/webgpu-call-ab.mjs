#!/usr/bin/env node
// The per-call cost of sdpa() on FLASH (webgpu) around its kernel, interleaved call by call (so
// drift hits all alike): `run` the routed kernel variant's run() on prebuilt params, `plain` the
// whole sdpa() call, `scoped` sdpa() inside withBackends([FLASH]). --only NAME times one of them
// alone (for a CPU profile: node --cpu-prof ... --only plain). Lavapipe or a GPU, as setUp() finds.
// Usage: XDG_RUNTIME_DIR=/tmp node scripts/probes/webgpu-call-ab.mjs [--shape 1x1x64x64] [--reps 300] [--only run|plain|scoped]
import { performance } from 'node:perf_hooks';
import { cli, gpuF16, lastKernel, lib, params, setUp } from '../lib/webgpu-bench.mjs';
const { opt } = cli();
const reps = Number(opt('--reps', '300'));
const [B, H, S, D] = opt('--shape', '1x1x64x64').split('x').map(Number);
const { gpu } = await setUp();
const { sdpa, withBackends, SDPBackend } = lib;
const flash = (await import('../../dist/backends/flash/webgpu.js')).flashWebgpu;
const inputs = { q: gpuF16(gpu, [B, H, S, D]), k: gpuF16(gpu, [B, H, S, D]), v: gpuF16(gpu, [B, H, S, D]) };
const opts = { device: 'webgpu' };
(await sdpa(inputs.q.t, inputs.k.t, inputs.v.t, opts)).dispose();
const kernel = flash.kernels.find((k) => k.name === lastKernel());
const p = params.buildParams('probe', inputs.q.t, inputs.k.t, inputs.v.t, opts);
const rctx = { recordAllocation() {} };
const mode = opt('--only', '');
const V = {
  run: async () => (await kernel.run(p, rctx)).dispose(),
  plain: async () => (await sdpa(inputs.q.t, inputs.k.t, inputs.v.t, opts)).dispose(),
  scoped: async () => (await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(inputs.q.t, inputs.k.t, inputs.v.t, opts))).dispose(),
};
const names = mode ? [mode] : Object.keys(V);
const T = Object.fromEntries(names.map((n) => [n, []]));
for (let i = 0; i < 10; i++) for (const n of names) await V[n]();
for (let i = 0; i < reps; i++) for (const n of names) { const t0 = performance.now(); await V[n](); T[n].push(performance.now() - t0); }
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(kernel.name, names.map((n) => `${n} ${med(T[n]).toFixed(4)} ms`).join('  '));
process.exit(0);
