/**
 * Soak: many small calls round-robin over every available backend part, with the heap, external
 * memory and each engine's live resources (GPU buffers, ORT sessions — reported by parts'
 * `describe().liveResources`) flat at the end. `npm test` runs SOAK_CALLS (default 1,000);
 * `npm run soak` runs 10,000.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { capabilities, explainDispatch, sdpa, withBackends } from '../src/index.js';
import { randBoolMask, randTensor, rng } from './helpers/random.js';
import { testedParts } from './helpers/parts.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const CALLS = Number(process.env.SOAK_CALLS ?? 1000);

function liveResources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { backend, part } of testedParts()) {
    const n = part.describe?.().liveResources;
    if (typeof n === 'number') out[`${backend} (${part.device})`] = n;
  }
  return out;
}

describe('soak', () => {
  it(`${CALLS} calls across backends keep heap, external memory and live resources flat`, async () => {
    await capabilities();
    const r = rng(1234);
    const runnable = testedParts().filter(({ part }) => part.availability().available);
    const problems = Array.from({ length: 8 }, (_, i) => {
      const s = 4 + i * 3;
      const opts = i % 3 === 0 ? { isCausal: true } : i % 3 === 1 ? { attnMask: randBoolMask(r, [s, s + 2]) } : {};
      return { q: randTensor(r, [1, 2, s, 16]), k: randTensor(r, [1, 2, s + 2, 16]), v: randTensor(r, [1, 2, s + 2, 16]), opts };
    });
    const callOnce = async (i: number) => {
      const { backend, part } = runnable[i % runnable.length];
      const p = problems[i % problems.length];
      const opts = { ...p.opts, device: part.device };
      if (!explainDispatch(p.q, p.k, p.v, opts).candidates.find((c) => c.backend === backend)?.eligible) return;
      const out = await withBackends([backend], () => sdpa(p.q, p.k, p.v, opts));
      await out.toFloat32();
      out.dispose();
    };
    const warm = Math.min(200, CALLS / 5);
    for (let i = 0; i < warm; i++) await callOnce(i);
    gc();
    const before = { ...process.memoryUsage(), live: liveResources() };
    for (let i = 0; i < CALLS; i++) await callOnce(i);
    gc();
    await new Promise((res) => setTimeout(res, 50));
    gc();
    const after = { ...process.memoryUsage(), live: liveResources() };
    const mib = (x: number) => (x / 2 ** 20).toFixed(1);
    console.log(`soak: ${CALLS} calls over ${runnable.length} parts; heap ${mib(before.heapUsed)} → ${mib(after.heapUsed)} MiB, external ${mib(before.external)} → ${mib(after.external)} MiB, live ${JSON.stringify(before.live)} → ${JSON.stringify(after.live)}`);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * 2 ** 20);
    expect(after.external - before.external).toBeLessThan(8 * 2 ** 20);
    for (const [k, n] of Object.entries(after.live)) expect(n, k).toBeLessThanOrEqual(before.live[k] ?? n);
  }, 600_000);
});
