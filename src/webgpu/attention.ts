/// <reference types="@webgpu/types" />
/**
 * What the three webgpu parts share: binding q/k/v/mask (GPU-resident tensors in place, CPU ones
 * uploaded once per call), the uniform block, dispatch sizes within the limits, one submit per
 * call with error scopes and device-loss detection, temporaries destroyed after the submit
 * completes, and the output kept on the GPU (packed to f16/bf16 when the call's dtype is a half).
 */
import { BackendFaultError } from '../errors.js';
import { float32ArrayToHalfBits, halfBitsToFloat32Array, type DType, type FloatDType } from '../dtype.js';
import type { AttentionParams, Constraint, RunContext } from '../dispatch/types.js';
import { named, formatBytes } from '../dispatch/constraints.js';
import { maskView } from '../cpu/layout.js';
import { keyBand } from '../params.js';
import { mix32 } from '../rng.js';
import { Tensor, shapeSize } from '../tensor.js';
import { envVar } from '../env.js';
import { GpuStorage, align4, createBuffer, giveBackStorage, gpuStorageOf, takeStorage, takeUniform, uploadBytes } from './buffers.js';
import { gpuContext, markLost, pollLost, requireContext, type WebGpuContext } from './device.js';
import { bindGroupLayout, getPipeline, type BindingKind, type ProgramInfo } from './programs.js';

/** Threads per workgroup of the elementwise passes. */
export const WG = 64;

/** WGSL storage word, decoder name and elements per word of a dtype as a shader reads it. */
export function elemDefines(dtype: DType): { word: string; elem: string; perWord: number } {
  switch (dtype) {
    case 'float32':
      return { word: 'f32', elem: 'f32', perWord: 1 };
    case 'float16':
      return { word: 'u32', elem: 'f16', perWord: 2 };
    case 'bfloat16':
      return { word: 'u32', elem: 'bf16', perWord: 2 };
    case 'bool':
      return { word: 'u32', elem: 'bool', perWord: 4 };
  }
}

/** Template values for q/k/v and the mask of a call (the mask slot defaults to f32 when absent). */
export function ioDefines(p: AttentionParams, qkvDtype: DType = p.dtype): Record<string, string | number> {
  const e = elemDefines(qkvDtype);
  const m = elemDefines(p.mask ? p.mask.tensor.dtype : 'float32');
  return { WORD: e.word, ELEM: e.elem, PER_WORD: e.perWord, MASK_WORD: m.word, MASK_ELEM: m.elem, MASK_PER_WORD: m.perWord };
}

/** Smallest head-dim bucket holding `d` (private arrays and tiles need a compile-time size). */
export function headDimBucket(d: number): number {
  for (const b of [32, 64, 128, 256]) if (d <= b) return b;
  return d;
}

/**
 * Keys per block for f32 (4-byte) or f16 (2-byte) tiles: the largest power of two up to 64 whose
 * k and v tiles fit the adapter's maxComputeWorkgroupStorageSize (tiled-attention.wgsl).
 */
export function keysPerBlock(ctx: WebGpuContext, dmax: number, dvmax: number, tileBytes: number): number {
  let bc = 64;
  while (bc > 1 && bc * (dmax + dvmax) * tileBytes > ctx.limits.maxComputeWorkgroupStorageSize) bc /= 2;
  return bc;
}

/**
 * The band of keys query row i sees, as diagonals: `j <= i + upper` (causal, a window's right edge;
 * the nearer of the two) and `j >= i + lower` (a window's left edge); undefined where unbounded.
 * Values are clamped to [-(S + 1), L + 1], which keeps their meaning and fits an i32.
 */
export function bandDiagonals(p: AttentionParams): { upper?: number; lower?: number } {
  const clamp = (x: number) => Math.max(-(p.s + 1), Math.min(p.l + 1, x));
  const { upper, lower } = keyBand(p);
  return { upper: Number.isFinite(upper) ? clamp(upper) : undefined, lower: Number.isFinite(lower) ? clamp(lower) : undefined };
}

/** Bytes of the uniform block of shaders/common.wgsl (`Params`). */
export const PARAMS_BYTES = 96;

