/**
 * The counter-based dropout RNG shared by every backend (docs/design.md §2): whether the score of
 * (flat batch·head `bh`, query `i`, key `j`) is dropped depends only on (seed, bh, i, j), so the
 * CPU, WebGPU and native kernels drop exactly the same elements for the same seed.
 */

/** The 32-bit finaliser `mix` (all arithmetic modulo 2^32, unsigned result). */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Hash prefix of one flat head: `mix(mix(seed) ^ bh)`. */
export function dropoutHeadHash(seed: number, bh: number): number {
  return mix32(mix32(seed >>> 0) ^ bh);
}

/** Hash prefix of one query row: `mix(headHash ^ i)`. */
export function dropoutRowHash(headHash: number, i: number): number {
  return mix32(headHash ^ i);
}

/** Integer threshold: element dropped when `(mix(rowHash ^ j) >>> 8) < threshold` (exact: p·2^24 has no rounding). */
export function dropoutThreshold(p: number): number {
  return p * 16777216;
}

/** Whether element (bh, i, j) is dropped for probability p — the readable form of the rule. */
export function isDropped(seed: number, bh: number, i: number, j: number, p: number): boolean {
  return mix32(dropoutRowHash(dropoutHeadHash(seed, bh), i) ^ j) >>> 8 < dropoutThreshold(p);
}
