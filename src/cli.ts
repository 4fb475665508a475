#!/usr/bin/env node
/**
 * The `sdpa-dispatch` command: `demo` (what `npm start` runs), `explain` (the dispatch report for
 * shapes given as flags), `doctor` (what this machine can run and why not), `bench` (every
 * eligible backend side by side over sequence lengths; JSON + HTML report), `calibrate` (time every
 * eligible kernel per shape class and print the ranking dispatch learnt).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { capabilities, causalLowerRight, explainDispatch, registeredBackends, sdpa, setDispatchLogger, tensor, withBackends, type FloatDType, type SdpaOptions, type Tensor, type Device } from './index.js';
import { calibrate, saveCalibration, type CalibrationResult, type CalibrationShape } from './index.js';
import { formatMs } from './dispatch/calibration.js';
import { buildParams } from './params.js';
import { referenceAttention as mathReference } from './builtins.js';
import { DEFAULT_BENCH_OPTIONS, QUICK_BENCH_OPTIONS, runBench } from './bench/run.js';
import { describeRun, formatMarkdownTable } from './bench/format.js';
import { renderHtml } from './bench/html.js';
import { progressBar } from './bench/progress.js';
import type { BenchOptions, BenchResult } from './bench/types.js';

const USAGE = `sdpa-dispatch — scaled dot-product attention with explainable dispatch

Usage:
  sdpa-dispatch demo                      compute one problem on every available backend, print the dispatch log
  sdpa-dispatch explain [flags]           print the dispatch report for a call (runs nothing)
  sdpa-dispatch doctor                    what this machine can run (engines, ISA, adapter) and why not
  sdpa-dispatch bench [flags]             time every eligible backend over S; writes bench.json + bench.html
  sdpa-dispatch calibrate [flags]         time every eligible backend kernel per shape class; print the ranking learnt
  sdpa-dispatch <command> --help          the command's flags
`;

/** Each command's own help (`sdpa-dispatch <command> --help`). */
const COMMAND_HELP: Record<string, string> = {
  demo: `Usage: sdpa-dispatch demo

Computes one small causal attention problem (float32 and float16) on every backend that is available
here, on cpu and (when an adapter is found) webgpu, and prints each result's max |diff| against the
float64 reference, the explainDispatch report and the dispatch log. No flags.
`,
  explain: `Usage: sdpa-dispatch explain [flags]

Prints explainDispatch()'s report for a call with the given shapes (zero-filled tensors; runs
nothing). Every engine is probed first, so each reason is final.

  --q BxHxSxE        query shape (default 1x8x1024x64)
  --kv BxHxLxE       key/value shape (default: as --q)
  --ev N             value head dim (default E)
  --dtype T          float32 | float16 | bfloat16 (default float32)
  --causal           upper-left causal          --lower-right   causal lower-right bias
  --mask bool|float  a dense [S, L] mask        --dropout P     dropout probability
  --scale X          custom scale               --device D      cpu | webgpu
`,
  doctor: `Usage: sdpa-dispatch doctor

Probes every engine (native addon, WebGPU adapter, ONNX Runtime) and prints what this machine can
run: each backend part, available or not with the reason, and its engine facts (ISA, adapter,
ONNX Runtime engine). No flags.
`,
  bench: `Usage: sdpa-dispatch bench [flags]

Times every eligible backend over S (q = k = v = [B, H, S, D], S = L) against the float64 MATH
reference; prints a table and writes bench.json + bench.html.

  --b N  --h N  --d N  batch, heads, head dim (default 1, 8, 64)
  --dtype T          float32 | float16 | bfloat16 (default float32)
  --causal           upper-left causal (FLOPs count half)
  --device D         cpu | webgpu (default cpu)
  --seqs LIST        comma-separated S values (default 512,1024,2048,4096)
  --runs N           timed runs per cell after a warm-up; the median is reported (default 5)
  --budget SEC       wall-time budget per cell: slower cells get fewer runs, and a backend whose
                     next call is extrapolated past it is not run (its row says so) (default 30)
  --ref-rows N       query rows per head of the float64 reference when the full one is too big (default 32)
  --out DIR          where bench.json and bench.html go (default bench-results/)
  --quick            tiny preset for smoke tests: H=2 D=32 S=64,128,256, 2 runs
`,
  calibrate: `Usage: sdpa-dispatch calibrate [flags]

Times every eligible backend kernel on this machine for a few shape classes (calibrate()), draws a
progress bar on stderr and prints the ranking it learnt, per class, fastest first.

  --device D         cpu | webgpu | cpu,webgpu (default: every device with an available backend)
  --budget-ms N      wall-time budget of the whole run in ms (default 20000)
  --out FILE         write the table as JSON; load it with SDPA_CALIBRATION=FILE or loadCalibration()
  --quick            two small shapes (S=L=64 and decode S=1, L=256), 5 timed runs per kernel
`,
};

