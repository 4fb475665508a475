/** Seeded random inputs for parity tests (mulberry32: small, fast, reproducible). */
import { tensor, type FloatDType, type Tensor } from '../../src/index.js';

/** A deterministic generator of floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal values (Box–Muller). */
export function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()) * scale;
  return out;
}

/** A random tensor of `shape` in `dtype`. */
export function randTensor(r: () => number, shape: number[], dtype: FloatDType = 'float32', scale = 1): Tensor {
  return tensor.fromFloat32(randn(r, shape.reduce((a, b) => a * b, 1), scale), shape, dtype);
}

/** A random bool mask of `shape` with roughly `pKeep` ones. */
export function randBoolMask(r: () => number, shape: number[], pKeep = 0.7): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Uint8Array.from({ length: n }, () => (r() < pKeep ? 1 : 0)), shape, 'bool');
}

/** An integer in [lo, hi]. */
export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}
