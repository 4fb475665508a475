/**
 * Element types and exact conversions between float32 and the 16-bit float formats.
 *
 * float16 and bfloat16 values travel as raw bit patterns in a Uint16Array, like PyTorch's storage.
 * Conversions round to nearest, ties to even, and keep NaN (quieted, payload kept where it fits),
 * ±Infinity and subnormals, so that a value that survives a round trip is bit-identical.
 */

/** Element type of a {@link Tensor}. float16/bfloat16 data are bit patterns; bool is 0/1 bytes. */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'bool';

/** The floating-point subset of {@link DType}: what q, k and v may be. */
export type FloatDType = 'float32' | 'float16' | 'bfloat16';

/** Every dtype the library knows, in a stable order (used by validation messages and docs). */
export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'bool'];

/** The floating-point dtypes, in a stable order. */
export const FLOAT_DTYPES: readonly FloatDType[] = ['float32', 'float16', 'bfloat16'];

/** Bytes one element of `dtype` occupies in memory. */
export function bytesPerElement(dtype: DType): number {
  return dtype === 'float32' ? 4 : dtype === 'bool' ? 1 : 2;
}

// One shared scratch word for bit casts: conversions are hot in the TS kernels' load paths.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bits of `x` (as an unsigned 32-bit integer). */
export function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The float32 whose bit pattern is `bits`. */
export function float32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/** Rounds `x` to float32 first (as a Float32Array store would), then to IEEE binary16 bits, ties to even. */
export function float32ToFloat16Bits(x: number): number {
  const bits = float32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and is forced quiet so it cannot become Inf.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow rounds to infinity
  if (e <= 0) {
    // Subnormal half (or zero): shift the full 24-bit significand into place and round to even.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem === half && (r & 1) === 1)) r += 1;
    return sign | r; // a carry into bit 10 correctly yields the smallest normal
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r += 1; // may carry into the exponent: correct
  return sign | r;
}

/** Exact value of the binary16 bit pattern `h`. */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) {
    if (mant === 0) return sign * Infinity;
    // Keep the payload: build the float32 NaN with the same top mantissa bits.
    return float32FromBits(((h & 0x8000) << 16) | 0x7f800000 | (mant << 13));
  }
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds `x` to float32 first, then to bfloat16 bits, ties to even. */
export function float32ToBFloat16Bits(x: number): number {
  const bits = float32Bits(x);
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
    return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN, top payload bits kept
  }
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Exact value of the bfloat16 bit pattern `b`. */
export function bfloat16BitsToFloat32(b: number): number {
  return float32FromBits((b & 0xffff) << 16);
}

/** Converts a whole array of 16-bit patterns of `dtype` to float32 values. */
export function halfBitsToFloat32Array(bits: Uint16Array, dtype: 'float16' | 'bfloat16', out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(bits.length);
  if (dtype === 'bfloat16') {
    // Widening bf16 is a 16-bit shift: do it through a Uint32 view of the destination.
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    for (let i = 0; i < bits.length; i++) d32[i] = bits[i] << 16;
  } else {
    const table = float16Table();
    for (let i = 0; i < bits.length; i++) dst[i] = table[bits[i]];
  }
  return dst;
}

/** Rounds every value of `values` to `dtype` and returns the 16-bit patterns. */
export function float32ArrayToHalfBits(values: ArrayLike<number>, dtype: 'float16' | 'bfloat16', out?: Uint16Array): Uint16Array {
  const dst = out ?? new Uint16Array(values.length);
  const conv = dtype === 'float16' ? float32ToFloat16Bits : float32ToBFloat16Bits;
  for (let i = 0; i < values.length; i++) dst[i] = conv(values[i]);
  return dst;
}

let f16table: Float32Array | undefined;
/** All 65,536 binary16 values, built once: a table lookup is the fastest exact decode in JS. */
function float16Table(): Float32Array {
  if (!f16table) {
    f16table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16table[h] = float16BitsToFloat32(h);
  }
  return f16table;
}

/** Rounds a number to the nearest value representable in `dtype` (identity for bool is not meaningful). */
export function roundToDType(x: number, dtype: FloatDType): number {
  if (dtype === 'float32') return Math.fround(x);
  if (dtype === 'float16') return float16BitsToFloat32(float32ToFloat16Bits(x));
  return bfloat16BitsToFloat32(float32ToBFloat16Bits(x));
}
