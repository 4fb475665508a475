/**
 * A progress bar on stderr for `sdpa-dispatch bench`, so stdout stays the table alone. On a
 * terminal it redraws one line; otherwise (CI logs, tests) it prints a line per label change,
 * because carriage returns make logs unreadable.
 */
import type { BenchProgress } from './run.js';

/** Creates the bar; call the returned function with each progress event, and `end()` at the end. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): { update(p: BenchProgress): void; end(): void } {
  const tty = stream.isTTY === true;
  const started = performance.now();
  let lastLine = '';
  return {
    update(p) {
      const width = 24;
      const frac = p.total ? Math.min(1, p.done / p.total) : 0;
      const filled = Math.round(frac * width);
      const secs = ((performance.now() - started) / 1000).toFixed(0);
      const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} S=${p.s} ${p.label}`;
      if (tty) stream.write(`\r\x1b[2K${line} (${secs} s)`);
      else if (line !== lastLine) stream.write(`${line}\n`);
      lastLine = line;
    },
    end() {
      if (tty) stream.write('\r\x1b[2K');
    },
  };
}
