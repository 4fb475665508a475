// What the WebGPU benchmarks share (scripts/bench-webgpu.mjs, scripts/bench-webgpu-tc.mjs): the
// FLASH (webgpu) part registered, the correctness cases and their check against the CPU MATH
// reference, inputs resident on the GPU, and timing (median of awaited calls, kernel time from
// GPU timestamps).
import { performance } from 'node:perf_hooks';

export const lib = await import('../../dist/src/index.js');
export const flash = await import('../../dist/backends/flash/webgpu.js');
export const sgmat = await import('../../dist/backends/flash/webgpu-sgmat.js');
export const device = await import('../../dist/src/webgpu/device.js');
export const programs = await import('../../dist/src/webgpu/programs.js');
export const attention = await import('../../dist/src/webgpu/attention.js');
export const params = await import('../../dist/src/params.js');

const { tensor, sdpa, withBackends, SDPBackend, registerBackend, unregisterBackend, registeredBackends, capabilities } = lib;

/** Command-line options: `opt('--sizes', '1024')`, `flag('--quick')`. */
export function cli(argv = process.argv.slice(2)) {
  return {
    opt: (n, d) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : d; },
    flag: (n) => argv.includes(n),
    list: (n, d) => { const i = argv.indexOf(n); return (i >= 0 ? argv[i + 1] : d).split(',').filter(Boolean); },
  };
}

/** Probes the adapter and makes FLASH's webgpu part join the registered FLASH descriptor. */
export async function setUp() {
  await capabilities();
  const fd = registeredBackends().find((d) => d.name === SDPBackend.FLASH_ATTENTION);
  if (!fd?.parts.some((p) => p.device === 'webgpu')) {
    if (fd) unregisterBackend(SDPBackend.FLASH_ATTENTION);
    registerBackend({ name: SDPBackend.FLASH_ATTENTION, summary: fd?.summary ?? 'flash', parts: [...(fd?.parts ?? []), flash.flashWebgpu] });
  }
  const ctx = device.gpuContext();
  if (!ctx) {
    console.error('no WebGPU device:', JSON.stringify(flash.flashWebgpu.availability()));
    process.exit(1);
  }
  console.log('adapter', JSON.stringify(ctx.adapterInfo), 'features', [...ctx.features].join(','));
  console.log('subgroup matrices', JSON.stringify(ctx.subgroupMatrixConfigs), 'maxComputeWorkgroupStorageSize', ctx.limits.maxComputeWorkgroupStorageSize);
  return { ctx, gpu: await lib.getWebGpuDevice() };
}

let seed = 7;
/** Uniform in [-1, 1), reproducible. */
export const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
export const randF32 = (n, amp = 1) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd() * amp; return a; };

/**
 * The correctness cases of the WebGPU benchmarks: aligned and ragged S/L, causal, lower-right with
 * and without empty rows, GQA, large scores that move the row max, bf16 with dropout, D 32..256.
 */
export const cases = [
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
  { name: 'D96 ragged S150 L130', b: 1, hq: 2, hkv: 2, s: 150, l: 130, d: 96 },
  { name: 'D256 causal S160', b: 1, hq: 2, hkv: 2, s: 160, l: 160, d: 256, causal: true },
  // Sliding windows (a lower and an upper diagonal; key blocks below the first row's edge skipped).
  { name: 'window [64,0] causal S320 D64', b: 1, hq: 2, hkv: 2, s: 320, l: 320, d: 64, causal: true, win: [64, 0] },
  { name: 'window [40,8] S200 L301 D128 GQA 4:2', b: 1, hq: 4, hkv: 2, s: 200, l: 301, d: 128, gqa: true, win: [40, 8] },
];

/** Inputs, options and the CPU MATH reference of a case. */
export async function caseData(c) {
  const dt = c.dt ?? 'float16';
  const q = tensor.fromFloat32(randF32(c.b * c.hq * c.s * c.d, c.qAmp ?? 1), [c.b, c.hq, c.s, c.d], dt);
  const k = tensor.fromFloat32(randF32(c.b * c.hkv * c.l * c.d), [c.b, c.hkv, c.l, c.d], dt);
  const v = tensor.fromFloat32(randF32(c.b * c.hkv * c.l * c.d), [c.b, c.hkv, c.l, c.d], dt);
  const opts = { isCausal: !!c.causal && !c.win, enableGqa: !!c.gqa, dropoutP: c.dropoutP ?? 0, seed: 7 };
  if (c.lr) opts.attnMask = lib.causalLowerRight(c.s, c.l);
  // A window (lower-right), causal inside the bias when the case is causal.
  if (c.win) opts.attnMask = new lib.StructuredBias(c.s, c.l, { causal: !!c.causal, window: c.win });
  const ref = await (await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { ...opts, device: 'cpu' }))).toFloat32();
  return { q, k, v, opts, ref, tol: dt === 'float16' ? 4e-3 : 1.6e-2 };
}

/** Largest |got - ref| (NaN counts as infinite), where, and how many elements exceed `tol`. */
export function compare(got, ref, tol, c) {
  let maxd = 0, worst = 0, bad = 0;
  for (let i = 0; i < got.length; i++) {
    const dd = Math.abs(got[i] - ref[i]) || (Number.isNaN(got[i]) ? Infinity : 0);
    if (dd > tol) bad++;
    if (dd > maxd) { maxd = dd; worst = i; }
  }
  const ok = maxd <= tol;
  const where = ok ? '' : ` worst at [bh ${Math.floor(worst / (c.s * c.d))}, i ${Math.floor(worst / c.d) % c.s}, d ${worst % c.d}] got ${got[worst]?.toFixed(4)} ref ${ref[worst].toFixed(4)}; ${bad}/${got.length} off`;
  return { ok, maxd, where };
}

