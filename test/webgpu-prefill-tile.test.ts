/**
 * The portable prefill kernel's register tile (src/webgpu/portable.ts prefillTile): rows and keys
 * per invocation, keys per block, tile storage and loop bounds, from the call's facts and the
 * adapter's limits alone (no adapter needed). The choices rest on the H200 sweep of 2026-12-03,
 * session 7 (scripts/probe-webgpu-portable.mjs, docs/performance-webgpu.md); the kernel itself is
 * checked on lavapipe by the conformance and runtime tests, and every tile by the probe.
 */
import { describe, expect, it } from 'vitest';
import { tensor } from '../src/index.js';
import { buildParams } from '../src/params.js';
import { prefillProgram, prefillTile, prefillTileFits, prefillWorkgroupBytes } from '../src/webgpu/portable.js';
import type { WebGpuContext } from '../src/webgpu/device.js';

const params = (s: number, d: number, dtype: 'float16' | 'float32' | 'bfloat16', dv = d) => {
  const z = (n: number, dd: number) => tensor(dtype === 'float32' ? new Float32Array(n * dd) : new Uint16Array(n * dd), [1, 1, n, dd], dtype);
  return buildParams('test', z(s, d), z(s, d), z(s, dv), {});
};
const adapter = (storage: number, subgroupMinSize: number) =>
  ({
    limits: { maxComputeWorkgroupStorageSize: storage, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256 },
    adapterInfo: { subgroupMinSize, subgroupMaxSize: 32 },
  }) as unknown as WebGpuContext;
const h200 = adapter(49152, 32);
const lavapipe = adapter(32768, 8);
const swept = { rows: 64, rpi: 2, bc: 32, constLoops: true };

describe('portable prefill tile', () => {
  it('takes 2 rows × 4 keys, 32-key blocks and constant loop bounds for halves and f32 at D 64 and 128 (the H200 sweep)', () => {
    for (const d of [64, 128]) {
      expect(prefillTile(h200, params(4096, d, 'float16'), false)).toEqual({ ...swept, halfTiles: true });
      expect(prefillTile(h200, params(4096, d, 'bfloat16'), true)).toEqual({ ...swept, halfTiles: true });
      expect(prefillTile(h200, params(4096, d, 'float32'), false)).toEqual({ ...swept, halfTiles: false });
    }
    // D=256 halves fit 32-key half tiles (32 KB); f32 tiles at D=256 fit nowhere.
    expect(prefillTile(h200, params(64, 256, 'float16'), false)).toEqual({ ...swept, halfTiles: true });
    expect(prefillTile(h200, params(64, 256, 'float32'), false)).toBeUndefined();
    // A 32 KB adapter (lavapipe) takes the same tile at D=128.
    expect(prefillTile(lavapipe, params(64, 128, 'float16'), false)).toEqual({ ...swept, halfTiles: true });
  });

  it('sizes workgroup memory from the tile and keeps row groups off narrower subgroups', () => {
    // K/P 8·max(128·32/4, 32·32) + V 2·32·128 + the reduction array 64 rows × 8 lanes × 4.
    expect(prefillWorkgroupBytes(128, 128, 32, false, true, 8, 64)).toBe(8192 + 8192 + 2048);
    expect(prefillWorkgroupBytes(128, 128, 32, true, true, 8, 64)).toBe(8192 + 8192 + 4);
    const tile = { rows: 64, rpi: 2, bc: 32, halfTiles: true, constLoops: true } as const;
    expect(prefillTileFits(h200, 64, 64, true, tile)).toBe(true);
    expect(prefillTileFits(lavapipe, 64, 64, true, tile)).toBe(true); // 8-lane subgroups hold an 8-lane row group
    expect(prefillTileFits({ ...lavapipe, adapterInfo: { ...lavapipe.adapterInfo, subgroupMinSize: 4 } }, 64, 64, true, tile)).toBe(false);
    expect(prefillTileFits(lavapipe, 256, 256, false, { ...tile, bc: 64 })).toBe(false); // 64-key half tiles at D=256 exceed 32 KB
  });

  it('makes the Q·Kᵀ loop bound a constant only where E fills its bucket', () => {
    const full = prefillProgram(h200, params(256, 128, 'float16'), false).defines;
    expect(full).toMatchObject({ BR: 64, NT: 256, RPI: 2, TX: 8, BC: 32, KV4: 1, NV: 4, HTILE: 1, QKW: '16u', PVC: 'BC' });
    const ragged = prefillProgram(h200, params(256, 96, 'float16'), false).defines;
    expect(ragged).toMatchObject({ DMAX: 128, QKW: 'EW', PVC: 'BC' });
    expect(prefillProgram(h200, params(256, 64, 'float32'), false).defines).toMatchObject({ HTILE: 0, QKW: '16u', NV: 2 });
  });
});