/** The uniform block of shaders/common.wgsl. */
export function paramsUniform(p: AttentionParams): ArrayBuffer {
  const buf = new ArrayBuffer(PARAMS_BYTES);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  const i = new Int32Array(buf);
  u[0] = p.batch * p.hq;
  u[1] = p.hq;
  u[2] = p.hkv;
  u[3] = p.gqaGroup;
  u[4] = p.s;
  u[5] = p.l;
  u[6] = p.e;
  u[7] = p.ev;
  f[8] = p.scale;
  const band = bandDiagonals(p);
  u[9] = band.upper !== undefined ? 1 : 0;
  i[10] = band.upper ?? 0;
  // Integer hash h (24 bits) is dropped when h < p·2^24, i.e. when h < ceil(p·2^24).
  u[11] = p.dropoutP > 0 ? Math.ceil(p.dropoutP * 16777216) : 0;
  u[12] = mix32(p.seed >>> 0);
  f[13] = p.dropoutP > 0 ? 1 / (1 - p.dropoutP) : 1;
  const mv = maskView(p);
  u[14] = mv ? mv.rowStride : 0;
  u[15] = mv ? mv.colStride : 0;
  u[16] = p.mask ? (p.mask.kind === 'bool' ? 1 : 2) : 0;
  // u[17], u[18], u[21]: the decode kernel's chunking (decodeUniform).
  u[19] = band.lower !== undefined ? 1 : 0;
  i[20] = band.lower ?? 0;
  return buf;
}

/** One compute pass: a program, its buffers in binding order, and the workgroup counts. */
export interface Pass {
  readonly program: ProgramInfo;
  readonly buffers: readonly GPUBuffer[];
  readonly dispatch: readonly [number, number, number];
}

/** Workgroup counts for `n` threads in groups of `wg`, split over x and y within the per-dimension limit. */
export function dispatch1D(ctx: WebGpuContext, n: number, wg: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  const x = Math.min(groups, ctx.limits.maxComputeWorkgroupsPerDimension);
  return [x, Math.ceil(groups / x), 1];
}

/** Workgroup counts for attention kernels: x = query blocks, flat heads over y (and z beyond the limit). */
export function dispatchRows(ctx: WebGpuContext, p: AttentionParams, rowsPerGroup: number): [number, number, number] {
  const bh = p.batch * p.hq;
  const y = Math.min(bh, ctx.limits.maxComputeWorkgroupsPerDimension);
  return [Math.ceil(p.s / rowsPerGroup), y, Math.ceil(bh / y)];
}

/** Per-call GPU allocations: everything here is destroyed once the submit completes, unless kept. */
export class CallBuffers {
  private readonly temps: GPUBuffer[] = [];
  bytes = 0;
  constructor(readonly ctx: WebGpuContext) {}

  /** Tracks a temporary for destruction. */
  temp(b: GPUBuffer): GPUBuffer {
    this.temps.push(b);
    this.bytes += b.size;
    return b;
  }

  /** A new storage buffer of `bytes`. */
  storage(bytes: number, label: string): GPUBuffer {
    return this.temp(takeStorage(this.ctx.device, Math.max(4, align4(bytes)), label));
  }

  /** A uniform buffer holding `data` (pooled: a fresh mapped buffer per call cost ~0.17 ms of CPU on lavapipe). */
  uniform(data: ArrayBuffer): GPUBuffer {
    return this.temp(takeUniform(this.ctx.device, data));
  }

  /** A CPU typed array uploaded to a temporary storage buffer. */
  upload(data: ArrayBufferView, label: string): GPUBuffer {
    return this.temp(uploadBytes(this.ctx.device, data, label));
  }

  /** Stops tracking `b` (it outlives the call, e.g. as the output). */
  keep(b: GPUBuffer): void {
    const i = this.temps.indexOf(b);
    if (i >= 0) this.temps.splice(i, 1);
  }

  /** Ends the call: storage and uniform temporaries go back to the pool (buffers.ts), the rest is destroyed. */
  destroyAll(): void {
    for (const b of this.temps) giveBackStorage(this.ctx.device, b);
    this.temps.length = 0;
  }
}

/**
 * The buffer holding `t`'s elements, dense from element 0: its own when it lives on our device,
 * else an upload of its CPU data (views gathered once). With `asF16`, bfloat16 data is converted
 * to float16 — on the CPU while uploading, or by a GPU pass appended to `pre` for resident tensors.
 */
export async function bindTensor(cb: CallBuffers, t: Tensor, name: string, label: string, pre: Pass[], asF16 = false): Promise<GPUBuffer> {
  const st = gpuStorageOf(t);
  if (st) {
    if (st.gpuDevice !== cb.ctx.device) throw new BackendFaultError(`${label}: ${name} lives on a WebGPU device that is no longer in use`);
    if (!(asF16 && t.dtype === 'bfloat16')) return st.buffer;
    const words = Math.ceil(t.size / 2);
    const out = cb.storage(words * 4, `${name}-f16`);
    const program: ProgramInfo = { shader: 'bf16-to-f16.wgsl', entryPoint: 'main', defines: { WG }, bindings: ['uniform', 'read', 'rw'] };
    await getPipeline(cb.ctx, program);
    pre.push({ program, buffers: [cb.uniform(new Uint32Array([words, 0, 0, 0]).buffer), st.buffer, out], dispatch: dispatch1D(cb.ctx, words, WG) });
    return out;
  }
  let data = t.contiguousData();
  if (asF16 && t.dtype === 'bfloat16') data = float32ArrayToHalfBits(halfBitsToFloat32Array(data as Uint16Array, 'bfloat16'), 'float16');
  return cb.upload(data, name);
}

