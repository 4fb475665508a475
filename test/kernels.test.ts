/**
 * Kernel variants as first-class dispatch entries: every part's kernels are judged by the same
 * evaluator as parts, the report names the kernel that runs and gives every other one its reasons,
 * pins (withBackends entries, SDPA_KERNEL, SDPA_CPU_ISA) choose kernels or become reasons, and
 * backends with new names are selected, scoped and explained like the built-ins.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  BackendFaultError,
  SDPBackend,
  SdpaDispatchError,
  SdpaTypeError,
  capabilities,
  explainDispatch,
  getBackendPriority,
  isBackendEnabled,
  lastDispatch,
  registerBackend,
  sdpa,
  setBackendEnabled,
  setBackendPriority,
  setDispatchLogger,
  tensor,
  unregisterBackend,
  withBackends,
  type BackendDescriptor,
  type BackendPart,
  type KernelVariant,
} from '../src/index.js';
import { mathReference } from '../backends/math/cpu.js';
import { NATIVE_KERNELS } from '../backends/flash/cpu.js';
import { WASM_KERNELS } from '../backends/flash/wasm/kernel.js';
import { loadNative } from '../backends/flash/native.js';
import { rereadEnvSwitches } from '../src/dispatch/pins.js';
import { buildParams } from '../src/params.js';
import { compare } from './helpers/compare.js';
import { randTensor, rng } from './helpers/random.js';
import { setUpWebGpuTests } from './helpers/webgpu.js';

const caps = await capabilities();
const { avail: gpu } = await setUpWebGpuTests();
const r = rng(77);
const q = randTensor(r, [1, 2, 16, 32]);
const k = randTensor(r, [1, 2, 24, 32]);
const v = randTensor(r, [1, 2, 24, 32]);
const native = loadNative();
const brand = native.ok ? native.native.cpuFeatures().brand.trim() || 'this CPU' : '';
const flashCpu = (report = explainDispatch(q, k, v)) => report.candidates.find((c) => c.backend === 'FLASH_ATTENTION' && c.device === 'cpu')!;

/** Runs `fn` with environment variables set (read again by the pins), then restores them. */
async function withEnv<T>(vars: Record<string, string>, fn: () => T | Promise<T>): Promise<T> {
  const saved = Object.keys(vars).map((key) => [key, process.env[key]] as const);
  Object.assign(process.env, vars);
  rereadEnvSwitches();
  try {
    return await fn();
  } finally {
    for (const [key, val] of saved) {
      if (val === undefined) delete process.env[key];
      else process.env[key] = val;
    }
    rereadEnvSwitches();
  }
}