/** The whole help: usage and every command's flags. */
const HELP = [USAGE, ...Object.values(COMMAND_HELP)].join('\n');

/**
 * Long reasons are printed once: a later mention points back to the first (the demo and doctor
 * would otherwise repeat the same sentence for every dtype, device or part).
 */
function reasonOnce(): (reason: string, where: string) => string {
  const seen = new Map<string, string>();
  return (reason, where) => {
    const first = seen.get(reason);
    if (first !== undefined) return `(the reason given for ${first} above)`;
    seen.set(reason, where);
    return reason;
  };
}

function parseShape(flag: string, s: string): number[] {
  const dims = s.split(/[x,×]/).map(Number);
  if (dims.length < 2 || dims.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`--${flag}: expected dims like 1x8x1024x64, got "${s}"`);
  return dims;
}

function zeros(shape: number[], dtype: FloatDType): Tensor {
  return tensor.fromFloat32(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, dtype);
}

function seeded(shape: number[], dtype: FloatDType, seed: number): Tensor {
  let a = seed;
  const n = shape.reduce((x, y) => x * y, 1);
  const values = Float32Array.from({ length: n }, () => {
    a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0;
    return ((a >>> 0) / 4294967296 - 0.5) * 2;
  });
  return tensor.fromFloat32(values, shape, dtype);
}

async function explain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      q: { type: 'string', default: '1x8x1024x64' },
      kv: { type: 'string' },
      ev: { type: 'string' },
      dtype: { type: 'string', default: 'float32' },
      causal: { type: 'boolean', default: false },
      'lower-right': { type: 'boolean', default: false },
      mask: { type: 'string' },
      dropout: { type: 'string' },
      scale: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
    },
  });
  const dtype = values.dtype as FloatDType;
  const qs = parseShape('q', values.q!);
  const ks = values.kv ? parseShape('kv', values.kv) : [...qs];
  const vs = [...ks.slice(0, -1), values.ev ? Number(values.ev) : ks[ks.length - 1]];
  const S = qs[qs.length - 2];
  const L = ks[ks.length - 2];
  const opts: SdpaOptions = { device: values.device as Device };
  if (values.causal) opts.isCausal = true;
  if (values['lower-right']) opts.attnMask = causalLowerRight(S, L);
  if (values.mask === 'bool') opts.attnMask = tensor(new Uint8Array(S * L).fill(1), [S, L], 'bool');
  else if (values.mask === 'float') opts.attnMask = zeros([S, L], 'float32');
  else if (values.mask) throw new Error(`--mask: expected bool or float, got "${values.mask}"`);
  if (values.dropout) opts.dropoutP = Number(values.dropout);
  if (values.scale) opts.scale = Number(values.scale);
  if (qs.length >= 3 && ks.length >= 3 && qs[qs.length - 3] !== ks[ks.length - 3]) opts.enableGqa = true;
  // Probe every engine first, so that no reason in the report is "not probed yet".
  await capabilities();
  console.log(explainDispatch(zeros(qs, dtype), zeros(ks, dtype), zeros(vs, dtype), opts).toString());
}

