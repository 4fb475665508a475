/// <reference types="@webgpu/types" />
/**
 * The register-tiled kernel variants that FLASH_ATTENTION (webgpu, halves) and
 * EFFICIENT_ATTENTION (webgpu, f32 and halves) share, each with and without the `subgroups`
 * feature; neither needs shader-f16 (halves are read as u32 words and unpacked):
 * - prefill, shaders/flash-portable.wgsl: 64 query rows per workgroup, a register tile of 2 rows
 *   ({@link prefillTile}) × 4·(BC/(4·TX)) scores per invocation, K/V blocks of BC keys in
 *   workgroup memory (f32, or halves kept packed), the output written in the call's dtype by the kernel;
 * - decode (S ≤ {@link DECODE_MAX_S}), shaders/flash-decode.wgsl + flash-decode-merge.wgsl: the
 *   keys split into chunks over many workgroups, the query heads of a GQA group sharing each K/V
 *   load, the next step's K/V loads issued before this step's math, then one merge pass.
 */
import { named } from '../dispatch/constraints.js';
import type { Availability, AttentionParams, Constraint, KernelVariant, RunContext } from '../dispatch/types.js';
import type { Tensor } from '../tensor.js';
import { bandDiagonals, bindMask, bindQkv, dispatch1D, dispatchRows, elemDefines, headDimBucket, ioDefines, paramsUniform, runAttention, type Pass } from './attention.js';
import { gpuContext, type WebGpuContext } from './device.js';
import type { ProgramInfo } from './programs.js';

/** Largest query length the decode kernels take: beyond it the prefill kernels fill the GPU. */
export const DECODE_MAX_S = 16;

/** Lanes of a row group (the subgroup reductions span 8 lanes). */
const ROW_GROUP = 8;
/**
 * Workgroups the decode kernel aims for (enough to fill large GPUs a few times over): on the H200
 * (2026-12-03, scripts/probe-webgpu-decode.mjs) 1024 read fp16 K/V 5–12% faster than 2048 or 4096
 * at B=8 (fewer chunks to merge, longer chunks to amortise each workgroup's set-up).
 */
const DECODE_TARGET_WORKGROUPS = 1024;
/**
 * Fewest keys a decode chunk takes (so the merge pass stays small next to the K/V reads and each
 * workgroup's set-up is amortised): at B=1, L=32768 on the H200 (2026-12-03) 512-key chunks read
 * fp16 K/V 1.3× faster than 256-key ones and 1024 another 1.1×; 512 keeps twice the workgroups of
 * 1024 for shorter caches.
 */
const DECODE_MIN_CHUNK = 512;

/** How a variant is built: which part, storage it reads, whether it uses subgroups. */
export interface TiledVariantSpec {
  /** The part's label, e.g. `flash (webgpu)`. */
  readonly label: string;
  /** The variant's name. */
  readonly name: string;
  /** Uses subgroupShuffleXor for the row reductions (needs the `subgroups` feature). */
  readonly subgroups: boolean;
}

/** Elements per 16-byte word of a dtype: 4 f32 or 8 halves. */
function valuesPerWord(p: AttentionParams): number {
  return p.dtype === 'float32' ? 4 : 8;
}

/** Head-dim bucket of these kernels: at least 64 (a 64-row P tile overwrites the K tile). */
function bucket(d: number): number {
  return Math.max(64, headDimBucket(d));
}

function subgroupAvailability(name: string): Availability {
  const ctx = gpuContext();
  if (!ctx) return { available: false, reason: `${name} needs a WebGPU adapter` };
  if (!ctx.features.has('subgroups')) return { available: false, reason: `${name} needs the subgroups feature, which this adapter lacks (the portable variant runs instead)` };
  const lo = ctx.adapterInfo.subgroupMinSize;
  if (lo > 0 && lo < ROW_GROUP) return { available: false, reason: `${name} needs subgroups of at least ${ROW_GROUP} lanes, the adapter's can be ${lo}` };
  return { available: true };
}

/** E and Ev whole 16-byte words: multiples of 4 (f32) or 8 (halves). */
function checkWordHeadDims(name: string): Constraint {
  return named('checkWordHeadDims', (p: AttentionParams) => {
    const vpw = valuesPerWord(p);
    return p.e % vpw === 0 && p.ev % vpw === 0
      ? undefined
      : `${name} reads 16-byte words: E and Ev must be multiples of ${vpw} for ${p.dtype}, got E=${p.e}, Ev=${p.ev}`;
  });
}

