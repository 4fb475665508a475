/**
 * Vite config of the browser example. The page imports the library from source (../../src), so
 * the dev server must serve the whole repository (src/, backends/), not only this folder. Nothing
 * else is needed: shaders are embedded modules, onnxruntime-web is a plain import Vite resolves,
 * and the Node-only engines are invisible to the bundler (docs/bundlers.md).
 */
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
// node_modules may be a symlink to an install shared by several git worktrees: Vite serves files by
// their real path, so allow that too (onnxruntime-web's .wasm is fetched from there).
const modulesDir = realpathSync(join(repoRoot, 'node_modules'));

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  server: { fs: { allow: [repoRoot, modulesDir] }, host: '127.0.0.1' },
  build: {
    target: 'es2022',
    outDir: fileURLToPath(new URL('../../dist/browser-example', import.meta.url)),
    emptyOutDir: true,
  },
});
