/**
 * Child-process tests run the built dist/: `npm test` builds it first (scripts/ensure-ready.mjs);
 * a bare `npx vitest run` may find it stale, so it is rebuilt here when a source is newer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function newestSource(): number {
  let newest = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ['src', 'backends']) walk(join(ROOT, d));
  return newest;
}

/** Builds dist/ when it is missing or older than the sources. */
export function ensureDist(): void {
  const built = join(ROOT, 'dist/src/index.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newestSource()) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'scripts/embed-assets.mjs')], { cwd: ROOT });
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
  } catch {
    // tsc emits despite type errors elsewhere; the children judge the result.
  }
}
