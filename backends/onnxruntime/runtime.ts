/**
 * Lazy loading of the onnxruntime engines and of the ONNX protobuf schema. Nothing here runs at
 * module import: each loader is called from a part's `init()`, and a failure becomes the part's
 * unavailability reason (docs/design.md §4).
 */
import { importNodeOnly, isModuleNotFound } from '../../src/node-import.js';
import { isOrtModule, type OrtModuleLike } from './ort-types.js';

/** Which engine a part uses. */
export type OrtFlavor = 'onnxruntime-node' | 'onnxruntime-web' | 'onnxruntime-web/webgpu';

/** True in Node.js (also under vitest), where onnxruntime-node is the native CPU engine. */
export function isNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
}

/**
 * How each flavour is imported. onnxruntime-web is a literal specifier, so that bundlers resolve
 * it (and emit its .wasm files) for browser builds; onnxruntime-node goes through Node's resolver
 * at run time (src/node-import.ts), so that no browser bundle tries to carry a native addon.
 */
const IMPORTERS: Record<OrtFlavor, () => Promise<unknown>> = {
  'onnxruntime-node': () => importNodeOnly('onnxruntime-node'),
  'onnxruntime-web': () => import('onnxruntime-web'),
  'onnxruntime-web/webgpu': () => import('onnxruntime-web/webgpu'),
};

/** The package a flavour comes from (what to install). */
export function ortPackage(flavor: OrtFlavor): string {
  return flavor.split('/')[0];
}

/**
 * Why an import of `flavor` failed, in words that say what to do: a package that is absent (Node's
 * MODULE_NOT_FOUND, a browser's unresolved bare specifier) wants installing or mapping; one that is
 * present but failed to load (a missing native library, a wasm fetch refused) wants its own error.
 */
export function describeOrtImportFailure(flavor: OrtFlavor, err: unknown): string {
  const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 300);
  const pkg = ortPackage(flavor);
  if (isModuleNotFound(err) || /Cannot find (module|package) '?onnxruntime/.test(msg)) {
    // onnxruntime-node is an optional peer dependency: never installed for the user, because its
    // install script downloads CUDA binaries on linux/x64 unless told not to.
    const how = pkg === 'onnxruntime-node' ? '`ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` (an optional peer dependency; skip = no CUDA download)' : `npm install ${pkg}`;
    return `${flavor} is not installed; ${how}`;
  }
  if (/Failed to resolve module specifier/.test(msg)) {
    return `${flavor} could not be resolved by this page (${msg}); bundle the page (Vite, webpack, esbuild resolve it) or map '${flavor}' in an import map`;
  }
  return `${flavor} is installed but failed to load: ${msg}`;
}

/** Loads an onnxruntime flavour; throws an Error whose message says what failed. */
export async function loadOrt(flavor: OrtFlavor): Promise<OrtModuleLike> {
  let mod: unknown;
  try {
    const m = (await IMPORTERS[flavor]()) as { default?: unknown };
    // CJS builds arrive as `default`; ESM builds as the namespace itself.
    mod = isOrtModule(m) ? m : m.default;
  } catch (err) {
    throw new Error(describeOrtImportFailure(flavor, err), { cause: err });
  }
  if (!isOrtModule(mod)) throw new Error(`${flavor} loaded but exports no InferenceSession/Tensor (unexpected build)`);
  return mod;
}

/** The protobufjs-generated ONNX schema (`onnx-proto`), typed as this backend uses it. */
export type OnnxSchema = typeof import('onnx-proto').onnx;

let onnxSchema: Promise<OnnxSchema> | undefined;

/** Loads `onnx-proto` once (protobufjs codegen of onnx.proto). */
export function loadOnnxSchema(): Promise<OnnxSchema> {
  onnxSchema ??= (async () => {
    const mod = (await import('onnx-proto')) as { onnx?: OnnxSchema; default?: { onnx: OnnxSchema } };
    const onnx = mod.onnx ?? mod.default?.onnx;
    if (!onnx) throw new Error('onnx-proto loaded but has no `onnx` namespace');
    return onnx;
  })();
  return onnxSchema;
}