describe.skipIf(!native.ok)(`FLASH_ATTENTION (cpu) kernels${native.ok ? '' : ` (skipped: ${native.error})`}`, () => {
  it('declares exactly the kernels of the addon table, in its order and with its ISAs', () => {
    if (!native.ok) return;
    expect(native.native.kernels().map((k) => ({ name: k.name, isa: k.isa }))).toEqual(NATIVE_KERNELS.map((k) => ({ name: k.name, isa: k.isa })));
  });

  // Dispatch judged each native variant's rules by rebuilding the addon's table through N-API on
  // every call (~2 ms of JS per sdpa() call); the table is fixed per process and is read once now.
  it('reads the addon kernel table and CPU brand once, not on every dispatch', async () => {
    if (!native.ok) return;
    await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, k, v, { device: 'cpu' }));
    const addon = native.native as unknown as Record<string, (...a: unknown[]) => unknown>;
    const counts = { kernels: 0, cpuFeatures: 0 };
    const saved = { kernels: addon.kernels!, cpuFeatures: addon.cpuFeatures! };
    for (const name of ['kernels', 'cpuFeatures'] as const) {
      addon[name] = (...a: unknown[]) => (counts[name]++, saved[name].apply(native.native, a));
    }
    try {
      for (let i = 0; i < 3; i++) {
        await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, k, v, { device: 'cpu' }));
        explainDispatch(q, k, v);
      }
    } finally {
      Object.assign(addon, saved);
    }
    expect(lastDispatch()?.backend).toBe('FLASH_ATTENTION');
    expect(counts).toEqual({ kernels: 0, cpuFeatures: 0 });
  });

  it('names the kernel that runs an fp32 call and gives every other native kernel a reason', () => {
    const c = flashCpu();
    expect(c.eligible).toBe(true);
    const table = native.ok ? native.native.kernels() : [];
    const expected = table.find((k) => k.missing.length === 0 && k.dtypes.includes('float32'))!.name;
    expect(c.kernel).toBe(expected);
    expect(c.kernels.map((k) => k.name)).toEqual([...NATIVE_KERNELS.map((k) => k.name), ...WASM_KERNELS.map((k) => k.name)]);
    for (const kt of c.kernels) {
      if (kt.name === expected) expect(kt.selected).toBe(true);
      else if (!kt.eligible) {
        expect(kt.reasons.length).toBeGreaterThan(0);
        for (const reason of kt.reasons) expect(reason.startsWith(kt.name)).toBe(true);
      }
    }
    // A kernel whose CPU features are missing says which, naming this CPU.
    for (const t of table.filter((x) => x.missing.length > 0)) {
      expect(c.kernels.find((x) => x.name === t.name)!.reasons).toEqual([`${t.name} needs ${t.missing.join(', ')}; this CPU (${brand}) lacks ${t.missing.length > 1 ? 'them' : 'it'}`]);
    }
    const text = explainDispatch(q, k, v).toString();
    expect(text).toMatch(new RegExp(`→ FLASH_ATTENTION \\(cpu\\)\\s+selected — kernel ${expected}`));
    for (const t of table.filter((x) => x.missing.length > 0)) expect(text).toContain(`· ${t.name} needs ${t.missing[0]}`);
  });

  it('the kernel that ran is in lastDispatch() and in the log line', async () => {
    const lines: string[] = [];
    setDispatchLogger((line) => lines.push(line));
    try {
      await withBackends([SDPBackend.FLASH_ATTENTION], () => sdpa(q, k, v));
    } finally {
      setDispatchLogger(undefined);
    }
    const ran = flashCpu().kernel!;
    expect(lastDispatch()?.ran).toEqual({ backend: 'FLASH_ATTENTION', device: 'cpu', kernel: ran });
    expect(lastDispatch()?.kernel).toBe(ran);
    expect(lastDispatch()?.backend).toBe('FLASH_ATTENTION');
    expect(lines[0]).toMatch(new RegExp(`^\\[sdpa\\] FLASH_ATTENTION \\(cpu\\) kernel ${ran} for q \\[1, 2, 16, 32\\]`));
  });

  it('a withBackends kernel pin runs that kernel; the others say what pinned them', async () => {
    const pin = { backend: SDPBackend.FLASH_ATTENTION, device: 'cpu' as const, kernel: 'scalar_fp32' };
    const out = await withBackends([pin], () => sdpa(q, k, v));
    expect(lastDispatch()?.ran?.kernel).toBe('scalar_fp32');
    expect(compare(await out.toFloat32(), mathReference(buildParams('t', q, k, v, {})), { atol: 2e-4, rtol: 1e-3 }).ok).toBe(true);
    const c = await withBackends([pin], () => flashCpu());
    expect(c.kernel).toBe('scalar_fp32');
    for (const kt of c.kernels.filter((x) => x.name !== 'scalar_fp32')) expect(kt.reasons).toContain(`${kt.name} is not used: withBackends pins flash (cpu) to scalar_fp32`);
  });

  it('an unknown kernel name is a clear error listing the valid ones', async () => {
    const err = await withBackends([{ backend: SDPBackend.FLASH_ATTENTION, kernel: 'avx9_fp32' }], () => 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaTypeError);
    expect(String((err as Error).message)).toMatch(/backends\[0\]\.kernel: expected kernels of FLASH_ATTENTION — cpu: decode_avx512_bf16, decode_avx512, decode_avx2, amx_bf16, .*avx2_fp32, decode_scalar, scalar_fp32, wasm_relaxed_simd, wasm_simd128; webgpu: decode_f16_portable, decode_f16, sgmat_st, sgmat_mw, sgmat_1sg, tiled_portable_f16, tiled_sg_f16, rowwise_f16, got "avx9_fp32"/);
  });

  it('SDPA_CPU_ISA pins by ISA (read once, shown in capabilities()), and a bad value is a reason, not a default', async () => {
    await withEnv({ SDPA_CPU_ISA: 'scalar' }, async () => {
      // The scalar ISA has two kernels: the decode one (S <= 16, as here: S = 16) and the prefill one.
      const c = flashCpu();
      expect(c.kernel).toBe('decode_scalar');
      expect(flashCpu(explainDispatch(randTensor(r, [1, 2, 17, 32]), k, v)).kernel).toBe('scalar_fp32');
      expect(c.kernels.find((x) => x.name === 'avx2_fp32')!.reasons).toContain('avx2_fp32 is not used: SDPA_CPU_ISA=scalar pins flash (cpu) to decode_scalar or scalar_fp32');
      const cap = (await capabilities()).backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu')!;
      expect(cap.pinned).toEqual({ kernels: ['decode_scalar', 'scalar_fp32'], source: 'SDPA_CPU_ISA=scalar' });
      expect((await capabilities()).env.switches.SDPA_CPU_ISA).toBe('scalar');
    });
    await withEnv({ SDPA_CPU_ISA: 'sse9' }, () => {
      const c = flashCpu();
      expect(c.eligible).toBe(false);
      expect(c.reasons).toContain("SDPA_CPU_ISA='sse9' is not one of scalar, avx2, avx512, amx, wasm; unset it or pick one");
    });
    // The read is once: changing the variable later (without re-reading) changes nothing.
    const before = flashCpu().kernel;
    process.env.SDPA_CPU_ISA = 'sse9';
    try {
      expect(flashCpu().kernel).toBe(before);
      expect(flashCpu().eligible).toBe(true);
    } finally {
      delete process.env.SDPA_CPU_ISA;
    }
  });

  it('a pinned kernel that cannot run makes the part ineligible with a reason (never a silent default)', async () => {
    // bf16-only AMX kernels cannot run an fp32 call on any CPU.
    await withEnv({ SDPA_KERNEL: 'FLASH_ATTENTION/cpu=amx_bf16' }, () => {
      const c = flashCpu();
      expect(c.eligible).toBe(false);
      expect(c.reasons).toContain('flash (cpu) is pinned by SDPA_KERNEL=FLASH_ATTENTION/cpu=amx_bf16 to amx_bf16, which cannot run this call (reasons under its kernels)');
      // Where AMX exists the dtype rule says why; elsewhere the missing CPU features come first.
      expect(c.kernels.find((x) => x.name === 'amx_bf16')!.reasons.join('; ')).toMatch(/^amx_bf16 (runs bfloat16 inputs, got float32|needs .*; this CPU \(.+\) lacks (it|them))$/);
    });
    await withEnv({ SDPA_KERNEL: 'FLASH_ATTENTION/cpu=avx9' }, () => {
      expect(flashCpu().reasons[0]).toMatch(/^SDPA_KERNEL pins flash \(cpu\) to 'avx9', which is not one of its kernels \(decode_avx512_bf16, decode_avx512, decode_avx2, amx_bf16, /);
    });
  });
});

