#!/usr/bin/env node
// WebGPU benchmark for a GPU host (docs/performance-webgpu.md): FLASH (webgpu) kernels and
// EFFICIENT (webgpu), inputs resident on the GPU, each call awaited to completion.
//  1) correctness: small shapes (aligned and ragged, causal, lower-right, GQA, dropout, bf16, large
//     scores that move the row max) on every kernel path against the CPU MATH reference;
//  2) tile sweep (--variants): flash-sgmat-mw.wgsl tile shapes (each a bench-only kernel variant) and
//     ablations (`-aN`: timed only, their results are wrong on purpose), next to the routed default
//     and the first kernel (`old`), at --sweep-sizes and --sweep-d;
//  3) the table: B=8, H=12, D=64, fp16, S = 512..16384, causal and not.
// TF/s = 4·B·H·S·L·D / t (causal: half).
// Usage: node scripts/bench-webgpu.mjs [--quick] [--sizes 512,1024] [--variants 4x1x64d,2x2x64s-a1]
//        [--sweep-sizes 4096] [--sweep-d 64,128] [--no-check] [--json out.json]
import { performance } from 'node:perf_hooks';
const lib = await import('../dist/src/index.js');
const { flashWebgpu } = await import('../dist/backends/flash/webgpu.js');
const { parseSgmatTiles, sgmatMwKernel } = await import('../dist/backends/flash/webgpu-sgmat.js');
const { webgpuPart } = await import('../dist/src/webgpu/part.js');
const { getWebGpuDevice, gpuContext } = await import('../dist/src/webgpu/device.js');
const { pipelineCompileCount } = await import('../dist/src/webgpu/programs.js');
const { lastPassTimes } = await import('../dist/src/webgpu/attention.js');
// Kernel times from GPU timestamps (next to the whole call's time): the difference is the call's
// fixed cost (allocation, the f16 pack pass, submit and wait).
process.env.SDPA_WEBGPU_TIMESTAMPS ??= '1';
const { tensor, sdpa, withBackends, SDPBackend, registerBackend, unregisterBackend, registeredBackends, capabilities } = lib;

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const quick = args.includes('--quick');
const variants = (opt('--variants', '') || '').split(',').filter(Boolean);
for (const v of variants) if (!parseSgmatTiles(v)) throw new Error(`--variants: '${v}' is not NWxRTxBC[s|d][-tTH][-aABL]`);
const sweepSizes = opt('--sweep-sizes', '4096').split(',').map(Number);
const sweepD = opt('--sweep-d', '64').split(',').map(Number);
const sizes = opt('--sizes', quick ? '512,1024' : '512,1024,2048,4096,8192,16384').split(',').map(Number);
const check = !args.includes('--no-check');

// FLASH's webgpu part joins whatever FLASH descriptor is registered (or stands alone).
await capabilities();
const fd = registeredBackends().find((d) => d.name === SDPBackend.FLASH_ATTENTION);
if (!fd?.parts.some((p) => p.device === 'webgpu')) {
  if (fd) unregisterBackend(SDPBackend.FLASH_ATTENTION);
  registerBackend({ name: SDPBackend.FLASH_ATTENTION, summary: fd?.summary ?? 'flash', parts: [...(fd?.parts ?? []), flashWebgpu] });
}
const ctx = gpuContext();
if (!ctx) { console.error('no WebGPU device:', JSON.stringify(flashWebgpu.availability())); process.exit(1); }
console.log('adapter', JSON.stringify(ctx.adapterInfo), 'features', [...ctx.features].join(','));
console.log('subgroup matrices', JSON.stringify(ctx.subgroupMatrixConfigs), 'maxComputeWorkgroupStorageSize', ctx.limits.maxComputeWorkgroupStorageSize);

let seed = 7;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const randF32 = (n, amp = 1) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd() * amp; return a; };

// Tile shapes under test are bench-only kernel variants of a backend of their own (shipped
// kernels carry no tile switch): FLASH_TILES, one `t<i>` kernel per --variants entry.
if (variants.length) {
  registerBackend({
    name: 'FLASH_TILES',
    priority: -1,
    summary: 'bench-only: flash-sgmat-mw.wgsl with the tile shapes under test',
    parts: [webgpuPart({ ...flashWebgpu, kernels: variants.map((v, i) => sgmatMwKernel(flashWebgpu.label, () => parseSgmatTiles(v), `t${i}`)) })],
  });
}
/** The withBackends list that runs one kernel path of FLASH (webgpu), or EFFICIENT for '-'. */
function scopeOf(path) {
  if (path === '-') return [SDPBackend.EFFICIENT_ATTENTION];
  if (path === 'routed') return [SDPBackend.FLASH_ATTENTION];
  const pinned = { portable: 'tiled_f16', old: 'sgmat_1sg', mw: 'sgmat_mw' }[path];
  if (pinned) return [{ backend: SDPBackend.FLASH_ATTENTION, device: 'webgpu', kernel: pinned }];
  return [{ backend: 'FLASH_TILES', device: 'webgpu', kernel: `t${variants.indexOf(path)}` }];
}
/** The kernel a path runs for this shape (or why none can). */
async function kernelOf(path, d, s, l) {
  const z = (n) => tensor(new Uint16Array(n * d), [1, 1, n, d], 'float16');
  const c = await withBackends(scopeOf(path), () => lib.explainDispatch(z(s), z(l), z(l), { device: 'webgpu' }).candidates.find((x) => x.eligible));
  return c ? `${c.backend === 'FLASH_TILES' ? path : c.kernel}` : 'none eligible';
}

