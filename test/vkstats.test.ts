/**
 * The pipeline-statistics tooling of scripts/vkstats, end to end on the Vulkan driver at hand
 * (lavapipe in CI): VK_LAYER_SDPA_capture writes the SPIR-V that Dawn hands the driver for a
 * pipeline of ours, and vkstats rebuilds a compute pipeline from it — reading its bindings, workgroup
 * size and workgroup memory from the module — and prints statistics (lavapipe has none to give:
 * that is said, not faked) and resident warps per SM. On an H200 the same run prints the
 * driver's register and spill counts (scripts/gpu/webgpu-tc.sh).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { setUpWebGpuTests } from './helpers/webgpu.js';

const root = new URL('..', import.meta.url).pathname;
const tools = ['cmake', 'c++'].filter((t) => spawnSync(t, ['--version']).status !== 0);
const { avail, required } = await setUpWebGpuTests();
const work = mkdtempSync(join(tmpdir(), 'vkstats-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A small compute shader with known facts: 64 lanes, 400 bytes of workgroup memory, a uniform and
// a storage binding.
const SHADER = `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
var<workgroup> t: array<f32, 100>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) {
  t[i % 100u] = f32(i);
  workgroupBarrier();
  if (i < p.n) { o[i] = t[(i + 1u) % 100u]; }
}`;

const skip = tools.length ? `needs ${tools.join(' and ')} to build scripts/vkstats (CI installs cmake)` : !avail.available ? 'no Vulkan/WebGPU adapter' : '';

describe.skipIf(skip !== '' && !required)(`vkstats and the capture layer${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('build, capture the SPIR-V of a Dawn pipeline, rebuild it and print its interface, statistics and occupancy', () => {
    expect(skip, skip).toBe('');
    const build = join(work, 'build');
    const cfg = spawnSync('cmake', ['-S', join(root, 'scripts/vkstats'), '-B', build, '-DCMAKE_BUILD_TYPE=Release'], { encoding: 'utf8' });
    expect(cfg.status, cfg.stderr).toBe(0);
    const make = spawnSync('cmake', ['--build', build, '-j2'], { encoding: 'utf8' });
    expect(make.status, make.stdout + make.stderr).toBe(0);
    expect(existsSync(join(build, 'VkLayer_sdpa_capture.json'))).toBe(true);

    const capture = join(work, 'capture');
    const script = `
      const { create, globals } = await import('webgpu');
      Object.assign(globalThis, globals);
      const gpu = create([]);
      const adapter = await gpu.requestAdapter();
      const device = await adapter.requestDevice();
      const module = device.createShaderModule({ code: ${JSON.stringify(SHADER)} });
      await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      console.log('pipeline created');
      process.exit(0);`;
    const env = { ...process.env, VK_LAYER_PATH: build, VK_INSTANCE_LAYERS: 'VK_LAYER_SDPA_capture', VK_LOADER_LAYERS_ENABLE: 'VK_LAYER_SDPA_capture', SDPA_VKCAPTURE_DIR: capture, SDPA_VKCAPTURE_STATS: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
    spawnSync('mkdir', ['-p', capture]);
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
    expect(run.stdout, run.stderr).toContain('pipeline created');
    const spv = readdirSync(capture).filter((f) => f.endsWith('.spv'));
    expect(spv.length).toBeGreaterThanOrEqual(1);

    const stats = spawnSync(join(build, 'vkstats'), ['--outdir', capture, '--json', join(capture, 'out.json'), ...spv.map((f) => `m${f.slice(0, 4)}=${join(capture, f)}`)], { env, encoding: 'utf8', timeout: 120_000 });
    expect(stats.status, stats.stdout + stats.stderr).toBe(0);
    // The module's interface as vkstats read it from the SPIR-V.
    expect(stats.stdout).toMatch(/module m\d{4} \| entry '\w+', workgroup 64x1x1, 400 B of workgroup variables, 2 bindings/);
    // Statistics, or why there are none.
    expect(stats.stdout).toMatch(/stat m\d{4} (\d+ \| .+ = .+|\| \(VK_KHR_pipeline_executable_properties is not available on this device\))/);
    expect(stats.stdout).toMatch(/occupancy m\d{4} \| sm_90: \d+ workgroup\(s\) of 2 warp\(s\)/);
    // A file that is no SPIR-V is an error, not a silent skip.
    const bad = spawnSync(join(build, 'vkstats'), [`bad=${join(root, 'package.json')}`], { env, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/module bad \| (not a SPIR-V module|cannot read)/);
  }, 300_000);
});
