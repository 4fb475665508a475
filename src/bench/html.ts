/**
 * The self-contained HTML report of a bench run: two inline SVG line charts (time vs S and
 * allocated memory vs S, log-log, one line per backend) and the full table. No scripts, no
 * external assets — it opens from disk and survives being mailed around.
 */
import { describeReferences, describeRun, formatBytes, reasonTexts } from './format.js';
import type { BenchResult, BenchRow } from './types.js';

/** One line of a chart. */
export interface ChartSeries {
  readonly name: string;
  readonly color: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
}

/** Stable colors per backend name, so charts of different runs read alike. */
const COLORS: Record<string, string> = {
  FLASH_ATTENTION: '#d62728',
  EFFICIENT_ATTENTION: '#1f77b4',
  MATH: '#7f7f7f',
  ONNXRUNTIME: '#2ca02c',
};
const EXTRA = ['#9467bd', '#ff7f0e', '#8c564b', '#e377c2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Log-axis ticks covering [lo, hi]: powers of ten (with 2· and 5· on short ranges), or for bytes
 * powers of two at a stride that gives at most about seven ticks — 1 KiB, 4 KiB, 16 KiB read
 * better than 9.77 KiB, 97.7 KiB.
 */
function logTicks(lo: number, hi: number, base: 10 | 2): number[] {
  if (base === 2) {
    const stride = Math.max(1, Math.ceil((Math.ceil(Math.log2(hi)) - Math.floor(Math.log2(lo))) / 6));
    const first = Math.floor(Math.floor(Math.log2(lo)) / stride) * stride;
    const ticks: number[] = [];
    for (let e = first; 2 ** e < hi * 2 ** stride; e += stride) ticks.push(2 ** e);
    return ticks;
  }
  const ticks: number[] = [];
  const steps = Math.log10(hi / lo) < 2 ? [1, 2, 5] : [1];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of steps) {
      const t = m * 10 ** e;
      if (t >= lo * 0.999 && t <= hi * 1.001) ticks.push(t);
    }
  return ticks;
}

/**
 * A log-log line chart as an SVG string. X ticks are the measured x values (sequence lengths
 * are powers of two, which decades would hide).
 */
