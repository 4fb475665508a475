/**
 * Vite config of the browser example. The page imports the library from source (../../src), so
 * the dev server must serve the whole repository (src/, backends/, shaders/), not only this folder.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The ONNXRUNTIME backend loads onnxruntime-web with `import(specifier)` through a variable, so
 * that it stays optional and bundlers leave it alone. A browser resolves such a bare specifier
 * only through an import map. This plugin maps it to the package's self-contained ESM bundles,
 * served by the dev server from node_modules. They find their .wasm next to themselves.
 */
function ortImportMap(): Plugin {
  const dist = `/@fs${repoRoot}node_modules/onnxruntime-web/dist`;
  return {
    name: 'sdpa-example-ort-import-map',
    apply: 'serve',
    transformIndexHtml: () => [
      {
        tag: 'script',
        attrs: { type: 'importmap' },
        children: JSON.stringify({ imports: { 'onnxruntime-web': `${dist}/ort.bundle.min.mjs`, 'onnxruntime-web/webgpu': `${dist}/ort.webgpu.bundle.min.mjs` } }),
        injectTo: 'head-prepend',
      },
    ],
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [ortImportMap()],
  server: { fs: { allow: [repoRoot] }, host: '127.0.0.1' },
  // onnxruntime-web ships its own wasm loader: pre-bundling it would break its relative wasm URLs.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: {
    target: 'es2022',
    outDir: fileURLToPath(new URL('../../dist/browser-example', import.meta.url)),
    emptyOutDir: true,
    // Node-only engines reached through dynamic imports that never run in a browser (the library
    // checks for Node first); keeping them external stops the bundler from pulling in Dawn's loader.
    rolldownOptions: { external: ['webgpu', 'onnxruntime-node', 'onnxruntime-web', 'onnxruntime-web/webgpu'] },
  },
});
