#!/usr/bin/env node
// What running onnxruntime-node's sessions in a worker thread costs (ONNXRUNTIME (cpu) does, since
// their create/run block the calling thread): the same opset-23 Attention call through the engine
// with sessions on this thread and in the worker, interleaved, median of --runs; plus the longest
// event-loop stall of each (a 4 ms timer). fp32 B=1 H=8 D=64.
// Usage: node scripts/probes/ort-worker-cost.mjs [--sizes 512,2048] [--runs 7] [--spin]   (after npm run build)
import { createRequire } from 'node:module';
import { runOrtAttention, sessionCache } from '../../dist/backends/onnxruntime/engine.js';
import * as workerOrt from '../../dist/backends/onnxruntime/worker-ort.js';
const { startOrtWorker } = workerOrt;
import { buildParams } from '../../dist/src/params.js';
import { tensor } from '../../dist/src/index.js';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const sizes = opt('--sizes', '512,2048').split(',').map(Number), runs = Number(opt('--runs', '7'));
const real = createRequire(import.meta.url)('onnxruntime-node');
const worker = await startOrtWorker();
const cfg = (ort, ep) => ({ ort, ep, label: `onnxruntime (${ep})`, op: 'Attention', causalAttrOnlySquare: false, boolMaskAsFloat: false, zeroFullyMaskedRows: false });
const engines = [['main thread', cfg(real, 'cpu')], ['worker', cfg(worker, 'cpu')]];
// --spin A/B: sessions with and without intra-op spin-waiting (session.intra_op.allow_spinning), both
// in the worker, instead of main thread vs worker.
const spin = (ort, on) => ({ ...ort, InferenceSession: { create: (m, o) => ort.InferenceSession.create(m, { ...o, extra: { session: { intra_op: { allow_spinning: on ? '1' : '0' } } } }) } });
if (args.includes('--spin')) engines.splice(0, 2, ['worker, spinning', cfg(spin(worker, true), 'cpu')], ['worker, no spin', cfg(spin(worker, false), 'cpu')]);
const ctx = { recordAllocation() {}, signal: undefined };
const caches = engines.map(() => new Map());
let last = performance.now(), stall = 0;
const timer = setInterval(() => { const t = performance.now(); stall = Math.max(stall, t - last); last = t; }, 4);
for (const s of sizes) {
  const mk = (seed) => tensor(Float32Array.from({ length: 8 * s * 64 }, (_, i) => Math.sin(i * 0.37 + seed)), [1, 8, s, 64]);
  const p = buildParams('probe', mk(1), mk(2), mk(3), {});
  const res = engines.map(() => ({ ts: [], stall: 0 }));
  for (let r = 0; r < runs + 1; r++) {
    for (let e = 0; e < engines.length; e++) {
      // One session cache per engine (same keys): swap the process-wide cache's entry map (probe-only).
      sessionCache.entries = caches[e];
      await new Promise((ok) => setTimeout(ok, 12));
      stall = 0; last = performance.now();
      const t0 = performance.now();
      await runOrtAttention(p, ctx, engines[e][1]);
      const ms = performance.now() - t0;
      await new Promise((ok) => setTimeout(ok, 12));
      if (r > 0) { res[e].ts.push(ms); res[e].stall = Math.max(res[e].stall, stall); if (engines[e][0].startsWith('worker')) (res[e].inner ??= []).push(workerOrt.lastRunMs); }
    }
  }
  const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  for (let e = 0; e < engines.length; e++) console.log(`S=${s} sessions: ${engines[e][0].padEnd(16)}: median ${med(res[e].ts).toFixed(1)} ms${res[e].inner ? ` (session.run inside the worker ${med(res[e].inner).toFixed(1)} ms)` : ''}, longest stall ${res[e].stall.toFixed(1)} ms`);
  console.log(`S=${s} ${engines[1][0]} / ${engines[0][0]} time: ${(med(res[1].ts) / med(res[0].ts)).toFixed(3)}×`);
}
clearInterval(timer);
