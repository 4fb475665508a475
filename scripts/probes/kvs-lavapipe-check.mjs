#!/usr/bin/env node
// BENCH-ONLY: the K/V-staging lab kernels (scripts/probes/flash-sgmat-kvs-lab.wgsl) against the CPU
// MATH reference on small shapes, for a local run on lavapipe with the subgroup-matrix emulation
// (SDPA_WEBGPU_SGMAT_EMULATE=1 XDG_RUNTIME_DIR=/tmp): every code path (ragged S and L, causal,
// lower-right with empty rows, GQA, a moving row max, bf16 with dropout, a window's lower edge)
// at small head dims, where the emulated shaders compile in reasonable time.
// Usage: node scripts/probes/kvs-lavapipe-check.mjs [--nw 1,2,4] [--dims 32,64] [--scm 0,1] [--cases 0,2]
import { caseData, cli, compare, lib, params, programs, setUp, sgmat } from '../lib/webgpu-bench.mjs';
import { kvsLabSpec, registerStLabs } from '../lib/st-lab.mjs';

const { list } = cli();
await setUp();
await registerStLabs(programs);
const nws = list('--nw', '1,2,4').map(Number);
const dims = list('--dims', '32').map(Number);
const scms = list('--scm', '0').map(Number);
const pick = list('--cases', '').map(Number);
const shapes = (d) => [
  { name: `ragged S77 L93 D${d}`, b: 1, hq: 2, hkv: 2, s: 77, l: 93, d },
  { name: `ragged causal GQA S100 L100 D${d}`, b: 1, hq: 2, hkv: 1, s: 100, l: 100, d, gqa: true, causal: true },
  { name: `lower-right S150 L70 D${d} (empty rows)`, b: 1, hq: 1, hkv: 1, s: 150, l: 70, d, lr: true },
  { name: `hot causal S96 D${d}`, b: 1, hq: 1, hkv: 1, s: 96, l: 96, d, qAmp: 16, causal: true },
  { name: `bf16 causal dropout 0.3 S64 D${d}`, b: 1, hq: 1, hkv: 1, s: 64, l: 64, d, dt: 'bfloat16', dropoutP: 0.3, causal: true },
  { name: `window [20,4] S90 L111 D${d}`, b: 1, hq: 1, hkv: 1, s: 90, l: 111, d, win: [20, 4] },
];
let bad = 0;
for (const d of dims) for (const c of shapes(d).filter((_, n) => !pick.length || pick.includes(n))) {
  const data = await caseData(c);
  for (const nw of nws) for (const scm of scms) {
    const name = `kvs${nw}${scm ? 'c' : ''}`;
    const kernel = sgmat.sgmatStKernel('flash (webgpu)', kvsLabSpec(sgmat, name, () => nw, !!scm));
    const p = params.buildParams('bench', data.q, data.k, data.v, { ...data.opts, device: 'webgpu' });
    const t = Date.now();
    const out = await kernel.run(p, { recordAllocation() {} });
    const r = compare(await out.toFloat32(), data.ref, data.tol, c);
    out.dispose();
    if (!r.ok) bad++;
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(40)} ${name.padEnd(6)} max|diff| ${r.maxd.toExponential(2)}${r.where} (${Date.now() - t} ms)`);
  }
}
console.log(bad ? `${bad} failures` : 'all right');
process.exit(bad ? 1 : 0);
