/**
 * Control of the ONNXRUNTIME backend's session cache (public through `sdpa-dispatch/onnxruntime`).
 * Kept apart from the engine so that these declarations reach no onnxruntime or protobuf types.
 */
import { sessionCache } from './engine.js';
import type { OnnxSessionStats } from './session-cache.js';

/**
 * Releases every cached onnxruntime session (they are re-created on the next call).
 * @example afterAll(() => disposeOnnxSessions());
 */
export function disposeOnnxSessions(): Promise<void> {
  return sessionCache.clear();
}

/** Live/created/hit counters of the session cache, for soak tests and monitoring. */
export function onnxSessionStats(): OnnxSessionStats {
  return sessionCache.stats();
}

/** Sets how many sessions the LRU cache keeps (default 16); the least recently used beyond it are released. */
export function setOnnxSessionCacheSize(n: number): void {
  sessionCache.setCapacity(n);
}