/** `engine 1.30.0 (ep EP)` of an ONNXRUNTIME part's details, and why better engines are not used. */
function ortEngineLine(d: Record<string, unknown>): string | undefined {
  if (typeof d.engine !== 'string') return undefined;
  const versions = (d.versions ?? {}) as Record<string, string>;
  const version = versions[d.engine === 'onnxruntime-node' ? 'node' : 'web'] ?? versions.common;
  const ep = typeof d.executionProvider === 'string' ? ` (${d.executionProvider} EP)` : '';
  const notUsed = Array.isArray(d.notUsed) && d.notUsed.length ? `; not used: ${d.notUsed.join('; ')}` : '';
  return `${d.engine}${version ? ` ${version}` : ''}${ep}${notUsed}`;
}

async function doctor(argv: string[]): Promise<void> {
  parseArgs({ args: argv, options: {} });
  const caps = await capabilities();
  console.log(`runtime: ${caps.runtime.name} ${caps.runtime.version} ${caps.runtime.platform}/${caps.runtime.arch}, ${caps.cpuCores} cores`);
  const once = reasonOnce();
  // Facts shared by parts (the WebGPU adapter and its limits, in every webgpu part) print once.
  const printed = new Map<string, string>();
  for (const b of caps.backends) {
    const where = `${b.backend} (${b.device})`;
    console.log(`${b.available ? '✓' : '✗'} ${where}${b.available ? '' : `: ${once(b.reason ?? '', where)}`}`);
    if (b.backend === 'ONNXRUNTIME' && b.available) {
      const line = ortEngineLine(b.details);
      if (line) console.log(`    ONNX Runtime engine in use: ${line}`);
    }
    const shared: string[] = [];
    for (const [k, v] of Object.entries(b.details)) {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      const key = `${k}=${text}`;
      const first = printed.get(key);
      if (first !== undefined && text.length > 40) {
        shared.push(k);
        continue;
      }
      if (first === undefined) printed.set(key, where);
      console.log(`    ${k}: ${text}`);
    }
    if (shared.length) console.log(`    ${shared.join(', ')}: as for ${printed.get(`${shared[0]}=${JSON.stringify(b.details[shared[0]])}`) ?? 'above'}`);
    if (!b.available) continue;
    for (const kc of b.kernels) console.log(`    kernel ${kc.available ? '✓' : '✗'} ${kc.name}${kc.available ? `: ${kc.summary}` : `: ${once(kc.reason ?? '', `${where} kernel ${kc.name}`)}`}`);
    if (b.pinned) console.log(`    pinned by ${b.pinned.source} to ${b.pinned.kernels.join(', ')}`);
  }
  const env = Object.entries(caps.env.switches);
  if (env.length) console.log(`switches: ${env.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const p of caps.env.problems) console.log(`warning: ${p}`);
}

async function demo(argv: string[]): Promise<void> {
  parseArgs({ args: argv, options: {} });
  console.log('sdpa-dispatch demo: one causal attention problem on every available backend\n');
  const caps = await capabilities();
  const once = reasonOnce();
  for (const b of caps.backends) console.log(`  ${b.available ? '✓' : '✗'} ${b.backend} (${b.device})${b.available ? '' : ` — ${once(b.reason ?? '', `${b.backend} (${b.device})`)}`}`);
  const shapes: Record<Device, number[]> = { cpu: [1, 4, 128, 64], webgpu: [1, 2, 32, 32] };
  for (const device of ['cpu', 'webgpu'] as const) {
    if (!caps.backends.some((b) => b.device === device && b.available)) continue;
    const shape = shapes[device];
    for (const dtype of ['float32', 'float16'] as const) {
      const [q, k, v] = [1, 2, 3].map((s) => seeded(shape, dtype, s));
      const opts: SdpaOptions = { isCausal: true, device };
      const expected = mathReference(buildParams('demo', q, k, v, opts));
      console.log(`\n${device}, ${dtype}, q/k/v [${shape.join(', ')}], causal:`);
      for (const d of registeredBackends()) {
        const cand = explainDispatch(q, k, v, opts).candidates.find((c) => c.backend === d.name);
        if (!cand?.eligible) {
          console.log(`  ${d.name.padEnd(20)} skipped: ${cand ? once(cand.reasons[0] ?? '', `${d.name} (${device})`) : 'not registered'}`);
          continue;
        }
        const t0 = performance.now();
        const out = await withBackends([d.name], () => sdpa(q, k, v, opts));
        const ms = performance.now() - t0;
        const got = await out.toFloat32();
        let maxDiff = 0;
        for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - expected[i]));
        console.log(`  ${d.name.padEnd(20)} ${ms.toFixed(1).padStart(8)} ms   max |diff| vs float64 reference ${maxDiff.toExponential(2)}`);
        out.dispose();
      }
    }
  }
  const [q, k, v] = [1, 2, 3].map((s) => seeded([1, 8, 256, 64], 'float16', s));
  console.log('\nexplainDispatch(q, k, v, { isCausal: true }) for fp16 q [1, 8, 256, 64]:\n');
  console.log(explainDispatch(q, k, v, { isCausal: true }).toString());
  console.log('\ndispatch log of sdpa() with the default priority:');
  setDispatchLogger((line) => console.log(`  ${line}`));
  await sdpa(q, k, v, { isCausal: true });
  await sdpa(q, k, v, { attnMask: tensor(new Uint8Array(256 * 256).fill(1), [256, 256], 'bool') });
  setDispatchLogger(undefined);
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag}: expected a positive integer, got "${v}"`);
  return n;
}

