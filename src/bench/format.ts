/**
 * Text forms of a bench result: the markdown table the CLI prints (and docs/performance.md
 * quotes), with a reason in place of the numbers for rows that did not run.
 */
import type { BenchOptions, BenchReference, BenchResult, BenchRow } from './types.js';

/** Bytes as B / KiB / MiB / GiB with 3 significant digits. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : +v.toPrecision(3)} ${units[i]}`;
}

function ms(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/**
 * What each row says in place of numbers ('' for rows that ran): its status and reason, the
 * reason written out once, on the first row that has it, and later rows with the same reason
 * referring to that row (a backend unavailable on the device would otherwise repeat a long
 * sentence on every S). Shared by the markdown table and the HTML report.
 */
export function reasonTexts(rows: readonly BenchRow[]): string[] {
  const seen = new Map<string, string>();
  return rows.map((r) => {
    if (r.status === 'ok') return '';
    const reason = r.reason ?? '';
    const first = seen.get(reason);
    if (first === undefined) seen.set(reason, `${r.backend} at S=${r.s}`);
    return `${r.status}: ${first === undefined || reason === '' ? reason : `as ${first} above`}`;
  });
}

function cells(r: BenchRow, reason: string): string[] {
  if (r.status !== 'ok') return [reason.replace(/\|/g, '\\|'), '', '', '', '', '', ''];
  return [
    ms(r.ms!),
    r.gflops!.toPrecision(3),
    r.speedupVsMath === undefined ? '–' : `${r.speedupVsMath.toPrecision(3)}×`,
    formatBytes(r.allocatedBytes ?? 0),
    formatBytes(r.rssDeltaBytes ?? 0),
    `${r.maxAbsDiff!.toExponential(1)}${r.withinTolerance === false ? ' (over tol)' : ''}`,
    `${r.runsMs!.length}${r.warmup ? '' : ', no warm-up'}`,
  ];
}

/** A one-line description of the shapes, e.g. `B=1 H=8 D=64 float32, causal, cpu`. */
export function describeRun(o: BenchOptions): string {
  return `B=${o.batch} H=${o.heads} D=${o.headDim} ${o.dtype}${o.causal ? ', causal' : ''}, device ${o.device}`;
}

/**
 * Which reference the diffs are against, with runs of S sharing one kind merged:
 * `S=512: float64 MATH reference, all rows; S=1024..16384: float64 MATH reference on 32 sampled query rows per head`.
 */
export function describeReferences(res: BenchResult): string {
  const text = (r: BenchReference) => (r.kind === 'math-f64-full' ? 'float64 MATH reference, all rows' : `float64 MATH reference on ${r.rows} sampled query rows per head`);
  const groups: { from: number; to: number; text: string }[] = [];
  for (const [s, r] of Object.entries(res.references).sort((a, b) => Number(a[0]) - Number(b[0]))) {
    const t = text(r);
    const g = groups[groups.length - 1];
    if (g && g.text === t) g.to = Number(s);
    else groups.push({ from: Number(s), to: Number(s), text: t });
  }
  return groups.map((g) => `S=${g.from === g.to ? g.from : `${g.from}..${g.to}`}: ${g.text}`).join('; ');
}

/** The result as a markdown table, one row per backend and S, plus a line on the references used. */
export function formatMarkdownTable(res: BenchResult): string {
  const head = ['S', 'backend', 'time (ms, median)', 'GFLOP/s', 'vs MATH', 'allocated', 'RSS Δ peak', 'max abs diff', 'runs'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  const reasons = reasonTexts(res.rows);
  for (const [i, r] of res.rows.entries()) {
    const c = cells(r, reasons[i]);
    if (r.status !== 'ok') lines.push(`| ${r.s} | ${r.backend} | ${c[0]} |  |  |  |  |  |  |`);
    else lines.push(`| ${r.s} | ${r.backend} | ${c.join(' | ')} |`);
  }
  lines.push('', `max abs diff is measured against: ${describeReferences(res)}.`);
  return lines.join('\n');
}
