/**
 * FLASH_ATTENTION on the CPU: the native C++ kernel (`csrc/`) — query blocks × key blocks with an
 * online softmax, no S×L buffer, AVX-512 / AVX2 / scalar fp32 paths and AMX-BF16 tiles for
 * bfloat16. The addon's kernel table (`kernels()`) says what each path needs; the kernel is chosen
 * here from it (SDPA_CPU_ISA pins the kernels of one ISA) and named to the addon, which refuses one
 * the CPU or the call's shape cannot run. The addon reads q/k/v/mask in place through per-head
 * base offsets and strides; the kernel runs on the addon's thread pool, off the event loop.
 */
import { BackendFaultError } from '../../src/errors.js';
import { envVar } from '../../src/env.js';
import { named } from '../../src/dispatch/constraints.js';
import type { AttentionParams, BackendPart, RunContext } from '../../src/dispatch/types.js';
import { headView, maskView } from '../../src/cpu/layout.js';
import { Tensor } from '../../src/tensor.js';
import { loadNative, NATIVE_DTYPE, type NativeAttentionArgs, type NativeKernelInfo, type NativeMaskDType } from './native.js';

/** Largest head dim (E and Ev) the CPU flash part accepts; per-thread scratch grows linearly with it. */
export const FLASH_CPU_MAX_HEAD_DIM = 1024;

/** A tensor whose last dim is contiguous (the kernel reads rows as vectors); copies only when it is not. */
function rowContiguous(t: Tensor): Tensor {
  if (t.strides[t.strides.length - 1] === 1 || t.shape[t.shape.length - 1] === 1) return t;
  return new Tensor({ shape: t.shape, dtype: t.dtype, data: t.contiguousData() });
}

const MASK_DTYPE: Readonly<Record<string, NativeMaskDType>> = { bool: 0, float32: 1, float16: 2, bfloat16: 3 };

/** The addon arguments for `p`, writing into `out` (contiguous `[...batch, Hq, S, Ev]`). */
export function buildNativeArgs(p: AttentionParams, out: Float32Array | Uint16Array, numThreads = 0): NativeAttentionArgs {
  const q = rowContiguous(p.q), k = rowContiguous(p.k), v = rowContiguous(p.v);
  const qv = headView(q), kv = headView(k), vv = headView(v);
  const args: NativeAttentionArgs = {
    dtype: NATIVE_DTYPE[p.dtype],
    q: q.data as Float32Array | Uint16Array,
    k: k.data as Float32Array | Uint16Array,
    v: v.data as Float32Array | Uint16Array,
    out,
    bh: p.batch * p.hq,
    hq: p.hq,
    hkv: p.hkv,
    s: p.s,
    l: p.l,
    e: p.e,
    ev: p.ev,
    qBase: qv.bases,
    kvBaseK: kv.bases,
    kvBaseV: vv.bases,
    qRowStride: qv.rowStride,
    kRowStride: kv.rowStride,
    vRowStride: vv.rowStride,
    causal: p.causal !== undefined,
    diagonalOffset: p.causal?.diagonalOffset ?? 0,
    scale: p.scale,
    dropoutP: p.dropoutP, // a double end to end (the kernel's threshold is dropoutP·2^24, exact)
    seed: p.seed >>> 0,
    numThreads,
  };
  const mv = maskView(p);
  if (p.mask && mv) {
    args.maskKind = p.mask.kind === 'bool' ? 1 : 2;
    args.maskDType = MASK_DTYPE[p.mask.tensor.dtype];
    args.mask = p.mask.tensor.data as Uint8Array | Float32Array | Uint16Array;
    args.maskBase = mv.bases;
    args.maskStrideS = mv.rowStride;
    args.maskStrideL = mv.colStride;
  }
  return args;
}

/** The values SDPA_CPU_ISA takes: the `isa` of the addon's kernels. */
export const CPU_ISA_VALUES = ['scalar', 'avx2', 'avx512', 'amx'] as const;

let isaPin: { readonly value: string | undefined } | undefined;
/** SDPA_CPU_ISA, read once (the first dispatch): it pins FLASH (cpu) to the kernels of that ISA. */
export function cpuIsaPin(): string | undefined {
  isaPin ??= { value: envVar('SDPA_CPU_ISA') || undefined };
  return isaPin.value;
}

/** Why `k` cannot run `p`, or undefined: the rules the addon enforces, in the same order. */
export function nativeKernelRefusal(k: NativeKernelInfo, p: AttentionParams, cpu: string): string | undefined {
  if (!k.dtypes.includes(p.dtype)) return `${k.name} runs ${k.dtypes.join(', ')} inputs, got ${p.dtype}`;
  if (k.missing.length > 0) return `${k.name} needs the CPU features ${k.missing.join(', ')}; this CPU (${cpu}) lacks them`;
  if (p.e % k.eMultiple !== 0) return `${k.name} needs the head dim E to be a multiple of ${k.eMultiple}, got E=${p.e}`;
  if (p.ev % k.evMultiple !== 0) return `${k.name} needs the value head dim Ev to be a multiple of ${k.evMultiple}, got Ev=${p.ev}`;
  if (p.e > k.maxHeadDim || p.ev > k.maxHeadDim) return `${k.name} runs head dims up to ${k.maxHeadDim}, got E=${p.e}, Ev=${p.ev}`;
  if (k.maxQueries !== undefined && p.s > k.maxQueries) return `${k.name} runs at most ${k.maxQueries} queries per head, got S=${p.s}`;
  if (k.minKeys > 0 && p.l < k.minKeys) return `${k.name} runs from ${k.minKeys} keys on (another kernel measured faster below), got L=${p.l}`;
  return undefined;
}