/** vec2<u32> words of flash-portable.wgsl's K / P tile for halves: K [d][key quad], or P (`br` rows × BC keys). */
function prefillKp2(dmax: number, bc: number, br: number): number {
  return Math.max((dmax * bc) / 4, bc * (br / 2));
}

/**
 * Workgroup bytes of flash-portable.wgsl (mirrors its `var<workgroup>` declarations): f32 K and V
 * tiles, or for halves (`half`) packed K / P and V tiles; without subgroups the row-group
 * reduction array of `br` rows × `tx` floats.
 */
export function prefillWorkgroupBytes(dmax: number, dvmax: number, bc: number, subgroups: boolean, half = false, tx = 8, br = 64): number {
  const tiles = half ? 8 * prefillKp2(dmax, bc, br) + 2 * bc * dvmax : 4 * bc * (dmax + dvmax);
  return tiles + (subgroups ? 4 : 4 * br * tx);
}

/**
 * The prefill kernel's tiling: `rows` query rows per workgroup of 4·rows invocations, `rpi` query
 * rows per invocation (row groups of 4·rpi lanes), `bc` keys per block (a multiple of 4·4·rpi),
 * `halfTiles`: K/V kept as packed halves in workgroup memory (halves storage only), `constLoops`:
 * the Q·Kᵀ loop bound a constant where E fills its bucket and the P·V loop always BC keys (trip
 * counts the compiler can unroll; the keys past a block's end weigh 0).
 */
export interface PrefillTile {
  /**
   * 64 and 2: the H200 sweep also measured 4 rows an invocation (16-lane row groups) and 32-row
   * workgroups, which lost (docs/performance-webgpu.md) and were taken out of the shader after it.
   */
  readonly rows: 64;
  readonly rpi: 2;
  readonly bc: 32 | 64;
  readonly halfTiles: boolean;
  readonly constLoops: boolean;
}

/** Lanes of a row group for `rpi` rows per invocation (4·rows invocations over the rows). */
function rowGroupLanes(rpi: 2): number {
  return 4 * rpi;
}

/** Whether `tile` fits the adapter (invocations, workgroup memory; subgroups at least a row group wide). */
export function prefillTileFits(ctx: WebGpuContext, dmax: number, dvmax: number, subgroups: boolean, tile: PrefillTile): boolean {
  const tx = rowGroupLanes(tile.rpi);
  if (tile.bc % (4 * tx) !== 0 || dvmax % (4 * tx) !== 0) return false;
  if (4 * tile.rows > Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX)) return false;
  if (subgroups) {
    const lo = ctx.adapterInfo.subgroupMinSize;
    if (lo > 0 && lo < tx) return false;
  }
  return prefillWorkgroupBytes(dmax, dvmax, tile.bc, subgroups, tile.halfTiles, tx, tile.rows) <= ctx.limits.maxComputeWorkgroupStorageSize;
}

/**
 * The tiles to try for halves storage, best first; the first that fits the adapter is taken. One
 * tile won at every head dim the sweep measured, so the list is the same for all of them.
 * Measured on the H200 (2026-12-03, session 7, scripts/probe-webgpu-portable.mjs, B=8 H=12 S=4096
 * fp16 non-causal, portable variant; docs/performance-webgpu.md): 2 rows × 4 keys an invocation,
 * 32-key blocks, constant loop bounds: 22.1 TF/s at D=64 (75 registers: 3 workgroups an SM) and
 * 21.7 at D=128, where the tiles of 2026-12-03 (2 × 8, 64-key blocks, loop bounds from uniforms)
 * reach 14.3 and 18.0; 4 rows × 4 keys with constant bounds 18.9 and 21.5; the constant bounds
 * alone +10–25%; 32-row workgroups of 128 invocations slower at D=128 (11–14).
 */
const HALF_TILES: readonly PrefillTile[] = [{ rows: 64, rpi: 2, bc: 32, halfTiles: true, constLoops: true }];
/**
 * f32 storage (EFFICIENT): 2 × 4 with constant bounds, 18.0 TF/s at D=64 and 15.2 at D=128 on the
 * H200 (same sweep; 2 × 8 with 64-key blocks, the tile of 2026-12-02: 13.2 at D=64).
 */
