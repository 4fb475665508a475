/**
 * Lazy loading of the onnxruntime engines and of the ONNX protobuf schema. Nothing here runs at
 * module import: each loader is called from a part's `init()`, and a failure becomes the part's
 * unavailability reason (DESIGN §4).
 */
import { isOrtModule, type OrtModuleLike } from './ort-types.js';

/** Which engine a part uses. */
export type OrtFlavor = 'onnxruntime-node' | 'onnxruntime-web' | 'onnxruntime-web/webgpu';

/** True in Node.js (also under vitest), where onnxruntime-node is the native CPU engine. */
export function isNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
}

/** Dynamic import through a variable, so bundlers and tsc do not require the optional package. */
async function importOptional(specifier: string): Promise<unknown> {
  const mod = (await import(specifier)) as { default?: unknown };
  // CJS builds arrive as `default`; ESM builds as the namespace itself.
  return isOrtModule(mod) ? mod : mod.default;
}

/** Loads an onnxruntime flavour; throws an Error whose message says what failed. */
export async function loadOrt(flavor: OrtFlavor): Promise<OrtModuleLike> {
  let mod: unknown;
  try {
    mod = await importOptional(flavor);
  } catch (err) {
    throw new Error(`${flavor} could not be loaded (${(err as Error).message.split('\n')[0]}); install it (npm install ${flavor.split('/')[0]})`, { cause: err });
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
