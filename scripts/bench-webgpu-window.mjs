#!/usr/bin/env node
// Sliding windows on WebGPU (docs/performance-webgpu.md): what the lower and upper diagonals save.
// For each kernel (the routed FLASH kernel, each FLASH kernel pinned, EFFICIENT routed), the same
// call causal without a window and causal with windows of W keys: kernel time (GPU timestamps) and
// whole-call time, and the ratio to the unwindowed call. A kernel that skips the key blocks below a
// row block's lower edge does about (W + block) / (S / 2) of the causal work, so its ratio falls with
// W; one that only masked them would stay near 1. Decode: S = 1 over a long cache with a window
// against the whole cache (the decode kernel splits only the window's keys into its chunks).
// Every timed configuration is first checked against the CPU MATH reference on a small copy of its
// shape (same kernel, same window proportions).
// Usage: node scripts/bench-webgpu-window.mjs [--small] [--s 4096] [--windows 256,1024] [--l 32768] [--no-check]
import { attentionFlops, cli, compare, gpuTensorOf, lastKernel, lib, randF32, setUp, timeCall, warm } from './lib/webgpu-bench.mjs';

process.env.SDPA_WEBGPU_TIMESTAMPS ??= '1';
const { sdpa, withBackends, SDPBackend, tensor, StructuredBias } = lib;
const { opt, flag, list } = cli();
const small = flag('--small');
const S = Number(opt('--s', small ? '512' : '4096'));
const windows = list('--windows', small ? '32,128' : '256,1024').map(Number);
const Ldec = Number(opt('--l', small ? '4096' : '32768'));
const { gpu } = await setUp();

const gpuTensor = (shape, dtype) => gpuTensorOf(gpu, shape, dtype).t;

const opts = (s, l, w) => (w === undefined ? { isCausal: true } : { attnMask: new StructuredBias(s, l, { causal: true, window: [w, 0] }) });

/** Checks kernel `scope` on a small copy of the shape against MATH (cpu); throws on a mismatch. */
async function check(scope, b, hq, hkv, s, l, d, dtype, w) {
  const q = tensor.fromFloat32(randF32(b * hq * s * d), [b, hq, s, d], dtype);
  const k = tensor.fromFloat32(randF32(b * hkv * l * d), [b, hkv, l, d], dtype);
  const v = tensor.fromFloat32(randF32(b * hkv * l * d), [b, hkv, l, d], dtype);
  const o = { ...opts(s, l, w), enableGqa: hq !== hkv };
  const ref = await (await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { ...o, device: 'cpu' }))).toFloat32();
  const out = await withBackends(scope, () => sdpa(q, k, v, { ...o, device: 'webgpu' }));
  const r = compare(await out.toFloat32(), ref, dtype === 'float32' ? 5e-4 : 4e-3, { s, d });
  if (!r.ok) throw new Error(`${lastKernel()} window ${w}: max|diff| ${r.maxd}${r.where}`);
  return `${lastKernel()} ok (max|diff| ${r.maxd.toExponential(1)})`;
}

const F = SDPBackend.FLASH_ATTENTION, EF = SDPBackend.EFFICIENT_ATTENTION;
const prefillKernels = [
  ['FLASH routed', [F], 'float16'],
  ...['sgmat_st', 'sgmat_mw', 'tiled_portable_f16'].map((k) => [k, [{ backend: F, device: 'webgpu', kernel: k }], 'float16']),
  ['EFFICIENT routed', [EF], 'float32'],
];
const B = small ? 1 : 8, H = small ? 2 : 12, D = 64;
console.log(`\n## Prefill, B=${B} H=${H} D=${D} S=L=${S}, causal; windows [W, 0] lower-right`);
console.log('kernel | W | ran | kernel ms | call ms | kernel / causal | (W + 64) / (S / 2)');
for (const [label, scope, dtype] of prefillKernels) {
  const q = gpuTensor([B, H, S, D], dtype), k = gpuTensor([B, H, S, D], dtype), v = gpuTensor([B, H, S, D], dtype);
  let base;
  for (const w of [undefined, ...windows]) {
    try {
      const note = flag('--no-check') ? '' : await check(scope, 1, 2, 2, 300, 300, D, dtype, w === undefined ? undefined : Math.max(1, Math.round((w * 300) / S)));
      const call = () => withBackends(scope, () => sdpa(q, k, v, { ...opts(S, S, w), device: 'webgpu' }));
      await warm(call);
      const r = await timeCall(call, attentionFlops(B, H, S, S, D, true));
      const t = r.kernel_ms ?? r.ms;
      if (w === undefined) base = t;
      const ideal = w === undefined ? 1 : Math.min(1, (w + 64) / (S / 2));
      console.log(`${label} | ${w ?? 'none'} | ${lastKernel()} | ${t.toFixed(3)} | ${r.ms.toFixed(3)} | ${(t / base).toFixed(3)} | ${ideal.toFixed(3)} ${note ? `| check: ${note}` : ''}`);
    } catch (e) {
      console.log(`${label} | ${w ?? 'none'} | not run: ${String(e.message ?? e).split('\n')[0].slice(0, 240)}`);
    }
  }
}

console.log(`\n## Decode, B=1 H=32 Hkv=8 D=128 S=1 L=${Ldec} fp16; windows [W, 0]`);
console.log('kernel | W | ran | kernel ms | call ms | K/V TB/s of the window, kernel');
{
  const q = gpuTensor([1, 32, 1, 128], 'float16'), k = gpuTensor([1, 8, Ldec, 128], 'float16'), v = gpuTensor([1, 8, Ldec, 128], 'float16');
  for (const w of [undefined, ...windows.map((x) => x * 4)]) {
    try {
      const note = flag('--no-check') ? '' : await check([F], 1, 32, 8, 1, Math.min(Ldec, 3000), 128, 'float16', w === undefined ? undefined : Math.round((w * Math.min(Ldec, 3000)) / Ldec));
      const o = w === undefined ? { enableGqa: true } : { enableGqa: true, attnMask: new StructuredBias(1, Ldec, { window: [w, 0] }) };
      const call = () => withBackends([F], () => sdpa(q, k, v, { ...o, device: 'webgpu' }));
      await warm(call);
      const r = await timeCall(call, 1);
      const t = r.kernel_ms ?? r.ms;
      const keys = w === undefined ? Ldec : Math.min(Ldec, w + 1);
      console.log(`FLASH routed | ${w ?? 'none'} | ${lastKernel()} | ${t.toFixed(3)} | ${r.ms.toFixed(3)} | ${((2 * 8 * keys * 128 * 2) / t / 1e9).toFixed(2)} ${note ? `| check: ${note}` : ''}`);
    } catch (e) {
      console.log(`decode | ${w ?? 'none'} | not run: ${String(e.message ?? e).split('\n')[0].slice(0, 240)}`);
    }
  }
}
