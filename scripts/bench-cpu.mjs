#!/usr/bin/env node
// CPU benchmark, one Node process: FLASH_ATTENTION (cpu, the native kernel) against onnxruntime-node
// on the same shapes. Uses the built dist/ (npx tsc -p tsconfig.json) and the built addon.
//   ORT non-causal: com.microsoft.MultiHeadAttention, fp32, inputs [B, S, H·D], num_heads = H.
//   ORT causal:     ONNX opset-23 Attention, is_causal = 1, fp32, inputs [B, H, S, D].
// bf16/fp16 flash rows are compared with the fp32 ORT row of the same shape (ORT's CPU attention
// has no bf16/fp16 kernels worth comparing). GFLOP/s = 4·B·H·S·L·D / t, causal counts half.
// Median of --runs timed calls after --warmup untimed ones.
// Usage: node scripts/bench-cpu.mjs [--quick] [--threads 2] [--d 64,128] [--sizes 512,1024,2048,4096]
//        [--dtypes f32,bf16,f16] [--causal 0,1] [--runs 5] [--warmup 2] [--no-ort] [--markdown]
import { performance } from 'node:perf_hooks';
import os from 'node:os';

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
const B = 1, H = 8;

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
          const ms = await timeIt(() => sess.run(feeds));
          ortCache.set(okey, { ms, gflops: flops / ms / 1e6, op: causal ? 'Attention(is_causal)' : 'MHA' });
        } catch (e) {
          ortCache.set(okey, { error: String(e?.message ?? e).split('\n')[0].slice(0, 120) });
        }
      }
      for (const dt of dtypes) {
        const q = tensor.fromFloat32(qf, [B, H, s, d], DT[dt]);
        const k = tensor.fromFloat32(kf, [B, H, s, d], DT[dt]);
        const v = tensor.fromFloat32(vf, [B, H, s, d], DT[dt]);
        const call = () => withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, k, v, { isCausal: causal, device: 'cpu' }));
        const ms = await timeIt(call);
        const rec = lastDispatch?.();
        const gflops = flops / ms / 1e6;
        const o = ortCache.get(okey);
        const row = {
          dtype: dt, d, s, causal: causal ? 1 : 0, flashMs: ms, flashGflops: gflops,
          allocMiB: rec?.allocatedBytes != null ? rec.allocatedBytes / 2 ** 20 : null,
          ortOp: o?.op ?? '-', ortMs: o?.ms ?? null, ortGflops: o?.gflops ?? null,
          ratio: o?.gflops ? gflops / o.gflops : null, ortError: o?.error,
        };
        rows.push(row);
        if (!markdown) {
          console.log(`${dt.padEnd(4)} D=${String(d).padStart(3)} S=L=${String(s).padStart(4)} causal=${row.causal}  flash ${ms.toFixed(2).padStart(8)} ms ${gflops.toFixed(1).padStart(7)} GFLOP/s` +
            (o ? (o.error ? `  ORT error: ${o.error}` : `  | ORT ${o.op} ${o.ms.toFixed(2).padStart(8)} ms ${o.gflops.toFixed(1).padStart(7)} GFLOP/s  flash/ORT ${row.ratio.toFixed(2)}`) : ''));
        }
      }
    }
  }
}
if (markdown) {
  console.log('| dtype | D | S=L | causal | flash ms | flash GFLOP/s | ORT op (fp32) | ORT ms | ORT GFLOP/s | flash/ORT |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.dtype} | ${r.d} | ${r.s} | ${r.causal} | ${r.flashMs.toFixed(2)} | ${r.flashGflops.toFixed(1)} | ${r.ortOp} | ${r.ortMs?.toFixed(2) ?? '-'} | ${r.ortGflops?.toFixed(1) ?? (r.ortError ? 'error' : '-')} | ${r.ratio?.toFixed(2) ?? '-'} |`);
  }
}
console.error(`# load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
