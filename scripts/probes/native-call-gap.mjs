#!/usr/bin/env node
// Where a prefill call through Node loses time against the C++ bench_flash figure: one process,
// rounds interleaved, median per variant, fp32/bf16/f16 B=1 H=8 S=L D=64 (default S=2048, 2 threads):
//   sdpa()          the public call (dispatch, its output array, the addon queued off the loop)
//   addon fresh     the addon's flashAttention on prebuilt arguments, a fresh output array per call
//   addon reused    the same, one output array reused (no fresh pages to fault in)
//   touch only      allocating the fresh output array and writing one element per 4 KiB page
//   bench_flash     the C++ benchmark on the same shape, kernel and threads (no Node; best of its runs)
// Usage: node scripts/probes/native-call-gap.mjs [--dtypes f32,bf16] [--s 2048] [--threads 2]
//        [--rounds 6] [--calls 5]   (after npm run build and make -C csrc all)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const S = Number(opt('--s', '2048')), threads = Number(opt('--threads', '2'));
const rounds = Number(opt('--rounds', '6')), calls = Number(opt('--calls', '5'));
const dtypes = opt('--dtypes', 'f32,bf16').split(',');
process.env.SDPA_NUM_THREADS = String(threads);
const root = fileURLToPath(new URL('../..', import.meta.url));
const api = await import(`${root}dist/src/index.js`);
const { buildParams } = await import(`${root}dist/src/params.js`);
const { buildNativeArgs } = await import(`${root}dist/backends/flash/cpu.js`);
const { loadNative } = await import(`${root}dist/backends/flash/native.js`);
const native = loadNative();
if (!native.ok) throw new Error(native.error);
const nat = native.native;
const DT = { f32: 'float32', bf16: 'bfloat16', f16: 'float16' };
const H = 8, D = 64;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
let seed = 7;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const src = Float32Array.from({ length: H * S * D }, rnd);
console.log(`# node ${process.version}, B=1 H=${H} S=L=${S} D=${D}, ${threads} threads, ${rounds} rounds × ${calls} calls`);
for (const dt of dtypes) {
  const q = api.tensor.fromFloat32(src, [1, H, S, D], DT[dt]);
  const k = api.tensor.fromFloat32(src.map((x) => x * 0.5), [1, H, S, D], DT[dt]);
  const v = api.tensor.fromFloat32(src.map((x) => -x), [1, H, S, D], DT[dt]);
  const opts = { device: 'cpu' };
  await api.withBackends([api.SDPBackend.FLASH_ATTENTION], () => api.sdpa(q, k, v, opts));
  const kernel = api.lastDispatch().kernel;
  const p = buildParams('sdpa', q, k, v, opts);
  const n = H * S * D;
  const mkOut = () => (dt === 'f32' ? new Float32Array(n) : new Uint16Array(n));
  const reused = { ...buildNativeArgs(p, mkOut()), kernel };
  const variants = {
    'sdpa()': () => api.withBackends([api.SDPBackend.FLASH_ATTENTION], () => api.sdpa(q, k, v, opts)),
    'addon fresh': () => nat.flashAttention({ ...reused, out: mkOut() }),
    'addon reused': () => nat.flashAttention(reused),
    'touch only': async () => { const o = mkOut(); for (let i = 0; i < o.length; i += 4096 / o.BYTES_PER_ELEMENT) o[i] = 1; },
  };
  const times = Object.fromEntries(Object.keys(variants).map((x) => [x, []]));
  for (const fn of Object.values(variants)) await fn(); // warm-up (libuv threads, scratch)
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(variants)) {
      for (let c = 0; c < calls; c++) { const t0 = performance.now(); await fn(); times[name].push(performance.now() - t0); }
    }
  }
  let cpp = '';
  const bench = `${root}build/csrc/bench_flash`;
  if (existsSync(bench)) {
    try {
      const line = execFileSync(bench, ['--dtype', dt, '--d', String(D), '--s', String(S), '--causal', '0', '--threads', String(threads), '--kernel', kernel], { encoding: 'utf8' }).trim().split('\n').pop();
      cpp = line.trim().split(/\s+/)[5];
    } catch (e) { cpp = `(bench_flash failed: ${String(e.message).split('\n')[0]})`; }
  }
  console.log(`${dt} kernel ${kernel}, output ${(n * (dt === 'f32' ? 4 : 2) / 2 ** 20).toFixed(1)} MiB`);
  for (const [name, ts] of Object.entries(times)) console.log(`  ${name.padEnd(13)} median ${median(ts).toFixed(2).padStart(8)} ms  best ${Math.min(...ts).toFixed(2).padStart(8)} ms`);
  if (cpp) console.log(`  ${'bench_flash'.padEnd(13)} ${cpp.padStart(15)} ms (C++, same kernel and threads)`);
}
