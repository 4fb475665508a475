#!/usr/bin/env node
// Flash-decoding probe (docs/performance-webgpu.md): the decode pass (shaders/flash-decode.wgsl)
// and the merge pass (flash-decode-merge.wgsl) dispatched directly, back to back, with the kernel
// shape forced (lanes per key group GW, keys per group and step U, workgroups aimed for), so the
// shipped choice rests on a sweep measured on one GPU in one lease. Each configuration: its output
// checked against MATH (webgpu) on the same inputs, then the wall time of 40 submissions of
// (decode, merge), of decode alone and of merge alone (the GPU kept busy; best of 3 batches).
// `--base DIR` adds the kernels of an earlier revision (DIR/flash-decode-base.wgsl and
// DIR/flash-decode-merge-base.wgsl, registered as bench-only shaders) as baseline rows.
// Usage: node scripts/probe-webgpu-decode.mjs [--batches 1,8] [--dtypes float16,float32] [--l 32768]
//   [--gw 8,16] [--u 1,2,4] [--wgs 1024,2048] [--min-chunk 256,512] [--sg 0,1] [--base DIR]
//   [--json out.json]   (--sg 1: the subgroups variant; the runs of 2026-12-03 also swept q held as
//   packed halves, a template option since removed: no gain)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cli, gpuTensorOf, lib, params, programs, setUp, timeEncoded, readBackF32 } from './lib/webgpu-bench.mjs';

const portable = await import('../dist/src/webgpu/portable.js');
const { opt, list } = cli();
const { ctx, gpu } = await setUp();
const { tensor, sdpa, withBackends, SDPBackend } = lib;
const H = Number(opt('--h', '32')), HKV = Number(opt('--hkv', '8')), D = Number(opt('--d', '128')), L = Number(opt('--l', '32768'));
const REPS = Number(opt('--reps', '40'));
const base = opt('--base');
if (base) {
  for (const [f, n] of [['flash-decode-base.wgsl', 'flash-decode-base.wgsl'], ['flash-decode-merge-base.wgsl', 'flash-decode-merge-base.wgsl']]) {
    if (existsSync(`${base}/${f}`)) await programs.registerShaderSource(n, readFileSync(`${base}/${f}`, 'utf8'));
  }
}

const gpuTensor = (shape, dtype, usage = 0) => gpuTensorOf(gpu, shape, dtype, { usage });

const readF32 = (buf, bytes, dtype) => readBackF32(gpu, buf, bytes, dtype);

/** Chunks for about `wgs` workgroups of at least `minChunk` keys: the library's decodeSplit with the sweep's pair. */
const split = (p, wgs, minChunk) => portable.decodeSplit(p, wgs, minChunk);

const timeEncoders = (encode) => timeEncoded(gpu, encode, REPS);

function pass(enc, pipe, bg, wg) {
  const cp = enc.beginComputePass();
  cp.setPipeline(pipe);
  cp.setBindGroup(0, bg);
  cp.dispatchWorkgroups(...wg);
  cp.end();
}