// ---- 1) correctness ----
const cases = [
  { name: 'aligned S256 L256 D64', b: 2, hq: 3, hkv: 3, s: 256, l: 256, d: 64 },
  { name: 'causal S256 D64', b: 1, hq: 2, hkv: 2, s: 256, l: 256, d: 64, causal: true },
  { name: 'lower-right S128 L192 D64', b: 1, hq: 2, hkv: 2, s: 128, l: 192, d: 64, lr: true },
  { name: 'lower-right S192 L128 D64 (empty rows)', b: 1, hq: 2, hkv: 2, s: 192, l: 128, d: 64, lr: true },
  { name: 'GQA 6:2 causal S192 D128', b: 1, hq: 6, hkv: 2, s: 192, l: 192, d: 128, gqa: true, causal: true },
  { name: 'aligned S128 L256 D128', b: 2, hq: 3, hkv: 3, s: 128, l: 256, d: 128 },
  { name: 'ragged S77 L93 D64', b: 2, hq: 2, hkv: 2, s: 77, l: 93, d: 64 },
  { name: 'ragged causal S100 L100 D128', b: 1, hq: 2, hkv: 1, s: 100, l: 100, d: 128, gqa: true, causal: true },
  { name: 'hot (|q| 16) S256 L512 D64', b: 1, hq: 2, hkv: 2, s: 256, l: 512, d: 64, qAmp: 16 },
  { name: 'hot causal S256 D128', b: 1, hq: 2, hkv: 2, s: 256, l: 256, d: 128, qAmp: 16, causal: true },
  { name: 'bf16 causal dropout 0.3 S256 D64', b: 1, hq: 2, hkv: 2, s: 256, l: 256, d: 64, dt: 'bfloat16', dropoutP: 0.3, causal: true },
  { name: 'D32 S64 L80', b: 1, hq: 2, hkv: 2, s: 64, l: 80, d: 32 },
];
const only = opt('--cases', '');
if (only) cases.splice(0, cases.length, ...cases.filter((c) => only.split(',').some((w) => c.name.includes(w))));
const checkPaths = ['routed', 'old', 'mw', ...variants.filter((v) => !/-a\d+/.test(v)), 'portable'];
const variantOk = new Map();
let allOk = true;
if (check) {
  for (const c of cases) {
    const dt = c.dt ?? 'float16';
    const q = tensor.fromFloat32(randF32(c.b * c.hq * c.s * c.d, c.qAmp ?? 1), [c.b, c.hq, c.s, c.d], dt);
    const k = tensor.fromFloat32(randF32(c.b * c.hkv * c.l * c.d), [c.b, c.hkv, c.l, c.d], dt);
    const v = tensor.fromFloat32(randF32(c.b * c.hkv * c.l * c.d), [c.b, c.hkv, c.l, c.d], dt);
    const opts = { isCausal: !!c.causal, enableGqa: !!c.gqa, dropoutP: c.dropoutP ?? 0, seed: 7 };
    if (c.lr) opts.attnMask = lib.causalLowerRight(c.s, c.l);
    const ref = await (await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { ...opts, device: 'cpu' }))).toFloat32();
    const tol = dt === 'float16' ? 4e-3 : 1.6e-2;
    for (const path of [...checkPaths, '-']) {
      const backend = path === '-' ? 'EFFICIENT_ATTENTION' : 'FLASH_ATTENTION';
      const kernel = path === '-' ? 'tiled_f32' : await kernelOf(path, c.d, c.s, c.l);
      // 'old' only where it runs (aligned): elsewhere it names the portable kernel, already checked.
      if (path === 'old' && kernel !== 'sgmat_1sg') continue;
      let line;
      try {
        const out = await withBackends(scopeOf(path), () => sdpa(q, k, v, { ...opts, device: 'webgpu' }));
        const got = await out.toFloat32();
        out.dispose();
        let maxd = 0, worst = 0, bad = 0;
        for (let i = 0; i < got.length; i++) {
          const dd = Math.abs(got[i] - ref[i]) || (Number.isNaN(got[i]) ? Infinity : 0);
          if (dd > tol) bad++;
          if (dd > maxd) { maxd = dd; worst = i; }
        }
        const ok = maxd <= tol;
        // Where it is worst ([b·h, row, col]) and how many elements are off: a pattern for bisecting.
        const where = ok ? '' : ` worst at [bh ${Math.floor(worst / (c.s * c.d))}, i ${Math.floor(worst / c.d) % c.s}, d ${worst % c.d}] got ${got[worst].toFixed(4)} ref ${ref[worst].toFixed(4)}; ${bad}/${got.length} off`;
        if (variants.includes(path)) variantOk.set(path, (variantOk.get(path) ?? true) && ok);
        else allOk &&= ok;
        line = `${ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(40)} ${path.padEnd(14)} ${kernel.slice(0, 44).padEnd(44)} max|diff| ${maxd.toExponential(2)}${where}`;
      } catch (err) {
        if (variants.includes(path)) variantOk.set(path, false); else allOk = false;
        line = `ERR  ${c.name.padEnd(40)} ${path}: ${String(err.message ?? err).split('\n').slice(0, 8).join(' | ').slice(0, 1500)}`;
      }
      console.log(line);
    }
  }
  console.log('variant correctness', JSON.stringify(Object.fromEntries(variantOk)));
  console.log('correctness (routed, old, portable, EFFICIENT):', allOk ? 'PASS' : 'FAIL', 'compile failures:', JSON.stringify(flashWebgpu.describe().sgmatCompileFailures));
}