/** q, k and v bound for one call, each as {@link bindTensor} binds it (in that order). */
export async function bindQkv(cb: CallBuffers, p: AttentionParams, label: string, pre: Pass[], asF16 = false): Promise<{ q: GPUBuffer; k: GPUBuffer; v: GPUBuffer }> {
  const q = await bindTensor(cb, p.q, 'q', label, pre, asF16);
  const k = await bindTensor(cb, p.k, 'k', label, pre, asF16);
  const v = await bindTensor(cb, p.v, 'v', label, pre, asF16);
  return { q, k, v };
}

/** The mask's storage (uploaded raw so broadcast strides read it in place) and its per-head bases. */
export function bindMask(cb: CallBuffers, p: AttentionParams): { mask: GPUBuffer; bases: GPUBuffer } {
  const mv = maskView(p);
  if (!p.mask || !mv) {
    const dummy = cb.storage(16, 'no-mask');
    return { mask: dummy, bases: dummy };
  }
  const t = p.mask.tensor;
  const st = gpuStorageOf(t);
  const mask = st ? st.buffer : cb.upload(t.data!, 'mask');
  return { mask, bases: cb.upload(Uint32Array.from(mv.bases), 'mask-bases') };
}

/** GPU time of one compute pass of the last call run with `SDPA_WEBGPU_TIMESTAMPS=1`. */
export interface PassTime {
  /** The pass's shader file. */
  readonly shader: string;
  /** Milliseconds between the pass's begin and end timestamps. */
  readonly ms: number;
}

let lastTimes: PassTime[] = [];

/**
 * The per-pass GPU times of the last WebGPU call, when `SDPA_WEBGPU_TIMESTAMPS=1` was set and the
 * device has `timestamp-query` (else empty). For benchmarks: kernel time without the call's
 * allocation, submit and wait (scripts/bench-webgpu.mjs).
 */
export function lastPassTimes(): readonly PassTime[] {
  return lastTimes;
}

function timestampsWanted(device: GPUDevice): boolean {
  return envVar('SDPA_WEBGPU_TIMESTAMPS') === '1' && device.features.has('timestamp-query');
}

/**
 * Runs the passes in one submit and waits for it; faults (device loss, OOM, validation) become
 * BackendFaultError. The error scopes are popped right after the submit (they hold the errors of
 * the calls made inside them, which Dawn reports at call time) and awaited together with the
 * work: one round of Dawn's event processing per call instead of two after the GPU finishes.
 */
