#!/usr/bin/env node
// Decode benchmark, one Node process: FLASH_ATTENTION (cpu: the decode kernel the dispatcher picks)
// against onnxruntime-node com.microsoft.GroupQueryAttention on the same shapes, and both against
// the machine's streaming-read bandwidth measured in the same run (csrc/bench/stream_read: the same
// thread count, 512 MiB, before and after the rows, best of both; neighbours only ever lower it).
// Shapes: B=1, H=32 query heads over Hkv=8 kv heads, D=128, S=1 query, L keys (the KV cache).
// K/V bytes per second = 2·Hkv·L·D·bytes / t (each K/V byte is read once per call).
// FLASH's K/V are rotated over copies totalling >= 256 MiB so each call reads DRAM, not the L3 the
// previous call filled (an LLM's other layers evict a layer's cache between its tokens). ORT runs a
// decode step: past_key/past_value [1, Hkv, L-1, D] plus the new token's key/value; it returns the
// present K/V (its API copies the cache into them: that copy is part of what an ORT decode costs).
// bf16 FLASH rows are compared with ORT fp32 (ORT's CPU GQA has no bf16), fp16 with ORT fp16.
// Median of --runs timed calls after --warmup untimed ones.
// Usage: node scripts/bench-cpu-decode.mjs [--threads 2] [--l 4096,8192,16384,32768] [--dtypes f32,f16,bf16]
//        [--s 1] [--runs 20] [--warmup 3] [--no-ort] [--markdown]   (also: node scripts/bench-cpu.mjs --decode ...)
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2).filter((a) => a !== '--decode');
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const has = (n) => args.includes(n);
const threads = Number(opt('--threads', '2'));
process.env.SDPA_NUM_THREADS = String(threads); // read by the addon on every call
const lens = opt('--l', '4096,8192,16384,32768').split(',').map(Number);
const dtypes = opt('--dtypes', 'f32,f16,bf16').split(',');
const S = Number(opt('--s', '1'));
const runs = Number(opt('--runs', '20'));
const warmup = Number(opt('--warmup', '3'));
const useOrt = !has('--no-ort');
const markdown = has('--markdown');
const B = 1, H = 32, HKV = 8, D = 128;
/** Idle time before each flash row when ORT runs in the same process (see the row loop). */
const ORT_SETTLE_MS = 300;

const root = fileURLToPath(new URL('..', import.meta.url));
const streamBin = `${root}build/csrc/stream_read`;
function streamRead() {
  try {
    if (!existsSync(streamBin)) execFileSync('make', ['-s', '-C', `${root}csrc`, `../build/csrc/stream_read`], { stdio: 'ignore' });
    return JSON.parse(execFileSync(streamBin, ['--threads', String(threads), '--mib', '512', '--passes', '5'], { encoding: 'utf8' })).gbPerS;
  } catch (e) {
    // No C++ compiler on the host (a GPU bundle): the rows still print, without the % of stream read.
    console.error(`# stream_read unavailable (${String(e?.message ?? e).split('\n')[0]}): no % of stream read`);
    return NaN;
  }
}

const lib = await import('../dist/src/index.js');
const { tensor, sdpa, withBackends, SDPBackend, capabilities, lastDispatch } = lib;
await capabilities();