describe.skipIf(!gpu.available)('FLASH_ATTENTION (webgpu) kernels on this adapter', () => {
  it('runs the register-tiled kernel here and says why not the tensor-core ones; decode shapes get the decode kernel', () => {
    const h = (shape: number[]) => tensor.fromFloat32(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, 'float16');
    const report = explainDispatch(h([1, 2, 32, 32]), h([1, 2, 32, 32]), h([1, 2, 32, 32]), { device: 'webgpu' });
    const c = report.candidates.find((x) => x.backend === 'FLASH_ATTENTION')!;
    const adapter = caps.backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'webgpu')!;
    const hasMatrices = ((adapter.details.subgroupMatrixConfigs as unknown[]) ?? []).length > 0;
    if (hasMatrices) return; // a real tensor-core adapter runs sgmat_mw (checked on the H200, docs/performance-webgpu.md)
    // The portable variants come first (faster than the subgroup ones on the H200).
    const tiled = 'tiled_portable_f16';
    expect(c.kernel).toBe(tiled);
    expect(c.kernels.find((x) => x.name === 'decode_f16_portable')!.reasons.join(' ')).toMatch(/^decode_f16_portable takes S ≤ 16 queries \(decode\), got S=32/);
    expect(c.kernels.find((x) => x.name === 'sgmat_mw')!.reasons.join(' ')).toMatch(/^sgmat_mw needs tensor cores through subgroup matrices .* has no chromium-experimental-subgroup-matrix feature/);
    expect(report.toString()).toMatch(new RegExp(`FLASH_ATTENTION \\(webgpu\\)\\s+.*kernel ${tiled}[\\s\\S]*· sgmat_mw needs tensor cores`));
    const dec = explainDispatch(h([1, 4, 1, 64]), h([1, 2, 300, 64]), h([1, 2, 300, 64]), { device: 'webgpu', enableGqa: true }).candidates.find((x) => x.backend === 'FLASH_ATTENTION')!;
    expect(dec.kernel).toBe('decode_f16_portable');
    // EFFICIENT: head dims that are not whole 16-byte words (4 f32) go to the row-wise kernel, with the reason.
    const f = (shape: number[]) => tensor.fromFloat32(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, 'float32');
    const odd = explainDispatch(f([1, 1, 32, 6]), f([1, 1, 32, 6]), f([1, 1, 32, 6]), { device: 'webgpu' }).candidates.find((x) => x.backend === 'EFFICIENT_ATTENTION')!;
    expect(odd.kernel).toBe('rowwise_f32');
    expect(odd.kernels.find((x) => x.name === 'tiled_portable_f32')!.reasons.join(' ')).toMatch(/^tiled_portable_f32 reads 16-byte words: E and Ev must be multiples of 4 for float32, got E=6, Ev=6/);
  });
});

