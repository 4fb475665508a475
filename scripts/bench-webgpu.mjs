#!/usr/bin/env node
// WebGPU benchmark and GPU correctness check for sdpa-dispatch (uses the built dist/).
// 1) correctness: FLASH (webgpu) f16 — tensor-core and portable paths — and EFFICIENT (webgpu)
//    against the CPU MATH reference on small shapes; 2) speed: B=8, H=12, D=64, fp16,
//    S = 512..16384, causal and not, inputs resident on the GPU, TF/s = 4·B·H·S·S·D / t (causal: half).
// Usage: node scripts/bench-webgpu.mjs [--quick] [--sizes 512,1024] [--json out.json]
import { performance } from 'node:perf_hooks';
const lib = await import('../dist/src/index.js');
const { flashWebgpu, flashPath } = await import('../dist/backends/flash/webgpu.js');
const { getWebGpuDevice, gpuContext } = await import('../dist/src/webgpu/device.js');
const { pipelineCompileCount } = await import('../dist/src/webgpu/programs.js');
const { tensor, sdpa, withBackends, SDPBackend, registerBackend, unregisterBackend, registeredBackends, capabilities } = lib;

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const quick = args.includes('--quick');
const sizes = (opt('--sizes', quick ? '512,1024' : '512,1024,2048,4096,8192,16384')).split(',').map(Number);
// FLASH's webgpu part joins whatever FLASH descriptor is registered (or stands alone).
await capabilities();
const flashDesc = registeredBackends().find((d) => d.name === 'FLASH_ATTENTION');
if (!flashDesc?.parts.some((p) => p.device === 'webgpu')) {
  if (flashDesc) unregisterBackend(SDPBackend.FLASH_ATTENTION);
  registerBackend({ name: SDPBackend.FLASH_ATTENTION, summary: flashDesc?.summary ?? 'flash', parts: [...(flashDesc?.parts ?? []), flashWebgpu] });
}
const caps = await capabilities();
const ctx = gpuContext();
if (!ctx) { console.log('no webgpu:', caps.backends.filter((b) => b.device === 'webgpu').map((b) => b.reason)); process.exit(1); }
console.log('adapter', JSON.stringify(ctx.adapterInfo), 'features', [...ctx.features].join(','));
console.log('subgroupMatrixConfigs', JSON.stringify(ctx.subgroupMatrixConfigs));
console.log('limits', JSON.stringify(ctx.limits));
console.log('flash path (D=64):', JSON.stringify(flashPath(ctx, { e: 64, ev: 64 })));

let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const randF32 = (n) => Float32Array.from({ length: n }, rnd);