const F32_TILES: readonly PrefillTile[] = [
  { rows: 64, rpi: 2, bc: 32, halfTiles: false, constLoops: true },
  { rows: 64, rpi: 2, bc: 64, halfTiles: false, constLoops: true },
];

/** What prefillProgram builds where no tile fits (the constraints then keep the variant out). */
const FALLBACK_TILE = (p: AttentionParams): PrefillTile => ({ rows: 64, rpi: 2, bc: 32, halfTiles: p.dtype !== 'float32', constLoops: false });

/** The register tile of a call's prefill program (init-time facts only: dtype, buckets, limits); undefined: none fits. */
export function prefillTile(ctx: WebGpuContext, p: AttentionParams, subgroups: boolean): PrefillTile | undefined {
  const dmax = bucket(p.e);
  const dvmax = bucket(p.ev);
  const half = p.dtype !== 'float32';
  return (half ? HALF_TILES : F32_TILES).find((t) => prefillTileFits(ctx, dmax, dvmax, subgroups, t));
}

function checkPrefillFits(name: string, subgroups: boolean): Constraint {
  return named('checkWorkgroupStorage', (p: AttentionParams) => {
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const dmax = bucket(p.e);
    const dvmax = bucket(p.ev);
    const half = p.dtype !== 'float32';
    if (prefillTile(ctx, p, subgroups) !== undefined) return undefined;
    const need = prefillWorkgroupBytes(dmax, dvmax, 32, subgroups, half);
    return `${name} needs ${need} bytes of workgroup memory for 32-key ${half ? 'half' : 'f32'} tiles at head dims ${dmax}/${dvmax}, more than the adapter's maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}`;
  });
}

function checkInvocations(name: string, n: number): Constraint {
  return named('checkInvocations', () => {
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const lim = Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX);
    return n <= lim ? undefined : `${name} needs ${n} invocations per workgroup, over the adapter's limit ${lim}`;
  });
}

/** Template values shared by both kernels: storage words, the mask, subgroups. */
function commonDefines(p: AttentionParams, subgroups: boolean): Record<string, string | number> {
  const e = elemDefines(p.dtype);
  const half = p.dtype !== 'float32';
  return {
    ...ioDefines(p),
    WORD: e.word,
    ELEM: e.elem,
    HALF: half ? 1 : 0,
    VPW: half ? 8 : 4,
    SUBGROUPS: subgroups ? 1 : 0,
    ENABLES: subgroups ? 'enable subgroups;' : '',
  };
}

/**
 * The prefill program of a call (init-time facts only: dtypes, buckets, the tile from
 * {@link prefillTile}); the sweep probe passes its own `tile`.
 */
export function prefillProgram(ctx: WebGpuContext, p: AttentionParams, subgroups: boolean, tile?: PrefillTile): ProgramInfo {
  const dmax = bucket(p.e);
  const dvmax = bucket(p.ev);
  const t = tile ?? prefillTile(ctx, p, subgroups) ?? FALLBACK_TILE(p);
  const tx = rowGroupLanes(t.rpi);
  const vpw = valuesPerWord(p);
  return {
    shader: 'flash-portable.wgsl',
    entryPoint: 'main',
    defines: {
      ...commonDefines(p, subgroups),
      OUT_HALF: p.dtype === 'float32' ? 0 : 1,
      PACK: p.dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16',
      BR: t.rows,
      NT: 4 * t.rows,
      HTILE: t.halfTiles ? 1 : 0,
      RPI: t.rpi,
      TX: tx,
      BC: t.bc,
      KV4: t.bc / (4 * tx),
      DMAX: dmax,
      DVMAX: dvmax,
      NV: dvmax / (4 * tx),
      KP2: prefillKp2(dmax, t.bc, t.rows),
      QKW: t.constLoops && p.e === dmax ? `${dmax / vpw}u` : 'EW',
      PVC: t.constLoops ? 'BC' : 'cols',
    },
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'rw'],
  };
}