async function bench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      b: { type: 'string' },
      h: { type: 'string' },
      d: { type: 'string' },
      dtype: { type: 'string' },
      causal: { type: 'boolean', default: false },
      device: { type: 'string' },
      seqs: { type: 'string' },
      runs: { type: 'string' },
      budget: { type: 'string' },
      'ref-rows': { type: 'string' },
      out: { type: 'string', default: 'bench-results' },
      quick: { type: 'boolean', default: false },
    },
  });
  // Explicit flags win over the --quick preset, which wins over the defaults.
  const o: BenchOptions = { ...DEFAULT_BENCH_OPTIONS, ...(values.quick ? QUICK_BENCH_OPTIONS : {}) };
  const dtype = values.dtype ?? o.dtype;
  if (!['float32', 'float16', 'bfloat16'].includes(dtype)) throw new Error(`--dtype: expected float32, float16 or bfloat16, got "${dtype}"`);
  const device = values.device ?? o.device;
  if (device !== 'cpu' && device !== 'webgpu') throw new Error(`--device: expected cpu or webgpu, got "${device}"`);
  const seqs = values.seqs ? values.seqs.split(',').map((x) => positiveInt('seqs', x.trim())!) : o.seqs;
  const budget = values.budget === undefined ? o.budgetSeconds : Number(values.budget);
  if (!(budget > 0)) throw new Error(`--budget: expected seconds > 0, got "${values.budget}"`);
  const options: BenchOptions = {
    ...o,
    batch: positiveInt('b', values.b) ?? o.batch,
    heads: positiveInt('h', values.h) ?? o.heads,
    headDim: positiveInt('d', values.d) ?? o.headDim,
    dtype: dtype as FloatDType,
    causal: values.causal ?? false,
    device,
    seqs: [...seqs].sort((a, b) => a - b),
    runs: positiveInt('runs', values.runs) ?? o.runs,
    budgetSeconds: budget,
    referenceRows: Math.max(2, positiveInt('ref-rows', values['ref-rows']) ?? o.referenceRows),
  };
  const command = `sdpa-dispatch bench ${argv.join(' ')}`.trim();
  console.log(`sdpa-dispatch bench: ${describeRun(options)}, S = ${options.seqs.join(', ')}`);
  const bar = progressBar();
  let result: BenchResult;
  try {
    result = await runBench(options, (p) => bar.update(p), command);
  } finally {
    bar.end();
  }
  console.log('');
  console.log(formatMarkdownTable(result));
  const dir = resolve(values.out!);
  mkdirSync(dir, { recursive: true });
  const jsonPath = join(dir, 'bench.json');
  const htmlPath = join(dir, 'bench.html');
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(htmlPath, renderHtml(result));
  console.log(`\nwrote ${jsonPath}\nwrote ${htmlPath}`);
}