// ---- timing ----
const device = await getWebGpuDevice();
function gpuF16(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = tensor.fromFloat32(randF32(n), shape, 'float16');
  const buf = device.createBuffer({ size: Math.ceil((n * 2) / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buf, 0, bits.data.buffer, bits.data.byteOffset, Math.ceil((n * 2) / 4) * 4);
  return { t: tensor.fromGPUBuffer(buf, shape, 'float16'), buf };
}
/** Warm-up (compiles once), then the median of 3..20 awaited calls within ~1.5 s. */
async function timeCall(call, flops) {
  (await call()).dispose();
  const compiled = pipelineCompileCount();
  const times = [];
  const kernel = [];
  const t0 = performance.now();
  while (times.length < 3 || (performance.now() - t0 < 1500 && times.length < 20)) {
    const a = performance.now();
    (await call()).dispose();
    times.push(performance.now() - a);
    // The attention pass: not the f16 pack or the bf16 conversion.
    const k = lastPassTimes().filter((x) => !/^(pack-half|bf16-to-f16)/.test(x.shader));
    if (k.length) kernel.push(k.reduce((acc, x) => acc + x.ms, 0));
  }
  times.sort((x, y) => x - y);
  kernel.sort((x, y) => x - y);
  const med = times[Math.floor(times.length / 2)] / 1000;
  const kmed = kernel.length ? kernel[Math.floor(kernel.length / 2)] / 1000 : undefined;
  return { ms: +(med * 1000).toFixed(3), best_ms: +times[0].toFixed(3), tflops: +(flops / med / 1e12).toFixed(2), ...(kmed ? { kernel_ms: +(kmed * 1000).toFixed(3), kernel_tflops: +(flops / kmed / 1e12).toFixed(2) } : {}), reps: times.length, recompiled: pipelineCompileCount() - compiled };
}
const B = 8, H = 12;

// ---- 2) tile sweep ----
const sweepRows = [];
if (variants.length) {
  for (const d of sweepD) {
    for (const S of sweepSizes) {
      const q = gpuF16([B, H, S, d]), k = gpuF16([B, H, S, d]), v = gpuF16([B, H, S, d]);
      for (const causal of [false, true]) {
        const flops = 4 * B * H * S * S * d * (causal ? 0.5 : 1);
        for (const path of ['routed', 'old', ...variants]) {
          const kernel = await kernelOf(path, d, S, S);
          // A variant that does not fit (workgroup memory) falls back to portable: nothing to time.
          if ((path === 'old' && kernel !== 'sgmat_1sg') || kernel === 'tiled_f16' || kernel === 'none eligible') { console.log('sweep skip', d, path, kernel); continue; }
          try {
            const r = await timeCall(() => withBackends(scopeOf(path), () => sdpa(q.t, k.t, v.t, { isCausal: causal, device: 'webgpu' })), flops);
            const row = { d, S, causal, path, kernel, ok: variantOk.get(path), ...r };
            sweepRows.push(row);
            console.log('sweep', JSON.stringify(row));
          } catch (err) {
            console.log('sweep', JSON.stringify({ d, S, causal, path, error: String(err.message ?? err).slice(0, 600) }));
          }
        }
      }
      for (const x of [q, k, v]) x.buf.destroy();
    }
  }
  console.log('\n| D | S | causal | path | kernel | correct | call ms | call TF/s | kernel ms | kernel TF/s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of sweepRows) console.log(`| ${r.d} | ${r.S} | ${r.causal} | ${r.path} | ${r.kernel} | ${r.ok ?? (/-a\d+/.test(r.path) ? 'ablation' : '')} | ${r.ms} | ${r.tflops} | ${r.kernel_ms ?? ''} | ${r.kernel_tflops ?? ''} |`);
}

// ---- 3) the table ----
const D = 64;
const rows = [];
for (const S of sizes) {
  const q = gpuF16([B, H, S, D]), k = gpuF16([B, H, S, D]), v = gpuF16([B, H, S, D]);
  for (const causal of [false, true]) {
    const flops = 4 * B * H * S * S * D * (causal ? 0.5 : 1);
    for (const [backend, path] of [['FLASH_ATTENTION', 'routed'], ['FLASH_ATTENTION', 'old'], ['FLASH_ATTENTION', 'portable'], ['EFFICIENT_ATTENTION', '-']]) {
      if ((path === 'portable' || backend === 'EFFICIENT_ATTENTION') && S > 2048) continue;
      if (path === 'old' && S > 4096) continue;
      const kernel = backend === 'EFFICIENT_ATTENTION' ? 'tiled_f32' : await kernelOf(path, D, S, S);
      try {
        const r = await timeCall(() => withBackends(backend === 'EFFICIENT_ATTENTION' ? scopeOf('-') : scopeOf(path), () => sdpa(q.t, k.t, v.t, { isCausal: causal, device: 'webgpu' })), flops);
        const row = { backend, path, kernel, S, causal, ...r };
        rows.push(row);
        console.log(JSON.stringify(row));
      } catch (err) {
        console.log(JSON.stringify({ backend, path, S, causal, error: String(err.message ?? err).slice(0, 400) }));
      }
    }
  }
  for (const x of [q, k, v]) x.buf.destroy();
}
console.log('\n| backend | path | kernel | S | causal | call ms | call TF/s | kernel ms | kernel TF/s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.backend} (webgpu) | ${r.path} | ${r.kernel} | ${r.S} | ${r.causal} | ${r.ms} | ${r.tflops} | ${r.kernel_ms ?? ''} | ${r.kernel_tflops ?? ''} |`);

// ---- 4) where a call's time goes: every pass's GPU time against the whole call, with the buffer
// pool (SDPA_WEBGPU_POOL_MB) off and on ----
const overhead = [];
for (const S of opt('--overhead-sizes', '1024,4096').split(',').filter(Boolean).map(Number)) {
  const q = gpuF16([B, H, S, D]), k = gpuF16([B, H, S, D]), v = gpuF16([B, H, S, D]);
  // Pool off and on with timestamps; then without timestamps (their read-back is part of the call).
  for (const [pool, stamps] of [['0', '1'], ['512', '1'], ['512', '0']]) {
    const saved = process.env.SDPA_WEBGPU_POOL_MB;
    const savedStamps = process.env.SDPA_WEBGPU_TIMESTAMPS;
    process.env.SDPA_WEBGPU_POOL_MB = pool;
    process.env.SDPA_WEBGPU_TIMESTAMPS = stamps;
    const calls = [];
    for (let i = 0; i < 8; i++) {
      const a = performance.now();
      const out = await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q.t, k.t, v.t, { device: 'webgpu' }));
      calls.push({ ms: performance.now() - a, passes: lastPassTimes().map((x) => [x.shader, +x.ms.toFixed(3)]) });
      out.dispose();
    }
    saved === undefined ? delete process.env.SDPA_WEBGPU_POOL_MB : (process.env.SDPA_WEBGPU_POOL_MB = saved);
    savedStamps === undefined ? delete process.env.SDPA_WEBGPU_TIMESTAMPS : (process.env.SDPA_WEBGPU_TIMESTAMPS = savedStamps);
    const last = calls.slice(2).sort((x, y) => x.ms - y.ms);
    const med = last[Math.floor(last.length / 2)];
    const row = stamps === '1'
      ? { S, pool_mb: Number(pool), timestamps: true, call_ms: +med.ms.toFixed(3), passes: med.passes, other_ms: +(med.ms - med.passes.reduce((a, p) => a + p[1], 0)).toFixed(3) }
      : { S, pool_mb: Number(pool), timestamps: false, call_ms: +med.ms.toFixed(3) };
    overhead.push(row);
    console.log('overhead', JSON.stringify(row));
  }
  for (const x of [q, k, v]) x.buf.destroy();
}
const jsonOut = opt('--json');
if (jsonOut) (await import('node:fs')).writeFileSync(jsonOut, JSON.stringify({ adapter: ctx.adapterInfo, variantOk: Object.fromEntries(variantOk), allOk, sweepRows, rows, overhead }, null, 1));
process.exit(0);
