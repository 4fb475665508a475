#!/usr/bin/env node
// Tensor-core kernel candidates of FLASH_ATTENTION (webgpu) on a GPU host, in one run
// (docs/performance-webgpu.md; the GPU script is scripts/gpu/webgpu-tc.sh):
//  1) stats: each candidate's pipeline compiled once per head dim (64, 128); the SPIR-V Dawn hands
//     the driver and the driver's statistics are captured by VK_LAYER_SDPA_capture when it is
//     enabled (scripts/vkstats), then rebuilt and read by vkstats (--vkstats PATH); workgroup bytes,
//     barriers per key block (counted in the expanded WGSL) and resident warps per SM beside them;
//  2) check: every correctness case of scripts/lib/webgpu-bench.mjs on every candidate, against
//     the CPU MATH reference (a candidate that cannot run a case says why);
//  3) time: kernel time from GPU timestamps and the whole awaited call, B=8 H=12 fp16, inputs
//     resident: every candidate at --sweep-sizes (4096), then the routed kernel, sgmat_mw and the
//     two fastest correct candidates per head dim at --sizes; the whole call without timestamps.
// TF/s = 4·B·H·S·L·D / t (causal: half). --torch FILE (scripts/bench-torch.py --json) adds the
// ratio to PyTorch FLASH of the same lease.
// Usage: node scripts/bench-webgpu-tc.mjs [--phases stats,check,time] [--candidates st,st-pipe,...]
//        [--sizes 1024,...] [--sweep-sizes 4096] [--dims 64,128] [--capture DIR] [--vkstats PATH]
//        [--torch FILE] [--json FILE] [--budget-s 240] [--tag NAME] [--cases NAME,...] [--warmup-s 8192] [--rep-ms 600]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { attentionFlops, caseData, cases, cli, compare, gpuF16, kernelReason, lastKernel, lib, params, programs, setUp, sgmat, timeCall, withEnv } from './lib/webgpu-bench.mjs';

const T0 = performance.now();
const { opt, list } = cli();
const phases = list('--phases', 'stats,check,time');
const budgetS = Number(opt('--budget-s', '240'));
const tag = opt('--tag', 'main');
const elapsed = () => (performance.now() - T0) / 1000;
const overBudget = (what) => { if (elapsed() < budgetS) return false; console.log(`budget: ${elapsed().toFixed(0)} s used of ${budgetS}; skipping ${what}`); return true; };
process.env.SDPA_WEBGPU_TIMESTAMPS ??= '1';

const { ctx, gpu } = await setUp();
const { sdpa, withBackends, SDPBackend } = lib;
const { sgmatStKernel, sgmatMwKernel, sgmatOneSubgroupKernel, stConfig, stConfigName, stProgram, stWorkgroupBytes, mwProgram, mwWorkgroupBytes } = sgmat;
const LABEL = 'flash (webgpu)';
const rctx = { recordAllocation() {} };