async function runPrefill(spec: TiledVariantSpec, p: AttentionParams, rctx: RunContext): Promise<Tensor> {
  return runAttention(
    spec.label,
    p,
    rctx,
    async (cb, out, pre): Promise<Pass[]> => {
      const { q, k, v } = await bindQkv(cb, p, spec.label, pre);
      const { mask, bases } = bindMask(cb, p);
      const tile = prefillTile(cb.ctx, p, spec.subgroups) ?? FALLBACK_TILE(p);
      const program = prefillProgram(cb.ctx, p, spec.subgroups, tile);
      return [{ program, buffers: [cb.uniform(paramsUniform(p)), q, k, v, mask, bases, out], dispatch: dispatchRows(cb.ctx, p, tile.rows) }];
    },
    { writesCallDtype: true },
  );
}

/** The register-tiled prefill variant (flash-portable.wgsl). */
export function prefillVariant(spec: TiledVariantSpec): KernelVariant {
  const how = spec.subgroups ? 'row maxima and sums by subgroupShuffleXor' : 'row maxima and sums through workgroup memory (no optional feature)';
  return {
    name: spec.name,
    summary: `register-tiled: 64 query rows per workgroup of 256, a register tile chosen by head dim (2 rows × 4 keys per invocation and 32-key blocks up to D=256, constant loop bounds), K/V blocks in workgroup memory (f32, or halves kept packed), 16-byte loads, ${how}`,
    program: { kind: 'wgsl', shaders: ['flash-portable.wgsl'] },
    availability: spec.subgroups ? () => subgroupAvailability(spec.name) : undefined,
    constraints: [checkWordHeadDims(spec.name), checkInvocations(spec.name, 256), checkPrefillFits(spec.name, spec.subgroups)],
    run: (p, rctx) => runPrefill(spec, p, rctx),
  };
}

// ---------------------------------------------------------------------------------------------
// Decode

/** The decode kernel's shape: lanes per key group, keys per group and step. */
export interface DecodeShape {
  /** Lanes per key group (8 | 16). */
  readonly gw: 8 | 16;
  /** Keys per group and step (1 | 2 | 4). */
  readonly u: 1 | 2 | 4;
  /** 16-byte K / V words per lane and key. */
  readonly nkv: number;
  readonly nvv: number;
}

/**
 * K/V words (16 bytes) a lane loads per step, the next step's prefetch not counted: 16 for f32
 * through workgroup memory, else 8 (halves unpack each word to 8 f32 values; the subgroup
 * variants hold every dot of the step until the shuffles). On the H200 (2026-12-03, B=8, D=128,
 * scripts/probe-webgpu-decode.mjs) portable fp16 read 3.6 TB/s at 8 words (8 lanes a key, 2 keys
 * a step) and 2.9 at 16; portable f32 3.9 at 16 (16 lanes, 4 keys) and 3.3 at 8; the f32
 * subgroup variant 1.6 at 8 and 1.1 at 16.
 */
function decodeStepWords(p: AttentionParams, subgroups: boolean): number {
  return p.dtype === 'float32' && !subgroups ? 16 : 8;
}

/** Keys per group and step: as many as `words` K/V words a lane and step allow, 1 to 4. */
export function decodeKeysPerStep(words: number, nkv: number, nvv: number): 1 | 2 | 4 {
  const u = Math.floor(words / (nkv + nvv));
  return u >= 4 ? 4 : u >= 2 ? 2 : 1;
}

/** The decode kernel's shape for a call (init-time facts: dtype, head-dim buckets, subgroups). */
export function decodeShape(ctx: WebGpuContext | undefined, p: AttentionParams, subgroups: boolean): DecodeShape {
  const gw = decodeGroupWidth(ctx, p, subgroups);
  const vpw = valuesPerWord(p);
  const nkv = bucket(p.e) / (gw * vpw);
  const nvv = bucket(p.ev) / (gw * vpw);
  return { gw, u: decodeKeysPerStep(decodeStepWords(p, subgroups), nkv, nvv), nkv, nvv };
}

/**
 * Workgroup vec4s of flash-decode.wgsl's sm4: the partial dots of a step (portable reduction:
 * 128 lanes × 4·U floats) or, at the end of the chunk, the 128/GW groups' outputs.
 */
function decodeSm4(dvmax: number, s: DecodeShape, subgroups: boolean): number {
  return Math.max(subgroups ? 0 : 128 * s.u, (128 / s.gw) * (dvmax / 4));
}

