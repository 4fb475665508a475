/// <reference types="@webgpu/types" />
/**
 * WGSL programs, described like ORT web's `ProgramInfo`: a shader file in shaders/, a few named
 * template parameters (`{{NAME}}`) and an entry point. The template parameters are init-time facts
 * only — dtypes, tile sizes chosen from the device limits, head-dim buckets — so the cache key never
 * holds a runtime size (S, L, batch live in uniforms) and no call after the first for a given
 * configuration compiles anything.
 */
import type { WebGpuContext } from './device.js';
import { emulateSubgroupMatrix } from './sgmat-emulation.js';
import { embeddedFile } from '../assets.js';

/** A compute program: which shader, its template values and entry point. */
export interface ProgramInfo {
  /** Shader file name in shaders/, e.g. `math.wgsl`. */
  readonly shader: string;
  readonly entryPoint: string;
  /** Template parameters substituted for `{{NAME}}`; part of the cache key. */
  readonly defines: Readonly<Record<string, string | number>>;
  /** Binding kinds in order of `@binding(n)` (one bind group); the layout is explicit and shared. */
  readonly bindings: readonly BindingKind[];
}

/** How a binding is used. */
export type BindingKind = 'uniform' | 'read' | 'rw';

const sourceCache = new Map<string, Promise<string>>();
let compileCount = 0;
const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();
const layouts = new WeakMap<GPUDevice, Map<string, GPUBindGroupLayout>>();

/** How many pipelines this process has compiled (tests check that repeated calls add none). */
export function pipelineCompileCount(): number {
  return compileCount;
}

/**
 * A shader's text, from the WGSL embedded at build time (scripts/embed-assets.mjs turns every
 * shaders/*.wgsl into src/generated/shaders.ts). Nothing is read from a path or fetched: a path
 * relative to this module breaks once a bundler moves it, and a dev server then answers with its
 * index.html. The embedded module is imported on first use, so bundlers split it into a chunk that
 * only pages using WebGPU load.
 */
async function readShaderFile(name: string): Promise<string> {
  const extra = extraSources.get(name);
  if (extra !== undefined) return extra;
  const { SHADERS } = await import('../generated/shaders.js');
  return assertWgsl(name, embeddedFile(SHADERS, 'shaders', name));
}

const extraSources = new Map<string, string>();

/**
 * Adds a shader that is not shipped, by name: a bench-only kernel of scripts/ reads its .wgsl
 * (scripts/probes/) and registers it here, then runs through the same includes, templates and
 * pipeline cache as the shipped shaders/ ones. A shipped name cannot be replaced.
 */
export async function registerShaderSource(name: string, text: string): Promise<void> {
  const { SHADERS } = await import('../generated/shaders.js');
  if (Object.prototype.hasOwnProperty.call(SHADERS, name)) throw new Error(`registerShaderSource: ${name} is a shipped shader (shaders/${name}) and cannot be replaced; pick another name`);
  extraSources.set(name, assertWgsl(name, text));
  sourceCache.delete(name);
}

/**
 * Refuses text that is markup rather than WGSL (a dev server's index.html where a shader file was
 * expected is how a path-based loader failed in bundled apps): the error names the shader and what
 * arrived, instead of the compiler's "1:1 unexpected token".
 */
export function assertWgsl(name: string, text: string): string {
  const head = text.trimStart();
  if (head.startsWith('<')) throw new Error(`shader ${name}: got markup, not WGSL (it starts with ${JSON.stringify(head.slice(0, 15))})`);
  return text;
}

/** Loads a shader, expanding `//#include "file.wgsl"` lines (one level, for the shared prelude). */
export function loadShader(name: string): Promise<string> {
  let p = sourceCache.get(name);
  if (!p) {
    p = (async () => {
      const text = await readShaderFile(name);
      const parts = await Promise.all(
        text.split('\n').map((line) => {
          const m = /^\s*\/\/#include\s+"([\w.-]+)"\s*$/.exec(line);
          return m ? loadShader(m[1]) : Promise.resolve(line);
        }),
      );
      return parts.join('\n');
    })();
    sourceCache.set(name, p);
  }
  return p;
}

/** Substitutes `{{NAME}}`; a placeholder without a value is a bug, reported with its name. */
export function expandTemplate(source: string, defines: Readonly<Record<string, string | number>>, shader: string): string {
  return source.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in defines)) throw new Error(`${shader}: template parameter {{${key}}} has no value`);
    return String(defines[key]);
  });
}