async function calibrateCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { device: { type: 'string' }, 'budget-ms': { type: 'string' }, out: { type: 'string' }, quick: { type: 'boolean', default: false } },
  });
  const devices = values.device?.split(',').map((d) => d.trim());
  if (devices?.some((d) => d !== 'cpu' && d !== 'webgpu')) throw new Error(`--device: expected cpu, webgpu or cpu,webgpu, got "${values.device}"`);
  const budgetMs = values['budget-ms'] === undefined ? undefined : Number(values['budget-ms']);
  if (budgetMs !== undefined && !(budgetMs > 0)) throw new Error(`--budget-ms: expected milliseconds > 0, got "${values['budget-ms']}"`);
  const quick: CalibrationShape[] = [{ s: 64, l: 64, headDim: 32, heads: 2 }, { s: 1, l: 256, headDim: 32, heads: 2 }];
  console.log(`sdpa-dispatch calibrate: ${values.quick ? 'quick shapes' : 'default shapes'}, budget ${budgetMs ?? 20000} ms`);
  const bar = progressBar();
  let result: CalibrationResult;
  try {
    result = await calibrate({
      ...(devices ? { devices: devices as Device[] } : {}),
      ...(budgetMs !== undefined ? { budgetMs } : {}),
      ...(values.quick ? { shapes: quick, runs: 5 } : {}),
      onProgress: (p) => bar.update(p),
    });
  } finally {
    bar.end();
  }
  console.log('');
  console.log('| class | timed shape [B, H, S, L, E, Ev] | ranking (median kernel ms per call, fastest first) |');
  console.log('| --- | --- | --- |');
  for (const c of result.classes) console.log(`| ${c.key} | [${c.shape.join(', ')}] | ${c.measured.map((m) => `${m.backend} ${m.kernel} ${formatMs(m.ms)}`).join(' < ')} |`);
  for (const s of result.skipped) console.log(`skipped ${s.backend} ${s.kernel} for ${s.class}: ${s.reason}`);
  console.log(`\n${result.classes.length} classes in ${(result.ms / 1000).toFixed(1)} s`);
  if (values.out) {
    writeFileSync(resolve(values.out), `${JSON.stringify(saveCalibration(), null, 2)}\n`);
    console.log(`wrote ${resolve(values.out)}; use it with SDPA_CALIBRATION=${values.out} or loadCalibration(JSON.parse(readFileSync(...)))`);
  } else console.log('(this process only: pass --out FILE to keep it)');
}

const [cmd, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = { demo, explain, doctor, bench, calibrate: calibrateCommand };
if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
  console.log(rest[0] && COMMAND_HELP[rest[0]] ? COMMAND_HELP[rest[0]] : HELP);
} else if (!cmd || !Object.hasOwn(commands, cmd)) {
  // No command or an unknown one is a usage error: the usage on stderr, exit 1.
  console.error(`${cmd ? `sdpa-dispatch: unknown command '${cmd}'\n\n` : ''}${USAGE}`);
  process.exitCode = 1;
} else if (rest.includes('--help') || rest.includes('-h')) {
  console.log(COMMAND_HELP[cmd]);
} else {
  commands[cmd](rest).catch((err: unknown) => {
    const usage = String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS') ? ` (sdpa-dispatch ${cmd} --help lists the flags)` : '';
    console.error(`sdpa-dispatch ${cmd}: ${err instanceof Error ? err.message : String(err)}${usage}`);
    process.exitCode = 1;
  });
}
