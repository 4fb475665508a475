#!/usr/bin/env node
// Register-tile probe of the WebAssembly flash kernel: builds csrc/kernel_wasm.cc with each
// (QK_MR, QK_NV, PV_MR, PV_NV) given, then times one thread of each in this process, round-robin, best of --runs (the module
// driven directly through backends/flash/wasm/abi.ts, no workers) on fp32 B=1 H=8 D=64.
// Bench-only: the shipped modules use the defaults in kernel_wasm.cc.
// Usage: node scripts/probes/wasm-tiles.mjs [--s 2048] [--runs 3] [--simd simd128|relaxed] 4,3,4,3 2,4,2,4 ...
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAll } from '../build-wasm.mjs';
import { stageCall } from '../../dist/backends/flash/wasm/abi.js';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const S = Number(opt('--s', '2048')), runs = Number(opt('--runs', '3')), simd = opt('--simd', 'simd128');
const tiles = args.filter((a, i) => /^\d+,\d+,\d+,\d+$/.test(a) && !['--s', '--runs', '--simd'].includes(args[i - 1]));
const H = 8, D = 64;
const q = Float32Array.from({ length: H * S * D }, (_, i) => Math.sin(i * 0.37));
const bases = Float64Array.from({ length: H }, (_, h) => h * S * D);
const job = {
  dtype: 0, q, k: q, v: q, bh: H, hq: H, hkv: H, s: S, l: S, e: D, ev: D, qBase: bases, kvBaseK: bases, kvBaseV: bases,
  qRowStride: D, kRowStride: D, vRowStride: D, maskKind: 0, maskDType: 0, maskStrideS: 0, maskStrideL: 0,
  causal: false, diagonalOffset: 0, scale: 1 / Math.sqrt(D), dropoutP: 0, seed: 0,
};
// Build every configuration first, then time them round-robin and keep each one's fastest run:
// on a shared, loaded machine the minimum is the least disturbed figure.
const configs = [];
for (const t of tiles.length ? tiles : ['4,2,2,4']) {
  const [qm, qn, pm, pn] = t.split(',');
  const dir = mkdtempSync(join(tmpdir(), 'wasm-tiles-'));
  buildAll(dir, [`SDPA_WASM_QK_MR=${qm}`, `SDPA_WASM_QK_NV=${qn}`, `SDPA_WASM_PV_MR=${pm}`, `SDPA_WASM_PV_NV=${pn}`]);
  const inst = await WebAssembly.instantiate(readFileSync(join(dir, `flash-${simd}.wasm`)));
  configs.push({ label: `QK ${qm}x${qn} PV ${pm}x${pn} (${simd})`, ex: inst.instance.exports, ts: [] });
}
for (let r = 0; r < runs + 1; r++) {
  for (const c of configs) {
    const st = stageCall(c.ex, c.ex.memory, job, 1);
    const t0 = performance.now();
    c.ex.sdpa_run(st.plan, st.workspaces[0], st.ctl, st.ctl + 4, 1 << 30);
    if (r > 0) c.ts.push(performance.now() - t0);
    c.ex.sdpa_release(st.mark);
  }
}
for (const c of configs) {
  const ms = Math.min(...c.ts);
  console.log(`${c.label}: best ${ms.toFixed(1)} ms, ${((4 * H * S * S * D) / ms / 1e6).toFixed(1)} GFLOP/s`);
}
