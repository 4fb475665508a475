/**
 * Side-by-side timing of ONNXRUNTIME (cpu) and EFFICIENT_ATTENTION (cpu), and of the two ORT graphs
 * (opset-23 Attention vs com.microsoft.MultiHeadAttention), in one process. Not a test (docs/design.md §7).
 * Run: npx tsc -p tsconfig.json --outDir /tmp/sdpa-build && ln -sfn "$PWD/node_modules" /tmp/sdpa-build/node_modules
 *      && node /tmp/sdpa-build/backends/onnxruntime/bench.js [S ...]
 */
import { sdpa, tensor, withBackends, SDPBackend, capabilities } from '../../src/index.js';
import { buildParams } from '../../src/params.js';
import { runOrtAttention } from './engine.js';
import { loadOrt } from './runtime.js';

async function time(fn: () => Promise<unknown>, reps: number): Promise<number> {
  await fn(); // warm-up: session creation, JIT
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - t0) / reps;
}

const seqs = process.argv.slice(2).map(Number).filter((x) => x > 0);
const H = 8, D = 64;
await capabilities();
const ort = await loadOrt('onnxruntime-node');
const ctx = { recordAllocation: () => undefined };
console.log('S\tcausal\tORT Attention ms\tORT MHA ms\tORT GQA-op ms\tONNXRUNTIME part ms\tEFFICIENT ms\tratio EFF/ORT part\tORT part GFLOP/s\tEFF GFLOP/s');
for (const S of seqs.length ? seqs : [512, 1024, 2048]) {
  const mk = (seed: number) => tensor(Float32Array.from({ length: H * S * D }, (_, i) => Math.sin(i * 0.37 + seed)), [1, H, S, D]);
  const q = mk(1), k = mk(2), v = mk(3);
  for (const isCausal of [false, true]) {
    const p = buildParams('bench', q, k, v, { isCausal });
    const base = { ort, ep: 'cpu', label: 'bench', causalAttrOnlySquare: false, boolMaskAsFloat: false, zeroFullyMaskedRows: false };
    const reps = S >= 2048 ? 2 : 4;
    const att = await time(() => runOrtAttention(p, ctx, { ...base, op: 'Attention' }), reps);
    const mha = await time(() => runOrtAttention(p, ctx, { ...base, op: 'MultiHeadAttention' }), reps);
    const gqa = isCausal ? (await time(() => runOrtAttention(p, ctx, { ...base, op: 'GroupQueryAttention' }), reps)).toFixed(1) : '-';
    const part = await time(() => withBackends([SDPBackend.ONNXRUNTIME], () => sdpa(q, k, v, { isCausal })), reps);
    const eff = await time(() => withBackends([SDPBackend.EFFICIENT_ATTENTION], () => sdpa(q, k, v, { isCausal })), 1);
    const flops = 4 * H * S * S * D * (isCausal ? 0.5 : 1);
    console.log([S, isCausal, att.toFixed(1), mha.toFixed(1), gqa, part.toFixed(1), eff.toFixed(0), (eff / part).toFixed(1), (flops / part / 1e6).toFixed(1), (flops / eff / 1e6).toFixed(2)].join('\t'));
  }
}
process.exit(0);