export function lineChart(title: string, yLabel: string, series: readonly ChartSeries[], formatY: (v: number) => string, tickBase: 10 | 2 = 10): string {
  const W = 640, H = 360, L = 78, R = 170, T = 34, B = 48;
  const pts = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  if (pts.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="60" role="img"><text x="10" y="30">${esc(title)}: no data</text></svg>`;
  const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  let [x0, x1] = [xs[0], xs[xs.length - 1]];
  if (x0 === x1) [x0, x1] = [x0 / 2, x1 * 2];
  let [y0, y1] = [Math.min(...pts.map((p) => p.y)), Math.max(...pts.map((p) => p.y))];
  if (y0 === y1) [y0, y1] = [y0 / 2, y1 * 2];
  // Pad to the outer ticks so each line sits inside the frame with a tick above and below it.
  const ticks = tickBase === 2 ? logTicks(y0, y1, 2) : [];
  if (tickBase === 2) [y0, y1] = [ticks[0], ticks[ticks.length - 1]];
  else [y0, y1] = [10 ** Math.floor(Math.log10(y0)), 10 ** Math.ceil(Math.log10(y1))];
  const px = (x: number) => L + ((Math.log(x) - Math.log(x0)) / (Math.log(x1) - Math.log(x0))) * (W - L - R);
  const py = (y: number) => T + (1 - (Math.log(y) - Math.log(y0)) / (Math.log(y1) - Math.log(y0))) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}" font-family="sans-serif" font-size="11">`,
    `<text x="${W / 2 - R / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`,
  ];
  for (const t of tickBase === 2 ? ticks : logTicks(y0, y1, 10)) {
    const y = py(t).toFixed(1);
    out.push(`<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#ddd"/>`, `<text x="${L - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(formatY(t))}</text>`);
  }
  for (const x of xs) {
    const X = px(x).toFixed(1);
    out.push(`<line x1="${X}" x2="${X}" y1="${T}" y2="${H - B}" stroke="#eee"/>`, `<text x="${X}" y="${H - B + 16}" text-anchor="middle">${x}</text>`);
  }
  out.push(
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">sequence length S = L (log scale)</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)} (log scale)</text>`,
  );
  series.forEach((s, i) => {
    const p = s.points.filter((q) => q.x > 0 && q.y > 0);
    if (p.length === 0) return;
    const d = p.map((q, j) => `${j ? 'L' : 'M'}${px(q.x).toFixed(1)},${py(q.y).toFixed(1)}`).join(' ');
    out.push(`<path class="series" data-backend="${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const q of p) out.push(`<circle cx="${px(q.x).toFixed(1)}" cy="${py(q.y).toFixed(1)}" r="3" fill="${s.color}"><title>${esc(`${s.name} S=${q.x}: ${formatY(q.y)}`)}</title></circle>`);
    const ly = T + 10 + i * 18;
    out.push(`<line x1="${W - R + 12}" x2="${W - R + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`, `<text x="${W - R + 38}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

function seriesOf(rows: readonly BenchRow[], value: (r: BenchRow) => number | undefined): ChartSeries[] {
  const names = [...new Set(rows.map((r) => r.backend))];
  let extra = 0;
  return names.map((name) => ({
    name,
    color: COLORS[name] ?? EXTRA[extra++ % EXTRA.length],
    points: rows.filter((r) => r.backend === name && r.status === 'ok').map((r) => ({ x: r.s, y: value(r) ?? 0 })),
  }));
}

function tableRow(r: BenchRow, reason: string): string {
  const td = (v: string, cls = '') => `<td${cls ? ` class="${cls}"` : ''}>${esc(v)}</td>`;
  if (r.status !== 'ok') return `<tr class="${r.status}">${td(String(r.s))}${td(r.backend)}<td colspan="7" class="reason">${esc(reason)}</td></tr>`;
  return `<tr>${[
    td(String(r.s)),
    td(r.backend),
    td(r.ms!.toFixed(2), 'n'),
    td(r.gflops!.toPrecision(3), 'n'),
    td(r.speedupVsMath === undefined ? '–' : `${r.speedupVsMath.toPrecision(3)}×`, 'n'),
    td(formatBytes(r.allocatedBytes ?? 0), 'n'),
    td(formatBytes(r.rssDeltaBytes ?? 0), 'n'),
    td(`${r.maxAbsDiff!.toExponential(2)}${r.withinTolerance === false ? ' (over tol)' : ''}`, 'n'),
    td(`${r.runsMs!.length}${r.warmup ? '' : ' (no warm-up)'}`, 'n'),
  ].join('')}</tr>`;
}

/** The whole report as one HTML document. */
export function renderHtml(res: BenchResult): string {
  const env = res.environment;
  const timeChart = lineChart('Time per call vs S', 'ms (median)', seriesOf(res.rows, (r) => r.ms), (v) => (v >= 1 ? `${+v.toPrecision(3)} ms` : `${+v.toPrecision(2)} ms`));
  const memChart = lineChart('Extra memory per call vs S', 'bytes allocated', seriesOf(res.rows, (r) => r.allocatedBytes), formatBytes, 2);
  const refs = describeReferences(res);
  const reasons = reasonTexts(res.rows);
  const parts = Object.entries(env.parts)
    .map(([b, d]) => `<li><b>${esc(b)}</b>: <code>${esc(JSON.stringify(d))}</code></li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sdpa-dispatch bench — ${esc(describeRun(res.options))}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
table{border-collapse:collapse;font-size:13px;margin-top:16px}
td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.ineligible td.reason,tr.skipped td.reason{color:#8a5a00;font-size:12px}
tr.failed td.reason{color:#b00020;font-size:12px}
code{font-size:11px;word-break:break-all}
</style></head>
<body>
<h1>sdpa-dispatch bench</h1>
<p>${esc(describeRun(res.options))}; ${env.date}; Node ${esc(env.node)} ${esc(env.platform)}; ${esc(env.cpu)}, ${env.cores} cores, ${formatBytes(env.totalMemoryBytes)} RAM; ${res.seconds.toFixed(1)} s in all.</p>
<p><code>${esc(env.command)}</code></p>
<div class="charts">
${timeChart}
${memChart}
</div>
<table id="results">
<thead><tr><th>S</th><th>backend</th><th>ms (median)</th><th>GFLOP/s</th><th>vs MATH</th><th>allocated</th><th>RSS Δ peak</th><th>max |diff|</th><th>runs</th></tr></thead>
<tbody>
${res.rows.map((r, i) => tableRow(r, reasons[i])).join('\n')}
</tbody></table>
<p>GFLOP/s counts 4·B·H·S·L·D per call (half when causal). "allocated" is what the backend recorded for one call
(<code>lastDispatch().allocatedBytes</code>); "RSS Δ peak" is the process's peak resident memory during the warm-up and timed runs
minus before them. max |diff| is against: ${esc(refs)}.</p>
<h2>Backend parts</h2>
<ul>
${parts}
</ul>
</body></html>
`;
}
