#!/usr/bin/env node
// A decode step through flashAttnWithKvcache on a paged cache against the same step on a contiguous
// cache (fp16, B=1, H=32, Hkv=8, D=128, S=1, L keys, 256-key pages in shuffled order), and the
// longest event-loop stall during the paged calls (a 4 ms timer): what reading pages costs.
// Uses the built dist/. Usage: node scripts/probes/paged-decode.mjs [--l 32768] [--runs 9]
const { flashAttnWithKvcache, tensor, capabilities, lastDispatch } = await import('../../dist/src/index.js');
const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const L = Number(opt('--l', '32768')), runs = Number(opt('--runs', '9'));
const B = 1, H = 32, HKV = 8, D = 128, PAGE = 256;
await capabilities();
let seed = 7;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
const pages = L / PAGE;
const mk = (shape) => tensor.fromFloat32(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rnd), shape, 'float16');
const q = mk([B, 1, H, D]);
const kc = mk([B, L, HKV, D]), vc = mk([B, L, HKV, D]);
const kp = mk([pages, PAGE, HKV, D]), vp = mk([pages, PAGE, HKV, D]);
const order = Int32Array.from({ length: pages }, (_, i) => i);
for (let i = pages - 1; i > 0; i--) { const j = Math.floor((rnd() + 0.5) * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
const blockTable = [order];
async function time(fn) {
  await fn();
  let last = performance.now(), stall = 0;
  const timer = setInterval(() => { const t = performance.now(); stall = Math.max(stall, t - last); last = t; }, 4);
  const ts = [];
  for (let i = 0; i < runs; i++) { const t0 = performance.now(); await fn(); ts.push(performance.now() - t0); }
  clearInterval(timer);
  ts.sort((a, b) => a - b);
  return { ms: ts[ts.length >> 1], best: ts[0], stall };
}
const contiguous = await time(() => flashAttnWithKvcache(q, kc, vc, { cacheSeqlens: L }));
const kernel = lastDispatch()?.ran?.kernel;
const paged = await time(() => flashAttnWithKvcache(q, kp, vp, { cacheSeqlens: L, blockTable }));
const gb = (2 * HKV * L * D * 2) / 1e9;
for (const [name, r] of [['contiguous', contiguous], ['paged (256-key pages)', paged]]) {
  console.log(`${name.padEnd(22)} L=${L} ${r.ms.toFixed(2)} ms median (best ${r.best.toFixed(2)}), ${(gb / r.ms * 1e3).toFixed(2)} GB/s of K/V, longest stall ${r.stall.toFixed(1)} ms`);
}
console.log(`kernel ${kernel}; paged / contiguous ${(paged.ms / contiguous.ms).toFixed(2)}×`);
