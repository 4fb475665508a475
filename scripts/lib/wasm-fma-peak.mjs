// The machine's own wasm SIMD128 throughput and its thread scaling, measured in the same run as a
// benchmark's rows: a hand-assembled module (12 independent f32x4 multiply + add chains, registers
// only, no memory) timed in 1 and in N worker_threads at once. Its N-thread / 1-thread ratio is what
// the second core gives right now (other jobs on a shared machine lower it), the yardstick for the
// wasm kernel's own thread scaling.
import { Worker } from 'node:worker_threads';

const ACC = 12;
/** The module: (func (param n i32) (result f32)), n iterations of ACC mul+add chains. */
function moduleBytes() {
  const leb = (n) => { const b = []; do { let x = n & 0x7f; n >>>= 7; if (n) x |= 0x80; b.push(x); } while (n); return b; };
  const f32x4 = (x) => { const b = Buffer.alloc(16); for (let i = 0; i < 4; i++) b.writeFloatLE(x, 4 * i); return [...b]; };
  const M = ACC + 1, C = ACC + 2;  // locals: 0 = n, 1..ACC accumulators, M, C
  const body = [1, ACC + 2, 0x7b];  // one local group: ACC + 2 v128
  body.push(0xfd, 0x0c, ...f32x4(0.999), 0x21, M, 0xfd, 0x0c, ...f32x4(0.001), 0x21, C);
  body.push(0x03, 0x40);  // loop
  for (let k = 1; k <= ACC; k++) body.push(0x20, k, 0x20, M, 0xfd, 0xe6, 0x01, 0x20, C, 0xfd, 0xe4, 0x01, 0x21, k);
  body.push(0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b);  // n -= 1; br_if n; end
  body.push(0x20, 1);
  for (let k = 2; k <= ACC; k++) body.push(0x20, k, 0xfd, 0xe4, 0x01);
  body.push(0xfd, 0x1f, 0, 0x0b);  // f32x4.extract_lane 0; end
  const sec = (id, bytes) => [id, ...leb(bytes.length), ...bytes];
  const code = [...leb(body.length), ...body];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...sec(1, [1, 0x60, 1, 0x7f, 1, 0x7d]),
    ...sec(3, [1, 0]),
    ...sec(7, [1, 4, ...Buffer.from('peak'), 0, 0]),
    ...sec(10, [1, ...code]),
  ]);
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
WebAssembly.instantiate(workerData.bytes).then(({ instance }) => {
  const peak = instance.exports.peak;
  peak(1e6);  // tier up
  const n = 1e6;
  let calls = 0;
  const t0 = performance.now(), end = t0 + workerData.ms;
  while (performance.now() < end) { peak(n); calls++; }
  parentPort.postMessage(calls * n * ${ACC} * 8 / (performance.now() - t0) / 1e6);
});`;

/**
 * GFLOP/s of `threads` workers running the chains at once for about `ms`: each worker's work over
 * its wall time (a mean, not a best call, so time-slicing on one core shows), summed over workers.
 */
async function run(threads, ms) {
  const bytes = moduleBytes();
  const rates = await Promise.all(Array.from({ length: threads }, () => new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { bytes, ms } });
    w.once('message', (r) => { resolve(r); void w.terminate(); });
    w.once('error', reject);
  })));
  return rates.reduce((a, b) => a + b, 0);
}

/** { 1: GFLOP/s, [threads]: GFLOP/s } of the wasm SIMD128 mul+add chains. */
export async function wasmFmaPeak(threads = 2, ms = 400) {
  const out = { 1: await run(1, ms) };
  if (threads > 1) out[threads] = await run(threads, ms);
  return out;
}