/** An f16 tensor resident on the GPU (random data), and its buffer to destroy. */
export function gpuF16(gpu, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = tensor.fromFloat32(randF32(n), shape, 'float16');
  const bytes = Math.ceil((n * 2) / 4) * 4;
  const buf = gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  gpu.queue.writeBuffer(buf, 0, bits.data.buffer, bits.data.byteOffset, bytes);
  return { t: tensor.fromGPUBuffer(buf, shape, 'float16'), buf };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/**
 * Times `call` (an async function returning a tensor): one warm-up call (compiles), then awaited
 * calls until `minReps` and ~`budgetMs`. `ms` is the median whole call, `kernel_ms` the median of
 * the attention pass from GPU timestamps (when SDPA_WEBGPU_TIMESTAMPS=1): not the bf16 conversion
 * or the f16 pack pass, which `passes_ms` adds back.
 */
export async function timeCall(call, flops, { minReps = 3, maxReps = 20, budgetMs = 1500 } = {}) {
  (await call()).dispose();
  const compiled = programs.pipelineCompileCount();
  const times = [], kernel = [], passes = [];
  const t0 = performance.now();
  while (times.length < minReps || (performance.now() - t0 < budgetMs && times.length < maxReps)) {
    const a = performance.now();
    (await call()).dispose();
    times.push(performance.now() - a);
    const all = attention.lastPassTimes();
    const k = all.filter((x) => !/^(pack-half|bf16-to-f16)/.test(x.shader));
    if (k.length) kernel.push(k.reduce((acc, x) => acc + x.ms, 0));
    if (all.length) passes.push(all.reduce((acc, x) => acc + x.ms, 0));
  }
  const med = median(times);
  const out = { ms: +med.toFixed(3), best_ms: +Math.min(...times).toFixed(3), tflops: +(flops / med / 1e9).toFixed(2), reps: times.length, recompiled: programs.pipelineCompileCount() - compiled };
  if (kernel.length) Object.assign(out, { kernel_ms: +median(kernel).toFixed(3), kernel_tflops: +(flops / median(kernel) / 1e9).toFixed(2), passes_ms: +median(passes).toFixed(3) });
  return out;
}

/** FLOPs of one attention call: 4·B·H·S·L·D, half when causal. */
export const attentionFlops = (b, h, s, l, d, causal) => 4 * b * h * s * l * d * (causal ? 0.5 : 1);

/** Why kernel variant `k` cannot run `p` (its availability, then its constraints), or undefined. */
export function kernelReason(k, p) {
  const a = k.availability?.();
  if (a && !a.available) return a.reason;
  for (const c of k.constraints ?? []) {
    const r = c(p, 'webgpu');
    if (r) return r;
  }
  return undefined;
}

/** The FLASH (webgpu) kernel the last call ran (lastDispatch()). */
export function lastKernel() {
  return lib.lastDispatch()?.ran?.kernel ?? '?';
}

/** Runs `fn` with environment variables set, restoring them afterwards. */
export async function withEnv(vars, fn) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

/**
 * Milliseconds per dispatch of `encode` (which records one dispatch into an encoder): `reps`
 * dispatches in one submission, best of 3 batches after a first that warms the clocks (wall time;
 * back to back, the GPU kept busy). The probes time their direct dispatches with it.
 */
export async function timeEncoded(gpu, encode, reps) {
  let best = Infinity;
  for (let b = 0; b < 4; b++) {
    const t0 = performance.now();
    const enc = gpu.createCommandEncoder();
    for (let r = 0; r < reps; r++) encode(enc);
    gpu.queue.submit([enc.finish()]);
    await gpu.queue.onSubmittedWorkDone();
    const ms = (performance.now() - t0) / reps;
    if (b > 0) best = Math.min(best, ms);
  }
  return +best.toFixed(4);
}

/** The first `bytes` of GPU buffer `buf` as f32 values: f32 as stored, or halves of `dtype` decoded. */
export async function readBackF32(gpu, buf, bytes, dtype) {
  const rb = gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = gpu.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, rb, 0, bytes);
  gpu.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const raw = rb.getMappedRange().slice(0);
  rb.unmap();
  rb.destroy();
  if (dtype === 'float32') return new Float32Array(raw);
  return lib.tensor(new Uint16Array(raw), [raw.byteLength / 2], dtype).toFloat32();
}

/**
 * A GPU-resident tensor of random data in `dtype` (values in [-amp, amp)) and its buffer (storage,
 * copy source and destination, plus `usage`).
 */
export function gpuTensorOf(gpu, shape, dtype, { amp = 1, usage = 0 } = {}) {
  const n = shape.reduce((a, b) => a * b, 1);
  const t = tensor.fromFloat32(randF32(n, amp), shape, dtype);
  const bytes = Math.ceil(t.data.byteLength / 4) * 4;
  const buf = gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | usage });
  gpu.queue.writeBuffer(buf, 0, t.data.buffer, t.data.byteOffset, bytes);
  return { t: tensor.fromGPUBuffer(buf, shape, dtype), buf };
}

/**
 * Keeps the GPU busy with `call` for `ms` before a timing: an H200 left idle while the CPU builds
 * inputs or references drops to ~345 MHz, and the first row timed after that paid the clock ramp.
 */
export async function warm(call, ms = 600) {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) (await call()).dispose();
}
