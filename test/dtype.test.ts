/** Exact float16/bfloat16 conversions: every bit pattern, ties to even, NaN/Inf/subnormals. */
import { describe, expect, it } from 'vitest';
import { float16BitsToFloat32, float32ToFloat16Bits, float32ToBFloat16Bits, bfloat16BitsToFloat32, tensor } from '../src/index.js';

const isNaNHalf = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe('float16', () => {
  it('round-trips all 65,536 bit patterns (NaNs stay NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const back = float32ToFloat16Bits(float16BitsToFloat32(h));
      if (isNaNHalf(h)) expect(isNaNHalf(back)).toBe(true);
      else expect(back).toBe(h);
    }
  });
  it('rounds to nearest, ties to even', () => {
    // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties to the even mantissa (1).
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3·2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
  });
  it('keeps infinities, overflows to infinity, preserves subnormals and signed zero', () => {
    expect(float32ToFloat16Bits(Infinity)).toBe(0x7c00);
    expect(float32ToFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // halfway past the max rounds to inf
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // exactly half of it: ties to even (0)
    expect(float32ToFloat16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float16BitsToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(isNaNHalf(float32ToFloat16Bits(NaN))).toBe(true);
  });
});

describe('bfloat16', () => {
  it('round-trips all 65,536 bit patterns (NaNs stay NaN)', () => {
    for (let b = 0; b < 65536; b++) {
      const v = bfloat16BitsToFloat32(b);
      const back = float32ToBFloat16Bits(v);
      if (Number.isNaN(v)) expect(Number.isNaN(bfloat16BitsToFloat32(back))).toBe(true);
      else expect(back).toBe(b);
    }
  });
  it('rounds to nearest, ties to even; keeps infinities and subnormals', () => {
    expect(float32ToBFloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(float32ToBFloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(float32ToBFloat16Bits(Infinity)).toBe(0x7f80);
    expect(float32ToBFloat16Bits(-Infinity)).toBe(0xff80);
    expect(bfloat16BitsToFloat32(0x0001)).toBe(2 ** -133);
    expect(float32ToBFloat16Bits(3.4028234663852886e38)).toBe(0x7f80); // max float rounds up to inf
  });
});

describe('tensor()', () => {
  it('infers float32 and bool, stores halves as bits, converts back', async () => {
    const t = tensor.fromFloat32(Float32Array.from([1, -2.5, 0.1]), [3], 'float16');
    expect(t.dtype).toBe('float16');
    expect(t.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(await t.toFloat32())).toEqual([1, -2.5, float16BitsToFloat32(float32ToFloat16Bits(0.1))]);
    expect(tensor(new Float32Array(4), [2, 2]).dtype).toBe('float32');
    expect(tensor(new Uint8Array([0, 1]), [2]).dtype).toBe('bool');
  });
});

/**
 * The exact rounding of float64 `x` to a 16-bit format, ties to even: the neighbours among all
 * finite values of the format (exact in float64), compared through their midpoint (also exact).
 */
const sortedValues = new Map<(bits: number) => number, { v: number; bits: number }[]>();
function exactRounding(decode: (bits: number) => number, x: number): number {
  let finite = sortedValues.get(decode);
  if (!finite) {
    finite = [];
    for (let b = 0; b < 65536; b++) {
      const v = decode(b);
      if (Number.isFinite(v) && !Object.is(v, -0)) finite.push({ v, bits: b });
    }
    finite.sort((a, b) => a.v - b.v);
    sortedValues.set(decode, finite);
  }
  let lo = 0;
  let hi = finite.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (finite[mid].v <= x) lo = mid;
    else hi = mid;
  }
  const [a, b] = [finite[lo], finite[hi]];
  if (x === a.v) return a.bits;
  const m = (a.v + b.v) / 2;
  return x < m ? a.bits : x > m ? b.bits : (a.bits & 1) === 0 ? a.bits : b.bits;
}

describe('tensor() input conversion', () => {
  it('number[] and Float64Array become float32 by default, converted once', () => {
    const a = tensor([1, 0.1, -2], [3]);
    expect(a.dtype).toBe('float32');
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data as Float32Array)).toEqual([1, Math.fround(0.1), -2]);
    const src = Float64Array.of(0.1, 0.2);
    const b = tensor(src, [1, 2]);
    expect(b.data).toBeInstanceOf(Float32Array);
    src[0] = 5; // a copy: later writes to the float64 source do not reach the tensor
    expect((b.data as Float32Array)[0]).toBe(Math.fround(0.1));
    // Storage-class data is still shared.
    const f = new Float32Array(2);
    expect(tensor(f, [2]).data).toBe(f);
  });

  it('float64 values round to float16/bfloat16 exactly as a direct rounding would (no double rounding through float32)', () => {
    // 1 + 2^-11 + 2^-40 is just above the float16 midpoint between 1 and 1 + 2^-10: a float32
    // rounding first (to 1 + 2^-11, the midpoint) would then tie to 1; the right answer is 1 + 2^-10.
    expect(Array.from(tensor([1 + 2 ** -11 + 2 ** -40, 1 + 2 ** -11], [2], 'float16').data as Uint16Array)).toEqual([0x3c01, 0x3c00]);
    expect(Array.from(tensor([1 + 2 ** -8 + 2 ** -40, 1 + 2 ** -8], [2], 'bfloat16').data as Uint16Array)).toEqual([0x3f81, 0x3f80]);
    // Midpoints of neighbouring values, and values a hair either side of them, across the range.
    for (const [dtype, decode] of [['float16', float16BitsToFloat32], ['bfloat16', bfloat16BitsToFloat32]] as const) {
      const xs: number[] = [];
      for (let bits = 1; bits < 0x7b00; bits += 97) {
        const m = (decode(bits) + decode(bits + 1)) / 2;
        xs.push(m, m * (1 + 2 ** -45), m * (1 - 2 ** -45), -m, decode(bits) * (1 + 2 ** -30));
      }
      const got = tensor(xs, [xs.length], dtype).data as Uint16Array;
      for (let i = 0; i < xs.length; i++) {
        const want = xs[i] < 0 ? exactRounding(decode, -xs[i]) | 0x8000 : exactRounding(decode, xs[i]);
        expect(got[i], `${dtype} of ${xs[i]}`).toBe(want);
      }
    }
  });

  it('Float32Array values round to float16/bfloat16; Uint16Array stays bit patterns', () => {
    expect(Array.from(tensor(Float32Array.of(1, 0.5), [2], 'float16').data as Uint16Array)).toEqual([0x3c00, 0x3800]);
    const bits = Uint16Array.of(0x3c00);
    expect(tensor(bits, [1], 'bfloat16').data).toBe(bits);
  });

  const F16 = (globalThis as { Float16Array?: new (v: number[]) => ArrayLike<number> & { buffer: ArrayBuffer } }).Float16Array;
  it.skipIf(!F16)('a Float16Array is float16 storage, shared (skipped where the runtime has no Float16Array: Node < 24; the Chromium app of test/package.test.ts runs it)', () => {
    const h = new F16!([1, 0.5, -2]);
    const t = tensor(h as never, [3]);
    expect(t.dtype).toBe('float16');
    expect((t.data as Uint16Array).buffer).toBe(h.buffer);
    expect(Array.from(t.data as Uint16Array)).toEqual([0x3c00, 0x3800, 0xc000]);
  });

  it('`using` disposes a tensor at the end of its block', () => {
    const t = tensor([1, 2], [2]);
    {
      using u = t;
      expect(u.size).toBe(2);
      expect(u.disposed).toBe(false);
    }
    // Tensors are frozen (dispose cannot be patched): the block's end is seen through `disposed`.
    expect(t.disposed).toBe(true);
    expect(() => t.toFloat32Sync()).toThrow(/toFloat32Sync: tensor: expected a tensor with live storage/);
  });
});
