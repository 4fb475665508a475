#!/usr/bin/env node
// WebGPU benchmark for a GPU host (docs/performance-webgpu.md): FLASH (webgpu) kernels and
// EFFICIENT (webgpu), inputs resident on the GPU, each call awaited to completion.
//  1) correctness: the cases of scripts/lib/webgpu-bench.mjs (aligned and ragged, causal,
//     lower-right with empty rows, GQA, dropout, bf16, large scores, D 32..256) on the routed
//     kernel, each FLASH (webgpu) kernel pinned in turn, and EFFICIENT, against the CPU MATH reference;
//  2) the table: B=8, H=12, D=64, fp16, S = 512..16384, causal and not;
//  3) where a call's time goes (each pass's GPU time, the buffer pool off and on, timestamps off).
// Tensor-core kernel candidates and their statistics: scripts/bench-webgpu-tc.mjs.
// TF/s = 4·B·H·S·L·D / t (causal: half).
// Usage: node scripts/bench-webgpu.mjs [--quick] [--sizes 512,1024] [--no-check] [--json out.json]
import { performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { attention, attentionFlops, caseData, cases, cli, compare, flash, gpuF16, lastKernel, lib, setUp, timeCall, withEnv } from './lib/webgpu-bench.mjs';

process.env.SDPA_WEBGPU_TIMESTAMPS ??= '1';
const { sdpa, withBackends, SDPBackend } = lib;
const { opt, flag, list } = cli();
const sizes = list('--sizes', flag('--quick') ? '512,1024' : '512,1024,2048,4096,8192,16384').map(Number);
const { ctx, gpu } = await setUp();

/** withBackends scopes: the routed kernel, each FLASH (webgpu) kernel pinned, EFFICIENT. */
const paths = {
  routed: [SDPBackend.FLASH_ATTENTION],
  ...Object.fromEntries(flash.flashWebgpu.kernels.map((k) => [k.name, [{ backend: SDPBackend.FLASH_ATTENTION, device: 'webgpu', kernel: k.name }]])),
  efficient: [SDPBackend.EFFICIENT_ATTENTION],
};

/** Why no backend of `scope` can run the case (the pinned kernel's reasons), or undefined. */
function notEligible(scope, data) {
  const report = withBackends(scope, () => lib.explainDispatch(data.q, data.k, data.v, { ...data.opts, device: 'webgpu' }));
  if (report.candidates.some((x) => x.eligible)) return undefined;
  return report.candidates.flatMap((x) => x.kernels?.flatMap((k) => k.reasons) ?? x.reasons ?? []).join('; ') || 'not eligible';
}

// ---- 1) correctness ----
let allOk = true;
if (!flag('--no-check')) {
  for (const c of cases) {
    const data = await caseData(c);
    for (const [path, scope] of Object.entries(paths)) {
      // A pinned kernel that cannot run this shape says why instead.
      const why = notEligible(scope, data);
      if (why) { console.log(`skip ${c.name.padEnd(40)} ${path.padEnd(10)} ${why.slice(0, 300)}`); continue; }
      let line;
      try {
        const out = await withBackends(scope, () => sdpa(data.q, data.k, data.v, { ...data.opts, device: 'webgpu' }));
        const kernel = lastKernel();
        const got = await out.toFloat32();
        out.dispose();
        const r = compare(got, data.ref, data.tol, c);
        allOk &&= r.ok;
        line = `${r.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(40)} ${path.padEnd(10)} ${String(kernel).padEnd(18)} max|diff| ${r.maxd.toExponential(2)}${r.where}`;
      } catch (err) {
        allOk = false;
        line = `ERR  ${c.name.padEnd(40)} ${path}: ${String(err.message ?? err).split('\n').slice(0, 8).join(' | ').slice(0, 1500)}`;
      }
      console.log(line);
    }
  }
  console.log('correctness:', allOk ? 'PASS' : 'FAIL', 'compile failures:', JSON.stringify(flash.flashWebgpu.describe().sgmatCompileFailures));
}

// ---- 2) the table ----
const B = 8, H = 12, D = 64;
const rows = [];
for (const S of sizes) {
  const q = gpuF16(gpu, [B, H, S, D]), k = gpuF16(gpu, [B, H, S, D]), v = gpuF16(gpu, [B, H, S, D]);
  for (const causal of [false, true]) {
    for (const [path, scope] of Object.entries(paths)) {
      // The scalar kernels take minutes beyond S = 2048; the first tensor-core kernel beyond 4096.
      if ((path === 'rowwise_f16' || path === 'efficient') && S > 2048) continue;
      if (path === 'sgmat_1sg' && S > 4096) continue;
      if (notEligible(scope, { q: q.t, k: k.t, v: v.t, opts: { isCausal: causal } })) continue;
      try {
        const r = await timeCall(() => withBackends(scope, () => sdpa(q.t, k.t, v.t, { isCausal: causal, device: 'webgpu' })), attentionFlops(B, H, S, S, D, causal));
        const row = { path, kernel: lastKernel(), S, causal, ...r };
        rows.push(row);
        console.log(JSON.stringify(row));
      } catch (err) {
        console.log(JSON.stringify({ path, S, causal, error: String(err.message ?? err).slice(0, 400) }));
      }
    }
  }
  for (const x of [q, k, v]) x.buf.destroy();
}
console.log('\n| path | kernel | S | causal | call ms | call TF/s | kernel ms | kernel TF/s |\n| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.path} | ${r.kernel} | ${r.S} | ${r.causal} | ${r.ms} | ${r.tflops} | ${r.kernel_ms ?? ''} | ${r.kernel_tflops ?? ''} |`);

// ---- 3) where a call's time goes: every pass's GPU time against the whole call, with the buffer
// pool (SDPA_WEBGPU_POOL_MB) off and on, then without timestamps (their read-back is part of a call) ----
const overhead = [];
for (const S of list('--overhead-sizes', '1024,4096').map(Number)) {
  const q = gpuF16(gpu, [B, H, S, D]), k = gpuF16(gpu, [B, H, S, D]), v = gpuF16(gpu, [B, H, S, D]);
  for (const [pool, stamps] of [['0', '1'], ['512', '1'], ['512', '0']]) {
    const calls = await withEnv({ SDPA_WEBGPU_POOL_MB: pool, SDPA_WEBGPU_TIMESTAMPS: stamps }, async () => {
      const out = [];
      for (let i = 0; i < 8; i++) {
        const a = performance.now();
        const t = await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q.t, k.t, v.t, { device: 'webgpu' }));
        out.push({ ms: performance.now() - a, passes: attention.lastPassTimes().map((x) => [x.shader, +x.ms.toFixed(3)]) });
        t.dispose();
      }
      return out;
    });
    const last = calls.slice(2).sort((x, y) => x.ms - y.ms);
    const med = last[Math.floor(last.length / 2)];
    const row = stamps === '1'
      ? { S, kernel: lastKernel(), pool_mb: Number(pool), timestamps: true, call_ms: +med.ms.toFixed(3), passes: med.passes, other_ms: +(med.ms - med.passes.reduce((a, p) => a + p[1], 0)).toFixed(3) }
      : { S, kernel: lastKernel(), pool_mb: Number(pool), timestamps: false, call_ms: +med.ms.toFixed(3) };
    overhead.push(row);
    console.log('overhead', JSON.stringify(row));
  }
  for (const x of [q, k, v]) x.buf.destroy();
}
const jsonOut = opt('--json');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ adapter: ctx.adapterInfo, allOk, rows, overhead }, null, 1));
process.exit(0);
