#!/usr/bin/env node
// Portable prefill probe (docs/performance-webgpu.md, issue 15): shaders/flash-portable.wgsl
// dispatched directly with its register tile forced (src/webgpu/portable.ts PrefillTile: rows per
// invocation, keys per block, K/V tiles as packed halves or f32, constant loop bounds), so the
// shipped choice per head dim rests on a sweep measured on one GPU in one device call.
// Each tile: checked first against the CPU MATH reference on the non-mask cases of
// scripts/lib/webgpu-bench.mjs (ragged, causal, GQA, hot, bf16 with dropout, D 32..256) through the
// same direct dispatch, then timed at B × H × S × S × D (non-causal): REPS dispatches in one
// submission, best of 3 batches after a warm one (wall time; back-to-back, the GPU kept busy).
// With the capture layer (SDPA_VKCAPTURE_DIR, scripts/gpu/webgpu-portable.sh's step 3) each
// tile's pipeline is compiled alone and the driver's register count read back.
// Usage: node scripts/probe-webgpu-portable.mjs [--dims 64,128] [--s 4096] [--b 8] [--h 12]
//   [--tiles 2x64h,2x32h,2x32f,2x32hc] [--sg 0,1] [--dtype float16] [--reps 10]
//   [--no-check | --cases SUBSTR,SUBSTR] [--small] [--json out.json]
//   tile = 2 x BC (2 rows an invocation), then h (packed-half tiles) or f (f32 tiles), then c for
//   constant loop bounds.
import { performance } from 'node:perf_hooks';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cases, caseData, cli, compare, lib, params, programs, attention, randF32, setUp, timeEncoded, readBackF32 } from './lib/webgpu-bench.mjs';

const portable = await import('../dist/src/webgpu/portable.js');
const { opt, flag, list } = cli();
const { ctx, gpu } = await setUp();
const { tensor } = lib;
const small = flag('--small');
const B = Number(opt('--b', small ? '1' : '8')), H = Number(opt('--h', small ? '2' : '12')), S = Number(opt('--s', small ? '256' : '4096'));
const REPS = Number(opt('--reps', small ? '2' : '10'));
const DT = opt('--dtype', 'float16');
const capDir = process.env.SDPA_VKCAPTURE_DIR;

// The shader now has 2 rows an invocation and 64-row workgroups only: the sweep's 4x.. and /32
// tiles lost and were taken out (run them from commit 34ad69c).
function parseTile(s) {
  const m = /^2x(32|64)([hf])(c?)$/.exec(s);
  if (!m) throw new Error(`bad tile ${s}: 2xBC, h|f, optional c (4-row and 32-row tiles: commit 34ad69c)`);
  return { name: s, rows: 64, rpi: 2, bc: Number(m[1]), halfTiles: m[2] === 'h', constLoops: m[3] === 'c' };
}
const tiles = list('--tiles', '2x64h,2x32h,2x32f,2x64hc,2x32hc').map(parseTile);

function gpuBuffer(t) {
  const bytes = Math.ceil(t.data.byteLength / 4) * 4;
  const buf = gpu.createBuffer({ size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const src = new Uint8Array(bytes);
  src.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  gpu.queue.writeBuffer(buf, 0, src);
  return buf;
}

const readF32 = (buf, bytes, dtype) => readBackF32(gpu, buf, bytes, dtype);

const dummy = gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });

