/**
 * The tensor-core kernel (shaders/flash-sgmat-mw.wgsl) on an adapter without subgroup matrices:
 * SDPA_WEBGPU_SGMAT_EMULATE=1 rewrites its subgroup-matrix builtins into plain WGSL
 * (src/webgpu/sgmat-emulation.ts), so its logic — Q/K/V staging, the lazy row max and the O
 * rescale, causal variants, GQA, dropout, ragged shapes, the output write — is checked against
 * the MATH reference on lavapipe in CI. Small tile shapes and head dims only: the emulated shader
 * is slow to compile (tens of seconds on lavapipe) and to run. The real instructions are checked on
 * an NVIDIA GPU (scripts/bench-webgpu.mjs, docs/performance-webgpu.md).
 */
process.env.SDPA_WEBGPU_SGMAT_EMULATE = '1';

import { describe, expect, it } from 'vitest';
import { causalLowerRight, explainDispatch, sdpa, tensor, withBackends, SDPBackend, type Tensor } from '../src/index.js';
import { readFileSync } from 'node:fs';
import { flashWebgpu } from '../backends/flash/webgpu.js';
import { mwProgram, parseSgmatTiles, sgmatCompileFailures, sgmatMwKernel, sgmatMwWorkgroupBytes } from '../backends/flash/webgpu-sgmat.js';
import { buildParams } from '../src/params.js';
import { gpuContext, withContextForTesting, type WebGpuContext } from '../src/webgpu/device.js';
import { emulateSubgroupMatrix } from '../src/webgpu/sgmat-emulation.js';
import { expandDirectives, expandTemplate } from '../src/webgpu/programs.js';
import { compare } from './helpers/compare.js';
import { setUpWebGpuTests } from './helpers/webgpu.js';

const { avail, required, skipReason } = await setUpWebGpuTests();

let seed = 4242;
const rnd = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const randT = (shape: number[], dtype: 'float16' | 'bfloat16', amp = 1): Tensor =>
  tensor.fromFloat32(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rnd() * amp), shape, dtype);

describe('subgroup-matrix emulation (text transform)', () => {
  const src = `enable f16;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read> a: array<f16>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
var<workgroup> t: array<f32, 256>;
alias L = subgroup_matrix_left<f16, 16, 16>;
@compute @workgroup_size(32) fn main() {
  let x = subgroupMatrixLoad<L, row_major>(&a, 0u, 16u);
  let y = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&a, 256u, 16u);
  var z = subgroup_matrix_result<f32, 16, 16>();
  z = subgroupMatrixMultiplyAccumulate(x, y, z);
  subgroupMatrixStore<row_major>(&t, 0u, subgroupMatrixScalarMultiply(z, 2.0), 16u);
  subgroupMatrixStore<col_major>(&o, 0u, z, 16u);
}`;

  it('replaces every subgroup-matrix type and builtin with plain-WGSL helpers', () => {
    const out = emulateSubgroupMatrix(src);
    expect(out).not.toMatch(/subgroup_matrix_|subgroupMatrix|chromium/);
    expect(out).toContain('sgm_load_a_row_major(0u, 16u)');
    expect(out).toContain('sgm_load_a_col_major(256u, 16u)');
    expect(out).toContain('sgm_store_t_row_major(0u, sgm_scalar_multiply(z, f32(2.0)), 16u)');
    // Stores convert to the array's element type; col_major swaps the index roles.
    expect(out).toMatch(/o\[off \+ c \* stride \+ r\] = f32\(m\.e\[r \* 16u \+ c\]\)/);
  });

  it('names what it cannot emulate', () => {
    expect(() => emulateSubgroupMatrix(src.replace('subgroup_matrix_left<f16, 16, 16>', 'subgroup_matrix_left<f16, 8, 8>'))).toThrow(/only 16×16 matrices.*subgroup_matrix_left<f16, 8, 8>/);
    expect(() => emulateSubgroupMatrix(src.replace('(&a, 0u, 16u)', '(&a, 0u, true, 16u)'))).toThrow(/subgroupMatrixLoad takes \(&array, offset, stride\), got 4/);
    expect(() => emulateSubgroupMatrix(src.replace('subgroupMatrixLoad<L, row_major>', 'subgroupMatrixLoad<L>'))).toThrow(/row_major or col_major template argument/);
  });
});

