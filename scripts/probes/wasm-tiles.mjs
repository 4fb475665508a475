#!/usr/bin/env node
// Register-tile probe of the WebAssembly flash kernel: builds csrc/kernel_wasm.cc with each
// (QK_MR, QK_NV, PV_MR, PV_NV) given, then times one thread of each, round-robin, best of --runs
// (the module driven directly through backends/flash/wasm/abi.ts, no workers) on fp32 B=1 H=8 D=64.
// In this Node process by default, or with --browser in headless Chromium (the engine the browser
// targets are judged in; its V8 is newer than Node 20's and picks different tiles).
// Phase ablation: `4,2,4,2:drop=softmax` (or qk, pv) builds a copy of csrc/ whose run_block skips
// that phase's call — wrong results, but the time the other phases take: what each phase costs.
// Bench-only: the shipped modules use the defaults in kernel_wasm.cc.
// Usage: node [--experimental-wasm-relaxed-simd] scripts/probes/wasm-tiles.mjs [--s 2048] [--runs 3]
//        [--simd simd128|relaxed] [--browser] 4,3,4,3 2,4,2,4 4,2,4,2:drop=pv ...
import { cpSync, readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAll } from '../build-wasm.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const S = Number(opt('--s', '2048')), runs = Number(opt('--runs', '3')), simd = opt('--simd', 'simd128');
const tiles = args.filter((a, i) => /^\d+,\d+,\d+,\d+(:[A-Za-z0-9_=+-]+)*$/.test(a) && !['--s', '--runs', '--simd'].includes(args[i - 1]));

// Build every configuration first; the timing loop (Node or page) runs them round-robin and keeps
// each one's fastest run: on a shared, loaded machine the minimum is the least disturbed figure.
const configs = [];
for (const t of tiles.length ? tiles : ['4,2,2,4']) {
  // 4,2,4,2:NAME=1:OTHER → extra -D for that configuration (A/B of a probe-only switch)
  const [tile, ...parts] = t.split(':');
  const drops = parts.filter((d) => d.startsWith('drop=')).map((d) => d.slice(5));
  const defs = parts.filter((d) => !d.startsWith('drop='));
  const [qm, qn, pm, pn] = tile.split(',');
  const dir = mkdtempSync(join(tmpdir(), 'wasm-tiles-'));
  let src = join(ROOT, 'csrc');
  if (drops.length) {
    // The phase calls of run_block, by name; each must be found (the probe fails rather than time the wrong thing).
    const calls = { qk: /^\s*qk_strip\(.*\);$/m, softmax: /^\s*softmax_block\(p, bh,.*\);$/m, pv: /^\s*pv_strip\(.*\);$/m };
    src = join(dir, 'csrc');
    cpSync(join(ROOT, 'csrc'), src, { recursive: true });
    let impl = readFileSync(join(src, 'kernel_impl.h'), 'utf8');
    for (const d of drops) {
      if (!calls[d] || !calls[d].test(impl)) throw new Error(`drop=${d}: no such phase call in kernel_impl.h (qk, softmax, pv)`);
      impl = impl.replace(calls[d], '');
    }
    writeFileSync(join(src, 'kernel_impl.h'), impl);
  }
  buildAll(dir, [...defs, `SDPA_WASM_QK_MR=${qm}`, `SDPA_WASM_QK_NV=${qn}`, `SDPA_WASM_PV_MR=${pm}`, `SDPA_WASM_PV_NV=${pn}`], src);
  configs.push({ label: `QK ${qm}x${qn} PV ${pm}x${pn}${[...defs, ...drops.map((d) => `without ${d}`)].map((d) => ` ${d}`).join('')} (${simd})`, b64: readFileSync(join(dir, `flash-${simd}.wasm`)).toString('base64') });
}

// Runs in Node or, stringified, in the page: `stageCall` is abi.js's (no imports, so it runs in both).
async function probe(configs, S, runs, stageCall) {
  const H = 8, D = 64;
  const q = Float32Array.from({ length: H * S * D }, (_, i) => Math.sin(i * 0.37));
  const bases = Float64Array.from({ length: H }, (_, h) => h * S * D);
  const job = {
    dtype: 0, q, k: q, v: q, bh: H, hq: H, hkv: H, s: S, l: S, e: D, ev: D, qBase: bases, kvBaseK: bases, kvBaseV: bases,
    qRowStride: D, kRowStride: D, vRowStride: D, maskKind: 0, maskDType: 0, maskStrideS: 0, maskStrideL: 0,
    causal: false, diagonalOffset: 0, scale: 1 / Math.sqrt(D), dropoutP: 0, seed: 0,
  };
  const live = [];
  for (const c of configs) {
    const bytes = Uint8Array.from(atob(c.b64), (ch) => ch.charCodeAt(0));
    const inst = await WebAssembly.instantiate(bytes);
    live.push({ label: c.label, ex: inst.instance.exports, ts: [] });
  }
  for (let r = 0; r < runs + 1; r++) {
    for (const c of live) {
      const st = stageCall(c.ex, c.ex.memory, job, 1);
      const t0 = performance.now();
      c.ex.sdpa_run(st.plan, st.workspaces[0], st.ctl, st.ctl + 4, 1 << 30);
      if (r > 0) c.ts.push(performance.now() - t0);
      c.ex.sdpa_release(st.mark);
    }
  }
  return live.map((c) => ({ label: c.label, ms: Math.min(...c.ts), all: c.ts.map((t) => Math.round(t)).join(" ") }));
}

let results;
if (args.includes('--browser')) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const abi = readFileSync(join(ROOT, 'dist/backends/flash/wasm/abi.js'), 'utf8').replace(/^export /gm, '');
    console.log(`# ${await browser.version()}`);
    results = await page.evaluate(
      ({ abi, fn, configs, S, runs }) => {
        const stageCall = new Function(`${abi}\nreturn stageCall;`)();
        return new Function(`return (${fn})`)()(configs, S, runs, stageCall);
      },
      { abi, fn: probe.toString(), configs, S, runs },
    );
  } finally {
    await browser.close();
  }
} else {
  const { stageCall } = await import('../../dist/backends/flash/wasm/abi.js');
  results = await probe(configs, S, runs, stageCall);
}
for (const r of results) console.log(`${r.label}: best ${r.ms.toFixed(1)} ms, ${((4 * 8 * S * S * 64) / r.ms / 1e6).toFixed(1)} GFLOP/s (runs ms: ${r.all})`);
