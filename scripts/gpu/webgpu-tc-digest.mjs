#!/usr/bin/env node
// The digest of a scripts/gpu/webgpu-tc.sh run (its work folder): one compact table per question,
// printed last so the run's tail holds the answers. Usage: node scripts/gpu/webgpu-tc-digest.mjs DIR
import { existsSync, readFileSync } from 'node:fs';

const dir = process.argv[2] ?? '/tmp/webgpu-tc';
const load = (f) => (existsSync(`${dir}/${f}`) ? JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) : undefined);
const torch = load('torch.json'), stats = load('stats.json'), statsNr = load('stats-norobust.json'), main = load('main.json'), nr = load('norobust.json'), probe = load('call-probe.json');
const f = (x, n = 1) => (typeof x === 'number' ? x.toFixed(n) : x ?? '–');

/** Resident warps per SM on sm_90 from registers a lane, workgroup bytes and lanes (as vkstats). */
function warps(regs, bytes, lanes) {
  const w = Math.ceil(lanes / 32);
  const byRegs = regs > 0 ? Math.floor(65536 / (Math.ceil((regs * 32) / 256) * 256 * w)) : 1 << 20;
  const bySmem = Math.floor(233472 / (Math.ceil((bytes + 1024) / 128) * 128));
  return Math.min(byRegs, bySmem, Math.floor(64 / w), 32) * w;
}