describe('shader directives', () => {
  it('unrolls //#for with loop variables and index expressions, and keeps //#if / //#if ! bodies by parameter', () => {
    const out = expandDirectives(['//#for a in 0..N', '//#for b in 0..2', 'x_{{a}}_{{a*2+b}} {{KEEP}}', '//#end', '//#end', '//#if ON', 'on', '//#end', '//#if OFF', 'off', '//#end', '//#if !OFF', 'not off', '//#end', '//#if !ON', 'not on', '//#end'].join('\n'), { N: 2, ON: 1, OFF: 0 }, 't.wgsl');
    expect(out.split('\n')).toEqual(['x_0_0 {{KEEP}}', 'x_0_1 {{KEEP}}', 'x_1_2 {{KEEP}}', 'x_1_3 {{KEEP}}', 'on', 'not off']);
  });
  it('reports unbalanced directives and unknown parameters with the shader name', () => {
    expect(() => expandDirectives('//#for a in 0..2\nx', {}, 't.wgsl')).toThrow(/t\.wgsl:1: directive without \/\/#end/);
    expect(() => expandDirectives('//#for a in 0..M\nx\n//#end', {}, 't.wgsl')).toThrow(/t\.wgsl: directive parameter M has no value/);
    expect(() => expandDirectives('//#if ON\nx\n//#end\n//#end', { ON: 1 }, 't.wgsl')).toThrow(/\/\/#end without a directive/);
  });
});

describe('tile shapes', () => {
  it('parses NWxRTxBC[s|d] with threshold and ablation suffixes, and refuses others', () => {
    expect(parseSgmatTiles('4x1x64d')).toEqual({ nw: 4, rt: 1, bc: 64, kvs: false, th: 8, abl: 0, flg: 0 });
    expect(parseSgmatTiles('2x2x32s-t6-a3')).toEqual({ nw: 2, rt: 2, bc: 32, kvs: true, th: 6, abl: 3, flg: 0 });
    expect(parseSgmatTiles('3x1x64d')).toBeUndefined();
    expect(parseSgmatTiles('4x1x48d')).toBeUndefined();
  });
  // Routing on a real adapter, from its facts alone (a context whose device is never used: the
  // kernels' constraints read only configs, subgroup sizes and limits).
  const fakeCtx = (sg: number, storage = 49152): WebGpuContext =>
    ({
      adapterInfo: { vendor: 'test', architecture: '', device: 'test', description: 'fake adapter', subgroupMinSize: sg, subgroupMaxSize: sg },
      features: new Set(['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']),
      limits: { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30, maxComputeWorkgroupStorageSize: storage, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024, maxComputeWorkgroupsPerDimension: 65535, maxStorageBuffersPerShaderStage: 8 },
      subgroupMatrixConfigs: [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }],
      source: 'test',
    }) as unknown as WebGpuContext;
  const explainOn = (ctx: WebGpuContext, s: number, l: number, d: number) => {
    const z = (len: number) => tensor(new Uint16Array(len * d), [1, 1, len, d], 'float16');
    return withContextForTesting(ctx, () => explainDispatch(z(s), z(l), z(l), { device: 'webgpu' }).candidates.find((c) => c.backend === 'FLASH_ATTENTION')!);
  };
  const reasonsOf = (c: ReturnType<typeof explainOn>, k: string) => c.kernels.find((x) => x.name === k)!.reasons.join('; ');
  it('routes real adapters to the multi-subgroup kernel, the first kernel where it cannot run, else the portable one, and says why', () => {
    expect(explainOn(fakeCtx(32), 4096, 4096, 64).kernel).toBe('sgmat_mw');
    expect(explainOn(fakeCtx(32), 77, 93, 64).kernel).toBe('sgmat_mw'); // ragged: K/V staged
    // 64-wide subgroups: the first kernel, which takes whole tiles only.
    const wide = explainOn(fakeCtx(64), 128, 128, 64);
    expect(wide.kernel).toBe('sgmat_1sg');
    expect(reasonsOf(wide, 'sgmat_mw')).toMatch(/^sgmat_mw needs 32-wide subgroups, the adapter has 64\.\.64/);
    const neither = explainOn(fakeCtx(64), 77, 93, 64);
    expect(neither.kernel).toBe('tiled_f16');
    expect(reasonsOf(neither, 'sgmat_1sg')).toMatch(/sgmat_1sg needs whole tiles, S % 64 = 0 and L % 64 = 0, got S=77, L=93/);
    // Too little workgroup memory for the tiles: the reason names bytes and the limit.
    expect(reasonsOf(explainOn(fakeCtx(32, 16384), 256, 256, 256), 'sgmat_mw')).toMatch(/need \d+ bytes of workgroup memory, over maxComputeWorkgroupStorageSize 16384/);
    // Head dims that are not tensor-core tiles.
    expect(reasonsOf(explainOn(fakeCtx(32), 64, 64, 24), 'sgmat_mw')).toMatch(/sgmat_mw needs E = Ev, a multiple of 16 up to 256, got E=24/);
  });
  it('a pinned kernel runs instead of the first eligible one', async () => {
    const z = tensor(new Uint16Array(128 * 64), [1, 1, 128, 64], 'float16');
    const c = await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, device: 'webgpu', kernel: 'sgmat_1sg' }], () =>
      withContextForTesting(fakeCtx(32), () => explainDispatch(z, z, z, { device: 'webgpu' }).candidates.find((x) => x.backend === 'FLASH_ATTENTION')!),
    );
    expect(c.kernel).toBe('sgmat_1sg');
    expect(reasonsOf(c, 'sgmat_mw')).toBe('sgmat_mw is not used: withBackends pins flash (webgpu) to sgmat_1sg');
  });
  it('counts the workgroup memory of S, P, the staging block and the row arrays', () => {
    // 64 rows: S 64·64·4, P 64·72·2, K/V staging 2·64·72·2, row arrays 2·64·4, flags 16.
    expect(sgmatMwWorkgroupBytes({ nw: 4, rt: 1, bc: 64, kvs: false, th: 8, abl: 0, flg: 0 }, 64)).toBe(16384 + 9216 + 18432 + 512 + 16);
  });
});

