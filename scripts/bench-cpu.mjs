#!/usr/bin/env node
// CPU benchmark, one Node process: FLASH_ATTENTION (cpu, the native kernel) against onnxruntime-node
// on the same shapes. Uses the built dist/ (npx tsc -p tsconfig.json) and the built addon.
//   ORT non-causal: com.microsoft.MultiHeadAttention, fp32, inputs [B, S, H·D], num_heads = H.
//   ORT causal:     ONNX opset-23 Attention, is_causal = 1, fp32, inputs [B, H, S, D].
// bf16/fp16 flash rows are compared with the fp32 ORT row of the same shape (ORT's CPU attention
// has no bf16/fp16 kernels worth comparing). GFLOP/s = 4·B·H·S·L·D / t, causal counts half.
// Median of --runs timed calls after --warmup untimed ones.
// Prefill rows also print the machine's measured fp32 FMA peak for the ISA of the kernel that ran
// (csrc/bench/fma_peak: register-only FMA chains, ymm for avx2, zmm for avx512/amx; 1 and
// --threads threads, measured in this run before and after the rows, best of both) and each row's
// % of it at --threads threads.
// Usage: node scripts/bench-cpu.mjs [--quick] [--threads 2] [--d 64,128] [--sizes 512,1024,2048,4096]
//        [--dtypes f32,bf16,f16] [--causal 0,1] [--runs 5] [--warmup 2] [--no-ort] [--markdown]
//        [--isa avx2|avx512|amx|scalar]   (pins FLASH (cpu) to that ISA's kernels: SDPA_CPU_ISA)
//        [--interleave]   (ORT and flash calls alternate within each shape: ratios robust to load drift)
// --decode: the decode benchmark (one query per head over a long KV cache) instead: bench-cpu-decode.mjs.
if (process.argv.includes('--decode')) {
  await import('./bench-cpu-decode.mjs');
}
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const has = (n) => args.includes(n);
const quick = has('--quick');
const threads = Number(opt('--threads', '2'));
// The native kernel reads SDPA_NUM_THREADS on every call; set before the first one.
process.env.SDPA_NUM_THREADS = String(threads);
const dims = opt('--d', quick ? '64' : '64,128').split(',').map(Number);
const sizes = opt('--sizes', quick ? '512,1024' : '512,1024,2048,4096').split(',').map(Number);
const dtypes = opt('--dtypes', 'f32,bf16,f16').split(',');
const causals = opt('--causal', '0,1').split(',').map((x) => x === '1');
const runs = Number(opt('--runs', quick ? '3' : '5'));
const warmup = Number(opt('--warmup', '2'));
const useOrt = !has('--no-ort');
const markdown = has('--markdown');
// --interleave: per shape, ORT and every dtype's flash call take turns, one timed call each per
// round, so a neighbour's burst on a shared machine slows both sides of a ratio alike (the default
// times each side's calls back to back).
const interleave = has('--interleave');
const B = 1, H = 8;
// SDPA_CPU_ISA is read once, at the first dispatch: set it before the library loads.
if (opt('--isa', '')) process.env.SDPA_CPU_ISA = opt('--isa', '');

// fp32 FMA peak (GFLOP/s) of this machine for an ISA's vector width, by thread count.
const root = fileURLToPath(new URL('..', import.meta.url));
const peakBin = `${root}build/csrc/fma_peak`;
function fmaPeak(isa) {
  const vec = isa === 'avx512' || isa === 'amx' ? 'avx512' : isa === 'scalar' ? null : 'avx2';
  if (!vec) return null;
  try {
    if (!existsSync(peakBin)) execFileSync('make', ['-s', '-C', `${root}csrc`, 'fma_peak'], { stdio: 'ignore' });
    const out = execFileSync(peakBin, ['--isa', vec, '--threads', [...new Set([1, threads])].join(','), '--ms', '500'], { encoding: 'utf8' });
    const peak = { vec };
    for (const m of out.matchAll(/threads=(\d+) gflops=([\d.]+)/g)) peak[Number(m[1])] = Number(m[2]);
    return peak;
  } catch (e) {
    console.error(`# fma_peak failed (${String(e?.message ?? e).split('\n')[0]}): no % of peak`);
    return null;
  }
}
const peaks = new Map();  // isa → { vec, 1: GFLOP/s, [threads]: GFLOP/s }
const isaOf = (kernel) => kernel?.split('_')[0] ?? 'unknown';

const lib = await import('../dist/src/index.js');
const { tensor, sdpa, withBackends, SDPBackend, capabilities, lastDispatch } = lib;
const caps = await capabilities();
const flashCpu = caps.backends.find((b) => b.backend === SDPBackend.FLASH_ATTENTION && b.device === 'cpu');
if (!flashCpu?.available) {
  console.error('FLASH_ATTENTION (cpu) is not available:', flashCpu?.reason ?? 'not registered');
  process.exit(1);
}