// ---- candidates: the shipped tensor-core kernels, and flash-sgmat-st.wgsl configurations as
// kernel variants of their own names ----
const variant = (kernel, program, rows, wgBytes, what, cfg) => ({ name: kernel.name, kernel, program, rows, wgBytes, what, cfg });
const st = (name, change, what) => {
  const cfg = (d) => ({ ...stConfig(d), ...change(d) });
  return variant(sgmatStKernel(LABEL, cfg, name), (d, l) => stProgram(cfg(d), d, l % 16 !== 0, 'float16'), (d) => cfg(d).nw * 32, (d) => stWorkgroupBytes(cfg(d), d, false), what, cfg);
};
const all = {
  sgmat_st: st('sgmat_st', () => ({}), 'the shipped configuration'),
  sgmat_mw: variant(sgmatMwKernel(LABEL), (d, l) => mwProgram(d, l), () => 128, (d) => mwWorkgroupBytes(d), 'the multi-subgroup kernel'),
  sgmat_1sg: variant(sgmatOneSubgroupKernel(LABEL), (d) => ({ shader: 'flash-sgmat.wgsl', entryPoint: 'main', defines: { SG: 32, DMAX: d, CAUSAL_SKIP: 1 }, bindings: ['uniform', 'read', 'read', 'read', 'rw'] }), () => 32, () => undefined, 'the first kernel'),
  st_qreg: st('st_qreg', () => ({ qreg: true }), 'Qᵀ held in right matrices at every head dim'),
  st_qsm: st('st_qsm', () => ({ qreg: false }), 'Qᵀ loaded from workgroup memory for every product'),
  st_nw2: st('st_nw2', () => ({ nw: 2 }), 'two independent subgroups per workgroup (their K/V reads closer in time)'),
  st_nw4: st('st_nw4', () => ({ nw: 4 }), 'four independent subgroups per workgroup'),
  st_pipe: st('st_pipe', () => ({ pipe: true }), "the next block's Sᵀ products issued before this block's softmax"),
  st_s16: st('st_s16', () => ({ s16: true }), 'scores in f16 result matrices (f16 accumulation)'),
  st_bc32: st('st_bc32', () => ({ bc: 32 }), '32-key blocks'),
  st_pipe_qsm: st('st_pipe_qsm', () => ({ pipe: true, qreg: false }), 'pipelined, Qᵀ from workgroup memory'),
};
const names = list('--candidates', Object.keys(all).join(','));
const candidates = names.map((n) => { if (!all[n]) throw new Error(`--candidates: unknown '${n}' (${Object.keys(all).join(', ')})`); return all[n]; });
const dims = list('--dims', '64,128').map(Number);
console.log('candidates', candidates.map((c) => `${c.name}${c.cfg ? ` [${dims.map((d) => `d${d}: ${stConfigName(c.cfg(d))}`).join(', ')}]` : ''} (${c.what})`).join('; '));
const report = { tag, adapter: ctx.adapterInfo, flags: process.env.SDPA_WEBGPU_FLAGS ?? '(default)', stats: [], checks: [], times: [], calls: [] };
const jsonOut = opt('--json');
/** Writes what is known so far: a run stopped by its time limit still leaves its results. */
const save = () => { if (jsonOut) writeFileSync(jsonOut, JSON.stringify(report, null, 1)); };

/** A shape-only stand-in for AttentionParams (the kernels' constraints read sizes and dtype). */
const query = (d, s, l, dtype = 'float16') => ({ e: d, ev: d, s, l, dtype, batch: 1, hq: 1, hkv: 1, gqaGroup: 1 });