/** Byte sizes of the `var<workgroup>` arrays of the expanded flash-sgmat-mw.wgsl for `tiles`. */
function workgroupArrays(tiles: string, d: number): Map<string, number> {
  const prog = mwProgram(parseSgmatTiles(tiles)!, d);
  const raw = readFileSync(new URL('../shaders/flash-sgmat-mw.wgsl', import.meta.url), 'utf8').replace('//#include "common.wgsl"', '');
  const code = expandTemplate(expandDirectives(raw, prog.defines, prog.shader), prog.defines, prog.shader);
  // The module's u32 constants, evaluated in order (integer arithmetic, select, & and !=).
  const consts = new Map<string, number>();
  const evalExpr = (expr: string): number => {
    const js = expr
      .replace(/(\d+)u\b/g, '$1')
      .replace(/select\(([^,()]+),\s*([^,()]+),\s*([^()]*\([^()]*\)[^()]*|[^()]*)\)/g, '(($3) ? ($2) : ($1))')
      .replace(/\b[A-Z][A-Z0-9_]*\b/g, (n) => {
        if (!consts.has(n)) throw new Error(`unknown constant ${n} in ${expr}`);
        return String(consts.get(n));
      });
    return Number(new Function(`return (${js}) | 0;`)());
  };
  for (const m of code.matchAll(/^const (\w+): u32 = (.+);$/gm)) consts.set(m[1], evalExpr(m[2]));
  const bytes = { f32: 4, u32: 4, f16: 2 } as Record<string, number>;
  const out = new Map<string, number>();
  for (const m of code.matchAll(/^var<workgroup> (\w+): array<(\w+), (.+)>;$/gm)) out.set(m[1], evalExpr(m[3]) * bytes[m[2]]);
  return out;
}

describe('workgroup memory of the tensor-core kernel', () => {
  // Tile loads assume 16-byte aligned arrays; with every variable a multiple of 16 bytes, any
  // layout the driver picks keeps them aligned (see the shader's note on `flags`).
  for (const [tiles, d] of [['4x1x64d', 64], ['2x2x64s', 64], ['4x1x32d', 128], ['8x1x16d-f256', 64], ['1x2x64d-f2', 64], ['2x1x16s', 16], ['4x2x16d', 64], ['4x2x16d-f3072', 128]] as const) {
    it(`${tiles}, head dim ${d}: every array a multiple of 16 bytes, the sum as sgmatMwWorkgroupBytes says`, () => {
      const arrays = workgroupArrays(tiles, d);
      expect(arrays.size).toBeGreaterThanOrEqual(6);
      for (const [name, size] of arrays) expect(size % 16, `${name}: ${size} bytes`).toBe(0);
      expect([...arrays.values()].reduce((a, b) => a + b, 0)).toBe(sgmatMwWorkgroupBytes(parseSgmatTiles(tiles)!, d));
    });
  }
});