const rows = [];
for (const B of list('--batches', '1,8').map(Number)) {
  for (const dt of list('--dtypes', 'float16,float32')) {
    const q = gpuTensor([B, H, 1, D], dt), k = gpuTensor([B, HKV, L, D], dt), v = gpuTensor([B, HKV, L, D], dt);
    const p = params.buildParams('probe', q.t, k.t, v.t, { enableGqa: true });
    const kvBytes = 2 * B * HKV * L * D * (dt === 'float32' ? 4 : 2);
    const ref = await withBackends([SDPBackend.MATH], () => sdpa(q.t, k.t, v.t, { enableGqa: true, device: 'webgpu' }));
    const refF = await ref.toFloat32();
    ref.dispose();
    const outBytes = Math.ceil((B * H * D * (dt === 'float32' ? 4 : 2)) / 4) * 4;
    const out = gpu.createBuffer({ size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const dummy = gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    const sgOk = ctx.features.has('subgroups') && (ctx.adapterInfo.subgroupMinSize ?? 0) >= 8;
    const configs = [];
    for (const wgs of list('--wgs', '1024').map(Number)) {
      for (const mc of list('--min-chunk', '512').map(Number)) {
        if (base) configs.push({ wgs, mc, gw: 16, u: 2, sg: false, base: true });
        for (const sg of list('--sg', '0').map(Number)) {
          if (sg && !sgOk) continue;
          for (const gw of list('--gw', '8,16').map(Number)) {
            // Shuffles across a 16-lane group need subgroups at least that wide.
            if (sg && gw > (ctx.adapterInfo.subgroupMinSize || 32)) continue;
            for (const u of list('--u', '1,2,4').map(Number)) configs.push({ wgs, mc, gw, u, sg: !!sg });
          }
        }
      }
    }
    for (const c of configs) {
      const shipped = portable.decodePrograms(ctx, p, c.sg);
      const vpw = dt === 'float32' ? 4 : 8;
      const dmax = Math.max(64, shipped.main.defines.DMAX), dvmax = Math.max(64, shipped.main.defines.DVMAX);
      const nkv = dmax / (c.gw * vpw), nvv = dvmax / (c.gw * vpw);
      if (!Number.isInteger(nkv) || nkv < 1) continue;
      const sp = split(p, c.wgs, c.mc);
      const defines = c.base
        ? { ...shipped.main.defines, GW: c.gw, GW16: c.gw === 16 ? 1 : 0, NKV: nkv, NVV: nvv, SM4: Math.max(512, 4 * dvmax) }
        : { ...shipped.main.defines, GW: c.gw, GW16: c.gw === 16 ? 1 : 0, U: c.u, DPL: Math.ceil((4 * c.u) / c.gw), NKV: nkv, NVV: nvv, SM4: Math.max(c.sg ? 0 : 128 * c.u, (128 / c.gw) * (dvmax / 4)), SC4: (128 / c.gw) * c.u };
      const mainInfo = { ...shipped.main, shader: c.base ? 'flash-decode-base.wgsl' : shipped.main.shader, defines };
      const mergeInfo = { ...shipped.merge, shader: c.base && base ? 'flash-decode-merge-base.wgsl' : shipped.merge.shader };
      const row = { B, dtype: dt, kernel: c.base ? 'base' : c.sg ? 'new sg' : 'new', gw: c.gw, u: c.u, minChunk: c.mc, wgs: c.wgs, chunks: sp.chunks, chunkLen: sp.chunkLen };
      try {
        const [mp, gp] = await Promise.all([programs.getPipeline(ctx, mainInfo), programs.getPipeline(ctx, mergeInfo)]);
        const rowsN = B * H;
        const part = gpu.createBuffer({ size: rowsN * sp.chunks * p.ev * 4, usage: GPUBufferUsage.STORAGE });
        const ml = gpu.createBuffer({ size: rowsN * sp.chunks * 8, usage: GPUBufferUsage.STORAGE });
        const uniData = portable.decodeUniform(p, sp);
        // Sized from the block itself (it grew from 80 to 96 bytes with the sliding-window diagonals).
        const uni = gpu.createBuffer({ size: uniData.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
        gpu.queue.writeBuffer(uni, 0, uniData);
        const bgM = gpu.createBindGroup({ layout: programs.bindGroupLayout(gpu, mainInfo.bindings), entries: [uni, q.buf, k.buf, v.buf, dummy, dummy, part, ml].map((buffer, binding) => ({ binding, resource: { buffer } })) });
        const bgG = gpu.createBindGroup({ layout: programs.bindGroupLayout(gpu, mergeInfo.bindings), entries: [uni, part, ml, out].map((buffer, binding) => ({ binding, resource: { buffer } })) });
        const wgMain = [sp.chunks, sp.rowBlocks, B * HKV];
        const wgMerge = [rowsN, 1, 1];
        const enc = gpu.createCommandEncoder();
        pass(enc, mp, bgM, wgMain);
        pass(enc, gp, bgG, wgMerge);
        gpu.queue.submit([enc.finish()]);
        const got = await readF32(out, outBytes, dt);
        let maxd = 0;
        for (let i = 0; i < refF.length; i++) maxd = Math.max(maxd, Math.abs(got[i] - refF[i]));
        if (!(maxd <= (dt === 'float32' ? 5e-4 : 4e-3))) maxd = -maxd || -1; // NaN or over tolerance: marked negative
        row.maxd = maxd;
        row.both_ms = await timeEncoders((e) => { pass(e, mp, bgM, wgMain); pass(e, gp, bgG, wgMerge); });
        row.decode_ms = await timeEncoders((e) => pass(e, mp, bgM, wgMain));
        row.merge_ms = await timeEncoders((e) => pass(e, gp, bgG, wgMerge));
        row.tbs_both = +(kvBytes / row.both_ms / 1e9).toFixed(3);
        row.tbs_decode = +(kvBytes / row.decode_ms / 1e9).toFixed(3);
        for (const x of [part, ml, uni]) x.destroy();
      } catch (err) {
        row.error = String(err.message ?? err).slice(0, 300);
      }
      rows.push(row);
      console.log(JSON.stringify(row));
    }
    for (const x of [q, k, v]) x.buf.destroy();
    out.destroy();
  }
}
console.log('\n| B | dtype | kernel | GW | U | workgroups (chunks × keys) | max abs diff | decode+merge ms | K/V TB/s | decode ms | K/V TB/s decode | merge ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.B} | ${r.dtype} | ${r.kernel} | ${r.gw} | ${r.kernel === 'base' ? 2 : r.u} | ${r.wgs} (${r.chunks} × ${r.chunkLen}) | ${r.error ? 'ERR' : r.maxd?.toExponential(1)} | ${r.both_ms ?? ''} | ${r.tbs_both ?? ''} | ${r.decode_ms ?? ''} | ${r.tbs_decode ?? ''} | ${r.merge_ms ?? ''} |`);
const jsonOut = opt('--json');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ adapter: ctx.adapterInfo, rows }, null, 1));
process.exit(0);
