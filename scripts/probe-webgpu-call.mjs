#!/usr/bin/env node
// Where the time of one awaited FLASH (webgpu) call goes beyond its kernel, level by level, each
// the median of --reps calls after a warm-up (docs/performance-webgpu.md):
//   wait      queue.submit([]) + await onSubmittedWorkDone(): the floor of any awaited GPU call;
//   dispatch  one encoder, one compute pass of a 1-workgroup kernel, submit, wait: the floor of a call;
//   noop      the library's per-call path (runAttention: output buffer, uniform, bind group, error
//             scopes, one submit, the wait) around a 1-workgroup kernel bound like attention's;
//   run       the routed kernel variant's run() (the same path around the real kernel);
//   sdpa      the whole sdpa() call in a withBackends([FLASH]) scope (argument checks, selection);
//   plain     sdpa() without the scope (the routing picks the same kernel: checked);
//   select    the dispatch alone: argument checks, selection and the dispatch record around a
//             kernel that returns at once (no GPU work), median of many calls;
//   kernel    the attention pass alone from GPU timestamps (where the adapter has timestamp-query).
// `sdpa - kernel` is the per-call cost the issue bounds (≤ 0.3 ms at S = 1024); `sdpa - run` the
// selection; `noop - dispatch` the library's own work around a pass. B·H·S·D from --shapes.
// Usage: node scripts/probe-webgpu-call.mjs [--shapes 1x1x64x64,8x12x1024x64] [--reps 200] [--json FILE]
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { attention, cli, gpuF16, lastKernel, lib, params, programs, setUp, withEnv } from './lib/webgpu-bench.mjs';

const { opt, list } = cli();
const reps = Number(opt('--reps', '200'));
const shapes = list('--shapes', '1x1x64x64,8x12x1024x64').map((t) => t.split('x').map(Number));
const { ctx, gpu } = await setUp();
const { sdpa, withBackends, SDPBackend } = lib;
const { dispatchRun } = await import('../dist/src/sdpa.js');
const flash = (await import('../dist/backends/flash/webgpu.js')).flashWebgpu;

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
async function timeIt(fn, n = reps) {
  for (let i = 0; i < Math.min(5, n); i++) await fn();
  const t = [];
  for (let i = 0; i < n; i++) { const a = performance.now(); await fn(); t.push(performance.now() - a); }
  return +median(t).toFixed(4);
}

const device = ctx.device;
const rows = [];
const wait = await timeIt(async () => { device.queue.submit([]); await device.queue.onSubmittedWorkDone(); });
// A 1-workgroup pass with one storage binding: the floor of encoding and submitting a dispatch.
const module = device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> b: array<u32>; @compute @workgroup_size(1) fn main() { b[0] = b[0] + 1u; }' });
const pipe = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
const group = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
const dispatch = await timeIt(async () => {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
});
console.log('floor', JSON.stringify({ wait_ms: wait, dispatch_ms: dispatch }));

// The library's per-call path around a kernel that does nothing (bindings as attention's).
await programs.registerShaderSource('probe-noop.wgsl', `struct P { a: array<vec4<u32>, 5> }
@group(0) @binding(0) var<uniform> u: P;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read> k: array<u32>;
@group(0) @binding(3) var<storage, read> v: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(1) fn main() { if (u.a[0].x == 0xffffffffu) { o[0] = q[0] + k[0] + v[0]; } }`);
const noopProgram = { shader: 'probe-noop.wgsl', entryPoint: 'main', defines: {}, bindings: ['uniform', 'read', 'read', 'read', 'rw'] };

for (const [B, H, S, D] of shapes) {
  const inputs = { q: gpuF16(gpu, [B, H, S, D]), k: gpuF16(gpu, [B, H, S, D]), v: gpuF16(gpu, [B, H, S, D]) };
  const opts = { device: 'webgpu' };
  const call = () => withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(inputs.q.t, inputs.k.t, inputs.v.t, opts));
  (await call()).dispose();
  const kernelName = lastKernel();
  const kernel = flash.kernels.find((k) => k.name === kernelName);
  const p = params.buildParams('probe', inputs.q.t, inputs.k.t, inputs.v.t, opts);
  const rctx = { recordAllocation() {} };
  const n = S >= 2048 ? Math.max(20, Math.round(reps / 10)) : reps;
  const run = await timeIt(async () => (await kernel.run(p, rctx)).dispose(), n);
  const noop = await timeIt(async () => (await attention.runAttention('probe', p, rctx, async (cb, out) => [{ program: noopProgram, buffers: [cb.uniform(attention.paramsUniform(p)), inputs.q.buf, inputs.k.buf, inputs.v.buf, out], dispatch: [1, 1, 1] }], { writesCallDtype: true })).dispose(), n);
  const whole = await timeIt(async () => (await call()).dispose(), n);
  // Without the withBackends scope (an AsyncLocalStorage context in Node): the same kernel?
  (await sdpa(inputs.q.t, inputs.k.t, inputs.v.t, opts)).dispose();
  const plainKernel = lastKernel();
  const plain = plainKernel === kernelName ? await timeIt(async () => (await sdpa(inputs.q.t, inputs.k.t, inputs.v.t, opts)).dispose(), n) : undefined;
  const selectOnly = await timeIt(async () => dispatchRun(params.buildParams('sdpa', inputs.q.t, inputs.k.t, inputs.v.t, opts), async () => ({ dispose() {} })), 2000);
  let kernelMs;
  if (device.features.has('timestamp-query')) {
    await withEnv({ SDPA_WEBGPU_TIMESTAMPS: '1' }, async () => {
      const ks = [];
      for (let i = 0; i < Math.min(n, 30); i++) { (await call()).dispose(); ks.push(attention.lastPassTimes().reduce((a, x) => a + x.ms, 0)); }
      kernelMs = +median(ks).toFixed(4);
    });
  }
  const row = {
    shape: `${B}x${H}x${S}x${D}`, kernel: kernelName, wait_ms: wait, dispatch_ms: dispatch, noop_ms: noop, run_ms: run, sdpa_ms: whole, plain_ms: plain, select_ms: selectOnly, kernel_ms: kernelMs,
    selection_ms: +(whole - run).toFixed(4), library_ms: +(noop - dispatch).toFixed(4),
    over_kernel_ms: kernelMs === undefined ? undefined : +(whole - kernelMs).toFixed(4),
  };
  rows.push(row);
  console.log('call', JSON.stringify(row));
  for (const x of Object.values(inputs)) x.buf.destroy();
}
console.log(`\n| shape | kernel | wait | 1-pass dispatch | library, no-op kernel | kernel.run | sdpa() in scope | sdpa() plain | dispatch alone | kernel (timestamps) | sdpa − run | no-op − dispatch | sdpa − kernel |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`);
for (const r of rows) console.log(`| ${r.shape} | ${r.kernel} | ${r.wait_ms} | ${r.dispatch_ms} | ${r.noop_ms} | ${r.run_ms} | ${r.sdpa_ms} | ${r.plain_ms ?? '(other kernel)'} | ${r.select_ms} | ${r.kernel_ms ?? ''} | ${r.selection_ms} | ${r.library_ms} | ${r.over_kernel_ms ?? ''} |`);
const out = opt('--json');
if (out) writeFileSync(out, JSON.stringify({ adapter: ctx.adapterInfo, programsCompiled: programs.pipelineCompileCount(), rows }, null, 1));
process.exit(0);