/** A dispatchable prefill: pipeline, bind group and grid for the call's params and a tile. */
async function prepare(p, q, k, v, tile, sg) {
  const info = portable.prefillProgram(ctx, p, sg, tile);
  const before = capDir && existsSync(capDir) ? readdirSync(capDir).filter((f) => f.endsWith('.stats.txt')).length : 0;
  const pipe = await programs.getPipeline(ctx, info);
  let stats;
  if (capDir) {
    // The capture layer writes NNNN.stats.txt when the driver compiles; wait for this one's.
    const t0 = performance.now();
    let files = [];
    while (performance.now() - t0 < 3000) {
      files = existsSync(capDir) ? readdirSync(capDir).filter((f) => f.endsWith('.stats.txt')).sort() : [];
      if (files.length > before) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (files.length > before) {
      const txt = readFileSync(`${capDir}/${files[files.length - 1]}`, 'utf8');
      const num = (re) => Number(re.exec(txt)?.[1]);
      stats = { file: files[files.length - 1], registers: num(/Register Count = (\d+)/), shared: num(/Shared Memory Size = (\d+)/) };
    }
  }
  const outBytes = Math.ceil((p.batch * p.hq * p.s * p.ev * (p.dtype === 'float32' ? 4 : 2)) / 4) * 4;
  const out = gpu.createBuffer({ size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const uni = gpu.createBuffer({ size: attention.paramsUniform(p).byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  gpu.queue.writeBuffer(uni, 0, attention.paramsUniform(p));
  const bg = gpu.createBindGroup({ layout: programs.bindGroupLayout(gpu, info.bindings), entries: [uni, q, k, v, dummy, dummy, out].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const grid = attention.dispatchRows(ctx, p, tile.rows);
  const encode = (enc) => {
    const cp = enc.beginComputePass();
    cp.setPipeline(pipe);
    cp.setBindGroup(0, bg);
    cp.dispatchWorkgroups(...grid);
    cp.end();
  };
  return { info, stats, out, outBytes, encode, destroy: () => { out.destroy(); uni.destroy(); } };
}

const timeEncoders = (encode) => timeEncoded(gpu, encode, REPS);

const rows = [];
const sgs = list('--sg', '0').map(Number).filter((x) => !x || ctx.features.has('subgroups'));
let allOk = true;

// ---- correctness: every tile on the non-mask cases (mask cases need the library's mask binding) ----
if (!flag('--no-check')) {
  const only = list('--cases', '');
  for (const c of cases.filter((x) => !x.lr && (!only.length || only.some((o) => x.name.includes(o))))) {
    const dt = c.dt ?? DT;
    const data = await caseData({ ...c, dt });
    const p = params.buildParams('probe', data.q, data.k, data.v, data.opts);
    const [q, k, v] = [data.q, data.k, data.v].map(gpuBuffer);
    for (const sg of sgs) {
      for (const tile of tiles) {
        const dmax = Math.max(64, attention.headDimBucket(p.e)), dvmax = Math.max(64, attention.headDimBucket(p.ev));
        if (!portable.prefillTileFits(ctx, dmax, dvmax, !!sg, tile)) continue;
        const r = await prepare(p, q, k, v, tile, !!sg);
        const enc = gpu.createCommandEncoder();
        r.encode(enc);
        gpu.queue.submit([enc.finish()]);
        const got = await readF32(r.out, r.outBytes, dt);
        const cmp = compare(got.subarray(0, data.ref.length), data.ref, data.tol, c);
        allOk &&= cmp.ok;
        console.log(`${cmp.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(40)} ${tile.name.padEnd(7)} sg${sg} ${dt.padEnd(8)} max|diff| ${cmp.maxd.toExponential(2)} (tol ${data.tol})${cmp.where}`);
        r.destroy();
      }
    }
    for (const x of [q, k, v]) x.destroy();
  }
  console.log('correctness:', allOk ? 'PASS' : 'FAIL');
}

// ---- timing ----
for (const D of list('--dims', '64,128').map(Number)) {
  const mk = () => tensor.fromFloat32(randF32(B * H * S * D), [B, H, S, D], DT);
  const [qt, kt, vt] = [mk(), mk(), mk()];
  const p = params.buildParams('probe', qt, kt, vt, {});
  const [q, k, v] = [qt, kt, vt].map(gpuBuffer);
  const flops = 4 * B * H * S * S * D;
  let refOut;
  for (const sg of sgs) {
    for (const tile of tiles) {
      const row = { D, S, B, H, dtype: DT, sg, tile: tile.name };
      const dmax = Math.max(64, attention.headDimBucket(D));
      if (!portable.prefillTileFits(ctx, dmax, dmax, !!sg, tile)) { row.skipped = 'does not fit'; console.log(JSON.stringify(row)); continue; }
      try {
        const r = await prepare(p, q, k, v, tile, !!sg);
        Object.assign(row, r.stats ?? {});
        const enc = gpu.createCommandEncoder();
        r.encode(enc);
        gpu.queue.submit([enc.finish()]);
        const got = await readF32(r.out, r.outBytes, DT);
        // Against the first tile's output at the same shape (each tile is checked against MATH above).
        if (!refOut) refOut = got;
        let maxd = 0;
        for (let i = 0; i < got.length; i += 7) maxd = Math.max(maxd, Math.abs(got[i] - refOut[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
        row.maxd_vs_first = maxd;
        row.ms = await timeEncoders(r.encode);
        row.tflops = +(flops / row.ms / 1e9).toFixed(2);
        r.destroy();
      } catch (err) {
        row.error = String(err.message ?? err).slice(0, 400);
      }
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  for (const x of [q, k, v]) x.destroy();
}

console.log(`\n| D | sg | tile | registers | ms | TF/s | max|diff| vs first tile |\n| --- | --- | --- | --- | --- | --- | --- |`);
for (const r of rows) console.log(`| ${r.D} | ${r.sg} | ${r.tile} | ${r.registers ?? ''} | ${r.ms ?? r.error ?? ''} | ${r.tflops ?? ''} | ${r.maxd_vs_first?.toExponential(1) ?? ''} |`);
const jsonOut = opt('--json');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ adapter: ctx.adapterInfo, allOk, rows }, null, 1));
process.exit(0);
