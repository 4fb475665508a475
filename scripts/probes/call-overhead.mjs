#!/usr/bin/env node
// What one sdpa() call costs outside the native kernel on the CPU: the median wall time of an
// awaited sdpa() call against the median of the addon's own flashAttention call on the same
// arguments (kernel chosen by dispatch), for a decode shape (default B=1, Hq=32, Hkv=8, S=1, L=16,
// D=128 fp32, enableGqa). Rounds alternate between the two so load drifts hit both alike.
// --roots a,b compares builds of the package (each a directory with dist/ and build/), interleaved
// round by round in this one process: e.g. a checkout before and after a change.
// Usage: flock /tmp/sdpa-bench.lock node scripts/probes/call-overhead.mjs [--roots DIR,DIR] [--l 16]
//        [--s 1] [--hq 32] [--hkv 8] [--d 128] [--calls 2000] [--rounds 5]   (after npm run build)
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const roots = opt('--roots', here).split(',').map((r) => path.resolve(r));
const L = Number(opt('--l', '16')), S = Number(opt('--s', '1')), HQ = Number(opt('--hq', '32')), HKV = Number(opt('--hkv', '8')), D = Number(opt('--d', '128'));
const calls = Number(opt('--calls', '2000')), rounds = Number(opt('--rounds', '5'));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const fill = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));

const builds = [];
for (const root of roots) {
  const api = await import(pathToFileURL(path.join(root, 'dist/src/index.js')).href);
  const { buildParams } = await import(pathToFileURL(path.join(root, 'dist/src/params.js')).href);
  const { buildNativeArgs } = await import(pathToFileURL(path.join(root, 'dist/backends/flash/cpu.js')).href);
  const { loadNative } = await import(pathToFileURL(path.join(root, 'dist/backends/flash/native.js')).href);
  const q = api.tensor(fill(HQ * S * D, 1), [1, HQ, S, D]);
  const k = api.tensor(fill(HKV * L * D, 2), [1, HKV, L, D]);
  const v = api.tensor(fill(HKV * L * D, 3), [1, HKV, L, D]);
  const opts = { enableGqa: true };
  await api.sdpa(q, k, v, opts); // probes engines, loads the addon
  const rec = api.lastDispatch();
  const native = loadNative();
  if (!native.ok) throw new Error(`${root}: ${native.error}`);
  const p = buildParams('sdpa', q, k, v, opts);
  const out = new Float32Array(HQ * S * D);
  const nargs = { ...buildNativeArgs(p, out), kernel: rec.kernel };
  // The addon's call on the JS thread (builds that have flashAttentionRun): the kernel's own cost.
  const inline = typeof native.native.flashAttentionRun === 'function' ? () => native.native.flashAttentionRun(nargs, true) : undefined;
  builds.push({ root, api, q, k, v, opts, kernel: `${rec.backend} (${rec.device}) ${rec.kernel}`, nativeCall: () => native.native.flashAttention(nargs), inline, sdpaTimes: [], nativeTimes: [], inlineTimes: [] });
}

async function time(fn, n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return ((performance.now() - t0) / n) * 1000; // µs per call
}

for (const b of builds) { await time(() => b.api.sdpa(b.q, b.k, b.v, b.opts), 200); await time(b.nativeCall, 200); } // warm-up
for (let r = 0; r < rounds; r++) {
  for (const b of builds) {
    b.sdpaTimes.push(await time(() => b.api.sdpa(b.q, b.k, b.v, b.opts), calls));
    b.nativeTimes.push(await time(b.nativeCall, calls));
    if (b.inline) b.inlineTimes.push(await time(b.inline, calls));
  }
}
// Each round's figure is the mean of its `calls` awaited calls; printed: the median round.
console.log(`shape B=1 Hq=${HQ} Hkv=${HKV} S=${S} L=${L} D=${D} fp32 enableGqa; ${calls} awaited calls per round, ${rounds} rounds interleaved; node ${process.version}`);
for (const b of builds) {
  const sd = median(b.sdpaTimes), na = median(b.nativeTimes);
  console.log(`${b.root}: ran ${b.kernel}`);
  console.log(`  sdpa() median ${sd.toFixed(1)} µs/call (rounds ${b.sdpaTimes.map((x) => x.toFixed(0)).join(' ')}); addon flashAttention() alone ${na.toFixed(1)} µs/call (rounds ${b.nativeTimes.map((x) => x.toFixed(0)).join(' ')}); sdpa() − addon ${(sd - na).toFixed(1)} µs`);
  if (b.inline) console.log(`  addon flashAttentionRun(args, true) on the JS thread ${median(b.inlineTimes).toFixed(1)} µs/call (rounds ${b.inlineTimes.map((x) => x.toFixed(0)).join(' ')}); sdpa() − that ${(sd - median(b.inlineTimes)).toFixed(1)} µs`);
}
