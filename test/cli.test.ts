/**
 * The `sdpa-dispatch` command as users run it: `node dist/src/cli.js …` in a child process.
 * Checks what `doctor`, `explain` and `bench --quick` print and write; never how fast anything is.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../src/bench/types.js';
import { formatMarkdownTable } from '../src/bench/format.js';
import { renderHtml } from '../src/bench/html.js';
import { DEFAULT_BENCH_OPTIONS } from '../src/bench/run.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli.js');

/** Newest mtime of the .ts files the CLI is built from. */
function newestSource(): number {
  const dirs = [join(ROOT, 'src'), join(ROOT, 'src/bench')];
  return Math.max(...dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.ts')).map((f) => statSync(join(d, f)).mtimeMs)));
}

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, SDPA_LOG: '', ...env },
    timeout: 110_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // `npm test` builds dist/ first (scripts/ensure-ready.mjs); a bare `npx vitest run` may find it stale.
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < newestSource()) {
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
    } catch {
      // tsc emits despite type errors elsewhere in the tree; the CLI tests below judge the result.
    }
  }
});

describe('sdpa-dispatch CLI (from dist)', () => {
  it('help lists every command', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['demo', 'explain', 'doctor', 'bench', 'calibrate', '--budget-ms', '--quick', '--seqs']) expect(r.stdout).toContain(c);
  });

  it('every command has --help (exit 0, its flags on stdout); help <command> says the same', () => {
    for (const [cmd, flag] of [['demo', 'No flags'], ['explain', '--lower-right'], ['doctor', 'No flags'], ['bench', '--ref-rows']]) {
      for (const args of [[cmd, '--help'], [cmd, '-h'], ['help', cmd]]) {
        const r = cli(args);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        expect(r.stdout, args.join(' ')).toContain(`Usage: sdpa-dispatch ${cmd}`);
        expect(r.stdout, args.join(' ')).toContain(flag);
      }
    }
  });

  it('an unknown command, or none, prints the usage on stderr and exits 1', () => {
    const unknown = cli(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("sdpa-dispatch: unknown command 'frobnicate'");
    expect(unknown.stderr).toContain('Usage:');
    expect(cli([]).code).toBe(1);
  });

  it('an unknown flag exits 1 and points at the command\'s --help', () => {
    const r = cli(['bench', '--frob']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("sdpa-dispatch bench: Unknown option '--frob'");
    expect(r.stderr).toContain('sdpa-dispatch bench --help lists the flags');
  });

  it('doctor names the ONNX Runtime engine in use and prints the WebGPU adapter facts once', () => {
    const r = cli(['doctor']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {4}ONNX Runtime engine in use: onnxruntime-(node|web) \S+ \((cpu|wasm) EP\)/m);
    expect(r.stdout.match(/"vendor"/g)?.length ?? 0).toBeLessThanOrEqual(1);
    expect(r.stdout.match(/maxStorageBufferBindingSize/g)?.length ?? 0).toBeLessThanOrEqual(1);
  });

  it('demo says a long reason once and refers to it afterwards', () => {
    const r = cli(['demo']);
    expect(r.code, r.stderr).toBe(0);
    // The engine list (`  ✗ PART — reason`) and the per-dtype tables (`  NAME  skipped: reason`); the dispatch
    // log's lines stand alone, each with its own reasons.
    const reasons = [...r.stdout.matchAll(/^ {2}(?:✗ .*? — |\S+ +skipped: )(.{120,})$/gm)].map((m) => m[1]).filter((x) => !x.startsWith('(the reason given'));
    for (const reason of new Set(reasons)) expect(r.stdout.split(reason).length - 1, reason).toBe(1);
    // ONNXRUNTIME (webgpu) is off in Node: its long reason is listed once, then referred to per dtype.
    if (r.stdout.includes('\nwebgpu, float32')) expect(r.stdout).toContain('skipped: (the reason given for ONNXRUNTIME (webgpu) above)');
  });

  it('explain probes every engine first: no "not probed yet" in its report', () => {
    const r = cli(['explain', '--q', '1x2x16x8']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('not been probed yet');
  });

  it('doctor reports the runtime and every CPU backend', () => {
    const r = cli(['doctor']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^runtime: node \d+\.\d+\.\d+ /m);
    expect(r.stdout).toMatch(/^✓ MATH \(cpu\)/m);
    expect(r.stdout).toMatch(/^✓ EFFICIENT_ATTENTION \(cpu\)/m);
    // Available or not, the native flash part is listed; when not, with the reason.
    expect(r.stdout).toMatch(/^[✓✗] FLASH_ATTENTION \(cpu\)/m);
  });

  it('explain prints the report with the selected backend and the reasons of the others', () => {
    const r = cli(['explain', '--q', '1x2x64x32', '--causal'], { SDPA_MATH_MAX_BYTES: '1000' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('sdpa dispatch: q [1, 2, 64, 32], k [1, 2, 64, 32], v [1, 2, 64, 32], float32');
    expect(r.stdout).toContain('causal upper-left');
    expect(r.stdout).toMatch(/→ (FLASH_ATTENTION|EFFICIENT_ATTENTION) \(cpu\)\s+selected/);
    expect(r.stdout).toMatch(/MATH \(cpu\)\s+not eligible/);
    expect(r.stdout).toContain('raise SDPA_MATH_MAX_BYTES');
  });

  it('explain rejects a malformed shape with a message naming the flag', () => {
    const r = cli(['explain', '--q', '1x2xbad']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--q: expected dims like 1x8x1024x64');
  });

  describe('bench --quick', () => {
    const out = mkdtempSync(join(tmpdir(), 'sdpa-bench-'));
    let r: ReturnType<typeof cli>;
    let json: BenchResult;

    beforeAll(() => {
      // A math budget of ~586 KiB: S=128 (256 KiB of scores) fits, S=256 (1 MiB) does not, so the
      // run has a row that shows the dispatcher's reason instead of a number.
      r = cli(['bench', '--quick', '--out', out], { SDPA_MATH_MAX_BYTES: '600000' });
      if (existsSync(join(out, 'bench.json'))) json = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchResult;
    });
    afterAll(() => rmSync(out, { recursive: true, force: true }));

    it('exits 0 and prints the table', () => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('sdpa-dispatch bench: B=1 H=2 D=32 float32, device cpu, S = 64, 128, 256');
      expect(r.stdout).toContain('| S | backend | time (ms, median) | GFLOP/s | vs MATH | allocated | RSS Δ peak | max abs diff | runs |');
      expect(r.stdout).toMatch(/^\| 64 \| MATH \| \d/m);
      expect(r.stdout).toMatch(/^\| 128 \| EFFICIENT_ATTENTION \| \d/m);
      expect(r.stdout).toContain(`wrote ${join(out, 'bench.json')}`);
    });

    it('shows the reason, not a number, where a backend cannot run', () => {
      expect(r.stdout).toMatch(/^\| 256 \| MATH \| ineligible: math \(cpu\) materializes the batch·Hq·S·L float64 score matrix: 1(\.0)? MiB > budget/m);
      const row = json.rows.find((x) => x.s === 256 && x.backend === 'MATH');
      expect(row).toMatchObject({ status: 'ineligible', reason: expect.stringContaining('SDPA_MATH_MAX_BYTES') });
      expect(row?.ms).toBeUndefined();
    });

    it('draws a progress bar on stderr', () => {
      expect(r.stderr).toMatch(/\[[#.]{24}\] \d+\/\d+ S=64/);
      expect(r.stderr).toMatch(/\[#{24}\] (\d+)\/\1 S=256 done/);
    });

    it('writes JSON with a measured row per eligible backend and S', () => {
      expect(json.options).toMatchObject({ batch: 1, heads: 2, headDim: 32, seqs: [64, 128, 256], device: 'cpu' });
      const cpuBackends = new Set(json.rows.map((x) => x.backend));
      expect([...cpuBackends]).toEqual(expect.arrayContaining(['MATH', 'EFFICIENT_ATTENTION', 'FLASH_ATTENTION']));
      expect(json.rows.length).toBe(3 * cpuBackends.size);
      for (const b of ['MATH', 'EFFICIENT_ATTENTION']) {
        for (const s of b === 'MATH' ? [64, 128] : [64, 128, 256]) {
          const row = json.rows.find((x) => x.s === s && x.backend === b)!;
          expect(row.status, `${b} S=${s}: ${row.reason ?? ''}`).toBe('ok');
          expect(row.ms).toBeGreaterThan(0);
          expect(row.gflops).toBeGreaterThan(0);
          expect(row.flops).toBe(4 * 1 * 2 * s * s * 32);
          expect(row.runsMs?.length).toBeGreaterThanOrEqual(1);
          expect(row.allocatedBytes).toBeGreaterThan(0);
          expect(row.rssDeltaBytes).toBeGreaterThanOrEqual(0);
          expect(row.maxAbsDiff).toBeLessThan(1e-5);
          expect(row.withinTolerance).toBe(true);
        }
      }
      // Every row is a number or a reason.
      for (const row of json.rows) expect(row.status === 'ok' ? typeof row.ms : typeof row.reason, `${row.backend} S=${row.s}`).toMatch(/number|string/);
      expect(json.references[64]).toMatchObject({ kind: 'math-f64-full', rows: 64 });
      expect(json.references[256]).toMatchObject({ kind: 'math-f64-rows', rows: 16 });
      expect(json.environment.command).toBe(`sdpa-dispatch bench --quick --out ${out}`);
    });

    it('writes a self-contained HTML report with two SVG charts', () => {
      const html = readFileSync(join(out, 'bench.html'), 'utf8');
      expect(html.match(/<svg /g)?.length).toBe(2);
      expect(html).toContain('Time per call vs S');
      expect(html).toContain('Extra memory per call vs S');
      expect(html).toContain('data-backend="MATH"');
      expect(html).not.toMatch(/<script|<link|src="http/);
    });
  });

  it('calibrate --quick draws a progress bar, prints the ranking it learnt and writes a table SDPA_CALIBRATION loads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdpa-cal-'));
    try {
      const file = join(dir, 'cal.json');
      const r = cli(['calibrate', '--quick', '--device', 'cpu', '--budget-ms', '3000', '--out', file]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[[#.]{24}\] 0\/\d+ S=64 cpu float32 D≤32 S≤128 L≤128 non-causal: /);
      expect(r.stdout).toContain('| class | timed shape [B, H, S, L, E, Ev] | ranking (median kernel ms per call, fastest first) |');
      expect(r.stdout).toMatch(/^\| cpu float32 D≤32 S≤128 L≤128 non-causal \| \[1, 2, 64, 64, 32, 32\] \| \S+ \S+ [\d.]+ ms < /m);
      expect(r.stdout).toMatch(/^\| cpu float32 D≤32 S=1 L≤512 non-causal \| /m);
      expect(r.stdout).toContain(`wrote ${file}`);
      const table = JSON.parse(readFileSync(file, 'utf8')) as { format: string; classes: unknown[] };
      expect(table.format).toBe('sdpa-dispatch-calibration');
      expect(table.classes).toHaveLength(2);
      // Another process loads it from the environment and explains with it.
      const e = cli(['explain', '--q', '1x2x64x32'], { SDPA_CALIBRATION: file });
      expect(e.code, e.stderr).toBe(0);
      expect(e.stdout.split('\n')[1]).toMatch(/^ {2}ranked by measurement: .* \(class cpu float32 D≤32 S≤128 L≤128 non-causal, calibrated /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bench rejects a bad flag with a message naming it', () => {
    const r = cli(['bench', '--dtype', 'int8', '--out', join(tmpdir(), 'sdpa-bench-unused')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--dtype: expected float32, float16 or bfloat16, got "int8"');
  });
});

describe('bench table', () => {
  it('writes a repeated reason out once and refers to it on later rows', () => {
    const reason = 'onnxruntime (webgpu) is unavailable in Node.js: a long sentence';
    const row = (s: number) => ({ s, backend: 'ONNXRUNTIME', device: 'webgpu', status: 'ineligible', reason, flops: 1 }) as const;
    const res = { options: DEFAULT_BENCH_OPTIONS, environment: {} as BenchResult['environment'], references: {}, rows: [row(512), row(1024), row(2048)], seconds: 0 } as BenchResult;
    const table = formatMarkdownTable(res);
    expect(table.split(reason).length - 1).toBe(1);
    expect(table).toContain('| 1024 | ONNXRUNTIME | ineligible: as ONNXRUNTIME at S=512 above |');
    expect(table).toContain('| 2048 | ONNXRUNTIME | ineligible: as ONNXRUNTIME at S=512 above |');
    const html = renderHtml({ ...res, environment: { date: '', node: '', platform: '', cpu: '', cores: 1, totalMemoryBytes: 0, parts: {}, command: '' } });
    expect(html.split(reason).length - 1).toBe(1);
    expect(html).toContain('ineligible: as ONNXRUNTIME at S=512 above');
  });
});