describe('kernels in capabilities()', () => {
  it('lists each part’s kernels with what they run and their static facts', () => {
    for (const b of caps.backends) {
      expect(b.kernels.length).toBeGreaterThan(0);
      for (const kc of b.kernels) {
        expect(kc.name).toMatch(/^[a-z][a-z0-9_]*$/);
        expect(kc.summary.length).toBeGreaterThan(10);
        expect(['native', 'wasm', 'wgsl', 'typescript', 'onnx', 'custom']).toContain(kc.program.kind);
        if (!kc.available) expect(kc.reason!.length).toBeGreaterThan(10);
      }
    }
    const math = caps.backends.find((b) => b.backend === 'MATH' && b.device === 'cpu')!;
    expect(math.kernels).toEqual([expect.objectContaining({ name: 'float64_reference', available: true, program: { kind: 'typescript', fn: 'mathReferenceWithLse' } })]);
    if (native.ok) {
      const fc = caps.backends.find((b) => b.backend === 'FLASH_ATTENTION' && b.device === 'cpu')!;
      const avx2 = fc.kernels.find((x) => x.name === 'avx2_fp32')!;
      expect(avx2.details).toMatchObject({ isa: 'avx2', requires: expect.arrayContaining(['avx2', 'fma', 'f16c']) });
      expect(avx2.program).toEqual({ kind: 'native', entry: 'flashAttention', isa: 'avx2' });
    }
    expect(caps.env).toEqual({ switches: expect.any(Object), problems: expect.any(Array) });
  });
});

