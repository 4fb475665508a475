#!/usr/bin/env node
// Decode kernels A/B through the public API: the same decode call (B=1, Hq=32, Hkv=8, S=1, D=128,
// enableGqa) pinned to each named FLASH (cpu) kernel by withBackends, interleaved round by round (8
// rounds of 20 awaited calls, K/V copies cycled past the caches); prints each kernel's round medians
// so a pairwise comparison survives this machine's load swings.
// Usage: node scripts/probes/decode-kernel-ab.mjs [L=8192] [dtype=bfloat16] [kernels=decode_avx512_bf16,decode_avx512]
//        (after npm run build and the native addon build)
const api = await import(new URL('../../dist/src/index.js', import.meta.url).href);
const { withBackends, SDPBackend, sdpa, tensor } = api;
const L = Number(process.argv[2] ?? 8192), dt = process.argv[3] ?? 'bfloat16', kernels = (process.argv[4] ?? 'decode_avx512_bf16,decode_avx512').split(',');
const HQ = 32, HKV = 8, D = 128;
const fill = (n, seed) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37 + seed); return a; };
const median = (xs) => { const s = [...xs].sort((x, y) => x - y); return s[s.length >> 1]; };
const copies = Math.max(1, Math.ceil(256 * 2 ** 20 / (2 * HKV * L * D * (dt === 'float32' ? 4 : 2))));
const q = tensor.fromFloat32(fill(HQ * D, 1), [1, HQ, 1, D], dt);
const ks = [], vs = [];
for (let c = 0; c < copies; c++) { ks.push(tensor.fromFloat32(fill(HKV * L * D, 2 + c), [1, HKV, L, D], dt)); vs.push(tensor.fromFloat32(fill(HKV * L * D, 3 + c), [1, HKV, L, D], dt)); }
await sdpa(q, ks[0], vs[0], { enableGqa: true });
const res = Object.fromEntries(kernels.map((k) => [k, []]));
let i = 0;
for (let round = 0; round < 8; round++) for (const k of kernels) {
  const t = [];
  for (let n = 0; n < 20; n++, i++) { const t0 = performance.now(); await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, kernel: k }], () => sdpa(q, ks[i % copies], vs[i % copies], { enableGqa: true })); t.push(performance.now() - t0); }
  res[k].push(median(t));
}
const bytes = 2 * HKV * L * D * (dt === 'float32' ? 4 : 2);
for (const k of kernels) console.log(`${dt} L=${L} ${k}: median of round medians ${median(res[k]).toFixed(3)} ms = ${(bytes / median(res[k]) / 1e6).toFixed(2)} GB/s (rounds ${res[k].map((x) => x.toFixed(2)).join(' ')})`);