/** Workgroup bytes of flash-decode.wgsl (mirrors its `var<workgroup>` declarations). */
export function decodeWorkgroupBytes(dvmax: number, s: DecodeShape, subgroups: boolean): number {
  return 16 * decodeSm4(dvmax, s, subgroups) + (subgroups ? 4 : 16 * (128 / s.gw) * s.u) + 2 * 64;
}

/** How a decode call is split: chunks per (batch, kv head), keys per chunk, row blocks of 4. */
export interface DecodeSplit {
  readonly chunks: number;
  readonly chunkLen: number;
  readonly rowBlocks: number;
  /** The first key of chunk 0: keys below it are outside every row's sliding window. */
  readonly kBegin: number;
}

/**
 * Keys [begin, end) that some query row of a decode call can see: all L, less what a sliding
 * window's lower edge hides from row 0 and what the upper diagonal hides from row S − 1 (at least
 * one key, so a call whose rows see nothing still has a chunk, which writes zeros).
 */
export function decodeKeyRange(p: AttentionParams): { begin: number; end: number } {
  const { upper, lower } = bandDiagonals(p);
  const end = Math.max(1, Math.min(p.l, upper === undefined ? p.l : p.s - 1 + upper + 1));
  const begin = Math.min(end - 1, Math.max(0, lower ?? 0));
  return { begin, end };
}

/**
 * Enough chunks that batch · Hkv · row blocks · chunks reaches about `targetWorkgroups`
 * ({@link DECODE_TARGET_WORKGROUPS}) workgroups, each of at least `minChunk` ({@link DECODE_MIN_CHUNK})
 * keys (a multiple of 32: two keys per group of 8 per step). The sweep probe passes its own pair.
 */
export function decodeSplit(p: AttentionParams, targetWorkgroups = DECODE_TARGET_WORKGROUPS, minChunk = DECODE_MIN_CHUNK): DecodeSplit {
  const rowBlocks = Math.ceil((p.gqaGroup * p.s) / 4);
  const units = p.batch * p.hkv * rowBlocks;
  // Only the keys some row sees are split (a sliding window over a long cache reads its window).
  const { begin, end } = decodeKeyRange(p);
  const span = end - begin;
  const maxChunks = Math.max(1, Math.ceil(span / minChunk));
  const want = Math.min(maxChunks, Math.max(1, Math.ceil(targetWorkgroups / units)));
  const chunkLen = Math.max(32, Math.ceil(Math.ceil(span / want) / 32) * 32);
  return { chunks: Math.max(1, Math.ceil(span / chunkLen)), chunkLen, rowBlocks, kBegin: begin };
}

const checkDecodeShape = (name: string) =>
  named('checkDecodeShape', (p: AttentionParams) => {
    if (p.s > DECODE_MAX_S) return `${name} takes S ≤ ${DECODE_MAX_S} queries (decode), got S=${p.s}; the prefill kernels fill the GPU there`;
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const lim = ctx.limits.maxComputeWorkgroupsPerDimension;
    const { chunks, rowBlocks } = decodeSplit(p);
    const heads = p.batch * p.hkv;
    if (heads > lim || chunks > lim || rowBlocks > lim) return `${name} dispatches batch·Hkv = ${heads}, ${chunks} chunks and ${rowBlocks} row blocks, over maxComputeWorkgroupsPerDimension ${lim}`;
    return undefined;
  });

function checkDecodeFits(name: string, subgroups: boolean): Constraint {
  return named('checkWorkgroupStorage', (p: AttentionParams) => {
    const ctx = gpuContext();
    if (!ctx) return undefined;
    const need = decodeWorkgroupBytes(bucket(p.ev), decodeShape(ctx, p, subgroups), subgroups);
    return need <= ctx.limits.maxComputeWorkgroupStorageSize
      ? undefined
      : `${name} needs ${need} bytes of workgroup memory at head dim ${bucket(p.ev)}, more than the adapter's maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}`;
  });
}

/**
 * Lanes per key group of the decode kernel: 16 where a row has more than 16 words (and, with
 * subgroups, the subgroups are that wide), else 8 — two K words per lane at D=128 for fp16 and
 * f32 alike, the best of the sweep on the H200 (2026-12-03; with 16-lane groups and no prefetch
 * the fp16 kernel of 2026-12-02 read 1.37 TB/s).
 */