/**
 * The kernel FLASH (cpu) runs for `p`: the first of the addon's table that can, among the kernels
 * of SDPA_CPU_ISA's ISA when it is set; or why none can.
 */
export function chooseNativeKernel(p: AttentionParams): { readonly kernel: NativeKernelInfo } | { readonly reason: string } {
  const loaded = loadNative();
  if (!loaded.ok) return { reason: `flash (cpu) is unavailable: ${loaded.error}` };
  const table = loaded.native.kernels();
  const cpu = loaded.native.cpuFeatures().brand || 'unknown';
  const pin = cpuIsaPin();
  if (pin !== undefined && !(CPU_ISA_VALUES as readonly string[]).includes(pin)) {
    return { reason: `SDPA_CPU_ISA must be one of ${CPU_ISA_VALUES.join(', ')}, got '${pin}'` };
  }
  const candidates = pin === undefined ? table : table.filter((k) => k.isa === pin);
  const refusals: string[] = [];
  for (const k of candidates) {
    const why = nativeKernelRefusal(k, p, cpu);
    if (why === undefined) return { kernel: k };
    refusals.push(why);
  }
  const names = candidates.map((k) => k.name).join(', ');
  return { reason: pin === undefined ? `no native kernel can run this call: ${refusals.join('; ')}` : `pinned by SDPA_CPU_ISA=${pin} to ${names}, which cannot run this call: ${refusals.join('; ')}` };
}

/** A native kernel can run the call (under SDPA_CPU_ISA's pin when set). */
const checkNativeKernel = named('checkNativeKernel', (p: AttentionParams) => {
  const c = chooseNativeKernel(p);
  return 'reason' in c ? c.reason : undefined;
});

async function run(p: AttentionParams, ctx: RunContext): Promise<Tensor> {
  const loaded = loadNative();
  if (!loaded.ok) throw new BackendFaultError(`flash (cpu): ${loaded.error}`);
  ctx.signal?.throwIfAborted();
  const choice = chooseNativeKernel(p);
  if ('reason' in choice) throw new BackendFaultError(`flash (cpu): ${choice.reason}`);
  const n = p.batch * p.hq * p.s * p.ev;
  const out = p.dtype === 'float32' ? new Float32Array(n) : new Uint16Array(n);
  const args = buildNativeArgs(p, out);
  args.kernel = choice.kernel.name;
  const native = loaded.native;
  ctx.recordAllocation(out.byteLength + native.workspaceBytes(args) * native.numThreads());
  try {
    await native.flashAttention(args);
  } catch (e) {
    // Arguments were validated before dispatch, so a failure here is the engine's (e.g. out of memory).
    throw new BackendFaultError(`flash (cpu): native kernel failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return new Tensor({ shape: [...p.q.shape.slice(0, -1), p.ev], dtype: p.dtype, data: out });
}

/** FLASH_ATTENTION's CPU part (native addon). */
export const flashCpu: BackendPart = {
  device: 'cpu',
  label: 'flash (cpu)',
  caps: {
    dtypes: ['float32', 'float16', 'bfloat16'],
    maxHeadDim: FLASH_CPU_MAX_HEAD_DIM,
    headDimMultiple: 1,
    maskKinds: ['none', 'bool', 'float'],
    causalVariants: ['upper-left', 'lower-right', 'both'],
    maskWithCausal: true,
    dropout: true,
    gqa: true,
    customScale: true,
    valueDimDiffers: true,
    notes: 'native C++ (AVX-512/AVX2/scalar fp32, AMX-BF16 tiles for bfloat16), 128×128 query×key blocks, online softmax, per-thread scratch only',
  },
  availability() {
    const r = loadNative();
    return r.ok ? { available: true } : { available: false, reason: `flash (cpu) is unavailable: ${r.error}` };
  },
  async init() {
    loadNative();
  },
  constraints: [checkNativeKernel],
  run,
  tolerance: {
    // fp32 scores carry a rounding error of |logit|·2^-24: with the conformance case's logits of
    // ~2.6e3 that is ~1.6e-4 in the exponent, which any fp32 kernel (PyTorch's too) shows.
    float32: { atol: 2e-4, rtol: 1e-3 },
    float16: { atol: 1e-3, rtol: 2e-3 },
    bfloat16: { atol: 1e-2, rtol: 1.6e-2 },
  },
  describe() {
    const r = loadNative();
    if (!r.ok) return { addon: 'unavailable' };
    return {
      addon: r.path,
      kernels: r.native.kernels().map((k) => ({ name: k.name, isa: k.isa, dtypes: k.dtypes, available: k.missing.length === 0, ...(k.missing.length ? { missing: k.missing } : {}) })),
      ...(cpuIsaPin() !== undefined ? { pinnedIsa: cpuIsaPin() } : {}),
      threads: r.native.numThreads(),
      cpu: r.native.cpuFeatures(),
    };
  },
};
