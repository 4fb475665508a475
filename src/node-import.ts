/**
 * Loading optional Node-only packages (Dawn's `webgpu`, `onnxruntime-node`) so that no bundler
 * sees them. A literal `import('webgpu')` is followed by every bundler, and so is a constant
 * specifier (Rolldown folds `const name = 'webgpu'; import(name)` into the literal and pulls
 * Dawn's loader into browser builds). Here the import target is a file URL computed at run time
 * by Node's own resolver, which no bundler evaluates: browser builds carry no trace of the package.
 */

interface NodeProcessLike {
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}

/** True when a Node-only package was not found (as opposed to found and failing to load). */
export function isModuleNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND';
}

/**
 * Imports `pkg` as resolved from this package's own location (like a static import would).
 * Rejects with Node's error (`code` MODULE_NOT_FOUND when absent: see {@link isModuleNotFound})
 * or, outside Node, with an Error saying the package needs Node.js.
 */
export async function importNodeOnly(pkg: string): Promise<unknown> {
  const proc = (globalThis as { process?: NodeProcessLike }).process;
  if (!proc?.versions?.node || !proc.getBuiltinModule) throw new Error(`${pkg} needs Node.js (>= 20.19)`);
  const { createRequire } = proc.getBuiltinModule('node:module') as { createRequire(from: string): { resolve(id: string): string } };
  const { pathToFileURL } = proc.getBuiltinModule('node:url') as { pathToFileURL(p: string): URL };
  const file = createRequire(import.meta.url).resolve(pkg);
  return import(/* @vite-ignore */ /* webpackIgnore: true */ pathToFileURL(file).href);
}
