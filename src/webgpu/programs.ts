/// <reference types="@webgpu/types" />
/**
 * WGSL programs, described like ORT web's `ProgramInfo`: a shader file in shaders/, a few named
 * template parameters (`{{NAME}}`) and an entry point. The template parameters are init-time facts
 * only — dtypes, tile sizes chosen from the device limits, head-dim buckets — so the cache key never
 * holds a runtime size (S, L, batch live in uniforms) and no call after the first for a given
 * configuration compiles anything.
 */
import type { WebGpuContext } from './device.js';

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

interface NodeProcess {
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}

/**
 * Reads a shader file. The compiled module sits at dist/src/webgpu/, the source at src/webgpu/
 * (vitest): shaders/ is two or three levels up, so both are tried.
 */
async function readShaderFile(name: string): Promise<string> {
  const candidates = [new URL(`../../shaders/${name}`, import.meta.url), new URL(`../../../shaders/${name}`, import.meta.url)];
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (proc?.versions?.node && candidates[0].protocol === 'file:') {
    const fs = proc.getBuiltinModule?.('node:fs') as { existsSync(p: URL): boolean; readFileSync(p: URL, enc: 'utf8'): string };
    for (const u of candidates) if (fs.existsSync(u)) return fs.readFileSync(u, 'utf8');
    throw new Error(`shader ${name} not found (looked in ${candidates.map((u) => u.pathname).join(', ')})`);
  }
  for (const u of candidates) {
    const r = await fetch(u);
    if (r.ok) return r.text();
  }
  throw new Error(`shader ${name} could not be fetched`);
}

/** Loads a shader, expanding `//#include "file.wgsl"` lines (one level, for the shared prelude). */
function loadShader(name: string): Promise<string> {
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
      const code = expandTemplate(await loadShader(info.shader), info.defines, info.shader);
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
