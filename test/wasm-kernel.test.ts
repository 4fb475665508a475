/**
 * The WebAssembly flash kernel (csrc/kernel_wasm.cc) beyond what conformance and parity cover on
 * every kernel variant: the committed modules equal a fresh build (where clang-16 is installed;
 * CI installs it), features are reported, threads split the same jobs (1 thread and 2 give the
 * same bits), fp16 inputs with subnormals, infinities and NaN convert like the scalar rule, and
 * an abort stops a call between jobs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { capabilities, lastDispatch, sdpa, SdpaAbortError, tensor, withBackends } from '../src/index.js';
import { setWasmThreads } from '../backends/flash/wasm/kernel.js';
import { wasmFeatures } from '../backends/flash/wasm/runtime.js';
import { halfBitsToFloat32Array } from '../src/dtype.js';
import { mathReference } from '../backends/math/cpu.js';
import { buildParams } from '../src/params.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const hasClang = spawnSync('clang-16', ['--version']).status === 0 && spawnSync('wasm-ld-16', ['--version']).status === 0;

describe('wasm build', () => {
  if (hasClang) {
    it('src/generated/flash-wasm.ts holds exactly what clang-16 builds from csrc/kernel_wasm.cc', () => {
      const r = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { cwd: root, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    });
  } else if (process.env.CI) {
    it('the wasm byte check needs clang-16 and lld-16 in CI', () => {
      throw new Error('clang-16 / wasm-ld-16 are missing and CI is set: .ci/run installs them (apt-get install clang-16 lld-16)');
    });
  } else {
    it.skip('committed wasm bytes vs a fresh build: skipped, clang-16 / wasm-ld-16 are not installed (apt-get install clang-16 lld-16)', () => {});
  }
});

await capabilities();
const features = wasmFeatures()!;
const pin = (kernel = 'wasm_simd128') => [{ backend: 'FLASH_ATTENTION', device: 'cpu' as const, kernel }];

describe('wasm kernel', () => {
  it('capabilities() reports SIMD, relaxed SIMD and threads', async () => {
    const fc = (await capabilities()).backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu')!;
    const wasm = fc.details.wasm as Record<string, unknown>;
    expect(wasm).toMatchObject({ simd128: true, threads: true });
    expect(typeof wasm.relaxedSimd).toBe('boolean');
    const k = fc.kernels.find((x) => x.name === 'wasm_simd128')!;
    expect(k.available).toBe(true);
    expect(k.program).toEqual({ kind: 'wasm', module: 'flash-simd128.wasm', entry: 'sdpa_run', simd: 'simd128' });
    const relaxed = fc.kernels.find((x) => x.name === 'wasm_relaxed_simd')!;
    if (!features.relaxedSimd) expect(relaxed.reason).toMatch(/^wasm_relaxed_simd needs WebAssembly relaxed SIMD, which this engine lacks/);
  });

  it('1 thread and 2 threads compute the same bits (the same jobs, shared memory)', async () => {
    const mk = (n: number, s: number) => tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s)), [2, 3, n / 96, 16]);
    const [q, k, v] = [mk(96 * 300, 0), mk(96 * 200, 1), mk(96 * 200, 2)];
    const opts = { isCausal: true, dropoutP: 0.2, seed: 7 };
    try {
      setWasmThreads(1);
      const one = await (await withBackends(pin(), () => sdpa(q, k, v, opts))).toFloat32();
      setWasmThreads(2);
      const two = await (await withBackends(pin(), () => sdpa(q, k, v, opts))).toFloat32();
      expect(lastDispatch()?.ran?.kernel).toBe('wasm_simd128');
      expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    } finally {
      setWasmThreads(undefined);
    }
  });

  it('fp16 inputs: subnormals, ±0 and large values convert exactly (vector path against the float64 reference)', async () => {
    // Every fp16 pattern class in q/k (finite ones), v with subnormals: the vector conversion is
    // checked against the reference, which widens with the scalar rule.
    const n = 4 * 64 * 32;
    const bits = (s: number) => Uint16Array.from({ length: n }, (_, i) => {
      const pick = (i * 2654435761 + s) >>> 0;
      const cls = pick % 4;
      if (cls === 0) return (pick >>> 8) & 0x83ff; // subnormal or ±0
      if (cls === 1) return 0x3c00 | ((pick >>> 8) & 0x3ff); // [1, 2)
      if (cls === 2) return 0x2000 | ((pick >>> 8) & 0x83ff); // small normals, both signs
      return 0x4800 | ((pick >>> 8) & 0x3ff); // [8, 16)
    });
    const q = tensor(bits(1), [1, 4, 64, 32], 'float16');
    const k = tensor(bits(2), [1, 4, 64, 32], 'float16');
    const v = tensor(bits(3), [1, 4, 64, 32], 'float16');
    const out = await (await withBackends(pin(), () => sdpa(q, k, v, { scale: 0.01 }))).toFloat32();
    const ref = mathReference(buildParams('t', q, k, v, { scale: 0.01 }));
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref[i]) / (1e-3 + 2e-3 * Math.abs(ref[i])));
    expect(worst).toBeLessThanOrEqual(1);
    expect(halfBitsToFloat32Array(Uint16Array.of(0x0001), 'float16')[0]).toBe(2 ** -24);
  });

  it('an abort stops the call between jobs and rejects with SdpaAbortError', async () => {
    const S = 2048;
    const q = tensor(Float32Array.from({ length: 8 * S * 64 }, (_, i) => Math.sin(i)), [1, 8, S, 64]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop')), 5);
    const err = await withBackends(pin(), () => sdpa(q, q, q, { signal: ac.signal })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaAbortError);
    expect((err as SdpaAbortError).stage).toBe('running');
    // The pool is usable afterwards: the next call runs to the end.
    const small = tensor(Float32Array.from({ length: 64 }, (_, i) => i / 64), [1, 1, 4, 16]);
    await expect(withBackends(pin(), () => sdpa(small, small, small))).resolves.toBeDefined();
  });
});

describe('wasm kernel in child processes', () => {
  it('wasm_relaxed_simd (relaxed-SIMD FMA) runs where the engine has it (Node 20: --experimental-wasm-relaxed-simd) and matches the reference', () => {
    const script = `
      import { sdpa, lastDispatch, tensor, capabilities, withBackends } from './dist/src/index.js';
      import { mathReference } from './dist/backends/math/cpu.js';
      import { buildParams } from './dist/src/params.js';
      const caps = await capabilities();
      const fc = caps.backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu');
      const rows = [];
      for (const [dtype, opts] of [['float32', { isCausal: true }], ['float16', { dropoutP: 0.25, seed: 3 }], ['bfloat16', {}]]) {
        const mk = (s) => tensor.fromFloat32(Float32Array.from({ length: 2 * 3 * 40 * 24 }, (_, i) => Math.sin(i * 0.3 + s)), [2, 3, 40, 24], dtype);
        const [q, k, v] = [mk(0), mk(1), mk(2)];
        const out = await (await withBackends([{ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: 'wasm_relaxed_simd' }], () => sdpa(q, k, v, opts))).toFloat32();
        const ref = mathReference(buildParams('t', q, k, v, opts));
        let d = 0; for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(out[i] - ref[i]));
        rows.push({ dtype, ran: lastDispatch().ran.kernel, d });
      }
      console.log(JSON.stringify({ wasm: fc.details.wasm, rows }));
    `;
    const out = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.wasm.relaxedSimd).toBe(true);
    const tol: Record<string, number> = { float32: 1e-4, float16: 4e-3, bfloat16: 3e-2 };
    for (const x of r.rows) {
      expect(x.ran).toBe('wasm_relaxed_simd');
      expect(x.d, x.dtype).toBeLessThan(tol[x.dtype]);
    }
  });

  it('FLASH (cpu) runs wasm when SDPA_CPU_ISA=wasm pins it', () => {
    const script = `
      import { sdpa, lastDispatch, tensor, capabilities } from './dist/src/index.js';
      await capabilities();
      const q = tensor(Float32Array.from({ length: 512 }, (_, i) => Math.cos(i)), [1, 2, 16, 16]);
      await sdpa(q, q, q, { isCausal: true });
      console.log(JSON.stringify(lastDispatch().ran));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env: { ...process.env, SDPA_CPU_ISA: 'wasm' }, encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toMatchObject({ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: expect.stringMatching(/^wasm_/) });
  });
});