export function decodeGroupWidth(ctx: WebGpuContext | undefined, p: AttentionParams, subgroups: boolean): 8 | 16 {
  const words = Math.min(bucket(p.e), bucket(p.ev)) / valuesPerWord(p);
  if (words <= 16) return 8;
  if (subgroups && (ctx?.adapterInfo.subgroupMinSize ?? 0) < 16) return 8;
  return 16;
}

/** The two programs of a decode call. */
export function decodePrograms(ctx: WebGpuContext | undefined, p: AttentionParams, subgroups: boolean): { main: ProgramInfo; merge: ProgramInfo } {
  const dmax = bucket(p.e);
  const dvmax = bucket(p.ev);
  const sh = decodeShape(ctx, p, subgroups);
  return {
    main: {
      shader: 'flash-decode.wgsl',
      entryPoint: 'main',
      defines: {
        ...commonDefines(p, subgroups),
        GW: sh.gw,
        GW16: sh.gw === 16 ? 1 : 0,
        U: sh.u,
        DPL: Math.ceil((4 * sh.u) / sh.gw),
        DMAX: dmax,
        DVMAX: dvmax,
        NKV: sh.nkv,
        NVV: sh.nvv,
        SM4: decodeSm4(dvmax, sh, subgroups),
        SC4: (128 / sh.gw) * sh.u,
      },
      bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'],
    },
    merge: {
      shader: 'flash-decode-merge.wgsl',
      entryPoint: 'main',
      defines: { OUT_HALF: p.dtype === 'float32' ? 0 : 1, PACK: p.dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16' },
      bindings: ['uniform', 'read', 'read', 'rw'],
    },
  };
}

/** The uniform block of a decode call: the common one with the chunking in its last words. */
export function decodeUniform(p: AttentionParams, split: DecodeSplit): ArrayBuffer {
  const buf = paramsUniform(p);
  const u = new Uint32Array(buf);
  u[17] = split.chunkLen;
  u[18] = split.chunks;
  u[21] = split.kBegin;
  return buf;
}

async function runDecode(spec: TiledVariantSpec, p: AttentionParams, rctx: RunContext): Promise<Tensor> {
  return runAttention(
    spec.label,
    p,
    rctx,
    async (cb, out, pre): Promise<Pass[]> => {
      const { q, k, v } = await bindQkv(cb, p, spec.label, pre);
      const { mask, bases } = bindMask(cb, p);
      const split = decodeSplit(p);
      const rows = p.batch * p.hq * p.s;
      // Pooled by size (buffers.ts): repeated calls of one shape allocate nothing new.
      const part = cb.storage(rows * split.chunks * p.ev * 4, 'decode-partial');
      const ml = cb.storage(rows * split.chunks * 8, 'decode-max-sum');
      const uni = cb.uniform(decodeUniform(p, split));
      const { main, merge } = decodePrograms(cb.ctx, p, spec.subgroups);
      return [
        { program: main, buffers: [uni, q, k, v, mask, bases, part, ml], dispatch: [split.chunks, split.rowBlocks, p.batch * p.hkv] },
        { program: merge, buffers: [uni, part, ml, out], dispatch: dispatch1D(cb.ctx, rows, 1) },
      ];
    },
    { writesCallDtype: true },
  );
}

/** The flash-decoding variant (flash-decode.wgsl, then flash-decode-merge.wgsl). */
export function decodeVariant(spec: TiledVariantSpec): KernelVariant {
  const how = spec.subgroups ? 'dots summed by subgroupShuffleXor' : 'dots summed once each through workgroup memory (no optional feature)';
  return {
    name: spec.name,
    summary: `flash-decoding for S ≤ ${DECODE_MAX_S}: keys split into chunks over many workgroups, up to 4 query rows of a GQA group sharing each 16-byte K/V load, 8 or 16 lanes a key, 1–4 keys per group and step with the next step's loads in flight, ${how}, then a merge pass of 256 lanes a row`,
    program: { kind: 'wgsl', shaders: ['flash-decode.wgsl', 'flash-decode-merge.wgsl'] },
    availability: spec.subgroups ? () => subgroupAvailability(spec.name) : undefined,
    constraints: [checkDecodeShape(spec.name), checkWordHeadDims(spec.name), checkDecodeFits(spec.name, spec.subgroups)],
    run: (p, rctx) => runDecode(spec, p, rctx),
  };
}