describe.skipIf(!avail.available)(`FLASH_ATTENTION (webgpu) tensor-core kernel, emulated${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  interface Case {
    name: string;
    b: number; hq: number; hkv: number; s: number; l: number; d: number;
    causal?: boolean; lowerRight?: boolean; dropoutP?: number; dtype?: 'float16' | 'bfloat16'; qAmp?: number; scale?: number;
  }
  // Tile shapes: two subgroups of 16 rows with K/V staged (lane pairs per row, shuffles), and
  // one subgroup of 32 rows reading K/V straight from storage with O written in two chunks (D > BC).
  const configs: { tiles: string; d: number; cases: Case[] }[] = [
    {
      tiles: '2x1x16s',
      d: 16,
      cases: [
        { name: 'ragged S=45 L=37, GQA 4:2, causal', b: 1, hq: 4, hkv: 2, s: 45, l: 37, d: 16, causal: true },
        { name: 'lower-right S=40 L=24 (rows with no key → zeros)', b: 2, hq: 1, hkv: 1, s: 40, l: 24, d: 16, lowerRight: true },
        { name: 'large scores move the row max (O rescaled)', b: 1, hq: 2, hkv: 2, s: 32, l: 80, d: 16, qAmp: 40 },
        { name: 'dropout 0.3 equals the CPU mask', b: 1, hq: 2, hkv: 2, s: 32, l: 48, d: 16, dropoutP: 0.3 },
        { name: 'bfloat16, custom scale', b: 1, hq: 2, hkv: 2, s: 33, l: 48, d: 16, dtype: 'bfloat16', scale: 0.7 },
      ],
    },
    {
      tiles: '1x2x16d',
      d: 32,
      cases: [
        { name: 'aligned S=64 L=48', b: 2, hq: 2, hkv: 2, s: 64, l: 48, d: 32 },
        { name: 'causal S=L=64, large scores', b: 1, hq: 2, hkv: 1, s: 64, l: 64, d: 32, causal: true, qAmp: 20 },
        { name: 'ragged S=50 (L whole blocks)', b: 1, hq: 2, hkv: 2, s: 50, l: 32, d: 32 },
      ],
    },
    {
      // The two speed switches of the default tiles: scores read once into registers (1024) and
      // K/V tiles prefetched a step ahead (2048; direct K/V, so L whole blocks; ragged L stages).
      tiles: '1x2x16d-f3072',
      d: 16,
      cases: [
        { name: 'causal S=L=48, large scores, prefetched K/V', b: 1, hq: 2, hkv: 1, s: 48, l: 48, d: 16, causal: true, qAmp: 30 },
        { name: 'ragged S=40 L=37 (staged, no prefetch), dropout 0.2', b: 1, hq: 2, hkv: 2, s: 40, l: 37, d: 16, dropoutP: 0.2 },
      ],
    },
  ];

  for (const cfg of configs) {
    describe(`tiles ${cfg.tiles}, head dim ${cfg.d}`, () => {
      for (const c of cfg.cases) {
        it(c.name, async () => {
          expect(gpuContext()!.sgmatEmulated).toBe(true);
          // The kernel with this config's tiles, run directly (the shipped variant keeps its own tiles).
          const kernel = sgmatMwKernel('flash (webgpu)', () => parseSgmatTiles(cfg.tiles)!, 'sgmat_mw_test');
          const dtype = c.dtype ?? 'float16';
          const q = randT([c.b, c.hq, c.s, c.d], dtype, c.qAmp ?? 1);
          const k = randT([c.b, c.hkv, c.l, c.d], dtype);
          const v = randT([c.b, c.hkv, c.l, c.d], dtype);
          const opts = {
            isCausal: !!c.causal, enableGqa: c.hq !== c.hkv, dropoutP: c.dropoutP ?? 0, seed: 11, scale: c.scale,
            attnMask: c.lowerRight ? causalLowerRight(c.s, c.l) : undefined,
          };
          const ref = await withBackends([SDPBackend.MATH], () => sdpa(q, k, v, { ...opts, device: 'cpu' }));
          const out = await kernel.run(buildParams('test', q, k, v, { ...opts, device: 'webgpu' }), { recordAllocation: () => undefined });
          const r = compare(await out.toFloat32(), await ref.toFloat32(), flashWebgpu.tolerance[dtype]);
          expect(r.ok, r.message).toBe(true);
          expect(sgmatCompileFailures()).toEqual({});
        }, 600_000);
      }
    });
  }
});

describe('webgpu availability (emulation file)', () => {
  it(required ? 'a WebGPU adapter is present (SDPA_REQUIRE_WEBGPU=1)' : 'reports whether a WebGPU adapter is present', () => {
    if (required) expect(avail.available, skipReason).toBe(true);
    else if (!avail.available) expect(avail.reason.length).toBeGreaterThan(10);
  });
});
