/**
 * The flash-decoding kernel's shape (src/webgpu/portable.ts): lanes per key group, keys per step,
 * workgroup memory and the split of the keys, from the call's facts alone (no adapter needed). The
 * choices rest on the H200 sweep of 2026-12-03 (scripts/probe-webgpu-decode.mjs,
 * docs/performance-webgpu.md); the kernels themselves are checked on lavapipe by the conformance
 * and runtime tests.
 */
import { describe, expect, it } from 'vitest';
import { tensor } from '../src/index.js';
import { buildParams } from '../src/params.js';
import { decodeKeysPerStep, decodePrograms, decodeShape, decodeSplit, decodeWorkgroupBytes } from '../src/webgpu/portable.js';
import type { WebGpuContext } from '../src/webgpu/device.js';

const params = (b: number, hq: number, hkv: number, s: number, l: number, d: number, dtype: 'float16' | 'float32' | 'bfloat16') => {
  const z = (h: number, n: number) => tensor(dtype === 'float32' ? new Float32Array(b * h * n * d) : new Uint16Array(b * h * n * d), [b, h, n, d], dtype);
  return buildParams('test', z(hq, s), z(hkv, l), z(hkv, l), { enableGqa: hq !== hkv });
};
const ctx32 = { adapterInfo: { subgroupMinSize: 32, subgroupMaxSize: 32 } } as unknown as WebGpuContext;
const ctx8 = { adapterInfo: { subgroupMinSize: 8, subgroupMaxSize: 8 } } as unknown as WebGpuContext;

describe('decode kernel shape', () => {
  it('takes 8-lane groups and 2 keys a step for fp16 D=128, 16 lanes and 4 keys for f32 (8 and 16 K/V words a lane and step)', () => {
    const h = params(8, 32, 8, 1, 32768, 128, 'float16');
    expect(decodeShape(ctx32, h, false)).toEqual({ gw: 8, u: 2, nkv: 2, nvv: 2 });
    expect(decodeShape(ctx32, params(8, 32, 8, 1, 32768, 128, 'bfloat16'), false)).toMatchObject({ gw: 8, u: 2 });
    expect(decodeShape(ctx32, params(8, 32, 8, 1, 32768, 128, 'float32'), false)).toEqual({ gw: 16, u: 4, nkv: 2, nvv: 2 });
    // Short rows: 8 lanes, up to 4 keys; long rows: fewer keys a step.
    expect(decodeShape(ctx32, params(1, 4, 4, 1, 512, 64, 'float16'), false)).toMatchObject({ gw: 8, u: 4, nkv: 1 });
    expect(decodeShape(ctx32, params(1, 4, 4, 1, 512, 256, 'float16'), false)).toMatchObject({ gw: 16, u: 2, nkv: 2 });
    expect(decodeShape(ctx32, params(1, 4, 4, 1, 512, 256, 'float32'), false)).toMatchObject({ gw: 16, u: 2, nkv: 4 });
    // The subgroup variants: 8 words a step (f32: 16 lanes, 2 keys); subgroups narrower than 16
    // lanes: 8-lane groups for the shuffles.
    expect(decodeShape(ctx32, params(8, 32, 8, 1, 32768, 128, 'float32'), true)).toMatchObject({ gw: 16, u: 2, nkv: 2 });
    expect(decodeShape(ctx8, params(1, 4, 4, 1, 512, 128, 'float32'), true)).toMatchObject({ gw: 8, u: 1, nkv: 4 });
    expect(decodeKeysPerStep(8, 1, 1)).toBe(4);
    expect(decodeKeysPerStep(8, 4, 4)).toBe(1);
  });

  it('sizes workgroup memory from the shape and passes it to the shader', () => {
    const h = params(8, 32, 8, 1, 32768, 128, 'float16');
    const { main } = decodePrograms(ctx32, h, false);
    expect(main.defines).toMatchObject({ GW: 8, GW16: 0, U: 2, DPL: 1, NKV: 2, NVV: 2, SC4: 32 });
    // Partials: 128 lanes × 8 floats = 256 vec4; end of chunk: 16 groups × 32 vec4 = 512.
    expect(main.defines.SM4).toBe(512);
    expect(decodeWorkgroupBytes(128, decodeShape(ctx32, h, false), false)).toBe(16 * 512 + 16 * 32 + 128);
    expect(decodeWorkgroupBytes(256, decodeShape(ctx32, params(1, 4, 4, 1, 512, 256, 'float32'), false), false)).toBeLessThanOrEqual(16384);
  });

  it('aims for about 1024 workgroups of at least 512 keys', () => {
    expect(decodeSplit(params(8, 32, 8, 1, 32768, 128, 'float16'))).toEqual({ chunks: 16, chunkLen: 2048, rowBlocks: 1, kBegin: 0 });
    expect(decodeSplit(params(1, 32, 8, 1, 32768, 128, 'float16'))).toEqual({ chunks: 64, chunkLen: 512, rowBlocks: 1, kBegin: 0 });
    expect(decodeSplit(params(1, 4, 4, 1, 300, 64, 'float16'))).toEqual({ chunks: 1, chunkLen: 320, rowBlocks: 1, kBegin: 0 });
    expect(decodeSplit(params(1, 4, 4, 1, 1100, 64, 'float16'))).toEqual({ chunks: 3, chunkLen: 384, rowBlocks: 1, kBegin: 0 });
  });
});
