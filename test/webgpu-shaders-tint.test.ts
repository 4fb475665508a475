/**
 * The tensor-core shaders as the GPU sees them — real subgroup matrices, not the emulation — pass
 * Tint's validation: Dawn's null backend offers chromium-experimental-subgroup-matrix (with no
 * configurations), so every shipped program and every configuration the benchmark times is
 * parsed, resolved and checked for uniformity here, without a GPU. What Tint accepts there it
 * accepts on an NVIDIA adapter (same Dawn); pipeline limits are checked by the kernels' constraints.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { mwProgram, stConfig, stProgram, type StConfig } from '../backends/flash/webgpu-sgmat.js';
// @ts-expect-error a bench-only JavaScript module without types
import { KVC_LAB_SHADER, KVS_LAB_SHADER, ST2_LAB_SHADER, STI_LAB_SHADER, ST_LAB_SHADER, kvcLabProgram, kvcLabSource, kvsLabProgram, kvsLabSource, st2LabProgram, st2LabSource, stLabProgram, stLabSource, stiLabProgram, stiLabSource } from '../scripts/lib/st-lab.mjs';
import * as sgmat from '../backends/flash/webgpu-sgmat.js';
import { expandDirectives, expandTemplate, type ProgramInfo } from '../src/webgpu/programs.js';
// @ts-expect-error a bench-only JavaScript module without types
import { labDefines, labWgsl, parseLabTiles } from '../scripts/lib/mw-lab.mjs';

interface Dawn {
  create(flags: string[]): GPU;
  globals: object;
}

/**
 * Dawn's null backend, or why there is none (the optional `webgpu` package missing). The GPU and
 * adapter objects are returned too: Dawn aborts the process if they are collected under a live device.
 */
async function nullDevice(): Promise<{ device?: GPUDevice; why?: string; keepAlive?: unknown[] }> {
  let dawn: Dawn;
  try {
    dawn = createRequire(import.meta.url)('webgpu') as Dawn;
  } catch (err) {
    return { why: `the optional package 'webgpu' (Dawn for Node) is not installed (${(err as Error).message.split('\n')[0]})` };
  }
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const gpu = dawn.create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { why: "Dawn's null backend gave no adapter" };
  const features = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as GPUFeatureName[];
  const missing = features.filter((f) => !adapter.features.has(f));
  if (missing.length) return { why: `Dawn's null adapter lacks ${missing.join(', ')}` };
  return { device: await adapter.requestDevice({ requiredFeatures: features }), keepAlive: [gpu, adapter] };
}

const { device, why, keepAlive } = await nullDevice();

