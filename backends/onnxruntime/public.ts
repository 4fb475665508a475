/**
 * `sdpa-dispatch/onnxruntime`: interop with onnxruntime tensors and control of the ONNXRUNTIME
 * backend's session cache. Importing it loads no onnxruntime package; the backend itself is
 * registered by the main entry (`sdpa-dispatch`), which shares these modules.
 *
 * @example
 * import * as ort from 'onnxruntime-node';
 * import { sdpa } from 'sdpa-dispatch';
 * import { toOrtTensor, onnxSessionStats } from 'sdpa-dispatch/onnxruntime';
 * const out = toOrtTensor(await sdpa(q, k, v), ort);
 */
export { fromOrtTensor, toOrtTensor, isOrtTensorLike } from './interop.js';
export { setOnnxSessionCacheSize, disposeOnnxSessions, onnxSessionStats } from './sessions.js';
export type { OrtModuleLike, OrtTensorLike, OrtSessionLike, OrtTensorConstructor, OrtSessionOptions } from './ort-types.js';
export type { OnnxSessionStats } from './session-cache.js';