describe('a kernel that faults gives way to the next kernel of its part', () => {
  const calls: string[] = [];
  const good: KernelVariant = {
    name: 'good',
    summary: 'the math reference, as a test kernel',
    program: { kind: 'typescript', fn: 'mathReference' },
    run: async (p) => {
      calls.push('good');
      return tensor(Float32Array.from(mathReference(p)), [...p.q.shape.slice(0, -1), p.ev]);
    },
  };
  const faulty: KernelVariant = {
    name: 'faulty',
    summary: 'always faults (a device that went away)',
    program: { kind: 'custom', description: 'throws BackendFaultError' },
    run: async () => {
      calls.push('faulty');
      throw new BackendFaultError('faulty: injected fault');
    },
  };
  const part = (kernels: KernelVariant[]): BackendPart => ({
    device: 'cpu',
    label: 'twokernels (cpu)',
    caps: { dtypes: ['float32'], maxHeadDim: 1024, headDimMultiple: 1, maskKinds: ['none'], causalVariants: [], maskWithCausal: false, dropout: false, gqa: false, customScale: true, valueDimDiffers: true },
    availability: () => ({ available: true }),
    constraints: [],
    kernels,
    tolerance: { float32: { atol: 1e-6, rtol: 1e-6 }, float16: { atol: 1e-3, rtol: 1e-3 }, bfloat16: { atol: 8e-3, rtol: 8e-3 } },
  });
  afterEach(() => void unregisterBackend('TWO_KERNELS'));

  it('runs the second kernel after the first faults and records the fault by kernel', async () => {
    registerBackend({ name: 'TWO_KERNELS', priority: 100, summary: 'test backend with two kernels', parts: [part([faulty, good])] });
    calls.length = 0;
    const out = await withBackends(['TWO_KERNELS'], () => sdpa(q, k, v));
    expect(calls).toEqual(['faulty', 'good']);
    expect(lastDispatch()?.ran).toEqual({ backend: 'TWO_KERNELS', device: 'cpu', kernel: 'good' });
    expect(lastDispatch()?.fallbacks).toEqual([{ backend: 'TWO_KERNELS', device: 'cpu', kernel: 'faulty', reason: 'faulty: injected fault' }]);
    expect(compare(await out.toFloat32(), mathReference(buildParams('t', q, k, v, {})), { atol: 1e-6, rtol: 1e-6 }).ok).toBe(true);
  });

  it('a kernel with narrower caps than its part gets the caps reasons under its own name', () => {
    const narrow: KernelVariant = { ...good, name: 'narrow', caps: { ...part([good]).caps, maxHeadDim: 16 } };
    registerBackend({ name: 'TWO_KERNELS', priority: 100, summary: 'test', parts: [part([narrow, good])] });
    const c = explainDispatch(q, k, v).candidates.find((x) => x.backend === 'TWO_KERNELS')!;
    expect(c.kernel).toBe('good');
    expect(c.kernels[0].reasons).toEqual(['narrow requires head dim <= 16, got 32; use EFFICIENT_ATTENTION']);
  });
});