let ort = null, onnx = null;
if (useOrt) {
  try {
    ort = (await import('onnxruntime-node')).default ?? (await import('onnxruntime-node'));
    onnx = (await import('onnx-proto')).default.onnx;
  } catch (e) {
    throw new Error(`onnxruntime-node / onnx-proto could not load (${String(e?.message ?? e).split('\n')[0]}); run with --no-ort for flash vs stream read only`);
  }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
async function timeIt(fn) {
  for (let i = 0; i < warmup; i++) await fn(i);
  const ts = [];
  for (let i = 0; i < runs; i++) { const t0 = performance.now(); await fn(i); ts.push(performance.now() - t0); }
  return { med: median(ts), best: Math.min(...ts) };
}

// ---- ORT GroupQueryAttention (decode step with a past cache) ----
function gqaModel(elem) {
  const T = onnx.TensorProto.DataType;
  const vi = (name, dims, t = elem) => ({ name, type: { tensorType: { elemType: t, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } });
  const I = onnx.AttributeProto.AttributeType.INT;
  const graph = {
    name: 'gqa',
    node: [{
      opType: 'GroupQueryAttention', domain: 'com.microsoft',
      input: ['q', 'k', 'v', 'past_k', 'past_v', 'seqlens_k', 'total_len'], output: ['y', 'present_k', 'present_v'],
      attribute: [{ name: 'num_heads', type: I, i: H }, { name: 'kv_num_heads', type: I, i: HKV }],
    }],
    input: [vi('q', ['B', 'S', H * D]), vi('k', ['B', 'S', HKV * D]), vi('v', ['B', 'S', HKV * D]),
      vi('past_k', ['B', HKV, 'P', D]), vi('past_v', ['B', HKV, 'P', D]), vi('seqlens_k', ['B'], T.INT32), vi('total_len', [1], T.INT32)],
    output: [vi('y', ['B', 'S', H * D]), vi('present_k', ['B', HKV, 'T', D]), vi('present_v', ['B', HKV, 'T', D])],
  };
  const model = onnx.ModelProto.create({ irVersion: 8, producerName: 'sdpa-dispatch bench-cpu-decode', opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }], graph });
  return onnx.ModelProto.encode(model).finish();
}
const sessions = new Map();
async function gqaSession(dt) {
  if (!sessions.has(dt)) {
    const elem = dt === 'f16' ? onnx.TensorProto.DataType.FLOAT16 : onnx.TensorProto.DataType.FLOAT;
    sessions.set(dt, await ort.InferenceSession.create(gqaModel(elem), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' }));
  }
  return sessions.get(dt);
}

let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const randF32 = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd(); return a; };
const DT = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };
const BYTES = { f32: 4, f16: 2, bf16: 2 };

