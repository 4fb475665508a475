#!/usr/bin/env node
// `npm install` hook: builds the native flash addon with node-gyp. A failed build must not fail the
// install — FLASH on cpu then reports "unavailable" with how to rebuild, and the other backends run.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

if (process.env.SDPA_SKIP_NATIVE === '1') {
  console.error('[sdpa-dispatch] SDPA_SKIP_NATIVE=1: not building the native flash addon');
  process.exit(0);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const jobs = String(Math.max(1, Math.min(4, (await import('node:os')).availableParallelism())));
// Build against the headers of the running Node when they are installed beside it (Debian's
// nodejs and the official tarballs both ship include/node): node-gyp then downloads nothing.
const prefix = dirname(dirname(process.execPath));
// --loglevel=warn: node-gyp's ~30 `gyp info` lines are noise on a good build; failures still print.
const args = ['rebuild', '-j', jobs, '--loglevel=warn'];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
// npm puts its bundled node-gyp on PATH for install scripts; run directly (`node scripts/build-native.mjs`)
// there is no such PATH entry, so fall back to the copy inside the npm that ships with this Node.
const bundled = [join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find((f) => existsSync(f));
const onPath = spawnSync('node-gyp', ['--version'], { stdio: 'ignore', shell: process.platform === 'win32' }).status === 0;
const r = onPath || !bundled
  ? spawnSync('node-gyp', args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
  : spawnSync(process.execPath, [bundled, ...args], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('[sdpa-dispatch] warning: the native flash addon did not build; FLASH_ATTENTION on cpu will be unavailable.');
  console.error('[sdpa-dispatch] needs python3, make and a C++17 compiler; retry with `npm rebuild sdpa-dispatch` or `npx node-gyp rebuild`.');
}