if (stats?.stats) {
  const vk = new Map((stats.vkstats_robust ?? []).map((r) => [r.name, r]));
  const vkn = new Map((stats.vkstats_norobust ?? []).map((r) => [r.name, r]));
  const layerNr = new Map((statsNr?.stats ?? []).filter((r) => r.id).map((r) => [r.id, r]));
  const regsOf = (lines) => { const l = (lines ?? []).find((x) => /register/i.test(x)); return l ? Number(l.split('=').pop()) : undefined; };
  const spillOf = (lines) => (lines ?? []).filter((x) => /spill|local|stack|scratch/i.test(x)).join(', ');
  console.log('\n## pipelines (Dawn\'s own through the layer | vkstats robust / no robustness | disable_robustness build)');
  console.log('| candidate | D | wg bytes | barriers/64 keys (+rescale) | registers | spill-like stats | vkstats regs r/nr | warps/SM | regs without robustness | compile ms |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of stats.stats.filter((x) => x.id)) {
    const regs = regsOf(r.driver_stats);
    const v = vk.get(r.id), vn = vkn.get(r.id);
    const lanes = v?.lanes ?? r.rows;
    const best = regs ?? (v?.registers > 0 ? v.registers : undefined);
    console.log(`| ${r.candidate} | ${r.d} | ${r.workgroup_bytes ?? v?.workgroupBytes ?? ''} | ${f(r.barriers_per_64_keys)} (+${r.barriers?.rescale ?? ''}) | ${f(regs, 0)} | ${spillOf(r.driver_stats).slice(0, 60)} | ${f(v?.registers, 0)} / ${f(vn?.registers, 0)} | ${best ? warps(best, r.workgroup_bytes ?? 0, lanes) : '?'} | ${f(regsOf(layerNr.get(r.id)?.driver_stats), 0)} | ${r.compile_ms} |`);
  }
  const elf = stats.stats.filter((x) => x.elf);
  if (elf.length) {
    console.log('\n## machine code (pipeline-cache ELF images)');
    for (const e of elf) console.log(`${e.elf}: ${e.res_usage.replace(/\s+/g, ' ').slice(0, 160)} | ${Object.entries(e.sass_ops).filter(([k]) => /^(HMMA|LDSM|LDS|STS|LDG|STG|LDL|STL|BAR|MUFU)$/.test(k)).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  } else console.log('\n(no ELF images in the pipeline caches)');
  const first = stats.stats.find((x) => x.driver_stats?.length);
  if (first) console.log(`\ndriver statistics of ${first.id}: ${first.driver_stats.join('; ').slice(0, 600)}`);
}

if (main?.checks?.length) {
  const by = new Map();
  for (const c of main.checks) {
    const e = by.get(c.candidate) ?? { ok: 0, fail: 0, worst: 0, failed: [] };
    if (c.ok) e.ok++; else { e.fail++; e.failed.push(c.case); }
    e.worst = Math.max(e.worst, c.maxdiff ?? Infinity);
    by.set(c.candidate, e);
  }
  console.log('\n## correctness (max |diff| against the CPU MATH reference; tolerance 4e-3 f16, 1.6e-2 bf16)');
  for (const [k, e] of by) console.log(`${k.padEnd(12)} ${e.fail ? 'FAIL' : 'ok  '} ${e.ok}/${e.ok + e.fail} worst ${e.worst.toExponential(2)}${e.fail ? ` failed: ${e.failed.join('; ').slice(0, 300)}` : ''}`);
}

const tf = (rows, cand, d, S, causal) => rows?.find((x) => x.candidate === cand && x.d === d && x.S === S && x.causal === causal)?.kernel_tflops;
if (main?.times?.length) {
  const cands = [...new Set(main.times.map((x) => x.candidate))];
  console.log('\n## S=4096 kernel TF/s (GPU timestamps): D64 / D64 causal / D128 / D128 causal; [disable_robustness]');
  for (const c of cands) {
    const cells = [[64, false], [64, true], [128, false], [128, true]].map(([d, causal]) => `${f(tf(main.times, c, d, 4096, causal))}${tf(nr?.times, c, d, 4096, causal) ? ` [${f(tf(nr.times, c, d, 4096, causal))}]` : ''}`);
    console.log(`${c.padEnd(12)} ${cells.join(' | ')}`);
  }
  const torchTf = (b, d, S, causal) => torch?.rows?.find((x) => x.backend === b && x.D === d && x.S === S && x.causal === causal)?.tflops;
  console.log('\n## routed kernel vs PyTorch (kernel TF/s; call ms with timestamps on)');
  console.log('| D | S | causal | kernel | call ms | kernel ms | TF/s | torch FLASH | EFFICIENT | cuDNN | ratio to FLASH |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of main.times.filter((x) => x.candidate === 'routed').sort((a, b) => a.d - b.d || a.S - b.S || +a.causal - +b.causal)) {
    console.log(`| ${r.d} | ${r.S} | ${r.causal} | ${r.kernel} | ${f(r.ms, 3)} | ${f(r.kernel_ms, 3)} | ${f(r.kernel_tflops)} | ${f(torchTf('FLASH', r.d, r.S, r.causal))} | ${f(torchTf('EFFICIENT', r.d, r.S, r.causal))} | ${f(torchTf('CUDNN', r.d, r.S, r.causal))} | ${f(r.ratio_to_torch_flash, 3)} |`);
  }
  const others = main.times.filter((x) => x.candidate !== 'routed' && x.S !== 4096);
  if (others.length) {
    console.log('\n## other candidates across S (kernel TF/s)');
    for (const c of [...new Set(others.map((x) => x.candidate))]) for (const d of [64, 128]) {
      const rs = others.filter((x) => x.candidate === c && x.d === d);
      if (rs.length) console.log(`${c} D${d}: ${rs.map((x) => `S${x.S}${x.causal ? 'c' : ''} ${f(x.kernel_tflops)}`).join(', ')}`);
    }
  }
}
if (main?.times?.length) {
  // The table of docs/performance-webgpu.md: every timed candidate's kernel TF/s across S, with the
  // ratio to PyTorch FLASH of the same lease; PyTorch's three backends as rows of their own.
  const sizes = [...new Set(main.times.map((x) => x.S))].sort((a, b) => a - b);
  const torchTf = (b, d, S, causal) => torch?.rows?.find((x) => x.backend === b && x.D === d && x.S === S && x.causal === causal)?.tflops;
  console.log('\n## full table: kernel TF/s (GPU timestamps) by S, [ratio to torch FLASH]');
  console.log(`| candidate | D | causal | ${sizes.map((S) => `S=${S}`).join(' | ')} |`);
  console.log(`| --- | --- | --- | ${sizes.map(() => '---').join(' | ')} |`);
  for (const d of [64, 128]) for (const causal of [false, true]) {
    for (const c of [...new Set(main.times.map((x) => x.candidate))]) {
      const cells = sizes.map((S) => { const r = main.times.find((x) => x.candidate === c && x.d === d && x.S === S && x.causal === causal); return r?.kernel_tflops ? `${f(r.kernel_tflops)} [${f(r.ratio_to_torch_flash, 3)}]` : '–'; });
      if (cells.some((x) => x !== '–')) console.log(`| ${c}${c === 'routed' ? ` (${main.times.find((x) => x.candidate === c && x.d === d)?.kernel ?? ''})` : ''} | ${d} | ${causal} | ${cells.join(' | ')} |`);
    }
    for (const b of ['FLASH', 'EFFICIENT', 'CUDNN']) console.log(`| torch ${b} | ${d} | ${causal} | ${sizes.map((S) => f(torchTf(b, d, S, causal))).join(' | ')} |`);
  }
}
if (main?.calls?.length) {
  console.log('\n## whole awaited call (no timestamps) vs kernel (target: ≤ 0.3 ms over at S=1024, ≤ 10% at S=4096)');
  for (const r of main.calls) console.log(`D${r.d} S${r.S}${r.causal ? ' causal' : ''} ${r.kernel}: call ${f(r.call_ms, 3)} ms, kernel ${f(r.kernel_ms, 3)} ms, call - kernel ${f(r.over_kernel_ms, 3)} ms (${f(r.over_kernel_pct)}%)`);
}
if (probe?.rows?.length) {
  console.log('\n## per-call breakdown (scripts/probe-webgpu-call.mjs, medians, ms)');
  console.log('| shape | kernel | wait | 1-pass dispatch | library, no-op kernel | kernel.run | sdpa() in scope | sdpa() plain | dispatch alone | kernel | sdpa − run | no-op − dispatch | sdpa − kernel |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of probe.rows) console.log(`| ${r.shape} | ${r.kernel} | ${r.wait_ms} | ${r.dispatch_ms} | ${r.noop_ms} | ${r.run_ms} | ${r.sdpa_ms} | ${f(r.plain_ms, 4)} | ${f(r.select_ms, 4)} | ${f(r.kernel_ms, 4)} | ${r.selection_ms} | ${r.library_ms} | ${f(r.over_kernel_ms, 4)} |`);
}
if (!main) console.log('\n(no main.json: the correctness and timing step did not finish; see the log)');
