#!/usr/bin/env node
// Makes a fresh clone runnable: installs dependencies when node_modules is missing or older than
// the lockfile, and rebuilds dist/ when a TypeScript source is newer than the build. Run by
// `npm start` and `npm test` (prestart/pretest), so both work right after `git clone`.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's install script would download CUDA binaries
// (linux/x64); package.json's allowScripts denies that script on npm versions that read it.
const run = (cmd) => {
  console.error(`[ensure-ready] ${cmd}`);
  execSync(cmd, { cwd: root, stdio: 'inherit', env: { ONNXRUNTIME_NODE_INSTALL: 'skip', ...process.env } });
};
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

function newestIn(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestIn(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || mtime(lock) > mtime(installed)) {
  // npm ci reproduces the lockfile exactly; without one, npm install creates it.
  run(existsSync(lock) ? 'npm ci' : 'npm install');
}

// The embedded assets (shaders/*.wgsl → src/generated/) first: a changed shader is a changed source.
(await import('./embed-assets.mjs')).embedAssets();
const built = join(root, 'dist', 'src', 'index.js');
const sources = Math.max(...['src', 'backends', 'scripts'].map((d) => newestIn(join(root, d))), mtime(join(root, 'tsconfig.json')));
if (!existsSync(built) || sources > mtime(built)) run('npx tsc -p tsconfig.json');
