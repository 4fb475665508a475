/**
 * Fault injection across engines, in child processes (running the built dist/, which `npm test`
 * builds first) so each starts from a clean engine state:
 * the native addon absent (every native kernel of FLASH on cpu gives a reason naming how to rebuild,
 * and the WebAssembly kernel serves FLASH (cpu) with the right result). WebGPU device loss and ORT session failure are injected in
 * test/webgpu-device.test.ts and test/onnxruntime.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('faults', () => {
  it('native addon absent: FLASH (cpu) is served by the wasm kernel, the native kernels give the rebuild command; the result matches the reference', () => {
    const script = `
      import { sdpa, explainDispatch, lastDispatch, tensor, capabilities } from './dist/src/index.js';
      import { mathReference } from './dist/backends/math/cpu.js';
      import { buildParams } from './dist/src/params.js';
      const mk = (n) => tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37)), [1, 2, n / 32, 16]);
      const [q, k, v] = [mk(256), mk(320), mk(320)];
      await capabilities();
      const flash = explainDispatch(q, k, v).candidates.find((c) => c.backend === 'FLASH_ATTENTION');
      const out = await (await sdpa(q, k, v, { isCausal: true })).toFloat32();
      const ref = mathReference(buildParams('t', q, k, v, { isCausal: true }));
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i] - ref[i]));
      console.log(JSON.stringify({ flash, ran: lastDispatch().ran, maxDiff }));
    `;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, SDPA_NATIVE_PATH: '/nonexistent/sdpa_native.node' },
      encoding: 'utf8',
    });
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(r.flash.eligible).toBe(true);
    expect(r.flash.kernel).toMatch(/^wasm_(relaxed_simd|simd128)$/);
    expect(r.ran).toEqual({ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: r.flash.kernel });
    const native = r.flash.kernels.filter((k: { name: string }) => !k.name.startsWith('wasm_'));
    expect(native.length).toBe(10); // amx_bf16, amx_fp16_split, avx512_bf16, avx512_fp32, avx2_fp32, scalar_fp32 and the decode kernels decode_avx512_bf16, decode_avx512, decode_avx2, decode_scalar
    for (const k of native) {
      expect(k.eligible).toBe(false);
      expect(k.reasons[0]).toMatch(new RegExp(`^${k.name} needs the native addon: native addon not built \\(looked for /nonexistent/sdpa_native\\.node\\); rebuild it with \`npm rebuild sdpa-dispatch\``));
    }
    expect(r.maxDiff).toBeLessThan(1e-4);
  });
});