/**
 * Build-time directives, so that shaders can write fully unrolled code with NAMED variables
 * (`q_{{rt}}_{{kk}}`): subgroup matrices kept in arrays indexed inside loops ended up slow and
 * wrong on NVIDIA (docs/performance-webgpu.md); named values do not.
 * - `//#for VAR in A..B` … `//#end` repeats its lines for VAR = A … B-1 (A and B integers or
 *   template parameter names) and substitutes `{{VAR}}` in them;
 * - `//#if NAME` / `//#if !NAME` … `//#end` keeps its lines when the template parameter is
 *   non-zero / zero.
 * Other `{{NAME}}` placeholders are left for {@link expandTemplate}.
 */
export function expandDirectives(source: string, defines: Readonly<Record<string, string | number>>, shader: string): string {
  if (!source.includes('//#for') && !source.includes('//#if')) return source;
  const lines = source.split('\n');
  const value = (t: string): number => {
    if (/^\d+$/.test(t)) return Number(t);
    if (!(t in defines)) throw new Error(`${shader}: directive parameter ${t} has no value`);
    return Number(defines[t]);
  };
  // Copies lines from `from` into `out` (when given) until the matching `//#end`, whose index it
  // returns (the end of the source when there is none).
  const block = (from: number, vars: Readonly<Record<string, number>>, out: string[] | undefined): number => {
    for (let i = from; i < lines.length; i++) {
      const line = lines[i];
      const loop = /^\s*\/\/#for\s+(\w+)\s+in\s+(\w+)\.\.(\w+)\s*$/.exec(line);
      const cond = /^\s*\/\/#if\s+(!?)(\w+)\s*$/.exec(line);
      if (loop || cond) {
        const end = block(i + 1, vars, undefined); // where the body ends, whether or not it is kept
        if (end >= lines.length) throw new Error(`${shader}:${i + 1}: directive without //#end`);
        if (out && loop) for (let n = value(loop[2]); n < value(loop[3]); n++) block(i + 1, { ...vars, [loop[1]]: n }, out);
        if (out && cond && (value(cond[2]) !== 0) !== (cond[1] === '!')) block(i + 1, vars, out);
        i = end;
        continue;
      }
      if (/^\s*\/\/#end\s*$/.test(line)) return i;
      out?.push(line.replace(/\{\{(\w+)\}\}/g, (m, key: string) => (key in vars ? String(vars[key]) : m)));
    }
    return lines.length;
  };
  const out: string[] = [];
  if (block(0, {}, out) < lines.length) throw new Error(`${shader}: //#end without a directive`);
  return out.join('\n');
}

/** The cache key: shader, entry point and template values — init-time facts only. */
export function cacheKey(info: ProgramInfo): string {
  const defs = Object.keys(info.defines).sort().map((k) => `${k}=${info.defines[k]}`);
  return `${info.shader}#${info.entryPoint}|${defs.join(',')}|${info.bindings.join(',')}`;
}

/** The explicit bind-group layout for a binding list (shared by entry points of one shader). */
export function bindGroupLayout(device: GPUDevice, bindings: readonly BindingKind[]): GPUBindGroupLayout {
  let m = layouts.get(device);
  if (!m) layouts.set(device, (m = new Map()));
  const key = bindings.join(',');
  let l = m.get(key);
  if (!l) {
    l = device.createBindGroupLayout({
      entries: bindings.map((b, i) => ({
        binding: i,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b === 'uniform' ? 'uniform' : b === 'read' ? 'read-only-storage' : 'storage' },
      })),
    });
    m.set(key, l);
  }
  return l;
}

/**
 * The pipeline of `info`, compiled once per device and cached. Compile errors reject with the
 * shader's messages (the caller turns them into a reason or a fallback path).
 */
export function getPipeline(ctx: WebGpuContext, info: ProgramInfo): Promise<GPUComputePipeline> {
  const device = ctx.device;
  let m = pipelines.get(device);
  if (!m) pipelines.set(device, (m = new Map()));
  const key = cacheKey(info);
  let p = m.get(key);
  if (!p) {
    compileCount++;
    p = (async () => {
      let code = expandTemplate(expandDirectives(await loadShader(info.shader), info.defines, info.shader), info.defines, info.shader);
      // Tests on adapters without subgroup matrices (lavapipe) run the tensor-core kernels' logic
      // through plain-WGSL stand-ins (SDPA_WEBGPU_SGMAT_EMULATE=1, see device.ts).
      if (ctx.sgmatEmulated && code.includes('chromium_experimental_subgroup_matrix')) code = emulateSubgroupMatrix(code);
      const module = device.createShaderModule({ code, label: key });
      const ci = await module.getCompilationInfo();
      const errors = ci.messages.filter((x) => x.type === 'error');
      if (errors.length) throw new Error(`${info.shader} failed to compile: ${errors.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`).join('; ')}`);
      const layout = device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout(device, info.bindings)] });
      return device.createComputePipelineAsync({ layout, compute: { module, entryPoint: info.entryPoint }, label: key });
    })();
    // A failed compile stays failed for this configuration: no recompiling on every call.
    m.set(key, p);
  }
  return p;
}