function wgsl(prog: ProgramInfo): string {
  const read = (f: string) => readFileSync(new URL(`../shaders/${f}`, import.meta.url), 'utf8');
  const labs: Record<string, () => string> = { [ST_LAB_SHADER]: stLabSource, [ST2_LAB_SHADER]: st2LabSource, [KVS_LAB_SHADER]: kvsLabSource, [STI_LAB_SHADER]: stiLabSource, [KVC_LAB_SHADER]: kvcLabSource };
  const src = (labs[prog.shader] ? labs[prog.shader]!() : read(prog.shader)).replace(/^\s*\/\/#include\s+"([\w.-]+)"\s*$/gm, (_, f: string) => read(f));
  return expandTemplate(expandDirectives(src, prog.defines, prog.shader), prog.defines, prog.shader);
}

const st = (c: Partial<StConfig>, d: number): StConfig => ({ ...stConfig(d), ...c });
const programs: [string, ProgramInfo][] = [
  ...[16, 32, 48, 64, 96, 128].flatMap((d) => [false, true].map((tail): [string, ProgramInfo] => [`sgmat_st d${d}${tail ? ' tail' : ''}`, stProgram(d, tail, 'float16')])),
  ['sgmat_st d64 bf16', stProgram(64, false, 'bfloat16')],
  // A sliding window's lower edge (LOWER): the shipped shaders' windowed programs.
  ...[64, 128].flatMap((d) => [false, true].map((tail): [string, ProgramInfo] => [`sgmat_st d${d}${tail ? ' tail' : ''} lower edge`, stProgram(d, tail, 'float16', true)])),
  ...[64, 128, 256].map((d): [string, ProgramInfo] => [`sgmat_mw d${d} L=${d + 3} lower edge`, mwProgram(d, d + 3, 'float16', true)]),
  ['sgmat_mw d128 L=128 bf16 lower edge', mwProgram(128, 128, 'bfloat16', true)],
  ...([
    [{ bc: 64 }, 64], [{ bc: 64, qreg: false }, 128], [{ qreg: true }, 128], [{ qreg: false }, 64], [{ nw: 2 }, 64], [{ nw: 4, qreg: false }, 128], [{ pipe: true }, 64], [{ pipe: true, qreg: false }, 128],
    [{ s16: true }, 64], [{ s16: true, pipe: true, nw: 2 }, 128], [{ bc: 16 }, 64], [{ bc: 16 }, 128], [{ bc: 32, s16: true, qreg: false }, 96],
  ] as [Partial<StConfig>, number][]).map(([c, d]): [string, ProgramInfo] => [`st lab ${JSON.stringify(c)} d${d} tail`, stLabProgram(st(c, d), d, true, 'float16') as ProgramInfo]),
  ...([[{ bc: 32, qreg: true }, 64, false], [{ bc: 32, qreg: false }, 128, true], [{ bc: 64, qreg: true }, 128, false], [{ bc: 64, qreg: false }, 32, true], [{ ns: 4, bc: 64, qreg: true }, 64, false], [{ ns: 4, bc: 64, qreg: false }, 128, true]] as const).map(([c, d, tail]): [string, ProgramInfo] => [`st2 pair lab ${JSON.stringify(c)} d${d}${tail ? ' tail' : ''}`, st2LabProgram(c, d, tail, 'bfloat16') as ProgramInfo]),
  // The 2026-12-04 lab candidates (K/V staged through workgroup memory; the softmax inlined).
  ...([[1, false, 64], [2, true, 128], [4, false, 32], [4, true, 128]] as const).flatMap(([nw, scm, d]) => [false, true].map((lower): [string, ProgramInfo] => [`kvs lab nw${nw}${scm ? ' scm' : ''} d${d}${lower ? ' lower edge' : ''}`, kvsLabProgram({ nw, scm }, d, 'float16', lower) as ProgramInfo])),
  ...[16, 64, 128].flatMap((d) => [false, true].map((tail): [string, ProgramInfo] => [`sti lab d${d}${tail ? ' tail lower edge' : ''} bf16`, stiLabProgram(sgmat, d, tail, 'bfloat16', tail) as ProgramInfo])),
  ...[16, 64, 128].flatMap((d) => [false, true].map((lower): [string, ProgramInfo] => [`kvc lab d${d}${lower ? ' lower edge' : ''}`, kvcLabProgram(d, 'float16', lower) as ProgramInfo])),
  ...[16, 64, 128].flatMap((d) => [false, true].map((lower): [string, ProgramInfo] => [`kvc lab prefetched d${d}${lower ? ' lower edge' : ''}`, kvcLabProgram(d, 'bfloat16', lower, true) as ProgramInfo])),
  ...[16, 64, 128, 256].flatMap((d) => (['float16', 'bfloat16'] as const).map((dt): [string, ProgramInfo] => [`sgmat_mw d${d} L=${d + 3} ${dt}`, mwProgram(d, d + 3, dt)])),
  ...[16, 64, 128, 256].map((d): [string, ProgramInfo] => [`sgmat_mw d${d} L=${d}`, mwProgram(d, d)]),
  ['sgmat_1sg d64', { shader: 'flash-sgmat.wgsl', entryPoint: 'main', defines: { SG: 32, DMAX: 64, CAUSAL_SKIP: 1 }, bindings: ['uniform', 'read', 'read', 'read', 'rw'] }],
];

describe.skipIf(!device)(`tensor-core shaders pass Tint with real subgroup matrices${why ? ` (skipped: ${why})` : ''}`, () => {
  for (const [name, prog] of programs) {
    it(name, async () => {
      const module = device!.createShaderModule({ code: wgsl(prog) });
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
      expect(errors.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`)).toEqual([]);
    });
  }
  // The bench-only lab copy of the multi-subgroup kernel, with the switches of the 2026-12-01 runs.
  for (const [tiles, d] of [['4x2x16d', 64], ['8x1x16d-f256', 64], ['2x1x32s', 128], ['4x2x16d-f3072', 128], ['1x2x64d-f2', 64], ['4x1x64d-a63', 64]] as const) {
    it(`lab ${tiles} d${d}`, async () => {
      const code = labWgsl(labDefines(parseLabTiles(tiles), d), (src: string, defs: Record<string, string | number>) => expandTemplate(expandDirectives(src, defs, 'lab'), defs, 'lab'));
      const errors = (await device!.createShaderModule({ code }).getCompilationInfo()).messages.filter((m) => m.type === 'error');
      expect(errors.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`)).toEqual([]);
    });
  }
  it('a shader Tint rejects is reported (the check can fail)', async () => {
    const bad = wgsl(stProgram(64, false, 'float16')).replace('subgroupMatrixStore<row_major>(&s_sc', 'subgroupMatrixStore<row_major>(&p_sc');
    const errors = (await device!.createShaderModule({ code: bad }).getCompilationInfo()).messages.filter((m) => m.type === 'error');
    expect(errors.length).toBeGreaterThan(0);
  });
});

describe('Tint validation setup', () => {
  it('has a null device or says why not', () => {
    expect(keepAlive === undefined).toBe(device === undefined);
    if (!device) expect(why!.length).toBeGreaterThan(10);
    else expect(device.features.has('chromium-experimental-subgroup-matrix')).toBe(true);
  });
});