let ort = null, onnx = null;
if (useOrt) {
  ort = (await import('onnxruntime-node')).default ?? (await import('onnxruntime-node'));
  const onnxProto = (await import('onnx-proto')).default;
  onnx = onnxProto.onnx;
}

let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const randF32 = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd(); return a; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function timeIt(fn) {
  for (let i = 0; i < warmup; i++) await fn();
  const ts = [];
  for (let i = 0; i < runs; i++) { const t0 = performance.now(); await fn(); ts.push(performance.now() - t0); }
  return median(ts);
}

// ---- ONNX models (symbolic batch / sequence dims, so one session per (D, causal)) ----
const F = () => onnx.TensorProto.DataType.FLOAT;
function valueInfo(name, dimsSpec) {
  return {
    name,
    type: { tensorType: { elemType: F(), shape: { dim: dimsSpec.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}
function modelBytes(graph, opsets, irVersion) {
  const model = onnx.ModelProto.create({
    irVersion,
    producerName: 'sdpa-dispatch bench-cpu',
    opsetImport: opsets.map(([domain, version]) => ({ domain, version })),
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
function mhaModel(d) {
  const hd = H * d;
  const graph = {
    name: 'mha',
    node: [{
      opType: 'MultiHeadAttention', domain: 'com.microsoft', input: ['q', 'k', 'v'], output: ['y'],
      attribute: [{ name: 'num_heads', type: onnx.AttributeProto.AttributeType.INT, i: H }],
    }],
    input: [valueInfo('q', ['B', 'S', hd]), valueInfo('k', ['B', 'L', hd]), valueInfo('v', ['B', 'L', hd])],
    output: [valueInfo('y', ['B', 'S', hd])],
  };
  return modelBytes(graph, [['', 17], ['com.microsoft', 1]], 8);
}
function attentionModel(d, causal) {
  const graph = {
    name: 'attention',
    node: [{
      opType: 'Attention', domain: '', input: ['q', 'k', 'v'], output: ['y'],
      attribute: [{ name: 'is_causal', type: onnx.AttributeProto.AttributeType.INT, i: causal ? 1 : 0 }],
    }],
    input: [valueInfo('q', ['B', H, 'S', d]), valueInfo('k', ['B', H, 'L', d]), valueInfo('v', ['B', H, 'L', d])],
    output: [valueInfo('y', ['B', H, 'S', d])],
  };
  return modelBytes(graph, [['', 23]], 11);
}
const sessions = new Map();
async function ortSession(kind, d) {
  const key = `${kind}:${d}`;
  if (!sessions.has(key)) {
    const bytes = kind === 'mha' ? mhaModel(d) : attentionModel(d, true);
    sessions.set(key, await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
    }));
  }
  return sessions.get(key);
}

const DT = { f32: 'float32', bf16: 'bfloat16', f16: 'float16' };
// How long onnxruntime-node's spinning intra-op threads are given to go to sleep after an ORT turn
// (the decode benchmark's figure).
const ORT_SETTLE_MS = 300;
const rows = [];
const ortCache = new Map();  // `${d}:${s}:${causal}` → { ms, gflops } or { error }
console.error(`# ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} logical CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, threads ${threads}`);
for (const d of dims) {
  for (const s of sizes) {
    const n = B * H * s * d;
    const qf = randF32(n), kf = randF32(n), vf = randF32(n);
    for (const causal of causals) {
      const flops = 4 * B * H * s * s * d * (causal ? 0.5 : 1);
      // ORT (fp32) once per shape
      const okey = `${d}:${s}:${causal}`;
      let ortRun = null;
      if (useOrt && !ortCache.has(okey)) {
        try {
          let feeds;
          const sess = await ortSession(causal ? 'attn' : 'mha', d);
          if (causal) {
            feeds = { q: new ort.Tensor('float32', qf, [B, H, s, d]), k: new ort.Tensor('float32', kf, [B, H, s, d]), v: new ort.Tensor('float32', vf, [B, H, s, d]) };
          } else {
            // [B, H, S, D] → [B, S, H·D]: same values, MHA's layout
            const toBSHD = (x) => { const y = new Float32Array(n); for (let h = 0; h < H; h++) for (let i = 0; i < s; i++) y.set(x.subarray((h * s + i) * d, (h * s + i + 1) * d), (i * H + h) * d); return y; };
            feeds = { q: new ort.Tensor('float32', toBSHD(qf), [B, s, H * d]), k: new ort.Tensor('float32', toBSHD(kf), [B, s, H * d]), v: new ort.Tensor('float32', toBSHD(vf), [B, s, H * d]) };
          }
          const ms = interleave ? NaN : await timeIt(() => sess.run(feeds));
          if (interleave) ortRun = () => sess.run(feeds);
          else await new Promise((r) => setTimeout(r, ORT_SETTLE_MS));
          ortCache.set(okey, { ms, gflops: flops / ms / 1e6, op: causal ? 'Attention(is_causal)' : 'MHA' });
        } catch (e) {
          ortCache.set(okey, { error: String(e?.message ?? e).split('\n')[0].slice(0, 120) });
        }
      }
      const calls = new Map(dtypes.map((dt) => {
        const q = tensor.fromFloat32(qf, [B, H, s, d], DT[dt]);
        const k = tensor.fromFloat32(kf, [B, H, s, d], DT[dt]);
        const v = tensor.fromFloat32(vf, [B, H, s, d], DT[dt]);
        return [dt, () => withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, k, v, { isCausal: causal, device: 'cpu' }))];
      }));
      const timed = new Map();  // dt → { ms, rec } (interleaved: measured here, before the rows)
      if (interleave) {
        const turns = [...(ortRun ? [['ort', ortRun]] : []), ...calls];
        const ts = new Map(turns.map(([key]) => [key, []]));
        const recs = new Map();
        for (let i = 0; i < warmup + runs; i++) {
          for (const [key, fn] of turns) {
            const t0 = performance.now();
            await fn();
            if (i >= warmup) ts.get(key).push(performance.now() - t0);
            if (key !== 'ort') recs.set(key, lastDispatch?.());
            // onnxruntime-node's intra-op threads keep spinning for a while after a run; the flash
            // turn that followed it shared the two cores with them (fp32, the first turn after ORT,
            // ran 13% below fp16/bf16 here while the C++ bench has them equal). Let them sleep first.
            else await new Promise((r) => setTimeout(r, ORT_SETTLE_MS));
          }
        }
        if (ortRun) { const o = ortCache.get(okey); o.ms = median(ts.get('ort')); o.gflops = flops / o.ms / 1e6; }
        for (const dt of dtypes) timed.set(dt, { ms: median(ts.get(dt)), rec: recs.get(dt) });
      }
      for (const dt of dtypes) {
        const call = calls.get(dt);
        const ms = interleave ? timed.get(dt).ms : await timeIt(call);
        const rec = interleave ? timed.get(dt).rec : lastDispatch?.();
        const gflops = flops / ms / 1e6;
        const kernel = rec?.kernel ?? '?';
        const isa = isaOf(kernel);
        if (!peaks.has(isa)) peaks.set(isa, fmaPeak(isa));
        const o = ortCache.get(okey);
        const row = {
          dtype: dt, d, s, causal: causal ? 1 : 0, flashMs: ms, flashGflops: gflops, kernel, isa,
          allocMiB: rec?.allocatedBytes != null ? rec.allocatedBytes / 2 ** 20 : null,
          ortOp: o?.op ?? '-', ortMs: o?.ms ?? null, ortGflops: o?.gflops ?? null,
          ratio: o?.gflops ? gflops / o.gflops : null, ortError: o?.error,
        };
        rows.push(row);
        if (!markdown) {
          console.log(`${dt.padEnd(4)} D=${String(d).padStart(3)} S=L=${String(s).padStart(4)} causal=${row.causal}  flash ${kernel} ${ms.toFixed(2).padStart(8)} ms ${gflops.toFixed(1).padStart(7)} GFLOP/s` +
            (o ? (o.error ? `  ORT error: ${o.error}` : `  | ORT ${o.op} ${o.ms.toFixed(2).padStart(8)} ms ${o.gflops.toFixed(1).padStart(7)} GFLOP/s  flash/ORT ${row.ratio.toFixed(2)}`) : ''));
        }
      }
    }
  }
}
// The peak again after the rows (neighbours on a shared machine only ever lower it): best of both.
for (const [isa, before] of peaks) {
  if (!before) continue;
  const after = fmaPeak(isa);
  for (const t of [1, threads]) if (after?.[t] > before[t]) before[t] = after[t];
  console.error(`# FMA peak (${before.vec} fp32, measured in this run, best of before/after): 1 thread ${before[1]} GFLOP/s, ${threads} threads ${before[threads]} GFLOP/s`);
}
const pctOf = (r) => { const p = peaks.get(r.isa)?.[threads]; return p ? `${(100 * r.flashGflops / p).toFixed(0)}%` : '-'; };
if (markdown) {
  console.log('| dtype | D | S=L | causal | kernel | flash ms | flash GFLOP/s | % FMA peak | ORT op (fp32) | ORT ms | ORT GFLOP/s | flash/ORT |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.dtype} | ${r.d} | ${r.s} | ${r.causal} | ${r.kernel} | ${r.flashMs.toFixed(2)} | ${r.flashGflops.toFixed(1)} | ${pctOf(r)} | ${r.ortOp} | ${r.ortMs?.toFixed(2) ?? '-'} | ${r.ortGflops?.toFixed(1) ?? (r.ortError ? 'error' : '-')} | ${r.ratio?.toFixed(2) ?? '-'} |`);
  }
} else {
  for (const r of rows) if (peaks.get(r.isa)?.[threads]) console.log(`${r.dtype} D=${r.d} S=L=${r.s} causal=${r.causal} ${r.kernel}: ${pctOf(r)} of the ${threads}-thread FMA peak (peak: best of before/after)`);
}
console.error(`# load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