describe('open backend names', () => {
  const calls: number[] = [];
  const mine: BackendDescriptor = {
    name: 'MY_BACKEND',
    priority: 100,
    summary: 'a backend registered from a test file',
    parts: [
      {
        device: 'cpu',
        label: 'mine (cpu)',
        caps: { dtypes: ['float32'], maxHeadDim: 64, headDimMultiple: 1, maskKinds: ['none'], causalVariants: [], maskWithCausal: false, dropout: false, gqa: false, customScale: true, valueDimDiffers: false },
        availability: () => ({ available: true }),
        constraints: [],
        run: async (p) => {
          calls.push(p.s);
          return tensor(Float32Array.from(mathReference(p)), [...p.q.shape.slice(0, -1), p.ev]);
        },
        tolerance: { float32: { atol: 1e-6, rtol: 1e-6 }, float16: { atol: 1e-3, rtol: 1e-3 }, bfloat16: { atol: 8e-3, rtol: 8e-3 } },
      },
    ],
  };
  afterEach(() => void unregisterBackend('MY_BACKEND'));

  it('is selected at top priority, explained, scoped by withBackends and reordered by setBackendPriority', async () => {
    registerBackend(mine);
    expect(getBackendPriority()[0]).toBe('MY_BACKEND');
    const report = explainDispatch(q, k, v);
    expect(report.selected).toEqual({ backend: 'MY_BACKEND', device: 'cpu', kernel: 'default' });
    expect(report.toString()).toMatch(/→ MY_BACKEND \(cpu\)\s+selected/);
    calls.length = 0;
    await sdpa(q, k, v);
    expect(calls).toEqual([16]);
    expect(lastDispatch()?.ran?.backend).toBe('MY_BACKEND');
    // Outside its caps it says why, like a built-in, and the next backend runs.
    const wide = randTensor(r, [1, 2, 8, 80]);
    expect(explainDispatch(wide, wide, wide).candidates.find((c) => c.backend === 'MY_BACKEND')!.reasons).toEqual(['mine (cpu) requires head dim <= 64, got 80; use EFFICIENT_ATTENTION']);
    await withBackends([SDPBackend.MATH], () => sdpa(q, k, v));
    expect(lastDispatch()?.ran?.backend).toBe('MATH');
    await withBackends(['MY_BACKEND'], async () => {
      expect(isBackendEnabled('MY_BACKEND')).toBe(true);
      expect(isBackendEnabled(SDPBackend.MATH)).toBe(false);
      await sdpa(q, k, v);
    });
    expect(lastDispatch()?.ran?.backend).toBe('MY_BACKEND');
    const saved = getBackendPriority();
    setBackendPriority([SDPBackend.MATH, 'MY_BACKEND']);
    try {
      expect(explainDispatch(q, k, v).selected?.backend).toBe('MATH');
    } finally {
      setBackendPriority(saved);
    }
    setBackendEnabled('MY_BACKEND', false);
    try {
      expect(explainDispatch(q, k, v).candidates.find((c) => c.backend === 'MY_BACKEND')!.reasons).toEqual([
        'MY_BACKEND is disabled (setBackendEnabled(SDPBackend.MY_BACKEND, false)); re-enable it or use withBackends([...])',
      ]);
    } finally {
      setBackendEnabled('MY_BACKEND', true);
    }
  });

  it('unknown names are clear errors; an unregistered name leaves the order', async () => {
    await expect(withBackends(['NOPE'], () => 1)).rejects.toThrow(/withBackends: backends\[0\]: expected one of SDPBackend\.FLASH_ATTENTION, .*, got "NOPE"/);
    expect(() => setBackendEnabled('NOPE', true)).toThrow(SdpaTypeError);
    registerBackend(mine);
    unregisterBackend('MY_BACKEND');
    expect(getBackendPriority()).not.toContain('MY_BACKEND');
    expect(() => isBackendEnabled('MY_BACKEND')).toThrow(/expected one of SDPBackend/);
  });

  it('refuses malformed descriptors with the argument named', () => {
    expect(() => registerBackend(null as unknown as BackendDescriptor)).toThrow(/registerBackend: descriptor: expected a backend descriptor/);
    expect(() => registerBackend({ ...mine, name: 'bad name' })).toThrow(/descriptor\.name: expected an identifier/);
    expect(() => registerBackend({ ...mine, parts: [{ ...mine.parts[0], run: undefined }] })).toThrow(/descriptor\.parts\[0\]\.run: expected a function \(or a kernels array\)/);
    expect(() => registerBackend({ ...mine, parts: [{ ...mine.parts[0], kernels: [] }] })).toThrow(/descriptor\.parts\[0\]\.kernels: expected a non-empty array/);
  });

  it('nothing eligible: the aggregate error lists kernel reasons under the part', async () => {
    registerBackend({ ...mine, parts: [{ ...mine.parts[0], run: undefined, kernels: [{ name: 'tiny', summary: 'head dim 8 only', program: { kind: 'custom', description: 'test' }, caps: { ...mine.parts[0].caps, maxHeadDim: 8 }, run: mine.parts[0].run! }] }] });
    const err = await withBackends(['MY_BACKEND'], () => sdpa(q, k, v)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdpaDispatchError);
    expect((err as Error).message).toMatch(/`MY_BACKEND` \(cpu\) is not supported because:\n {4}mine \(cpu\) has no kernel that can run this call \(reasons under its kernels\)\n {6}· tiny requires head dim <= 8, got 32/);
  });
});
