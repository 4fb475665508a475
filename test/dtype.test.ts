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