/** The expanded WGSL of a program, as getPipeline builds it (before any emulation). */
function expandedWgsl(program) {
  const read = (f) => readFileSync(new URL(`../shaders/${f}`, import.meta.url), 'utf8');
  const src = read(program.shader).replace(/^\s*\/\/#include\s+"([\w.-]+)"\s*$/gm, (_, f) => read(f));
  return programs.expandTemplate(programs.expandDirectives(src, program.defines, program.shader), program.defines, program.shader);
}

/**
 * Barriers per iteration of the key loop (`for (var n = 0u; ...)`): workgroupBarrier() counts one,
 * workgroupUniformLoad two (barrier, load, barrier); those inside `if (rescale ...)` only run in
 * blocks where a row max moves, and are counted apart.
 */
function barriersPerBlock(code) {
  const start = code.indexOf('for (var n = 0u;');
  if (start < 0) return undefined;
  const open = code.indexOf('{', start);
  let depth = 0, end = open;
  for (let i = open; i < code.length; i++) { if (code[i] === '{') depth++; else if (code[i] === '}' && --depth === 0) { end = i; break; } }
  const body = code.slice(open, end);
  const count = (t) => (t.match(/workgroupBarrier\(\)/g) ?? []).length + 2 * (t.match(/workgroupUniformLoad\(/g) ?? []).length;
  let rare = 0;
  for (let i = body.indexOf('if (rescale != 0u)'); i >= 0; i = body.indexOf('if (rescale != 0u)', i + 1)) {
    const o = body.indexOf('{', i);
    let dd = 0, e = o;
    for (let j = o; j < body.length; j++) { if (body[j] === '{') dd++; else if (body[j] === '}' && --dd === 0) { e = j; break; } }
    rare += count(body.slice(o, e));
  }
  return { always: count(body) - rare, rescale: rare };
}

// ---- 1) stats ----
const capture = opt('--capture', process.env.SDPA_VKCAPTURE_DIR);
const captured = () => (capture && existsSync(capture) ? readdirSync(capture) : []);
if (phases.includes('stats')) {
  const spv = [];
  for (const d of dims) {
    for (const c of candidates) {
      const p = query(d, 4096, 4096);
      const why = kernelReason(c.kernel, p);
      if (why) { console.log(`stats ${c.name} d${d}: cannot run (${why})`); continue; }
      const program = c.program(d, 4096);
      const rows = c.rows(d);
      const before = new Set(captured());
      const t = performance.now();
      let compileMs;
      try { await programs.getPipeline(ctx, program); compileMs = +(performance.now() - t).toFixed(0); } catch (err) { console.log(`stats ${c.name} d${d}: compile failed: ${String(err.message).slice(0, 400)}`); continue; }
      const id = `${c.name}-d${d}`;
      // Files the layer wrote for this pipeline: NNNN.spv, NNNN.stats.txt, NNNN.cache, NNNN.k.elf ...
      const fresh = captured().filter((f) => !before.has(f));
      const files = fresh.map((f) => { const to = f.replace(/^\d{4}/, id); renameSync(`${capture}/${f}`, `${capture}/${to}`); return to; });
      const layerStats = files.includes(`${id}.stats.txt`) ? readFileSync(`${capture}/${id}.stats.txt`, 'utf8') : '';
      const statLines = layerStats.split('\n').filter((l) => l.includes(' = ')).map((l) => l.replace(/^stat \S+ \d+ \| /, '').replace(/\s+\(.*\)$/, ''));
      const barriers = barriersPerBlock(expandedWgsl(program));
      const bc = Number(program.defines.BC ?? 16);
      const row = { id, candidate: c.name, d, rows, compile_ms: compileMs, workgroup_bytes: c.wgBytes(d), keys_per_block: bc, barriers, barriers_per_64_keys: barriers && +(barriers.always * 64 / bc).toFixed(1), driver_stats: statLines, files };
      report.stats.push(row);
      save();
      if (files.some((f) => f.endsWith('.spv'))) spv.push(`${id}=${capture}/${id}.spv`);
      console.log('stats', JSON.stringify(row));
    }
  }
  // vkstats: the same SPIR-V rebuilt on a device of our own, with robustness on (as Dawn) and off.
  const vk = opt('--vkstats');
  if (vk && spv.length) {
    for (const [robust, sub] of [[true, 'robust'], [false, 'norobust']]) {
      const dir = `${capture}/vkstats-${sub}`;
      mkdirSync(dir, { recursive: true });
      const r = spawnSync(vk, [...(robust ? [] : ['--no-robust']), '--outdir', dir, '--json', `${dir}/vkstats.json`, ...spv], { encoding: 'utf8', timeout: 120_000 });
      console.log(`vkstats (${sub}) rc=${r.status}\n${(r.stdout ?? '').trim()}\n${(r.stderr ?? '').trim()}`);
      try { report[`vkstats_${sub}`] = JSON.parse(readFileSync(`${dir}/vkstats.json`, 'utf8')); } catch { /* printed above */ }
    }
  }
  // The driver's machine code, where the pipeline cache held ELF images.
  const elfs = captured().filter((f) => f.endsWith('.elf'));
  for (const f of elfs) {
    const res = spawnSync('cuobjdump', ['-res-usage', `${capture}/${f}`], { encoding: 'utf8' });
    const sass = spawnSync('nvdisasm', ['-c', `${capture}/${f}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const ops = {};
    for (const m of (sass.stdout ?? '').matchAll(/^\s*\/\*[0-9a-f]+\*\/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9]*)/gm)) ops[m[1]] = (ops[m[1]] ?? 0) + 1;
    const pick = Object.fromEntries(Object.entries(ops).filter(([k]) => /^(HMMA|LDSM|LDS|STS|LDG|STG|LDL|STL|BAR|MUFU|FFMA|FADD|FMUL|F2F|F2FP|SHFL|BRA|ISETP|FSETP|IMAD|LEA)$/.test(k)));
    console.log(`sass ${f}: ${(res.stdout ?? res.error?.message ?? '').trim().replace(/\s+/g, ' ').slice(0, 300)} | ${JSON.stringify(pick)}${sass.status ? ` (nvdisasm rc ${sass.status}: ${(sass.stderr ?? '').slice(0, 200)})` : ''}`);
    report.stats.push({ elf: f, res_usage: (res.stdout ?? '').trim(), sass_ops: ops });
  }
}

// ---- 2) correctness ----
let checkFailures = 0;
const okByCandidate = new Map();
const only = list('--cases', '');
// Candidates that are not shipped get the cases that reach every code path at D = 64 and 128
// (masks, empty rows, GQA, the partial last key tile, a moving row max); shipped kernels get all.
const SUBSET = ['aligned S256 L256 D64', 'lower-right S192 L128 D64 (empty rows)', 'GQA 6:2 causal S192 D128', 'ragged causal S100 L100 D128', 'hot (|q| 16) S256 L512 D64', 'hot causal S256 D128'];
const shippedNames = new Set(['routed', 'sgmat_st', 'sgmat_mw', 'sgmat_1sg']);
if (phases.includes('check') && !overBudget('the correctness checks')) {
  for (const c of cases.filter((x) => !only.length || only.some((w) => x.name.includes(w)))) {
    const data = await caseData(c);
    for (const cand of [{ name: 'routed' }, ...candidates]) {
      if (!shippedNames.has(cand.name) && !SUBSET.includes(c.name)) continue;
      let line;
      try {
        let out, kernel;
        if (cand.name === 'routed') {
          out = await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(data.q, data.k, data.v, { ...data.opts, device: 'webgpu' }));
          kernel = lastKernel();
        } else {
          const p = params.buildParams('bench', data.q, data.k, data.v, { ...data.opts, device: 'webgpu' });
          const why = kernelReason(cand.kernel, p);
          if (why) { console.log(`skip ${c.name.padEnd(40)} ${cand.name.padEnd(12)} ${why}`); continue; }
          out = await cand.kernel.run(p, rctx);
          kernel = cand.kernel.program.shaders[0];
        }
        const got = await out.toFloat32();
        out.dispose();
        const r = compare(got, data.ref, data.tol, c);
        if (!r.ok) checkFailures++;
        okByCandidate.set(cand.name, (okByCandidate.get(cand.name) ?? true) && r.ok);
        report.checks.push({ case: c.name, candidate: cand.name, kernel, ok: r.ok, maxdiff: r.maxd });
        line = `${r.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(40)} ${cand.name.padEnd(12)} ${String(kernel).slice(0, 24).padEnd(24)} max|diff| ${r.maxd.toExponential(2)}${r.where}`;
      } catch (err) {
        checkFailures++;
        okByCandidate.set(cand.name, false);
        report.checks.push({ case: c.name, candidate: cand.name, ok: false, error: String(err.message ?? err).slice(0, 600) });
        line = `ERR  ${c.name.padEnd(40)} ${cand.name}: ${String(err.message ?? err).split('\n').slice(0, 6).join(' | ').slice(0, 800)}`;
      }
      console.log(line);
    }
  }
  console.log('correctness by candidate', JSON.stringify(Object.fromEntries(okByCandidate)), checkFailures ? `${checkFailures} failures` : 'all right');
  save();
}


// ---- 3) timing ----
const B = 8, H = 12;
const torch = (() => { try { return JSON.parse(readFileSync(opt('--torch', ''), 'utf8')); } catch { return undefined; } })();
const torchFlash = (S, d, causal) => torch?.rows?.find((r) => r.backend === 'FLASH' && r.S === S && r.D === d && r.causal === causal)?.tflops;

const timing = { minReps: 3, maxReps: 12, budgetMs: Number(opt('--rep-ms', '600')) };
async function timeCandidate(cand, inputs, S, d, causal) {
  const flops = attentionFlops(B, H, S, S, d, causal);
  const opts = { isCausal: causal, device: 'webgpu' };
  if (cand.name === 'routed') {
    const r = await timeCall(() => withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(inputs.q.t, inputs.k.t, inputs.v.t, opts)), flops, timing);
    return { ...r, routed_kernel: lastKernel() };
  }
  const p = params.buildParams('bench', inputs.q.t, inputs.k.t, inputs.v.t, opts);
  const why = kernelReason(cand.kernel, p);
  if (why) return { skipped: why };
  return timeCall(() => cand.kernel.run(p, rctx), flops, timing);
}

if (phases.includes('time') && !overBudget('the timings')) {
  // The GPU idles at a low clock: keep it busy ~2 s before the first timing.
  {
    const ws = Number(opt('--warmup-s', '8192'));
    const wd = dims[0];
    const w = { q: gpuF16(gpu, [B, H, ws, wd]), k: gpuF16(gpu, [B, H, ws, wd]), v: gpuF16(gpu, [B, H, ws, wd]) };
    const t = performance.now();
    let n = 0;
    while (performance.now() - t < 2000 || n < 1) { (await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(w.q.t, w.k.t, w.v.t, { device: 'webgpu' }))).dispose(); n++; }
    console.log(`warm-up: ${n} calls in ${(performance.now() - t).toFixed(0)} ms`);
    for (const x of Object.values(w)) x.buf.destroy();
  }
  const timed = [{ name: 'routed' }, ...candidates];
  const record = (cand, S, d, causal, r) => {
    const row = { candidate: cand.name, kernel: r.routed_kernel ?? cand.name, d, S, causal, ...r, torch_flash_tflops: torchFlash(S, d, causal) };
    if (row.kernel_tflops && row.torch_flash_tflops) row.ratio_to_torch_flash = +(row.kernel_tflops / row.torch_flash_tflops).toFixed(3);
    report.times.push(row);
    save();
    console.log('time', JSON.stringify(row));
  };
  const sweep = list('--sweep-sizes', '4096').map(Number);
  for (const d of dims) {
    for (const S of sweep) {
      if (overBudget(`the sweep at D=${d} S=${S}`)) break;
      const inputs = { q: gpuF16(gpu, [B, H, S, d]), k: gpuF16(gpu, [B, H, S, d]), v: gpuF16(gpu, [B, H, S, d]) };
      for (const causal of [false, true]) for (const cand of timed) {
        try { record(cand, S, d, causal, await timeCandidate(cand, inputs, S, d, causal)); } catch (err) { console.log('time', JSON.stringify({ candidate: cand.name, d, S, causal, error: String(err.message ?? err).slice(0, 400) })); }
      }
      for (const x of Object.values(inputs)) x.buf.destroy();
    }
  }
  // The full table: routed, sgmat_mw and the two fastest correct candidates per head dim; sizes
  // outermost, so a run cut short by the budget still has both head dims of the smaller sizes.
  const sizes = list('--sizes', '1024,2048,4096,8192,16384').map(Number);
  const chosen = {};
  for (const d of dims) {
    const score = (n) => { const r = report.times.filter((x) => x.candidate === n && x.d === d && x.kernel_tflops); return r.length ? r.reduce((a, x) => a + x.kernel_tflops, 0) / r.length : 0; };
    const best = candidates.filter((c) => !['sgmat_mw', 'sgmat_1sg'].includes(c.name) && okByCandidate.get(c.name) !== false).sort((a, b) => score(b.name) - score(a.name)).slice(0, 2);
    chosen[d] = [{ name: 'routed' }, ...(names.includes('sgmat_mw') ? [all.sgmat_mw] : []), ...best];
    console.log(`table D=${d}: ${chosen[d].map((c) => c.name).join(', ')} (fastest at the sweep: ${best.map((c) => `${c.name} ${score(c.name).toFixed(1)}`).join(', ')})`);
  }
  for (const S of sizes) {
    for (const d of dims) {
      if (overBudget(`the table at D=${d} S=${S}`)) break;
      const inputs = { q: gpuF16(gpu, [B, H, S, d]), k: gpuF16(gpu, [B, H, S, d]), v: gpuF16(gpu, [B, H, S, d]) };
      for (const causal of [false, true]) for (const cand of chosen[d]) {
        if (report.times.some((x) => x.candidate === cand.name && x.d === d && x.S === S && x.causal === causal)) continue;
        try { record(cand, S, d, causal, await timeCandidate(cand, inputs, S, d, causal)); } catch (err) { console.log('time', JSON.stringify({ candidate: cand.name, d, S, causal, error: String(err.message ?? err).slice(0, 400) })); }
      }
      // The whole call without timestamps (their read-back is ~0.9 ms of a call).
      if (S === 1024 || S === 4096) {
        const r = await withEnv({ SDPA_WEBGPU_TIMESTAMPS: '0' }, () => timeCandidate({ name: 'routed' }, inputs, S, d, false));
        const k = report.times.find((x) => x.candidate === 'routed' && x.d === d && x.S === S && !x.causal);
        const row = { d, S, kernel: r.routed_kernel, call_ms: r.ms, kernel_ms: k?.kernel_ms, over_kernel_ms: k?.kernel_ms ? +(r.ms - k.kernel_ms).toFixed(3) : undefined };
        report.calls.push(row);
        save();
        console.log('call', JSON.stringify(row));
      }
      for (const x of Object.values(inputs)) x.buf.destroy();
    }
  }
}

// ---- summary ----
const fmt = (x) => (x === undefined ? '' : String(x));
if (report.stats.length) {
  console.log(`\n[${tag}] pipelines: | candidate | D | workgroup B | barriers per block (rescale) | per 64 keys | driver statistics |\n| --- | --- | --- | --- | --- | --- |`);
  for (const r of report.stats.filter((x) => x.id)) console.log(`| ${r.candidate} | ${r.d} | ${r.workgroup_bytes} | ${r.barriers?.always} (+${r.barriers?.rescale}) | ${r.barriers_per_64_keys} | ${r.driver_stats.join('; ').slice(0, 200)} |`);
}
if (report.checks.length) console.log(`\n[${tag}] correctness: ${JSON.stringify(Object.fromEntries(okByCandidate))}${checkFailures ? ` — ${checkFailures} failures` : ''}`);
if (report.times.length) {
  console.log(`\n[${tag}] | candidate | kernel | D | S | causal | call ms | kernel ms | kernel TF/s | torch FLASH TF/s | ratio |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`);
  for (const r of report.times) console.log(`| ${r.candidate} | ${r.kernel} | ${r.d} | ${r.S} | ${r.causal} | ${fmt(r.ms)} | ${fmt(r.kernel_ms)} | ${fmt(r.kernel_tflops)} | ${fmt(r.torch_flash_tflops)} | ${fmt(r.ratio_to_torch_flash)}${r.skipped ? ` skipped: ${r.skipped}` : ''} |`);
}
if (report.calls.length) {
  console.log(`\n[${tag}] whole call (no timestamps) vs kernel: | D | S | kernel | call ms | kernel ms | call - kernel |\n| --- | --- | --- | --- | --- | --- |`);
  for (const r of report.calls) console.log(`| ${r.d} | ${r.S} | ${r.kernel} | ${r.call_ms} | ${fmt(r.kernel_ms)} | ${fmt(r.over_kernel_ms)} |`);
}
console.log(`[${tag}] done in ${elapsed().toFixed(0)} s`);
save();
process.exit(0);
