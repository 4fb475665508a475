#!/usr/bin/env node
// What `sdpa(q, k, v, { verify })` costs, beside the call it checks, in one Node process: for each
// shape, the median kernel time of the call (lastDispatch().ms, the peer) and the median time of
// the check (lastDispatch().verify.ms: the float64 reference rows, reading the output, comparing),
// and their ratio. Uses the built dist/ (npx tsc -p tsconfig.json) and the default dispatch.
// Usage: node scripts/bench-verify.mjs [--runs 7] [--rows 16,2]
import os from 'node:os';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const runs = Number(opt('--runs', '7'));
const rowsList = opt('--rows', '16,2').split(',').map(Number);
const { tensor, sdpa, capabilities, lastDispatch } = await import('../dist/src/index.js');
await capabilities();

let seed = 1;
const rnd = (shape, dtype) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Float32Array.from({ length: n }, () => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0;
    return ((seed >>> 0) / 4294967296) * 2 - 1;
  });
  return tensor.fromFloat32(v, shape, dtype);
};
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

// [q shape, L, dtype]: prefill and decode.
const shapes = [
  [[1, 8, 1024, 64], 1024, 'float32'],
  [[1, 8, 4096, 64], 4096, 'float32'],
  [[1, 8, 1024, 64], 1024, 'float16'],
  [[1, 32, 1, 128], 4096, 'float32'],
];
console.log(`# sdpa verify cost — ${os.cpus()[0]?.model.trim()}, ${os.availableParallelism()} cores, node ${process.versions.node}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(`# median of ${runs} calls after one warm-up; call = lastDispatch().ms, verify = lastDispatch().verify.ms`);
console.log('| q | L | dtype | rows | kernel | call ms | verify ms | verify / call | reference multiply-adds |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [qs, L, dtype] of shapes) {
  const q = rnd(qs, dtype);
  const kv = rnd([qs[0], qs[1], L, qs[3]], dtype);
  for (const rows of rowsList) {
    const call = [], check = [];
    for (let i = 0; i <= runs; i++) {
      await sdpa(q, kv, kv, { verify: { rows } });
      const d = lastDispatch();
      if (i > 0) {
        call.push(d.ms);
        check.push(d.verify.ms);
      }
    }
    const d = lastDispatch();
    const c = median(call), v = median(check);
    console.log(`| [${qs.join(', ')}] | ${L} | ${dtype} | ${rows} | ${d.ran.backend} ${d.ran.kernel} | ${c.toFixed(2)} | ${v.toFixed(2)} | ${(v / c).toFixed(2)} | ${(d.verify.multiplyAdds / 1e6).toFixed(1)} M |`);
  }
}