// ---- correctness against the CPU MATH reference ----
const cases = [
  { name: 'f16 B2 H4 S128 L128 D64', b: 2, hq: 4, hkv: 4, s: 128, l: 128, d: 64, dt: 'float16' },
  { name: 'f16 causal S200 L200 D64', b: 1, hq: 2, hkv: 2, s: 200, l: 200, d: 64, dt: 'float16', causal: true },
  { name: 'f16 GQA 8:2 S96 L160 D128', b: 1, hq: 8, hkv: 2, s: 96, l: 160, d: 128, dt: 'float16', gqa: true },
  { name: 'f16 lower-right S64 L150 D64', b: 1, hq: 2, hkv: 2, s: 64, l: 150, d: 64, dt: 'float16', lr: true },
  { name: 'bf16 S128 D64 dropout0.2', b: 1, hq: 2, hkv: 2, s: 128, l: 128, d: 64, dt: 'bfloat16', dropoutP: 0.2 },
  { name: 'f16 S70 L33 D32 causal', b: 1, hq: 3, hkv: 3, s: 70, l: 33, d: 32, dt: 'float16', causal: true },
  // ragged non-causal (routed to portable now), aligned causal / lower-right forced through the tensor-core kernel
  { name: 'f16 S200 L77 D64', b: 2, hq: 2, hkv: 2, s: 200, l: 77, d: 64, dt: 'float16' },
  { name: 'f16 causal S256 L256 D64 aligned', b: 1, hq: 2, hkv: 2, s: 256, l: 256, d: 64, dt: 'float16', causal: true },
  { name: 'f16 lower-right S128 L192 D64 aligned', b: 1, hq: 2, hkv: 2, s: 128, l: 192, d: 64, dt: 'float16', lr: true },
  { name: 'f16 GQA causal 6:2 S192 L192 D128', b: 1, hq: 6, hkv: 2, s: 192, l: 192, d: 128, dt: 'float16', gqa: true, causal: true },
];
let allOk = true;
for (const c of cases) {
  const q = tensor.fromFloat32(randF32(c.b * c.hq * c.s * c.d), [c.b, c.hq, c.s, c.d], c.dt);
  const k = tensor.fromFloat32(randF32(c.b * c.hkv * c.l * c.d), [c.b, c.hkv, c.l, c.d], c.dt);
  const v = tensor.fromFloat32(randF32(c.b * c.hkv * c.l * c.d), [c.b, c.hkv, c.l, c.d], c.dt);
  const opts = { isCausal: !!c.causal, enableGqa: !!c.gqa, dropoutP: c.dropoutP ?? 0, seed: 7 };
  if (c.lr) opts.attnMask = lib.causalLowerRight(c.s, c.l);
  const ref = await (await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { ...opts, device: 'cpu' }))).toFloat32();
  for (const [backend, path] of [['FLASH_ATTENTION', 'auto'], ['FLASH_ATTENTION', 'noskip'], ['FLASH_ATTENTION', 'portable'], ['EFFICIENT_ATTENTION', '-']]) {
    // 'auto' and 'noskip' force the tensor-core kernel where it can run (also causal), to test it.
    process.env.SDPA_WEBGPU_FLASH_PATH = path === 'portable' ? 'portable' : 'subgroup-matrix';
    if (path === 'noskip') process.env.SDPA_WEBGPU_SGMAT_NOSKIP = '1'; else delete process.env.SDPA_WEBGPU_SGMAT_NOSKIP;
    let line;
    try {
      const out = await withBackends([backend], () => sdpa(q, k, v, { ...opts, device: 'webgpu' }));
      const got = await out.toFloat32();
      out.dispose();
      let maxd = 0;
      for (let i = 0; i < got.length; i++) maxd = Math.max(maxd, Math.abs(got[i] - ref[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
      const tol = c.dt === 'float16' ? 2e-3 + 2e-3 : 1.6e-2;
      const ok = maxd <= tol;
      allOk &&= ok;
      const used = backend === 'FLASH_ATTENTION' ? flashPath(ctx, { e: c.d, ev: c.d, s: c.s, l: c.l, causal: c.causal || c.lr ? {} : undefined }).kind + (path === 'noskip' ? '/noskip' : '') : 'tiled f32';
      line = `${ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(32)} ${backend.padEnd(20)} ${used.padEnd(16)} max|diff| ${maxd.toExponential(2)}`;
    } catch (err) {
      allOk = false;
      line = `ERR  ${c.name.padEnd(32)} ${backend} ${path}: ${String(err.message ?? err).split('\n').slice(0, 12).join(' | ')}`;
    }
    console.log(line);
  }
}
delete process.env.SDPA_WEBGPU_FLASH_PATH;
console.log('correctness', allOk ? 'PASS' : 'FAIL', 'sgmat compile failures:', JSON.stringify(flashWebgpu.describe().sgmatCompileFailures));

// ---- speed ----
const device = await getWebGpuDevice();
const B = 8, H = 12, D = 64;
function gpuF16(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = tensor.fromFloat32(randF32(n), shape, 'float16');
  const buf = device.createBuffer({ size: Math.ceil((n * 2) / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buf, 0, bits.data.buffer, 0, Math.floor((n * 2) / 4) * 4);
  return tensor.fromGPUBuffer(buf, shape, 'float16');
}
const rows = [];
for (const S of sizes) {
  const q = gpuF16([B, H, S, D]), k = gpuF16([B, H, S, D]), v = gpuF16([B, H, S, D]);
  for (const causal of [false, true]) {
    for (const [backend, path] of [['FLASH_ATTENTION', 'auto'], ['FLASH_ATTENTION', 'portable'], ['EFFICIENT_ATTENTION', '-']]) {
      if (backend === 'EFFICIENT_ATTENTION' && S > 4096) continue;
      if (path === 'portable' && S > 2048) continue;
      if (backend === 'EFFICIENT_ATTENTION' && S > 2048) continue;
      if (path === 'portable') process.env.SDPA_WEBGPU_FLASH_PATH = 'portable'; else delete process.env.SDPA_WEBGPU_FLASH_PATH;
      const call = () => withBackends([backend], () => sdpa(q, k, v, { isCausal: causal, device: 'webgpu' }));
      try {
        (await call()).dispose(); // warm-up: compiles the pipeline once
        const compiled = pipelineCompileCount();
        const times = [];
        const t0 = performance.now();
        while (times.length < 3 || (performance.now() - t0 < 1500 && times.length < 20)) {
          const a = performance.now();
          (await call()).dispose(); // sdpa awaits the submit's completion
          times.push(performance.now() - a);
        }
        times.sort((x, y) => x - y);
        const med = times[Math.floor(times.length / 2)] / 1000;
        const flops = 4 * B * H * S * S * D * (causal ? 0.5 : 1);
        const r = { backend, path: backend === 'FLASH_ATTENTION' ? (path === 'portable' ? 'portable' : flashPath(ctx, { e: D, ev: D }).kind) : 'tiled-f32', S, causal, ms: +(med * 1000).toFixed(3), tflops: +(flops / med / 1e12).toFixed(2), reps: times.length, recompiled: pipelineCompileCount() - compiled };
        rows.push(r);
        console.log(JSON.stringify(r));
      } catch (err) {
        console.log(JSON.stringify({ backend, path, S, causal, error: String(err.message ?? err).slice(0, 400) }));
      }
    }
  }
  for (const t of [q, k, v]) t.storage.buffer.destroy();
}
delete process.env.SDPA_WEBGPU_FLASH_PATH;
console.log('\n| backend | kernel | S | causal | ms | TF/s |\n| --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.backend} (webgpu) | ${r.path} | ${r.S} | ${r.causal} | ${r.ms} | ${r.tflops} |`);
const jsonOut = opt('--json');
if (jsonOut) (await import('node:fs')).writeFileSync(jsonOut, JSON.stringify({ adapter: ctx.adapterInfo, rows }, null, 1));
process.exit(0);