export async function execute(cb: CallBuffers, passes: readonly Pass[], label: string): Promise<void> {
  const { device } = cb.ctx;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let scopes: Promise<(GPUError | null)[]> | undefined;
  const popScopes = () => (scopes ??= Promise.all([device.popErrorScope(), device.popErrorScope()]).catch(() => []));
  // Timestamps (opt-in): two per pass, resolved into a buffer read back after the wait.
  const stamps = timestampsWanted(device) && passes.length > 0
    ? { set: device.createQuerySet({ type: 'timestamp', count: 2 * passes.length }), resolve: cb.temp(createBuffer(device, { size: 16 * passes.length, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'timestamps' })), read: device.createBuffer({ size: 16 * passes.length, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) }
    : undefined;
  let scopeErrors: (GPUError | null)[] = [];
  try {
    const enc = device.createCommandEncoder({ label });
    for (const [n, ps] of passes.entries()) {
      const pipeline = await getPipeline(cb.ctx, ps.program);
      const group = device.createBindGroup({
        layout: bindGroupLayout(device, ps.program.bindings),
        entries: ps.buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      const pass = enc.beginComputePass(stamps ? { timestampWrites: { querySet: stamps.set, beginningOfPassWriteIndex: 2 * n, endOfPassWriteIndex: 2 * n + 1 } } : {});
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(ps.dispatch[0], ps.dispatch[1], ps.dispatch[2]);
      pass.end();
    }
    if (stamps) {
      enc.resolveQuerySet(stamps.set, 0, 2 * passes.length, stamps.resolve, 0);
      enc.copyBufferToBuffer(stamps.resolve, 0, stamps.read, 0, 16 * passes.length);
    }
    device.queue.submit([enc.finish()]);
    const popped = popScopes();
    [, scopeErrors] = await Promise.all([device.queue.onSubmittedWorkDone(), popped]);
    if (stamps) {
      await stamps.read.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(stamps.read.getMappedRange().slice(0));
      stamps.read.unmap();
      lastTimes = passes.map((ps, n) => ({ shader: ps.program.shader, ms: Number(t[2 * n + 1] - t[2 * n]) / 1e6 }));
    }
  } catch (err) {
    const lost = await pollLost(device);
    if (lost) throw markLost(cb.ctx, lost, label);
    throw err;
  } finally {
    // Every push is popped, whatever failed before the submit.
    if (!scopes) scopeErrors = await popScopes();
    stamps?.set.destroy();
    stamps?.read.destroy();
  }
  const lost = await pollLost(device);
  if (lost) throw markLost(cb.ctx, lost, label);
  const [validation, oom] = scopeErrors;
  if (oom) throw new BackendFaultError(`${label}: the GPU ran out of memory (${oom.message})`);
  if (validation) throw new BackendFaultError(`${label}: WebGPU validation error (${validation.message})`);
}

/** How a program writes its output. */
export interface OutputMode {
  /**
   * The program writes the call's dtype itself (16-bit dtypes packed two per u32, element 0 low):
   * `out` is the result, with no f32 scratch and no pack pass.
   */
  readonly writesCallDtype?: boolean;
}

/**
 * Runs an attention program writing `[bh, S, Ev]` into `out` — f32, packed to the call's dtype on
 * the GPU when it is a half, unless the program writes that dtype itself — and returns the output
 * tensor (its storage stays on the GPU).
 */
export async function runAttention(
  label: string,
  p: AttentionParams,
  rctx: RunContext,
  build: (cb: CallBuffers, out: GPUBuffer, pre: Pass[]) => Promise<Pass[]>,
  mode: OutputMode = {},
): Promise<Tensor> {
  const ctx = requireContext(label);
  const cb = new CallBuffers(ctx);
  const shape = [...p.q.shape.slice(0, -1), p.ev];
  const n = shapeSize(shape);
  const direct = mode.writesCallDtype === true && p.dtype !== 'float32';
  let result: GPUBuffer | undefined;
  try {
    const out = direct ? cb.storage(Math.ceil(n / 2) * 4, 'out-half') : cb.storage(n * 4, 'out-f32');
    const pre: Pass[] = [];
    const passes = [...(await build(cb, out, pre))];
    result = out;
    if (p.dtype !== 'float32' && !direct) {
      const packed = cb.storage(Math.ceil(n / 2) * 4, 'out-half');
      const program: ProgramInfo = { shader: 'pack-half.wgsl', entryPoint: 'main', defines: { WG, PACK: p.dtype === 'float16' ? 'pack_f16' : 'pack_bf16' }, bindings: ['uniform', 'read', 'rw'] };
      passes.push({ program, buffers: [cb.uniform(new Uint32Array([n, 0, 0, 0]).buffer), out, packed], dispatch: dispatch1D(ctx, Math.ceil(n / 2), WG) });
      result = packed;
    }
    cb.keep(result);
    rctx.recordAllocation(cb.bytes);
    try {
      // A submitted command buffer cannot be recalled: an abort is honoured up to here (RunContext.signal).
      rctx.signal?.throwIfAborted();
      await execute(cb, [...pre, ...passes], label);
    } catch (err) {
      result.destroy();
      throw err;
    }
    return new Tensor({ shape, dtype: p.dtype, storage: new GpuStorage(ctx.device, result, p.dtype, n, true) });
  } finally {
    cb.destroyAll();
  }
}

/** Bytes of the largest single binding a call makes (q, k, v, mask storage, f32 output). */
function largestBinding(p: AttentionParams, bytesOf: (d: FloatDType) => number): { what: string; bytes: number } {
  const items: { what: string; bytes: number }[] = [
    { what: 'q', bytes: p.q.size * bytesOf(p.dtype) },
    { what: 'k', bytes: p.k.size * bytesOf(p.dtype) },
    { what: 'v', bytes: p.v.size * bytesOf(p.dtype) },
    { what: 'the f32 output', bytes: p.batch * p.hq * p.s * p.ev * 4 },
  ];
  if (p.mask?.tensor.data) items.push({ what: 'the mask', bytes: p.mask.tensor.data.byteLength });
  return items.reduce((a, b) => (b.bytes > a.bytes ? b : a));
}

/** Every buffer a call binds fits the device's maxStorageBufferBindingSize and maxBufferSize. */
export function checkBuffersFit(label: string): Constraint {
  return named('checkBuffersFit', (p) => {
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const big = largestBinding(p, (d) => (d === 'float32' ? 4 : 2));
    const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
    return big.bytes <= limit
      ? undefined
      : `${label} binds ${big.what} as one storage buffer: ${formatBytes(big.bytes)} > the adapter's maxStorageBufferBindingSize ${formatBytes(limit)}; split the batch or use the cpu device`;
  });
}