console.error(`# ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} logical CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, threads ${threads}`);
const streamBefore = streamRead();
const rows = [];
const ortCache = new Map();
for (const L of lens) {
  const kvn = B * HKV * L * D;
  // One fp32 source per L; each dtype's copies are made from it (the copies differ only by rotation).
  const kf = randF32(kvn), vf = randF32(kvn), qf = randF32(B * H * S * D);
  for (const dt of dtypes) {
    const kvBytes = 2 * kvn * BYTES[dt];
    const copies = Math.max(1, Math.ceil((256 * 2 ** 20) / kvBytes));
    const q = tensor.fromFloat32(qf, [B, H, S, D], DT[dt]);
    const ks = [], vs = [];
    for (let c = 0; c < copies; c++) { ks.push(tensor.fromFloat32(kf, [B, HKV, L, D], DT[dt])); vs.push(tensor.fromFloat32(vf, [B, HKV, L, D], DT[dt])); }
    const call = (i) => withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, ks[i % copies], vs[i % copies], { enableGqa: true, device: 'cpu' }));
    // onnxruntime-node's intra-op threads keep spinning for a while after a run: timed right after
    // the previous row's ORT step, flash shared the two cores with them (f32 L=4096: 26–36% of the
    // stream read against 43–53% with --no-ort). A pause lets them go to sleep first.
    if (useOrt) await new Promise((r) => setTimeout(r, ORT_SETTLE_MS));
    const t = await timeIt(call);
    const kernel = lastDispatch?.()?.kernel ?? '?';
    const gbs = kvBytes / t.med / 1e6;
    // ORT: fp32 for f32 and bf16 rows, fp16 for f16 rows; once per (L, ORT dtype).
    const odt = dt === 'f16' ? 'f16' : 'f32';
    const okey = `${L}:${odt}`;
    if (useOrt && !ortCache.has(okey)) {
      try {
        const sess = await gqaSession(odt);
        const P = L - 1;
        const mk = (data, dims) => (odt === 'f16' ? new ort.Tensor('float16', tensor.fromFloat32(data, dims, 'float16').data, dims) : new ort.Tensor('float32', data, dims));
        const pastOf = (x) => { const y = new Float32Array(B * HKV * P * D); for (let h = 0; h < HKV; h++) y.set(x.subarray(h * L * D, (h * L + P) * D), h * P * D); return y; };
        const lastOf = (x) => { const y = new Float32Array(B * HKV * D); for (let h = 0; h < HKV; h++) y.set(x.subarray((h * L + P) * D, (h * L + L) * D), h * D); return y; };
        const feeds = {
          q: mk(qf, [B, S, H * D]), k: mk(lastOf(kf), [B, 1, HKV * D]), v: mk(lastOf(vf), [B, 1, HKV * D]),
          past_k: mk(pastOf(kf), [B, HKV, P, D]), past_v: mk(pastOf(vf), [B, HKV, P, D]),
          seqlens_k: new ort.Tensor('int32', Int32Array.from([L - 1]), [B]), total_len: new ort.Tensor('int32', Int32Array.from([L]), [1]),
        };
        if (S !== 1) throw new Error('the ORT decode step is built for S = 1');
        const ot = await timeIt(() => sess.run(feeds));
        ortCache.set(okey, { ms: ot.med, gbs: (2 * kvn * BYTES[odt]) / ot.med / 1e6, op: `GQA ${odt}` });
      } catch (e) {
        ortCache.set(okey, { error: String(e?.message ?? e).split('\n')[0].slice(0, 140) });
      }
    }
    const o = ortCache.get(okey);
    const row = { dtype: dt, L, kernel, copies, ms: t.med, best: t.best, gbs, ort: o, speedup: o?.ms ? o.ms / t.med : null };
    rows.push(row);
    if (!markdown) {
      console.log(`${dt.padEnd(4)} L=${String(L).padStart(5)} S=${S} flash ${kernel} ${t.med.toFixed(3).padStart(8)} ms (best ${t.best.toFixed(3)}) ${gbs.toFixed(2).padStart(6)} GB/s` +
        (o ? (o.error ? `  | ORT error: ${o.error}` : `  | ORT ${o.op} ${o.ms.toFixed(3).padStart(8)} ms ${o.gbs.toFixed(2).padStart(6)} GB/s  flash/ORT ${row.speedup.toFixed(1)}x`) : ''));
    }
  }
}
// The fixed cost of one call through sdpa() (dispatch, addon, thread wake-up) at a tiny cache.
const tq = tensor.fromFloat32(randF32(H * D), [1, H, 1, D], 'float32'), tk = tensor.fromFloat32(randF32(HKV * 16 * D), [1, HKV, 16, D], 'float32');
const tiny = await timeIt(() => withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(tq, tk, tk, { enableGqa: true, device: 'cpu' })));
const stream = Math.max(streamBefore, streamRead());
console.log(`stream read (${threads} threads, 512 MiB): ${stream.toFixed(2)} GB/s (before ${streamBefore.toFixed(2)}); one sdpa() call at L=16: ${(tiny.med * 1000).toFixed(0)} µs median`);
const md = ['| dtype | L | kernel | flash ms | K/V GB/s | % of stream read | ORT op | ORT ms | ORT GB/s | flash/ORT |', '|---|---:|---|---:|---:|---:|---|---:|---:|---:|'];
for (const r of rows) {
  const pct = (100 * r.gbs) / stream;
  const o = r.ort;
  md.push(`| ${r.dtype} | ${r.L} | ${r.kernel} | ${r.ms.toFixed(3)} | ${r.gbs.toFixed(2)} | ${pct.toFixed(0)}% | ${o?.op ?? '-'} | ${o?.ms ? o.ms.toFixed(3) : o?.error ? 'error' : '-'} | ${o?.gbs ? o.gbs.toFixed(2) : '-'} | ${r.speedup ? `${r.speedup.toFixed(1)}x` : '-'} |`);
  if (!markdown) console.log(`  ${r.dtype} L=${r.L}: ${pct.toFixed(0)}% of stream read${r.speedup ? `, ${r.speedup.toFixed(1)}x ORT` : ''}`);
}
if (markdown) console.log(md.join('\n'));
else console.log(md.join('\n'));
process.exit(0);
