/**
 * The ONNXRUNTIME backend: attention as a one-node ONNX graph built per call shape class and run
 * by onnxruntime (onnxruntime-node's CPU EP, onnxruntime-web's wasm and WebGPU EPs), with a
 * bounded session cache. The runtime loads lazily inside the parts' `init()`.
 */
import { SDPBackend, type BackendDescriptor } from '../../src/dispatch/types.js';
import { onnxruntimeCpu } from './cpu.js';
import { sessionCache, setSessionFactoryForTesting, type SessionFactory } from './engine.js';
import { onnxruntimeWebgpu } from './webgpu.js';

/** ONNXRUNTIME descriptor (parts: cpu, webgpu). */
export const onnxruntimeBackend: BackendDescriptor = {
  name: SDPBackend.ONNXRUNTIME,
  summary: 'ONNX Runtime: an opset-23 Attention (or com.microsoft.MultiHeadAttention) graph run by onnxruntime-node / onnxruntime-web.',
  parts: [onnxruntimeCpu, onnxruntimeWebgpu],
};

/**
 * @internal Test hook: replaces session creation (e.g. to inject a failure); undefined restores it.
 * Also zeroes the created/hit counters so tests can count from a known state.
 */
export function setOnnxSessionFactoryForTesting(factory: SessionFactory | undefined): void {
  setSessionFactoryForTesting(factory);
  sessionCache.resetStats();
}

export { toOrtTensor, fromOrtTensor, isOrtTensorLike, tensorFromOrt } from './interop.js';
export { disposeOnnxSessions, onnxSessionStats, setOnnxSessionCacheSize } from './sessions.js';
export { NODE_WEBGPU_REASON } from './webgpu.js';
export type { OrtModuleLike, OrtTensorLike, OrtSessionLike } from './ort-types.js';
export type { OnnxSessionStats } from './session-cache.js';
export type { SessionFactory } from './engine.js';
