#!/usr/bin/env node
// The portable WebGPU kernels (docs/performance-webgpu.md): the register-tiled prefill variants
// of FLASH (webgpu, f16) and EFFICIENT (webgpu, f32), and the flash-decoding variants, each pinned
// (so the subgroup-matrix kernels never take part), inputs resident on the GPU, calls awaited.
//  1) correctness of every pinned variant against the CPU MATH reference: the prefill cases of
//     scripts/lib/webgpu-bench.mjs, decode cases (S 1..16, GQA, lower-right causal, dropout, bf16,
//     large scores), f32 inputs for EFFICIENT;
//  2) prefill: kernel and whole-call TF/s at B=8 H=12, S (--sizes), D 64 and 128, non-causal;
//  3) decode: H=32 Hkv=8 D=128 S=1 L=32768, B=1 and 8: K/V bytes per kernel second and per call
//     second, the passes' times, and what of the call is not the kernel; the kernel time again with
//     --queued N calls in flight (default 8), the GPU kept busy;
//  4) with --math (lavapipe): MATH (webgpu) at the same shapes, for ratios measured in this run.
// --small shrinks 2) and 3) for a CPU adapter (lavapipe): B=1 H=4 S=256 and L=4096.
// Each timing follows 0.6 s of the same call (the GPU's clocks ramp from idle). TF/s = 4·B·H·S·L·D / t. Usage: node scripts/bench-webgpu-portable.mjs [--small] [--math]
//   [--sizes 1024,4096 | 0 (no prefill)] [--queued 8] [--no-check] [--json out.json]
import { performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { attention, attentionFlops, caseData, cases, cli, compare, gpuTensorOf, lastKernel, lib, setUp, timeCall, warm } from './lib/webgpu-bench.mjs';

process.env.SDPA_WEBGPU_TIMESTAMPS ??= '1';
const { sdpa, withBackends, SDPBackend, tensor } = lib;
const { opt, flag, list } = cli();
const small = flag('--small');
const { ctx, gpu } = await setUp();

const pin = (backend, kernel) => [{ backend, device: 'webgpu', kernel }];
const F = SDPBackend.FLASH_ATTENTION;
const EF = SDPBackend.EFFICIENT_ATTENTION;
const prefill = { tiled_sg_f16: [F, 'float16'], tiled_portable_f16: [F, 'float16'], tiled_sg_f32: [EF, 'float32'], tiled_portable_f32: [EF, 'float32'] };
const decode = { decode_f16: [F, 'float16'], decode_f16_portable: [F, 'float16'], decode_f32: [EF, 'float32'], decode_f32_portable: [EF, 'float32'] };

const gpuTensor = (shape, dtype) => gpuTensorOf(gpu, shape, dtype);


async function notEligible(scope, q, k, v, opts) {
  const report = await withBackends(scope, () => lib.explainDispatch(q, k, v, { ...opts, device: 'webgpu' }));
  if (report.candidates.some((x) => x.eligible)) return undefined;
  return report.candidates.flatMap((x) => x.kernels?.flatMap((k) => k.reasons) ?? x.reasons ?? []).join('; ') || 'not eligible';
}

// ---- 1) correctness ----
const decodeCases = [
  { name: 'decode S1 L4096 GQA 32:8 D128', b: 2, hq: 32, hkv: 8, s: 1, l: 4096, d: 128, gqa: true },
  { name: 'decode S4 L1000 GQA 8:2 lower-right D64', b: 1, hq: 8, hkv: 2, s: 4, l: 1000, d: 64, gqa: true, lr: true },
  { name: 'decode S16 L777 D128 hot (|q| 16)', b: 1, hq: 4, hkv: 4, s: 16, l: 777, d: 128, qAmp: 16 },
  { name: 'decode S3 L300 D256', b: 1, hq: 2, hkv: 2, s: 3, l: 300, d: 256 },
  { name: 'decode bf16 S2 L513 dropout 0.2 D64', b: 1, hq: 4, hkv: 2, s: 2, l: 513, d: 64, gqa: true, dt: 'bfloat16', dropoutP: 0.2 },
  { name: 'decode S1 L8192 window [2047,0] GQA 32:8 D128', b: 1, hq: 32, hkv: 8, s: 1, l: 8192, d: 128, gqa: true, win: [2047, 0] },
];
let allOk = true;
const checks = [];
if (!flag('--no-check')) {
  const all = [...cases, ...decodeCases];
  for (const c of all) {
    for (const [name, [backend, dt]] of Object.entries({ ...prefill, ...decode })) {
      // EFFICIENT variants run f32 inputs (bf16 cases keep their dtype); FLASH variants halves.
      const cdt = dt === 'float32' ? (c.dt === 'bfloat16' ? 'bfloat16' : 'float32') : (c.dt ?? 'float16');
      const data = await caseData({ ...c, dt: cdt });
      const tol = cdt === 'float32' ? 5e-4 : data.tol;
      const scope = pin(backend, name);
      const why = await notEligible(scope, data.q, data.k, data.v, data.opts);
      if (why) { console.log(`skip ${c.name.padEnd(44)} ${name.padEnd(20)} ${why.slice(0, 200)}`); continue; }
      try {
        const out = await withBackends(scope, () => sdpa(data.q, data.k, data.v, { ...data.opts, device: 'webgpu' }));
        const ran = lastKernel();
        const r = compare(await out.toFloat32(), data.ref, tol, c);
        out.dispose();
        const ok = r.ok && ran === name;
        allOk &&= ok;
        checks.push({ case: c.name, kernel: name, dtype: cdt, ok, maxd: r.maxd });
        console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(44)} ${name.padEnd(20)} ${cdt.padEnd(8)} max|diff| ${r.maxd.toExponential(2)} (tol ${tol})${r.where}${ran === name ? '' : ` ran ${ran}`}`);
      } catch (err) {
        allOk = false;
        console.log(`ERR  ${c.name.padEnd(44)} ${name}: ${String(err.message ?? err).split('\n').slice(0, 6).join(' | ').slice(0, 1200)}`);
      }
    }
  }
  console.log('correctness:', allOk ? 'PASS' : 'FAIL', `${checks.length} checks`);
}

// ---- 2) prefill ----
const rows = [];
const math = flag('--math');
const PB = small ? 1 : 8, PH = small ? 4 : 12;
for (const S of list('--sizes', small ? '256' : '1024,4096').map(Number).filter((s) => s > 0)) {
  for (const D of list('--dims', '64,128').map(Number)) {
    for (const dt of ['float16', 'float32']) {
      const q = gpuTensor([PB, PH, S, D], dt), k = gpuTensor([PB, PH, S, D], dt), v = gpuTensor([PB, PH, S, D], dt);
      const scopes = Object.entries(prefill).filter(([, [, d]]) => d === dt).map(([n, [b]]) => [n, pin(b, n)]);
      if (math) scopes.push(['math', [SDPBackend.MATH]]);
      for (const [name, scope] of scopes) {
        const why = await notEligible(scope, q.t, k.t, v.t, {});
        if (why) { console.log(JSON.stringify({ table: 'prefill', name, S, D, dtype: dt, skipped: why.slice(0, 200) })); continue; }
        try {
          const call = () => withBackends(scope, () => sdpa(q.t, k.t, v.t, { device: 'webgpu' }));
          await warm(call);
          const r = await timeCall(call, attentionFlops(PB, PH, S, S, D, false));
          const row = { table: 'prefill', name, kernel: lastKernel(), B: PB, H: PH, S, D, dtype: dt, ...r };
          rows.push(row);
          console.log(JSON.stringify(row));
        } catch (err) {
          console.log(JSON.stringify({ table: 'prefill', name, S, D, error: String(err.message ?? err).slice(0, 400) }));
        }
      }
      for (const x of [q, k, v]) x.buf.destroy();
    }
  }
}

// ---- 3) decode ----
const QUEUED = Number(opt('--queued', '8'));
const DH = small ? 8 : 32, DHKV = small ? 2 : 8, DD = 128, DL = Number(opt('--decode-l', small ? '4096' : '32768'));
for (const B of list('--decode-batches', small ? '1' : '1,8').map(Number)) {
  for (const dt of ['float16', 'float32']) {
    const q = gpuTensor([B, DH, 1, DD], dt), k = gpuTensor([B, DHKV, DL, DD], dt), v = gpuTensor([B, DHKV, DL, DD], dt);
    const kvBytes = 2 * B * DHKV * DL * DD * (dt === 'float32' ? 4 : 2);
    const scopes = Object.entries(decode).filter(([, [, d]]) => d === dt).map(([n, [b]]) => [n, pin(b, n)]);
    // The prefill kernel on the same call, for the gain of splitting the keys.
    scopes.push([dt === 'float16' ? 'tiled_sg_f16' : 'tiled_sg_f32', pin(dt === 'float16' ? F : EF, dt === 'float16' ? 'tiled_sg_f16' : 'tiled_sg_f32')]);
    if (math) scopes.push(['math', [SDPBackend.MATH]]);
    for (const [name, scope] of scopes) {
      const opts = { enableGqa: true };
      const why = await notEligible(scope, q.t, k.t, v.t, opts);
      if (why) { console.log(JSON.stringify({ table: 'decode', name, B, dtype: dt, skipped: why.slice(0, 200) })); continue; }
      try {
        const call = () => withBackends(scope, () => sdpa(q.t, k.t, v.t, { ...opts, device: 'webgpu' }));
        await warm(call);
        const r = await timeCall(call, attentionFlops(B, DH, 1, DL, DD, false), { budgetMs: 2000, maxReps: 40 });
        const passes = attention.lastPassTimes().map((x) => [x.shader, +x.ms.toFixed(4)]);
        // Queued: QUEUED calls in flight at once, so the GPU does not idle between them (an awaited
        // call leaves it idle ~70% of the time at B=8, and its clocks drop); the passes of the
        // last call of each round.
        let qSum = 0, qN = 0;
        if (r.passes_ms) {
          const t0 = performance.now();
          while (qN < 10 || performance.now() - t0 < 600) {
            const outs = await Promise.all(Array.from({ length: QUEUED }, () => call()));
            qSum += attention.lastPassTimes().reduce((a, x) => a + x.ms, 0);
            qN++;
            for (const o of outs) o.dispose();
          }
        }
        const row = {
          table: 'decode', name, kernel: lastKernel(), B, H: DH, Hkv: DHKV, S: 1, L: DL, D: DD, dtype: dt, ...r, passes,
          kernel_tbs: r.passes_ms ? +(kvBytes / r.passes_ms / 1e9).toFixed(3) : undefined,
          call_tbs: +(kvBytes / r.ms / 1e9).toFixed(3),
          not_kernel_ms: r.passes_ms ? +(r.ms - r.passes_ms).toFixed(3) : undefined,
          queued_kernel_ms: qN ? +(qSum / qN).toFixed(4) : undefined,
          queued_kernel_tbs: qN ? +(kvBytes / (qSum / qN) / 1e9).toFixed(3) : undefined,
        };
        rows.push(row);
        console.log(JSON.stringify(row));
      } catch (err) {
        console.log(JSON.stringify({ table: 'decode', name, B, error: String(err.message ?? err).slice(0, 400) }));
      }
    }
    for (const x of [q, k, v]) x.buf.destroy();
  }
}

console.log('\n| table | variant | ran | B | S | L/D | dtype | call ms | kernel ms (all passes) | kernel TF/s | K/V TB/s kernel | K/V TB/s call | kernel ms, queued | K/V TB/s kernel, queued |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.table} | ${r.name} | ${r.kernel} | ${r.B} | ${r.S} | ${r.table === 'decode' ? `${r.L}/${r.D}` : r.D} | ${r.dtype} | ${r.ms} | ${r.passes_ms ?? ''} | ${r.kernel_tflops ?? ''} | ${r.kernel_tbs ?? ''} | ${r.call_tbs ?? ''} | ${r.queued_kernel_ms ?? ''} | ${r.queued_kernel_tbs ?? ''} |`);
}
if (math) {
  console.log('\nratios to MATH (webgpu), kernel time (all passes) in this run:');
  for (const r of rows.filter((x) => x.name !== 'math')) {
    const m = rows.find((x) => x.name === 'math' && x.table === r.table && x.S === r.S && x.D === r.D && x.dtype === r.dtype && x.B === r.B);
    if (m?.passes_ms && r.passes_ms) console.log(`${r.table} ${r.name} ${r.dtype} S${r.S} D${r.D} B${r.B}: ${(m.passes_ms / r.passes_ms).toFixed(1)}× faster than MATH (kernel), ${(m.ms / r.ms).toFixed(1)}× (call)`);
  }
}
const jsonOut = opt('--json');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ adapter: ctx.adapterInfo, allOk, checks, rows }, null, 1));
process.exit(0);
