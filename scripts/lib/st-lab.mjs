// The bench-only lab copy of the transposed-scores kernel (scripts/probes/flash-sgmat-st-lab.wgsl):
// the configurations the H200 candidates vary, as kernel-variant specs for
// backends/flash/webgpu-sgmat.ts's sgmatStKernel. The shipped kernel is the frozen
// shaders/flash-sgmat-st.wgsl; nothing here ships. Register the shader once per process with
// registerStLab(programs) before compiling any of these programs.
import { readFileSync } from 'node:fs';

/** The name the lab shader is registered under (programs.registerShaderSource). */
export const ST_LAB_SHADER = 'flash-sgmat-st-lab.wgsl';

/** The lab shader's text (its includes are resolved from shaders/ by the loader). */
export function stLabSource() {
  return readFileSync(new URL('../probes/flash-sgmat-st-lab.wgsl', import.meta.url), 'utf8');
}

/** Registers the lab shader with the library's loader (`programs`: dist/src/webgpu/programs.js). */
export async function registerStLab(programs) {
  await programs.registerShaderSource(ST_LAB_SHADER, stLabSource());
}

/** The lab program for configuration `c` ({ nw, bc, qreg, pipe, s16 }), head dim `d`, a partial last key tile, the output dtype. */
export function stLabProgram(c, d, tail, dtype) {
  return {
    shader: ST_LAB_SHADER,
    entryPoint: 'main',
    defines: {
      DM: d, DK: d / 16, NW: c.nw, BC: c.bc, NC: c.bc / 16, QREG: +c.qreg, KTAIL: +tail, PIPE: +c.pipe, S16: +c.s16,
      ST: c.s16 ? 'f16' : 'f32', SPAD: c.s16 ? 8 : 4,
      OSC: c.s16 ? 'o_sc' : 's_sc', OBASE: c.s16 ? 'sg * 16u * OST' : 'sbase',
      PACK: dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16',
    },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

/**
 * A kernel-variant spec (StKernelSpec) of the lab shader named `name` with configuration
 * `config(d)`, up to head dim 128 (`sgmat`: dist/backends/flash/webgpu-sgmat.js).
 */
export function stLabSpec(sgmat, name, config) {
  return {
    name,
    config,
    program: (d, tail, dtype) => stLabProgram(config(d), d, tail, dtype),
    workgroupBytes: (d, tail) => sgmat.stWorkgroupBytes(config(d), d, tail),
    maxHeadDim: 128,
    maxHeadDimWhy: ' (O and Qᵀ of 32 rows in registers)',
  };
}

// ---- the pair kernel: two subgroups share 32 query rows (scripts/probes/flash-sgmat-st2-lab.wgsl) ----

/** The name the pair lab shader is registered under. */
export const ST2_LAB_SHADER = 'flash-sgmat-st2-lab.wgsl';

/** The pair lab shader's text. */
export function st2LabSource() {
  return readFileSync(new URL('../probes/flash-sgmat-st2-lab.wgsl', import.meta.url), 'utf8');
}

/** Registers both lab shaders with the library's loader. */
export async function registerStLabs(programs) {
  await programs.registerShaderSource(ST_LAB_SHADER, stLabSource());
  await programs.registerShaderSource(ST2_LAB_SHADER, st2LabSource());
  await programs.registerShaderSource(KVS_LAB_SHADER, kvsLabSource());
  await programs.registerShaderSource(STI_LAB_SHADER, stiLabSource());
  await programs.registerShaderSource(KVC_LAB_SHADER, kvcLabSource());
}

/** Workgroup bytes of the pair kernel for { ns, bc, qreg } (mirrors its `var<workgroup>` declarations). */
export function st2WorkgroupBytes(c, d, tail) {
  const kst = d + 8;
  const ns = c.ns ?? 2;
  return c.bc * 36 * 4 + Math.max(c.bc * 40, 16 * kst) * 2 + ns * 16 * 36 * 4 + (c.qreg ? 0 : 32 * kst * 2) + (tail ? 32 * kst * 2 : 0) + ns * 32 * 4 + 16;
}

/**
 * The pair lab program for { ns (2 or 4 subgroups per 32 rows, default 2), bc, qreg }, head dim `d`
 * (a multiple of 16·ns), a partial last key tile, the output dtype.
 */
export function st2LabProgram(c, d, tail, dtype) {
  const ns = c.ns ?? 2;
  return {
    shader: ST2_LAB_SHADER,
    entryPoint: 'main',
    defines: { NS: ns, DM: d, DK: d / 16, DH: d / 16 / ns, BC: c.bc, NC: c.bc / 16, NCH: c.bc / 16 / ns, QREG: +c.qreg, KTAIL: +tail, PACK: dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16' },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

/** A kernel-variant spec of the pair kernel named `name`, configuration `config(d)` ({ ns, bc, qreg }). */
export function st2LabSpec(sgmat, name, config) {
  // nw: subgroups per workgroup (reports); ns: how many share the 32 rows (all of them here).
  const full = (d) => { const c = { pipe: false, s16: false, ns: 2, ...config(d) }; return { ...c, nw: c.ns }; };
  return {
    name,
    config: full,
    program: (d, tail, dtype) => st2LabProgram(full(d), d, tail, dtype),
    workgroupBytes: (d, tail) => st2WorkgroupBytes(full(d), d, tail),
    maxHeadDim: 128,
    maxHeadDimWhy: ' (the pair kernel)',
    lanes: (d) => full(d).ns * 32,
    rows: () => 32,
    check: (p) => {
      const ns = full(p.e).ns;
      return p.e % (16 * ns) === 0 ? undefined : `${name} splits the output columns between ${ns} subgroups and needs E a multiple of ${16 * ns}, got E=${p.e}`;
    },
  };
}

// ---- K/V staged through workgroup memory, NW subgroups sharing them (scripts/probes/flash-sgmat-kvs-lab.wgsl) ----

/** The name the K/V-staging lab shader is registered under. */
export const KVS_LAB_SHADER = 'flash-sgmat-kvs-lab.wgsl';

/** The K/V-staging lab shader's text. */
export function kvsLabSource() {
  return readFileSync(new URL('../probes/flash-sgmat-kvs-lab.wgsl', import.meta.url), 'utf8');
}

/** Workgroup bytes of the K/V-staging shader for { nw, scm } (mirrors its `var<workgroup>` declarations). */
export function kvsWorkgroupBytes(c, d) {
  const kst = d + 8;
  const sreg = Math.max(c.scm ? 32 * 20 : 16 * 36, 16 * 36);
  const preg = Math.max(c.scm ? 32 * 24 : 16 * 40, 16 * kst);
  return c.nw * sreg * 4 + c.nw * preg * 2 + 2 * 32 * kst * 2 + 16;
}

/** The K/V-staging program for { nw, scm }, head dim `d`, the output dtype, a window's lower edge. */
export function kvsLabProgram(c, d, dtype, lower = false) {
  return {
    shader: KVS_LAB_SHADER,
    entryPoint: 'main',
    defines: { DM: d, DK: d / 16, NW: c.nw, NPL: Math.ceil((2 * d) / (32 * c.nw)), SCM: +!!c.scm, PACK: dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16', LOWER: +lower },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

/**
 * A kernel-variant spec of the K/V-staging shader named `name`, `nw(d)` subgroups per workgroup;
 * `scm`: scores and probabilities stored row = query (a lane's 16 contiguous).
 */
export function kvsLabSpec(sgmat, name, nw, scm = false) {
  const config = (d) => ({ nw: nw(d), bc: 16, qreg: true, pipe: false, s16: false, scm });
  return {
    name,
    config,
    program: (d, _tail, dtype, lower) => kvsLabProgram(config(d), d, dtype, lower),
    lowerEdge: true,
    workgroupBytes: (d) => kvsWorkgroupBytes(config(d), d),
    maxHeadDim: 128,
    maxHeadDimWhy: ' (O and Qᵀ of 32 rows in registers)',
    summary: `${name}: sgmat_st with K/V staged through workgroup memory (128-bit loads, one block ahead), shared by ${[64, 128].map((d) => `${nw(d)} subgroups at D=${d}`).join(', ')}${scm ? ', scores stored by query row' : ''}`,
  };
}

// ---- sgmat_st with the block loop's per-lane accesses in main() (scripts/probes/flash-sgmat-sti-lab.wgsl) ----

/** The name the inlined lab shader is registered under. */
export const STI_LAB_SHADER = 'flash-sgmat-sti-lab.wgsl';

/** The inlined lab shader's text. */
export function stiLabSource() {
  return readFileSync(new URL('../probes/flash-sgmat-sti-lab.wgsl', import.meta.url), 'utf8');
}

/** The inlined lab program: the defines of the shipped sgmat_st (`sgmat.stProgram`), another shader. */
export function stiLabProgram(sgmat, d, tail, dtype, lower = false) {
  return { ...sgmat.stProgram(d, tail, dtype, lower), shader: STI_LAB_SHADER };
}

/** A kernel-variant spec of the inlined shader named `name` (the shipped shape otherwise). */
export function stiLabSpec(sgmat, name) {
  return {
    name,
    config: sgmat.stConfig,
    program: (d, tail, dtype, lower) => stiLabProgram(sgmat, d, tail, dtype, lower),
    lowerEdge: true,
    maxHeadDim: sgmat.ST_MAX_HEAD_DIM,
    maxHeadDimWhy: ' (O and Qᵀ of 32 rows in registers)',
    summary: `${name}: sgmat_st with the softmax passes inlined in main() and indexed from local_invocation_index (range-analysable workgroup accesses)`,
  };
}

// ---- K/V staged at constant workgroup offsets, one subgroup (scripts/probes/flash-sgmat-kvc-lab.wgsl) ----

/** The name the constant-offset K/V-staging lab shader is registered under. */
export const KVC_LAB_SHADER = 'flash-sgmat-kvc-lab.wgsl';

/** The constant-offset K/V-staging lab shader's text. */
export function kvcLabSource() {
  return readFileSync(new URL('../probes/flash-sgmat-kvc-lab.wgsl', import.meta.url), 'utf8');
}

/** Workgroup bytes of the kvc shader (sgmat_st's S^T and P^T regions, one K and one V tile, the flags). */
export function kvcWorkgroupBytes(d) {
  const kst = d + 8;
  return 16 * 36 * 4 + Math.max(16 * 40, 16 * kst) * 2 + 2 * 16 * kst * 2 + 16;
}

/** The kvc program for head dim `d`, the output dtype, a window's lower edge; `pf`: loads a block ahead of their stores. */
export function kvcLabProgram(d, dtype, lower = false, pf = false) {
  return {
    shader: KVC_LAB_SHADER,
    entryPoint: 'main',
    defines: { DM: d, DK: d / 16, PF: +pf, PACK: dtype === 'bfloat16' ? 'pack_bf16' : 'pack_f16', LOWER: +lower },
    bindings: ['uniform', 'read', 'read', 'read', 'rw'],
  };
}

/** A kernel-variant spec of the kvc shader named `name` (`pf`: loads a block ahead of their stores). */
export function kvcLabSpec(sgmat, name, pf = false) {
  return {
    name,
    config: sgmat.stConfig,
    program: (d, _tail, dtype, lower) => kvcLabProgram(d, dtype, lower, pf),
    lowerEdge: true,
    workgroupBytes: (d) => kvcWorkgroupBytes(d),
    maxHeadDim: 128,
    maxHeadDimWhy: ' (O and Qᵀ of 32 rows in registers)',
    summary: `${name}: sgmat_st with K/V staged through workgroup memory at constant offsets (128-bit loads, no predicated matrix loads)`,
  };
}
